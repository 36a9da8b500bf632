import { FileError } from "../errors.js";

/**
 * The one JSONC edit every client writer uses: jsonc-parser `modify` + `applyEdits` change only the
 * bytes of our entry, so comments, trailing commas, indentation, key order, a BOM and CRLF line ends
 * survive (installers that parse + re-serialise lose them). A file that
 * does not parse is refused (exit 5), never rewritten from scratch.
 * jsonc-parser is loaded on first use so other commands do not pay for it.
 */
type Jsonc = typeof import("jsonc-parser");
let J: Jsonc | undefined;

export async function loadJsonc(): Promise<void> {
  J ??= await import("jsonc-parser");
}

function jsonc(): Jsonc {
  if (!J) throw new Error("loadJsonc() first");
  return J;
}

const BOM = "\uFEFF";

export type JsonObject = Record<string, unknown>;

/** The file's root object; a parse error, or a root that is not an object, is refused with exit 5. */
export function parseJsonc(text: string, file: string): JsonObject {
  const body = text.startsWith(BOM) ? text.slice(1) : text;
  if (!body.trim()) return {};
  const errors: import("jsonc-parser").ParseError[] = [];
  const value = jsonc().parse(body, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length) {
    const e = errors[0]!;
    const line = body.slice(0, e.offset).split("\n").length;
    throw new FileError(`cannot parse ${file}: ${jsonc().printParseErrorCode(e.error)} at line ${line}`, { hint: "fix the file; mcp-auth left it untouched" });
  }
  if (!isObject(value)) throw new FileError(`cannot edit ${file}: its top level is not a JSON object`, { hint: "mcp-auth left it untouched" });
  return value;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The value at a path of object keys, or undefined. */
export function getAt(root: unknown, path: readonly string[]): unknown {
  let v: unknown = root;
  for (const k of path) {
    if (!isObject(v) || !Object.hasOwn(v, k)) return undefined;
    v = v[k];
  }
  return v;
}

/** Structural equality of JSON values (key order ignored). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
}

/** Line ends and the indentation unit the file already uses. */
function styleOf(body: string): { eol: string; unit: string } {
  const eol = body.includes("\r\n") ? "\r\n" : "\n";
  const m = /\n([ \t]+)\S/.exec(body);
  return { eol, unit: m ? (m[1]!.startsWith("\t") ? "\t" : m[1]!) : "  " };
}

/** One change to apply: a value at an object path (undefined = remove it), or an item appended to a list. */
export type JsonEdit = { path: readonly string[]; value: unknown } | { append: readonly string[]; value: unknown } | { remove: ReadonlyArray<string | number> };

type Node = import("jsonc-parser").Node;

/**
 * Applies edits to JSONC text, keeping every byte outside our entry. New values are inserted as one
 * piece of text right after the last sibling (so removing that property, as jsonc-parser does,
 * takes exactly it back out) and pretty-printed in the file's own indentation and line ends.
 * jsonc-parser's own formatting is not used: it re-formats whole lines, siblings included.
 * `before` null or blank = a new file, written as plain 2-space JSON.
 */
export function editJsonc(before: string | null, edits: JsonEdit[], file: string): string {
  const text = before ?? "";
  const bom = text.startsWith(BOM) ? BOM : "";
  let body = bom ? text.slice(1) : text;
  parseJsonc(text, file);
  if (!body.trim()) {
    const root: JsonObject = {};
    for (const e of edits) {
      if ("append" in e) (ensureContainer(root, e.append, []) as unknown[]).push(e.value);
      else if ("path" in e && e.value !== undefined) (ensureContainer(root, e.path.slice(0, -1), {}) as JsonObject)[e.path[e.path.length - 1]!] = e.value;
    }
    return Object.keys(root).length ? bom + JSON.stringify(root, null, 2) + "\n" : text;
  }
  for (const e of edits) refuseDuplicates(body, "append" in e ? e.append : "path" in e ? e.path : e.remove, file);
  const style = styleOf(body);
  for (const e of edits) {
    if ("remove" in e) {
      const J = jsonc();
      if (J.findNodeAtLocation(J.parseTree(body, [], { allowTrailingComma: true })!, [...e.remove])) body = J.applyEdits(body, J.modify(body, [...e.remove], undefined, {}));
      continue;
    }
    checkParents(parseJsonc(body, file), ("append" in e ? e.append : e.path).slice(0, -1), file);
    body = edit(body, e, style, file);
  }
  // What the clients will read (JSON.parse and jsonc alike: the last of duplicate keys wins) is what we meant to write.
  const after = parseJsonc(body, file);
  for (const e of edits) {
    if ("path" in e && !sameJson(getAt(after, e.path), e.value)) throw new FileError(`cannot edit ${file}: the edit of "${e.path.join(".")}" did not take`, { hint: "mcp-auth left it untouched" });
  }
  return bom + body;
}

/**
 * A key that appears twice on the path we edit (`mcpServers` twice) is refused: jsonc-parser edits the
 * first, while every client reads the last, so an edit could land where no client looks, or a planted
 * twin could override it.
 */
function refuseDuplicates(body: string, path: ReadonlyArray<string | number>, file: string): void {
  const J = jsonc();
  let node: Node | undefined = J.parseTree(body, [], { allowTrailingComma: true });
  for (let i = 0; i < path.length && node; i++) {
    const key = path[i]!;
    if (node.type === "array" && typeof key === "number") {
      node = node.children?.[key];
      continue;
    }
    if (node.type !== "object") return;
    const same: Node[] = (node.children ?? []).filter((p) => p.children?.[0]?.value === key);
    if (same.length > 1) {
      throw new FileError(`cannot edit ${file}: the key "${path.slice(0, i + 1).join(".")}" appears ${same.length} times`, { hint: "keep one (clients use the last); mcp-auth left the file untouched" });
    }
    node = same[0]?.children?.[1];
  }
}

function edit(body: string, e: Exclude<JsonEdit, { remove: unknown }>, style: { eol: string; unit: string }, file: string): string {
  const J = jsonc();
  const tree = J.parseTree(body, [], { allowTrailingComma: true })!;
  const path = "append" in e ? e.append : e.path;
  if ("path" in e && e.value === undefined) {
    if (!J.findNodeAtLocation(tree, [...path])) return body;
    return J.applyEdits(body, J.modify(body, [...path], undefined, {}));
  }
  // The deepest existing object on the path; what is missing below it is created as one nested value.
  let depth = 0;
  let node = tree;
  while (depth < path.length) {
    const next = J.findNodeAtLocation(node, [path[depth]!]);
    if (!next) break;
    node = next;
    depth++;
  }
  if ("append" in e) {
    if (depth === path.length) {
      if (node.type !== "array") throw new FileError(`cannot edit ${file}: "${path.join(".")}" is not a list`, { hint: "mcp-auth left it untouched" });
      return insertInto(body, node, undefined, e.value, style);
    }
    return insertInto(body, node, path[depth]!, nest(path.slice(depth + 1), [e.value]), style);
  }
  if (depth === path.length) {
    // Replace the existing value in place, indented like its property.
    const indent = lineIndent(body, node.parent?.offset ?? node.offset);
    return body.slice(0, node.offset) + pretty(e.value, indent, style) + body.slice(node.offset + node.length);
  }
  return insertInto(body, node, path[depth]!, nest(path.slice(depth + 1), e.value), style);
}

function nest(keys: readonly string[], leaf: unknown): unknown {
  return keys.reduceRight<unknown>((v, k) => ({ [k]: v }), leaf);
}

/** Inserts `"key": value` into an object node (or `value` into an array node) after its last child. */
function insertInto(body: string, container: Node, key: string | undefined, value: unknown, style: { eol: string; unit: string }): string {
  const kids = container.children ?? [];
  const outer = lineIndent(body, container.parent?.offset ?? container.offset);
  const last = kids[kids.length - 1];
  const indent = last && startsLine(body, last.offset) ? lineIndent(body, last.offset) : outer + style.unit;
  const item = (key === undefined ? "" : `${JSON.stringify(key)}: `) + pretty(value, indent, style);
  if (last) {
    const at = last.offset + last.length;
    return body.slice(0, at) + "," + style.eol + indent + item + body.slice(at);
  }
  const open = container.offset + 1;
  const close = container.offset + container.length - 1;
  const inner = body.slice(open, close);
  if (!inner.trim()) return body.slice(0, open) + style.eol + indent + item + style.eol + outer + body.slice(close);
  return body.slice(0, open) + style.eol + indent + item + body.slice(open); // keep the comments inside after us
}

function pretty(value: unknown, indent: string, style: { eol: string; unit: string }): string {
  return JSON.stringify(value, null, style.unit).replace(/\n/g, style.eol + indent);
}

function lineStart(body: string, offset: number): number {
  return body.lastIndexOf("\n", offset - 1) + 1;
}

function lineIndent(body: string, offset: number): string {
  return /^[ \t]*/.exec(body.slice(lineStart(body, offset), offset))![0];
}

function startsLine(body: string, offset: number): boolean {
  return !body.slice(lineStart(body, offset), offset).trim();
}

/** Every existing parent on the path must be an object: jsonc-parser would otherwise replace a list or a string. */
function checkParents(root: JsonObject, path: readonly string[], file: string): void {
  for (let i = 1; i <= path.length; i++) {
    const v = getAt(root, path.slice(0, i));
    if (v === undefined) return;
    if (!isObject(v)) throw new FileError(`cannot edit ${file}: "${path.slice(0, i).join(".")}" is not an object`, { hint: "mcp-auth left it untouched" });
  }
}

function ensureContainer(root: JsonObject, path: readonly string[], leaf: JsonObject | unknown[]): JsonObject | unknown[] {
  let o: JsonObject = root;
  for (let i = 0; i < path.length; i++) {
    const k = path[i]!;
    if (!Object.hasOwn(o, k)) o[k] = i === path.length - 1 ? leaf : {};
    o = o[k] as JsonObject;
  }
  return o;
}

/** The single edit that turns `after` back into `before`: their common prefix and suffix stay. */
export interface Undo {
  offset: number;
  length: number;
  content: string;
}

export function undoOf(before: string, after: string): Undo {
  let p = 0;
  const max = Math.min(before.length, after.length);
  while (p < max && before.charCodeAt(p) === after.charCodeAt(p)) p++;
  let s = 0;
  while (s < max - p && before.charCodeAt(before.length - 1 - s) === after.charCodeAt(after.length - 1 - s)) s++;
  return { offset: p, length: after.length - p - s, content: before.slice(p, before.length - s) };
}

export function applyUndo(after: string, u: Undo): string {
  return after.slice(0, u.offset) + u.content + after.slice(u.offset + u.length);
}
