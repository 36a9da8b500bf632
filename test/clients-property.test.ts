import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { diffChars } from "diff";
import { parse } from "jsonc-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { editJsonc, getAt, loadJsonc, undoOf } from "../src/store/jsonc.js";
import { actionOf } from "../src/store/plan.js";
import { applyAddClient, applyRemoveClient, prepareAddClient, prepareRemoveClient } from "../src/core/clients.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { Random, rng } from "./helpers/random.js";

/**
 * Property test: 1,000 generated JSONC config files (comments, trailing commas, other servers, odd
 * whitespace, BOM, CRLF). For each: add-client changes one contiguous region where the file had only
 * whitespace (every other byte identical) and the parsed result is the original plus our entry; a
 * second add-client changes nothing; remove-client gives the original bytes back.
 */
const N = 1000;

class Gen extends Random {
  /** Whitespace and comments between tokens. */
  gap(): string {
    let s = this.pick(["", " ", "  ", "\t", "\n", "\n  ", "\n\t\t", "\n    ", " \n \n"]);
    if (this.chance(0.15)) s += this.pick([`/* c${this.int(99)} */`, `// note ${this.int(99)}\n`, "/**/", `/* multi\n line */`]) + this.pick(["", " ", "\n"]);
    return s;
  }
  str(): string {
    return JSON.stringify(this.pick(["x", "https://a.example/mcp", "é ü 漢字", 'quote " and \\ back', "tab\there", "${env:HOME}", ""]));
  }
  value(depth: number): string {
    const k = depth > 2 ? this.int(3) : this.int(5);
    if (k === 0) return this.str();
    if (k === 1) return this.pick(["1", "-2.5e3", "true", "false", "null", "0"]);
    if (k === 2) return this.pick(['"npx"', '"uvx"', "42"]);
    if (k === 3) return this.array(depth + 1);
    return this.object(depth + 1, this.int(4));
  }
  array(depth: number): string {
    const n = this.int(4);
    const items = Array.from({ length: n }, () => this.gap() + this.value(depth) + this.gap());
    return `[${items.join(",")}${n && this.chance(0.3) ? "," + this.gap() : ""}${n ? "" : this.gap()}]`;
  }
  object(depth: number, n: number, fixed: Array<[string, string]> = []): string {
    const entries: Array<[string, string]> = [...fixed];
    for (let i = 0; i < n; i++) entries.splice(this.int(entries.length + 1), 0, [`k${depth}_${i}`, this.value(depth)]);
    const props = entries.map(([k, v]) => `${this.gap()}${JSON.stringify(k)}${this.pick(["", " "])}:${this.pick(["", " ", "  "])}${v}${this.gap()}`);
    return `{${props.join(",")}${entries.length && this.chance(0.3) ? "," + this.gap() : ""}${entries.length ? "" : this.gap()}}`;
  }
  servers(): string {
    const n = this.int(4);
    const fixed: Array<[string, string]> = [];
    for (let i = 0; i < n; i++) fixed.push([`srv-${i}`, this.pick([`{"command":"npx","args":["-y","pkg-${i}"]}`, `{ "url": ${this.str()} }`, this.object(2, 2)])]);
    return this.object(9, 0, fixed);
  }
  /** A whole config file for a client whose servers live under `key`. */
  file(key: string): string {
    const fixed: Array<[string, string]> = [];
    if (this.chance(0.8)) fixed.push([key, this.servers()]);
    let text = this.gap() + this.object(0, this.int(4), fixed) + this.pick(["", "\n", "\n\n", " // end\n"]);
    if (this.chance(0.3)) text = text.replace(/\r?\n/g, "\r\n");
    if (this.chance(0.2)) text = "\uFEFF" + text;
    return text;
  }
}

let t: TestContext;
let proj: string;
beforeAll(async () => {
  t = createTestContext();
  proj = join(t.env.HOME!, "proj");
  mkdirSync(proj);
  expect(await t.run(["profiles", "add", "p", "--issuer", "https://idp.example.invalid", "--client-id", "c", "--mcp-url", "https://mcp.example.invalid/mcp"])).toBe(0);
  await loadJsonc();
});
afterAll(() => t.cleanup());

const strip = (s: string) => (s.startsWith("\uFEFF") ? s.slice(1) : s);

