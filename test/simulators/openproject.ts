/**
 * Test simulator of OpenProject's OAuth (Doorkeeper), API v3 and MCP endpoints.
 *
 * Spec: ../shared/research/idp-apis.md §4 (contract list §4.4) and seed 002 (the MCP server admin guide).
 * Implemented, each with its section:
 *   - no RFC 8414 metadata, no DCR (§4.1: "treat as unsupported") → 404;
 *   - GET /oauth/authorize: code + PKCE (S256), scopes checked against the app's, OOB URN (§4.1, §4.2);
 *     the resource owner is the simulator's signed-in user (the admin UI and login are not simulated);
 *   - POST /oauth/token: authorization_code, refresh_token, client_credentials (only with a
 *     client-credentials user), form content type enforced, Doorkeeper's error bodies and response shape (§4.1, §4.2);
 *   - GET /api/v3/oauth_applications/{id} (admin, HAL) and no create endpoint (§4.1);
 *   - GET /api/v3/users/me: OAuth bearer, API-token bearer, Basic `apikey:<token>`; HAL errors (§4.2);
 *   - POST /mcp (JSON-RPC): 401 without a token carrying `mcp`, 404 when MCP is disabled (§4.3, §4.4.4);
 *   - seeded apps through a test-only back door returning the client id and secret once (§4.4.5);
 *   - the admin web UI that creates OAuth applications (§4.1: `app/controllers/oauth/applications_controller.rb`,
 *     `before_action :require_admin`, create → flash `_application_secret` → redirect to show):
 *       GET/POST /login as `app/views/account/_password_login_form.html.erb` renders it (username,
 *       password, back_url) with Rails' `authenticity_token` checked against the session cookie
 *       `_open_project_session` (a wrong or missing token: 422, Rails' InvalidAuthenticityToken), a
 *       fresh session id on login, "Invalid user or password" re-rendering the login page;
 *       GET /admin/oauth/applications (index), /new, POST create, GET /{id} (show, the secret once),
 *       POST /{id} with `_method=delete` — in two markups: `classic` (`application[...]` fields,
 *       `app/views/oauth/applications/_form.html.erb` and `show.html.erb`) and `primer`
 *       (`doorkeeper_application[...]`, `app/forms/oauth/applications_form.rb`, controller
 *       `params.expect(doorkeeper_application: …)`: the other prefix is a 400 ParameterMissing);
 *       Doorkeeper's `force_ssl_in_redirect_uri` in production: an http redirect URI is refused with
 *       "Redirect URI must be an HTTPS/SSL URI." (§4.1 pitfall; Doorkeeper en.yml `secured_uri`), the OOB URN accepted;
 *       GET /api/v3/users?filters=[{"login":…}] with the session cookie and X-Requested-With (UNVERIFIED header rule);
 *       switches for a login that needs 2FA, a forced password change, and an SSO-only login page.
 *   UNVERIFIED and chosen here: the primer show page (labels in <dt>, values in <clipboard-copy value>),
 *   the flash/error markup, the "mcp" scope being absent from the form while MCP is disabled.
 * Not implemented: external-IdP JWTs, token revocation.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { basicCredentials, serve } from "./common.js";
import { createHash, randomBytes } from "node:crypto";

export interface OpenProjectOptions {
  /** MCP server switched on (experimental setting / Enterprise add-on, §4.3). Default true. */
  mcp?: boolean;
  /** "Enable API tokens" (§4.2). Default true. */
  apiTokens?: boolean;
  /** Which admin UI markup is served (see the header). Default "primer". */
  markup?: "classic" | "primer";
  /** Rails production: Doorkeeper refuses http redirect URIs (§4.1). Default true. */
  production?: boolean;
  /** Passwords of the seeded users (admin, alice). Default admin → "admin-password", alice → "alice-password". */
  passwords?: Record<string, string>;
  /** The web login then asks for a second factor. */
  twoFactor?: boolean;
  /** The web login then asks the admin to change the password (first sign-in). */
  mustChangePassword?: boolean;
  /** The login page offers single sign-on only (no password form). */
  ssoOnly?: boolean;
  /** The show page after create shows no secret (a markup mcp-auth cannot read). */
  hideSecret?: boolean;
}

