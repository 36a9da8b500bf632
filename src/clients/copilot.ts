import { defineClientWriter, exists, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * GitHub Copilot CLI, and the portable `mcpServers` format VS Code's Copilot agent sessions read too
 * (docs/clients.md, GitHub Copilot CLI). User: `$COPILOT_HOME/mcp-config.json` (default
 * `~/.copilot`); project: `.mcp.json` at the workspace root, the file Claude Code's project scope
 * writes, loaded only once the folder is trusted. Copilot CLI drops Claude Code's `headersHelper`
 * when it reads that file, so the only entry every reader can use is the stdio proxy: it is the one
 * strategy offered here.
 */
function copilotHome(env: NodeJS.ProcessEnv, platform: string): string {
  return env.COPILOT_HOME || joinFor(platform, homeOf(env), ".copilot");
}

export const copilot = defineClientWriter({
  id: "copilot",
  title: "GitHub Copilot CLI",
  scopes: ["user", "project"],
  defaultScope: "user",
  strategies: ["proxy"],
  defaultStrategy: "proxy",
  alsoReadBy: { user: ["VS Code (Copilot agent sessions)"], project: ["VS Code (Copilot agent sessions)"] },
  configPath(env, platform, scope, cwd) {
    return scope === "project" ? joinFor(platform, cwd, ".mcp.json") : joinFor(platform, copilotHome(env, platform), "mcp-config.json");
  },
  serversPath() {
    return ["mcpServers"];
  },
  entry(spec) {
    const notes = ["Start a new Copilot CLI session (or run /mcp) to load the server."];
    if (spec.scope === "project") notes.push("Copilot CLI loads a project's .mcp.json only after you trust the folder.");
    return { server: { type: "stdio", ...proxyServer(spec) }, notes };
  },
  installed({ env, platform }) {
    // The executable, or the config.json Copilot CLI itself writes (mcp-config.json may be ours).
    return Boolean(onPath(env, "copilot", platform)) || exists(joinFor(platform, copilotHome(env, platform), "config.json"));
  },
});
