import { defineClientWriter, hasOwnData, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Codex (CLI, IDE extension and app share it; docs/clients.md, verified in openai/codex and
 * @openai/codex 0.169.0). User file `$CODEX_HOME/config.toml` (CODEX_HOME defaults to `~/.codex`);
 * project file `.codex/config.toml`, which Codex loads only for a trusted project (`[projects."<dir>"]
 * trust_level = "trusted"` in the user file, set when you trust the folder). `[mcp_servers.NAME]` tables:
 * stdio `command`/`args` (`env`), Streamable HTTP `url` with `bearer_token_env_var` (the name of a
 * variable holding the bearer token) and `http_headers`; `startup_timeout_sec` (default 10 s) bounds
 * the server's start and first tool listing.
 * The file is TOML: edited textually by toml.ts, never re-serialised.
 * Default: the stdio proxy (fresh tokens); `header` names an environment variable (`bearer_token_env_var`),
 * or with --static-token writes the token into `http_headers`.
 */

/** The proxy's start may include a token refresh (discovery + token request, 30 s HTTP time-out each). */
export const CODEX_STARTUP_TIMEOUT_SEC = 60;

export const codex = defineClientWriter({
  id: "codex",
  title: "Codex",
  format: "toml",
  scopes: ["user", "project"],
  defaultScope: "user",
  strategies: ["proxy", "header"],
  defaultStrategy: "proxy",
  configPath(env, platform, scope, cwd) {
    if (scope === "project") return joinFor(platform, cwd, ".codex", "config.toml");
    return joinFor(platform, env.CODEX_HOME || joinFor(platform, homeOf(env), ".codex"), "config.toml");
  },
  serversPath() {
    return ["mcp_servers"];
  },
  entry(spec) {
    const notes = spec.scope === "project" ? ["Codex loads a project's .codex/config.toml only once you trust the project (codex asks, or add [projects.\"<this folder>\"] trust_level = \"trusted\" to ~/.codex/config.toml)."] : [];
    if (spec.strategy === "header") {
      if (spec.staticToken) return { server: { url: spec.url, http_headers: { Authorization: `Bearer ${spec.staticToken}` } }, notes };
      return {
        server: { url: spec.url, bearer_token_env_var: spec.headerVar },
        notes: [...notes, `Codex reads the token from $${spec.headerVar}: run eval "$(mcp-auth token --profile ${spec.profile} --format env --env-name ${spec.headerVar})" before starting codex (the token expires; the proxy strategy refreshes it for you).`],
      };
    }
    return { server: { ...proxyServer(spec), startup_timeout_sec: CODEX_STARTUP_TIMEOUT_SEC }, notes: [...notes, "Start a new Codex session to load the server."] };
  },
  installed({ env, platform }) {
    return Boolean(onPath(env, "codex", platform)) || hasOwnData(env.CODEX_HOME || joinFor(platform, homeOf(env), ".codex"), ["config.toml"]);
  },
});
