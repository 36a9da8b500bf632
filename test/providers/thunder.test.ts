import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT, generateKeyPair } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { startThunder, THUNDER_RELEASES, type SeedApp, type ThunderOptions, type ThunderRelease, type ThunderSim } from "../simulators/thunder.js";
import { createTestContext, type TestContext } from "../helpers/context.js";
import { mcpInitialize, startKubernetesMcp } from "../helpers/k8s-mcp.js";
import { user, type Sandboxed } from "../helpers/cli.js";

/**
 * `mcp-auth bootstrap thunder` against the Thunder simulator (test/simulators/thunder.ts): every
 * release from 0.28 to ThunderID 1.0.0 in-process through createTestContext, and once across the
 * process boundary (the token a real MCP server accepts). Facts: docs/idp/thunder.md.
 */
let sim: ThunderSim | undefined;
let t: TestContext | undefined;
let u: Sandboxed | undefined;
afterEach(async () => {
  await sim?.close();
  t?.cleanup();
  u?.cleanup();
  sim = t = u = undefined;
});

const FLOW_SECRET = "fs-3f9c0d2e-admin-cli-secret";
const since = (release: ThunderRelease, r: ThunderRelease) => THUNDER_RELEASES.indexOf(release) >= THUNDER_RELEASES.indexOf(r);

/**
 * The application an admin signs in with where the Console no longer may: 0.45-0.46 let a
 * client_credentials-only app start flows; from 0.47 an app without OAuth settings presents its flow
 * secret (upstream's own recipe, tests/e2e/thunderid-config.yaml at each tag).
 */
function adminApp(release: ThunderRelease): SeedApp | undefined {
  if (since(release, "0.47")) return { name: "Admin CLI", type: "fullstack", flowSecret: FLOW_SECRET };
  if (since(release, "0.45")) return { name: "Admin CLI", oauth: { clientId: "admin_cli", grantTypes: ["client_credentials"] } };
  return undefined;
}

async function start(release: ThunderRelease, o: ThunderOptions = {}): Promise<ThunderSim> {
  const app = adminApp(release);
  sim = await startThunder({ release, ...o, apps: [...(app ? [app] : []), ...(o.apps ?? [])] });
  return sim;
}

/** The flags that sign in on this release (none up to 0.44: the Console is found and may start flows). */
function signInFlags(s: ThunderSim): string[] {
  const id = s.findApp("Admin CLI")?.id;
  if (!id) return [];
  return ["--admin-app-id", id, ...(since(s.release, "0.47") ? ["--flow-secret-env", "FS"] : [])];
}

/** Runs `bootstrap thunder` in-process; the context (config dir, store) is kept for the next run of the test. */
async function bootstrap(args: string[], o: { env?: NodeJS.ProcessEnv; debug?: boolean; password?: boolean } = {}) {
  t ??= createTestContext({ env: { PW: "admin", FS: FLOW_SECRET, ...o.env }, global: o.debug ? { debug: true } : undefined });
  const before = t.stderr().length;
  const code = await t.run(["bootstrap", "thunder", "--url", sim!.url, ...(o.password === false ? [] : ["--admin-password-env", "PW"]), ...args]);
  return { code, err: t.stderr().slice(before), out: t.stdout() };
}

const storedSecrets = () => JSON.parse(readFileSync(join(t!.configDir, "secrets.json"), "utf8")).secrets as Record<string, string>;
const flowRequests = () => sim!.requests.filter((r) => r.path === "/flow/execute");

