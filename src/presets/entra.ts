import { UsageError } from "../errors.js";
import { defineInput } from "../core/inputs.js";
import { definePreset, presetInputs, OIDC_SCOPES, originOf, scopeList, withScopes, type PresetAnswers } from "./preset.js";

/**
 * Microsoft Entra ID (the Microsoft identity platform, v2.0 endpoints). Facts: docs/presets.md#entra.
 * - Issuer: the tenant-specific v2.0 issuer `{authority}/{tenant-id}/v2.0`; the multi-tenant
 *   authorities (common, organizations, consumers) have no single issuer, and a domain-named tenant's
 *   metadata names the tenant id, so only the id fits mcp-auth's exact issuer check.
 * - No RFC 8707 `resource`: the v2.0 endpoint refuses it (AADSTS9010010, AADSTS901002); the API is
 *   named in the scope instead (`api://APP/.default` or `api://APP/scope`), one API per request
 *   (AADSTS28000).
 * - `offline_access` for a refresh token; no dynamic client registration; the device flow needs
 *   "Allow public client flows".
 */
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const AUTHORITY = "https://login.microsoftonline.com";

function tenantOf(a: PresetAnswers): string {
  const t = a.tenant?.trim();
  if (!t) throw new UsageError("--preset entra needs --tenant TENANT_ID (the Directory (tenant) ID on the app registration's Overview page)");
  if (/^(common|organizations|consumers)$/i.test(t)) {
    throw new UsageError(`--tenant ${t} is a multi-tenant authority: tokens carry each user's own tenant as issuer, so there is no one issuer to check`, { hint: "pass the tenant id (a GUID) of the directory your MCP server trusts" });
  }
  if (!GUID.test(t)) {
    throw new UsageError(`--tenant wants the tenant id (a GUID), got "${t.slice(0, 80)}"`, { hint: "a domain name works at Entra, but its metadata names the tenant id as issuer; copy the Directory (tenant) ID from the portal" });
  }
  return t.toLowerCase();
}

/** The API a scope is for: `api://x/.default` → `api://x`; a bare `User.Read` is Microsoft Graph's. */
function resourceOfScope(s: string): string {
  const i = s.lastIndexOf("/");
  return i > 0 ? s.slice(0, i) : "https://graph.microsoft.com";
}

