/**
 * kubernetes-mcp-server's `config.toml` for a Keycloak realm (keys from its docs/configuration.md;
 * docs/idp/keycloak.md "Server config"). Written with a TOML library, never by string interpolation:
 * an audience such as `x"⏎require_oauth = false` must stay one quoted string and can never add a key.
 *  - `server_url`: the server's public URL, advertised in its protected-resource metadata (without it,
 *    behind TLS termination, it advertises `http://<Host>`, which MCP clients refuse);
 *  - `oauth_scopes`: the scopes it advertises, so MCP clients ask only for scopes the realm grants
 *    them (without it they ask for every scope Keycloak lists and get `invalid_scope`).
 */
export async function serverConfigToml(o: { issuer: string; audience?: string; serverUrl?: string; oauthScopes?: string[] }): Promise<string> {
  const { stringify } = await import("smol-toml");
  const config = {
    require_oauth: true,
    authorization_url: o.issuer,
    ...(o.audience !== undefined ? { oauth_audience: o.audience } : {}),
    ...(o.serverUrl !== undefined ? { server_url: o.serverUrl } : {}),
    ...(o.oauthScopes?.length ? { oauth_scopes: o.oauthScopes } : {}),
  };
  return `${stringify(config)}\n`.replace(/\n+$/, "\n");
}
