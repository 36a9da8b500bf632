import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { user, type Sandboxed } from "../helpers/cli.js";
import { startOpenProject, type OpenProjectOptions, type OpenProjectSim } from "../simulators/openproject.js";

/**
 * `bootstrap openproject --create` through the built CLI against the OpenProject simulator's admin web
 * UI (login + CSRF + the OAuth-applications form and show page, both markups; ../shared/research/idp-apis.md §4.1).
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
  it.each(["primer", "classic"] as const)("%s markup: signs in, fills the form the server serves, reads the once-shown secret, and the token opens /mcp", async (markup) => {
    await setup({ markup });
    const r = await create(CC);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('OpenProject: created — profile "op"');
    expect(s!.apps.size).toBe(1);
    const app = [...s!.apps.values()][0]!;
    // Server side: what an admin would have made by hand.
    expect(app).toMatchObject({ name: "MCP client", confidential: true, redirectUris: [OOB], clientCredentialsUserId: 2 });
    expect(app.scopes).toEqual(["api_v3", "mcp"]);
    const prefix = markup === "classic" ? "application" : "doorkeeper_application";
    const posted = s!.posts[0]!.fields.map(([k]) => k);
    expect(posted).toContain(`${prefix}[name]`);
    expect(posted).toContain("authenticity_token");
    expect(posted.some((k) => k.startsWith(markup === "classic" ? "doorkeeper_application[" : "application["))).toBe(false);
    if (markup === "primer") expect(s!.posts[0]!.fields).toContainEqual([`${prefix}[enabled]`, "1"]); // the box a browser leaves ticked
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

  it("production refuses an http loopback redirect URI: exit 2 with OpenProject's words and the OOB/https alternatives", async () => {
    await setup({ production: true });
    const r = await create([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("OpenProject refused the redirect URI http://127.0.0.1:33418/callback: Redirect URI must be an HTTPS/SSL URI.");
    expect(r.stderr).toContain("--grant client_credentials --client-credentials-user LOGIN");
    expect(r.stderr).toContain(OOB);
    expect(s!.apps.size).toBe(0);
  });

  it("authorization_code where http redirects are allowed: the loopback redirect is registered and the secret checked", async () => {
    await setup({ production: false, markup: "classic" });
    const r = await create([]);
    expect(r.code, r.stderr).toBe(0);
    expect([...s!.apps.values()][0]!.redirectUris).toEqual(["http://127.0.0.1:33418/callback"]);
    expect(r.stderr).toContain("✓ client secret: accepted by /oauth/token");
    expect(config().profiles.op).toMatchObject({ grant: "authorization_code", redirectPort: 33418 });
  });

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
    expect(r.stderr).toContain("does not show the client secret where mcp-auth looks for it; the application was deleted again");
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