export const entra = definePreset({
  id: "entra",
  title: "Microsoft Entra ID",
  summary: "an app registration in your tenant: --tenant ID --client-id ID --scope api://APP/.default",
  docs: "docs/presets.md#entra",
  inputs: [
    defineInput({ name: "tenant", flag: "--tenant <id>", kind: "string", description: "Entra: the Directory (tenant) ID", prompt: "Directory (tenant) ID", required: true }),
    presetInputs.clientId("the Application (client) ID", "Application (client) ID"),
    defineInput({ name: "scope", flag: "--scope <scope...>", kind: "list", description: "the API's scope", prompt: "Scope of the MCP server's API (api://APP/.default)", required: true }),
    presetInputs.grant(),
    presetInputs.mcpUrl(),
  ],
  grants: ["authorization_code", "device_code", "client_credentials"],
  secret: (grant) => (grant === "client_credentials" ? "required" : "optional"),
  plan(a) {
    const tenant = tenantOf(a);
    const authority = a.authority ? originOf("--authority", a.authority, "the login host") : AUTHORITY;
    if (a.resource) {
      throw new UsageError("--preset entra sends no --resource: Entra's v2.0 endpoint refuses RFC 8707 resource (AADSTS9010010); the API is named in --scope", { hint: "drop --resource; pass --scope api://APP/.default" });
    }
    const grant = a.grant ?? (a.hasSecret ? "client_credentials" : "authorization_code");
    const typed = scopeList(a.scope);
    const api = typed.filter((s) => !OIDC_SCOPES.includes(s));
    if (!api.length) {
      throw new UsageError("--preset entra needs --scope naming the MCP server's API, e.g. api://APP/.default", { hint: "with OpenID scopes alone Entra issues a Microsoft Graph token, which no other server can validate" });
    }
    const apis = [...new Set(api.map(resourceOfScope))];
    if (apis.length > 1) throw new UsageError(`--scope names ${apis.length} APIs (${apis.join(", ")}); Entra issues a token for one API per request (AADSTS28000)`, { hint: "make one profile per API" });
    const notes = [`issuer ${authority}/${tenant}/v2.0 (the tenant's v2.0 issuer); no RFC 8707 resource (Entra refuses it: AADSTS9010010), the API is in the scope`];
    if (grant === "client_credentials") {
      if (api.length !== 1 || !api[0]!.endsWith("/.default") || typed.length !== 1) {
        throw new UsageError("client credentials at Entra take exactly one scope, the API's /.default (e.g. api://APP/.default)");
      }
    } else notes.push("added openid and offline_access (Entra returns a refresh token only with offline_access)");
    return {
      issuer: `${authority}/${tenant}/v2.0`,
      grant,
      scopes: grant === "client_credentials" ? typed : withScopes(typed, ["openid", "offline_access"]),
      authorizeParams: a.authorizeParams,
      extra: { preset: "entra", tenant },
      notes,
    };
  },
  setup: (a) => [
    "Entra admin center → Identity → Applications → App registrations → New registration (single tenant). Copy the Application (client) ID and the Directory (tenant) ID.",
    a.grant === "client_credentials"
      ? "Certificates & secrets → New client secret; give it to --client-secret-env VAR or --client-secret-stdin."
      : "Authentication → Add a platform → Mobile and desktop applications → custom redirect URI http://localhost/callback (Entra ignores the port of a loopback redirect URI, and mcp-auth listens on 127.0.0.1 with a free port).",
    ...(a.grant === "device_code" ? ["Authentication → Advanced settings → Allow public client flows: Yes (the device code flow needs it)."] : []),
    "On the MCP server's own app registration: Expose an API (Application ID URI api://…, a scope), and add this app under Authorized client applications, or grant it under API permissions.",
    "There is no dynamic client registration at Entra: the client id always comes from an app registration.",
  ],
  matches: (issuer) => /^https:\/\/login\.microsoftonline\.(com|us)\/|^https:\/\/login\.partner\.microsoftonline\.cn\/|^https:\/\/sts\.windows\.net\//.test(issuer),
  fixes: [
    // A redirect URI mismatch stops at Entra's own page: the browser never comes back.
    { match: /login timed out/, fix: () => "if the browser showed AADSTS50011, register http://localhost/callback under Authentication → Mobile and desktop applications; otherwise run the login again" },
    { match: /AADSTS9010010|AADSTS901002/, fix: (p) => `Entra refuses RFC 8707 resource: drop it with mcp-auth profiles set ${p} --resource "" and name the API in the scope (--scope api://APP/.default); a discovered profile: mcp-auth login URL --no-resource` },
    { match: /AADSTS50011/, fix: () => "the redirect URI is not registered: add http://localhost/callback under Authentication → Mobile and desktop applications (Entra ignores the loopback port)" },
    { match: /AADSTS28000/, fix: (p) => `one API per token: keep the scopes of one API in mcp-auth profiles set ${p} --scope api://APP/.default` },
    { match: /AADSTS650053|AADSTS70011|invalid_scope/, fix: (p) => `name a scope the API exposes: mcp-auth profiles set ${p} --scope api://APP/.default (Expose an API on the server's app registration)` },
    { match: /AADSTS65001/, fix: () => "consent is missing: grant admin consent under API permissions, or sign in once as a user allowed to consent" },
    { match: /AADSTS700016/, fix: () => "the application was not found in this tenant: check --client-id and --tenant (the app registration's Overview page)" },
    { match: /AADSTS7000218/, fix: () => "the device flow needs a public client: Authentication → Allow public client flows: Yes (or pass a client secret for a confidential client)" },
    { match: /AADSTS50059|AADSTS90002/, fix: (p) => `the tenant is unknown: check the tenant id (mcp-auth profiles add ${p} --preset entra --tenant TENANT_ID … --force)` },
  ],
  check(p) {
    const out = [];
    if (p.resource) out.push({ status: "fail" as const, detail: `the profile sends RFC 8707 resource ${p.resource}; Entra refuses it (AADSTS9010010)`, fix: `mcp-auth profiles set ${p.name ?? "NAME"} --resource ""` });
    const api = (p.scopes ?? []).filter((s) => !OIDC_SCOPES.includes(s));
    if (!api.length) out.push({ status: "fail" as const, detail: "no scope names the MCP server's API: Entra would issue a Microsoft Graph token", fix: `mcp-auth profiles set ${p.name ?? "NAME"} --scope api://APP/.default openid offline_access` });
    if (p.grant !== "client_credentials" && !(p.scopes ?? []).includes("offline_access")) out.push({ status: "warn" as const, detail: "no offline_access scope: Entra returns no refresh token, so every hour needs a new sign-in", fix: `add offline_access: mcp-auth profiles set ${p.name ?? "NAME"} --scope ${[...(p.scopes ?? []), "offline_access"].join(" ")}` });
    if (!out.length) out.push({ status: "pass" as const, detail: "no resource parameter, the API named in the scope" + (p.grant === "client_credentials" ? "" : ", offline_access for refresh") });
    return out;
  },
});
