import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ClientWriter } from "../src/core/client.js";
import { CLIENTS } from "../src/plugins.js";
import { ROOT } from "./helpers/cli.js";

/**
 * The README's client table ("Using the token from MCP clients") is rendered from the writer modules
 * (src/clients/): id, scopes, each scope's file and key, default and offered strategies, and which
 * other clients read the same file. A writer that changes and a README that does not fail here;
 * UPDATE_README=1 rewrites the table between its markers (then read the diff).
 */
const README = join(ROOT, "README.md");
const START = "<!-- client-table: generated from src/clients/ by test/readme-clients.test.ts -->";
const END = "<!-- /client-table -->";

/** Paths as the README shows them: Linux, `~` for the home directory, relative to the project. */
const fileOf = (w: ClientWriter, scope: ClientWriter["scopes"][number]) => w.configPath({ HOME: "~" }, "linux", scope, ".");

function clientTable(writers: readonly ClientWriter[]): string {
  // Who reads each file: every writer with a scope there, and the programs the writers name.
  const readers = new Map<string, string[]>();
  for (const w of writers) {
    for (const scope of w.scopes) {
      const list = readers.get(fileOf(w, scope)) ?? [];
      for (const r of [w.title, ...(w.alsoReadBy?.[scope] ?? [])]) if (!list.includes(r)) list.push(r);
      readers.set(fileOf(w, scope), list);
    }
  }
  const rows = writers.flatMap((w) =>
    w.scopes.map((scope) => {
      const also = readers.get(fileOf(w, scope))!.filter((r) => r !== w.title);
      const dflt = w.scopeDefaults?.[scope] ?? w.defaultStrategy;
      const scopeCell = scope === w.defaultScope ? `${scope} (default)` : scope;
      return `| ${w.title} | \`${w.id}\` | ${scopeCell} | \`${fileOf(w, scope)}\` | \`${w.serversPath(scope, "<dir>").join(".")}\` | ${dflt} | ${w.strategies.join(", ")} | ${also.join(", ") || "—"} |`;
    }),
  );
  return [
    START,
    "| client | id | scope | file | key | default strategy | strategies | the same file is also read by |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    END,
  ].join("\n");
}

describe("README client table", () => {
  it("matches the writer modules", () => {
    const text = readFileSync(README, "utf8");
    const a = text.indexOf(START);
    const b = text.indexOf(END);
    expect(a, "the README has the client table markers").toBeGreaterThan(0);
    expect(b).toBeGreaterThan(a);
    const want = clientTable(CLIENTS);
    if (process.env.UPDATE_README) writeFileSync(README, text.slice(0, a) + want + text.slice(b + END.length));
    expect(text.slice(a, b + END.length)).toBe(want);
  });

  it("names every client, and the shared project .mcp.json with all its readers", () => {
    const table = clientTable(CLIENTS);
    for (const w of CLIENTS) expect(table).toContain(`| \`${w.id}\` |`);
    const mcpJson = table.split("\n").filter((l) => l.includes("| `.mcp.json` |"));
    expect(mcpJson).toHaveLength(2); // Claude Code's project scope and Copilot CLI's
    expect(mcpJson.find((l) => l.startsWith("| Claude Code"))).toContain("| GitHub Copilot CLI, VS Code (Copilot agent sessions) |");
    expect(mcpJson.find((l) => l.startsWith("| GitHub Copilot CLI"))).toContain("| Claude Code, VS Code (Copilot agent sessions) |");
  });
});