describe.each(THUNDER_RELEASES)("bootstrap thunder on release %s", (release) => {
  it("creates a client_credentials client with the lifetime asked for, read back from Thunder, and the first token has it", async () => {
    const s = await start(release);
    const r = await bootstrap([...signInFlags(s), "--validity", "900"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('Thunder: created — profile "thunder"');
    expect(r.err).toMatch(/✓ first token: .*expires in 15 min/);
    expect(r.err).toMatch(/✓ access-token lifetime: 900 s, read back from Thunder/);
    expect(r.out).toBe("");

    const app = s.findApp("MCP client")!;
    const cfg = app.inboundAuthConfig[0]!.config;
    expect(cfg).toMatchObject({ clientId: "mcp_client", grantTypes: ["client_credentials"], tokenEndpointAuthMethod: "client_secret_basic", publicClient: false });
    // 0.48 reads the client's lifetime from clientConfig only; the flat key would be dropped
    if (since(release, "0.48")) expect(cfg.token.clientAccessToken?.validityPeriod).toBe(900);
    else expect(cfg.token.accessToken.validityPeriod).toBe(900);
    expect(app.type).toBe(since(release, "1.0.0-alpha2") ? "m2m" : undefined);
    if (release !== "0.28") expect(app.ouId).toBe(s.defaultOuId);

    const secret = storedSecrets()["client-secret:thunder"]!;
    expect(secret).toBeTruthy();
    expect(r.err).not.toContain(secret);

    // the flow secret went where this release reads it; a flowId was never sent to 1.0.0
    const first = flowRequests()[0]!;
    if (since(release, "0.48")) expect(first.headers["flow-secret"]).toBe(FLOW_SECRET);
    else if (release === "0.47") expect(first.body).toMatchObject({ flowSecret: FLOW_SECRET });
    if (release !== "0.28") expect(flowRequests().every((q) => !("flowId" in (q.body as object)))).toBe(true);
  });

  it("creates a public PKCE client for people, typed as an MCP client where Thunder has types", async () => {
    const s = await start(release);
    const r = await bootstrap([...signInFlags(s), "--grant", "authorization_code", "--name", "MCP login", "--redirect-port", "43111", "--validity", "600", "--profile", "me"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("Next: npx mcp-auth login me");
    const app = s.findApp("MCP login")!;
    expect(app.inboundAuthConfig[0]!.config).toMatchObject({ clientId: "mcp_cli", publicClient: true, pkceRequired: true, tokenEndpointAuthMethod: "none", redirectUris: ["http://127.0.0.1:43111/callback"] });
    expect(app.inboundAuthConfig[0]!.config.token.accessToken.validityPeriod).toBe(600); // the user-subject lifetime in every release
    // `mcp` exists from 1.0.0-beta; 1.0.0-alpha2 answers APP-1040 and gets `browser`
    expect(app.type).toBe(since(release, "1.0.0") ? "mcp" : since(release, "1.0.0-alpha2") ? "browser" : undefined);
  });

  it("takes a ready admin token instead of signing in (--admin-token-env), with no password", async () => {
    const s = await start(release);
    const token = await s.issueAssertion({ appId: s.consoleAppId });
    const r = await bootstrap(["--admin-token-env", "TOK"], { env: { TOK: token }, password: false });
    expect(r.code, r.err).toBe(0);
    expect(s.counters.flowExecuteRequests).toBe(0);
    expect(r.err).toContain("admin token given");
    expect(r.err).not.toContain(token);
  });

  it("a wrong admin password stops at once with Thunder's reason (failureReason, or the error object of 0.43+)", async () => {
    const s = await start(release);
    const r = await bootstrap(signInFlags(s), { env: { PW: "not-the-password" } });
    expect(r.code).toBe(4);
    expect(r.err.trim()).toBe('error: Thunder refused the admin login for "admin": Invalid credentials provided (check --admin-user and the password)');
    expect(flowRequests().length).toBeLessThanOrEqual(2);
    expect(s.findApp("MCP client")).toBeUndefined();
  });
});

describe("bootstrap thunder: when Thunder will not start the admin sign-in", () => {
  const cases: Array<{ name: string; release: ThunderRelease; args: (s: ThunderSim) => string[]; env?: NodeJS.ProcessEnv; code: number; err: RegExp; hint?: RegExp }> = [
    {
      name: "0.45 refuses the Console (FES-1011, 403)",
      release: "0.45",
      args: () => [],
      code: 4,
      err: /Thunder does not let its Console application \([\w-]+\) start a sign-in flow from outside the browser \(FES-1011\)/,
      hint: /pass --admin-app-id ID .*--flow-secret-env VAR.*--admin-token-env VAR/,
    },
    { name: "0.47 refuses the Console with the renumbered FES-1010", release: "0.47", args: () => [], code: 4, err: /does not let its Console application .* \(FES-1010\)/, hint: /--admin-app-id ID/ },
    { name: "1.0.0 refuses the Console (typed browser)", release: "1.0.0", args: () => [], code: 4, err: /does not let its Console application .* \(FES-1010\)/, hint: /--admin-token-env VAR/ },
    { name: "1.0.0 refuses the Console named with --admin-app-id", release: "1.0.0", args: (s) => ["--admin-app-id", s.consoleAppId], code: 4, err: /does not let application [\w-]+ start a sign-in flow/ },
    { name: "0.47 refuses a client_credentials-only app (0.45 let it start flows)", release: "0.47", args: (s) => ["--admin-app-id", s.findApp("M2M")!.id], code: 4, err: /does not let application .* \(FES-1010\)/ },
    { name: "0.47 wants the flow secret (FES-1011 now means that, 401)", release: "0.47", args: (s) => ["--admin-app-id", s.findApp("Admin CLI")!.id], code: 4, err: /Thunder wants the flow secret of application [\w-]+ to start a sign-in flow \(FES-1011\)/, hint: /pass --flow-secret-env VAR/ },
    { name: "1.0.0 wants the flow secret", release: "1.0.0", args: (s) => ["--admin-app-id", s.findApp("Admin CLI")!.id], code: 4, err: /wants the flow secret .* \(FES-1011\)/, hint: /--flow-secret-env VAR/ },
    { name: "0.48 refuses a wrong flow secret (FES-1012)", release: "0.48", args: (s) => ["--admin-app-id", s.findApp("Admin CLI")!.id, "--flow-secret-env", "WRONG"], env: { WRONG: "not-the-flow-secret" }, code: 4, err: /Thunder refused the flow secret of application [\w-]+ \(FES-1012\)/, hint: /--flow-secret-env/ },
    { name: "an unknown --admin-app-id", release: "1.0.0", args: () => ["--admin-app-id", "01900000-0000-7000-8000-00000000dead", "--flow-secret-env", "FS"], code: 2, err: /Thunder has no application 01900000-0000-7000-8000-00000000dead \(FES-1003\)/, hint: /check --admin-app-id/ },
    { name: "a flow secret without the application it belongs to", release: "0.48", args: () => ["--flow-secret-env", "FS"], code: 2, err: /--flow-secret-env needs --admin-app-id/ },
  ];
  it.each(cases)("$name", async (c) => {
    const s = await start(c.release, { apps: [{ name: "M2M", oauth: { clientId: "m2m_cli", grantTypes: ["client_credentials"] } }] });
    const r = await bootstrap(c.args(s), { env: c.env });
    expect(r.code, r.err).toBe(c.code);
    expect(r.err).toMatch(c.err);
    if (c.hint) expect(r.err).toMatch(c.hint);
    expect(s.findApp("MCP client")).toBeUndefined();
    expect(r.err).not.toContain(FLOW_SECRET);
  });

  it("0.45 lets a client_credentials-only application start the flow without a secret (also named with the older --app-id)", async () => {
    const s = await start("0.45");
    const r = await bootstrap(["--admin-app-id", s.findApp("Admin CLI")!.id]);
    expect(r.code, r.err).toBe(0);
    const again = await bootstrap(["--app-id", s.findApp("Admin CLI")!.id]);
    expect(again.code, again.err).toBe(0);
    expect(again.err).toContain("Thunder: reused");
  });
});

describe("bootstrap thunder: the System resource server (ThunderID ≥ 1.0.0-alpha2)", () => {
  it.each(["1.0.0-alpha2", "1.0.0"] as const)("%s: reads the identifier a deployment changed from the Console's config.js", async (release) => {
    const s = await start(release, { systemResourceServer: "https://thunder.example.test/mcp" });
    const r = await bootstrap(signInFlags(s));
    expect(r.code, r.err).toBe(0);
    expect(flowRequests().at(-1)!.body).toMatchObject({ inputs: { requested_permissions: "system", resource_server_identifier: "https://thunder.example.test/mcp" } });
  });

  it("without the Console, a changed identifier is not guessed: exit 4 naming --system-resource-server, which then works", async () => {
    const s = await start("1.0.0", { systemResourceServer: "https://thunder.example.test/mcp", consoleResourceIdentifier: false });
    const r = await bootstrap(signInFlags(s));
    expect(r.code).toBe(4);
    expect(r.err).toContain(`Thunder user "admin" signed in but was not granted the 'system' permission`);
    expect(r.err).toMatch(/asked for https:\/\/localhost:8090\/mcp, Thunder's default\): pass --system-resource-server ID/);
    const again = await bootstrap([...signInFlags(s), "--system-resource-server", "https://thunder.example.test/mcp"]);
    expect(again.code, again.err).toBe(0);
  });

  it("before 1.0.0-alpha2 the identifier is not needed (permissions were not scoped)", async () => {
    const s = await start("0.48", { systemResourceServer: "https://thunder.example.test/mcp", consoleResourceIdentifier: false });
    expect((await bootstrap(signInFlags(s))).code).toBe(0);
  });
});

describe("bootstrap thunder: the access-token lifetime", () => {
  it.each(["0.43", "0.48", "1.0.0"] as const)("%s: with no application to read the shape from, both shapes are sent and the right one is kept", async (release) => {
    const s = await start(release);
    const token = await s.issueAssertion({ appId: s.consoleAppId });
    s.apps.delete(s.consoleAppId);
    s.apps.delete(s.findApp("Admin CLI")?.id ?? "");
    const r = await bootstrap(["--admin-token-env", "TOK", "--validity", "700"], { env: { TOK: token }, password: false });
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/✓ access-token lifetime: 700 s/);
    const t0 = s.findApp("MCP client")!.inboundAuthConfig[0]!.config.token;
    expect(since(release, "0.48") ? t0.clientAccessToken?.validityPeriod : t0.accessToken.validityPeriod).toBe(700);
  });

  it("a reused application keeps its lifetime, and the run says so", async () => {
    const s = await start("1.0.0");
    expect((await bootstrap([...signInFlags(s), "--validity", "900"])).code).toBe(0);
    const r = await bootstrap([...signInFlags(s), "--validity", "1200"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("Thunder: reused");
    expect(r.err).toMatch(/access-token lifetime: the existing application keeps 900 s; --validity applies when it is created/);
  });
});

describe("bootstrap thunder: a ready admin token", () => {
  it("one without 'system' is refused before anything is asked of Thunder", async () => {
    const s = await start("1.0.0");
    const token = await s.issueAssertion({ appId: s.consoleAppId, permissions: "" });
    const r = await bootstrap(["--admin-token-env", "TOK"], { env: { TOK: token }, password: false });
    expect(r.code).toBe(4);
    expect(r.err).toContain("the token from --admin-token-env does not carry the 'system' permission");
    expect(s.counters.applicationRequests).toBe(0);
  });

  it("one Thunder did not issue: exit 4, saying so", async () => {
    const s = await start("1.0.0");
    const { privateKey } = await generateKeyPair("RS256");
    const forged = await new SignJWT({ scope: "system" }).setProtectedHeader({ alg: "RS256" }).setIssuer(s.url).setExpirationTime("1h").sign(privateKey);
    const r = await bootstrap(["--admin-token-env", "TOK"], { env: { TOK: forged }, password: false });
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/listing applications failed: HTTP 401: AUTH-4010.*\(the token from --admin-token-env is expired or was not issued by this Thunder\)/);
    expect(r.err).not.toContain(forged);
  });
});

describe("bootstrap thunder: secrets stay out of --debug traces", () => {
  it("the flow secret, the password and the admin assertion are never shown", async () => {
    const s = await start("1.0.0");
    const r = await bootstrap(signInFlags(s), { debug: true });
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("POST");
    expect(r.err).not.toContain(FLOW_SECRET);
    expect(r.err).not.toMatch(/eyJ[\w-]+\.eyJ/);
    expect(r.err).not.toMatch(/"password":"admin"/);
  });
});

describe.each(["0.28", "0.35"] as const)("bootstrap thunder on %s: re-runs and mistakes", (release) => {
  it("re-running reuses the application (no APP-1020) and --rotate-secret really replaces the secret", async () => {
    const s = await start(release);
    expect((await bootstrap([])).code).toBe(0);
    const first = storedSecrets()["client-secret:thunder"]!;
    const again = await bootstrap([]);
    expect(again.code, again.err).toBe(0);
    expect(again.err).toContain("Thunder: reused");
    expect([...s.apps.values()].filter((a) => a.name === "MCP client")).toHaveLength(1);

    const rotated = await bootstrap(["--rotate-secret"]);
    expect(rotated.code, rotated.err).toBe(0);
    expect(rotated.err).toContain("Thunder: rotated");
    const second = storedSecrets()["client-secret:thunder"]!;
    expect(second).not.toBe(first);
    const basic = (x: string) => `Basic ${Buffer.from(`mcp_client:${x}`).toString("base64")}`;
    const tokenWith = (x: string) => fetch(`${s.url}/oauth2/token`, { method: "POST", headers: { authorization: basic(x), "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=client_credentials" });
    expect((await tokenWith(first)).status).toBe(401);
    expect((await tokenWith(second)).status).toBe(200);
  });

  it("does not reuse an application of another kind, nor one whose secret is gone from the store", async () => {
    await start(release);
    expect((await bootstrap([])).code).toBe(0);
    const kind = await bootstrap(["--grant", "authorization_code"]);
    expect(kind.code).toBe(2);
    expect(kind.err).toContain('application "MCP client" already exists');
    expect(kind.err).toContain("as a client_credentials client, not authorization_code");
    writeFileSync(join(t!.configDir, "secrets.json"), JSON.stringify({ version: 1, secrets: {} }));
    const gone = await bootstrap([]);
    expect(gone.code).toBe(2);
    expect(gone.err).toContain("--rotate-secret");
    expect((await bootstrap(["--rotate-secret"])).code).toBe(0);
    expect(Object.keys(storedSecrets())).toEqual(["client-secret:thunder"]);
  });
});

describe("bootstrap thunder: other bad paths", () => {
  it("a user without the system permission: exit 4 before touching applications", async () => {
    const s = await start("0.28", { users: [{ username: "dev", password: "devpw", permissions: [] }] });
    const r = await bootstrap(["--admin-user", "dev"], { env: { PW: "devpw" } });
    expect(r.code).toBe(4);
    expect(r.err).toContain("was not granted the 'system' permission");
    expect(s.counters.applicationRequests).toBe(0);
  });

  it.each(["0.28", "1.0.0"] as const)("%s: follows a multi-step login (username, then password)", async (release) => {
    const s = await start(release, { multiStepLogin: true });
    const r = await bootstrap(signInFlags(s));
    expect(r.code, r.err).toBe(0);
  });

  it("an application sent in the wrong wire format is detected, deleted, and reported", async () => {
    // 0.28 decodes JSON case-insensitively but not across underscores: `inboundAuthConfig` is an
    // unknown key there, so the app is created without OAuth config and no error is returned.
    const s = await start("0.28");
    const r = await bootstrap(["--api-casing", "camel"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/created "MCP client" without its OAuth configuration \(it ignored the camelCase fields\); the application was deleted again/);
    expect(s.findApp("MCP client")).toBeUndefined();
  });

  it("an existing application whose secret mcp-auth does not hold is not silently reused", async () => {
    await start("0.28");
    expect((await bootstrap([])).code).toBe(0);
    const mine = t;
    t = undefined; // another user, another store
    try {
      const r = await bootstrap([]);
      expect(r.code).toBe(2);
      expect(r.err).toContain("--rotate-secret");
    } finally {
      mine?.cleanup();
    }
  });

  it("--show-secret prints the stored secret on stdout, and only then", async () => {
    await start("0.28");
    const r = await bootstrap(["--show-secret", "--no-verify"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`${storedSecrets()["client-secret:thunder"]}\n`);
    expect(r.err).not.toContain(storedSecrets()["client-secret:thunder"]!);
  });

  it("a client id taken by another application: exit 2 with what to do", async () => {
    await start("0.28");
    const r = await bootstrap(["--client-id", "sample_app_client"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/APP-1021.*\(another application already uses that client id: pass --client-id\)/);
  });

  it("an unreachable Thunder: exit 3; no password: exit 2 naming both ways in", async () => {
    t = createTestContext({ env: { PW: "admin" } });
    expect(await t.run(["bootstrap", "thunder", "--url", "http://127.0.0.1:9", "--admin-password-env", "PW", "--timeout", "5"])).toBe(3);
    expect(await t.run(["bootstrap", "thunder", "--url", "http://127.0.0.1:9"])).toBe(2);
    expect(t.stderr()).toMatch(/--admin-password-stdin or --admin-password-env VAR \(or --admin-token-env VAR\)/);
  });
});

describe("end to end: ThunderID 1.0.0 → mcp-auth → kubernetes-mcp-server", () => {
  it("the binary signs in with the flow secret, and its token is accepted by a real MCP server trusting Thunder", async () => {
    const s = await start("1.0.0");
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin", FS: FLOW_SECRET });
    const r = await u.run(["bootstrap", "thunder", "--url", s.url, "--admin-password-env", "ADMIN_PW", ...signInFlags(s)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain(FLOW_SECRET);
    const k8s = await startKubernetesMcp({ issuer: s.url, audience: "mcp_client" });
    try {
      const tok = await u.run(["token", "--provider", "thunder"]);
      expect(tok.code, tok.stderr).toBe(0);
      const ok = await mcpInitialize(k8s.url, tok.stdout.trim());
      expect(ok.status, k8s.logs()).toBe(200);
      const none = await mcpInitialize(k8s.url);
      expect(none.status).toBe(401);
    } finally {
      await k8s.stop();
    }
  });
});
