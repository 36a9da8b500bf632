import type { Context } from "../../context.js";
import { AuthError, UsageError } from "../../errors.js";
import { registerSecret } from "../../io/sanitize.js";
import { csrfMeta, decodeEntities, errorTexts, forms, setField, valueAfterLabel, WebSession, type Form, type Page } from "./web.js";

/**
 * `bootstrap openproject --create`: what an admin does in the browser (../shared/research/idp-apis.md
 * §4.1), done over the web UI because OpenProject has no API that creates OAuth applications:
 * sign in at /login (session cookie + the form's `authenticity_token`), open Administration →
 * Authentication → OAuth applications → New, fill the form the server actually serves and read the
 * client id and the once-shown secret from the page the create redirects to
 * (`applications_controller.rb#create` puts the plaintext secret into the flash for `show`).
 *
 * The form's markup changed across versions: older releases render `application[...]` fields
 * (`app/views/oauth/applications/_form.html.erb`), newer ones `doorkeeper_application[...]`
 * (`app/forms/oauth/applications_form.rb`, controller `params.expect(doorkeeper_application: …)`),
 * so the field prefix, the scopes offered and the action are read from the page. Anything unexpected
 * before the submit (another login, 2FA, SSO only, an unknown form) throws `Unsupported` with the
 * reason, and the caller falls back to the guided mode; nothing has been created then.
 */
export class Unsupported extends Error {}

export interface CreateSpec {
  name: string;
  redirectUri: string;
  scopes: string[];
  /** Login of the user client-credentials tokens act as. */
  clientCredentialsUser?: string;
}

export interface Created {
  action: "created" | "reused";
  appId: string;
  clientId: string;
  /** Only for a new application (shown once). */
  clientSecret?: string;
  /** The markup the instance served. */
  markup: "application" | "doorkeeper_application" | string;
}

const APPS = "/admin/oauth/applications";

export class OpenProjectAdmin {
  private readonly web: WebSession;
  constructor(
    ctx: Context,
    readonly base: string,
  ) {
    this.web = new WebSession(ctx, base);
  }

  /** The web login (`app/views/account/_password_login_form.html.erb`: username, password, back_url, authenticity_token). */
  async signIn(user: string, password: string): Promise<void> {
    registerSecret(password);
    const page = await this.web.get("/login");
    if (page.status === 404) throw new Unsupported(`${this.base}/login answers HTTP 404: is this OpenProject?`);
    const form = forms(page.html).find((f) => f.names.has("password") && f.names.has("username"));
    if (!form) throw new Unsupported("the login page has no user name and password form (single sign-on only?)");
    const after = await this.web.post(form.action || "/login", setField(setField(form.fields, "username", user), "password", password));
    if (/two_factor|2fa/i.test(after.url.pathname) || /name="otp"|two_factor/i.test(after.html)) throw new Unsupported(`the account "${user}" signs in with two-factor authentication`);
    const again = forms(after.html);
    if (again.some((f) => f.names.has("new_password"))) throw new Unsupported(`OpenProject wants the password of "${user}" changed first (first sign-in); do that in the browser, then run this again`);
    if (after.status === 422) throw new Unsupported("OpenProject refused the login form (invalid authenticity token): cookies or CSRF work differently on this instance");
    if (again.some((f) => f.names.has("password") && f.names.has("username"))) {
      const why = errorTexts(after.html)[0] ?? "the login page came back";
      throw new AuthError(`OpenProject refused the sign-in of "${user}": ${why}`, { hint: "check --admin-user and the password (stdin, --admin-password-env or the prompt)" });
    }
  }

