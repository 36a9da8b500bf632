import { defineClientWriter, envHeaderEntry, hasOwnData, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Cursor (docs/clients.md): `~/.cursor/mcp.json` or `.cursor/mcp.json`, root
 * `mcpServers`. Cursor has no helper command, so the default is the stdio proxy; `header` writes
 * `${env:NAME}`, which Cursor interpolates from its environment.
 */
export const cursor = defineClientWriter({
  id: "cursor",
  title: "Cursor",
  scopes: ["user", "project"],
  defaultScope: "user",
  strategies: ["proxy", "header"],
  defaultStrategy: "proxy",
  configPath(env, platform, scope, cwd) {
    return joinFor(platform, scope === "project" ? cwd : homeOf(env), ".cursor", "mcp.json");
  },
  serversPath() {
    return ["mcpServers"];
  },
  entry(spec) {
    if (spec.strategy === "header") return envHeaderEntry(spec, { urlKey: "url", reference: `\${env:${spec.headerVar}}`, title: "Cursor", where: "in the environment Cursor starts from" });
    return { server: { type: "stdio", ...proxyServer(spec) }, notes: [] };
  },
  installed({ env, platform }) {
    return Boolean(onPath(env, "cursor", platform)) || hasOwnData(joinFor(platform, homeOf(env), ".cursor"), ["mcp.json"]);
  },
  link(name, entry) {
    // The config is the server object without its name, JSON then base64 (docs/clients.md, Cursor).
    const config = Buffer.from(JSON.stringify(entry.server)).toString("base64");
    return `cursor://anysphere.cursor-deeplink/mcp/install?name=${encodeURIComponent(name)}&config=${encodeURIComponent(config)}`;
  },
});
