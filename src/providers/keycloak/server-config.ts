/**
 * kubernetes-mcp-server's `config.toml` for a Keycloak realm (seed 001). Written with a TOML
 * library, never by string interpolation: an audience such as `x"⏎require_oauth = false` must stay
 * one quoted string and can never add a key.
 */
export async function serverConfigToml(o: { issuer: string; audience?: string }): Promise<string> {
  const { stringify } = await import("smol-toml");
  return `${stringify({ require_oauth: true, authorization_url: o.issuer, ...(o.audience !== undefined ? { oauth_audience: o.audience } : {}) })}\n`.replace(/\n+$/, "\n");
}
