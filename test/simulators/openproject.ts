/**
 * Test simulator of OpenProject's OAuth (Doorkeeper), API v3, MCP endpoints and the admin web UI that
 * creates OAuth applications. Facts and upstream links: docs/idp/openproject.md.
 *
 * Follows opf/openproject as of its current 17.x line — the files at commit 1a491be (the newest read):
 * `app/controllers/oauth/applications_controller.rb` (`params.expect(doorkeeper_application: …)`,
 * create → flash `_application_secret` → redirect to show, destroy → 303), `app/forms/oauth/applications_form.rb`
 * (Primer form, `doorkeeper_application[...]`), `app/views/oauth/applications/show.html.erb` (attribute
 * key/value cells, `OpPrimer::CopyToClipboardComponent` → `<clipboard-copy value>` for the client id,
 * the once-shown secret and the endpoint URLs); MCP from 17.2.0 (`docs/release-notes/17-2-0`).
 * Release table case `release: "17.1"` follows the v17.1.0 sources (same as 15.4.0 here):
 * `app/views/oauth/applications/new.html.erb` + `_form.html.erb` (`labelled_tabular_form_for … as:
 * :application`, `permitted_params.oauth_application` → `params.require(:application)`), show with the
 * id in a `<span>` and the secret in a `<code>`, and no MCP server.
 * Common to both (v15.4.0 and v17.1.0 read):
 *   - `config/initializers/doorkeeper.rb`: `enforce_content_type`, `use_refresh_token`,
 *     `enforce_configured_scopes`, `default_scopes :api_v3`, `hash_application_secrets`, and
 *     `force_ssl_in_redirect_uri { |uri| !SecureContextUriValidator.secure_context_uri?(uri) }` (since
 *     11.0, opf/openproject#8574) over Doorkeeper 5.8's `RedirectUriValidator`: https always, plain http
 *     only to localhost / *.localhost / a loopback IP, the OOB URN unchecked; the refusal reads
 *     `secured_uri` from OpenProject's locale (en, de), not Doorkeeper's "must be an HTTPS/SSL URI.";
 *   - login (`AccountController#login`, `LoginForm`): a refused password re-renders the login page with
 *     HTTP 422 and the flash "Invalid user or password"; a forced password change renders `my/password`
 *     (422); authentication stages (`Accounts::AuthenticationStages`): two-factor
 *     (/two_factor_authentication/request) and user consent (`/account/consent`, form `consent_check` →
 *     POST /account/confirm_consent) keep the user out until done; a bad CSRF token is 422;
 *   - flashes as `OpPrimer::FlashComponent` (Primer `Banner`: `Banner-title`, description below);
 *     validation errors go to the flash (`ErrorMessageHelper#assign_flash_error`), the Primer form also
 *     shows them inline;
 *   - `/oauth/authorize` (Doorkeeper's `URIChecker`: a loopback IP redirect URI matches on any port),
 *     `/oauth/token` (authorization_code + PKCE, refresh_token, client_credentials only with a
 *     client-credentials user), Doorkeeper's error bodies; API v3 `/users/me` (Bearer or
 *     Basic `apikey:`), `/users?filters=` with the session; `/mcp` (401 without a token carrying `mcp`).
 * Chosen here, not upstream: the page chrome (one `<main>`, no menus), the "mcp" scope being left out of
 * the form while MCP is switched off, the users and passwords seeded, a test-only `createApp`.
 * Not implemented: external-IdP JWTs, token revocation, the metadata documents of the current line.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { basicCredentials, serve } from "./common.js";
import { createHash, randomBytes } from "node:crypto";

export interface OpenProjectOptions {
  /** Which release's admin UI is served (see the header). Default "current". */
  release?: "current" | "17.1";
  /** The admin's language: the labels and messages OpenProject prints (en, de). Default "en". */
  locale?: "en" | "de";
  /** MCP server switched on (an Enterprise add-on since 17.2). Default: on for "current", absent for "17.1". */
  mcp?: boolean;
  /** "Enable API tokens". Default true. */
  apiTokens?: boolean;
  /** Passwords of the seeded users (admin, alice). Default admin → "admin-password", alice → "alice-password". */
  passwords?: Record<string, string>;
  /** The web login then asks for a second factor. */
  twoFactor?: boolean;
  /** The web login then asks the admin to change the password (first sign-in). */
  mustChangePassword?: boolean;
  /** "Consent required" is set and the admin has not consented yet: the login stops at /account/consent. */
  consent?: boolean;
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
  /** Doorkeeper `hash_application_secrets`: only a hash is kept. */
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
  /** What an admin creating the application by hand gets: its id, client id and the once-shown secret (test-only). */
  createApp(a: { name: string; redirectUris: string[]; scopes?: string[]; confidential?: boolean; clientCredentialsUser?: string }): { id: number; clientId: string; clientSecret: string };
  /** A personal API token (`opapi-…`) for a user. */
  createApiToken(login: string): string;
  /** Signs the user in for /oauth/authorize. */
  signIn(login: string): void;
  setMcp(on: boolean): void;
  close(): Promise<void>;
}

