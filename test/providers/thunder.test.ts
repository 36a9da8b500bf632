import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { startThunder, type ThunderSim } from "../simulators/thunder.js";
import { mcpInitialize, startKubernetesMcp } from "../helpers/k8s-mcp.js";
import { user, type Sandboxed } from "../helpers/cli.js";

/** `mcp-auth bootstrap thunder` against the Thunder simulator (test/simulators/thunder.ts), both API eras. */
let t: ThunderSim | undefined;
let u: Sandboxed | undefined;
afterEach(async () => {
  await t?.close();
  u?.cleanup();
  t = u = undefined;
});

function bootstrap(args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  return u!.run(["bootstrap", "thunder", "--url", t!.url, "--admin-password-env", "ADMIN_PW", ...args], { env });
}
function storedSecret(name = "thunder"): string | undefined {
  return JSON.parse(readFileSync(join(u!.configDir, "secrets.json"), "utf8")).secrets[`client-secret:${name}`];
}

describe.each(["B", "D"] as const)("Thunder era %s", (era) => {
  it("creates the application with its OAuth config, stores the secret, and the first token verifies", async () => {
    t = await startThunder({ era });
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    const r = await bootstrap();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Thunder: created — profile "thunder"');
    expect(r.stderr).toContain("✓ first token");
    expect(r.stdout).toBe("");

    // server side: the app exists with the OAuth config we asked for
    const app = t.findApp("MCP client")!;
    expect(app).toBeTruthy();
    const cfg = app.inboundAuthConfig[0]!.config;
    expect(cfg).toMatchObject({ clientId: "mcp_client", grantTypes: ["client_credentials"], tokenEndpointAuthMethod: "client_secret_basic", publicClient: false });
    if (era === "D") expect(app.ouId).toBe(t.defaultOuId);

    const secret = storedSecret()!;
    expect(secret).toBeTruthy();
    expect(r.stderr).not.toContain(secret);
    expect(readFileSync(join(u.configDir, "config.json"), "utf8")).not.toContain(secret);

    const tok = await u.run(["token", "--provider", "thunder"]);
    expect(tok.code, tok.stderr).toBe(0);
    const { payload } = await jwtVerify(tok.stdout.trim(), createLocalJWKSet(t.jwks()), { issuer: t.url });
    expect(payload.aud).toBe("mcp_client");
  });

  it("re-running reuses the application (no APP-1020) and --rotate-secret really replaces the secret", async () => {
    t = await startThunder({ era });
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    expect((await bootstrap()).code).toBe(0);
    const first = storedSecret()!;
    const again = await bootstrap();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("Thunder: reused");
    expect([...t.apps.values()].filter((a) => a.name === "MCP client")).toHaveLength(1);

    const rotated = await bootstrap(["--rotate-secret"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stderr).toContain("Thunder: rotated");
    const second = storedSecret()!;
    expect(second).not.toBe(first);
    const basic = (s: string) => `Basic ${Buffer.from(`mcp_client:${s}`).toString("base64")}`;
    const tokenWith = (s: string) =>
      fetch(`${t!.url}/oauth2/token`, { method: "POST", headers: { authorization: basic(s), "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=client_credentials" });
    expect((await tokenWith(first)).status).toBe(401);
    expect((await tokenWith(second)).status).toBe(200);
  });

  it("creates a public PKCE client for people, on a fixed loopback redirect", async () => {
    t = await startThunder({ era });
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    const r = await bootstrap(["--grant", "authorization_code", "--name", "MCP login", "--redirect-port", "43111", "--profile", "me"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("Next: mcp-auth login me");
    const cfg = t.findApp("MCP login")!.inboundAuthConfig[0]!.config;
    expect(cfg).toMatchObject({ clientId: "mcp_cli", publicClient: true, pkceRequired: true, tokenEndpointAuthMethod: "none", redirectUris: ["http://127.0.0.1:43111/callback"] });
    const show = JSON.parse((await u.run(["profiles", "show", "me", "--json"])).stdout);
    expect(show).toMatchObject({ provider: "thunder", grant: "authorization_code", redirectPort: 43111, clientSecret: "none" });
  });

  it("a wrong admin password stops at once with Thunder's reason (exit 4, no retry loop)", async () => {
    t = await startThunder({ era });
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "wrong" });
    const r = await bootstrap();
    expect(r.code).toBe(4);
    expect(r.stderr.trim()).toBe('error: Thunder refused the admin login for "admin": Invalid credentials provided (check --admin-user and the password)');
    expect(t.counters.flowExecuteRequests).toBeLessThanOrEqual(2);
    expect(t.findApp("MCP client")).toBeUndefined();
  });
});

describe("Thunder bad paths", () => {
  it("a user without the system permission: exit 4 before touching applications", async () => {
    t = await startThunder({ users: [{ username: "dev", password: "devpw", permissions: [] }] });
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "devpw" });
    const r = await bootstrap(["--admin-user", "dev"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("was not granted the 'system' permission");
  });

  it("follows a multi-step login (username, then password)", async () => {
    t = await startThunder({ multiStepLogin: true });
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    const r = await bootstrap();
    expect(r.code, r.stderr).toBe(0);
  });

  it("an application sent in the wrong wire format is detected, deleted, and reported", async () => {
    // v0.28 decodes JSON case-insensitively but not across underscores: `inboundAuthConfig` is an
    // unknown key there, so the app is created without OAuth config and no error is returned.
    t = await startThunder({ era: "B" });
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    const r = await bootstrap(["--api-casing", "camel"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/created "MCP client" without its OAuth configuration \(it ignored the camelCase fields\); the application was deleted again/);
    expect(t.findApp("MCP client")).toBeUndefined();
  });

  it("an existing application whose secret mcp-auth does not hold is not silently reused", async () => {
    t = await startThunder();
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    expect((await bootstrap()).code).toBe(0);
    const other = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    try {
      const r = await other.run(["bootstrap", "thunder", "--url", t.url, "--admin-password-env", "ADMIN_PW"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("--rotate-secret");
    } finally {
      other.cleanup();
    }
  });

  it("does not reuse an application of another kind, nor one whose secret is gone from the store", async () => {
    t = await startThunder();
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    expect((await bootstrap()).code).toBe(0);
    const kind = await bootstrap(["--grant", "authorization_code"]);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toContain('application "MCP client" already exists');
    expect(kind.stderr).toContain("as a client_credentials client, not authorization_code");
    writeFileSync(join(u.configDir, "secrets.json"), JSON.stringify({ version: 1, secrets: {} }));
    const gone = await bootstrap();
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain("--rotate-secret");
    expect((await bootstrap(["--rotate-secret"])).code).toBe(0);
    expect(storedSecret()).toBeTruthy();
    expect(Object.keys(JSON.parse(readFileSync(join(u.configDir, "secrets.json"), "utf8")).secrets)).toEqual(["client-secret:thunder"]);
  });

  it("--show-secret prints the stored secret on stdout, and only then", async () => {
    t = await startThunder();
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    const r = await bootstrap(["--show-secret", "--no-verify"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${storedSecret()}\n`);
    expect(r.stderr).not.toContain(storedSecret()!);
  });

  it("a client id taken by another application: exit 2 with what to do", async () => {
    t = await startThunder();
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    const r = await bootstrap(["--client-id", "sample_app_client"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/APP-1021.*\(another application already uses that client id: pass --client-id\)/);
  });

  it("an unreachable Thunder: exit 3; no password: exit 2", async () => {
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    const r = await u.run(["bootstrap", "thunder", "--url", "http://127.0.0.1:9", "--admin-password-env", "ADMIN_PW", "--timeout", "5"]);
    expect(r.code).toBe(3);
    const np = await u.run(["bootstrap", "thunder", "--url", "http://127.0.0.1:9"]);
    expect(np.code).toBe(2);
    expect(np.stderr).toContain("--admin-password-stdin");
  });
});

describe("end to end: Thunder → mcp-auth → kubernetes-mcp-server", () => {
  it("the token from `mcp-auth token --provider thunder` is accepted by a real MCP server trusting Thunder", async () => {
    t = await startThunder();
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    expect((await bootstrap()).code).toBe(0);
    const k8s = await startKubernetesMcp({ issuer: t.url, audience: "mcp_client" });
    try {
      const tok = await u.run(["token", "--provider", "thunder"]);
      const ok = await mcpInitialize(k8s.url, tok.stdout.trim());
      expect(ok.status, k8s.logs()).toBe(200);
      const none = await mcpInitialize(k8s.url);
      expect(none.status).toBe(401);
    } finally {
      await k8s.stop();
    }
  });
});
