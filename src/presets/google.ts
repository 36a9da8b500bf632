import { UsageError } from "../errors.js";
import { defineInput } from "../core/inputs.js";
import { definePreset, presetInputs, originOf, scopeList } from "./preset.js";

/**
 * Google (OAuth 2.0 for desktop apps, and for TVs and limited-input devices). Facts: docs/presets.md#google.
 * - Issuer https://accounts.google.com (discovery names the endpoints).
 * - A refresh token only with `access_type=offline`, and again after the first consent only with
 *   `prompt=consent`: the preset stores both as authorization parameters.
 * - A "Desktop app" client has a client secret that the token endpoint wants although the app is
 *   public; the device flow needs a "TVs and Limited Input devices" client (and its secret), with a
 *   short list of allowed scopes.
 * - No RFC 8707 resource, no `audience`, no dynamic client registration; no client credentials grant
 *   (machines use service accounts, which mcp-auth does not cover).
 */
export const GOOGLE_REFRESH_PARAMS = { access_type: "offline", prompt: "consent" } as const;

export const google = definePreset({
  id: "google",
  title: "Google",
  summary: "a Desktop app OAuth client: --client-id ID --client-secret-env VAR (refresh via access_type=offline)",
  docs: "docs/presets.md#google",
  inputs: [
    presetInputs.clientId("the OAuth client id", "OAuth client ID (…apps.googleusercontent.com)"),
    defineInput({ name: "clientSecret", flag: "--client-secret", kind: "string", secret: true, required: true, description: "the Desktop app client's secret (Google's token endpoint wants it)" }),
    presetInputs.scope(["openid", "email"]),
    presetInputs.mcpUrl(),
  ],
  grants: ["authorization_code", "device_code"],
  secret: () => "required",
  plan(a) {
    const grant = a.grant ?? "authorization_code";
    if (grant === "client_credentials") throw new UsageError("Google has no client credentials grant: machines use service accounts", { hint: "use --grant authorization_code or device_code" });
    if (a.resource) throw new UsageError("--preset google sends no --resource: Google's endpoints do not take RFC 8707 resource indicators");
    if (a.audience) throw new UsageError("--preset google sends no --audience: Google has no audience parameter");
    const issuer = a.issuer ? originOf("--issuer", a.issuer, "the issuer") : "https://accounts.google.com";
    const typed = scopeList(a.scope);
    const scopes = typed.length ? typed : ["openid", "email"];
    // The user's own parameters win (e.g. prompt=select_account consent).
    const authorizeParams = grant === "authorization_code" ? { ...GOOGLE_REFRESH_PARAMS, ...a.authorizeParams } : a.authorizeParams;
    const notes = [grant === "authorization_code" ? "authorization parameters access_type=offline and prompt=consent (without them Google returns no refresh token)" : "the device flow needs a \"TVs and Limited Input devices\" client and allows only some scopes"];
    return { issuer, grant, scopes, authorizeParams, extra: { preset: "google" }, notes };
  },
  setup: (a) => [
    "Google Cloud console → APIs & Services → OAuth consent screen (or Google Auth Platform → Branding/Audience): configure it, and add yourself as a test user while the app is in testing.",
    a.grant === "device_code"
      ? "Credentials → Create credentials → OAuth client ID → Application type: TVs and Limited Input devices. Copy the client ID and secret."
      : "Credentials → Create credentials → OAuth client ID → Application type: Desktop app (loopback redirects on any port need no registration). Copy the client ID and secret.",
    "Google keeps the secret of an installed-app client out of its confidentiality rules, but its token endpoint wants it: give it with --client-secret-env VAR or --client-secret-stdin.",
    "There is no dynamic client registration at Google.",
  ],
  matches: (issuer) => issuer === "https://accounts.google.com",
  fixes: [
    // A redirect_uri_mismatch stops at Google's own page: the browser never comes back.
    { match: /login timed out/, fix: () => "if the browser showed redirect_uri_mismatch or access blocked, use a Desktop app client and add yourself as a test user; otherwise run the login again" },
    { match: /redirect_uri_mismatch/, fix: () => "use a Desktop app client (Credentials → OAuth client ID → Desktop app): its loopback redirects need no registration" },
    { match: /client_secret is missing|invalid_client/, fix: (p) => `Google's token endpoint wants the client secret: mcp-auth profiles set ${p} --client-secret-env VAR` },
    { match: /invalid_grant/, fix: (p) => `the refresh token was revoked or expired (apps in testing get 7-day refresh tokens): mcp-auth login ${p}` },
    { match: /access_denied|org_internal|admin_policy_enforced/, fix: () => "the consent screen refused the account: add it as a test user, or publish the app (OAuth consent screen)" },
    { match: /invalid_scope|disallowed_client|unauthorized_client/, fix: () => "the device flow allows only some scopes and needs a \"TVs and Limited Input devices\" client; use the browser login for other scopes" },
  ],
  check(p, hasRefresh) {
    if (p.grant !== "authorization_code") return [{ status: "pass", detail: "device flow (a TVs and Limited Input devices client)" }];
    const ap = p.authorizeParams ?? {};
    const fix = `mcp-auth profiles set ${p.name ?? "NAME"} --authorize-param access_type=offline --authorize-param prompt=consent, then mcp-auth login ${p.name ?? "NAME"}`;
    if (ap.access_type !== "offline") return [{ status: "fail", detail: "no access_type=offline: Google returns no refresh token, so the token dies within the hour", fix }];
    if (hasRefresh === false) return [{ status: "warn", detail: "no refresh token is stored: Google sends one only on a consent (prompt=consent)", fix }];
    return [{ status: "pass", detail: "access_type=offline" + (ap.prompt?.includes("consent") ? " and prompt=consent" : "") + (hasRefresh ? "; a refresh token is stored" : "") }];
  },
});
