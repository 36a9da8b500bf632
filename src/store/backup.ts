import { existsSync, lstatSync, readdirSync, realpathSync, renameSync, unlinkSync } from "node:fs";
import { basename, dirname, isAbsolute, join, parse, relative, resolve, sep } from "node:path";
import { FileError } from "../errors.js";
import { fnv1a64 } from "../profile.js";
import { fsyncDir, writeTemp, type Owner } from "./atomic.js";
import { ensureDir } from "./fsutil.js";

/**
 * One backup policy for every file mcp-auth edits. The previous version is kept next to the file
 * (`config.json.<stamp>.bak`) only inside mcp-auth's own config dir, and only when that dir is not part
 * of a project; every other file (a project's `.vscode/mcp.json`, anything in a git work tree, other
 * programs' config such as `~/.claude.json`) is backed up under `<configDir>/backups/<path>/<stamp>`,
 * so no backup is ever committed with a project or left in another program's folder. The backups dir
 * holds a `.gitignore` of `*` in case it is itself inside a work tree. Backups keep the original's
 * mode, are written by temp file + rename (a symlink planted at a backup path is replaced, never
 * followed) and are pruned to the last `keep` per file.
 */
export interface BackupPolicy {
  /** mcp-auth's config dir (Paths.dir). */
  configDir: string;
  /** Where other files' backups go (Paths.backups). */
  backupsDir: string;
  /** Backups kept per file (default 5). */
  keep?: number;
  /** Clock for the backup's timestamp (ms). */
  now?: () => number;
}

export const KEEP_BACKUPS = 5;

/** The policy for mcp-auth's paths. */
export function backupPolicy(p: { dir: string; backups: string }, now?: () => number): BackupPolicy {
  return { configDir: p.dir, backupsDir: p.backups, ...(now && { now }) };
}

/** `20261129T213800.123Z`: sorts in time order, no `:` (Windows). */
export function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "");
}
const STAMP = String.raw`\d{8}T\d{6}\.\d{3}Z(?:-\d+)?`;

/** The real path of a file that may not exist yet (its directory resolved), so policies compare like with like. */
export function realTarget(path: string): string {
  const abs = resolve(path);
  try {
    return realpathSync(abs);
  } catch {
    try {
      return join(realpathSync(dirname(abs)), basename(abs));
    } catch {
      return abs;
    }
  }
}

/** Is the file part of a project folder that may be committed: under a `.vscode` dir or an enclosing git work tree? */
export function inProject(file: string): boolean {
  const parts = dirname(file).split(sep);
  if (parts.includes(".vscode")) return true;
  const root = parse(file).root;
  for (let d = dirname(file); ; d = dirname(d)) {
    if (existsSync(join(d, ".git"))) return true; // a directory, or a file in worktrees and submodules
    if (d === root || dirname(d) === d) return false;
  }
}

/** Is `file` (a real path) below `dir`? */
export function isInside(dir: string, file: string): boolean {
  const rel = relative(realTarget(dir), file);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

interface Location {
  dir: string;
  name: (stamp: string) => string;
  pattern: RegExp;
  nextToFile: boolean;
}

function locate(file: string, policy: BackupPolicy): Location {
  const real = realTarget(file);
  if (isInside(policy.configDir, real) && !inProject(real)) {
    const base = basename(real);
    return { dir: dirname(real), name: (s) => `${base}.${s}.bak`, pattern: new RegExp(`^${escapeRe(base)}\\.(${STAMP})\\.bak$`), nextToFile: true };
  }
  return { dir: join(policy.backupsDir, sanitize(real)), name: (s) => s, pattern: new RegExp(`^(${STAMP})$`), nextToFile: false };
}

/** A path as one readable directory name: `%2Fhome%2Fme%2F.claude.json`, hashed when too long for a name. */
export function sanitize(path: string): string {
  const name = path.replace(/%/g, "%25").replace(/\//g, "%2F").replace(/\\/g, "%5C").replace(/:/g, "%3A");
  return name.length <= 160 ? name : `${name.slice(-140)}-${fnv1a64(path)}`;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Where a backup of `file` taken now would be written (for `--json` plans). */
export function backupPath(file: string, policy: BackupPolicy): string {
  const loc = locate(file, policy);
  return join(loc.dir, loc.name(stamp((policy.now ?? Date.now)())));
}

/**
 * Keeps `content` (the file's current bytes) as its newest backup, then prunes the oldest beyond
 * `keep`. Returns the backup's path.
 */
export function writeBackup(file: string, content: string, mode: number, owner: Owner | undefined, policy: BackupPolicy): string {
  const loc = locate(file, policy);
  if (!loc.nextToFile) prepareBackupsDir(policy.backupsDir, loc.dir);
  const s = stamp((policy.now ?? Date.now)());
  let dest = join(loc.dir, loc.name(s));
  for (let i = 1; lstatExists(dest); i++) dest = join(loc.dir, loc.name(`${s}-${i}`));
  const tmp = writeTemp(loc.dir, basename(dest), content, mode, { owner: loc.nextToFile ? owner : undefined });
  try {
    renameSync(tmp, dest); // replaces whatever appeared at `dest` meanwhile, a symlink included, never its target
  } catch (e) {
    unlinkQuiet(tmp);
    throw e;
  }
  fsyncDir(loc.dir);
  prune(loc, policy.keep ?? KEEP_BACKUPS);
  return dest;
}

function prune(loc: Location, keep: number): void {
  const found: Array<[string, string]> = [];
  for (const name of readdirSync(loc.dir)) {
    const m = loc.pattern.exec(name);
    if (m) found.push([m[1]!, name]);
  }
  found.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [, name] of found.slice(0, Math.max(0, found.length - keep))) unlinkQuiet(join(loc.dir, name)); // unlink never follows a link
}

/** The backups dir and this file's folder in it: ours, real directories (not links planted by someone else), ignored by git. */
function prepareBackupsDir(root: string, dir: string): void {
  ensureDir(dir);
  for (const d of [root, dir]) {
    const st = lstatSync(d);
    const uid = process.getuid?.();
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
      throw new FileError(`refusing to keep backups in ${d}: ${st.isDirectory() ? "owned by another user" : "not a directory"}`, { hint: "remove it; mcp-auth will create it again" });
    }
  }
  const ignore = join(root, ".gitignore");
  if (!lstatExists(ignore)) {
    const tmp = writeTemp(root, ".gitignore", "# backups of files mcp-auth edited; never commit them\n*\n", 0o600);
    renameSync(tmp, ignore);
  }
}

function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function unlinkQuiet(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    /* gone */
  }
}
