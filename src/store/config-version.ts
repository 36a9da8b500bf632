import { FileError } from "../errors.js";

/**
 * config.json's schema version. A file without one (or with an older one) is brought up to date in
 * memory when read and written back in the new form on the next change (the previous file is kept as
 * a backup); a file from a newer mcp-auth is refused, for reading as for writing, and never
 * overwritten. Node built-ins only: the cached-token fast path reads config.json through this.
 */
export const CONFIG_VERSION = 1;

/** Upgrades parsed config.json data to CONFIG_VERSION, or refuses it (exit 5). */
export function migrateConfig(data: Record<string, unknown>, file: string): Record<string, unknown> {
  const v = data.version ?? 0;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new FileError(`cannot use ${file}: unknown "version" ${JSON.stringify(v)}`, { hint: "fix or move the file; mcp-auth left it untouched" });
  }
  if (v > CONFIG_VERSION) {
    throw new FileError(`cannot use ${file}: written by a newer mcp-auth (config version ${v}; this one knows ${CONFIG_VERSION}); upgrade mcp-auth`, {
      hint: "mcp-auth left it untouched",
    });
  }
  // Version 0 (no "version" field) to 1: same shape. Later steps go here, one per version.
  return { ...data, version: CONFIG_VERSION };
}
