import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { FileError } from "../errors.js";
import { assertPrivateDir } from "./trust.js";

const WHY: Record<string, string> = {
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "no space left on the device",
  EDQUOT: "the disk quota is exhausted",
};

/**
 * A failed write in the store (read-only mount, full disk, foreign permissions) as one line naming
 * the directory (exit 5) rather than a raw errno. Non-errno errors (our own FileErrors) pass through.
 */
export function writeError(e: unknown, dir: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (e instanceof FileError || typeof code !== "string" || !/^E[A-Z]+$/.test(code)) return e;
  const why = WHY[code] ?? (e as Error).message;
  return new FileError(`cannot write in ${dir}: ${why}`, {
    cause: e,
    code,
    hint: code === "ENOSPC" || code === "EDQUOT" ? "free some space and retry" : "make it writable, or point MCP_AUTH_CONFIG_DIR at a writable directory",
  });
}

/**
 * Creates a private directory (0700) and its parents, refusing (exit 5) one that is not ours or is
 * writable by others. With `root` (the config dir), every dir from the root down is checked too,
 * before anything is created in it. Every writer of the store goes through here.
 */
export function ensureDir(dir: string, root?: string): void {
  const chain = [dir];
  if (root && dir !== root && dir.startsWith(root + sep)) {
    chain.length = 0;
    let d = root;
    chain.push(d);
    for (const part of relative(root, dir).split(sep)) chain.push((d = join(d, part)));
  }
  for (const d of chain) assertPrivateDir(d);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw writeError(e, dirname(dir));
  }
  for (const d of chain) assertPrivateDir(d); // the ones that were just created
}

/**
 * Writes a file atomically (temp file in the same directory, then rename), so a crash or a
 * concurrent reader never sees half a file. Keeps the old file's mode unless one is given, and
 * optionally keeps the previous version as `<file>.bak` (also by temp file + rename: a symlink
 * planted at the backup's name is replaced, never followed).
 */
export function writeFileAtomic(file: string, data: string, opts: { mode?: number; backup?: boolean; root?: string } = {}): void {
  const dir = dirname(file);
  ensureDir(dir, opts.root);
  let mode = opts.mode;
  let existed = false;
  try {
    const st = statSync(file);
    existed = true;
    if (mode === undefined) mode = st.mode & 0o777;
  } catch {
    /* new file */
  }
  try {
    if (existed && opts.backup) {
      const st = statSync(file);
      replace(`${file}.bak`, readFileSync(file), st.mode & 0o777);
    }
    replace(file, data, mode ?? 0o600);
  } catch (e) {
    throw writeError(e, dir);
  }
}

function replace(file: string, data: string | Buffer, mode: number): void {
  const tmp = join(dirname(file), `.${randomBytes(6).toString("hex")}.tmp`);
  try {
    writeFileSync(tmp, data, { mode, flag: "wx" });
    chmodSync(tmp, mode); // the umask may have narrowed it
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