  /** The applications list (`index`): an application of this name, if there is one. */
  async find(name: string): Promise<string | undefined> {
    const page = this.admin(await this.web.get(APPS));
    for (const m of page.html.matchAll(/<a\b([^>]*)>([^<]*)<\/a>/gi)) {
      const href = /\bhref\s*=\s*"([^"]*)"/i.exec(m[1]!)?.[1] ?? "";
      const id = new RegExp(`^(?:${this.base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")})?${APPS}/(\\d+)$`).exec(href)?.[1];
      if (id && decodeEntities(m[2]!).trim() === name) return id;
    }
    return undefined;
  }

  async clientIdOf(appId: string): Promise<string> {
    const page = this.admin(await this.web.get(`${APPS}/${appId}`));
    const clientId = valueAfterLabel(page.html, /Client ID/);
    if (!clientId) throw new Unsupported(`the page of application ${appId} shows no "Client ID"`);
    return clientId;
  }

  /**
   * Fills and submits the new-application form. Throws Unsupported before submitting when the form is
   * not one mcp-auth can fill; after a successful submit, a page it cannot read makes it delete the
   * application again, so no half-created state is left behind.
   */
  async create(spec: CreateSpec): Promise<Created> {
    const page = this.admin(await this.web.get(`${APPS}/new`));
    const form = forms(page.html).find((f) => f.method === "post" && [...f.names].some((n) => /\[name\]$/.test(n)) && [...f.names].some((n) => /\[redirect_uri\]$/.test(n)));
    if (!form) throw new Unsupported("the new OAuth application page has no form with a name and a redirect URI");
    const prefix = /^(\w+)\[name\]$/.exec([...form.names].find((n) => /^\w+\[name\]$/.test(n)) ?? "")?.[1];
    if (!prefix || !form.names.has(`${prefix}[redirect_uri]`)) throw new Unsupported("the new OAuth application form has fields mcp-auth does not know");
    const offered = form.checkboxes.filter((c) => c.name === `${prefix}[scopes][]`).map((c) => c.value);
    const missing = spec.scopes.filter((s) => !offered.includes(s));
    if (missing.includes("mcp")) {
      throw new Unsupported(`this OpenProject offers no "mcp" scope (it offers ${offered.join(", ") || "none"}): its MCP server is not available — enable it under Administration → Artificial Intelligence (AI) → Model Context Protocol (MCP) (Enterprise add-on), or at /admin/settings/experimental on older versions`);
    }
    if (missing.length) throw new Unsupported(`the form offers no ${missing.join(", ")} scope`);
    if (!form.checkboxes.some((c) => c.name === `${prefix}[confidential]`)) throw new Unsupported("the form has no Confidential checkbox");
    let fields = setField(form.fields, `${prefix}[name]`, spec.name);
    fields = setField(fields, `${prefix}[redirect_uri]`, spec.redirectUri);
    fields = setField(fields, `${prefix}[scopes][]`, ...spec.scopes);
    fields = setField(fields, `${prefix}[confidential]`, "1");
    if (spec.clientCredentialsUser) {
      // The user picker is a client-side widget; the field it fills is named in the markup (`data-name`/`inputName`).
      if (!form.html.includes(`${prefix}[client_credentials_user_id]`)) throw new Unsupported("the form has no client credentials user field");
      fields = setField(fields, `${prefix}[client_credentials_user_id]`, await this.userId(spec.clientCredentialsUser));
    }
    const after = await this.web.post(form.action || APPS, fields);
    const shown = new RegExp(`${APPS}/(\\d+)$`).exec(after.url.pathname);
    if (!shown || after.status !== 200) return this.refused(after, spec);
    const appId = shown[1]!;
    const clientId = valueAfterLabel(after.html, /Client ID/);
    const clientSecret = valueAfterLabel(after.html, /Client secret/);
    if (!clientId || !clientSecret) {
      await this.remove(appId, after);
      throw new Unsupported(`the page OpenProject showed after creating the application does not show ${clientId ? "the client secret" : "the client id"} where mcp-auth looks for it; the application was deleted again`);
    }
    registerSecret(clientSecret, { clientId });
    return { action: "created", appId, clientId, clientSecret, markup: prefix };
  }

  /** API v3 user lookup by login, with the admin's session. */
  private async userId(login: string): Promise<string> {
    const filters = JSON.stringify([{ login: { operator: "=", values: [login] } }]);
    const r = await this.web.api(`/api/v3/users?filters=${encodeURIComponent(filters)}`);
    const elements = (r.body as { _embedded?: { elements?: Array<{ id?: unknown; login?: unknown }> } } | undefined)?._embedded?.elements;
    const user = Array.isArray(elements) ? elements.find((e) => e.login === login) : undefined;
    if (r.status !== 200 || !user || user.id === undefined) {
      if (r.status === 200) throw new UsageError(`OpenProject has no user "${login}" (--client-credentials-user)`, { hint: "give the login of an existing user; client-credentials tokens act as that user" });
      throw new Unsupported(`OpenProject's user search answered HTTP ${r.status}`);
    }
    return String(user.id);
  }

  /** The form came back: say why in OpenProject's own words; an http redirect URI refused in production gets its alternatives. */
  private refused(page: Page, spec: CreateSpec): never {
    const errors = errorTexts(page.html);
    const why = errors.join("; ") || `HTTP ${page.status} from ${page.url.pathname}`;
    if (/HTTPS\/SSL|secured?_uri|must be .*https/i.test(why)) {
      throw new UsageError(`OpenProject refused the redirect URI ${spec.redirectUri}: ${why} (production instances accept https redirect URIs only)`, {
        hint: "use --grant client_credentials --client-credentials-user LOGIN (its redirect URI is urn:ietf:wg:oauth:2.0:oob), or --redirect-uri with an https URI that forwards to the loopback port",
      });
    }
    if (page.status === 403 || page.status === 404) throw new AuthError(`OpenProject refused to create the application: ${why}`);
    throw new UsageError(`OpenProject refused to create the application "${spec.name}": ${why}`);
  }

  /** Deletes an application as its page's Delete button does (Rails `data-method="delete"`: POST with `_method=delete`). */
  private async remove(appId: string, page: Page): Promise<void> {
    const token = csrfMeta(page.html);
    if (!token) return;
    await this.web.post(`${APPS}/${appId}`, [["_method", "delete"], ["authenticity_token", token]]);
  }

  /** An admin page: the login page means the session is gone, 403 that the user is no administrator. */
  private admin(page: Page): Page {
    if (page.url.pathname === "/login" || forms(page.html).some((f: Form) => f.names.has("password") && f.names.has("username"))) {
      throw new AuthError("OpenProject asked for a login again: the admin session was not kept", { hint: "check that the URL is the instance's public URL" });
    }
    if (page.status === 403) throw new AuthError("OpenProject answered 403: the user is not an administrator", { hint: "sign in as an admin with --admin-user" });
    if (page.status !== 200) throw new Unsupported(`${page.url.pathname} answered HTTP ${page.status}`);
    return page;
  }
}
