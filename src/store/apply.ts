import { linkSync, mkdirSync, renameSync, statSync, unlinkSync, type Stats } from "node:fs";
import { basename, dirname } from "node:path";
import { FileError, McpAuthError } from "../errors.js";
import { fsyncDir, ownerToKeep, writeTemp, type Owner } from "./atomic.js";
import { isInside, realTarget, writeBackup, type BackupPolicy } from "./backup.js";
import { ensureDir } from "./fsutil.js";
import { actionOf, readForPlan, type FileChange, type PlanAction } from "./plan.js";

export type ApplyOptions = BackupPolicy;

export interface Applied {
  path: string;
  action: PlanAction;
  /** Where the previous version was kept, if there was one. */
  backup: string | null;
}

interface Step {
  change: FileChange;
  action: PlanAction;
  target: string;
  st?: Stats;
  owner?: Owner;
  tmp?: string;
  backup?: string;
}

/**
 * Applies a plan: every file is checked against the bytes it had when planned (all of them before the
 * first write, and again right before the renames), its previous version is backed up, and the new
 * content replaces it atomically (temp file in the same directory, fsync, rename), with the file's mode
 * and owner kept. A file changed since it was planned refuses the whole plan (exit 5, nothing written).
 * Symlinked files are written through to their target, so a linked dotfile stays linked. Callers that
 * own the file (config.json) also hold its lock; for files other programs edit, the re-check shrinks
 * the race to the instant between the last read and the rename.
 */
export function applyPlan(changes: FileChange[], opts: ApplyOptions): Applied[] {
  const steps: Step[] = changes.map((change) => ({ change, action: actionOf(change), target: realTarget(change.path) }));
  const todo = steps.filter((s) => s.action !== "unchanged");
  const targets = todo.map((s) => s.target);
  const twice = targets.find((t, i) => targets.indexOf(t) !== i);
  if (twice) throw new Error(`a plan changes ${twice} twice`); // a bug in the planner, not the user's
  const committed: Step[] = [];
  let current: Step | undefined;
  try {
    checkUnchanged(todo);
    for (const s of todo) {
      current = s;
      if (s.change.before !== null) {
        s.st = statSync(s.target);
        const uid = process.getuid?.();
        if (uid !== undefined && uid !== 0 && s.st.uid !== uid) {
          throw new FileError(`cannot edit ${s.change.path}: it belongs to another user (uid ${s.st.uid})`, { hint: "run mcp-auth as that user; mcp-auth left it untouched" });
        }
        s.owner = ownerToKeep(s.st);
      }
    }
    for (const s of todo) {
      current = s;
      if (s.change.after === null) continue;
      const dir = dirname(s.target);
      if (s.change.before === null) makeDir(dir, opts.configDir);
      s.tmp = writeTemp(dir, basename(s.target), s.change.after, s.change.mode ?? (s.st ? s.st.mode & 0o777 : 0o600), { owner: s.owner });
    }
    for (const s of todo) {
      current = s;
      if (s.change.before !== null) s.backup = writeBackup(s.target, s.change.before, s.st!.mode & 0o777, s.owner, opts);
    }
    current = undefined;
    checkUnchanged(todo);
    for (const s of todo) {
      current = s;
      commit(s);
      committed.push(s);
    }
  } catch (e) {
    for (const s of todo) if (s.tmp) unlinkQuiet(s.tmp);
    if (e instanceof McpAuthError && !committed.length) throw e;
    const why = e instanceof McpAuthError ? e.message : `cannot write ${current?.change.path ?? "files"}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    throw new FileError(why, {
      hint: committed.length
        ? `already written: ${committed.map((s) => `${s.change.path}${s.backup ? ` (previous version: ${s.backup})` : ""}`).join(", ")}`
        : "nothing was changed",
      cause: e,
    });
  }
  return steps.map((s) => ({ path: s.change.path, action: s.action, backup: s.backup ?? null }));
}

/** Refuses the plan if any file's bytes differ from what was planned. */
function checkUnchanged(steps: Step[]): void {
  const changed = steps.filter((s) => readForPlan(s.target) !== s.change.before).map((s) => s.change.path);
  if (changed.length) {
    throw new FileError(`${changed.join(", ")} changed since mcp-auth read ${changed.length > 1 ? "them" : "it"}; nothing was written`, { hint: "run the command again" });
  }
}

function commit(s: Step): void {
  const dir = dirname(s.target);
  if (s.change.after === null) unlinkSync(s.target);
  else if (s.change.before === null) createExclusive(s.tmp!, s.target);
  else renameSync(s.tmp!, s.target);
  s.tmp = undefined;
  fsyncDir(dir);
}

/** A new file must still be absent: link() fails if something appeared meanwhile, where rename would replace it. */
function createExclusive(tmp: string, target: string): void {
  try {
    linkSync(tmp, target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new FileError(`${target} appeared since mcp-auth planned to create it; nothing was written there`, { hint: "run the command again" });
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw e;
    renameSync(tmp, target); // a filesystem without hard links
    return;
  }
  unlinkSync(tmp);
}

/** Parents of a new file: private inside mcp-auth's own dir, the usual umask elsewhere (a project's `.vscode/`). */
function makeDir(dir: string, configDir: string): void {
  if (dir === realTarget(configDir) || isInside(configDir, dir)) ensureDir(dir);
  else mkdirSync(dir, { recursive: true });
}

function unlinkQuiet(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    /* gone */
  }
}
