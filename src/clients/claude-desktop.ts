import { readdirSync } from "node:fs";
import { join } from "node:path";
import { appDataDir, defineClientWriter, hasOwnData, homeOf, joinFor, proxyServer } from "../sdk.js";

/**
 * Claude Desktop (docs/clients.md): its config file takes stdio servers only
 * (a `url` entry is skipped), so the entry runs `mcp-auth proxy`, a stdio bridge that adds the token.
 * macOS `~/Library/Application Support/Claude/`, Windows `%APPDATA%\Claude\` unless the Microsoft Store
 * package redirects it to `%LOCALAPPDATA%\Packages\Claude_<id>\LocalCache\Roaming\Claude\`, Linux
 * (community builds only) `$XDG_CONFIG_HOME/Claude/`.
 */
const FILE = "claude_desktop_config.json";

function storePackageDir(env: NodeJS.ProcessEnv, platform: string): string | undefined {
  const local = env.LOCALAPPDATA || joinFor(platform, homeOf(env), "AppData", "Local");
  const pkgs = joinFor(platform, local, "Packages");
  let names: string[];
  try {
    names = readdirSync(join(local, "Packages")); // the native join: tests list a Windows layout on Linux
  } catch {
    return undefined;
  }
  const pkg = names.find((n) => /^Claude_[a-z0-9]+$/i.test(n));
  return pkg && joinFor(platform, pkgs, pkg, "LocalCache", "Roaming", "Claude");
}

export const claudeDesktop = defineClientWriter({
  id: "claude-desktop",
  title: "Claude Desktop",
  scopes: ["user"],
  defaultScope: "user",
  strategies: ["proxy"],
  defaultStrategy: "proxy",
  configPath(env, platform) {
    if (platform === "win32") {
      const store = storePackageDir(env, platform);
      if (store) return joinFor(platform, store, FILE);
    }
    return joinFor(platform, appDataDir(env, platform), "Claude", FILE);
  },
  serversPath() {
    return ["mcpServers"];
  },
  entry(spec) {
    return { server: proxyServer(spec), notes: ["Quit Claude Desktop completely and start it again to load the server."] };
  },
  installed({ env, platform }) {
    return hasOwnData(joinFor(platform, appDataDir(env, platform), "Claude"), [FILE]) || (platform === "win32" && Boolean(storePackageDir(env, platform)));
  },
});
