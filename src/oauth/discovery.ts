import { NetworkError } from "../errors.js";
import { checkMetadata, checkUrl, type ServerMetadata } from "./urls.js";
import { relayFromFetch, type Fetch } from "./http.js";
import { markControl } from "../io/sanitize.js";
import { probeEra, type EraProbe } from "../mcp/era.js";

/**
 * MCP discovery, data first (doctor reports it, login will act on it): probe the server without a
 * token, read its challenge, fetch RFC 9728 protected-resource metadata and the authorization
 * server's metadata in the spec's order. Facts: docs/mcp-authorization.md.
 * Every request goes through the hardened fetch (size caps, timeouts, no redirects with credentials).
 */
export interface DiscoveryEnv {
  fetch: Fetch;
  allowHttp: boolean;
}

/** Authorization server discovery also asks the IdP modules (Context.plugins) about quirks they declare. */
export interface AuthServerEnv extends DiscoveryEnv {
  plugins: { providers: readonly MetadataQuirks[] };
}

/** The part of a provider module (core/provider.ts) discovery asks about. */
export interface MetadataQuirks {
  title: string;
  quirks?: { metadataIssuer?(issuer: string, metadata: Record<string, unknown>): { issuer: string } | undefined };
}

/** Server text: no control characters in anything we keep or show. */
const clean = markControl;

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * The Bearer challenge of a `WWW-Authenticate` header (RFC 6750 §3, RFC 9110 §11.6.1): auth-params as
 * token=token or token="quoted-string". Other schemes in the same header are skipped.
 */
export function parseWwwAuthenticate(header: string | null | undefined): Challenge | undefined {
  if (!header) return undefined;
  const re = /\s*(?:([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)|([A-Za-z0-9!#$%&'*+.^_`|~-]+))\s*,?/gy;
  let found: Challenge | undefined;
  let current: Challenge | undefined;
  for (let m = re.exec(header); m && m[0] !== ""; m = re.exec(header)) {
    if (m[3]) {
      // A bare token is a new scheme (a token68 of the previous scheme is not used by Bearer).
      current = { scheme: m[3], params: {} };
      if (!found && m[3].toLowerCase() === "bearer") found = current;
      continue;
    }
    const name = m[1]!;
    let value = m[2]!;
    if (!current) continue;
    if (value.startsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, "$1");
    current.params[name.toLowerCase()] ??= clean(value);
  }
  return found;
}

export interface Probe {
  url: string;
  status: number;
  /** The server's clock (Date header), unix seconds, for skew checks. */
  date?: number;
  challenge?: Challenge;
  /** The raw header, control characters removed, for reports. */
  wwwAuthenticate?: string;
}

const INITIALIZE = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "mcp-auth", version: "0" } } });

/**
 * One MCP JSON-RPC POST (default: `initialize`), with a token or without; the outcome as data.
 * `sessionId` is the server's Mcp-Session-Id, for the requests that follow.
 */
export async function probeMcp(env: DiscoveryEnv, mcpUrl: string, token?: string, o: { body?: string; sessionId?: string; headers?: Record<string, string> } = {}): Promise<Probe & { body: string; sessionId?: string }> {
  checkUrl(mcpUrl, "the MCP server URL", env.allowHttp, "resource");
  const headers = new Headers({ Accept: "application/json, text/event-stream", "Content-Type": "application/json", "MCP-Protocol-Version": "2025-06-18" });
  for (const [k, v] of Object.entries(o.headers ?? {})) headers.set(k, v);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  if (o.sessionId) headers.set("Mcp-Session-Id", o.sessionId);
  const res = await env.fetch(mcpUrl, { method: "POST", headers, body: o.body ?? INITIALIZE });
  const sessionId = res.headers.get("mcp-session-id") ?? undefined;
  const www = res.headers.get("www-authenticate");
  const date = Date.parse(res.headers.get("date") ?? "");
  let body = "";
  try {
    body = await res.text();
  } catch {
    /* a stream cut short says nothing more */
  }
  return {
    url: mcpUrl,
    status: res.status,
    ...(Number.isFinite(date) ? { date: Math.floor(date / 1000) } : {}),
    ...(www ? { wwwAuthenticate: clean(www), challenge: parseWwwAuthenticate(www) } : {}),
    ...(sessionId ? { sessionId } : {}),
    body,
  };
}

/**
 * The MCP server's era and reachability, as the spec tells them apart (docs/mcp-2026-07-28.md,
 * src/mcp/era.ts): `server/discover` first, `initialize` when no modern answer came. A 401/403 challenge
 * or any JSON-RPC answer is an MCP server; `era.era === "unknown"` without `refused` is not one.
 * `authorization` is a whole header value (Bearer, or OpenProject's Basic API key); never cached per
 * origin across credentials, so every call probes afresh.
 */
