import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenProject, type OpenProjectSim } from "../simulators/openproject.js";

/** The OpenProject simulator keeps to the upstream behaviour its header names (docs/idp/openproject.md). */
let s: OpenProjectSim;
beforeAll(async () => {
  s = await startOpenProject();
});
afterAll(() => s.close());

const REDIRECT = "http://127.0.0.1:33418/callback";
const OOB = "urn:ietf:wg:oauth:2.0:oob";
const form = (o: Record<string, string>) => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(o).toString() });
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

describe("OpenProject simulator: OAuth, API v3 and MCP", () => {
  it("has no create endpoint: applications are made in the admin UI", async () => {
    expect((await fetch(`${s.url}/.well-known/oauth-authorization-server`)).status).toBe(404);
    expect((await fetch(`${s.url}/.well-known/openid-configuration`)).status).toBe(404);
    const admin = s.createApiToken("admin");
    const post = await fetch(`${s.url}/api/v3/oauth_applications`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: "{}" });
    expect(post.status).toBe(404);
    expect(await post.json()).toMatchObject({ _type: "Error", errorIdentifier: "urn:openproject-org:api:v3:errors:NotFound" });
  });

  it("GET /api/v3/oauth_applications/{id} is admin-only HAL", async () => {
    const app = s.createApp({ name: "hal", redirectUris: [REDIRECT, "urn:ietf:wg:oauth:2.0:oob"], scopes: ["api_v3", "mcp"] });
    const asAdmin = await fetch(`${s.url}/api/v3/oauth_applications/${app.id}`, { headers: { authorization: `Bearer ${s.createApiToken("admin")}` } });
    const text = await asAdmin.text();
    expect(text).not.toContain(app.clientSecret); // the secret is shown once, at creation
    expect(JSON.parse(text)).toMatchObject({ _type: "OAuthApplication", name: "hal", clientId: app.clientId, confidential: true, scopes: ["api_v3", "mcp"], _links: { redirectUri: [{ href: REDIRECT }, { href: "urn:ietf:wg:oauth:2.0:oob" }] } });
    const asAlice = await fetch(`${s.url}/api/v3/oauth_applications/${app.id}`, { headers: { authorization: `Bearer ${s.createApiToken("alice")}` } });
    expect(asAlice.status).toBe(403);
  });

  it("/oauth/token: form content type, Doorkeeper errors, client_credentials only with a client-credentials user", async () => {
    const app = s.createApp({ name: "cc", redirectUris: [REDIRECT], scopes: ["api_v3", "mcp"] });
    const json = await fetch(`${s.url}/oauth/token`, { method: "POST", headers: { "content-type": "application/json", authorization: basic(app.clientId, app.clientSecret) }, body: '{"grant_type":"client_credentials"}' });
    expect([json.status, ((await json.json()) as { error: string }).error]).toEqual([400, "invalid_request"]);
    const bad = await fetch(`${s.url}/oauth/token`, { ...form({ grant_type: "client_credentials" }), headers: { ...form({}).headers, authorization: basic(app.clientId, "wrong") } });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: "invalid_client" });
    const noUser = await fetch(`${s.url}/oauth/token`, { ...form({ grant_type: "client_credentials" }), headers: { ...form({}).headers, authorization: basic(app.clientId, app.clientSecret) } });
    expect(await noUser.json()).toMatchObject({ error: "unauthorized_client" });
    const withUser = s.createApp({ name: "cc2", redirectUris: [REDIRECT], scopes: ["api_v3"], clientCredentialsUser: "alice" });
    const ok = await fetch(`${s.url}/oauth/token`, form({ grant_type: "client_credentials", client_id: withUser.clientId, client_secret: withUser.clientSecret }));
    expect(await ok.json()).toMatchObject({ token_type: "Bearer", expires_in: 7200, scope: "api_v3", created_at: expect.any(Number) });
    const scope = await fetch(`${s.url}/oauth/token`, form({ grant_type: "client_credentials", scope: "api_v3 mcp", client_id: withUser.clientId, client_secret: withUser.clientSecret }));
    expect(await scope.json()).toMatchObject({ error: "invalid_scope" });
  });

  it("authorization code + PKCE, scopes bounded by the app's, the OOB URN, refresh", async () => {
    const app = s.createApp({ name: "ac", redirectUris: [REDIRECT, "urn:ietf:wg:oauth:2.0:oob"], scopes: ["api_v3"] });
    const verifier = randomBytes(32).toString("base64url");
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const q = (o: Record<string, string>) => `${s.url}/oauth/authorize?${new URLSearchParams({ response_type: "code", client_id: app.clientId, code_challenge: challenge, code_challenge_method: "S256", ...o })}`;
    const denied = await fetch(q({ redirect_uri: REDIRECT, scope: "api_v3 mcp", state: "x" }), { redirect: "manual" });
    expect(new URL(denied.headers.get("location")!).searchParams.get("error")).toBe("invalid_scope");
    expect((await fetch(q({ redirect_uri: "http://127.0.0.1:1/other" }), { redirect: "manual" })).status).toBe(400);
    // Doorkeeper's URIChecker: a loopback IP redirect matches on any port (RFC 8252 §7.3), localhost does not.
    expect(new URL((await fetch(q({ redirect_uri: "http://127.0.0.1:40999/callback" }), { redirect: "manual" })).headers.get("location")!).port).toBe("40999");
    const lh = s.createApp({ name: "lh", redirectUris: ["http://localhost:33418/callback"], scopes: ["api_v3"] });
    expect((await fetch(`${s.url}/oauth/authorize?${new URLSearchParams({ response_type: "code", client_id: lh.clientId, redirect_uri: "http://localhost:40999/callback" })}`, { redirect: "manual" })).status).toBe(400);
    const oob = await (await fetch(q({ redirect_uri: "urn:ietf:wg:oauth:2.0:oob" }))).text();
    expect(oob).toMatch(/id="authorization_code">[\w-]+</);
    const code = new URL((await fetch(q({ redirect_uri: REDIRECT }), { redirect: "manual" })).headers.get("location")!).searchParams.get("code")!;
    const wrongVerifier = await fetch(`${s.url}/oauth/token`, form({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: "nope", client_id: app.clientId, client_secret: app.clientSecret }));
    expect(await wrongVerifier.json()).toMatchObject({ error: "invalid_grant" });
    const code2 = new URL((await fetch(q({ redirect_uri: REDIRECT }), { redirect: "manual" })).headers.get("location")!).searchParams.get("code")!;
    const t = (await (await fetch(`${s.url}/oauth/token`, form({ grant_type: "authorization_code", code: code2, redirect_uri: REDIRECT, code_verifier: verifier, client_id: app.clientId, client_secret: app.clientSecret }))).json()) as Record<string, string>;
    expect(t).toMatchObject({ token_type: "Bearer", scope: "api_v3", refresh_token: expect.any(String) });
    const r = await fetch(`${s.url}/oauth/token`, form({ grant_type: "refresh_token", refresh_token: t.refresh_token!, client_id: app.clientId, client_secret: app.clientSecret }));
    expect(r.status).toBe(200);
    // an api_v3-only token reaches the API but not MCP
    expect((await fetch(`${s.url}/api/v3/users/me`, { headers: { authorization: `Bearer ${t.access_token}` } })).status).toBe(200);
    const mcp = await fetch(`${s.url}/mcp`, { method: "POST", headers: { authorization: `Bearer ${t.access_token}` }, body: '{"jsonrpc":"2.0","id":1,"method":"initialize"}' });
    expect(mcp.status).toBe(401);
    expect(mcp.headers.get("www-authenticate")).toContain("insufficient_scope");
  });

  it("/api/v3/users/me: API token as Bearer or Basic apikey:, HAL 401 otherwise", async () => {
    const tok = s.createApiToken("alice");
    expect(await (await fetch(`${s.url}/api/v3/users/me`, { headers: { authorization: `Bearer ${tok}` } })).json()).toMatchObject({ _type: "User", login: "alice" });
    expect(await (await fetch(`${s.url}/api/v3/users/me`, { headers: { authorization: basic("apikey", tok) } })).json()).toMatchObject({ login: "alice" });
    const no = await fetch(`${s.url}/api/v3/users/me`, { headers: { authorization: basic("alice", tok) } });
    expect(no.status).toBe(401);
    expect(await no.json()).toEqual({ _type: "Error", errorIdentifier: "urn:openproject-org:api:v3:errors:Unauthenticated", message: "You need to be authenticated to access this resource." });
  });

  it("/mcp: 401 without a token, 404 when switched off", async () => {
    expect((await fetch(`${s.url}/mcp`, { method: "POST", body: "{}" })).status).toBe(401);
    s.setMcp(false);
    try {
      expect((await fetch(`${s.url}/mcp`, { method: "POST", headers: { authorization: `Bearer ${s.createApiToken("alice")}` }, body: "{}" })).status).toBe(404);
    } finally {
      s.setMcp(true);
    }
  });
});

