import { UsageError } from "../errors.js";
import { claude } from "./claude.js";
import { claudeDesktop } from "./claude-desktop.js";
import { cursor } from "./cursor.js";
import { vscode } from "./vscode.js";
import type { ClientWriter } from "./types.js";

/** Every supported MCP client; add one here (codex, gemini, windsurf later). */
export const CLIENTS: readonly ClientWriter[] = [claude, claudeDesktop, cursor, vscode];

export function clientWriter(id: string): ClientWriter {
  const w = CLIENTS.find((c) => c.id === id);
  if (!w) throw new UsageError(`unknown client "${id}"`, { hint: `supported: ${CLIENTS.map((c) => c.id).join(", ")}` });
  return w;
}
