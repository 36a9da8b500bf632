import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "../helpers/context.js";
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
    expect(k!.trustedHostsPolicy("kcp").config).toEqual({
      "trusted-hosts": ["existing.example.com", "mcp.example.com", "localhost", "127.0.0.1"],
      "host-sending-registration-request-must-match": ["false"],
      "client-uris-must-match": ["true"],
    });
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
    expect(r.stdout).toBe(
      [
        "require_oauth = true",
        `authorization_url = "${k!.url}/realms/kcp"`,
        'oauth_audience = "kcp"',
        'server_url = "https://mcp.example.com"',
        'oauth_scopes = [ "profile", "email", "roles", "web-origins", "acr", "basic", "mcp-audience" ]',
        "",
      ].join("\n"),
    );
  });

  it("--keep-host-check: a refusal of this machine names the policy and the way out (exit 1), after doing what it could", async () => {
    await setup();
    // Only the MCP host is trusted; the registration comes from this machine (127.0.0.1 → localhost), which is not.
    const r = await bootstrap(["--realm", "kcp", "--mcp-host", "mcp.example.com", "--keep-host-check"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("✗ dynamic client registration: HTTP 403: Policy 'Trusted Hosts' rejected request to client-registration service. Details: Host not trusted.");
    expect(r.stderr).toMatch(/fix: .*without --keep-host-check.*--mcp-host/);
    expect(k!.trustedHostsPolicy("kcp").config["trusted-hosts"]).toEqual(["mcp.example.com"]);
    expect(k!.trustedHostsPolicy("kcp").config["host-sending-registration-request-must-match"]).toEqual(["true"]);
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
  it("kubernetes-mcp-server configured as printed accepts the token and advertises server_url and oauth_scopes", async () => {
    await setup();
    const printed = await bootstrap([...FULL, "--mcp-url", "https://mcp.example.com/k8s", "--print-server-config"]);
    expect(printed.code, printed.stderr).toBe(0);
    const { parse } = await import("smol-toml");
    const config = parse(printed.stdout) as { authorization_url: string; oauth_audience: string; server_url: string; oauth_scopes: string[] };
    expect(config.server_url).toBe("https://mcp.example.com/k8s");
    const k8s = await startKubernetesMcp({
      issuer: config.authorization_url,
      audience: config.oauth_audience,
      extraToml: `server_url = ${JSON.stringify(config.server_url)}\noauth_scopes = ${JSON.stringify(config.oauth_scopes)}`,
    });
    try {
      const tok = await u!.run(["token", "--provider", "keycloak"]);
      const ok = await mcpInitialize(k8s.url, tok.stdout.trim());
      expect(ok.status, k8s.logs()).toBe(200);
      // What MCP clients read: the server's public URL (not http://127.0.0.1:…) and only scopes the realm grants DCR clients.
      const prm = (await (await fetch(new URL("/.well-known/oauth-protected-resource/mcp", k8s.url))).json()) as { authorization_servers: string[]; scopes_supported: string[] };
      expect(prm.authorization_servers).toEqual(["https://mcp.example.com/k8s"]);
      expect(prm.scopes_supported).toEqual(config.oauth_scopes);
      // A DCR client that asks for exactly those scopes, as the MCP SDK does, is accepted and gets the audience scope.
      const reg = await fetch(`${k!.url}/realms/kcp/clients-registrations/openid-connect`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: ["http://localhost:5000/cb"], token_endpoint_auth_method: "none", scope: prm.scopes_supported.join(" ") }),
      });
      expect(reg.status).toBe(201);
      const scopes = k!.clientScopeNames("kcp", ((await reg.json()) as { client_id: string }).client_id);
      expect([...scopes.default, ...scopes.optional]).toContain("mcp-audience");
    } finally {
      await k8s.stop();
    }
  });
});

/**
 * In-process: where MCP clients may register from after `bootstrap keycloak`, and what the printed
 * kubernetes-mcp-server config says. An MCP client on another machine is decided as if its request
 * came from 192.0.2.10 (the simulator's remoteAddressOverride; no connection is made from there).
 */
