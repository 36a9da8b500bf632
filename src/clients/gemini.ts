import { bearer, defineClientWriter, hasOwnData, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Gemini CLI (docs/clients.md, verified in google-gemini/gemini-cli 0.61.0). Settings: user
 * `~/.gemini/settings.json`, project `.gemini/settings.json`, root `mcpServers`; stdio `command`/`args`/`env`;
 * Streamable HTTP `url` with `type: "http"` (`httpUrl` is deprecated) and `headers`. `$VAR`/`${VAR}` in
 * settings are resolved from Gemini CLI's own environment when they load.
 * Gemini CLI starts stdio servers without any variable whose name matches TOKEN, SECRET, PASSWORD, KEY,
 * AUTH, CREDENTIAL, CREDS, PRIVATE or CERT (so every MCP_AUTH_* and NODE_EXTRA_CA_CERTS), but passes an
 * entry's own `env`: the entry carries those settings as flags or in `env`. Its policy parser splits tool
 * names `mcp_<server>_<tool>` at the first `_`, so server names have none.
 * Default: the stdio proxy (fresh tokens); `header` writes `${NAME}`, expanded from Gemini CLI's environment.
 */
/** A fixed port for the redirect URI a pre-registered client needs (Gemini CLI otherwise picks a free one). */
const GEMINI_CALLBACK_PORT = 7777;

const DROPPED = /TOKEN|SECRET|PASSWORD|PASSWD|KEY|AUTH|CREDENTIAL|CREDS|PRIVATE|CERT/i;

export const gemini = defineClientWriter({
  id: "gemini",
  title: "Gemini CLI",
  scopes: ["user", "project"],
  defaultScope: "user",
  strategies: ["proxy", "header", "native"],
  defaultStrategy: "proxy",
  nameChars: /^[A-Za-z0-9-]+$/,
  dropsEnv: (name) => DROPPED.test(name) && !name.toUpperCase().startsWith("GEMINI_CLI_"),
  configPath(env, platform, scope, cwd) {
    return joinFor(platform, scope === "project" ? cwd : homeOf(env), ".gemini", "settings.json");
  },
  serversPath() {
    return ["mcpServers"];
  },
  entry(spec) {
    if (spec.native) {
      // Gemini CLI's own OAuth: it discovers the endpoints from the server and listens on redirectUri's port.
      const redirectUri = `http://localhost:${spec.native.port ?? GEMINI_CALLBACK_PORT}/oauth/callback`;
      const oauth = { enabled: true, clientId: spec.native.clientId, redirectUri, ...(spec.native.scopes && { scopes: spec.native.scopes }) };
      return { server: { type: "http", url: spec.url, oauth }, notes: [`Gemini CLI logs in itself as client ${spec.native.clientId}: that client must be public and have ${redirectUri} as a redirect URI. Run /mcp auth ${spec.name} in Gemini CLI to log in.`] };
    }
    if (spec.strategy === "header") {
      const server = { type: "http", url: spec.url, headers: { Authorization: bearer(spec, `\${${spec.headerVar}}`) } };
      const notes = spec.staticToken
        ? []
        : [`Gemini CLI reads the token from $${spec.headerVar}: export ${spec.headerVar}="$(mcp-auth token --profile ${spec.profile})" before starting gemini (the token expires; the proxy strategy refreshes it for you).`];
      return { server, notes };
    }
    return { server: proxyServer(spec), notes: ["Restart Gemini CLI to load the server. It starts MCP servers only in folders you trust (it asks, or: gemini trust)."] };
  },
  installed({ env, platform }) {
    return Boolean(onPath(env, "gemini", platform)) || hasOwnData(joinFor(platform, homeOf(env), ".gemini"), ["settings.json"]);
  },
});
