import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { startKeycloak, type KeycloakSim } from "../simulators/keycloak.js";
import { mcpInitialize, startKubernetesMcp } from "../helpers/k8s-mcp.js";
import { user, type Sandboxed } from "../helpers/cli.js";

/** `mcp-auth bootstrap keycloak` against the Keycloak simulator (test/simulators/keycloak.ts). */
let k: KeycloakSim | undefined;
let u: Sandboxed | undefined;
afterEach(async () => {
  await k?.close();
  u?.cleanup();
  k = u = undefined;
});

const FULL = ["--realm", "kcp", "--mcp-host", "mcp.example.com", "--trust-loopback", "--audience", "kcp", "--create-client", "mcp-auth-ci"];
function bootstrap(args: string[], env: NodeJS.ProcessEnv = {}) {
  return u!.run(["bootstrap", "keycloak", "--url", k!.url, "--admin-password-env", "ADMIN_PW", ...args], { env });
}
async function setup(opts: Parameters<typeof startKeycloak>[0] = {}) {
  k = await startKeycloak({ realms: ["kcp"], ...opts });
  u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
}

describe("bootstrap keycloak", () => {
  it("trusts the MCP hosts, adds an audience scope as a realm default, creates a client, and proves it", async () => {
    await setup();
    const policy = k!.trustedHostsPolicy("kcp");
    expect(policy.config["trusted-hosts"]).toBeUndefined(); // a fresh realm has no such key at all
    policy.config["trusted-hosts"] = ["existing.example.com"];

    const r = await bootstrap(FULL);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("trusted hosts: added mcp.example.com, localhost, 127.0.0.1");
    expect(r.stderr).toMatch(/✓ dynamic client registration: .*its tokens get the audience scope "mcp-audience"/);
    expect(r.stderr).toContain('✓ token audience: aud contains "kcp"');

    // server side
    expect(k!.trustedHostsPolicy("kcp").config["trusted-hosts"]).toEqual(["existing.example.com", "mcp.example.com", "localhost", "127.0.0.1"]);
    const scope = k!.clientScope("kcp", "mcp-audience")!;
    expect(scope.protocolMappers).toEqual(
      expect.arrayContaining([expect.objectContaining({ protocolMapper: "oidc-audience-mapper", config: expect.objectContaining({ "included.custom.audience": "kcp", "access.token.claim": "true" }) })]),
    );
    expect(k!.realm("kcp").defaultDefaultClientScopes).toContain(scope.id);
    expect(k!.clientScopeNames("kcp", "mcp-auth-ci").default).toContain("mcp-audience");
    expect([...k!.realm("kcp").clients.values()].some((c) => c.clientId.startsWith("mcp-auth-probe"))).toBe(false); // probe deleted

    const tok = await u!.run(["token", "--provider", "keycloak"]);
    expect(tok.code, tok.stderr).toBe(0);
    const issuer = `${k!.url}/realms/kcp`;
    const { payload } = await jwtVerify(tok.stdout.trim(), createRemoteJWKSet(new URL(`${issuer}/protocol/openid-connect/certs`)), { issuer, audience: "kcp" });
    expect(payload.azp).toBe("mcp-auth-ci");
  });

  it("is idempotent: a second run changes nothing and duplicates nothing", async () => {
    await setup();
    expect((await bootstrap(FULL)).code).toBe(0);
    const before = JSON.stringify({ p: k!.trustedHostsPolicy("kcp").config, s: k!.clientScope("kcp", "mcp-audience"), d: k!.realm("kcp").defaultDefaultClientScopes });
    const again = await bootstrap(FULL);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("Keycloak: reused");
    expect(again.stderr).toContain("already trusted");
    const after = JSON.stringify({ p: k!.trustedHostsPolicy("kcp").config, s: k!.clientScope("kcp", "mcp-audience"), d: k!.realm("kcp").defaultDefaultClientScopes });
    expect(after).toBe(before);
    expect([...k!.realm("kcp").clients.values()].filter((c) => c.clientId === "mcp-auth-ci")).toHaveLength(1);
  });

  it("--debug traces never show the client secret Keycloak hands out", async () => {
    await setup();
    const r = await bootstrap([...FULL, "--debug"]);
    expect(r.code, r.stderr).toBe(0);
    const secret = k!.client("kcp", "mcp-auth-ci")!.secret!;
    expect(r.stderr).toContain("/client-secret");
    expect(r.stderr).not.toContain(secret);
    expect(r.stderr).not.toContain("admin\"");
  });

  it("--print-server-config prints kubernetes-mcp-server's config.toml on stdout", async () => {
    await setup();
    const r = await bootstrap([...FULL, "--print-server-config", "--no-verify"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`require_oauth = true\nauthorization_url = "${k!.url}/realms/kcp"\noauth_audience = "kcp"\n`);
  });

  it("reports the policy that refuses DCR and how to fix it (exit 1), after doing what it could", async () => {
    await setup();
    // Only the MCP host is trusted; the registration comes from this machine (127.0.0.1 → localhost), which is not.
    const r = await bootstrap(["--realm", "kcp", "--mcp-host", "mcp.example.com"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("✗ dynamic client registration: HTTP 403: Policy 'Trusted Hosts' rejected request to client-registration service. Details: Host not trusted.");
    expect(r.stderr).toMatch(/fix: .*--mcp-host/);
    expect(k!.trustedHostsPolicy("kcp").config["trusted-hosts"]).toEqual(["mcp.example.com"]);
  });

  it("keeps working when master admin tokens expire between steps", async () => {
    await setup({ masterTokenLifespan: 1 });
    const r = await bootstrap(FULL);
    expect(r.code, r.stderr).toBe(0);
    expect(k!.requests.filter((q) => q.path === "/realms/master/protocol/openid-connect/token").length).toBeGreaterThan(1);
  });

  it("can sign in as a service account of the realm instead of a user", async () => {
    await setup();
    const master = await (await fetch(`${k!.url}/realms/master/protocol/openid-connect/token`, { method: "POST", body: new URLSearchParams({ grant_type: "password", client_id: "admin-cli", username: "admin", password: "admin" }) })).json();
    const created = await fetch(`${k!.url}/admin/realms/kcp/clients`, {
      method: "POST",
      headers: { authorization: `Bearer ${master.access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ clientId: "bootstrapper", serviceAccountsEnabled: true }),
    });
    expect(created.status).toBe(201);
    k!.grantServiceAccountRoles("kcp", "bootstrapper", { "realm-management": ["manage-clients", "manage-realm"] });
    const r = await u!.run(["bootstrap", "keycloak", "--url", k!.url, "--admin-realm", "kcp", "--admin-client-id", "bootstrapper", "--admin-client-secret-env", "SA_SECRET", ...FULL], {
      env: { SA_SECRET: k!.client("kcp", "bootstrapper")!.secret! },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(k!.clientScope("kcp", "mcp-audience")).toBeTruthy();
  });

  it("bad paths: wrong password (4), no admin role (4), unknown realm (2), unreachable (3)", async () => {
    await setup();
    const wrong = await bootstrap(FULL, { ADMIN_PW: "nope" });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toMatch(/Keycloak admin login .* failed: HTTP 40[01]: invalid_grant: Invalid user credentials/);
    k!.addUser("master", { username: "viewer", password: "viewerpw" });
    const forbidden = await bootstrap([...FULL, "--admin-user", "viewer"], { ADMIN_PW: "viewerpw" });
    expect(forbidden.code).toBe(4);
    expect(forbidden.stderr).toMatch(/HTTP 403.*realm-management/);
    const realm = await bootstrap(["--realm", "nope", "--mcp-host", "x.example.com"]);
    expect(realm.code).toBe(2);
    expect(realm.stderr).toContain('Keycloak has no realm "nope"');
    const down = await u!.run(["bootstrap", "keycloak", "--url", "http://127.0.0.1:9", "--realm", "kcp", "--admin-password-env", "ADMIN_PW"]);
    expect(down.code).toBe(3);
  });
});

describe("end to end: Keycloak → mcp-auth → kubernetes-mcp-server", () => {
  it("kubernetes-mcp-server configured as printed accepts the token", async () => {
    await setup();
    expect((await bootstrap(FULL)).code).toBe(0);
    const k8s = await startKubernetesMcp({ issuer: `${k!.url}/realms/kcp`, audience: "kcp" });
    try {
      const tok = await u!.run(["token", "--provider", "keycloak"]);
      const ok = await mcpInitialize(k8s.url, tok.stdout.trim());
      expect(ok.status, k8s.logs()).toBe(200);
    } finally {
      await k8s.stop();
    }
  });
});
