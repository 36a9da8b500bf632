/**
 * Test simulator of an Auth0 tenant, for the `auth0` preset. Follows Auth0's documentation as of
 * 2026 (docs/presets.md#auth0):
 *   - auth0.com/docs/api/authentication: /authorize, /oauth/token, /oauth/device/code; metadata at
 *     /.well-known/openid-configuration whose issuer ends in "/";
 *   - auth0.com/docs/secure/tokens/access-tokens/get-access-tokens and support article "Value of the
 *     Audience Attribute…": with `audience` (the API Identifier) the access token is a JWT whose aud
 *     names the API (and /userinfo when openid was asked for); without it, an opaque token for
 *     /userinfo only;
 *   - auth0.com/docs/secure/tokens/refresh-tokens: a refresh token only with offline_access.
 */
import { startVendorIdp, type Vendor, type VendorIdp } from "./vendor-idp.js";

export function auth0Vendor(): Vendor {
  return {
    issuer: (base) => `${base}/`,
    paths: { metadata: "/.well-known/openid-configuration", authorize: "/authorize", token: "/oauth/token", device: "/oauth/device/code", jwks: "/.well-known/jwks.json" },
    metadata: (base) => ({
      issuer: `${base}/`,
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/oauth/token`,
      device_authorization_endpoint: `${base}/oauth/device/code`,
      userinfo_endpoint: `${base}/userinfo`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      code_challenge_methods_supported: ["S256", "plain"],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "private_key_jwt"],
    }),
    async mint(g, { base, issuer, sign }) {
      const scopes = g.scope.split(" ").filter(Boolean);
      const audience = g.params.audience;
      const access_token = audience ? await sign({ iss: issuer, sub: "auth0|user", aud: scopes.includes("openid") ? [audience, `${base}/userinfo`] : audience, azp: g.clientId, scope: g.scope }) : `opaque-userinfo-${Math.random().toString(36).slice(2)}`;
      return { access_token, token_type: "Bearer", expires_in: 86400, scope: g.scope, ...(scopes.includes("offline_access") ? { refresh_token: `v1.auth0-rt-${Math.random().toString(36).slice(2)}` } : {}) };
    },
  };
}

export const startAuth0 = (clients: Record<string, { secret?: string }>): Promise<VendorIdp> => startVendorIdp(auth0Vendor(), clients);
