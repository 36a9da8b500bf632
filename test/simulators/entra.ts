/**
 * Test simulator of Microsoft Entra ID's v2.0 endpoints (the Microsoft identity platform), for the
 * `entra` preset. Follows Microsoft's documentation as of 2026 (docs/presets.md#entra):
 *   - learn.microsoft.com/entra/identity-platform/v2-protocols-oidc: metadata at
 *     {authority}/{tenant}/v2.0/.well-known/openid-configuration, issuer {authority}/{tenant-id}/v2.0;
 *   - …/v2-oauth2-auth-code-flow and …/v2-oauth2-device-code: /{tenant}/oauth2/v2.0/authorize,
 *     /token, /devicecode; a refresh token only with the offline_access scope;
 *   - …/reference-error-codes: AADSTS9010010 ("The resource parameter provided in the request doesn't
 *     match with the requested scopes", enforced on every `resource` since March 2026, see
 *     microsoft/powerbi-modeling-mcp#68, punkpeye/mcp-remote#217) and AADSTS28000 (scopes of more than
 *     one resource), both answered as invalid_request.
 * Access tokens: RS256 JWTs with the v2.0 issuer and the API (the scope's resource) as aud.
 */
import { startVendorIdp, type Vendor, type VendorIdp } from "./vendor-idp.js";

export const ENTRA_TENANT = "0f3a1c2d-4b5e-4f60-8a7b-9c0d1e2f3a4b";

const resourceOf = (scope: string) => {
  const api = scope.split(" ").filter((s) => !["openid", "profile", "email", "offline_access"].includes(s));
  return [...new Set(api.map((s) => (s.lastIndexOf("/") > 0 ? s.slice(0, s.lastIndexOf("/")) : "https://graph.microsoft.com")))];
};

export function entraVendor(tenant = ENTRA_TENANT): Vendor {
  const t = `/${tenant}`;
  return {
    issuer: (base) => `${base}${t}/v2.0`,
    paths: { metadata: `${t}/v2.0/.well-known/openid-configuration`, authorize: `${t}/oauth2/v2.0/authorize`, token: `${t}/oauth2/v2.0/token`, device: `${t}/oauth2/v2.0/devicecode`, jwks: `${t}/discovery/v2.0/keys` },
    metadata: (base) => ({
      issuer: `${base}${t}/v2.0`,
      authorization_endpoint: `${base}${t}/oauth2/v2.0/authorize`,
      token_endpoint: `${base}${t}/oauth2/v2.0/token`,
      device_authorization_endpoint: `${base}${t}/oauth2/v2.0/devicecode`,
      jwks_uri: `${base}${t}/discovery/v2.0/keys`,
      response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
      scopes_supported: ["openid", "profile", "email", "offline_access"],
      token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
    }),
    authorize(q) {
      if (q.resource !== undefined) return { error: "invalid_request", error_description: "AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes." };
      if (resourceOf(q.scope ?? "").length > 1) return { error: "invalid_request", error_description: `AADSTS28000: Provided value for the input parameter scope is not valid because it contains more than one resource. Scope ${q.scope} is not valid.` };
      return undefined;
    },
    async mint(g, { issuer, sign }) {
      const aud = resourceOf(g.scope)[0] ?? "00000003-0000-0000-c000-000000000000";
      const access_token = await sign({ iss: issuer, aud, tid: ENTRA_TENANT, azp: g.clientId, scp: g.scope.split(" ").filter((s) => s.includes("/")).map((s) => s.slice(s.lastIndexOf("/") + 1)).join(" "), ver: "2.0" });
      return { token_type: "Bearer", scope: g.scope, expires_in: 3599, ext_expires_in: 3599, access_token, ...(g.scope.split(" ").includes("offline_access") ? { refresh_token: `0.entra-rt-${Math.random().toString(36).slice(2)}` } : {}) };
    },
  };
}

export const startEntra = (clients: Record<string, { secret?: string }>): Promise<VendorIdp> => startVendorIdp(entraVendor(), clients);
