import { defineClientWriter, hasOwnData, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Cline (VS Code extension 4.x and the `cline` CLI share it; docs/clients.md, Cline). One user file,
 * `cline_mcp_settings.json` in `settings/` of Cline's data dir: `$CLINE_MCP_SETTINGS_PATH` when set, else
 * `$CLINE_DATA_DIR/settings`, else `$CLINE_DIR/data/settings` (default `~/.cline/data/settings`, on every
 * OS). Older extension releases kept it in VS Code's extension storage; 4.x moves those servers over once.
 * `mcpServers`: stdio `{ "type": "stdio", "command", "args", "env" }`, `timeout` in seconds (default 60).
 * No variable expansion is documented for remote `headers`, so only the proxy is offered.
 */
export const CLINE_TIMEOUT_SEC = 60;

function dataDir(env: NodeJS.ProcessEnv, platform: string): string {
  return env.CLINE_DATA_DIR?.trim() || joinFor(platform, env.CLINE_DIR?.trim() || joinFor(platform, homeOf(env), ".cline"), "data");
}

export const cline = defineClientWriter({
  id: "cline",
  title: "Cline",
  scopes: ["user"],
  defaultScope: "user",
  strategies: ["proxy"],
  defaultStrategy: "proxy",
  configPath(env, platform) {
    return env.CLINE_MCP_SETTINGS_PATH?.trim() || joinFor(platform, dataDir(env, platform), "settings", "cline_mcp_settings.json");
  },
  serversPath() {
    return ["mcpServers"];
  },
  entry(spec) {
    const { command, args, env } = proxyServer(spec);
    return { server: { type: "stdio", command, args, ...(env && { env }), timeout: CLINE_TIMEOUT_SEC }, notes: ["Restart Cline (in VS Code: Developer: Reload Window) to load the server."] };
  },
  installed({ env, platform }) {
    // The CLI, or Cline's own data (sessions, settings) beside the MCP file add-client writes.
    const data = dataDir(env, platform);
    return Boolean(onPath(env, "cline", platform)) || hasOwnData(data, ["settings"]) || hasOwnData(joinFor(platform, data, "settings"), ["cline_mcp_settings.json"]);
  },
});
