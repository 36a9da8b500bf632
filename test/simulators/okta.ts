/**
 * Test simulator of an Okta custom authorization server, for the `okta` preset. Follows Okta's
 * documentation as of 2026 (docs/presets.md#okta):
 *   - developer.okta.com/docs/concepts/auth-servers: issuer https://{domain}/oauth2/{authServerId}
 *     for a custom authorization server ("default" exists in every org), https://{domain} for the org
 *     authorization server;
 *   - developer.okta.com/docs/reference/api/oidc: /v1/authorize, /v1/token, /v1/device/authorize,
 *     /v1/keys under the server's path; a refresh token only with offline_access;
 *   - access tokens are JWTs whose aud is the authorization server's audience (api://default) and
 *     whose scp lists the granted scopes.
 */
import { startVendorIdp, type Vendor, type VendorIdp } from "./vendor-idp.js";

export function oktaVendor(server = "default"): Vendor {
  // The org authorization server: issuer the org's origin, endpoints under /oauth2/v1.
  const iss = server === "org" ? "" : `/oauth2/${server}`;
  const p = server === "org" ? "/oauth2" : iss;
  return {
    issuer: (base) => `${base}${iss}`,
    paths: { metadata: `${iss}/.well-known/openid-configuration`, authorize: `${p}/v1/authorize`, token: `${p}/v1/token`, device: `${p}/v1/device/authorize`, jwks: `${p}/v1/keys` },
    metadata: (base) => ({
      issuer: `${base}${iss}`,
      authorization_endpoint: `${base}${p}/v1/authorize`,
      token_endpoint: `${base}${p}/v1/token`,
      device_authorization_endpoint: `${base}${p}/v1/device/authorize`,
      jwks_uri: `${base}${p}/v1/keys`,
      grant_types_supported: ["authorization_code", "implicit", "refresh_token", "password", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"],
      code_challenge_methods_supported: ["S256"],
      scopes_supported: ["openid", "profile", "email", "address", "phone", "offline_access", "device_sso"],
    }),
    async mint(g, { issuer, sign }) {
      const scp = g.scope.split(" ").filter(Boolean);
      // The org server's tokens are for Okta's own APIs (aud: the org), not for your servers.
      const access_token = await sign({ ver: 1, iss: issuer, aud: server === "org" ? issuer : `api://${server}`, cid: g.clientId, scp, sub: "user@example.com" });
      return { token_type: "Bearer", expires_in: 3600, access_token, scope: g.scope, ...(scp.includes("offline_access") ? { refresh_token: `okta-rt-${Math.random().toString(36).slice(2)}` } : {}) };
    },
  };
}

export const startOkta = (clients: Record<string, { secret?: string }>, server = "default"): Promise<VendorIdp> => startVendorIdp(oktaVendor(server), clients);
