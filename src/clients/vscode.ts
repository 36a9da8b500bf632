import { appDataDir, bearer, defineClientWriter, hasOwnData, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * VS Code (docs/clients.md): `.vscode/mcp.json` or the default profile's
 * `User/mcp.json`, root `servers` (not `mcpServers`: installers that write that key are ignored).
 * Default: the stdio proxy. `header` asks VS Code for the token once through an `inputs` entry
 * (`promptString`, `password: true`), stored by VS Code, referenced as `${input:ID}`.
 */
export const vscode = defineClientWriter({
  id: "vscode",
  title: "VS Code",
  scopes: ["user", "project"],
  // The token comes from an `inputs` item (a prompt), not an environment variable.
  headerVar: (name) => `mcp-auth-${name}`,
  defaultScope: "user",
  strategies: ["proxy", "header"],
  defaultStrategy: "proxy",
  configPath(env, platform, scope, cwd) {
    if (scope === "project") return joinFor(platform, cwd, ".vscode", "mcp.json");
    return joinFor(platform, appDataDir(env, platform), "Code", "User", "mcp.json");
  },
  serversPath() {
    return ["servers"];
  },
  entry(spec) {
    if (spec.strategy === "header") {
      const server = { type: "http", url: spec.url, headers: { Authorization: bearer(spec, `\${input:${spec.headerVar}}`) } };
      if (spec.staticToken) return { server, notes: [] };
      return {
        server,
        input: { type: "promptString", id: spec.headerVar, description: `Access token for ${spec.name} (print one with: mcp-auth token --profile ${spec.profile})`, password: true },
        notes: [
          `VS Code asks for the token when the server first starts and stores it; paste the output of: mcp-auth token --profile ${spec.profile} (it expires; the proxy strategy refreshes it for you).`,
          "VS Code does not forward a server that needs ${input:…} to Copilot agent sessions; the proxy strategy reaches them.",
        ],
      };
    }
    const notes = spec.scope === "project" ? ["VS Code calls .vscode/mcp.json a local configuration; its Copilot agent sessions read the portable .mcp.json, which add-client copilot --scope project writes."] : [];
    return { server: { type: "stdio", ...proxyServer(spec) }, notes };
  },
  installed({ env, platform }) {
    const data = joinFor(platform, appDataDir(env, platform), "Code");
    return Boolean(onPath(env, "code", platform)) || hasOwnData(data, ["User"]) || hasOwnData(joinFor(platform, data, "User"), ["mcp.json"]);
  },
  link(name, entry) {
    return `vscode:mcp/install?${encodeURIComponent(JSON.stringify({ name, ...entry.server }))}`;
  },
});
