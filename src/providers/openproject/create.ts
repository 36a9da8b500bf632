import { AuthError, type ProviderContext, markControl, registerSecret, UsageError } from "../../sdk.js";
import { attributePairs, copyableValue, csrfMeta, decodeEntities, errorTexts, forms, setField, WebSession, type Form, type Page } from "./web.js";

/**
 * `bootstrap openproject --create`: what an admin does in the browser, done over the web UI because
 * OpenProject has no API that creates OAuth applications (docs/idp/openproject.md): sign in at /login
 * (session cookie + the form's `authenticity_token`), open Administration → Authentication → OAuth
 * applications → New, fill the form the server actually serves and read the client id and the
 * once-shown secret from the page the create redirects to (`applications_controller.rb#create` puts
 * the plaintext secret into the flash for `show`).
 *
 * The markup changed across releases: up to 17.1 the form posts `application[...]` fields
 * (`app/views/oauth/applications/_form.html.erb`), the current line `doorkeeper_application[...]`
 * (`app/forms/oauth/applications_form.rb`, controller `params.expect(doorkeeper_application: …)`), so
 * the field prefix, the scopes offered and the action are read from the page. Labels are translated
 * (a German admin sees "Client-ID" and "Clientschlüssel"), so the show page is read by its structure,
 * never by its words. Anything unexpected before the submit (another login, 2FA, the user-consent
 * stage, SSO only, an unknown form) throws `Unsupported` with the reason, and the caller falls back to
 * the guided mode; nothing has been created then.
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
const OOB = "urn:ietf:wg:oauth:2.0:oob"; // Doorkeeper's native_redirect_uri: never checked further
/** A client id as mcp-auth accepts one from dynamic registration: printable ASCII, no spaces, at most 256 characters. */
const CLIENT_ID = /^[\x21-\x7e]{1,256}$/;
/** Doorkeeper's plaintext secrets are 43 URL-safe characters; anything not printable ASCII, or huge, is not one. */
const CLIENT_SECRET = /^[\x21-\x7e]{8,512}$/;

/**
 * Why OpenProject would refuse this redirect URI, or undefined when it accepts it. OpenProject runs
 * Doorkeeper's redirect-URI validator with `force_ssl_in_redirect_uri` set to "not a secure context"
 * (`config/initializers/doorkeeper.rb` → `SecureContextUriValidator.secure_context_uri?`, in every
 * environment since 11.0): https always passes, and plain http only to `localhost`, a `*.localhost`
 * name or a loopback IP literal. So the default `http://127.0.0.1:PORT/callback` is accepted on an
 * https production instance (docs/idp/openproject.md "Redirect URIs").
 */
export function redirectUriProblem(uri: string): string | undefined {
  if (uri === OOB) return undefined;
  const m = /^([a-z][a-z0-9+.-]*):(\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*))?/i.exec(uri);
  if (!m || !URL.canParse(uri)) return "it is not an absolute URI";
  if (uri.includes("#")) return "it contains a fragment";
  if (m[1]!.toLowerCase() !== "http") return undefined;
  if (!m[3]) return "it names no host";
  return secureContextHost(m[3]) ? undefined : 'plain http is allowed only to a loopback host (127.0.0.1, [::1], localhost); OpenProject answers that it is not a "Secure Context"';
}

/** `SecureContextUriValidator.secure_context_uri?` for an http URI's host, as Ruby's URI parser leaves it (case kept). */
function secureContextHost(host: string): boolean {
  if (host === "localhost" || /\.localhost\.?$/.test(host)) return true;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255 && !/^0\d/.test(o)) && v4[1] === "127";
  if (host.startsWith("[") && host.endsWith("]") && URL.canParse(`http://${host}/`)) {
    const h = new URL(`http://${host}/`).hostname;
    return h === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(h);
  }
  return false;
}

/**
 * The client id and the once-shown secret on an application's show page, found by the page's
 * structure (docs/idp/openproject.md "The show page"): the first attribute cell is the client id and,
 * right after a create, the second is the secret — a copy button's `value` on the current line
 * (`OpPrimer::CopyToClipboardComponent`), a `<code>` up to 17.1. Values that are not what OpenProject
 * issues (printable ASCII; an id of at most 256 characters) are not taken.
 */
export function shownCredentials(html: string): { clientId?: string; clientSecret?: string } {
  const [first, second] = attributePairs(html).map((p) => copyableValue(p.value));
  const clientId = first && CLIENT_ID.test(first.value) ? first.value : undefined;
  const secret = second && second.kind !== "text" && CLIENT_SECRET.test(second.value) && !/^https?:/i.test(second.value) && second.value !== clientId ? second.value : undefined;
  return { clientId, clientSecret: secret };
}

/** The user-consent stage (`/account/consent`, its form posting `consent_check` to /account/confirm_consent). */
function consentStage(page: Page): boolean {
  return page.url.pathname.endsWith("/account/consent") || forms(page.html).some((f) => f.names.has("consent_check") || /\/account\/confirm_consent$/.test(f.action));
}