export async function probeServer(env: DiscoveryEnv, mcpUrl: string, authorization?: string, o: { askLegacy?: boolean } = {}): Promise<Probe & { era: EraProbe }> {
  const url = checkUrl(mcpUrl, "the MCP server URL", env.allowHttp, "resource");
  const fetch: Fetch = authorization
    ? (u, init) => {
        const h = new Headers(init?.headers);
        h.set("authorization", authorization);
        return env.fetch(u, { ...init, headers: h });
      }
    : env.fetch;
  // The era probe speaks the relay's terms; this one goes through the address-checked fetch.
  const era = await probeEra(relayFromFetch(fetch), url, { fresh: true, askLegacy: o.askLegacy });
  return {
    url: mcpUrl,
    status: era.status,
    ...(era.date !== undefined ? { date: era.date } : {}),
    ...(era.wwwAuthenticate ? { wwwAuthenticate: era.wwwAuthenticate, challenge: parseWwwAuthenticate(era.wwwAuthenticate) } : {}),
    era,
  };
}

async function getJson(env: DiscoveryEnv, url: string): Promise<{ status: number; json?: Record<string, unknown> }> {
  const res = await env.fetch(url, { headers: { Accept: "application/json", "MCP-Protocol-Version": "2025-06-18" } });
  if (!res.ok) {
    await res.arrayBuffer().catch(() => {});
    return { status: res.status };
  }
  try {
    const json = (await res.json()) as unknown;
    if (json && typeof json === "object" && !Array.isArray(json)) return { status: res.status, json: json as Record<string, unknown> };
  } catch {
    /* not JSON */
  }
  throw new NetworkError(`${clean(url)} answered ${res.status} but not with a JSON object`);
}

/** RFC 9728 §3.1: the well-known suffix goes between the host and the path. */
function insert(base: URL, wellKnown: string): string {
  const path = base.pathname.replace(/\/$/, "");
  return `${base.origin}/.well-known/${wellKnown}${path}`;
}

export interface ResourceMetadata {
  /** Where it was found. */
  url: string;
  how: "header" | "path" | "root";
  resource?: string;
  authorization_servers: string[];
  scopes_supported?: string[];
  raw: Record<string, unknown>;
  /** Every URL tried, with its status, in order. */
  tried: Array<{ url: string; status: number }>;
}

/**
 * Protected-resource metadata: the challenge's `resource_metadata` URL, else
 * `/.well-known/oauth-protected-resource/<path>`, else the root one (spec 2025-11-25, as the official SDK does it).
 * Undefined when none exists.
 */
export async function fetchResourceMetadata(env: DiscoveryEnv, mcpUrl: string, headerUrl?: string): Promise<ResourceMetadata | undefined> {
  const base = checkUrl(mcpUrl, "the MCP server URL", env.allowHttp, "resource");
  const candidates: Array<[string, ResourceMetadata["how"]]> = [];
  if (headerUrl) candidates.push([checkUrl(headerUrl, "the resource_metadata URL in the server's challenge", env.allowHttp, "endpoint").href, "header"]);
  else {
    if (base.pathname !== "/" && base.pathname !== "") candidates.push([insert(base, "oauth-protected-resource"), "path"]);
    candidates.push([`${base.origin}/.well-known/oauth-protected-resource`, "root"]);
  }
  const tried: ResourceMetadata["tried"] = [];
  for (const [url, how] of candidates) {
    const r = await getJson(env, url);
    tried.push({ url, status: r.status });
    if (!r.json) continue;
    const as = r.json.authorization_servers;
    const scopes = r.json.scopes_supported;
    return {
      url,
      how,
      ...(typeof r.json.resource === "string" ? { resource: clean(r.json.resource) } : {}),
      authorization_servers: Array.isArray(as) ? as.filter((x): x is string => typeof x === "string").map(clean) : [],
      ...(Array.isArray(scopes) ? { scopes_supported: scopes.filter((x): x is string => typeof x === "string").map(clean) } : {}),
      raw: r.json,
      tried,
    };
  }
  return undefined;
}

/**
 * Where an issuer's metadata may be, in the spec's order: with a path, RFC 8414 path insertion, OIDC
 * path insertion, OIDC appending; without one, RFC 8414 then OIDC.
 */
export function authServerMetadataUrls(issuer: string): string[] {
  const u = new URL(issuer);
  const path = u.pathname.replace(/\/$/, "");
  if (!path) return [`${u.origin}/.well-known/oauth-authorization-server`, `${u.origin}/.well-known/openid-configuration`];
  return [`${u.origin}/.well-known/oauth-authorization-server${path}`, `${u.origin}/.well-known/openid-configuration${path}`, `${u.origin}${path}/.well-known/openid-configuration`];
}

