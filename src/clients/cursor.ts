import { defineClientWriter, envHeaderEntry, hasOwnData, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Cursor (docs/clients.md): `~/.cursor/mcp.json` or `.cursor/mcp.json`, root
 * `mcpServers`. Cursor has no helper command, so the default is the stdio proxy; `header` writes
 * `${env:NAME}`, which Cursor interpolates from its environment.
 */
/** Cursor's OAuth redirect URIs: the desktop app's loopback one, and the custom scheme of older builds (docs/clients.md). */
const CURSOR_REDIRECTS = ["http://localhost:8787/callback", "cursor://anysphere.cursor-mcp/oauth/callback"];

export const cursor = defineClientWriter({
  id: "cursor",
  title: "Cursor",
  scopes: ["user", "project"],
  defaultScope: "user",
  strategies: ["proxy", "header", "native"],
  defaultStrategy: "proxy",
  configPath(env, platform, scope, cwd) {
    return joinFor(platform, scope === "project" ? cwd : homeOf(env), ".cursor", "mcp.json");
  },
  serversPath() {
    return ["mcpServers"];
  },
  entry(spec) {
    if (spec.native) {
      // Cursor's static OAuth (`auth`); Cursor's redirect URI is fixed (docs/clients.md).
      const auth = { CLIENT_ID: spec.native.clientId, ...(spec.native.scopes && { scopes: spec.native.scopes }) };
      return { server: { url: spec.url, auth }, notes: [`Cursor logs in itself as client ${spec.native.clientId}: that client must be public and have Cursor's redirect URI (${CURSOR_REDIRECTS.join(", or on older builds ")}) registered.`] };
    }
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