export class OpenProjectAdmin {
  private readonly web: WebSession;
  constructor(
    ctx: ProviderContext,
    readonly base: string,
  ) {
    this.web = new WebSession(ctx, base);
  }

  /**
   * The web login (`LoginForm`: username, password, back_url, authenticity_token). What comes back
   * tells the outcome: the login form again (HTTP 422 on 15.x–17.x) is a refused password; the
   * password-change form, a two-factor stage or the user-consent stage (`/account/consent`: the user is
   * authenticated but not yet signed in until the consent is given) are steps mcp-auth does not take
   * for the admin (docs/idp/openproject.md "Signing in").
   */
  async signIn(user: string, password: string): Promise<void> {
    registerSecret(password);
    const page = await this.web.get("/login");
    if (page.status === 404) throw new Unsupported(`${this.base}/login answers HTTP 404: is this OpenProject?`);
    const form = forms(page.html).find((f) => f.names.has("password") && f.names.has("username"));
    if (!form) throw new Unsupported("the login page has no user name and password form (single sign-on only?)");
    const after = await this.web.post(form.action || "/login", setField(setField(form.fields, "username", user), "password", password));
    const again = forms(after.html);
    if (again.some((f) => f.names.has("password") && f.names.has("username"))) {
      const why = errorTexts(after.html)[0] ?? "the login page came back";
      throw new AuthError(`OpenProject refused the sign-in of "${user}": ${markControl(why)}`, { hint: "check --admin-user and the password (stdin, --admin-password-env or the prompt)" });
    }
    if (/two_factor|2fa/i.test(after.url.pathname) || again.some((f) => f.names.has("otp")) || /two_factor/i.test(after.html)) throw new Unsupported(`the account "${user}" signs in with two-factor authentication`);
    if (again.some((f) => f.names.has("new_password"))) throw new Unsupported(`OpenProject wants the password of "${user}" changed first (first sign-in); do that in the browser, then run this again`);
    if (consentStage(after)) throw new Unsupported(consentReason(user));
    if (after.status === 422) throw new Unsupported("OpenProject refused the login form (invalid authenticity token): cookies or CSRF work differently on this instance");
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
    const { clientId } = shownCredentials(page.html);
    if (!clientId) throw new Unsupported(`the page of application ${appId} shows no client id mcp-auth can read`);
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
    const { clientId, clientSecret } = shownCredentials(after.html);
    if (!clientId || !clientSecret) {
      await this.remove(appId, after);
      throw new Unsupported(`the page OpenProject showed after creating the application has no ${clientId ? "client secret" : "client id"} in the place its show page keeps it; the application was deleted again`);
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

  /** The form came back: say why in OpenProject's own words (whatever the admin's language). */
  private refused(page: Page, spec: CreateSpec): never {
    const errors = errorTexts(page.html).map(markControl);
    const why = errors.join("; ") || `HTTP ${page.status} from ${page.url.pathname}`;
    // A field set this release does not know (Rails ParameterMissing): nothing was saved, the guide still works.
    if (page.status === 400) throw new Unsupported(`OpenProject did not take the new-application form as mcp-auth filled it in (${why})`);
    if (page.status === 403 || page.status === 404) throw new AuthError(`OpenProject refused to create the application: ${why}`);
    throw new UsageError(`OpenProject refused to create the application "${spec.name}": ${why}`, {
      hint: `OpenProject takes https redirect URIs, plain http only to a loopback host, and ${OOB}; --grant client_credentials --client-credentials-user LOGIN needs no redirect at all`,
    });
  }

  /** Deletes an application as its page's Delete button does (Rails `data-method="delete"`: POST with `_method=delete`). */
  private async remove(appId: string, page: Page): Promise<void> {
    const token = csrfMeta(page.html);
    if (!token) return;
    await this.web.post(`${APPS}/${appId}`, [["_method", "delete"], ["authenticity_token", token]]);
  }

  /** An admin page: the login page means the session is gone, 403 that the user is no administrator. */
  private admin(page: Page): Page {
    if (consentStage(page)) throw new Unsupported(consentReason());
    if (page.url.pathname.endsWith("/login") || forms(page.html).some((f: Form) => f.names.has("password") && f.names.has("username"))) {
      throw new AuthError("OpenProject asked for a login again: the admin session was not kept", { hint: "check that the URL is the instance's public URL" });
    }
    if (page.status === 403) throw new AuthError("OpenProject answered 403: the user is not an administrator", { hint: "sign in as an admin with --admin-user" });
    if (page.status !== 200) throw new Unsupported(`${page.url.pathname} answered HTTP ${page.status}`);
    return page;
  }
}

function consentReason(user?: string): string {
  return `OpenProject holds the sign-in${user ? ` of "${user}"` : ""} at its user-consent stage (/account/consent): the consent must be given once in the browser before mcp-auth can act as this user`;
}
