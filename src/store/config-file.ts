import type { Paths } from "../paths.js";
import { emptyConfig, parseConfig, type Config } from "../profile.js";
import { applyPlan, type Applied } from "./apply.js";
import { backupPolicy } from "./backup.js";
import { withLock } from "./lock.js";
import { readForPlan, type FileChange } from "./plan.js";

type ConfigPaths = Pick<Paths, "dir" | "config" | "locks" | "backups">;

/**
 * Changes config.json: under the config lock, on a fresh read (so parallel runs never lose each
 * other's edits), as a plan applied atomically with the previous version backed up. Reading refuses a
 * file from a newer mcp-auth; an older one is migrated by parsing and written back in the current
 * version (its previous form is the backup). config.json holds no secrets, so its plans can be shown.
 */
export async function updateConfigFile<T>(p: ConfigPaths, change: (cfg: Config) => Promise<T> | T, opts: { now?: () => number } = {}): Promise<{ result: T; config: Config; applied: Applied[] }> {
  return withConfigLock(p, async () => {
    const { plan, result, config } = await planConfigUpdate(p, change);
    return { result, config, applied: applyPlan([plan], backupPolicy(p, opts.now)) };
  });
}

/** Holds the config lock, e.g. while a plan that includes config.json is applied together with other files. */
export function withConfigLock<T>(p: Pick<Paths, "locks">, fn: () => Promise<T>): Promise<T> {
  return withLock(p.locks, "config", fn);
}

/** Plans a change to config.json without writing anything (`--dry-run`, or one step of a larger plan). */
export async function planConfigUpdate<T>(p: Pick<Paths, "config">, change: (cfg: Config) => Promise<T> | T): Promise<{ plan: FileChange; result: T; config: Config }> {
  const before = readForPlan(p.config);
  const config = before === null ? emptyConfig() : parseConfig(before, p.config);
  const result = await change(config);
  return { plan: configChange(p.config, before, config), result, config };
}

/** The change that writes `cfg` over config.json's current text `before`. 0600: profiles are nobody else's business. */
export function configChange(file: string, before: string | null, cfg: Config): FileChange {
  return { path: file, before, after: serializeConfig(cfg), mode: 0o600, description: before === null ? "create the mcp-auth config" : "update the mcp-auth config" };
}

export function serializeConfig(cfg: Config): string {
  return JSON.stringify(cfg, null, 2) + "\n";
}
