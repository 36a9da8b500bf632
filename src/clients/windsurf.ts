import { defineClientWriter, envHeaderEntry, hasOwnData, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Windsurf (Cascade). Verified against https://docs.windsurf.com/windsurf/cascade/mcp ("mcp_config.json":
 * `~/.codeium/windsurf/mcp_config.json`, root `mcpServers`, stdio `command`/`args`/`env`; "Remote HTTP
 * MCPs": `serverUrl` (or `url`) with `headers`; "Config Interpolation": `${env:NAME}` is expanded in
 * `command`, `args`, `env`, `serverUrl`, `url` and `headers`). Windsurf documents no project file.
 * Default: the stdio proxy (fresh tokens); `header` writes `${env:NAME}`.
 */
export const windsurf = defineClientWriter({
  id: "windsurf",
  title: "Windsurf",
  scopes: ["user"],
  defaultScope: "user",
  strategies: ["proxy", "header"],
  defaultStrategy: "proxy",
  configPath(env, platform) {
    return joinFor(platform, homeOf(env), ".codeium", "windsurf", "mcp_config.json");
  },
  serversPath() {
    return ["mcpServers"];
  },
  entry(spec) {
    if (spec.strategy === "header") return envHeaderEntry(spec, { urlKey: "serverUrl", reference: `\${env:${spec.headerVar}}`, title: "Windsurf", where: "in the environment Windsurf starts from" });
    return { server: proxyServer(spec), notes: ["Press the refresh button in Windsurf's MCP panel to load the server."] };
  },
  installed({ env, platform }) {
    return Boolean(onPath(env, "windsurf", platform)) || hasOwnData(joinFor(platform, homeOf(env), ".codeium", "windsurf"), ["mcp_config.json"]);
  },
});