export interface OpUser {
  id: number;
  login: string;
  admin: boolean;
}

export interface OpApp {
  id: number;
  name: string;
  uid: string;
  /** Doorkeeper `hash_application_secrets` (§4.1): only a hash is kept. */
  secretHash: string;
  redirectUris: string[];
  scopes: string[];
  confidential: boolean;
  clientCredentialsUserId?: number;
}

interface IssuedToken {
  appId?: number;
  userId: number;
  scopes: string[];
  kind: "oauth" | "api";
}

export interface OpenProjectSim {
  url: string;
  users: OpUser[];
  apps: Map<number, OpApp>;
  /** Requests as received (method, path, content type) for assertions. */
  log: Array<{ method: string; path: string; auth?: string }>;
  /** Form posts to the admin UI as received (field name → values), for assertions. */
  posts: Array<{ path: string; fields: Array<[string, string]> }>;
  /** §4.4.5: the admin UI's "create", returning the once-shown secret. */
  createApp(a: { name: string; redirectUris: string[]; scopes?: string[]; confidential?: boolean; clientCredentialsUser?: string }): { id: number; clientId: string; clientSecret: string };
  /** A personal API token (`opapi-…`, §4.2) for a user. */
  createApiToken(login: string): string;
  /** Signs the user in for /oauth/authorize. */
  signIn(login: string): void;
  setMcp(on: boolean): void;
  close(): Promise<void>;
}

const hash = (s: string) => createHash("sha256").update(s).digest("hex");
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
const OOB = "urn:ietf:wg:oauth:2.0:oob"; // native_redirect_uri (§4.1)
const ERR = "urn:openproject-org:api:v3:errors:";

// Doorkeeper's en.yml texts (§4.2: "Doorkeeper response shape").
const DK = {
  invalid_client: "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
  invalid_grant: "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
  invalid_request: "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.",
  invalid_scope: "The requested scope is invalid, unknown, or malformed.",
  unauthorized_client: "The client is not authorized to perform this request using this method.",
  unsupported_grant_type: "The authorization grant type is not supported by the authorization server.",
};