describe("bootstrap keycloak: registration from other machines, server_url, oauth_scopes", () => {
  let tc: TestContext | undefined;
  afterEach(() => {
    tc?.cleanup();
    tc = undefined;
  });
  async function run(args: string[]): Promise<number> {
    tc = createTestContext({ env: { ADMIN_PW: "admin" } });
    return tc.run(["bootstrap", "keycloak", "--url", k!.url, "--admin-password-env", "ADMIN_PW", "--realm", "kcp", ...args]);
  }
  /** An MCP client's anonymous registration, decided as if it came from `from` (undefined: this process's socket). */
  async function register(redirect: string, from?: string): Promise<{ status: number; body: Record<string, unknown> }> {
    k!.remoteAddressOverride = from;
    try {
      const r = await fetch(`${k!.url}/realms/kcp/clients-registrations/openid-connect`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ client_name: "Claude Code", redirect_uris: [redirect], token_endpoint_auth_method: "none", grant_types: ["authorization_code", "refresh_token"] }),
      });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    } finally {
      k!.remoteAddressOverride = undefined;
    }
  }

  it("an MCP client on a laptop may register after the probe from a trusted host passed; redirects stay on trusted hosts", async () => {
    k = await startKeycloak({ realms: ["kcp"] });
    expect(await run(["--mcp-host", "mcp.example.com", "--trust-loopback", "--audience", "kcp"]), tc!.stderr()).toBe(0);
    expect(tc!.stderr()).toContain("trusted hosts: added mcp.example.com, localhost, 127.0.0.1 (now: mcp.example.com, localhost, 127.0.0.1); any machine may register; redirect URIs must be on a trusted host");
    expect(tc!.stderr()).toMatch(/✓ dynamic client registration: .*registered from this machine, and Keycloak does not check the registering machine, so MCP clients anywhere may register/);
    expect(k.trustedHostsPolicy("kcp").config).toMatchObject({ "host-sending-registration-request-must-match": ["false"], "client-uris-must-match": ["true"] });

    expect((await register("http://localhost:41234/callback", "192.0.2.10")).status).toBe(201);
    const elsewhere = await register("https://attacker.example/callback", "192.0.2.10");
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.error_description).toMatch(/Details: URI doesn't match any trusted host or trusted domain$/);
  });

  it("--keep-host-check keeps Keycloak's check (laptops refused) and says the probe proves only this machine", async () => {
    k = await startKeycloak({ realms: ["kcp"] });
    expect(await run(["--mcp-host", "mcp.example.com", "--trust-loopback", "--keep-host-check"]), tc!.stderr()).toBe(0);
    expect(tc!.stderr()).toContain("the registering machine's address must be a trusted host");
    expect(tc!.stderr()).toMatch(/! dynamic client registration: .*registered from this machine only: Keycloak checks the registering machine's address/);
    expect(k.trustedHostsPolicy("kcp").config["host-sending-registration-request-must-match"]).toEqual(["true"]);
    const laptop = await register("http://localhost:41234/callback", "192.0.2.10");
    expect(laptop.status).toBe(403);
    expect(laptop.body.error_description).toMatch(/Details: Host not trusted\.$/);
    // A later run without the flag turns the check off; one with it turns it back on.
    expect(await run(["--mcp-host", "mcp.example.com", "--no-verify"])).toBe(0);
    expect(tc!.stderr()).toContain("mcp.example.com already trusted; any machine may register");
    expect(k.trustedHostsPolicy("kcp").config["host-sending-registration-request-must-match"]).toEqual(["false"]);
    expect(await run(["--mcp-host", "mcp.example.com", "--keep-host-check", "--no-verify"])).toBe(0);
    expect(k.trustedHostsPolicy("kcp").config["host-sending-registration-request-must-match"]).toEqual(["true"]);
  });

  it("leaves the policy alone when no host is named", async () => {
    k = await startKeycloak({ realms: ["kcp"] });
    expect(await run(["--audience", "kcp", "--no-verify"]), tc!.stderr()).toBe(0);
    expect(k.trustedHostsPolicy("kcp").config).toEqual({ "host-sending-registration-request-must-match": ["true"], "client-uris-must-match": ["true"] });
    expect(tc!.stderr()).toContain("note: server_url is missing: pass --mcp-url (or --mcp-host)");
  });

  const scopeTable: Array<{ name: string; policy?: Record<string, string[]>; args?: string[]; scopes: string[] | undefined; serverUrl?: string }> = [
    { name: "realm defaults with the audience scope", scopes: ["profile", "email", "roles", "web-origins", "acr", "basic", "mcp-audience"] },
    { name: "openid when the policy names it", policy: { "allowed-client-scopes": ["openid"], "allow-default-scopes": ["true"] }, scopes: ["openid", "profile", "email", "roles", "web-origins", "acr", "basic", "mcp-audience"] },
    { name: "only what a restricted policy allows", policy: { "allowed-client-scopes": ["mcp-audience", "profile", "address"], "allow-default-scopes": ["false"] }, scopes: ["profile", "mcp-audience"] },
    { name: "none allowed: no oauth_scopes, and a note", policy: { "allow-default-scopes": ["false"] }, scopes: undefined },
    { name: "--mcp-url wins over --mcp-host", args: ["--mcp-url", "https://k8s.example.com:8443/"], scopes: ["profile", "email", "roles", "web-origins", "acr", "basic", "mcp-audience"], serverUrl: "https://k8s.example.com:8443" },
    { name: "an --mcp-host given as a URL keeps its port", args: ["--mcp-host", "https://mcp2.example.com:8443/mcp"], scopes: ["profile", "email", "roles", "web-origins", "acr", "basic", "mcp-audience"] },
  ];
  it.each(scopeTable)("oauth_scopes and server_url: $name", async ({ policy, args = [], scopes, serverUrl }) => {
    k = await startKeycloak({ realms: ["kcp"] });
    if (policy) k.realm("kcp").components.find((c) => c.providerId === "allowed-client-templates" && c.subType === "anonymous")!.config = policy;
    expect(await run(["--mcp-host", args.includes("--mcp-host") ? args[args.indexOf("--mcp-host") + 1]! : "mcp.example.com", "--audience", "kcp", "--print-server-config", "--no-verify", ...args.filter((a, i) => a !== "--mcp-host" && args[i - 1] !== "--mcp-host")]), tc!.stderr()).toBe(0);
    const { parse } = await import("smol-toml");
    const config = parse(tc!.stdout()) as { server_url?: string; oauth_scopes?: string[] };
    expect(config.oauth_scopes).toEqual(scopes);
    expect(config.server_url).toBe(serverUrl ?? (args.includes("--mcp-host") ? "https://mcp2.example.com:8443" : "https://mcp.example.com"));
    if (!scopes) expect(tc!.stderr()).toContain("note: oauth_scopes is missing");
  });
});
