import { defineClientWriter, envHeaderEntry, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Kiro, IDE and CLI (docs/clients.md, Kiro). Verified against https://kiro.dev/docs/mcp/configuration
 * and https://kiro.dev/docs/cli/mcp/configuration: `mcpServers` in `.kiro/settings/mcp.json`
 * (workspace) or `~/.kiro/settings/mcp.json` (user); local `command`/`args`/`env`, remote `url` +
 * `headers`; `${VAR}` is expanded from the environment (their example: `"Authorization": "Bearer
 * ${API_TOKEN}"`). Default: the stdio proxy; `header` writes `${NAME}`.
 */
export const kiro = defineClientWriter({
  id: "kiro",
  title: "Kiro",
  scopes: ["user", "project"],
  defaultScope: "user",
  strategies: ["proxy", "header"],
  defaultStrategy: "proxy",
  configPath(env, platform, scope, cwd) {
    return joinFor(platform, scope === "project" ? cwd : homeOf(env), ".kiro", "settings", "mcp.json");
  },
  serversPath() {
    return ["mcpServers"];
  },
  entry(spec) {
    if (spec.strategy === "header") return envHeaderEntry(spec, { urlKey: "url", reference: `\${${spec.headerVar}}`, title: "Kiro", where: "in the environment Kiro starts from" });
    return { server: proxyServer(spec), notes: ["Reconnect the server from Kiro's MCP panel, or start a new kiro-cli chat, to load it."] };
  },
  installed({ env, platform }) {
    return Boolean(onPath(env, "kiro", platform) || onPath(env, "kiro-cli", platform));
  },
});
