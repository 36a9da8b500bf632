import { defineClientWriter, envHeaderEntry, exists, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Gemini CLI. Verified against google-gemini/gemini-cli, docs/tools/mcp-server.md ("Configuration
 * Properties": `mcpServers`, stdio `command`/`args`, Streamable HTTP `httpUrl`, `headers` for `url`/`httpUrl`)
 * and docs/get-started/configuration.md ("Settings files": user `~/.gemini/settings.json`, project
 * `.gemini/settings.json`; "String values within your settings.json files can reference environment
 * variables using either `$VAR_NAME` or `${VAR_NAME}`", resolved when the settings load).
 * Default: the stdio proxy (fresh tokens); `header` writes `${NAME}`, expanded from Gemini CLI's environment.
 */
export const gemini = defineClientWriter({
  id: "gemini",
  title: "Gemini CLI",
  scopes: ["user", "project"],
  defaultScope: "user",
  strategies: ["proxy", "header"],
  defaultStrategy: "proxy",
  configPath(env, platform, scope, cwd) {
    return joinFor(platform, scope === "project" ? cwd : homeOf(env), ".gemini", "settings.json");
  },
  serversPath() {
    return ["mcpServers"];
  },
  entry(spec) {
    if (spec.strategy === "header") return envHeaderEntry(spec, { urlKey: "httpUrl", reference: `\${${spec.headerVar}}`, title: "Gemini CLI", where: "before starting gemini" });
    return { server: proxyServer(spec), notes: ["Restart Gemini CLI to load the server."] };
  },
  installed({ env, platform }) {
    return Boolean(onPath(env, "gemini", platform)) || exists(joinFor(platform, homeOf(env), ".gemini"));
  },
});