export async function startOpenProject(o: OpenProjectOptions = {}): Promise<OpenProjectSim> {
  let mcpOn = o.mcp ?? true;
  const users: OpUser[] = [
    { id: 1, login: "admin", admin: true },
    { id: 2, login: "alice", admin: false },
  ];
  const apps = new Map<number, OpApp>();
  const tokens = new Map<string, IssuedToken>();
  const refresh = new Map<string, IssuedToken>();
  const codes = new Map<string, { appId: number; userId: number; scopes: string[]; redirectUri: string; challenge?: string }>();
  const log: OpenProjectSim["log"] = [];
  let signedIn: OpUser | undefined = users[0];
  let nextAppId = 1;
  const markup = o.markup ?? "primer";
  const prefix = markup === "classic" ? "application" : "doorkeeper_application";
  const passwords: Record<string, string> = o.passwords ?? { admin: "admin-password", alice: "alice-password" };
  const sessions = new Map<string, { csrf: string; userId?: number; flash?: { notice?: string; secret?: string; error?: string } }>();
  const posts: OpenProjectSim["posts"] = [];

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": typeof body === "string" ? "text/html; charset=utf-8" : "application/json; charset=utf-8", ...headers });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  };
  // HAL error (§4.2).
  const hal = (res: ServerResponse, status: number, id: string, message: string, headers: Record<string, string> = {}) =>
    send(res, status, { _type: "Error", errorIdentifier: `${ERR}${id}`, message }, { ...headers, "content-type": "application/hal+json; charset=utf-8" });
  const unauthenticated = (res: ServerResponse, headers: Record<string, string> = {}) => hal(res, 401, "Unauthenticated", "You need to be authenticated to access this resource.", headers);
  const dk = (res: ServerResponse, status: number, error: keyof typeof DK) => send(res, status, { error, error_description: DK[error] }, { "cache-control": "no-store" });

  /** The caller's token: OAuth or API-token bearer, or Basic `apikey:<token>` (§4.2). */
  function caller(req: IncomingMessage): IssuedToken | undefined {
    const h = req.headers.authorization ?? "";
    let t: string | undefined;
    if (/^Bearer /i.test(h)) t = h.slice(7).trim();
    else if (/^Basic /i.test(h)) {
      const [user, ...rest] = Buffer.from(h.slice(6), "base64").toString().split(":");
      if (user === "apikey") t = rest.join(":");
    }
    const tok = t ? tokens.get(t) : undefined;
    if (tok?.kind === "api" && o.apiTokens === false) return undefined;
    return tok;
  }

  function issue(appId: number, userId: number, scopes: string[], withRefresh: boolean) {
    const access = randomBytes(32).toString("base64url");
    const rec: IssuedToken = { appId, userId, scopes, kind: "oauth" };
    tokens.set(access, rec);
    const body: Record<string, unknown> = { access_token: access, token_type: "Bearer", expires_in: 7200, scope: scopes.join(" "), created_at: Math.floor(Date.now() / 1000) };
    if (withRefresh) {
      // use_refresh_token (§4.1)
      const r = randomBytes(32).toString("base64url");
      refresh.set(r, rec);
      body.refresh_token = r;
    }
    return body;
  }

  /** Client authentication: Basic, or client_id/client_secret in the form; Doorkeeper's invalid_client → 401. */
  function client(req: IncomingMessage, form: URLSearchParams): OpApp | undefined {
    let id = form.get("client_id") ?? undefined;
    let secret = form.get("client_secret") ?? undefined;
    const h = req.headers.authorization ?? "";
    const basic = /^Basic /i.test(h) ? basicCredentials(req) : undefined;
    if (basic) ({ id, secret } = basic);
    const app = [...apps.values()].find((a) => a.uid === id);
    if (!app) return undefined;
    if (app.confidential && (!secret || hash(secret) !== app.secretHash)) return undefined;
    return app;
  }

  const served = await serve(async (req, res, text) => {
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    log.push({ method: req.method ?? "", path, auth: req.headers.authorization?.split(" ")[0] });

    // §4.1: no metadata, no DCR on OpenProject.
    if (path.startsWith("/.well-known/")) return send(res, 404, "<h1>404</h1>");

    if (path === "/oauth/authorize" && req.method === "GET") {
      const q = url.searchParams;
      const app = [...apps.values()].find((a) => a.uid === q.get("client_id"));
      const redirectUri = q.get("redirect_uri") ?? "";
      // Doorkeeper renders an error page (no redirect) for an unknown client or redirect URI.
      if (!app) return send(res, 401, "<h1>An error has occurred</h1><p>" + DK.invalid_client + "</p>");
      if (!app.redirectUris.includes(redirectUri)) return send(res, 400, "<h1>An error has occurred</h1><p>The requested redirect uri is malformed or doesn't match client redirect URI.</p>");
      if (!signedIn) return send(res, 302, "", { location: "/login" });
      const redirect = (params: Record<string, string>) => {
        if (redirectUri === OOB) return send(res, 200, `<h1>Authorization code</h1><code id="authorization_code">${params.code ?? params.error}</code>`);
        const to = new URL(redirectUri);
        for (const [k, v] of Object.entries({ ...params, ...(q.get("state") ? { state: q.get("state")! } : {}) })) to.searchParams.set(k, v);
        return send(res, 302, "", { location: to.href });
      };
      if (q.get("response_type") !== "code") return redirect({ error: "unsupported_response_type" });
      // default_scopes :api_v3, enforce_configured_scopes; the app's own scopes bound the request (§4.1).
      const scopes = (q.get("scope") ?? "api_v3").split(/\s+/).filter(Boolean);
      if (!scopes.every((s) => app.scopes.includes(s))) return redirect({ error: "invalid_scope", error_description: DK.invalid_scope });
      const method = q.get("code_challenge_method");
      if (q.get("code_challenge") && method !== "S256" && method !== "plain") return redirect({ error: "invalid_request", error_description: DK.invalid_request });
      const code = randomBytes(24).toString("base64url");
      codes.set(code, { appId: app.id, userId: signedIn.id, scopes, redirectUri, challenge: q.get("code_challenge") ?? undefined });
      return redirect({ code });
    }

    if (path === "/oauth/token") {
      if (req.method !== "POST") return send(res, 404, "<h1>404</h1>");
      // enforce_content_type (§4.1)
      if (!(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) return dk(res, 400, "invalid_request");
      const form = new URLSearchParams(text);
      const grant = form.get("grant_type");
      if (!["authorization_code", "refresh_token", "client_credentials"].includes(grant ?? "")) return dk(res, 400, "unsupported_grant_type");
      const app = client(req, form);
      if (!app) return dk(res, 401, "invalid_client");
      if (grant === "authorization_code") {
        const c = codes.get(form.get("code") ?? "");
        if (!c || c.appId !== app.id || c.redirectUri !== form.get("redirect_uri")) return dk(res, 400, "invalid_grant");
        if (c.challenge && createHash("sha256").update(form.get("code_verifier") ?? "").digest("base64url") !== c.challenge) return dk(res, 400, "invalid_grant");
        codes.delete(form.get("code")!);
        return send(res, 200, issue(app.id, c.userId, c.scopes, true), { "cache-control": "no-store" });
      }
      if (grant === "refresh_token") {
        const r = refresh.get(form.get("refresh_token") ?? "");
        if (!r || r.appId !== app.id) return dk(res, 400, "invalid_grant");
        refresh.delete(form.get("refresh_token")!);
        return send(res, 200, issue(app.id, r.userId, r.scopes, true), { "cache-control": "no-store" });
      }
      // client_credentials: bound to the Client Credentials User (§4.2).
      if (!app.clientCredentialsUserId) return dk(res, 400, "unauthorized_client");
      const scopes = (form.get("scope") ?? "api_v3").split(/\s+/).filter(Boolean);
      if (!scopes.every((s) => app.scopes.includes(s))) return dk(res, 400, "invalid_scope");
      return send(res, 200, issue(app.id, app.clientCredentialsUserId, scopes, false), { "cache-control": "no-store" });
    }


    // ---- the admin web UI (§4.1) ----
    const cookie = /(?:^|;\s*)_open_project_session=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
    let sid = cookie && sessions.has(cookie) ? cookie : undefined;
    const session = () => {
      if (!sid) {
        sid = randomBytes(16).toString("hex");
        sessions.set(sid, { csrf: randomBytes(24).toString("base64") });
      }
      return sessions.get(sid)!;
    };
    const setCookie = () => ({ "set-cookie": `_open_project_session=${sid}; path=/; HttpOnly; SameSite=Lax` });
    const page = (status: number, title: string, inner: string, extra: Record<string, string> = {}) => {
      const sess = session();
      const flash = sess.flash?.notice ? `<div class="op-toast -success"><div class="op-toast--content"><p>${esc(sess.flash.notice)}</p></div></div>` : sess.flash?.error ? `<div class="op-toast -error"><div class="op-toast--content"><p>${esc(sess.flash.error)}</p></div></div>` : "";
      const html = `<!DOCTYPE html><html><head><title>${esc(title)} | OpenProject</title><meta name="csrf-param" content="authenticity_token"><meta name="csrf-token" content="${esc(sess.csrf)}"></head><body>${flash}<main>${inner}</main></body></html>`;
      if (sess.flash) sess.flash = undefined; // a flash lives for one page
      return send(res, status, html, { ...setCookie(), ...extra });
    };
    const redirectTo = (location: string) => send(res, 302, "", { ...setCookie(), location });
    const form = () => new URLSearchParams(text);
    const csrfOk = () => form().get("authenticity_token") === session().csrf;

    if (path === "/login") {
      const sess = session();
      const loginForm = (user = "") =>
        o.ssoOnly
          ? `<a class="auth-provider" href="/auth/oidc">Sign in with SSO</a>`
          : `<form class="-wide-labels" autocomplete="off" action="/login" accept-charset="UTF-8" method="post"><input type="hidden" name="authenticity_token" value="${esc(sess.csrf)}" autocomplete="off" /><input type="hidden" name="back_url" value="${esc(url.searchParams.get("back_url") ?? "")}" /><label for="username">Username</label><input type="text" name="username" id="username" value="${esc(user)}" tabindex="1" /><label for="password">Password</label><input type="password" name="password" id="password" tabindex="2" /><input type="submit" name="login" value="Sign in" class="button -highlight" tabindex="3" /></form>`;
      if (req.method === "GET") return page(200, "Sign in", loginForm());
      if (req.method === "POST") {
        if (!csrfOk()) return send(res, 422, "<h1>The change you wanted was rejected.</h1>"); // Rails InvalidAuthenticityToken
        const f = form();
        const user = users.find((u) => u.login === f.get("username"));
        if (!user || passwords[user.login] !== f.get("password")) {
          sess.flash = { error: "Invalid user or password" };
          return page(200, "Sign in", loginForm(f.get("username") ?? ""));
        }
        if (o.twoFactor) return redirectTo("/two_factor_authentication/request");
        if (o.mustChangePassword) return page(200, "Change password", `<form action="/account/change_password" method="post"><input type="hidden" name="authenticity_token" value="${esc(sess.csrf)}" /><input type="password" name="password" /><input type="password" name="new_password" /><input type="password" name="new_password_confirmation" /></form>`);
        // Rails resets the session on login (a new id, a new CSRF token).
        sessions.delete(sid!);
        sid = undefined;
        session().userId = user.id;
        const back = f.get("back_url");
        return redirectTo(back && back.startsWith("/") ? back : "/my/page");
      }
    }
    if (path === "/my/page" && req.method === "GET") return page(200, "My page", "<h2>My page</h2>");
    if (path === "/two_factor_authentication/request") return page(200, "Two-factor authentication", `<form action="/two_factor_authentication/confirm" method="post"><input type="text" name="otp" /></form>`);

    if (path === "/api/v3/users" && req.method === "GET" && !req.headers.authorization) {
      const me = users.find((u) => u.id === session().userId);
      if (!me || req.headers["x-requested-with"] !== "XMLHttpRequest") return unauthenticated(res);
      if (!me.admin) return hal(res, 403, "MissingPermission", "You are not authorized to access this resource.");
      let login: string | undefined;
      try {
        login = (JSON.parse(url.searchParams.get("filters") ?? "[]") as Array<{ login?: { values?: string[] } }>)[0]?.login?.values?.[0];
      } catch {
        return hal(res, 400, "InvalidQuery", "Filters are invalid.");
      }
      const found = users.filter((u) => login === undefined || u.login === login);
      return send(res, 200, { _type: "Collection", total: found.length, count: found.length, _embedded: { elements: found.map((u) => ({ _type: "User", id: u.id, login: u.login, name: u.login })) } }, { "content-type": "application/hal+json; charset=utf-8" });
    }

    if (path === "/admin/oauth/applications" || path.startsWith("/admin/oauth/applications/")) {
      const me = users.find((u) => u.id === session().userId);
      if (!me) return redirectTo(`/login?back_url=${encodeURIComponent(path)}`);
      if (!me.admin) return page(403, "Forbidden", "<h2>[Error 403] You are not authorized to access this page.</h2>"); // require_admin
      const sess = session();
      const appForm = (values: { name?: string; redirect?: string; scopes?: string[]; confidential?: boolean } = {}, errors: string[] = []) => {
        const offered = ["api_v3", "bcf_v2_1", ...(mcpOn ? ["mcp"] : [])];
        const err = errors.length ? (markup === "classic" ? `<div class="errorExplanation" id="errorExplanation"><ul>${errors.map((e) => `<li>${esc(e)}</li>`).join("")}</ul></div>` : `<div class="FormControl-inlineValidation">${errors.map((e) => `<span>${esc(e)}</span>`).join("")}</div>`) : "";
        const conf = values.confidential ?? true;
        const p = prefix;
        const fields =
          markup === "classic"
            ? `<input name="utf8" type="hidden" value="&#x2713;" />${err}<input size="25" required="required" type="text" value="${esc(values.name ?? "")}" name="${p}[name]" id="application_name" /><textarea required="required" name="${p}[redirect_uri]" id="application_redirect_uri">${esc(values.redirect ?? "")}</textarea>${offered.map((sc) => `<input type="checkbox" name="${p}[scopes][]" id="application_scopes_" value="${sc}"${values.scopes?.includes(sc) ? ' checked="checked"' : ""} />`).join("")}<input name="${p}[confidential]" type="hidden" value="0" /><input type="checkbox" value="1"${conf ? ' checked="checked"' : ""} name="${p}[confidential]" id="application_confidential" /><input type="hidden" name="${p}[client_credentials_user_id]" id="application_client_credentials_user_id" /><op-user-autocompleter data-allow-empty="true" data-name="'${p}[client_credentials_user_id]'"></op-user-autocompleter><input type="submit" name="commit" value="Create" />`
            : `${err}<input type="hidden" name="${p}[enabled]" value="0" /><input type="checkbox" name="${p}[enabled]" value="1" checked /><input type="text" name="${p}[name]" value="${esc(values.name ?? "")}" required /><textarea name="${p}[redirect_uri]" required>${esc(values.redirect ?? "")}</textarea><input type="hidden" name="${p}[confidential]" value="0" /><input type="checkbox" name="${p}[confidential]" value="1"${conf ? " checked" : ""} />${offered.map((sc) => `<input type="checkbox" name="${p}[scopes][]" value="${sc}"${values.scopes?.includes(sc) ? " checked" : ""} />`).join("")}<opce-user-autocompleter data-input-name="&quot;${p}[client_credentials_user_id]&quot;"></opce-user-autocompleter><button type="submit" name="submit">Create</button>`;
        return `<form class="form" action="/admin/oauth/applications" accept-charset="UTF-8" method="post"><input type="hidden" name="authenticity_token" value="${esc(sess.csrf)}" autocomplete="off" />${fields}</form>`;
      };
      if (path === "/admin/oauth/applications" && req.method === "GET") {
        return page(200, "OAuth applications", `<table>${[...apps.values()].map((a) => `<tr><td><a href="/admin/oauth/applications/${a.id}">${esc(a.name)}</a></td></tr>`).join("")}</table><a href="/admin/oauth/applications/new">OAuth application</a>`);
      }
      if (path === "/admin/oauth/applications/new" && req.method === "GET") return page(200, "New OAuth application", appForm());
      if (path === "/admin/oauth/applications" && req.method === "POST") {
        const f = form();
        posts.push({ path, fields: [...f.entries()] });
        if (!csrfOk()) return send(res, 422, "<h1>The change you wanted was rejected.</h1>");
        if (![...f.keys()].some((k) => k.startsWith(`${prefix}[`))) return send(res, 400, `<h1>ActionController::ParameterMissing: param is missing or the value is empty: ${prefix}</h1>`);
        const last = (k: string) => f.getAll(`${prefix}[${k}]`).at(-1);
        const name = last("name") ?? "";
        const redirect = last("redirect_uri") ?? "";
        const scopes = f.getAll(`${prefix}[scopes][]`).filter(Boolean);
        const errors: string[] = [];
        if (!name.trim()) errors.push("Name can't be blank.");
        const uris = redirect.split(/\r?\n/).map((x) => x.trim()).filter(Boolean);
        if (!uris.length) errors.push("Redirect URI can't be blank.");
        for (const uri of uris) {
          if (uri === OOB) continue;
          if (!URL.canParse(uri) || new URL(uri).hash) errors.push("Redirect URI must be an absolute URI.");
          else if ((o.production ?? true) && new URL(uri).protocol !== "https:") errors.push("Redirect URI must be an HTTPS/SSL URI."); // force_ssl_in_redirect_uri
        }
        const ccId = last("client_credentials_user_id");
        if (ccId && !users.some((u) => String(u.id) === ccId)) errors.push("Client credentials user must be an existing user."); // base_contract.rb
        if (errors.length) return page(422, "New OAuth application", appForm({ name, redirect, scopes, confidential: last("confidential") === "1" }, errors));
        const secret = randomBytes(32).toString("base64url");
        const app: OpApp = { id: nextAppId++, name, uid: randomBytes(32).toString("base64url"), secretHash: hash(secret), redirectUris: uris, scopes: scopes.length ? scopes : ["api_v3"], confidential: last("confidential") === "1", clientCredentialsUserId: ccId ? Number(ccId) : undefined };
        apps.set(app.id, app);
        sess.flash = { notice: "Successful creation.", secret };
        return redirectTo(`/admin/oauth/applications/${app.id}`);
      }
      const m = /^\/admin\/oauth\/applications\/(\d+)$/.exec(path);
      const app = m ? apps.get(Number(m[1])) : undefined;
      if (m && !app) return page(404, "Not found", "<h2>[Error 404] The page you were trying to access doesn't exist or has been removed.</h2>");
      if (app && req.method === "POST" && form().get("_method") === "delete") {
        if (!csrfOk()) return send(res, 422, "<h1>The change you wanted was rejected.</h1>");
        apps.delete(app.id);
        sess.flash = { notice: "Successful deletion." };
        return redirectTo("/admin/oauth/applications");
      }
      if (app && req.method === "GET") {
        const secret = o.hideSecret ? undefined : sess.flash?.secret;
        const ccUser = app.clientCredentialsUserId ? users.find((u) => u.id === app.clientCredentialsUserId)?.login : undefined;
        const body =
          markup === "classic"
            ? `<div class="attributes-key-value"><div class="attributes-key-value--key">Client ID</div><div class="attributes-key-value--value-container"><div class="attributes-key-value--value -text"><span>${esc(app.uid)}</span></div></div>${secret ? `<div class="attributes-key-value--key">Client secret</div><div class="attributes-key-value--value-container"><div class="attributes-key-value--value -text"><p><code>${esc(secret)}</code><br/><strong>This is the only time the client secret is shown.</strong></p></div></div>` : ""}<div class="attributes-key-value--key">Scopes</div><div class="attributes-key-value--value-container"><div class="attributes-key-value--value -text"><span>${esc(app.scopes.join(", "))}</span></div></div>${ccUser ? `<div class="attributes-key-value--key">Client credentials user</div><div><a href="/users/${app.clientCredentialsUserId}">${esc(ccUser)}</a></div>` : ""}<div class="attributes-key-value--key">Confidential</div><div><span>${app.confidential ? "Yes" : "No"}</span></div><div class="attributes-key-value--key">Redirect URI</div><div><span>${app.redirectUris.map(esc).join("<br/>")}</span></div></div>`
            : `<dl class="op-application-details"><dt>Client ID</dt><dd><clipboard-copy value="${esc(app.uid)}" aria-label="Copy"></clipboard-copy><span class="text-monospace">${esc(app.uid)}</span></dd>${secret ? `<dt>Client secret</dt><dd><clipboard-copy value="${esc(secret)}" aria-label="Copy"></clipboard-copy><span class="text-monospace">${esc(secret)}</span><p>This is the only time the client secret is shown.</p></dd>` : ""}<dt>Scopes</dt><dd>${esc(app.scopes.join(", "))}</dd><dt>Confidential</dt><dd>${app.confidential ? "Yes" : "No"}</dd><dt>Redirect URI</dt><dd>${app.redirectUris.map(esc).join("<br>")}</dd></dl>`;
        return page(200, `OAuth application - ${app.name}`, `<h2>OAuth application - ${esc(app.name)}</h2><a href="/admin/oauth/applications/${app.id}" data-method="delete" data-confirm="Are you sure?" class="button -danger">Delete</a>${body}`);
      }
      return page(404, "Not found", "<h2>[Error 404]</h2>");
    }

    if (path.startsWith("/api/v3/")) {
      const who = caller(req);
      const apiOk = who && (who.kind === "api" || who.scopes.includes("api_v3"));
      if (path === "/api/v3/oauth_applications" || (path.startsWith("/api/v3/oauth_applications/") && req.method !== "GET")) {
        return hal(res, 404, "NotFound", "The requested resource could not be found."); // §4.1: no create endpoint
      }
      if (!apiOk) return unauthenticated(res);
      const u = users.find((x) => x.id === who.userId)!;
      if (path === "/api/v3/users/me" && req.method === "GET") {
        return send(res, 200, { _type: "User", id: u.id, login: u.login, name: u.login, admin: u.admin, _links: { self: { href: `/api/v3/users/${u.id}` } } }, { "content-type": "application/hal+json; charset=utf-8" });
      }
      const m = /^\/api\/v3\/oauth_applications\/(\d+)$/.exec(path);
      if (m && req.method === "GET") {
        if (!u.admin) return hal(res, 403, "MissingPermission", "You are not authorized to access this resource.");
        const a = apps.get(Number(m[1]));
        if (!a) return hal(res, 404, "NotFound", "The requested resource could not be found.");
        return send(res, 200, {
          _type: "OAuthApplication", id: a.id, name: a.name, clientId: a.uid, confidential: a.confidential, scopes: a.scopes,
          _links: { self: { href: `/api/v3/oauth_applications/${a.id}` }, redirectUri: a.redirectUris.map((href) => ({ href })) },
        }, { "content-type": "application/hal+json; charset=utf-8" });
      }
      return hal(res, 404, "NotFound", "The requested resource could not be found.");
    }

    if (path === "/mcp") {
      if (!mcpOn) return hal(res, 404, "NotFound", "The requested resource could not be found."); // §4.4.4
      const who = caller(req);
      // §4.3: MCP needs a token carrying `mcp`; personal API tokens work too (seed 002).
      if (!who) return unauthenticated(res, { "www-authenticate": 'Bearer realm="OpenProject API", scope="mcp"' });
      if (who.kind === "oauth" && !who.scopes.includes("mcp")) return unauthenticated(res, { "www-authenticate": 'Bearer realm="OpenProject API", error="insufficient_scope", scope="mcp"' });
      let rpc: { id?: unknown; method?: string };
      try {
        rpc = JSON.parse(text) as typeof rpc;
      } catch {
        return send(res, 400, { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });
      }
      if (rpc.method === "initialize") return send(res, 200, { jsonrpc: "2.0", id: rpc.id, result: { protocolVersion: "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: "openproject", version: "16.x" } } });
      if (rpc.method === "tools/list") return send(res, 200, { jsonrpc: "2.0", id: rpc.id, result: { tools: ["SearchWorkPackages", "SearchProjects", "CurrentUser"].map((name) => ({ name, inputSchema: { type: "object" } })) } });
      return send(res, 200, { jsonrpc: "2.0", id: rpc.id, error: { code: -32601, message: "Method not found" } });
    }
    return send(res, 404, "<h1>404</h1>");
  });

  const url = served.url;
  return {
    url,
    users,
    apps,
    log,
    posts,
    createApp(a) {
      const ccUser = a.clientCredentialsUser ? users.find((u) => u.login === a.clientCredentialsUser) : undefined;
      if (a.clientCredentialsUser && !ccUser) throw new Error(`client credentials user must be an existing user (§4.1): ${a.clientCredentialsUser}`);
      const secret = randomBytes(32).toString("base64url");
      const app: OpApp = {
        id: nextAppId++, name: a.name, uid: randomBytes(32).toString("base64url"), secretHash: hash(secret),
        redirectUris: a.redirectUris, scopes: a.scopes ?? ["api_v3"], confidential: a.confidential ?? true, clientCredentialsUserId: ccUser?.id,
      };
      apps.set(app.id, app);
      return { id: app.id, clientId: app.uid, clientSecret: secret };
    },
    createApiToken(login) {
      const u = users.find((x) => x.login === login)!;
      const t = `opapi-${randomBytes(24).toString("hex")}`;
      tokens.set(t, { userId: u.id, scopes: [], kind: "api" });
      return t;
    },
    signIn(login) {
      signedIn = users.find((x) => x.login === login);
    },
    setMcp(on) {
      mcpOn = on;
    },
    close: served.close,
  };
}
