import { defineClientWriter, envHeaderEntry, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Qwen Code (docs/clients.md, Qwen Code). Verified against QwenLM/qwen-code docs/users/features/mcp.md
 * (`mcpServers`; stdio `command`/`args`/`env`, Streamable HTTP `httpUrl` + `headers`; user scope
 * `~/.qwen/settings.json`, project `.qwen/settings.json`) and docs/users/configuration/settings.md
 * (string values may reference `$VAR` or `${VAR}`, resolved when the settings load).
 * Default: the stdio proxy; `header` writes `${NAME}`, expanded from Qwen Code's environment.
 */
export const qwen = defineClientWriter({
  id: "qwen",
  title: "Qwen Code",
  scopes: ["user", "project"],
  defaultScope: "user",
  strategies: ["proxy", "header"],
  defaultStrategy: "proxy",
  configPath(env, platform, scope, cwd) {
    return joinFor(platform, scope === "project" ? cwd : homeOf(env), ".qwen", "settings.json");
  },
  serversPath() {
    return ["mcpServers"];
  },
  entry(spec) {
    if (spec.strategy === "header") return envHeaderEntry(spec, { urlKey: "httpUrl", reference: `\${${spec.headerVar}}`, title: "Qwen Code", where: "before starting qwen" });
    return { server: proxyServer(spec), notes: ["Restart Qwen Code to load the server."] };
  },
  installed({ env, platform }) {
    return Boolean(onPath(env, "qwen", platform));
  },
});
