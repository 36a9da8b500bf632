import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, statSync, type Stats } from "node:fs";
import { FileError } from "../errors.js";

/**
 * What mcp-auth trusts on disk: its config dir, the dirs inside it and the files it reads tokens,
 * secrets and profiles from must be owned by the current user (or root) and not writable by group or
 * others.
 * Anything else could have been planted or swapped by another account on the machine, so it is
 * refused (exit 5) with the command that fixes it, never used silently. Only node built-ins: the
 * cached fast path loads this module.
 *
 * Windows: skipped. Modes there are synthesised from the read-only flag and uids do not exist; the
 * profile dir (%APPDATA%) is protected by its ACL instead.
 */
export const TRUST_CHECKS = process.platform !== "win32" && typeof process.getuid === "function";

/** Opens a file for reading without following a symlink at its last component. */
export const O_READ_NOFOLLOW = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);

/** Why a file or dir with these stats must not be trusted, or undefined when it is fine. */
export function distrust(st: Pick<Stats, "uid" | "mode">): string | undefined {
  if (!TRUST_CHECKS) return undefined;
  const uid = process.getuid!();
  // root may own them too (an admin-provisioned dir, as ssh allows): root can change them anyway.
  if (st.uid !== uid && st.uid !== 0) return `it is owned by uid ${st.uid}, not by you (uid ${uid})`;
  if (st.mode & 0o022) return `it is writable by ${st.mode & 0o020 ? (st.mode & 0o002 ? "group and others" : "group") : "others"} (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")})`;
  return undefined;
}

function refuse(path: string, why: string, isDir: boolean, ownedByOther: boolean): FileError {
  const fix = ownedByOther
    ? `if it is not yours, remove it; if it is, run: chown -R "$(id -u)" ${path}`
    : `fix with: chmod ${isDir ? "700" : "600"} ${path}`;
  return new FileError(`refusing to use ${path}: ${why}`, { hint: fix, code: "EUNTRUSTED" });
}

/** Throws a FileError (exit 5) unless `st` (of `path`) is ours and private. */
export function assertTrusted(path: string, st: Stats): void {
  const why = distrust(st);
  if (why) throw refuse(path, why, st.isDirectory(), st.uid !== process.getuid!() && st.uid !== 0);
}

/** Throws unless the open file `fd` (of `path`) is ours and private: one fstat on what was really opened. */
export function assertTrustedFd(path: string, fd: number): void {
  if (TRUST_CHECKS) assertTrusted(path, fstatSync(fd));
}

const checked = new Set<string>();

/**
 * Refuses (FileError, exit 5) a directory that is not ours, not private, or a symlink. Checked once
 * per dir per process; a dir that does not exist yet passes (whoever creates it next is us, 0700).
 */
export function assertPrivateDir(dir: string): void {
  if (!TRUST_CHECKS || checked.has(dir)) return;
  let st: Stats;
  try {
    st = lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  if (st.isSymbolicLink()) {
    // A symlinked config dir is a user's choice (dotfiles); what it points at must pass the same test.
    try {
      st = lstatSync(dir + "/.");
    } catch {
      throw refuse(dir, "it is a dangling symlink", true, false);
    }
  }
  if (!st.isDirectory()) throw new FileError(`refusing to use ${dir}: it is not a directory`, { hint: "move it away" });
  assertTrusted(dir, st);
  checked.add(dir);
}

/** For tests in-process: forget what was checked. */
export function forgetTrustChecks(): void {
  checked.clear();
}

/**
 * Reads a file mcp-auth wrote itself (a cache), or null when there is none: never through a symlink,
 * and refused (FileError) unless the opened file is ours and private.
 */
export function readPrivateFile(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, O_READ_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new FileError(`refusing to use ${file}: it is a symlink`, { hint: "remove it; mcp-auth writes this file itself", code: "EUNTRUSTED" });
    if (code === "ENOENT") return null;
    throw e;
  }
  try {
    const st = fstatSync(fd);
    assertTrusted(file, st);
    return st.isFile() ? readFileSync(fd, "utf8") : null;
  } finally {
    closeSync(fd);
  }
}

/**
 * Why a command stored in `file` (config.json in `dir`) must not be run, or undefined when it may.
 * A stored command (`--client-secret-cmd`) runs as the user, so it is run only from a config that is
 * the user's and private: both owned by the user (or root) and with no access at all for group or
 * others — 0600 in 0700, as mcp-auth creates them. A config dir that came from elsewhere (a cloned
 * repository checks out 0644 files in 0755 dirs; a shared directory) cannot make mcp-auth run code
 * by being pointed at. A file or dir that does not exist yet passes: mcp-auth creates it private.
 */
export function commandSourceProblem(dir: string, file: string): { path: string; why: string; fix: string } | undefined {
  if (!TRUST_CHECKS) return undefined; // Windows: the profile dir's ACL protects it (see above)
  for (const [path, isDir] of [[dir, true], [file, false]] as const) {
    let st: Stats;
    try {
      st = statSync(path); // a symlink (dotfiles): what it points at is what counts
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    const owner = distrust({ uid: st.uid, mode: 0 });
    if (owner) return { path, why: owner, fix: `if it is not yours, remove it; if it is, run: chown -R "$(id -u)" ${path}` };
    if (st.mode & 0o077) {
      return { path, why: `it is open to ${st.mode & 0o070 ? (st.mode & 0o007 ? "group and others" : "group") : "others"} (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")})`, fix: `if it is yours, run: chmod ${isDir ? "700" : "600"} ${path}` };
    }
  }
  return undefined;
}
