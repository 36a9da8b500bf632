import { FileError } from "../errors.js";
import { isObject, sameJson, type JsonObject } from "./jsonc.js";

/**
 * The textual TOML edit for clients whose config is TOML (Codex). smol-toml only parses and checks:
 * nothing is re-serialised. Our server is one table, `[mcp_servers.NAME]`, written with inline values
 * (sub-objects as inline tables) so it is a single block of lines: added at the end of the file,
 * replaced or removed by exactly its line range (with any `[mcp_servers.NAME.*]` sub-tables a person
 * added). Every other byte is kept: comments, order, blank lines, CRLF, a BOM. After each edit the
 * result is parsed again and must equal the old document with only our table changed; anything else
 * (our table written as dotted keys or inline, a header inside a multi-line string…) is refused (exit 5).
 */
type Toml = typeof import("smol-toml");
let T: Toml | undefined;

export async function loadToml(): Promise<void> {
  T ??= await import("smol-toml");
}

function toml(): Toml {
  if (!T) throw new Error("loadToml() first");
  return T;
}

const BOM = "\uFEFF";

/** The document as plain JSON values (dates as strings); a parse error is refused with exit 5. */
export function parseToml(text: string, file: string): JsonObject {
  const body = text.startsWith(BOM) ? text.slice(1) : text;
  try {
    return JSON.parse(JSON.stringify(toml().parse(body))) as JsonObject;
  } catch (e) {
    const line = (e as { line?: number }).line;
    const why = ((e as Error).message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
    throw new FileError(`cannot parse ${file}: ${why}${line ? ` at line ${line}` : ""}`, { hint: "fix the file; mcp-auth left it untouched" });
  }
}

const BARE = /^[A-Za-z0-9_-]+$/;

function key(k: string): string {
  return BARE.test(k) ? k : str(k);
}

/** A TOML basic string: JSON's escapes are TOML's, but TOML also forbids a raw DEL. */
function str(s: string): string {
  return JSON.stringify(s).replace(/\u007f/g, "\\u007f");
}

function inline(v: unknown): string {
  if (typeof v === "string") return str(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(inline).join(", ")}]`;
  if (isObject(v)) {
    const kv = Object.entries(v).map(([k, x]) => `${key(k)} = ${inline(x)}`);
    return kv.length ? `{ ${kv.join(", ")} }` : "{}";
  }
  throw new Error(`cannot write ${typeof v} as TOML`);
}

/** `[a.b]` and its keys, one per line, without a final line end. */
export function renderTable(path: readonly string[], value: JsonObject, eol: string): string {
  return [`[${path.map(key).join(".")}]`, ...Object.entries(value).map(([k, v]) => `${key(k)} = ${inline(v)}`)].join(eol);
}

interface Line {
  start: number;
  /** After the line's end of line. */
  end: number;
  text: string;
}

function linesOf(body: string): Line[] {
  const out: Line[] = [];
  let at = 0;
  while (at < body.length) {
    const nl = body.indexOf("\n", at);
    const end = nl < 0 ? body.length : nl + 1;
    out.push({ start: at, end, text: body.slice(at, end).replace(/\r?\n$/, "") });
    at = end;
  }
  return out;
}

const KEY_PART = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const HEADER = new RegExp(String.raw`^[ \t]*(\[\[?)[ \t]*(${KEY_PART}(?:[ \t]*\.[ \t]*${KEY_PART})*)[ \t]*\]\]?[ \t]*(?:#.*)?$`);

/** A table header's keys and whether it is an array of tables; undefined for any other line. */
function header(line: string): { keys: string[]; array: boolean } | undefined {
  const m = HEADER.exec(line);
  if (!m) return undefined;
  const keys = [...m[2]!.matchAll(new RegExp(KEY_PART, "g"))].map(([k]) => (k.startsWith('"') ? unquote(k) : k.startsWith("'") ? k.slice(1, -1) : k));
  return { keys, array: m[1] === "[[" };
}

/** A basic-string key; TOML-only escapes (\\e, \\U…) are kept as written: such a key is never ours. */
function unquote(k: string): string {
  try {
    return JSON.parse(k) as string;
  } catch {
    return k;
  }
}

const isContent = (l: Line) => !/^[ \t]*(#.*)?$/.test(l.text);

/**
 * Each line's table header, if it is one: a `[` line counts only outside multi-line strings and
 * multi-line arrays or inline tables, so a `[mcp_servers.x]` inside a `"""` string is not a header.
 */
function headersOf(lines: Line[]): Array<{ keys: string[]; array: boolean } | undefined> {
  let ml: string | undefined; // the delimiter of the multi-line string we are in
  let depth = 0;
  return lines.map(({ text }) => {
    const h = !ml && depth === 0 ? header(text) : undefined;
    if (h) return h;
    for (let i = 0; i < text.length; i++) {
      if (ml) {
        if (ml === '"""' && text[i] === "\\") i++;
        else if (text.startsWith(ml, i)) {
          while (text[i + 3] === ml[0]) i++; // up to two more quotes belong to the content
          i += 2;
          ml = undefined;
        }
        continue;
      }
      const c = text[i]!;
      if (c === "#") break;
      const three = text.slice(i, i + 3);
      if (three === '"""' || three === "'''") {
        ml = three;
        i += 2;
      } else if (c === '"' || c === "'") {
        for (i++; i < text.length && text[i] !== c; i++) if (c === '"' && text[i] === "\\") i++;
      } else if (c === "[" || c === "{") depth++;
      else if (c === "]" || c === "}") depth = Math.max(0, depth - 1);
    }
    return undefined;
  });
}

/** Line ranges [start, end) of our table and its sub-tables: header through its last key line. */
function segments(lines: Line[], path: readonly string[]): Array<{ start: number; end: number; first: number; last: number }> {
  const heads = headersOf(lines);
  const out: Array<{ start: number; end: number; first: number; last: number }> = [];
  for (let i = 0; i < lines.length; i++) {
    const h = heads[i];
    if (!h || h.array || h.keys.length < path.length || !path.every((k, j) => h.keys[j] === k)) continue;
    let last = i;
    for (let j = i + 1; j < lines.length && !heads[j]; j++) if (isContent(lines[j]!)) last = j;
    out.push({ start: lines[i]!.start, end: lines[last]!.end, first: i, last });
  }
  return out;
}

function eolOf(body: string): string {
  return body.includes("\r\n") ? "\r\n" : "\n";
}

/** `before` with the table at `path` set to `value` (added at the end, or replacing ours in place). */
export function setTomlTable(before: string | null, path: readonly string[], value: JsonObject, file: string): string {
  const text = before ?? "";
  const bom = text.startsWith(BOM) ? BOM : "";
  const body = bom ? text.slice(1) : text;
  const old = parseToml(text, file);
  const eol = eolOf(body);
  const table = renderTable(path, value, eol);
  const segs = segments(linesOf(body), path);
  let out: string;
  if (!segs.length) {
    let pre = body;
    if (pre && !pre.endsWith("\n")) pre += eol;
    if (pre.trim() && !/\n[ \t]*\r?\n$/.test(pre)) pre += eol; // one blank line before our table
    out = pre + table + eol;
  } else {
    out = body;
    for (let i = segs.length - 1; i >= 0; i--) {
      const s = segs[i]!;
      const seg = body.slice(s.start, s.end);
      const replacement = i === 0 ? table + (/\n$/.test(seg) ? eol : "") : "";
      out = out.slice(0, s.start) + replacement + out.slice(s.end);
    }
  }
  verify(old, out, path, value, file);
  return bom + out;
}

/** `before` without the table at `path` (and its sub-tables). */
export function removeTomlTable(before: string, path: readonly string[], file: string): string {
  const bom = before.startsWith(BOM) ? BOM : "";
  const body = bom ? before.slice(1) : before;
  const old = parseToml(before, file);
  const lines = linesOf(body);
  const segs = segments(lines, path);
  let out = body;
  for (let i = segs.length - 1; i >= 0; i--) {
    const s = segs[i]!;
    let start = s.start;
    // The blank line that separated it goes too, unless it still separates two other things.
    const prev = lines[s.first - 1];
    const next = lines[s.last + 1];
    if (prev && !prev.text.trim() && (!next || !next.text.trim())) start = prev.start;
    out = out.slice(0, start) + out.slice(s.end);
  }
  verify(old, out, path, undefined, file);
  return bom + out;
}

function verify(old: JsonObject, after: string, path: readonly string[], value: JsonObject | undefined, file: string): void {
  const want = structuredClone(old);
  let o: JsonObject = want;
  for (const k of path.slice(0, -1)) {
    if (!Object.hasOwn(o, k)) o[k] = {};
    const next = o[k];
    if (!isObject(next)) throw new FileError(`cannot edit ${file}: "${path.slice(0, -1).join(".")}" is not a table`, { hint: "mcp-auth left it untouched" });
    o = next;
  }
  if (value === undefined) delete o[path[path.length - 1]!];
  else o[path[path.length - 1]!] = value;
  let got: JsonObject;
  try {
    got = parseToml(after, file);
  } catch {
    got = { unparsable: true };
  }
  const top = path[0]!;
  for (const d of [want, got]) if (isObject(d[top]) && !Object.keys(d[top]).length) delete d[top];
  if (!sameJson(got, want)) {
    throw new FileError(`cannot edit ${file}: [${path.join(".")}] is not written as a table of its own there`, { hint: "edit that entry by hand; mcp-auth left the file untouched" });
  }
}
