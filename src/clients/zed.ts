import { appDataDir, defineClientWriter, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Zed (docs/clients.md, Zed). Its user `settings.json` (JSON with comments) holds `context_servers`:
 * a custom stdio server is `{ "source": "custom", "command", "args", "env" }` (zed-industries/zed,
 * docs/src/ai/mcp.md). Newer releases read the same keys without `source` (an untagged
 * `ContextServerSettingsContent`: `command` + `args`, `args` required) and also take remote `url` +
 * `headers`, but document no variable expansion there: only the stdio proxy is written, with
 * `source` so that older releases load it too.
 */
function settingsDir(env: NodeJS.ProcessEnv, platform: string): string {
  if (platform === "win32") return joinFor(platform, appDataDir(env, platform), "Zed");
  if (platform === "darwin") return joinFor(platform, homeOf(env), ".config", "zed");
  return joinFor(platform, env.XDG_CONFIG_HOME || joinFor(platform, homeOf(env), ".config"), "zed");
}

export const zed = defineClientWriter({
  id: "zed",
  title: "Zed",
  scopes: ["user"],
  defaultScope: "user",
  strategies: ["proxy"],
  defaultStrategy: "proxy",
  configPath(env, platform) {
    return joinFor(platform, settingsDir(env, platform), "settings.json");
  },
  serversPath() {
    return ["context_servers"];
  },
  entry(spec) {
    return { server: { source: "custom", ...proxyServer(spec) }, notes: ["Zed starts the server when it reloads its settings; its state shows in the Agent Panel's settings."] };
  },
  installed({ env, platform }) {
    return Boolean(onPath(env, "zed", platform) || onPath(env, "zeditor", platform));
  },
});
