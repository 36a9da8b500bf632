import type { Paths } from "../paths.js";
import { emptyConfig, parseConfig, type Config } from "../target.js";
import { applyPlan, type Applied } from "./apply.js";
import { withLock } from "./lock.js";
import { readForPlan, type FileChange } from "./plan.js";

/**
 * Changes config.json: under the config lock, on a fresh read (so parallel runs never lose each
 * other's edits), as a plan applied atomically with the previous version backed up. Reading refuses a
 * file from a newer mcp-auth; an older one is migrated by parsing and written back in the current
 * version. config.json holds no secrets, so its plans can be shown as they are.
 */
export async function updateConfigFile<T>(
  p: Pick<Paths, "dir" | "config" | "locks" | "backups">,
  change: (cfg: Config) => Promise<T> | T,
  opts: { now?: () => number } = {},
): Promise<{ result: T; config: Config; applied: Applied[] }> {
  return withLock(p.locks, "config", async () => {
    const before = readForPlan(p.config);
    const cfg = before === null ? emptyConfig() : parseConfig(before, p.config);
    const result = await change(cfg);
    const plan = configChange(p.config, before, cfg);
    const applied = applyPlan([plan], { configDir: p.dir, backupsDir: p.backups, now: opts.now });
    return { result, config: cfg, applied };
  });
}

/** The plan that writes `cfg` over config.json's current text `before`. 0600: profiles are nobody else's business. */
export function configChange(file: string, before: string | null, cfg: Config): FileChange {
  return { path: file, before, after: serializeConfig(cfg), mode: 0o600, description: before === null ? "create the mcp-auth config" : "update the mcp-auth config" };
}

export function serializeConfig(cfg: Config): string {
  return JSON.stringify(cfg, null, 2) + "\n";
}
