import { UsageError } from "../errors.js";
import { defineInput } from "../core/inputs.js";
import { definePreset, presetInputs, originOf, scopeList, withScopes } from "./preset.js";

/**
 * Auth0. Facts: docs/presets.md#auth0.
 * - Issuer `https://{domain}/` (with its trailing slash; a custom domain is its own issuer).
 * - The API is chosen with the `audience` parameter (the API's Identifier), on the authorization
 *   request and on client credentials requests; without it Auth0 issues an opaque token for its
 *   own /userinfo, which an MCP server cannot validate.
 * - `offline_access` plus "Allow Offline Access" on the API for a refresh token; the device flow for
 *   Native apps with the Device Code grant; dynamic registration only when the tenant enables it.
 */
export const auth0 = definePreset({
  id: "auth0",
  title: "Auth0",
  summary: "an application and an API: --domain TENANT.auth0.com --client-id ID --audience API_IDENTIFIER",
  docs: "docs/presets.md#auth0",
  inputs: [
    defineInput({ name: "domain", flag: "--domain <host>", kind: "string", description: "Auth0: the tenant's (or custom) domain", prompt: "Auth0 domain (TENANT.us.auth0.com)", required: true }),
    defineInput({ name: "audience", flag: "--audience <aud>", kind: "string", description: "Auth0: the API Identifier of the MCP server", prompt: "API Identifier (audience) of the MCP server", required: true }),
    presetInputs.clientId("the application's client id", "Client ID"),
    presetInputs.scope(["openid", "offline_access"]),
    presetInputs.grant(),
    presetInputs.mcpUrl(),
  ],
  grants: ["authorization_code", "device_code", "client_credentials"],
  secret: (grant) => (grant === "client_credentials" ? "required" : "optional"),
  plan(a) {
    const origin = originOf("--domain", a.domain, "your Auth0 tenant's domain, e.g. TENANT.us.auth0.com");
    if (!a.audience) throw new UsageError("--preset auth0 needs --audience API_IDENTIFIER (Applications → APIs → your API → Identifier)", { hint: "without it Auth0 issues an opaque token for /userinfo that no MCP server can validate" });
    if (a.resource) throw new UsageError("--preset auth0 names the API with --audience, not --resource");
    const grant = a.grant ?? (a.hasSecret ? "client_credentials" : "authorization_code");
    const typed = scopeList(a.scope);
    const scopes = grant === "client_credentials" ? typed : withScopes(typed.length ? typed : ["openid"], ["offline_access"]);
    return {
      issuer: `${origin}/`,
      grant,
      scopes: scopes.length ? scopes : undefined,
      audience: a.audience,
      authorizeParams: a.authorizeParams,
      extra: { preset: "auth0" },
      notes: [`audience ${a.audience} on every request (Auth0's way of naming the API; the token's aud)`],
    };
  },
  setup: (a) => [
    "Auth0 Dashboard → Applications → APIs → Create API: its Identifier is --audience; turn on Allow Offline Access for refresh tokens.",
    `Applications → Applications → Create Application → ${a.grant === "client_credentials" ? "Machine to Machine (authorize it for the API)" : "Native"}. Copy the Client ID.`,
    ...(a.grant === "client_credentials" ? [] : ["Allowed Callback URLs: http://127.0.0.1/callback; with a fixed --redirect-port PORT, register http://127.0.0.1:PORT/callback."]),
    ...(a.grant === "device_code" ? ["Advanced Settings → Grant Types: Device Code."] : []),
    "Dynamic client registration is off unless the tenant enables it (Settings → Advanced → Dynamic Client Registration): the preset uses the application's client id.",
  ],
  matches: (issuer) => /^https:\/\/[^/]+\.auth0\.com\/?$/.test(issuer),
  fixes: [
    { match: /login timed out/, fix: () => "if the browser showed Callback URL mismatch, add http://127.0.0.1/callback to the Allowed Callback URLs; otherwise run the login again" },
    { match: /Service not found|invalid audience|audience/i, fix: (p) => `the audience must be the API's Identifier exactly: mcp-auth profiles set ${p} --audience API_IDENTIFIER` },
    { match: /Callback URL mismatch|redirect_uri/i, fix: () => "add http://127.0.0.1/callback to the application's Allowed Callback URLs (with --redirect-port PORT: http://127.0.0.1:PORT/callback)" },
    { match: /unauthorized_client|Grant type .* not allowed/i, fix: () => "enable the grant on the application (Advanced Settings → Grant Types)" },
    { match: /access_denied/, fix: () => "the application is not authorized for the API or the user did not consent: Applications → APIs → Machine to Machine / User Access" },
  ],
  check(p) {
    const out = [];
    if (!p.audience) out.push({ status: "fail" as const, detail: "no audience: Auth0 issues an opaque /userinfo token that the MCP server cannot validate", fix: `mcp-auth profiles set ${p.name ?? "NAME"} --audience API_IDENTIFIER` });
    if (p.grant !== "client_credentials" && !(p.scopes ?? []).includes("offline_access")) out.push({ status: "warn" as const, detail: "no offline_access scope: Auth0 returns no refresh token", fix: `mcp-auth profiles set ${p.name ?? "NAME"} --scope ${[...(p.scopes ?? []), "offline_access"].join(" ")} (and Allow Offline Access on the API)` });
    if (!out.length) out.push({ status: "pass" as const, detail: `audience ${p.audience}` });
    return out;
  },
});
