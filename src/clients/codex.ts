import { defineClientWriter, exists, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Codex (CLI, IDE extension and app share it). Verified against openai/codex, docs/config.md: the file
 * is `$CODEX_HOME/config.toml`, CODEX_HOME defaulting to `~/.codex`; "MCP integration" → `[mcp_servers.NAME]`
 * tables, stdio `command`/`args` (`env`), Streamable HTTP `url` with `bearer_token_env_var` (the name of
 * an environment variable holding the bearer token) and `http_headers` (hard-coded values).
 * The file is TOML: edited textually by toml.ts, never re-serialised. A project `.codex/config.toml` is
 * not in that document, so only user scope is offered.
 * Default: the stdio proxy (fresh tokens); `header` names an environment variable (`bearer_token_env_var`),
 * or with --static-token writes the token into `http_headers`.
 */
export const codex = defineClientWriter({
  id: "codex",
  title: "Codex",
  format: "toml",
  scopes: ["user"],
  defaultScope: "user",
  strategies: ["proxy", "header"],
  defaultStrategy: "proxy",
  configPath(env, platform) {
    return joinFor(platform, env.CODEX_HOME || joinFor(platform, homeOf(env), ".codex"), "config.toml");
  },
  serversPath() {
    return ["mcp_servers"];
  },
  entry(spec) {
    if (spec.strategy === "header") {
      if (spec.staticToken) return { server: { url: spec.url, http_headers: { Authorization: `Bearer ${spec.staticToken}` } }, notes: [] };
      return {
        server: { url: spec.url, bearer_token_env_var: spec.headerVar },
        notes: [`Codex reads the token from $${spec.headerVar}: run eval "$(mcp-auth token --profile ${spec.profile} --format env --env-name ${spec.headerVar})" before starting codex (the token expires; the proxy strategy refreshes it for you).`],
      };
    }
    return { server: proxyServer(spec), notes: ["Start a new Codex session to load the server."] };
  },
  installed({ env, platform }) {
    return Boolean(onPath(env, "codex", platform)) || exists(env.CODEX_HOME || joinFor(platform, homeOf(env), ".codex"));
  },
});
