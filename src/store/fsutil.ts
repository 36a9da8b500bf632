import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** Creates a private directory (0700) and its parents. */
export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * Writes a file atomically (temp file in the same directory, then rename), so a crash or a
 * concurrent reader never sees half a file. Keeps the old file's mode unless one is given, and
 * optionally keeps the previous version as `<file>.bak`.
 */
export function writeFileAtomic(file: string, data: string, opts: { mode?: number; backup?: boolean } = {}): void {
  ensureDir(dirname(file));
  let mode = opts.mode;
  let existed = false;
  try {
    const st = statSync(file);
    existed = true;
    if (mode === undefined) mode = st.mode & 0o777;
  } catch {
    /* new file */
  }
  if (existed && opts.backup) copyFileSync(file, `${file}.bak`);
  const tmp = join(dirname(file), `.${randomBytes(6).toString("hex")}.tmp`);
  try {
    writeFileSync(tmp, data, { mode: mode ?? 0o600 });
    if (mode !== undefined) chmodSync(tmp, mode);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
