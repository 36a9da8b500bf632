import { lstatSync } from "node:fs";
import { FileError } from "../errors.js";
import { readRegularFile } from "./fsutil.js";

/**
 * Every file mcp-auth edits is planned before anything is touched: the bytes it has now, the bytes it
 * will have, and why. A plan can be shown (`--dry-run`: a unified diff; `--json`: a list of actions)
 * or applied (src/store/apply.ts: atomic, with a backup, refusing a file changed since it was planned).
 * Planning reads files but never writes; rendering is pure.
 */
export interface FileChange {
  /** The file as the user knows it (a symlink is followed when applied, so a linked dotfile stays linked). */
  path: string;
  /** Its content when planned; null = the file does not exist. */
  before: string | null;
  /** Its content after the change; null = delete it. */
  after: string | null;
  /** Mode of the written file; default: the existing file's mode, 0600 for a new file. */
  mode?: number;
  /** One line saying why, e.g. "add server k8s to Claude Code". */
  description: string;
  /** The file may hold secrets (a .env): its content is never rendered. */
  sensitive?: boolean;
}

export type PlanAction = "create" | "update" | "delete" | "unchanged";

export function actionOf(c: Pick<FileChange, "before" | "after">): PlanAction {
  if (c.before === c.after) return "unchanged";
  if (c.before === null) return "create";
  if (c.after === null) return "delete";
  return "update";
}

/**
 * The current text of a file, or null when it does not exist. Refuses (exit 5) what it cannot read or
 * must not edit: a directory, FIFO or device, a kernel file (/proc, /sys), more than 4 MB
 * (src/store/fsutil.ts readRegularFile), a dangling symlink, or bytes that are not UTF-8 (rewriting
 * them as text would corrupt them). Symlinks to regular files are followed.
 */
export function readForPlan(path: string): string | null {
  const bytes = readRegularFile(path, { what: "cannot edit" });
  if (bytes === null) {
    if (isSymlink(path)) throw new FileError(`cannot edit ${path}: it is a symbolic link to a missing file`, { hint: "remove the link or create its target; mcp-auth left it untouched" });
    return null;
  }
  const text = bytes.toString("utf8");
  if (!Buffer.from(text, "utf8").equals(bytes)) throw new FileError(`cannot edit ${path}: not UTF-8 text`, { hint: "mcp-auth left it untouched" });
  return text;
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Plans one file: reads it now and asks `transform` for its new content (null = delete it). */
export function planFile(path: string, transform: (before: string | null) => string | null, opts: { description?: string; mode?: number; sensitive?: boolean } = {}): FileChange {
  const before = readForPlan(path);
  const after = transform(before);
  return { path, before, after, description: opts.description ?? "", ...(opts.mode !== undefined && { mode: opts.mode }), ...(opts.sensitive && { sensitive: true }) };
}

/**
 * The plan as a unified diff, one patch per changed file, each after a `# description` line ("" when
 * nothing changes). Control characters
 * in the files are shown escaped, so a hostile file in a cloned project cannot drive the terminal.
 */
export async function renderPlan(changes: FileChange[]): Promise<string> {
  const { createTwoFilesPatch, FILE_HEADERS_ONLY } = await import("diff");
  let out = "";
  for (const c of changes) {
    const action = actionOf(c);
    if (action === "unchanged") continue;
    const from = c.before === null ? "/dev/null" : c.path;
    const to = c.after === null ? "/dev/null" : c.path;
    if (c.description) out += `# ${c.description.replace(/\n/g, " ")}\n`; // text before "---" is ignored by patch(1) and git apply
    if (c.sensitive) {
      out += `--- ${from}\n+++ ${to}\n# ${action}: content not shown, it may hold secrets\n`;
      continue;
    }
    out += createTwoFilesPatch(from, to, c.before ?? "", c.after ?? "", undefined, undefined, { headerOptions: FILE_HEADERS_ONLY });
  }
  return escapeControls(out);
}

/** Every C0/C1 control but newline and tab as a visible `\xNN`, and every bidi control as `\uNNNN` (it would reorder the line). */
export function escapeControls(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`)
    .replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export interface PlannedFile {
  path: string;
  action: PlanAction;
  /** Where the previous version will be kept (null when there is none to keep). */
  backup: string | null;
  description: string;
}

/** The plan as data for `--json`. `backupOf` says where a file's backup goes (src/store/backup.ts). */
export function planToJson(changes: FileChange[], backupOf: (path: string) => string): PlannedFile[] {
  return changes.map((c) => {
    const action = actionOf(c);
    return { path: c.path, action, backup: action === "update" || action === "delete" ? backupOf(c.path) : null, description: c.description };
  });
}
