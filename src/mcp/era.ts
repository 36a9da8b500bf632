import { answerText, headerOf, type Relay, type RelayAnswer } from "../oauth/http.js";
import { markControl } from "../io/sanitize.js";
import { responseIn } from "./probe.js";

/**
 * The two protocol eras of MCP and how to tell them apart (docs/mcp-2026-07-28.md): "modern"
 * (2026-07-28 and later: no handshake, `_meta` and headers on every request) and "legacy" (2025-11-25
 * and earlier: `initialize` first).
 */
export const MODERN_VERSION = "2026-07-28";
/** Modern versions mcp-auth speaks, preferred first. */
export const MODERN_VERSIONS = [MODERN_VERSION];
/** Legacy versions mcp-auth speaks, newest first. */
export const LEGACY_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

export const META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion";
export const META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities";
export const META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo";
export const META_LOG_LEVEL = "io.modelcontextprotocol/logLevel";
export const META_SERVER_INFO = "io.modelcontextprotocol/serverInfo";
export const META_SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId";

/** The errors only a modern server sends (basic/index "Error Codes"). */
export const HEADER_MISMATCH = -32020;
export const MISSING_CLIENT_CAPABILITY = -32021;
export const UNSUPPORTED_PROTOCOL_VERSION = -32022;
const MODERN_ERRORS = new Set([HEADER_MISMATCH, MISSING_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION]);

/** A modern version: a date on or after 2026-07-28 (versions are YYYY-MM-DD strings). */
export function isModernVersion(v: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(v) && v >= MODERN_VERSION;
}

/** The first of `ours` that `theirs` also lists. */
export function pickVersion(ours: readonly string[], theirs: readonly string[]): string | undefined {
  return ours.find((v) => theirs.includes(v));
}

/**
 * A header value as the spec's "Value Encoding" asks: plain when it is visible ASCII (and spaces inside),
 * otherwise (non-ASCII, control characters, leading/trailing whitespace, or the sentinel's own shape)
 * `=?base64?…?=` of its UTF-8.
 */
