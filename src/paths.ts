import { homedir } from "node:os";
import { join, resolve } from "node:path";

/**
 * Where mcp-auth keeps its files. One directory holds the config, the token cache and (only when no
 * keychain is usable) the secrets file, so `MCP_AUTH_CONFIG_DIR` relocates everything at once.
 * Never `~/.mcp-auth`: mcp-remote owns that name and tells users to delete it.
 */
export function configDir(env: NodeJS.ProcessEnv = process.env, platform: string = process.platform, override?: string): string {
  // --config-dir beats the env: a headersHelper carries it as a flag because Claude Code strips MCP_AUTH_* from project helpers.
  if (override) return resolve(override);
  if (env.MCP_AUTH_CONFIG_DIR) return env.MCP_AUTH_CONFIG_DIR;
  const home = env.HOME || env.USERPROFILE || homedir();
  if (platform === "darwin") return join(home, "Library", "Application Support", "mcp-auth");
  if (platform === "win32") return join(env.APPDATA || join(home, "AppData", "Roaming"), "mcp-auth");
  return join(env.XDG_CONFIG_HOME || join(home, ".config"), "mcp-auth");
}

export interface Paths {
  dir: string;
  config: string;
  tokens: string;
  discovery: string;
  locks: string;
  secretsFile: string;
  /** Previous versions of edited files that may not be kept next to them (src/store/backup.ts). */
  backups: string;
}

export function paths(env: NodeJS.ProcessEnv = process.env, platform: string = process.platform, override?: string): Paths {
  const dir = configDir(env, platform, override);
  return {
    dir,
    config: join(dir, "config.json"),
    tokens: join(dir, "tokens"),
    discovery: join(dir, "cache", "discovery"),
    locks: join(dir, "locks"),
    secretsFile: join(dir, "secrets.json"),
    backups: join(dir, "backups"),
  };
}
