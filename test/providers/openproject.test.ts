import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startOpenProject, type OpenProjectSim } from "../simulators/openproject.js";
import { user, type Sandboxed } from "../helpers/cli.js";
import { createTestContext, type TestContext } from "../helpers/context.js";

/** `mcp-auth bootstrap openproject` against the OpenProject simulator (test/simulators/openproject.ts). */
const REDIRECT = "http://127.0.0.1:33418/callback";

describe("bootstrap openproject (the built CLI)", () => {
  let s: OpenProjectSim | undefined;
  let u: Sandboxed | undefined;
  afterEach(async () => {
    await s?.close();
    u?.cleanup();
    s = u = undefined;
  });
  async function setup(o: Parameters<typeof startOpenProject>[0] = {}) {
    s = await startOpenProject(o);
    u = user({ MCP_AUTH_STORE: "file" });
  }
  const run = (args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}) => u!.run(["bootstrap", "openproject", "--url", s!.url, ...args], o);
  const config = () => JSON.parse(readFileSync(join(u!.configDir, "config.json"), "utf8"));
  const secrets = () => JSON.parse(readFileSync(join(u!.configDir, "secrets.json"), "utf8")).secrets as Record<string, string>;

  it("--oauth alone prints the admin steps with every value to paste, and saves nothing", async () => {
    await setup();
    const r = await run(["--oauth", "--name", "Claude"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`Administration → Authentication → OAuth applications → "+ OAuth application" (${s!.url}/admin/oauth/applications/new)`);
    expect(r.stderr).toContain("Name: Claude");
    expect(r.stderr).toContain(`Redirect URI: ${REDIRECT}`);
    expect(r.stderr).toContain('Scopes: tick "api_v3" and "mcp"');
    expect(r.stderr).toContain("Confidential: ticked");
    expect(r.stderr).toContain("OpenProject accepts this plain-http redirect URI because it points at a loopback address"); // its secure-context rule
    expect(r.stderr).toContain(`rails runner 'a = Doorkeeper::Application.create!(name: "Claude", redirect_uri: "${REDIRECT}", scopes: "api_v3 mcp", confidential: true); puts a.uid, a.plaintext_secret'`);
    expect(r.stderr).toContain("--client-id CLIENT_ID --client-secret-stdin");
    expect(() => config()).toThrow(); // no profile
  });

  it("client credentials: the guide names the client-credentials user and the OOB redirect", async () => {
    await setup();
    const r = await run(["--oauth", "--grant", "client_credentials", "--client-credentials-user", "alice"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("Client Credentials User: alice");
    expect(r.stderr).toContain("Redirect URI: urn:ietf:wg:oauth:2.0:oob");
    expect(r.stderr).toContain('client_credentials_user_id: User.find_by!(login: "alice").id');
  });

  it("happy path: the pasted client is verified at /oauth/token, /mcp answers, the profile and its secret are saved", async () => {
    await setup();
    const app = s!.createApp({ name: "MCP client", redirectUris: [REDIRECT], scopes: ["api_v3", "mcp"] });
    const r = await run(["--oauth", "--client-id", app.clientId, "--client-secret-stdin", "--profile", "op"], { input: `${app.clientSecret}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("✓ client secret: accepted by /oauth/token");
    expect(r.stderr).toContain(`✓ MCP endpoint: ${s!.url}/mcp is on and asks for a token with the "mcp" scope`);
    expect(r.stdout + r.stderr).not.toContain(app.clientSecret);
    expect(config().profiles.op).toMatchObject({
      provider: "openproject", issuer: s!.url, clientId: app.clientId, grant: "authorization_code", scopes: ["api_v3", "mcp"], redirectPort: 33418, mcpUrl: `${s!.url}/mcp`,
      extra: { tokenEndpoint: `${s!.url}/oauth/token`, authorizationEndpoint: `${s!.url}/oauth/authorize` },
    });
    expect(JSON.stringify(config())).not.toContain(app.clientSecret);
    expect(secrets()["client-secret:op"]).toBe(app.clientSecret);
    // server side: the probe used a made-up code over Basic auth and created nothing
    expect(s!.log.filter((l) => l.path === "/oauth/token")).toEqual([{ method: "POST", path: "/oauth/token", auth: "Basic" }]);
    expect(s!.apps.size).toBe(1);
  });

  it("--redirect-uri on localhost: the profile keeps it, so the login listens for exactly that URI", async () => {
    await setup();
    const uri = "http://localhost:3118/op-callback";
    const app = s!.createApp({ name: "MCP client", redirectUris: [uri], scopes: ["api_v3", "mcp"] });
    const r = await run(["--oauth", "--client-id", app.clientId, "--client-secret-stdin", "--redirect-uri", uri, "--profile", "op"], { input: `${app.clientSecret}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(config().profiles.op).toMatchObject({ grant: "authorization_code", redirectUri: uri });
  });

  /** POST /mcp initialize with a token, as an MCP client would. */
  async function mcpInit(token: string) {
    const res = await fetch(`${s!.url}/mcp`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} }) });
    return { status: res.status, body: (await res.json()) as { result?: { serverInfo?: { name?: string } } } };
  }

  it("the saved profile logs in with PKCE at /oauth/authorize (no discovery document) and its token opens /mcp", async () => {
    await setup();
    const app = s!.createApp({ name: "MCP client", redirectUris: [REDIRECT], scopes: ["api_v3", "mcp"] });
    expect((await run(["--oauth", "--client-id", app.clientId, "--client-secret-env", "S", "--profile", "op"], { env: { S: app.clientSecret } })).code).toBe(0);
    // A person approving in the browser: the simulator's signed-in user consents, the browser follows the redirect.
    const browser = join(u!.home, "browser.mjs");
    writeFileSync(browser, 'const r = await fetch(process.argv[2], { redirect: "manual" }); await fetch(r.headers.get("location"));\n');
    const login = await u!.run(["login", "--profile", "op", "--browser-command", `${process.execPath} ${browser}`]);
    expect(login.code, login.stderr).toBe(0);
    const tok = await u!.run(["token", "--profile", "op"]);
    expect(tok.code, tok.stderr).toBe(0);
    expect((await mcpInit(tok.stdout.trim())).body.result?.serverInfo?.name).toBe("openproject");
    expect(s!.log.some((l) => l.path.startsWith("/.well-known/"))).toBe(false);
  });

  it("client credentials: the first token carries mcp and `token` opens /mcp", async () => {
    await setup();
    const app = s!.createApp({ name: "svc", redirectUris: ["urn:ietf:wg:oauth:2.0:oob"], scopes: ["api_v3", "mcp"], clientCredentialsUser: "alice" });
    const r = await run(["--oauth", "--grant", "client_credentials", "--client-id", app.clientId, "--client-secret-env", "S", "--profile", "svc"], { env: { S: app.clientSecret } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("✓ token scope: api_v3 mcp");
    expect(r.stderr).toContain("✓ first token");
    expect(r.stderr).toContain(`✓ MCP endpoint: ${s!.url}/mcp openproject, speaks 2025-06-18 (initialize handshake)`);
    const tok = await u!.run(["token", "--profile", "svc"]);
    expect(tok.code, tok.stderr).toBe(0);
    expect((await mcpInit(tok.stdout.trim())).status).toBe(200);
  });

  it("a wrong client secret → exit 4 with Doorkeeper's own words on one line, nothing saved", async () => {
    await setup();
    const app = s!.createApp({ name: "MCP client", redirectUris: [REDIRECT], scopes: ["api_v3", "mcp"] });
    const r = await run(["--oauth", "--client-id", app.clientId, "--client-secret-env", "S"], { env: { S: "not-the-secret-at-all" } });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error: OpenProject refused client \S+: HTTP 401: invalid_client: Client authentication failed due to unknown client.* \(check the client id and secret/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toContain("not-the-secret-at-all");
    expect(() => config()).toThrow();
  });

  it("client credentials without the mcp scope → exit 4 naming the fix", async () => {
    await setup();
    const app = s!.createApp({ name: "svc", redirectUris: ["urn:ietf:wg:oauth:2.0:oob"], scopes: ["api_v3"], clientCredentialsUser: "alice" });
    const r = await run(["--oauth", "--grant", "client_credentials", "--client-id", app.clientId, "--client-secret-env", "S"], { env: { S: app.clientSecret } });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('OpenProject refused the scopes "api_v3 mcp"');
    expect(r.stderr).toContain('tick the "mcp" and "api_v3" scopes');
    expect(r.stderr).not.toContain(app.clientSecret);
  });

  it("MCP switched off → the finding with where to enable it, exit 1", async () => {
    await setup({ mcp: false });
    const app = s!.createApp({ name: "MCP client", redirectUris: [REDIRECT], scopes: ["api_v3", "mcp"] });
    const r = await run(["--oauth", "--client-id", app.clientId, "--client-secret-env", "S"], { env: { S: app.clientSecret } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`✗ MCP endpoint: ${s!.url}/mcp answers HTTP 404: the MCP server is not enabled`);
    expect(r.stderr).toContain("Administration → Artificial Intelligence (AI) → Model Context Protocol (MCP)");
    expect(r.stderr).toContain("/admin/settings/experimental");
  });

  it("a personal API token: verified at /users/me, probed at /mcp, kept only in the secret store", async () => {
    await setup();
    const tok = s!.createApiToken("alice");
    const r = await run(["--api-token-stdin", "--profile", "mine"], { input: `${tok}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("✓ API token: signs in as alice (Bearer)");
    expect(r.stderr).toContain(`✓ MCP endpoint: ${s!.url}/mcp openproject, speaks 2025-06-18 (initialize handshake)`);
    expect(r.stdout + r.stderr).not.toContain(tok);
    expect(config().profiles.mine).toMatchObject({ provider: "openproject", clientId: "apikey", extra: { credential: "api-token", user: "alice" } });
    expect(JSON.stringify(config())).not.toContain(tok);
    expect(secrets()["client-secret:mine"]).toBe(tok);
  });

  it("`token` on an API-token profile hands out the stored token and caches no copy of it", async () => {
    await setup();
    const tok = s!.createApiToken("alice");
    expect((await run(["--api-token-env", "T", "--profile", "mine"], { env: { T: tok } })).code).toBe(0);
    const r = await u!.run(["token", "--profile", "mine"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(tok);
    expect((await mcpInit(tok)).status).toBe(200);
    const cached = readdirSync(u!.configDir, { recursive: true }).map(String).filter((f) => f.startsWith("tokens"));
    for (const f of cached) if (!f.endsWith("tokens")) expect(readFileSync(join(u!.configDir, f), "utf8")).not.toContain(tok);
  });

  it("a wrong API token → exit 4 with OpenProject's own message, after trying Bearer and Basic apikey:", async () => {
    await setup();
    const r = await run(["--api-token-env", "T"], { env: { T: "opapi-wrong-token-value" } });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error: OpenProject refused the API token: HTTP 401: You need to be authenticated to access this resource\. \(create a new one under My account → Access tokens/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toContain("opapi-wrong-token-value");
    expect(s!.log.filter((l) => l.path === "/api/v3/users/me").map((l) => l.auth)).toEqual(["Bearer", "Basic"]);
  });
});

describe("bootstrap openproject: inputs (in-process)", () => {
  let s: OpenProjectSim;
  let t: TestContext | undefined;
  beforeAll(async () => {
    s = await startOpenProject();
  });
  afterAll(() => s.close());
  afterEach(() => t?.cleanup());

  const cases: Array<{ name: string; args: string[] | ((s: OpenProjectSim) => string[]); env?: NodeJS.ProcessEnv; stdin?: string; interactive?: boolean; answers?: string[]; code: number; err?: RegExp; asked?: number }> = [
    { name: "no mode and nobody to ask → exit 2 listing the modes", args: [], code: 2, err: /say how mcp-auth should set up OpenProject[\s\S]*--create --admin-user LOGIN[\s\S]*--oauth[\s\S]*--api-token-stdin \/ --api-token-env VAR/ },
    { name: "both modes → exit 2", args: ["--oauth", "--api-token-env", "T"], env: { T: "opapi-x" }, code: 2, err: /pass one of --oauth, --api-token-stdin\/--api-token-env, not several/ },
    { name: "--create with --oauth → exit 2", args: ["--create", "--oauth", "--admin-password-env", "T"], env: { T: "pw" }, code: 2, err: /pass one of --create, --oauth, not several/ },
    { name: "a secret flag never takes a value", args: ["--oauth", "--client-id", "x", "--client-secret", "s3cr3t-on-argv"], code: 2, err: /unknown option '--client-secret'/ },
    { name: "--client-id without a secret and nobody to ask → exit 2", args: ["--oauth", "--client-id", "x"], code: 2, err: /client secret is needed[\s\S]*--client-secret-stdin or --client-secret-env VAR/ },
    { name: "empty secret variable → exit 2", args: ["--oauth", "--client-id", "x", "--client-secret-env", "EMPTY"], env: { EMPTY: "" }, code: 2, err: /\$EMPTY is empty or not set/ },
    { name: "bad --grant → exit 2", args: ["--oauth", "--grant", "password"], code: 2, err: /--grant/ },
    {
      name: "secret asked without echo on a terminal",
      args: (sim) => ["--oauth", "--client-id", sim.createApp({ name: "p", redirectUris: [REDIRECT], scopes: ["api_v3", "mcp"] }).clientId, "--profile", "prompted", "--no-verify"],
      interactive: true,
      answers: ["wrong-secret-typed-in"],
      code: 4,
      asked: 1,
      err: /refused client/,
    },
    { name: "--url must be http(s)", args: ["--oauth"], code: 2, err: /--url/ },
    {
      name: "no mode on a terminal: asks which, then the admin and the hidden password, and creates the application",
      args: ["--grant", "client_credentials", "--client-credentials-user", "alice", "--profile", "asked", "--no-verify"],
      interactive: true,
      answers: ["create", "admin", "admin-password"],
      code: 0,
      asked: 3,
      err: /OpenProject: created — profile "asked"/,
    },
    { name: "no mode on a terminal, guided chosen: the steps", args: [], interactive: true, answers: ["oauth"], code: 0, asked: 1, err: /Administration → Authentication → OAuth applications/ },
    // Nothing was configured: the summary does not say so.
    { name: "guided: the summary says nothing is set up yet", args: ["--oauth"], code: 0, err: /^OpenProject: nothing set up yet; an administrator creates the application \(the steps are below\)$/m },
  ];
  it("--open opens the admin page for a new OAuth application and still prints the steps", async () => {
    t = createTestContext();
    expect(await t.run(["bootstrap", "openproject", "--url", s.url, "--oauth", "--open"])).toBe(0);
    expect(t.browsed).toEqual([`${s.url}/admin/oauth/applications/new`]);
    expect(t.stderr()).toContain("Redirect URI: http://127.0.0.1:33418/callback");
  });

  it("a --redirect-uri OpenProject would refuse: the guide says so and names the ways out", async () => {
    t = createTestContext();
    expect(await t.run(["bootstrap", "openproject", "--url", s.url, "--oauth", "--redirect-uri", "http://mcp.example.invalid/callback"])).toBe(0);
    expect(t.stderr()).toContain('OpenProject will refuse http://mcp.example.invalid/callback: plain http is allowed only to a loopback host');
    expect(t.stderr()).toContain("urn:ietf:wg:oauth:2.0:oob with --grant client_credentials");
  });

  it("--redirect-port changes the redirect URI the admin is told to paste and the profile uses", async () => {
    t = createTestContext();
    expect(await t.run(["bootstrap", "openproject", "--url", s.url, "--oauth", "--redirect-port", "40111"])).toBe(0);
    expect(t.stderr()).toContain("Redirect URI: http://127.0.0.1:40111/callback");
  });

  it.each(cases)("$name", async (c) => {
    t = createTestContext({ env: c.env, stdin: c.stdin, interactive: c.interactive, answers: c.answers });
    const url = c.name.startsWith("--url") ? "ftp://op.invalid" : s.url;
    const args = typeof c.args === "function" ? c.args(s) : c.args;
    expect(await t.run(["bootstrap", "openproject", "--url", url, ...args])).toBe(c.code);
    if (c.err) expect(t.stderr()).toMatch(c.err);
    expect(t.asked).toHaveLength(c.asked ?? 0);
    expect(t.stdout() + t.stderr()).not.toMatch(/s3cr3t-on-argv|wrong-secret-typed-in/);
  });
});

describe("openproject.matches", () => {
  it.each([
    [{ issuer: "https://op.example.com", token_endpoint: "https://op.example.com/oauth/token", authorization_endpoint: "https://op.example.com/oauth/authorize" }, true],
    [{ issuer: "https://op.example.com/", token_endpoint: "https://op.example.com/oauth/token", authorization_endpoint: "https://op.example.com/oauth/authorize" }, true],
    [{ issuer: "https://idp.example.com", token_endpoint: "https://idp.example.com/oauth2/token" }, false],
    ["https://op.example.com", false], // a bare URL says nothing: mcp-auth reads no discovery document from OpenProject
  ] as const)("%j → %s", async (x, want) => {
    const { openproject } = await import("../../src/providers/openproject/index.js");
    const { providers } = await import("../../src/plugins.js");
    expect(openproject.matches(x)).toBe(want);
    expect(providers.filter((p) => p.matches(x)).length).toBeLessThanOrEqual(1);
  });
});