const hash = (s: string) => createHash("sha256").update(s).digest("hex");
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
const OOB = "urn:ietf:wg:oauth:2.0:oob"; // Doorkeeper native_redirect_uri
const ERR = "urn:openproject-org:api:v3:errors:";

// Doorkeeper's en.yml texts for its OAuth error responses.
const DK = {
  invalid_client: "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
  invalid_grant: "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
  invalid_request: "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.",
  invalid_scope: "The requested scope is invalid, unknown, or malformed.",
  unauthorized_client: "The client is not authorized to perform this request using this method.",
  unsupported_grant_type: "The authorization grant type is not supported by the authorization server.",
};

// Doorkeeper's RedirectUriValidator (5.8) with OpenProject's force_ssl_in_redirect_uri, written from the
// Ruby sources on purpose apart from mcp-auth's copy of the rule: the first error key, or undefined.
type UriError = "blank" | "invalid_uri" | "fragment_present" | "unspecified_scheme" | "relative_uri" | "secured_uri";
function redirectUriError(value: string): UriError | undefined {
  const vals = value.split(/\s+/).filter(Boolean); // `value.split`: any whitespace separates URIs
  if (!vals.length) return "blank";
  for (const val of vals) {
    if (val === OOB) continue;
    if (/[^\w\-.~:/?#[\]@!$&'()*+,;=%]/.test(val)) return "invalid_uri"; // URI::InvalidURIError
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/.exec(val);
    const scheme = m?.[1]?.toLowerCase();
    const rest = m ? m[2]! : val;
    const host = rest.startsWith("//") ? (/^\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/.exec(rest)?.[1] ?? "") : undefined;
    if (val.includes("#")) return "fragment_present";
    if ((scheme && !rest.startsWith("/")) || scheme === "localhost") return "unspecified_scheme"; // an opaque part, or "localhost:3000/…"
    if (!scheme && !host) return "relative_uri";
    if (scheme === "http" && !secureContext(host ?? "")) return "secured_uri";
    if ((scheme === "http" || scheme === "https") && !host) return "invalid_uri";
  }
  return undefined;
}

/**
 * Doorkeeper's URIChecker.matches? (5.1+): the same URI, except that for loopback IP literals on both
 * sides the port is not compared (RFC 8252 §7.3); `localhost` keeps its port.
 */
function redirectMatches(url: string, registered: string): boolean {
  if (url === registered) return true;
  if (!URL.canParse(url) || !URL.canParse(registered)) return false;
  const a = new URL(url);
  const b = new URL(registered);
  const loopbackIp = (u: URL) => /^127\.\d+\.\d+\.\d+$/.test(u.hostname) || u.hostname === "[::1]";
  if (!loopbackIp(a) || !loopbackIp(b)) return false;
  a.port = b.port = "";
  return a.href === b.href;
}

/** SecureContextUriValidator.secure_context_uri? for an http URI's host (Ruby keeps the host's case and IPv6 brackets). */
function secureContext(host: string): boolean {
  if (host === "localhost" || /\.localhost\.?$/.test(host)) return true;
  // IPAddr.new(host).loopback?: a dotted quad (no zero-filled octets) in 127/8, or ::1 (IPv4-mapped 127/8 too).
  const quad = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (quad) return quad.slice(1).every((x) => Number(x) < 256 && (x === "0" || !x.startsWith("0"))) && quad[1] === "127";
  const v6 = /^\[([0-9a-fA-F:.]+)\]$/.exec(host)?.[1];
  if (!v6 || !URL.canParse(`http://[${v6}]/`)) return false;
  const h = new URL(`http://[${v6}]/`).hostname;
  return h === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(h);
}

/** The words OpenProject prints, from config/locales/en.yml and crowdin/de.yml (v17.1.0). */
const TEXTS = {
  en: {
    login: "Username", password: "Password", signIn: "Sign in", invalidCredentials: "Invalid user or password",
    newPasswordForced: "A new password is required.", changePassword: "Change password",
    csrf: "Unable to verify Cross-Site Request Forgery token. Did you try to submit data on multiple browsers or tabs? Please close all tabs and try again.",
    consentTitle: "User Consent", consentLabel: "I have noted and do consent to the above.", continue: "Continue", decline: "Decline",
    apps: "OAuth applications", app: "OAuth application", newApp: "New OAuth application", create: "Create",
    created: "Successful creation.", deleted: "Successful deletion.",
    uid: "Client ID", secret: "Client secret", ccUserSetTo: "Client credentials user set to", scopes: "Scopes", confidential: "Confidential", enabled: "Active",
    redirectUri: "Redirect URI", name: "Name", authUrl: "Auth URL", tokenUrl: "Access token URL", yes: "Yes", no: "No", copy: "Copy to clipboard",
    secretNotice: "This is the only time we can print the client secret, please note it down and keep it secure. It should be treated as a password and cannot be retrieved by OpenProject at a later time.",
    blank: "can't be blank.", invalid_uri: "must be a valid URI.", fragment_present: "cannot contain a fragment.", relative_uri: "must be an absolute URI.",
    unspecified_scheme: "must specify a scheme.", secured_uri: 'is not providing a "Secure Context". Either use HTTPS or a loopback address, such as localhost.',
    errorHeader: (n: number) => (n === 1 ? "1 error prohibited this OAuth application from being saved" : `${n} errors prohibited this OAuth application from being saved`),
    invalidFields: (n: number) => (n === 1 ? "There was a problem with the following field:" : "There were problems with the following fields:"),
  },
  de: {
    login: "Benutzername", password: "Passwort", signIn: "Anmelden", invalidCredentials: "Benutzer oder Kennwort ist ungültig.",
    newPasswordForced: "Ein neues Passwort muss gesetzt werden.", changePassword: "Passwort ändern",
    csrf: "Das Cross-Site Request Forgery Token konnte nicht verfiziert werden. Wenn Sie versucht haben, Daten auf mehreren Tabs oder Browsern abzuspeichern, schließen sie diese und laden diese Seite erneut um den Vorgang zu wiederholen.",
    consentTitle: "Nutzer-Einwilligung", consentLabel: "Ich habe die obigen Angaben zur Kenntnis genommen und erkläre mich einverstanden.", continue: "Fortfahren", decline: "Ablehnen",
    apps: "OAuth-Anwendungen", app: "OAuth-Anwendung", newApp: "Neue OAuth-Anwendung", create: "Anlegen",
    created: "Erfolgreich angelegt.", deleted: "Erfolgreich gelöscht.",
    uid: "Client-ID", secret: "Clientschlüssel", ccUserSetTo: "Client Credentials User-ID gesetzt auf", scopes: "Geltungsbereiche", confidential: "Vertraulich", enabled: "Aktiv",
    redirectUri: "Redirect URI", name: "Name", authUrl: "Auth-URL", tokenUrl: "Zugangs-Token URL", yes: "Ja", no: "Nein", copy: "In Zwischenablage kopieren",
    secretNotice: "Dies ist das einzige Mal, dass wir das Client-Geheimnis anzeigen können. Bitte speichern Sie es ab und halten Sie es sicher. Es sollte als Passwort behandelt werden und kann später nicht mehr von OpenProject abgerufen werden.",
    blank: "muss ausgefüllt werden.", invalid_uri: "muss eine gültige URI sein.", fragment_present: "kann kein Fragment enthalten.", relative_uri: "muss eine absolute URI sein.",
    unspecified_scheme: "must specify a scheme.", secured_uri: 'stellt keinen "Secure Context" zur Verfügung: Benutzen Sie entweder HTTPS oder eine Loopback-Adresse, wie z.B. localhost.',
    errorHeader: (n: number) => (n === 1 ? "Dieses OAuth-Anwendung-Objekt konnte nicht gespeichert werden: 1 Fehler." : `${n} Fehler haben das Speichern dieses OAuth-Anwendung verhindert`),
    invalidFields: (n: number) => (n === 1 ? "Bei dem folgenden Feld traten Fehler auf:" : "Bei den folgenden Feldern traten Fehler auf:"),
  },
};

export async function startOpenProject(o: OpenProjectOptions = {}): Promise<OpenProjectSim> {
  let mcpOn = o.mcp ?? (o.release ?? "current") === "current";
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
  const release = o.release ?? "current";
  const prefix = release === "17.1" ? "application" : "doorkeeper_application";
  const locale = o.locale ?? "en";
  const t = TEXTS[locale];
  const consented = new Set<number>();
  const passwords: Record<string, string> = o.passwords ?? { admin: "admin-password", alice: "alice-password" };
  const sessions = new Map<string, { csrf: string; userId?: number; authenticatedUserId?: number; back?: string | null; flash?: { notice?: string; secret?: string; error?: string; description?: string } }>();
  const posts: OpenProjectSim["posts"] = [];

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": typeof body === "string" ? "text/html; charset=utf-8" : "application/json; charset=utf-8", ...headers });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  };
  // API v3 HAL error.
  const hal = (res: ServerResponse, status: number, id: string, message: string, headers: Record<string, string> = {}) =>
    send(res, status, { _type: "Error", errorIdentifier: `${ERR}${id}`, message }, { ...headers, "content-type": "application/hal+json; charset=utf-8" });
  const unauthenticated = (res: ServerResponse, headers: Record<string, string> = {}) => hal(res, 401, "Unauthenticated", "You need to be authenticated to access this resource.", headers);
  const dk = (res: ServerResponse, status: number, error: keyof typeof DK) => send(res, status, { error, error_description: DK[error] }, { "cache-control": "no-store" });

  /** The caller's token: OAuth or API-token bearer, or Basic `apikey:<token>`. */
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
      // use_refresh_token
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

    // No metadata documents here (see the header), no DCR.
    if (path.startsWith("/.well-known/")) return send(res, 404, "<h1>404</h1>");

    if (path === "/oauth/authorize" && req.method === "GET") {
      const q = url.searchParams;
      const app = [...apps.values()].find((a) => a.uid === q.get("client_id"));
      const redirectUri = q.get("redirect_uri") ?? "";
      // Doorkeeper renders an error page (no redirect) for an unknown client or redirect URI.
      if (!app) return send(res, 401, "<h1>An error has occurred</h1><p>" + DK.invalid_client + "</p>");
      if (!app.redirectUris.some((r) => redirectMatches(redirectUri, r))) return send(res, 400, "<h1>An error has occurred</h1><p>The requested redirect uri is malformed or doesn't match client redirect URI.</p>");
      if (!signedIn) return send(res, 302, "", { location: "/login" });
      const redirect = (params: Record<string, string>) => {
        if (redirectUri === OOB) return send(res, 200, `<h1>Authorization code</h1><code id="authorization_code">${params.code ?? params.error}</code>`);
        const to = new URL(redirectUri);
        for (const [k, v] of Object.entries({ ...params, ...(q.get("state") ? { state: q.get("state")! } : {}) })) to.searchParams.set(k, v);
        return send(res, 302, "", { location: to.href });
      };
      if (q.get("response_type") !== "code") return redirect({ error: "unsupported_response_type" });
      // default_scopes :api_v3, enforce_configured_scopes; the app's own scopes bound the request.
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
      // enforce_content_type
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
      // client_credentials: bound to the Client Credentials User.
      if (!app.clientCredentialsUserId) return dk(res, 400, "unauthorized_client");
      const scopes = (form.get("scope") ?? "api_v3").split(/\s+/).filter(Boolean);
      if (!scopes.every((s) => app.scopes.includes(s))) return dk(res, 400, "invalid_scope");
      return send(res, 200, issue(app.id, app.clientCredentialsUserId, scopes, false), { "cache-control": "no-store" });
    }


    // ---- the admin web UI ----
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
    // OpPrimer::FlashComponent: a Primer Banner (title, then the description) in a flash item.
    const banner = (scheme: "error" | "success", title: string, description?: string) =>
      `<div class="op-primer-flash--item" data-flash-target="item"><x-banner class="Banner flash Banner--${scheme}" data-view-component="true"><div class="Banner-visual"><svg aria-hidden="true" class="octicon"></svg></div><div class="Banner-message"><p class="Banner-title" data-target="x-banner.titleText">${esc(title)}</p>${description ? `<p>${description}</p>` : ""}</div><div class="flash-close Banner-close"><button type="button" aria-label="Dismiss" class="Button Button--iconOnly"><svg aria-hidden="true" class="octicon"></svg></button></div></x-banner></div>`;
    const page = (status: number, title: string, inner: string, extra: Record<string, string> = {}) => {
      const sess = session();
      const f = sess.flash;
      const flash = f?.error ? banner("error", f.error, f.description) : f?.notice ? banner("success", f.notice) : "";
      const html = `<!DOCTYPE html><html lang="${locale}"><head><title>${esc(title)} | OpenProject</title><meta name="csrf-param" content="authenticity_token"><meta name="csrf-token" content="${esc(sess.csrf)}"></head><body><div id="primer-flash-messages">${flash}</div><main>${inner}</main></body></html>`;
      if (sess.flash) sess.flash = undefined; // a flash lives for one page
      return send(res, status, html, { ...setCookie(), ...extra });
    };
    const redirectTo = (location: string, status = 302) => send(res, status, "", { ...setCookie(), location });
    const form = () => new URLSearchParams(text);
    const csrfOk = () => form().get("authenticity_token") === session().csrf;
    // ApplicationController#handle_unverified_request: the session is dropped, render_error 422.
    const csrfRefused = () => {
      session().userId = undefined;
      return page(422, "Error", `<h2>[Error 422] ${esc(t.csrf)}</h2>`);
    };
    /** Rails resets the session on login (a new id, a new CSRF token); then the stages' redirect or back_url. */
    const logIn = (user: OpUser, back?: string | null) => {
      sessions.delete(sid!);
      sid = undefined;
      session().userId = user.id;
      return redirectTo(back && back.startsWith("/") ? back : "/my/page");
    };

    if (path === "/login") {
      const sess = session();
      const loginForm = (user = "") =>
        o.ssoOnly
          ? `<a class="auth-provider" href="/auth/oidc">Sign in with SSO</a>`
          : `<form data-turbo="false" action="/login" accept-charset="UTF-8" method="post"><input type="hidden" name="authenticity_token" value="${esc(sess.csrf)}" autocomplete="off" />${url.searchParams.get("back_url") ? `<input type="hidden" name="back_url" value="${esc(url.searchParams.get("back_url")!)}" />` : ""}<label for="username">${esc(t.login)}</label><input type="text" name="username" id="username" value="${esc(user)}" required="required" autocomplete="username" /><label for="password">${esc(t.password)}</label><input type="password" name="password" id="password" required="required" autocomplete="current-password" /><button type="submit" class="Button Button--primary">${esc(t.signIn)}</button></form>`;
      if (req.method === "GET") return page(200, t.signIn, loginForm());
      if (req.method === "POST") {
        if (!csrfOk()) return csrfRefused();
        const f = form();
        const user = users.find((u) => u.login === f.get("username"));
        if (!user || passwords[user.login] !== f.get("password")) {
          sess.flash = { error: t.invalidCredentials };
          return page(422, t.signIn, loginForm(f.get("username") ?? ""));
        }
        if (o.mustChangePassword) {
          sess.flash = { error: t.newPasswordForced };
          return page(422, t.changePassword, `<form action="/account/change_password" method="post"><input type="hidden" name="authenticity_token" value="${esc(sess.csrf)}" /><input type="hidden" name="password_change_user" value="${esc(user.login)}" /><input type="password" name="password" /><input type="password" name="new_password" /><input type="password" name="new_password_confirmation" /></form>`);
        }
        // Accounts::AuthenticationStages: the user is authenticated, not signed in, until every stage is done.
        const stages = [...(o.twoFactor ? ["/two_factor_authentication/request"] : []), ...(o.consent && !consented.has(user.id) ? ["/account/consent"] : [])];
        if (stages.length) {
          sess.authenticatedUserId = user.id;
          sess.back = f.get("back_url");
          return redirectTo(stages[0]!);
        }
        return logIn(user, f.get("back_url"));
      }
    }
    if (path === "/account/consent" && req.method === "GET") {
      const sess = session();
      if (!sess.authenticatedUserId) return redirectTo("/login");
      return page(200, t.consentTitle, `<div id="login-form" class="account-consent form -bordered"><form class="form -wide-labels" action="/account/confirm_consent" accept-charset="UTF-8" method="post"><input type="hidden" name="authenticity_token" value="${esc(sess.csrf)}" autocomplete="off" /><section class="form--section op-user-consent-form"><h1>${esc(t.consentTitle)}</h1><label class="form--label-with-check-box -required"><div class="form--check-box-container"><input type="checkbox" name="consent_check" class="form--check-box" required="required"></div>${esc(t.consentLabel)}</label></section><section class="form--section"><button type="submit" class="button -primary"><span class="button--text">${esc(t.continue)}</span></button><a class="button" href="/account/decline_consent">${esc(t.decline)}</a></section></form></div>`);
    }
    if (path === "/account/confirm_consent" && req.method === "POST") {
      const sess = session();
      if (!csrfOk()) return csrfRefused();
      const user = users.find((u) => u.id === sess.authenticatedUserId);
      if (!user || !form().get("consent_check")) return redirectTo("/login");
      consented.add(user.id);
      return logIn(user, sess.back);
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
      if (!me) return redirectTo(`/login?back_url=${encodeURIComponent(url.href.replace("http://x", served.url))}`); // require_login
      if (!me.admin) return page(403, "Forbidden", "<h2>[Error 403] You are not authorized to access this page.</h2>"); // require_admin
      const sess = session();
      const appForm = (values: { name?: string; redirect?: string; scopes?: string[]; confidential?: boolean } = {}, errors: Record<string, string> = {}) => {
        const offered = ["api_v3", ...(release === "current" ? ["scim_v2"] : []), ...(mcpOn ? ["mcp"] : [])];
        const conf = values.confidential ?? true;
        const p = prefix;
        const token = `<input type="hidden" name="authenticity_token" value="${esc(sess.csrf)}" autocomplete="off" />`;
        if (release === "17.1") {
          // labelled_tabular_form_for @application, as: :application; _form.html.erb
          const fields = `<section class="form--section"><input name="${p}[enabled]" type="hidden" value="0" /><input type="checkbox" value="1" checked="checked" name="${p}[enabled]" id="application_enabled" /><input size="25" required="required" type="text" value="${esc(values.name ?? "")}" name="${p}[name]" id="application_name" /><textarea required="required" name="${p}[redirect_uri]" id="application_redirect_uri">${esc(values.redirect ?? "")}</textarea>${offered.map((sc) => `<label class="form--label-with-check-box"><div class="form--check-box-container"><input type="checkbox" name="${p}[scopes][]" id="application_scopes_${sc}" value="${sc}" class="form--check-box"${values.scopes?.includes(sc) ? ' checked="checked"' : ""} /></div>${sc}</label>`).join("")}<input name="${p}[confidential]" type="hidden" value="0" /><input type="checkbox" value="1"${conf ? ' checked="checked"' : ""} name="${p}[confidential]" id="application_confidential" /><fieldset class="form--fieldset"><input type="hidden" name="${p}[client_credentials_user_id]" id="application_client_credentials_user_id" /><opce-user-autocompleter data-inputs="{&quot;allowEmpty&quot;:true,&quot;inputName&quot;:&quot;${p}[client_credentials_user_id]&quot;}" class="new-group-members--autocomplete"></opce-user-autocompleter></fieldset></section><p><button type="submit" class="button -primary -with-icon icon-checkmark">${esc(t.create)}</button></p>`;
          return `<form class="-wide-labels" autocomplete="off" action="/admin/oauth/applications" accept-charset="UTF-8" method="post">${token}${fields}</form>`;
        }
        // OAuth::ApplicationsForm (Primer): inline validation under the field as well as the flash.
        const inline = (field: string) => (errors[field] ? `<div class="FormControl-inlineValidation" id="validation-${field}"><span class="FormControl-inlineValidation--visual"><svg aria-hidden="true"></svg></span><span>${esc(errors[field])}</span></div>` : "");
        const fields = `<input type="hidden" name="${p}[enabled]" value="0" autocomplete="off" /><input type="checkbox" name="${p}[enabled]" id="${p}_enabled" value="1" checked="checked" class="FormControl-checkbox" /><input type="text" name="${p}[name]" id="${p}_name" value="${esc(values.name ?? "")}" required="required" class="FormControl-input" />${inline("name")}<textarea name="${p}[redirect_uri]" id="${p}_redirect_uri" required="required" class="FormControl-input FormControl-textarea">${esc(values.redirect ?? "")}</textarea>${inline("redirect_uri")}<input type="hidden" name="${p}[confidential]" value="0" autocomplete="off" /><input type="checkbox" name="${p}[confidential]" id="${p}_confidential" value="1"${conf ? ' checked="checked"' : ""} class="FormControl-checkbox" /><fieldset><legend>${esc(t.scopes)}</legend>${offered.map((sc) => `<input type="checkbox" name="${p}[scopes][]" id="${p}_scopes_${sc}" value="${sc}"${values.scopes?.includes(sc) ? ' checked="checked"' : ""} class="FormControl-checkbox" />`).join("")}</fieldset><fieldset><opce-user-autocompleter data-input-name="&quot;${p}[client_credentials_user_id]&quot;" data-resource="&quot;users&quot;"></opce-user-autocompleter></fieldset><button type="submit" name="submit" class="Button Button--primary">${esc(t.create)}</button>`;
        return `<form action="/admin/oauth/applications" accept-charset="UTF-8" method="post">${token}${fields}</form>`;
      };
      if (path === "/admin/oauth/applications" && req.method === "GET") {
        const rows = [...apps.values()].map((a) => (release === "17.1" ? `<tr><td><a href="/admin/oauth/applications/${a.id}">${esc(a.name)}</a></td></tr>` : `<li class="Box-row"><a href="/admin/oauth/applications/${a.id}" class="Link text-bold" data-view-component="true">${esc(a.name)}</a></li>`));
        return page(200, t.apps, `<a href="/admin/oauth/applications/new" class="Button Button--primary">${esc(t.app)}</a>${release === "17.1" ? `<table>${rows.join("")}</table>` : `<ul class="Box">${rows.join("")}</ul>`}`);
      }
      if (path === "/admin/oauth/applications/new" && req.method === "GET") return page(200, t.newApp, appForm());
      if (path === "/admin/oauth/applications" && req.method === "POST") {
        const f = form();
        posts.push({ path, fields: [...f.entries()] });
        if (!csrfOk()) return csrfRefused();
        // params.require(:application) / params.expect(doorkeeper_application: …): the other key is ParameterMissing → 400.
        if (![...f.keys()].some((k) => k.startsWith(`${prefix}[`))) return send(res, 400, `<h1>ActionController::ParameterMissing: param is missing or the value is empty or invalid: ${prefix}</h1>`);
        const last = (k: string) => f.getAll(`${prefix}[${k}]`).at(-1);
        const name = last("name") ?? "";
        const redirect = last("redirect_uri") ?? "";
        const scopes = f.getAll(`${prefix}[scopes][]`).filter(Boolean);
        const errors: Record<string, string> = {};
        if (!name.trim()) errors.name = `${t.name} ${t.blank}`;
        const uriError = redirectUriError(redirect);
        if (uriError) errors.redirect_uri = `${t.redirectUri} ${t[uriError]}`;
        const ccId = last("client_credentials_user_id");
        if (ccId && !users.some((u) => String(u.id) === ccId)) errors.client_credentials_user_id = "Client Credentials User ID is invalid."; // base_contract.rb
        if (Object.keys(errors).length) {
          // ErrorMessageHelper#assign_flash_error, then render :new, status: :unprocessable_entity
          const list = Object.values(errors);
          sess.flash = { error: t.errorHeader(list.length), description: `${esc(t.invalidFields(list.length))}<br/>${list.map(esc).join("<br/>")}` };
          return page(422, t.newApp, appForm({ name, redirect, scopes, confidential: last("confidential") === "1" }, errors));
        }
        const secret = randomBytes(32).toString("base64url");
        const uris = redirect.split(/\s+/).filter(Boolean);
        const app: OpApp = { id: nextAppId++, name, uid: randomBytes(32).toString("base64url"), secretHash: hash(secret), redirectUris: uris, scopes: scopes.length ? scopes : ["api_v3"], confidential: last("confidential") === "1", clientCredentialsUserId: ccId ? Number(ccId) : undefined };
        apps.set(app.id, app);
        sess.flash = { notice: t.created, secret };
        return redirectTo(`/admin/oauth/applications/${app.id}`);
      }
      const m = /^\/admin\/oauth\/applications\/(\d+)$/.exec(path);
      const app = m ? apps.get(Number(m[1])) : undefined;
      if (m && !app) return page(404, "Not found", "<h2>[Error 404] The page you were trying to access doesn't exist or has been removed.</h2>");
      if (app && req.method === "POST" && form().get("_method") === "delete") {
        if (!csrfOk()) return csrfRefused();
        apps.delete(app.id);
        sess.flash = { notice: t.deleted };
        return redirectTo("/admin/oauth/applications", release === "17.1" ? 302 : 303);
      }
      if (app && req.method === "GET") {
        const secret = o.hideSecret ? undefined : sess.flash?.secret;
        const ccUser = app.clientCredentialsUserId ? users.find((u) => u.id === app.clientCredentialsUserId)?.login : undefined;
        // AttributeGroups::AttributeKeyValueComponent: the key cell, then the value container.
        const cell = (key: string, value: string) => `<div class="attributes-key-value--key">${esc(key)}</div><div class="attributes-key-value--value-container"><div class="attributes-key-value--value -text">${value}</div></div>`;
        // OpPrimer::CopyToClipboardComponent: the text, then Primer's ClipboardCopy button carrying the value.
        const copy = (v: string) => `<div class="d-flex flex-items-center" data-view-component="true"><div class="ellipsis"><span title="${esc(v)}" data-view-component="true">${esc(v)}</span></div><div class="ml-1"><clipboard-copy value="${esc(v)}" aria-label="${esc(t.copy)}" role="button" tabindex="0" class="Button Button--iconOnly Button--secondary Button--medium" data-view-component="true"><svg aria-hidden="true" class="octicon octicon-copy"></svg><svg aria-hidden="true" class="octicon octicon-check color-fg-success" style="display: none;"></svg></clipboard-copy></div></div>`;
        const current = release === "current";
        const value = (v: string) => (current ? copy(v) : `<span>${esc(v)}</span>`);
        const base = served.url;
        const body = [
          cell(t.uid, value(app.uid)),
          secret ? cell(t.secret, `<p>${current ? copy(secret) : `<code>${esc(secret)}</code>`}<br><strong>${esc(t.secretNotice)}</strong></p>`) : "",
          ccUser ? cell(t.ccUserSetTo, `<a class="user-link" href="/users/${app.clientCredentialsUserId}">${esc(ccUser)}</a><br><strong>…</strong>`) : "",
          cell(t.scopes, `<span>${esc(app.scopes.join(", "))}</span>`),
          cell(t.confidential, `<span>${app.confidential ? t.yes : t.no}</span>`),
          cell(t.enabled, `<span>${t.yes}</span>`),
          cell(t.redirectUri, `<span>${app.redirectUris.map(esc).join("<br>")}</span>`),
          ccUser ? "" : cell(t.authUrl, current ? copy(`${base}/oauth/authorize`) : `<span>${base}/oauth/authorize</span>`),
          cell(t.tokenUrl, current ? copy(`${base}/oauth/token`) : `<span>${base}/oauth/token</span>`),
        ].join("");
        const header = current ? "" : `<div class="attributes-group--header"><div class="attributes-group--header-container"><h3 class="attributes-group--header-text">Details</h3></div></div>`;
        return page(200, `${t.app} - ${app.name}`, `<h1>${esc(app.name)}</h1><a href="/admin/oauth/applications/${app.id}/edit" class="Button">Edit</a><a href="/admin/oauth/applications/${app.id}" data-turbo-method="delete" data-turbo-confirm="Are you sure?" class="Button Button--danger">Delete</a><div class="attributes-group">${header}<div class="attributes-key-value">${body}</div></div>`);
      }
      return page(404, "Not found", "<h2>[Error 404]</h2>");
    }

    if (path.startsWith("/api/v3/")) {
      const who = caller(req);
      const apiOk = who && (who.kind === "api" || who.scopes.includes("api_v3"));
      if (path === "/api/v3/oauth_applications" || (path.startsWith("/api/v3/oauth_applications/") && req.method !== "GET")) {
        return hal(res, 404, "NotFound", "The requested resource could not be found."); // no create endpoint: applications are made in the admin UI
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
      if (!mcpOn) return hal(res, 404, "NotFound", "The requested resource could not be found."); // switched off
      const who = caller(req);
      // MCP needs a token carrying `mcp`; personal API tokens work too.
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
      if (a.clientCredentialsUser && !ccUser) throw new Error(`client credentials user must be an existing user: ${a.clientCredentialsUser}`);
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
