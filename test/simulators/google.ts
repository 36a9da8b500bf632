/**
 * Test simulator of Google's OAuth 2.0 endpoints, for the `google` preset. Follows Google's
 * documentation as of 2026 (docs/presets.md#google):
 *   - developers.google.com/identity/protocols/oauth2/native-app ("OAuth 2.0 for iOS & Desktop Apps"):
 *     authorization at /o/oauth2/v2/auth with PKCE, token at oauth2.googleapis.com/token with the
 *     client secret, a refresh token "only … if your application requested offline access"
 *     (access_type=offline), and again after the first consent only when the user is prompted
 *     (prompt=consent);
 *   - developers.google.com/identity/openid-connect/openid-connect#discovery: the discovery
 *     document at https://accounts.google.com/.well-known/openid-configuration;
 *   - …/oauth2/limited-input-device: device codes at oauth2.googleapis.com/device/code.
 * The simulator serves every endpoint on one origin (the issuer's). Access tokens are opaque (ya29.…),
 * 3599 s, as Google's are.
 */
import { startVendorIdp, type Vendor, type VendorIdp } from "./vendor-idp.js";

export function googleVendor(): Vendor {
  const consented = new Set<string>();
  return {
    issuer: (base) => base,
    paths: { metadata: "/.well-known/openid-configuration", authorize: "/o/oauth2/v2/auth", token: "/token", device: "/device/code", jwks: "/oauth2/v3/certs" },
    metadata: (base) => ({
      issuer: base,
      authorization_endpoint: `${base}/o/oauth2/v2/auth`,
      device_authorization_endpoint: `${base}/device/code`,
      token_endpoint: `${base}/token`,
      jwks_uri: `${base}/oauth2/v3/certs`,
      response_types_supported: ["code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token", "none"],
      scopes_supported: ["openid", "email", "profile"],
      token_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic"],
      code_challenge_methods_supported: ["plain", "S256"],
      grant_types_supported: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
    }),
    secretRequired: () => true,
    async mint(g) {
      // A refresh token: offline access asked for, and a consent screen shown (the first time, or prompt=consent).
      const offline = g.params.access_type === "offline" && (!consented.has(g.clientId) || (g.params.prompt ?? "").split(" ").includes("consent"));
      if (g.params.code_challenge_method !== undefined) consented.add(g.clientId);
      return { access_token: `ya29.sim-${Math.random().toString(36).slice(2)}`, expires_in: 3599, scope: g.scope, token_type: "Bearer", ...(offline ? { refresh_token: `1//sim-${Math.random().toString(36).slice(2)}` } : {}) };
    },
  };
}

export const startGoogle = (clients: Record<string, { secret?: string }>): Promise<VendorIdp> => startVendorIdp(googleVendor(), clients);