export function headerValue(v: string): string {
  const plain = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(v) && !(v.startsWith("=?base64?") && v.endsWith("?="));
  return plain ? v : `=?base64?${Buffer.from(v, "utf8").toString("base64")}?=`;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** A tool argument mirrored into `Mcp-Param-{name}`: the chain of `properties` keys leading to it. */
export interface HeaderParam {
  name: string;
  path: string[];
}

/**
 * The `x-mcp-header` annotations of a tool's inputSchema, or undefined when one breaks the spec's
 * constraints (the tool must then be left out of tools/list). Only `properties` chains are walked;
 * an annotation anywhere else (items, oneOf, $ref, …) makes the tool invalid.
 */
export function headerParams(schema: unknown): HeaderParam[] | undefined {
  const found: HeaderParam[] = [];
  let ok = true;
  const walk = (node: unknown, path: string[], viaProperties: boolean, depth: number) => {
    if (!node || typeof node !== "object" || depth > 32) return;
    if (Array.isArray(node)) return node.forEach((n) => walk(n, path, false, depth + 1));
    const o = node as Record<string, unknown>;
    if ("x-mcp-header" in o) {
      const name = o["x-mcp-header"];
      const type = o.type;
      if (!viaProperties || path.length === 0 || typeof name !== "string" || !TOKEN.test(name) || !["string", "integer", "boolean"].includes(type as string)) ok = false;
      else found.push({ name, path });
    }
    for (const [k, v] of Object.entries(o)) {
      if (k === "properties" && v && typeof v === "object" && !Array.isArray(v)) {
        for (const [p, child] of Object.entries(v as Record<string, unknown>)) walk(child, [...path, p], viaProperties, depth + 1);
      } else if (k !== "x-mcp-header") walk(v, path, false, depth + 1);
    }
  };
  walk(schema, [], true, 0);
  const names = found.map((f) => f.name.toLowerCase());
  if (new Set(names).size !== names.length) ok = false;
  return ok ? found : undefined;
}

/** The `Mcp-Param-*` headers of a tools/call's arguments; absent or null values send none. */
export function paramHeaders(params: HeaderParam[], args: unknown): Record<string, string> {
  const h: Record<string, string> = {};
  for (const p of params) {
    let v: unknown = args;
    for (const k of p.path) v = v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined;
    if (typeof v === "string") h[`mcp-param-${p.name}`] = headerValue(v);
    else if (typeof v === "boolean") h[`mcp-param-${p.name}`] = String(v);
    else if (typeof v === "number" && Number.isInteger(v) && Math.abs(v) <= MAX_SAFE) h[`mcp-param-${p.name}`] = String(v);
  }
  return h;
}

/** The request-metadata headers of one modern request (streamable-http "Request Metadata"). */
export function modernHeaders(m: { method?: string; params?: unknown }, version: string): Record<string, string> {
  const h: Record<string, string> = { "mcp-protocol-version": version };
  if (typeof m.method !== "string") return h;
  h["mcp-method"] = m.method;
  const p = (m.params ?? {}) as Record<string, unknown>;
  const name = m.method === "tools/call" || m.method === "prompts/get" ? p.name : m.method === "resources/read" ? p.uri : undefined;
  if (typeof name === "string") h["mcp-name"] = headerValue(name);
  return h;
}

/** `params` with the modern per-request `_meta` fields added (the caller's own `_meta` keys kept). */
export function withModernMeta(params: unknown, o: { version: string; capabilities: unknown; clientInfo?: unknown; logLevel?: string }): Record<string, unknown> {
  const p = params && typeof params === "object" && !Array.isArray(params) ? { ...(params as Record<string, unknown>) } : {};
  const meta = p._meta && typeof p._meta === "object" ? { ...(p._meta as Record<string, unknown>) } : {};
  meta[META_PROTOCOL_VERSION] = o.version;
  meta[META_CLIENT_CAPABILITIES] = o.capabilities ?? {};
  if (o.clientInfo) meta[META_CLIENT_INFO] = o.clientInfo;
  if (o.logLevel) meta[META_LOG_LEVEL] = o.logLevel;
  p._meta = meta;
  return p;
}

export type Era = "modern" | "legacy" | "unknown";

/** What the era probe found out about a server. */
export interface EraProbe {
  era: Era;
  /** HTTP status of the answer that decided it. */
  status: number;
  /** The version to speak: a modern one both list, or the one `initialize` negotiated. */
  version?: string;
  /** What the server says it supports (server/discover, or -32022's `supported`). */
  supported?: string[];
  /** A modern server that also lists legacy versions. */
  dualEra?: boolean;
  serverName?: string;
  /** The discover result, when there was one and it was modern. */
  discover?: Record<string, unknown>;
  /** 401/403: the server wants (another) token before it says anything. */
  refused?: boolean;
  /** The deciding answer's WWW-Authenticate (control characters marked) and Date (unix seconds). */
  wwwAuthenticate?: string;
  date?: number;
  /** One line for a report: what answered what. */
  detail: string;
}

/** The era per origin, for this process (basic/versioning: "cache the result … per origin"). */
export const eraCache = new Map<string, EraProbe>();

const MAX_BODY = 1024 * 1024;
const CLIENT_INFO = { name: "mcp-auth", version: "0" };

async function post(relay: Relay, url: URL, body: unknown, headers: Record<string, string>) {
  const res = await relay(url, {
    method: "POST",
    headers: { accept: "application/json, text/event-stream", "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  // Read up to a cap, and only for what it says: a server's answer is hostile and may never end.
  return { status: res.status, headers: res.headers, body: await answerText(res, { url, cap: MAX_BODY, partial: true }) };
}

/** What the deciding answer's headers say that a report or a sign-in needs. */
function heard(h: RelayAnswer["headers"]): Pick<EraProbe, "wwwAuthenticate" | "date"> {
  const www = headerOf(h, "www-authenticate");
  const date = Date.parse(headerOf(h, "date") ?? "");
  return { ...(www ? { wwwAuthenticate: markControl(www).slice(0, 2000) } : {}), ...(Number.isFinite(date) ? { date: Math.floor(date / 1000) } : {}) };
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === "string").slice(0, 20).map((s) => markControl(s).slice(0, 40)) : []);

/** The server/discover request mcp-auth sends as a modern client. */
export function discoverRequest(id: string | number, version = MODERN_VERSION, capabilities: unknown = {}): { jsonrpc: "2.0"; id: string | number; method: string; params: Record<string, unknown> } {
  return { jsonrpc: "2.0", id, method: "server/discover", params: withModernMeta({}, { version, capabilities, clientInfo: CLIENT_INFO }) };
}

/**
 * The spec's era detection over HTTP: a modern `server/discover` first; a result listing a modern
 * version we speak, or a recognised modern error (-32020/-32021/-32022), means modern; anything else
 * (a plain-text or empty 400, -32601, 404, 405, a discover result listing only legacy versions, as
 * kubernetes-mcp-server 0.0.66 sends) falls back to `initialize`. Never keyed to one error code.
 * `initialize: false` stops before the fallback (the proxy lets the client's own handshake go first).
 * Decided answers are cached per origin; refusals (401/403) are not.
 */
/** A legacy `initialize`; a session it opened is ended again (405: the server keeps sessions its own way). */
async function initialize(relay: Relay, url: URL) {
  const init = { jsonrpc: "2.0", id: "mcp-auth-init", method: "initialize", params: { protocolVersion: LEGACY_VERSIONS[0], capabilities: {}, clientInfo: CLIENT_INFO } };
  const r = await post(relay, url, init, { "mcp-protocol-version": LEGACY_VERSIONS[0]! });
  const m = responseIn(r.body);
  const sid = headerOf(r.headers, "mcp-session-id");
  if (sid) {
    await relay(url, { method: "DELETE", headers: { "mcp-session-id": sid } })
      .then((res) => res.discard())
      .catch(() => {});
  }
  const result = m?.result && typeof m.result === "object" && r.status < 300 ? (m.result as Record<string, unknown>) : undefined;
  return { r, m, result };
}

export async function probeEra(relay: Relay, url: URL, o: { initialize?: boolean; fresh?: boolean; askLegacy?: boolean } = {}): Promise<EraProbe> {
  const cached = o.fresh ? undefined : eraCache.get(url.origin);
  if (cached && (cached.era === "modern" || o.initialize === false || cached.version)) return cached;
  const keep = (p: EraProbe) => (p.era !== "unknown" && eraCache.set(url.origin, p), p);
  let version = MODERN_VERSION;
  let supported: string[] | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await post(relay, url, discoverRequest("mcp-auth-discover", version), modernHeaders({ method: "server/discover" }, version));
    if (r.status === 401 || r.status === 403) return { era: "unknown", status: r.status, refused: true, ...heard(r.headers), detail: `server/discover answered ${r.status}` };
    const m = responseIn(r.body);
    const result = m?.result as Record<string, unknown> | undefined;
    if (result && typeof result === "object" && r.status < 300) {
      supported = strings(result.supportedVersions);
      const common = pickVersion(MODERN_VERSIONS, supported);
      if (common) {
        const info = (result._meta as Record<string, unknown> | undefined)?.[META_SERVER_INFO] as Record<string, unknown> | undefined;
        // A dual-era server built on the official SDK 2.x lists only 2026-07-28 in server/discover, so
        // `askLegacy` (doctor's report) asks directly whether older clients still get in.
        const dualEra = supported.some((v) => !isModernVersion(v)) || (o.askLegacy === true && (await initialize(relay, url)).result !== undefined);
        return keep({
          era: "modern",
          status: r.status,
          version: common,
          supported,
          dualEra,
          discover: result,
          ...(typeof info?.name === "string" ? { serverName: markControl(info.name).slice(0, 100) } : {}),
          ...heard(r.headers),
          detail: `server/discover answered ${r.status}, listing ${supported.join(", ") || "no versions"}`,
        });
      }
      break; // it answers discover but lists no modern version we speak: the version both list is a legacy one
    }
    const e = m?.error as Record<string, unknown> | undefined;
    if (e && Number.isInteger(e.code) && MODERN_ERRORS.has(e.code as number)) {
      // A recognised modern error settles it: modern, retry with a listed version, never fall back to
      // initialize (basic/versioning and streamable-http, "Backward Compatibility").
      supported = strings((e.data as Record<string, unknown> | undefined)?.supported);
      const common = e.code === UNSUPPORTED_PROTOCOL_VERSION ? pickVersion(MODERN_VERSIONS, supported) : version;
      if (common && common !== version && attempt === 0) {
        version = common;
        continue;
      }
      const listed = supported.length ? `, listing ${supported.join(", ")}` : "";
      return keep({
        era: "modern",
        status: r.status,
        ...(common ? { version: common } : {}),
        ...(supported.length ? { supported } : {}),
        ...heard(r.headers),
        detail: common ? `server/discover answered ${r.status} with the modern error ${e.code}${listed}` : `server/discover answered ${r.status} with the modern error ${e.code}${listed}: no version in common with mcp-auth's ${MODERN_VERSIONS.join(", ")}`,
      });
    }
    break;
  }
  if (o.initialize === false) return keep({ era: "legacy", status: 0, ...(supported?.length ? { supported } : {}), detail: "server/discover got no modern answer" });
  const { r, m, result } = await initialize(relay, url);
  if (r.status === 401 || r.status === 403) return { era: "unknown", status: r.status, refused: true, ...heard(r.headers), detail: `initialize answered ${r.status}` };
  if (result) {
    const v = typeof result.protocolVersion === "string" ? markControl(result.protocolVersion).slice(0, 40) : undefined;
    const info = result.serverInfo as Record<string, unknown> | undefined;
    return keep({
      era: "legacy",
      status: r.status,
      ...(v ? { version: v } : {}),
      supported: supported?.length ? supported : v ? [v] : [],
      ...(typeof info?.name === "string" ? { serverName: markControl(info.name).slice(0, 100) } : {}),
      ...heard(r.headers),
      detail: `server/discover got no modern answer; initialize answered ${r.status}${v ? ` with protocol ${v}` : ""}`,
    });
  }
  const err = m?.error as Record<string, unknown> | undefined;
  if (err && Number.isInteger(err.code) && MODERN_ERRORS.has(err.code as number)) {
    // A modern-only server names its versions in its answer to initialize (basic/versioning).
    const listed = strings((err.data as Record<string, unknown> | undefined)?.supported);
    const common = pickVersion(MODERN_VERSIONS, listed);
    return keep({ era: "modern", status: r.status, ...(common ? { version: common } : {}), ...(listed.length ? { supported: listed } : {}), ...heard(r.headers), detail: `server/discover got no modern answer; initialize answered ${r.status} with the modern error ${err.code}` });
  }
  if (m?.error && r.status < 500) return keep({ era: "legacy", status: r.status, ...heard(r.headers), detail: `server/discover got no modern answer; initialize answered ${r.status} with a JSON-RPC error` });
  return { era: "unknown", status: r.status, ...heard(r.headers), detail: `neither server/discover nor initialize got an MCP answer (HTTP ${r.status})` };
}

/**
 * Reachable as an MCP server: it named its era (a result or any JSON-RPC answer to server/discover or
 * initialize), or it refused us with 401/403 (a challenge). docs/mcp-2026-07-28.md, "What mcp-auth does".
 */
export function eraReachable(e: EraProbe): boolean {
  return e.era !== "unknown" || Boolean(e.refused);
}

/** One line for a report: the era, the versions listed, and what answered. */
export function describeEra(e: EraProbe): string {
  const name = e.serverName ? `${e.serverName}, ` : "";
  const listed = e.supported?.length ? `; it lists ${e.supported.join(", ")}` : "";
  if (e.era === "modern") return `${name}speaks ${e.version ?? "only versions mcp-auth does not"}${e.dualEra ? " and the initialize handshake" : ""}${listed} (${e.detail})`;
  if (e.era === "legacy") return `${name}speaks ${e.version ?? "a version before 2026-07-28"} (initialize handshake)${listed} (${e.detail})`;
  return e.detail;
}
