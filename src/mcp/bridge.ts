import { headerParams, LEGACY_VERSIONS, META_SERVER_INFO, MODERN_VERSIONS, type HeaderParam } from "./era.js";

/**
 * The message rewrites of `mcp-auth proxy` between a client and a server of different eras
 * (docs/mcp-2026-07-28.md, "What mcp-auth does"). Pure functions of messages; the proxy
 * (./proxy.ts) decides when each applies.
 */
type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {});

/** The methods whose complete results carry caching hints (server/utilities/caching). */
const CACHEABLE = new Set(["server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"]);

/** The legacy server→client request each `inputRequests` method is, and the client capability it needs. */
export const INPUT_CAPABILITY: Record<string, string> = { "elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots" };

/** A legacy client's `initialize`, answered from a modern server's `server/discover` result. */
export function initializeFromDiscover(requested: unknown, discover: Obj): Obj {
  const caps = { ...obj(discover.capabilities) };
  // resources/subscribe and list changes are served from a subscriptions/listen stream (./proxy.ts).
  // logging/setLevel is answered by the bridge, which then sets the level on each request.
  caps.logging ??= {};
  const info = obj(obj(discover._meta)[META_SERVER_INFO]);
  return {
    protocolVersion: typeof requested === "string" && LEGACY_VERSIONS.includes(requested) ? requested : LEGACY_VERSIONS[0],
    capabilities: JSON.parse(JSON.stringify(caps)) as Obj,
    serverInfo: typeof info.name === "string" ? { name: info.name, version: typeof info.version === "string" ? info.version : "0" } : { name: "mcp-server", version: "0" },
    ...(typeof discover.instructions === "string" ? { instructions: discover.instructions } : {}),
  };
}

/**
 * A modern client's `server/discover`, answered from a legacy server's `initialize` result. Nothing the
 * bridge makes up may be shared across tokens: private scope, immediately stale.
 */
export function discoverFromInitialize(init: Obj): Obj {
  const info = obj(init.serverInfo);
  return {
    resultType: "complete",
    supportedVersions: MODERN_VERSIONS,
    capabilities: obj(init.capabilities),
    _meta: { [META_SERVER_INFO]: typeof info.name === "string" ? { name: info.name, version: typeof info.version === "string" ? info.version : "0" } : { name: "mcp-server", version: "0" } },
    ...(typeof init.instructions === "string" ? { instructions: init.instructions } : {}),
    ttlMs: 0,
    cacheScope: "private",
  };
}

/** A legacy server's result as a modern client expects it: `resultType`, and caching hints where required. */
export function modernResult(method: string | undefined, result: unknown): Obj {
  const r = { ...obj(result) };
  r.resultType ??= "complete";
  if (method && CACHEABLE.has(method) && r.resultType === "complete") {
    r.ttlMs ??= 0;
    r.cacheScope ??= "private";
  }
  return r;
}

/** A modern server's complete result for a legacy client: without `resultType` (unknown to 2025-era schemas). */
export function legacyResult(result: unknown): Obj {
  const { resultType: _omit, ...rest } = obj(result);
  return rest;
}

/** A modern client's params for a legacy server: the `io.modelcontextprotocol/*` `_meta` keys removed. */
export function legacyParams(params: unknown): unknown {
  if (!params || typeof params !== "object" || Array.isArray(params)) return params;
  const p = { ...(params as Obj) };
  if (p._meta && typeof p._meta === "object") {
    const meta = Object.fromEntries(Object.entries(p._meta as Obj).filter(([k]) => !k.startsWith("io.modelcontextprotocol/")));
    if (Object.keys(meta).length) p._meta = meta;
    else delete p._meta;
  }
  return p;
}

/**
 * A tools/list result as an HTTP client must take it (streamable-http "Schema Extension"): tools whose
 * `x-mcp-header` annotations break the rules are left out; the valid ones are remembered in `params`.
 */
export function checkTools(result: unknown, params: Map<string, HeaderParam[]>, warn: (line: string) => void): unknown {
  const r = obj(result);
  if (!Array.isArray(r.tools)) return result;
  const kept = r.tools.filter((t) => {
    const tool = obj(t);
    const name = typeof tool.name === "string" ? tool.name : "";
    const found = headerParams(tool.inputSchema);
    if (!found) {
      warn(`left out the MCP server's tool "${name.slice(0, 100)}": an x-mcp-header annotation in its inputSchema breaks the 2026-07-28 rules`);
      return false;
    }
    if (found.length) params.set(name, found);
    else params.delete(name);
    return true;
  });
  return kept.length === r.tools.length ? result : { ...r, tools: kept };
}
