import { FileError } from "../errors.js";
import { isObject, sameJson, type JsonObject } from "./jsonc.js";

/**
 * The edit for clients whose config is YAML (Goose). yaml (eemeli/yaml) parses the file into a
 * Document that keeps every node's source range; our entry is one pair of a block mapping
 * (`extensions:` → `NAME:`), so it is spliced in textually: added after the mapping's last pair,
 * replaced or removed by exactly its lines. Every other byte is kept: comments, key order, quoting,
 * sequence indentation, CRLF, a BOM. A shape the splice does not handle (a flow mapping, a comment
 * after `extensions:`) falls back to yaml's Document API, which keeps comments but may re-indent. After
 * either edit the result is parsed again and must equal the old document with only our entry changed;
 * anything else is refused (exit 5), as is a file that does not parse.
 */
type Yaml = typeof import("yaml");
let Y: Yaml | undefined;

export async function loadYaml(): Promise<void> {
  Y ??= await import("yaml");
}

function yaml(): Yaml {
  if (!Y) throw new Error("loadYaml() first");
  return Y;
}

const BOM = "\uFEFF";
/** Alias expansion bound (a "billion laughs" file is refused, not expanded). */
const MAX_ALIASES = 100;

type Doc = import("yaml").Document.Parsed;

function parseDoc(text: string, file: string): Doc {
  const body = text.startsWith(BOM) ? text.slice(1) : text;
  const doc = yaml().parseDocument(body, { uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line;
    throw new FileError(`cannot parse ${file}: ${(err.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "")}${line ? ` at line ${line}` : ""}`, { hint: "fix the file; mcp-auth left it untouched" });
  }
  return doc;
}

/** The document as plain JSON values; a parse error, or a top level that is not a mapping, is refused with exit 5. */
export function parseYaml(text: string, file: string): JsonObject {
  const doc = parseDoc(text, file);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    throw new FileError(`cannot parse ${file}: ${(e as Error).message.split("\n")[0]}`, { hint: "fix the file; mcp-auth left it untouched" });
  }
  if (value === null || value === undefined) return {};
  if (!isObject(value)) throw new FileError(`cannot edit ${file}: its top level is not a YAML mapping`, { hint: "mcp-auth left it untouched" });
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

/** `{ key: value }` as block YAML, each line indented by `indent`, lines ending in `eol`. */
export function renderYaml(key: string, value: unknown, indent: string, eol: string): string {
  const text = yaml().stringify({ [key]: value }, { indent: 2, lineWidth: 0, minContentWidth: 0 });
  return text
    .replace(/\n$/, "")
    .split("\n")
    .map((l) => indent + l)
    .join(eol);
}

function lineStart(text: string, at: number): number {
  return text.lastIndexOf("\n", at - 1) + 1;
}

/** After the end of the line `at` is on (or `at` itself at a line's start). */
function lineEnd(text: string, at: number): number {
  if (at === 0 || text[at - 1] === "\n") return at;
  const nl = text.indexOf("\n", at);
  return nl < 0 ? text.length : nl + 1;
}

/** The textual splice; undefined when the file's shape is not the plain block mapping it handles. */
function splice(body: string, doc: Doc, path: readonly string[], value: JsonObject | undefined, eol: string): string | undefined {
  if (path.length !== 2) return undefined;
  const [top, name] = path as [string, string];
  const Yl = yaml();
  const root = doc.contents;
  if (root !== null && !Yl.isMap(root)) return undefined;
  if (root === null || (root.flow && !root.items.length)) {
    // An empty file (comments at most): the mapping goes after whatever is there.
    if (value === undefined) return body;
    if (root !== null) return undefined;
    const sep = body && !body.endsWith("\n") ? eol : "";
    return body + sep + `${top}:` + eol + renderYaml(name, value, "  ", eol) + eol;
  }
  if (root.flow) return undefined;
  const topPair = root.items.find((p) => Yl.isScalar(p.key) && p.key.value === top);
  if (!topPair) {
    if (value === undefined) return body;
    const sep = body.endsWith("\n") ? "" : eol;
    return body + sep + `${top}:` + eol + renderYaml(name, value, "  ", eol) + eol;
  }
  const map = topPair.value;
  if (map === null || (Yl.isScalar(map) && map.value === null && map.source === "")) {
    // `extensions:` with nothing (a comment at most) after it: the block mapping starts on the next line.
    if (value === undefined) return body;
    const tk = topPair.key as { range?: [number, number, number] };
    const at = tk.range ? lineEnd(body, body.indexOf(":", tk.range[1]) + 1) : -1;
    if (at <= 0) return undefined;
    const lead = body[at - 1] !== "\n" ? eol : "";
    return body.slice(0, at) + lead + renderYaml(name, value, "  ", eol) + eol + body.slice(at);
  }
  if (!Yl.isMap(map) || map.flow) return undefined;
  const pairs = map.items;
  const first = pairs[0];
  if (!first || !Yl.isScalar(first.key) || !first.key.range) return undefined;
  const indent = body.slice(lineStart(body, first.key.range[0]), first.key.range[0]);
  if (!/^ +$/.test(indent)) return undefined;
  const i = pairs.findIndex((p) => Yl.isScalar(p.key) && p.key.value === name);
  if (i < 0) {
    if (value === undefined) return body;
    if (!map.range) return undefined;
    const at = map.range[1];
    const lead = at > 0 && body[at - 1] !== "\n" ? eol : "";
    return body.slice(0, at) + lead + renderYaml(name, value, indent, eol) + eol + body.slice(at);
  }
  const pair = pairs[i]!;
  const key = pair.key as { range?: [number, number, number] };
  const val = pair.value as { range?: [number, number, number] } | null;
  if (!key.range) return undefined;
  const start = lineStart(body, key.range[0]);
  if (body.slice(start, key.range[0]) !== indent) return undefined;
  const end = lineEnd(body, val?.range ? val.range[1] : key.range[1]);
  if (value !== undefined) return body.slice(0, start) + renderYaml(name, value, indent, eol) + eol + body.slice(end);
  if (pairs.length > 1) return body.slice(0, start) + body.slice(end);
  // The last pair: the key keeps an empty mapping, `extensions: {}`.
  const tk = topPair.key as { range?: [number, number, number] };
  if (!tk.range) return undefined;
  const colon = body.indexOf(":", tk.range[1]);
  if (colon < 0 || colon > start) return undefined;
  return body.slice(0, colon + 1) + " {}" + body.slice(colon + 1, start) + body.slice(end);
}

/** yaml's own edit, for the shapes splice() leaves alone: comments kept, layout possibly re-indented. */
function viaDocument(body: string, path: readonly string[], value: JsonObject | undefined, file: string): string | undefined {
  try {
    const doc = parseDoc(body, file);
    if (value === undefined) doc.deleteIn(path);
    else doc.setIn(path, doc.createNode(value));
    return doc.toString({ indent: 2, lineWidth: 0, minContentWidth: 0 });
  } catch {
    return undefined; // an alias or a scalar where the mapping should be: refused below
  }
}

function edit(before: string | null, path: readonly string[], value: JsonObject | undefined, file: string): string {
  const text = before ?? "";
  const bom = text.startsWith(BOM) ? BOM : "";
  const body = bom ? text.slice(1) : text;
  const old = parseYaml(body, file);
  const doc = parseDoc(body, file);
  const eol = body.includes("\r\n") ? "\r\n" : "\n";
  for (const out of [splice(body, doc, path, value, eol), viaDocument(body, path, value, file)]) {
    if (out !== undefined && verified(old, out, path, value, file)) return bom + out;
  }
  throw new FileError(`cannot edit ${file}: "${path.join(".")}" is not where mcp-auth can change it alone`, { hint: "edit that entry by hand; mcp-auth left the file untouched" });
}

/** `before` (null: no file) with `value` at `path`. */
export function setYamlEntry(before: string | null, path: readonly string[], value: JsonObject, file: string): string {
  return edit(before, path, value, file);
}

/** `before` without the entry at `path`. */
export function removeYamlEntry(before: string, path: readonly string[], file: string): string {
  return edit(before, path, undefined, file);
}

/** Does `after` hold exactly the old document with only `path` changed? */
function verified(old: JsonObject, after: string, path: readonly string[], value: JsonObject | undefined, file: string): boolean {
  const want = structuredClone(old);
  let o: JsonObject = want;
  for (const k of path.slice(0, -1)) {
    if (o[k] === undefined || o[k] === null) o[k] = {};
    const next = o[k];
    if (!isObject(next)) throw new FileError(`cannot edit ${file}: "${path.slice(0, -1).join(".")}" is not a mapping`, { hint: "mcp-auth left it untouched" });
    o = next;
  }
  if (value === undefined) delete o[path[path.length - 1]!];
  else o[path[path.length - 1]!] = value;
  let got: JsonObject;
  try {
    got = parseYaml(after, file);
  } catch {
    return false;
  }
  const top = path[0]!;
  for (const d of [want, got]) if (d[top] === null || (isObject(d[top]) && !Object.keys(d[top]).length)) delete d[top];
  return sameJson(got, want);
}
