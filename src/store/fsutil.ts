import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, readlinkSync, readSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, relative, sep } from "node:path";
import { FileError } from "../errors.js";
import { fsyncDir, writeTemp } from "./atomic.js";
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
export function writeFileAtomic(file: string, data: string, opts: { mode?: number; backup?: boolean; root?: string; durable?: boolean } = {}): void {
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
      replace(`${file}.bak`, readFileSync(file), st.mode & 0o777, opts.durable);
    }
    replace(file, data, mode ?? 0o600, opts.durable);
  } catch (e) {
    throw writeError(e, dir);
  }
}

/**
 * `durable`: the bytes reach the disk before the rename, and the rename before we return, so a power
 * loss leaves the old file or the new one, never an empty one (some filesystems commit a rename
 * before the data it points to). For what exists nowhere else, a rotated refresh token above all;
 * a cached access token can simply be fetched again and skips the cost.
 */
function replace(file: string, data: string | Buffer, mode: number, durable = false): void {
  const dir = dirname(file);
  const tmp = writeTemp(dir, basename(file), data, mode, { sync: durable });
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  if (durable) fsyncDir(dir);
}

/**
 * Config files are read whole, and some are not ours (a client's mcp.json, a cloned project's
 * .vscode/mcp.json): a real one is a few KB, so anything past 4 MB is refused rather than held.
 */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const O_NONBLOCK = constants.O_NONBLOCK ?? 0;

/** Kernel file systems whose "regular" files are endless or huge (/proc/self/pagemap, /proc/kcore). */
const KERNEL_FS = ["/proc", "/sys"];

/**
 * The bytes of a file that may have been planted (a symlink in a cloned project), or null when it
 * does not exist. Refused (exit 5), each with one line: anything but a regular file (a FIFO would
 * hang a plain read; it is opened non-blocking), a file whose real path is under /proc or /sys, and
 * one over `max` bytes (counted while reading: a /proc file reports size 0). Symlinks to regular files
 * elsewhere are followed. `what` starts the refusal ("cannot edit").
 */
export function readRegularFile(path: string, o: { max?: number; what?: string } = {}): Buffer | null {
  const max = o.max ?? MAX_CONFIG_BYTES;
  const what = o.what ?? "cannot read";
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    throw new FileError(`cannot read ${path}: ${code ?? (e as Error).message}`, { hint: "fix its permissions; mcp-auth left it untouched" });
  }
  try {
    if (!fstatSync(fd).isFile()) throw new FileError(`${what} ${path}: not a regular file`, { hint: "mcp-auth left it untouched" });
    const real = openedPath(fd, path);
    if (KERNEL_FS.some((d) => real === d || real.startsWith(`${d}/`))) {
      throw new FileError(`${what} ${path}: it leads to ${real}, a kernel file, not a config file`, { hint: "remove the link; mcp-auth left it untouched" });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(64 * 1024, max + 1 - size));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      size += n;
      if (size > max) throw new FileError(`${what} ${path}: it is larger than ${max / 1024 / 1024} MB, far more than a config file holds`, { hint: "mcp-auth left it untouched" });
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks, size);
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/** Where an open file really is: from the fd on Linux (no race with a link swapped meanwhile), else the path resolved. */
function openedPath(fd: number, path: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    try {
      return realpathSync(path);
    } catch {
      return path;
    }
  }
}
