import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { redirectUriProblem, shownCredentials } from "../../src/providers/openproject/create.js";
import { user, type Sandboxed } from "../helpers/cli.js";
import { createTestContext, type TestContext } from "../helpers/context.js";
import { startOpenProject, type OpenProjectOptions, type OpenProjectSim } from "../simulators/openproject.js";

/**
 * `bootstrap openproject --create` through the built CLI against the OpenProject simulator's admin web
 * UI (login + CSRF + the OAuth-applications form and show page, per release; docs/idp/openproject.md).
 */
const OOB = "urn:ietf:wg:oauth:2.0:oob";
const PW = "admin-password";
let s: OpenProjectSim | undefined;
let u: Sandboxed | undefined;
afterEach(async () => {
  await s?.close();
  u?.cleanup();
  s = u = undefined;
});
async function setup(o: OpenProjectOptions = {}) {
  s = await startOpenProject(o);
  u = user({ MCP_AUTH_STORE: "file", PW });
}
const create = (args: string[], env: NodeJS.ProcessEnv = {}) => u!.run(["bootstrap", "openproject", "--url", s!.url, "--create", "--admin-user", "admin", "--admin-password-env", "PW", "--profile", "op", ...args], { env });
const CC = ["--grant", "client_credentials", "--client-credentials-user", "alice"];
const secrets = () => JSON.parse(readFileSync(join(u!.configDir, "secrets.json"), "utf8")).secrets as Record<string, string>;
const config = () => JSON.parse(readFileSync(join(u!.configDir, "config.json"), "utf8"));
const sha = (x: string) => createHash("sha256").update(x).digest("hex");
async function mcpInit(token: string) {
  const res = await fetch(`${s!.url}/mcp`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} }) });
  return res.status;
}