describe("add-client / remove-client on generated JSONC files", () => {
  it(`keeps every other byte, is idempotent and undoes exactly (${N} files)`, async () => {
    const g = new Gen(rng(20261129));
    const clients = [
      { client: "cursor", scope: "user", key: "mcpServers", strategy: undefined },
      { client: "vscode", scope: "project", key: "servers", strategy: "header" },
      { client: "claude", scope: "local", key: "mcpServers", strategy: undefined },
      { client: "gemini", scope: "project", key: "mcpServers", strategy: "header" },
      { client: "windsurf", scope: "user", key: "mcpServers", strategy: undefined },
      { client: "copilot", scope: "project", key: "mcpServers", strategy: undefined },
      { client: "opencode", scope: "user", key: "mcp", strategy: "header" },
    ] as const;
    for (let i = 0; i < N; i++) {
      const c = clients[i % clients.length]!;
      const req = { client: c.client, scope: c.scope, strategy: c.strategy, profile: "p", cwd: proj, platform: "linux", launcher: { node: "/n", script: "/s/bin/mcp-auth.js" }, claudeCli: null };
      const original = c.client === "claude" && g.chance(0.5) ? g.file("projects") : g.file(c.key);
      const prep0 = await prepareAddClient(t.ctx, req);
      const file = prep0.path;
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, original);
      const ctxt = `case ${i} (${c.client}):\n${JSON.stringify(original)}`;

      const prep = await prepareAddClient(t.ctx, req);
      await applyAddClient(t.ctx, prep, req);
      const after = readFileSync(file, "utf8");
      // Only insertions, plus whitespace replaced inside a container that was empty.
      expect(removedText(original, after), ctxt).toMatch(/^\s*$/);
      expect(undoOf(original, after).offset, ctxt).toBeGreaterThan(0);
      // Parsed: the original plus our entry.
      const entryPath = [...prep.writer.serversPath(prep.spec.scope, proj), prep.spec.name];
      const got = parse(strip(after), [], { allowTrailingComma: true });
      expect(getAt(got, entryPath), ctxt).toEqual(prep.entry.server);
      const inputAt = prep.entry.input ? (getAt(got, ["inputs"]) as unknown[]).length - 1 : -1;
      const undoEdits = [{ path: entryPath, value: undefined }, ...(inputAt >= 0 ? [{ remove: ["inputs", inputAt] }] : [])];
      const back = parse(strip(editJsonc(after, undoEdits, file)), [], { allowTrailingComma: true });
      const want = parse(strip(original), [], { allowTrailingComma: true }) ?? {};
      expect(prune(back, want), ctxt).toEqual(prune(want, want));

      // Again: nothing to do.
      const again = await prepareAddClient(t.ctx, req);
      expect(actionOf(again.changes[0]!), ctxt).toBe("unchanged");

      // remove-client: the original bytes.
      const rm = await prepareRemoveClient(t.ctx, { client: c.client, scope: c.scope, name: prep.spec.name, cwd: proj, platform: "linux", claudeCli: null });
      expect(rm.exact, ctxt).toBe(true);
      await applyRemoveClient(t.ctx, rm, { cwd: proj, claudeCli: null });
      expect(readFileSync(file, "utf8"), ctxt).toBe(original);
      rmSync(file);
    }
  }, 600_000);
});

/**
 * What `after` no longer has of `before`. Most edits are one insertion: the text between the common
 * prefix and suffix says so in linear time. Several (VS Code's entry and its input) go to a character diff.
 */
function removedText(before: string, after: string): string {
  let p = 0;
  while (p < before.length && p < after.length && before[p] === after[p]) p++;
  let s = 0;
  while (s < before.length - p && s < after.length - p && before[before.length - 1 - s] === after[after.length - 1 - s]) s++;
  const middle = before.slice(p, before.length - s);
  if (/^\s*$/.test(middle)) return middle;
  return diffChars(before, after).filter((d) => d.removed).map((d) => d.value).join("");
}

/** `v` without the empty objects and lists our edit may have left where `orig` had nothing (containers it created). */
function prune(v: unknown, orig: unknown): unknown {
  if (Array.isArray(v)) return v.length || Array.isArray(orig) ? v : undefined;
  if (typeof v !== "object" || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const o = typeof orig === "object" && orig !== null ? (orig as Record<string, unknown>)[k] : undefined;
    const p = prune(x, o);
    if (p === undefined) continue;
    if (o === undefined && typeof p === "object" && p !== null && !Object.keys(p).length) continue;
    out[k] = p;
  }
  return out;
}