describe("OpenProject simulator: the admin web UI (applications_controller.rb, account_controller.rb)", () => {
  /** A minimal cookie-keeping client, to check the simulator without mcp-auth's own code. */
  function browser(base: string) {
    let cookie = "";
    return async (path: string, body?: Record<string, string>) => {
      const res = await fetch(`${base}${path}`, { method: body ? "POST" : "GET", redirect: "manual", headers: { cookie, ...(body && { "content-type": "application/x-www-form-urlencoded" }) }, body: body && new URLSearchParams(body).toString() });
      const set = res.headers.get("set-cookie");
      if (set) cookie = set.split(";")[0]!;
      const html = await res.text();
      return { status: res.status, location: res.headers.get("location"), html, token: /name="authenticity_token" value="([^"]+)"/.exec(html)?.[1] ?? /name="csrf-token" content="([^"]+)"/.exec(html)?.[1] };
    };
  }

  it("CSRF: a login without the session's authenticity_token is 422; a wrong password re-renders the login with 422; with both right, a new session and a redirect", async () => {
    const b = browser(s.url);
    const login = await b("/login");
    expect((await b("/login", { username: "admin", password: "admin-password", authenticity_token: "forged" })).status).toBe(422);
    const wrong = await b("/login", { username: "admin", password: "nope", authenticity_token: (await b("/login")).token! });
    expect(wrong.status).toBe(422);
    expect(wrong.html).toContain('name="password"');
    expect(wrong.html).toContain('<p class="Banner-title" data-target="x-banner.titleText">Invalid user or password</p>');
    const ok = await b("/login", { username: "admin", password: "admin-password", authenticity_token: (await b("/login")).token ?? login.token! });
    expect(ok).toMatchObject({ status: 302, location: "/my/page" });
    expect((await b("/admin/oauth/applications")).status).toBe(200);
  });

  it("require_admin, the markup's own prefix, and the secret shown once", async () => {
    const anon = browser(s.url);
    expect((await anon("/admin/oauth/applications")).location).toMatch(/^\/login\?back_url=/);
    const b = browser(s.url);
    await b("/login", { username: "admin", password: "admin-password", authenticity_token: (await b("/login")).token! });
    const form = await b("/admin/oauth/applications/new");
    expect(form.html).toContain('name="doorkeeper_application[name]"'); // primer by default
    const wrong = await b("/admin/oauth/applications", { authenticity_token: form.token!, "application[name]": "x", "application[redirect_uri]": "urn:ietf:wg:oauth:2.0:oob" });
    expect(wrong.status).toBe(400); // params.expect(doorkeeper_application: …)
    const made = await b("/admin/oauth/applications", { authenticity_token: form.token!, "doorkeeper_application[name]": "once", "doorkeeper_application[redirect_uri]": "urn:ietf:wg:oauth:2.0:oob", "doorkeeper_application[confidential]": "1" });
    expect(made.status).toBe(302);
    const first = await b(made.location!);
    expect(first.html).toContain("Client secret");
    const second = await b(made.location!);
    expect(second.html).not.toContain("Client secret");
    // force_ssl_in_redirect_uri = "not a secure context": loopback http passes, other http is refused in OpenProject's words.
    expect((await b("/admin/oauth/applications", { authenticity_token: form.token!, "doorkeeper_application[name]": "h", "doorkeeper_application[redirect_uri]": REDIRECT })).status).toBe(302);
    const http = await b("/admin/oauth/applications", { authenticity_token: form.token!, "doorkeeper_application[name]": "h2", "doorkeeper_application[redirect_uri]": "http://mcp.example.invalid/cb" });
    expect(http.status).toBe(422);
    expect(http.html).toContain('Redirect URI is not providing a &quot;Secure Context&quot;. Either use HTTPS or a loopback address, such as localhost.');
  });

  it("the user-consent stage: authenticated but not signed in until the consent is given", async () => {
    const sim = await startOpenProject({ consent: true });
    try {
      const b = browser(sim.url);
      const held = await b("/login", { username: "admin", password: "admin-password", authenticity_token: (await b("/login")).token! });
      expect(held).toMatchObject({ status: 302, location: "/account/consent" });
      const consent = await b("/account/consent");
      expect(consent.html).toContain('action="/account/confirm_consent"');
      expect(consent.html).toContain('name="consent_check"');
      expect((await b("/admin/oauth/applications")).location).toMatch(/\/login\?back_url=/);
      const done = await b("/account/confirm_consent", { authenticity_token: consent.token!, consent_check: "1" });
      expect(done.status).toBe(302);
      expect((await b("/admin/oauth/applications")).status).toBe(200);
    } finally {
      await sim.close();
    }
  });

  it("release 17.1: the application[...] form (params.require(:application)), the id in a <span>, the secret in a <code>", async () => {
    const sim = await startOpenProject({ release: "17.1", locale: "de" });
    try {
      const b = browser(sim.url);
      await b("/login", { username: "admin", password: "admin-password", authenticity_token: (await b("/login")).token! });
      const form = await b("/admin/oauth/applications/new");
      expect(form.html).toContain('name="application[name]"');
      expect(form.html).not.toContain('value="mcp"'); // no MCP server before 17.2
      expect((await b("/admin/oauth/applications", { authenticity_token: form.token!, "doorkeeper_application[name]": "x", "doorkeeper_application[redirect_uri]": OOB })).status).toBe(400);
      const made = await b("/admin/oauth/applications", { authenticity_token: form.token!, "application[name]": "x", "application[redirect_uri]": OOB });
      const shown = await b(made.location!);
      const app = [...sim.apps.values()][0]!;
      expect(shown.html).toContain(`<div class="attributes-key-value--key">Client-ID</div><div class="attributes-key-value--value-container"><div class="attributes-key-value--value -text"><span>${app.uid}</span>`);
      expect(shown.html).toMatch(/<div class="attributes-key-value--key">Clientschlüssel<\/div>.*<code>[\w-]{43}<\/code>/);
    } finally {
      await sim.close();
    }
  });
});