describe("bootstrap openproject --create", () => {
  it.each([
    ["current", "en", {}],
    // The admin's language changes every label; the show page is read by its structure (fails while it was read by "Client ID").
    ["current", "de", {}],
    // The application[...] form and the <code> secret of 17.1 and before, with an mcp scope registered (17.1 itself had no MCP).
    ["17.1", "en", { mcp: true }],
  ] as const)("%s release, %s: signs in, fills the form the server serves, reads the once-shown secret, and the token opens /mcp", async (release, locale, extra) => {
    await setup({ release, locale, ...extra });
    const r = await create(CC);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('OpenProject: created — profile "op"');
    expect(s!.apps.size).toBe(1);
    const app = [...s!.apps.values()][0]!;
    // Server side: what an admin would have made by hand.
    expect(app).toMatchObject({ name: "MCP client", confidential: true, redirectUris: [OOB], clientCredentialsUserId: 2 });
    expect(app.scopes).toEqual(["api_v3", "mcp"]);
    const prefix = release === "17.1" ? "application" : "doorkeeper_application";
    const posted = s!.posts[0]!.fields.map(([k]) => k);
    expect(posted).toContain(`${prefix}[name]`);
    expect(posted).toContain("authenticity_token");
    expect(posted.some((k) => k.startsWith(release === "17.1" ? "doorkeeper_application[" : "application["))).toBe(false);
    expect(s!.posts[0]!.fields).toContainEqual([`${prefix}[enabled]`, "1"]); // the box a browser leaves ticked
    // The secret went to the store, and nowhere else.
    const stored = secrets()["client-secret:op"]!;
    expect(sha(stored)).toBe(app.secretHash);
    expect(r.stdout + r.stderr).not.toContain(stored);
    expect(r.stdout + r.stderr).not.toContain(PW);
    expect(config().profiles.op).toMatchObject({ provider: "openproject", clientId: app.uid, grant: "client_credentials", scopes: ["api_v3", "mcp"] });
    expect(r.stderr).toMatch(/✓ token scope: api_v3 mcp/);
    const tok = await u!.run(["token", "--profile", "op"]);
    expect(tok.code, tok.stderr).toBe(0);
    expect(await mcpInit(tok.stdout.trim())).toBe(200);
  });

  it("re-running finds the application by name and reuses it (no second one, the stored secret kept)", async () => {
    await setup();
    expect((await create(CC)).code).toBe(0);
    const first = secrets()["client-secret:op"];
    const again = await create(CC);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("OpenProject: reused");
    expect(s!.apps.size).toBe(1);
    expect(s!.posts).toHaveLength(1);
    expect(secrets()["client-secret:op"]).toBe(first);
  });

  it("an application of that name whose secret mcp-auth does not hold: exit 2, nothing created", async () => {
    await setup();
    s!.createApp({ name: "MCP client", redirectUris: [OOB], scopes: ["api_v3", "mcp"] });
    const r = await create(CC);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('OpenProject already has an OAuth application "MCP client"');
    expect(r.stderr).toContain("pass another --name");
    expect(s!.apps.size).toBe(1);
  });

  it("an https production instance takes the default loopback redirect URI (its secure-context rule): the application is made for the login flow", async () => {
    await setup();
    const r = await create([]);
    expect(r.code, r.stderr).toBe(0);
    expect([...s!.apps.values()][0]!.redirectUris).toEqual(["http://127.0.0.1:33418/callback"]);
    expect(r.stderr).toContain("✓ client secret: accepted by /oauth/token");
    expect(config().profiles.op).toMatchObject({ grant: "authorization_code", redirectPort: 33418 });
  });

  // Upstream answers a refused password with the login page and HTTP 422 (exit 1 "invalid authenticity token" while 422 was read as CSRF).
  it("a wrong admin password: exit 4 with OpenProject's message; a user who is no admin: exit 4", async () => {
    await setup();
    const wrong = await create(CC, { PW: "not-the-password" });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toContain('OpenProject refused the sign-in of "admin": Invalid user or password');
    expect(wrong.stderr).not.toContain("not-the-password");
    const alice = await u!.run(["bootstrap", "openproject", "--url", s!.url, "--create", "--admin-user", "alice", "--admin-password-stdin", ...CC], { input: "alice-password\n" });
    expect(alice.code).toBe(4);
    expect(alice.stderr).toContain("the user is not an administrator");
    expect(s!.apps.size).toBe(0);
  });

  it.each([
    ["two-factor login", { twoFactor: true }, /signs in with two-factor authentication/],
    ["single sign-on only", { ssoOnly: true }, /no user name and password form \(single sign-on only\?\)/],
    ["a forced password change", { mustChangePassword: true }, /wants the password of "admin" changed first/],
    ["MCP disabled (no mcp scope offered)", { mcp: false }, /offers no "mcp" scope .*its MCP server is not available/],
    ["17.1 (no MCP server before 17.2)", { release: "17.1" }, /offers no "mcp" scope \(it offers api_v3\)/],
    // The user-consent stage holds the login before the admin is signed in (was: exit 4 "the admin session was not kept").
    ["the user-consent stage", { consent: true }, /holds the sign-in of "admin" at its user-consent stage \(\/account\/consent\)/],
  ] as const)("%s: stops before creating anything and falls back to the guided steps with the reason (exit 1)", async (_what, o, reason) => {
    await setup(o);
    const r = await create(CC);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(reason);
    expect(r.stderr).toContain("✗ create the OAuth application");
    expect(r.stderr).toContain("Administration → Authentication → OAuth applications");
    expect(r.stderr).toContain("Client Credentials User: alice");
    expect(s!.apps.size).toBe(0);
    expect(s!.posts).toHaveLength(0);
  });

  it("a result page without the secret where mcp-auth reads it: the application is deleted again, guided fallback", async () => {
    await setup({ hideSecret: true });
    const r = await create(CC);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("has no client secret in the place its show page keeps it; the application was deleted again");
    expect(s!.apps.size).toBe(0);
  });

  it("--debug traces show neither the admin password, the session cookie, nor the once-shown client secret", async () => {
    await setup();
    const r = await create([...CC, "--debug"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("/admin/oauth/applications");
    const stored = secrets()["client-secret:op"]!;
    expect(r.stderr + r.stdout).not.toContain(stored);
    expect(r.stderr + r.stdout).not.toContain(PW);
    expect(r.stderr).not.toMatch(/_open_project_session=[0-9a-f]{8}/);
  });

  it("the admin password is never a flag: --admin-password VALUE is refused (exit 2)", async () => {
    await setup();
    const r = await u!.run(["bootstrap", "openproject", "--url", s!.url, "--create", "--admin-password", "on-argv"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--admin-password'");
  });
});

describe("bootstrap openproject --create against a hostile server", () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const x of servers.splice(0)) x.close();
    u?.cleanup();
    u = undefined;
  });
  const listen = async (handler: Parameters<typeof createServer>[1]) => {
    const x = createServer(handler);
    servers.push(x);
    await new Promise<void>((r) => x.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(x.address() as AddressInfo).port}`;
  };

  it("a login that redirects to another origin: exit 3, and neither the session cookie nor the password goes there", async () => {
    const seen: Array<{ cookie?: string; body: string }> = [];
    const thief = await listen((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => (seen.push({ cookie: req.headers.cookie, body }), res.end("ok")));
    });
    const op = await listen((req, res) => {
      if (req.method === "GET") {
        res.writeHead(200, { "content-type": "text/html", "set-cookie": "_open_project_session=SESSION-COOKIE-VALUE; path=/" });
        return res.end(`<form action="/login" method="post"><input type="hidden" name="authenticity_token" value="t"><input name="username"><input type="password" name="password"></form>`);
      }
      res.writeHead(307, { location: `${thief}/steal` }); // a 307 would repeat the POST, password included
      res.end();
    });
    u = user({ MCP_AUTH_STORE: "file", PW });
    const r = await u.run(["bootstrap", "openproject", "--url", op, "--create", "--admin-password-env", "PW", ...CC]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("OpenProject redirected to another site");
    expect(seen).toHaveLength(0);
    expect(r.stderr).not.toContain("SESSION-COOKIE-VALUE");
    expect(r.stderr).not.toContain(PW);
  });
});

describe("bootstrap openproject --create: redirect URIs (in-process)", () => {
  let t: TestContext | undefined;
  afterEach(async () => {
    t?.cleanup();
    t = undefined;
    await s?.close();
    s = undefined;
  });
  const run = async (args: string[]) => {
    s = await startOpenProject();
    t = createTestContext({ env: { PW } });
    const code = await t.run(["bootstrap", "openproject", "--url", s.url, "--create", "--admin-user", "admin", "--admin-password-env", "PW", "--profile", "op", "--no-verify", ...args]);
    return { code, err: t.stderr() };
  };

  it.each([
    ["a plain-http redirect to another machine", "http://mcp.example.invalid/callback"],
    ["a redirect with a fragment", "https://mcp.example.invalid/callback#x"],
  ])("%s is refused before signing in or submitting anything (exit 2), with the ways out", async (_what, uri) => {
    const r = await run(["--redirect-uri", uri]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`OpenProject would refuse the redirect URI ${uri}`);
    expect(r.err).toContain("--grant client_credentials --client-credentials-user LOGIN");
    expect(s!.posts).toHaveLength(0);
    expect(s!.log.some((l) => l.path === "/login")).toBe(false);
  });

  it("a form OpenProject refuses after the submit: exit 2 with its flash banner in the admin's language, nothing created", async () => {
    s = await startOpenProject({ locale: "de" });
    t = createTestContext({ env: { PW } });
    const code = await t.run(["bootstrap", "openproject", "--url", s.url, "--create", "--admin-user", "admin", "--admin-password-env", "PW", "--name", " ", "--no-verify"]);
    expect(code).toBe(2);
    expect(t.stderr()).toContain('OpenProject refused to create the application " ": Dieses OAuth-Anwendung-Objekt konnte nicht gespeichert werden: 1 Fehler. Bei dem folgenden Feld traten Fehler auf: Name muss ausgefüllt werden.');
    expect(s.apps.size).toBe(0);
  });

  it.each(["https://mcp.example.invalid/callback", "http://localhost:40111/callback", "http://[::1]:40111/callback"])("%s is taken as OpenProject takes it", async (uri) => {
    const r = await run(["--redirect-uri", uri]);
    expect(r.code, r.err).toBe(0);
    expect([...s!.apps.values()][0]!.redirectUris).toEqual([uri]);
  });
});

describe("OpenProject's redirect-URI rule: mcp-auth's check and the simulator agree with upstream", () => {
  // Upstream: Doorkeeper 5.8 RedirectUriValidator + force_ssl_in_redirect_uri { !SecureContextUriValidator.secure_context_uri?(uri) }.
  const table: Array<[string, boolean]> = [
    ["http://127.0.0.1:33418/callback", true],
    ["http://127.8.9.10/cb", true],
    ["http://localhost:3000/cb", true],
    ["http://app.localhost/cb", true],
    ["http://[::1]:8080/cb", true],
    ["https://mcp.example.invalid/cb", true],
    ["urn:ietf:wg:oauth:2.0:oob", true],
    ["http://mcp.example.invalid/cb", false],
    ["http://10.0.0.1/cb", false],
    ["http://LOCALHOST/cb", false], // Ruby compares the host as written
    ["http://127.000.0.1/cb", false], // IPAddr refuses zero-filled octets
    ["http://localhost.example.invalid/cb", false],
    ["https://mcp.example.invalid/cb#frag", false],
  ];
  let sim: OpenProjectSim;
  beforeAll(async () => {
    sim = await startOpenProject();
  });
  afterAll(() => sim.close());

  it.each(table)("%s → accepted: %s", async (uri, ok) => {
    expect(redirectUriProblem(uri) === undefined).toBe(ok);
    // The simulator, through its form, as an admin's browser would submit it.
    const b = browser(sim.url);
    await b("/login", { username: "admin", password: PW, authenticity_token: (await b("/login")).token! });
    const form = await b("/admin/oauth/applications/new");
    const res = await b("/admin/oauth/applications", { authenticity_token: form.token!, "doorkeeper_application[name]": `r ${uri}`, "doorkeeper_application[redirect_uri]": uri });
    expect(res.status).toBe(ok ? 302 : 422);
  });
});

describe("shownCredentials: the client id and secret by the show page's structure", () => {
  it.each([
    ["current", "en"],
    ["current", "de"],
    ["17.1", "en"],
    ["17.1", "de"],
  ] as const)("%s release, %s labels: the first cell's value is the id, the second the once-shown secret", async (release, locale) => {
    const sim = await startOpenProject({ release, locale });
    try {
      const b = browser(sim.url);
      await b("/login", { username: "admin", password: PW, authenticity_token: (await b("/login")).token! });
      const prefix = release === "17.1" ? "application" : "doorkeeper_application";
      const form = await b("/admin/oauth/applications/new");
      const made = await b("/admin/oauth/applications", { authenticity_token: form.token!, [`${prefix}[name]`]: "x", [`${prefix}[redirect_uri]`]: OOB, [`${prefix}[confidential]`]: "1" });
      const shown = await b(made.location!);
      const app = [...sim.apps.values()][0]!;
      const got = shownCredentials(shown.html);
      expect(got.clientId).toBe(app.uid);
      expect(sha(got.clientSecret!)).toBe(app.secretHash);
      // A second visit has no secret: the cell after the id is then no copyable value of its own.
      expect(shownCredentials((await b(made.location!)).html)).toEqual({ clientId: app.uid, clientSecret: undefined });
    } finally {
      await sim.close();
    }
  });

  const cell = (v: string) => `<div class="attributes-key-value--key">K</div><div class="attributes-key-value--value-container"><div class="attributes-key-value--value -text">${v}</div></div>`;
  const copy = (v: string) => `<div class="d-flex"><div class="ellipsis"><span>${v}</span></div><div class="ml-1"><clipboard-copy value="${v}"></clipboard-copy></div></div>`;
  it.each([
    ["an id with a control character", cell(copy("abc&#x1b;[2Jdef")) + cell(copy("s".repeat(43))), { clientId: undefined, clientSecret: "s".repeat(43) }],
    ["an id longer than 256 characters", cell(copy("i".repeat(257))) + cell(copy("s".repeat(43))), { clientId: undefined, clientSecret: "s".repeat(43) }],
    ["an id with a space", cell("<span>a b</span>") + cell("<p><code>" + "s".repeat(43) + "</code></p>"), { clientId: undefined, clientSecret: "s".repeat(43) }],
    ["a plain-text second cell (Scopes) is no secret", cell("<span>abc</span>") + cell("<span>api_v3, mcp</span>"), { clientId: "abc", clientSecret: undefined }],
    ["a URL in the second cell is no secret", cell(copy("abc")) + cell(copy("https://op.example.invalid/oauth/token")), { clientId: "abc", clientSecret: undefined }],
    ["no attribute cells at all", "<dl><dt>Client ID</dt><dd>abc</dd></dl>", { clientId: undefined, clientSecret: undefined }],
  ])("%s", (_what, html, want) => {
    expect(shownCredentials(`<main><div class="attributes-key-value">${html}</div></main>`)).toEqual(want);
  });
});

/** A minimal cookie-keeping client, to drive the simulator without mcp-auth's own web code. */
function browser(base: string) {
  let cookie = "";
  return async (path: string, body?: Record<string, string>) => {
    const res = await fetch(path.startsWith("http") ? path : `${base}${path}`, { method: body ? "POST" : "GET", redirect: "manual", headers: { cookie, ...(body && { "content-type": "application/x-www-form-urlencoded" }) }, body: body && new URLSearchParams(body).toString() });
    const set = res.headers.get("set-cookie");
    if (set) cookie = set.split(";")[0]!;
    const html = await res.text();
    return { status: res.status, location: res.headers.get("location"), html, token: /name="authenticity_token" value="([^"]+)"/.exec(html)?.[1] ?? /name="csrf-token" content="([^"]+)"/.exec(html)?.[1] };
  };
}
