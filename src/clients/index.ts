import { UsageError } from "../errors.js";
import { claude } from "./claude.js";
import { claudeDesktop } from "./claude-desktop.js";
import { codex } from "./codex.js";
import { cursor } from "./cursor.js";
import { gemini } from "./gemini.js";
import { vscode } from "./vscode.js";
import { windsurf } from "./windsurf.js";
import type { ClientWriter } from "./types.js";

/** Every supported MCP client; add one here. */
export const CLIENTS: readonly ClientWriter[] = [claude, claudeDesktop, cursor, vscode, codex, gemini, windsurf];

export function clientWriter(id: string): ClientWriter {
  const w = CLIENTS.find((c) => c.id === id);
  if (!w) throw new UsageError(`unknown client "${id}"`, { hint: `supported: ${CLIENTS.map((c) => c.id).join(", ")}` });
  return w;
}