export interface AuthServerMetadata {
  issuer: string;
  url: string;
  metadata: ServerMetadata;
  tried: Array<{ url: string; status: number }>;
  /**
   * Set when the listed server served another issuer's metadata (kubernetes-mcp-server proxies its
   * IdP's; docs/mcp-authorization.md) and that issuer's own metadata was fetched and matched itself instead.
   */
  proxiedBy?: string;
  /** Set (to the IdP's title) when the metadata names another issuer in the form that IdP documents. */
  quirk?: string;
}

/**
 * A provider module that declares this mismatch as its IdP's documented behaviour (its
 * `quirks.metadataIssuer`, facts in docs/idp/): its metadata, taken as the provider rewrote it.
 */
function declaredQuirk(env: AuthServerEnv, issuer: string, json: Record<string, unknown>): { metadata: ServerMetadata; by: string } | undefined {
  for (const p of env.plugins.providers) {
    const metadata = p.quirks?.metadataIssuer?.(issuer, json);
    if (metadata) return { metadata: metadata as ServerMetadata, by: p.title };
  }
  return undefined;
}

/** The first metadata document found for `issuer`, without the identity check (the caller makes it). */
async function firstDocument(env: DiscoveryEnv, issuer: string): Promise<{ url: string; json: Record<string, unknown>; tried: AuthServerMetadata["tried"] } | { tried: AuthServerMetadata["tried"] }> {
  const tried: AuthServerMetadata["tried"] = [];
  for (const url of authServerMetadataUrls(issuer)) {
    const r = await getJson(env, url);
    tried.push({ url, status: r.status });
    if (r.json) return { url, json: r.json, tried };
    if (r.status >= 500) break; // the official SDK stops at a server error too
  }
  return { tried };
}

/**
 * The authorization server's metadata, used only if its `issuer` is identical to the one it was
 * fetched for (RFC 8414 §3.3). One exception, made safe: a listed server that serves another issuer's
 * metadata (kubernetes-mcp-server) leads to that issuer's *own* metadata, which must match itself;
 * a hint to a plain-http, non-loopback issuer is refused like any other URL. And one documented
 * departure, declared by the IdP's provider module (`quirks.metadataIssuer`), is taken as declared.
 * `followNamed: false` refuses any other mismatch without fetching what the document names.
 */
export async function fetchAuthServerMetadata(env: AuthServerEnv, issuer: string, o: { followNamed?: boolean } = {}): Promise<AuthServerMetadata> {
  checkUrl(issuer, "the authorization server", env.allowHttp, "issuer");
  const first = await firstDocument(env, issuer);
  if (!("json" in first)) {
    throw new NetworkError(`no authorization server metadata for ${clean(issuer)} (tried ${first.tried.map((t) => `${t.url} → ${t.status}`).join(", ")})`, { hint: "check the issuer URL, or the server's authorization_servers" });
  }
  const named = typeof first.json.issuer === "string" ? first.json.issuer : undefined;
  if (named === issuer) {
    checkMetadata(first.json as ServerMetadata, env.allowHttp);
    return { issuer, url: first.url, metadata: first.json as ServerMetadata, tried: first.tried };
  }
  if (!named) throw new NetworkError(`the metadata at ${first.url} names no issuer; refusing it`);
  const declared = declaredQuirk(env, issuer, first.json);
  if (declared) {
    checkMetadata(declared.metadata, env.allowHttp);
    return { issuer, url: first.url, metadata: declared.metadata, tried: first.tried, quirk: declared.by };
  }
  if (o.followNamed === false) throw new NetworkError(`issuer mismatch: metadata fetched for ${clean(issuer)} names ${clean(named)}; refusing it`);
  let own: URL;
  try {
    own = checkUrl(named, "the issuer named by the metadata", env.allowHttp, "issuer");
  } catch (e) {
    throw new NetworkError(`issuer mismatch: metadata fetched for ${clean(issuer)} names ${clean(named)}, which is not a usable issuer (${(e as Error).message}); refusing it`);
  }
  void own;
  const refuse = (why: string) =>
    new NetworkError(`issuer mismatch: metadata fetched for ${clean(issuer)} names ${clean(named)}, and ${why}; refusing both`, { hint: "the server's metadata must name the issuer it is served for (RFC 8414 §3.3)" });
  let second: Awaited<ReturnType<typeof firstDocument>>;
  try {
    second = await firstDocument(env, named);
  } catch (e) {
    throw refuse(`${clean(named)}'s own metadata could not be read (${(e as Error).message})`);
  }
  const tried = [...first.tried, ...second.tried];
  if (!("json" in second) || second.json.issuer !== named) throw refuse(`${clean(named)}'s own metadata does not confirm it`);
  checkMetadata(second.json as ServerMetadata, env.allowHttp);
  return { issuer: named, url: second.url, metadata: second.json as ServerMetadata, tried, proxiedBy: issuer };
}
