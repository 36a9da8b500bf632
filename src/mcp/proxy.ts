import { randomUUID } from "node:crypto";
import { covers } from "../core/covers.js";
import { AuthError, McpAuthError } from "../errors.js";
import { parseWwwAuthenticate } from "../oauth/discovery.js";
import { redact, type Fetch } from "../oauth/http.js";
import { checkTools, discoverFromInitialize, initializeFromDiscover, INPUT_CAPABILITY, legacyParams, legacyResult, modernResult } from "./bridge.js";
import { HEADER_MISMATCH, LEGACY_VERSIONS, META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL, META_PROTOCOL_VERSION, META_SUBSCRIPTION_ID, MODERN_VERSION, MODERN_VERSIONS, modernHeaders, paramHeaders, probeEra, UNSUPPORTED_PROTOCOL_VERSION, withModernMeta, type HeaderParam } from "./era.js";
import { HttpTransportError, isRequest, SseTransport, StdioTransport, StreamError, StreamableHttpTransport, type JSONRPCMessage, type Transport } from "./transport.js";

/**
 * The stdio ↔ MCP-over-HTTP bridge behind `mcp-auth proxy`: an MCP client that only speaks stdio
 * (Claude Desktop, …) launches us; every JSON-RPC line it writes is sent to the remote server with a
 * fresh bearer token, and everything the server sends back (responses, notifications, requests, on
 * POST or GET event streams) is written to stdout, one JSON-RPC message per line.
 *
 * Its transports (./transport.ts) follow the MCP SDK's client transports without loading the SDK's
 * zod schemas (the proxy's memory budget): Streamable HTTP first, then the older HTTP+SSE transport
 * when the server answers the first POST with 400/404/405 (the fallback the SDK's documentation
 * recommends for clients). Nothing here touches the process: the streams, the token source and the
 * log come in as parameters.
 */
export interface BearerToken {
  access_token: string;
  /** Seconds since the epoch. */
  expires_at: number;
}

export interface ProxyOptions {
  url: URL;
  /** From the MCP client: newline-delimited JSON-RPC. */
  input: NodeJS.ReadableStream;
  /** To the MCP client: JSON-RPC only. */
  output: NodeJS.WritableStream;
  /** A token from the cache or the IdP; `forceRefresh` when the server refused the last one. */
  token: (o: { forceRefresh: boolean }) => Promise<BearerToken>;
  fetch: Fetch;
  now: () => number; // ms
  /** One line to the user (stderr); the caller strips control characters and known secrets. */
  error: (line: string) => void;
  /** Traffic trace (stderr, --debug). Messages are redacted before they get here. */
  debug?: (line: string) => void;
  /** Who the token belongs to, for messages: `profile "dev"`. */
  owner: string;
  /** What to do when the token is refused: `run: mcp-auth login dev`. */
  loginHint: string;
  transport?: "auto" | "streamable-http" | "sse";
  /**
   * The server's protocol era (docs/mcp-2026-07-28.md): `auto` probes it with server/discover; the
   * client's era is read from its first message. Across eras the proxy translates.
   */
  protocol?: "auto" | "legacy" | "2026-07-28";
  /** How long to wait for answers still owed after stdin closes (ms). */
  drainMs?: number;
  /**
   * Step-up (MCP spec 2025-11-25): the server answered 403 insufficient_scope naming `scopes`; get a
   * token that also has them. Absent = report the refusal.
   */
  stepUp?: (scopes: string[]) => Promise<BearerToken>;
  /**
   * The request URLs a 403 may step up for: the profile's own server (src/core/covers.ts). Default:
   * `url` and what lies under it. A legacy HTTP+SSE server may name a POST endpoint elsewhere on its
   * origin; a refusal there is passed on and never widens the profile.
   */
  covers?: (url: URL) => boolean;
}

/** Step-ups per proxy session: the spec's "no more than a few times", so a server that is never satisfied cannot loop us. */
export const MAX_STEP_UPS = 2;

/** A challenge may ask for this many scopes at most, each an RFC 6749 §3.3 scope-token of this length at most. */
const MAX_SCOPES = 32;
const MAX_SCOPE_LENGTH = 256;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/**
 * JSON-RPC error code of failures the proxy itself reports: outside the range JSON-RPC reserves
 * (-32768…-32000), as the 2026-07-28 spec asks of codes it does not define (docs/mcp-2026-07-28.md).
 */
export const PROXY_ERROR = -31000;

/** The requests a 2026-07-28 server may answer with input_required (basic/patterns/mrtr). */
const INPUT_METHODS = new Set(["tools/call", "resources/read", "prompts/get"]);

/** Change notifications a subscriptions/listen filter selects: method → [filter key, the server capability behind it]. */
const LISTEN_FILTER: Record<string, [string, string]> = {
  "notifications/tools/list_changed": ["toolsListChanged", "tools"],
  "notifications/prompts/list_changed": ["promptsListChanged", "prompts"],
  "notifications/resources/list_changed": ["resourcesListChanged", "resources"],
  "notifications/resources/updated": ["resourceSubscriptions", "subscribe"],
};

/** Round trips of one input_required request the proxy carries out for a legacy client at most. */
const MAX_INPUT_ROUNDS = 8;

/** Refresh a token this long before it expires: a minute, or half its life if it is shorter. */
const MAX_SKEW_MS = 60_000;

/** The server refused a token we had just renewed. */
export class TokenRefusedError extends AuthError {}

type Id = string | number;

/** Runs until the input closes; resolves once the session is closed upstream. */
export async function runProxy(o: ProxyOptions): Promise<void> {
  const trace = o.debug ? (dir: string, m: unknown) => o.debug!(`${dir} ${short(redact(JSON.stringify(m)))}`) : undefined;
  const bearer = bearerCache(o);
  const authFetch = authorizedFetch(o, bearer);

  const down = new StdioTransport(o.input, o.output);
  /** Requests sent upstream and not answered yet: id → method. */
  const owed = new Map<Id, string>();
  let refusedShown = false;
  let closing = false;

  // Eras (docs/mcp-2026-07-28.md). `serverEra` is settled before the first message goes up.
  // The HTTP+SSE transport predates 2026-07-28: a server reached through it is legacy, with nothing to probe.
  let serverEra: "modern" | "legacy" | undefined = o.protocol === "2026-07-28" ? "modern" : o.protocol === "legacy" || o.transport === "sse" ? "legacy" : undefined;
  let clientEra: "modern" | "legacy" | undefined;
  let modernVersion = MODERN_VERSION;
  let discovered: Record<string, unknown> | undefined;
  /** What a legacy client declared in initialize; sent in `_meta` of each modern request. */
  let clientCaps: unknown = {};
  let clientInfo: unknown;
  let logLevel: string | undefined;
  /** Tools' x-mcp-header parameters, from the last tools/list seen. */
  const toolParams = new Map<string, HeaderParam[]>();
  /** Requests the proxy sends on its own (upstream or to the client): id → resolve. */
  const internal = new Map<Id, (m: JSONRPCMessage) => void>();
  /** Retries sent with a new id upstream: that id → the client's id. */
  const alias = new Map<Id, Id>();
  /** Client requests kept for a retry (input_required, -32020): id → request. */
  const originals = new Map<Id, JSONRPCMessage & { id: Id }>();
  let seq = 0;
  const nextId = (what: string): string => `mcp-auth-${what}-${++seq}`;

  const reply = (id: Id, result: unknown) => toClient({ jsonrpc: "2.0", id, result });
  const replyError = (id: Id, code: number, message: string, data?: unknown) => toClient({ jsonrpc: "2.0", id, error: { code, message, ...(data === undefined ? {} : { data }) } });

  const toClient = (m: JSONRPCMessage, related?: JSONRPCMessage) => {
    if (("result" in m || "error" in m) && m.id !== undefined && m.id !== null) {
      const mine = internal.get(m.id as Id);
      if (mine) {
        internal.delete(m.id as Id);
        return mine(m);
      }
      // A legacy server's answer to a request it asked input for: it answers the client's latest retry.
      const h = held.get(m.id as Id);
      if (h) {
        if (h.waiting === undefined) return void (h.result = m);
        held.delete(m.id as Id);
        heldStates.delete(h.state);
        m = { ...m, id: h.waiting };
      }
      const clientId = alias.get(m.id as Id);
      if (clientId !== undefined) {
        alias.delete(m.id as Id);
        m = { ...m, id: clientId };
      }
      const id = m.id as Id;
      // The client cancelled it: an answer that crossed the cancellation is not passed on.
      if (cancelled.delete(id)) return;
      const method = owed.get(id);
      // The transport adds MCP-Protocol-Version to later requests, as the SDK's own Client does.
      if (method === "initialize" && "result" in m && m.result) {
        const v = (m.result as { protocolVersion?: unknown }).protocolVersion;
        if (typeof v === "string") up.setProtocolVersion?.(v);
      }
      if (serverEra === "modern") {
        const original = originals.get(id);
        if ("result" in m && (m.result as { resultType?: unknown })?.resultType === "input_required" && clientEra === "legacy" && original) return void inputRequired(original, m.result as Record<string, unknown>);
        // One retry per request: a second -32020 is the server's answer for the client.
        if ("error" in m && (m.error as { code?: unknown })?.code === HEADER_MISMATCH && original?.method === "tools/call" && !retried.has(id)) return void retryAfterToolsList(original);
        if ("result" in m && method === "tools/list") m = { ...m, result: checkTools(m.result, toolParams, o.error) };
        if ("result" in m && clientEra === "legacy") m = { ...m, result: legacyResult(m.result) };
      } else if (clientEra === "modern" && "result" in m) m = { ...m, result: modernResult(method, m.result) };
      owed.delete(id);
      originals.delete(id);
      retried.delete(id);
    } else if (serverEra === "legacy" && clientEra === "modern" && isRequest(m)) {
      // A legacy server's own request (elicitation, sampling, roots, ping): a modern client takes them
      // only as the input_required result of its own tools/call, resources/read or prompts/get.
      trace?.("upstream >", m);
      const h = related?.id === undefined ? undefined : held.get(related.id);
      const capability = INPUT_CAPABILITY[m.method];
      if (h && capability && h.caps[capability]) {
        h.queued.push(m);
        return askInput(h);
      }
      const why = !capability
        ? `mcp-auth proxy does not carry ${m.method} to it`
        : h
          ? `the client did not declare the ${capability} capability`
          : `2026-07-28 carries ${m.method} only inside the answer to a tools/call, resources/read or prompts/get, and this request came outside one (docs/mcp-2026-07-28.md)`;
      const answer: JSONRPCMessage =
        m.method === "ping" ? { jsonrpc: "2.0", id: m.id, result: {} } : { jsonrpc: "2.0", id: m.id, error: { code: -32601, message: `the MCP client speaks ${MODERN_VERSION}; ${why}` } };
      void sendUp(answer).catch((e) => report(e));
      return;
    } else if (serverEra === "modern" && clientEra !== "modern" && m.method === "notifications/subscriptions/acknowledged") {
      return; // the proxy's own subscriptions/listen: unknown to a legacy client
    } else if (serverEra === "legacy" && clientEra === "modern" && m.method && LISTEN_FILTER[m.method]) {
      // A legacy server's change notification: only on the subscriptions that asked for it.
      return notifySubscribers(m);
    }
    trace?.("stdio <", m);
    void down.send(m).catch(() => {});
  };

  const report = (e: unknown): string => {
    const err = e instanceof McpAuthError ? e : new McpAuthError((e as Error)?.message ?? String(e));
    // A server's error text may be a whole HTML page, or echo the token: keep it short and redacted.
    const line = `${short(redact(err.message), 300)}${err.hint ? ` (${err.hint})` : ""}`.replace(/\s*\n\s*/g, " ");
    // One line per episode: a client retrying in a loop must not flood the log.
    if (!(e instanceof AuthError) || !refusedShown) o.error(line);
    if (e instanceof AuthError) refusedShown = true;
    return line;
  };

  const fail = (m: JSONRPCMessage, e: unknown) => {
    if (isRequest(m) && cancelled.delete(alias.get(m.id) ?? m.id)) return;
    const line = report(e);
    if (!isRequest(m)) return;
    let id = alias.get(m.id) ?? m.id;
    const h = held.get(m.id);
    if (h) {
      held.delete(m.id);
      heldStates.delete(h.state);
      if (h.waiting === undefined) return; // the client is gathering input; its retry learns it is gone
      id = h.waiting;
    }
    alias.delete(m.id);
    internal.get(m.id)?.({ jsonrpc: "2.0", id: m.id, error: { code: PROXY_ERROR, message: `mcp-auth: ${line}` } });
    if (internal.delete(m.id)) return;
    owed.delete(id);
    originals.delete(id);
    const status = e instanceof HttpTransportError ? e.code : e instanceof TokenRefusedError ? 401 : undefined;
    toClient({ jsonrpc: "2.0", id, error: { code: PROXY_ERROR, message: `mcp-auth: ${line}`, data: status ? { status } : undefined } });
  };

  const wire = (t: Transport) => {
    t.onmessage = (m, related) => {
      refusedShown = false;
      toClient(m, related);
    };
    // Failed sends are answered through `fail`; this only sees the transport's own stream trouble.
    t.onerror = (e) => {
      if (closing) return;
      if (e instanceof AuthError || e instanceof StreamError) report(e);
      else o.debug?.(`upstream: ${e.message}`);
    };
    // A request whose answer cannot come any more (its event stream broke a cap or ended first).
    t.onrequesterror = (m, e) => fail(m, e);
  };

  /** The 2026-07-28 headers of one message: request metadata, and Mcp-Param-* from the tool's schema. */
  const modernHeadersOf = (m: JSONRPCMessage): Record<string, string> => {
    const meta = (m.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
    const v = typeof meta?.[META_PROTOCOL_VERSION] === "string" ? (meta[META_PROTOCOL_VERSION] as string) : modernVersion;
    const h = modernHeaders(m, v);
    if (m.method === "tools/call") {
      const p = (m.params ?? {}) as { name?: unknown; arguments?: unknown };
      const params = typeof p.name === "string" ? toolParams.get(p.name) : undefined;
      if (params) Object.assign(h, paramHeaders(params, p.arguments));
    }
    return h;
  };
  const streamable = (): Transport => (serverEra === "modern" ? new StreamableHttpTransport(o.url, authFetch, modernHeadersOf) : new StreamableHttpTransport(o.url, authFetch));
  const legacy = async (): Promise<Transport> => new SseTransport(o.url, authFetch);
  let up!: Transport;
  let mayFallBack = false;
  /** Settles the server's era (probing it when `auto`) and opens the upstream transport, once. */
  let opened: Promise<void> | undefined;
  const open = () =>
    (opened ??= (async () => {
      if (!serverEra) {
        // The client's own initialize settles a legacy server, so the probe stops before its fallback.
        const p = await probeEra(authFetch, o.url, { initialize: false, fresh: true });
        serverEra = p.era === "modern" ? "modern" : "legacy";
        if (p.era === "modern") {
          // A modern server that lists no version we speak: no fallback to initialize (basic/versioning).
          if (!p.version) throw new McpAuthError(`the MCP server speaks ${p.supported?.join(", ") || "no version it names"}, none of which mcp-auth speaks (${MODERN_VERSIONS.join(", ")})`, { hint: "upgrade mcp-auth" });
          modernVersion = p.version;
          discovered = p.discover;
        }
        o.debug?.(`the MCP server speaks ${serverEra === "modern" ? modernVersion : "a version before 2026-07-28"} (${p.detail})`);
      }
      up = o.transport === "sse" && serverEra === "legacy" ? await legacy() : streamable();
      wire(up);
      await up.start();
      mayFallBack = serverEra === "legacy" && (o.transport ?? "auto") === "auto";
    })());

  const sendUp = async (m: JSONRPCMessage): Promise<void> => {
    try {
      await up.send(m);
    } catch (e) {
      // An old HTTP+SSE server does not take POSTs at its SSE URL: reconnect that way, once.
      if (!(mayFallBack && e instanceof HttpTransportError && [400, 404, 405].includes(e.code ?? 0))) throw e;
      o.debug?.(`upstream answered ${e.code} to a Streamable HTTP POST; trying the HTTP+SSE transport`);
      mayFallBack = false;
      await up.close().catch(() => {});
      up = await legacy();
      wire(up);
      await up.start();
      await up.send(m);
    } finally {
      mayFallBack = false;
    }
  };

  /** A request of the proxy's own, upstream; its answer is not the client's. */
  const call = (method: string, params: unknown): Promise<JSONRPCMessage> => {
    const id = nextId("call");
    const answer = new Promise<JSONRPCMessage>((resolve) => internal.set(id, resolve));
    const m: JSONRPCMessage = { jsonrpc: "2.0", id, method, params };
    trace?.("proxy >", m);
    return sendUp(m).then(
      () => answer,
      (e) => {
        internal.delete(id);
        throw e;
      },
    );
  };
  /** A request of the proxy's own to the client (a legacy client's elicitation, sampling, roots). */
  const ask = (method: string, params: unknown): Promise<JSONRPCMessage> => {
    const id = nextId("input");
    const answer = new Promise<JSONRPCMessage>((resolve) => internal.set(id, resolve));
    const m: JSONRPCMessage = { jsonrpc: "2.0", id, method, params };
    trace?.("stdio <", m);
    void down.send(m).catch(() => {});
    return answer;
  };

  const modernMeta = (params: unknown) => withModernMeta(params, { version: modernVersion, capabilities: clientCaps, clientInfo, logLevel });

  /** Sends a client's request again under a new id (a retry must not reuse one); its answer goes to the client's id. */
  const resend = (original: JSONRPCMessage & { id: Id }, params: unknown) => {
    const id = nextId("retry");
    alias.set(id, original.id);
    const m: JSONRPCMessage = { jsonrpc: "2.0", id, method: original.method, params };
    return sendUp(m).catch((e) => fail(m, e));
  };

  /**
   * A modern server's input_required result, for a legacy client: each input request becomes the
   * legacy server→client request of the same method (when the client declared that capability), and
   * the original request is retried with the answers (basic/patterns/mrtr).
   */
  const rounds = new Map<Id, number>();
  const inputRequired = async (original: JSONRPCMessage & { id: Id }, result: Record<string, unknown>) => {
    const id = original.id;
    const n = (rounds.get(id) ?? 0) + 1;
    rounds.set(id, n);
    const end = (code: number, message: string) => {
      rounds.delete(id);
      owed.delete(id);
      originals.delete(id);
      replyError(id, code, message);
    };
    if (n > MAX_INPUT_ROUNDS) return end(PROXY_ERROR, `mcp-auth: the MCP server still asks for input after ${MAX_INPUT_ROUNDS} rounds`);
    const requests = Object.entries((result.inputRequests ?? {}) as Record<string, { method?: unknown; params?: unknown }>).slice(0, 32);
    const caps = (clientCaps ?? {}) as Record<string, unknown>;
    const missing = requests.map(([, r]) => String(r?.method)).filter((mth) => !INPUT_CAPABILITY[mth] || !caps[INPUT_CAPABILITY[mth]!]);
    if (missing.length) return end(PROXY_ERROR, `mcp-auth: the MCP server needs ${[...new Set(missing)].join(", ")} from the client to go on, which this MCP client did not declare`);
    const responses: Record<string, unknown> = {};
    for (const [key, r] of requests) {
      const a = await ask(r.method as string, r.params ?? {});
      if ("error" in a) return end(PROXY_ERROR, `mcp-auth: the MCP client refused the server's ${String(r.method)}: ${short(JSON.stringify(a.error), 300)}`);
      responses[key] = a.result;
    }
    const params: Record<string, unknown> = { ...((original.params ?? {}) as Record<string, unknown>), inputResponses: responses };
    if (typeof result.requestState === "string") params.requestState = result.requestState;
    else delete params.requestState;
    await resend(original, modernMeta(params));
  };

  /**
   * A modern client's tools/call, resources/read or prompts/get at a legacy server (docs/mcp-2026-07-28.md):
   * the server's own requests made while serving it (on its POST stream) are held and given to the
   * client as that request's input_required result; the client's retry carries the answers, which go
   * up as the server's responses, and the retry waits for the original request's result in its place.
   */
  interface Held {
    /** The client request that currently waits for the upstream result: the original, then each retry. */
    waiting?: Id;
    method: string;
    /** The capabilities the client declared in that request's `_meta`. */
    caps: Record<string, unknown>;
    /** The server's requests not yet put to the client. */
    queued: Array<JSONRPCMessage & { id: Id; method: string }>;
    /** inputRequests key → the server's request id, for the answers the next retry brings. */
    asked: Map<string, Id>;
    /** The upstream result, when it came while the client was still gathering input. */
    result?: JSONRPCMessage;
    /** The opaque requestState the client echoes: it names this entry. */
    state: string;
  }
  /** Upstream request id (the client's original id) → its held server requests. */
  const held = new Map<Id, Held>();
  const heldStates = new Map<string, Id>();
  const askInput = (h: Held) => {
    if (h.waiting === undefined || !h.queued.length) return;
    const inputRequests: Record<string, unknown> = {};
    for (const r of h.queued.splice(0)) {
      const key = `input-${++seq}`;
      h.asked.set(key, r.id);
      inputRequests[key] = { method: r.method, ...(r.params === undefined ? {} : { params: r.params }) };
    }
    const id = h.waiting;
    h.waiting = undefined;
    owed.delete(id);
    // Straight down: through toClient it would be taken for the held request's own answer.
    const m: JSONRPCMessage = { jsonrpc: "2.0", id, result: { resultType: "input_required", inputRequests, requestState: h.state } };
    trace?.("stdio <", m);
    void down.send(m).catch(() => {});
  };
  /** The client's retry of a request held above: its inputResponses answer the server's requests. */
  const retryWithInput = async (m: JSONRPCMessage & { id: Id; method: string }, state: string) => {
    const upId = heldStates.get(state);
    const h = upId === undefined ? undefined : held.get(upId);
    if (!h || h.waiting !== undefined || h.method !== m.method) {
      owed.delete(m.id);
      return replyError(m.id, -32602, "Invalid params: requestState is not one mcp-auth proxy issued for this request, or it was already used");
    }
    const responses = ((m.params as { inputResponses?: unknown }).inputResponses ?? {}) as Record<string, unknown>;
    h.waiting = m.id;
    const answers = [...h.asked].map(([key, sid]): JSONRPCMessage => {
      const r = responses[key];
      return r && typeof r === "object" && !Array.isArray(r) ? { jsonrpc: "2.0", id: sid, result: r } : { jsonrpc: "2.0", id: sid, error: { code: PROXY_ERROR, message: "mcp-auth: the MCP client retried its request without an answer to this one" } };
    });
    h.asked.clear();
    for (const a of answers) await sendUp(a);
    if (h.result) return toClient(h.result);
    askInput(h);
  };

  /** -32020 on a tools/call: the tool's x-mcp-header parameters changed; read tools/list again, retry once. */
  const retried = new Set<Id>();
  const retryAfterToolsList = async (original: JSONRPCMessage & { id: Id }) => {
    retried.add(original.id);
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const base = cursor ? { cursor } : {};
      const r = await call("tools/list", clientEra === "legacy" ? modernMeta(base) : { ...base, _meta: (original.params as { _meta?: unknown } | undefined)?._meta });
      if (!("result" in r)) break;
      checkTools(r.result, toolParams, () => {});
      cursor = (r.result as { nextCursor?: unknown }).nextCursor as string | undefined;
      if (typeof cursor !== "string") break;
    }
    await resend(original, original.params);
  };

  /** A legacy server's handshake, done once for a modern client. */
  let legacyInit: Promise<Record<string, unknown>> | undefined;
  let upstreamLevel: string | undefined;
  const handshake = (capabilities: unknown, info: unknown) =>
    (legacyInit ??= (async () => {
      const r = await call("initialize", { protocolVersion: LEGACY_VERSIONS[0], capabilities: capabilities ?? {}, clientInfo: info ?? { name: "mcp-auth-proxy", version: "0" } });
      if (!("result" in r)) throw new McpAuthError(`the MCP server refused the initialize handshake: ${short(JSON.stringify(r.error), 300)}`);
      const result = r.result as Record<string, unknown>;
      if (typeof result.protocolVersion === "string") up.setProtocolVersion?.(result.protocolVersion);
      await sendUp({ jsonrpc: "2.0", method: "notifications/initialized" });
      return result;
    })());

  /**
   * A client's notifications/cancelled toward a 2026-07-28 HTTP server: there, closing the request's
   * answer stream is the cancellation, and the notification is neither required nor expected
   * (basic/patterns/cancellation). Its retries under other ids are closed too.
   */
  const cancelled = new Set<Id>();
  const cancelUpstream = (m: JSONRPCMessage) => {
    const id = (m.params as { requestId?: unknown } | undefined)?.requestId;
    if (typeof id !== "string" && typeof id !== "number") return; // malformed: ignored, as the spec says
    const ids = [id, ...[...alias].filter(([, c]) => c === id).map(([u]) => u)];
    let closed = false;
    for (const u of ids) closed = (up.cancel?.(u) ?? false) || closed;
    if (!closed && !owed.has(id)) return; // already answered, or unknown: nothing to cancel
    // A closed stream brings nothing more; a request not sent yet may still be answered: drop that answer.
    if (!closed) cancelled.add(id);
    owed.delete(id);
    originals.delete(id);
  };

  /**
   * subscriptions/listen from a modern client at a legacy server (basic/patterns/subscriptions): the
   * legacy server announces list changes on its own (capability `listChanged`, on its GET stream) and
   * resource updates after resources/subscribe. The proxy acknowledges the part of the filter the
   * server can honour, subscribes upstream to the resources asked for, and hands each change
   * notification to the subscriptions that asked for it, tagged with their id. The request stays open
   * until the client cancels it (notifications/cancelled), which unsubscribes upstream.
   */
  const subscriptions = new Map<Id, { filter: Record<string, boolean>; uris: string[] }>();
  /** Resource URI → how many subscriptions hold it upstream. */
  const subscribedUris = new Map<string, number>();
  const listen = async (m: JSONRPCMessage & { id: Id }, init: Record<string, unknown>) => {
    owed.delete(m.id); // a stream, not an answer owed before the client goes away
    const asked = ((m.params as { notifications?: unknown } | undefined)?.notifications ?? {}) as Record<string, unknown>;
    const caps = (init.capabilities ?? {}) as Record<string, { listChanged?: unknown; subscribe?: unknown } | undefined>;
    const filter: Record<string, boolean> = {};
    for (const [key, cap] of Object.values(LISTEN_FILTER)) if (cap !== "subscribe" && asked[key] === true && caps[cap]?.listChanged) filter[key] = true;
    const uris: string[] = [];
    if (Array.isArray(asked.resourceSubscriptions) && caps.resources?.subscribe) {
      for (const uri of new Set(asked.resourceSubscriptions.filter((u): u is string => typeof u === "string" && u.length <= 4096).slice(0, 100))) {
        if (!subscribedUris.has(uri)) {
          const r = await call("resources/subscribe", { uri });
          if (!("result" in r)) continue; // not honoured: left out of the acknowledgment
        }
        subscribedUris.set(uri, (subscribedUris.get(uri) ?? 0) + 1);
        uris.push(uri);
      }
    }
    subscriptions.set(m.id, { filter, uris });
    const notifications: Record<string, unknown> = { ...filter, ...(Array.isArray(asked.resourceSubscriptions) ? { resourceSubscriptions: uris } : {}) };
    const ack: JSONRPCMessage = { jsonrpc: "2.0", method: "notifications/subscriptions/acknowledged", params: { _meta: { [META_SUBSCRIPTION_ID]: m.id }, notifications } };
    trace?.("stdio <", ack);
    await down.send(ack);
  };
  const unlisten = async (id: Id) => {
    const s = subscriptions.get(id)!;
    subscriptions.delete(id);
    for (const uri of s.uris) {
      const n = (subscribedUris.get(uri) ?? 1) - 1;
      if (n > 0) subscribedUris.set(uri, n);
      else {
        subscribedUris.delete(uri);
        await call("resources/unsubscribe", { uri }).catch((e) => report(e));
      }
    }
  };
  const notifySubscribers = (m: JSONRPCMessage) => {
    const [key] = LISTEN_FILTER[m.method!]!;
    const uri = (m.params as { uri?: unknown } | undefined)?.uri;
    for (const [id, s] of subscriptions) {
      if (key === "resourceSubscriptions" ? !(typeof uri === "string" && s.uris.includes(uri)) : !s.filter[key]) continue;
      const params = (m.params ?? {}) as Record<string, unknown>;
      const out: JSONRPCMessage = { jsonrpc: "2.0", method: m.method, params: { ...params, _meta: { ...((params._meta ?? {}) as object), [META_SUBSCRIPTION_ID]: id } } };
      trace?.("stdio <", out);
      void down.send(out).catch(() => {});
    }
  };

  /** One message from the client, once the server's era is known. */
  const handle = async (m: JSONRPCMessage): Promise<void> => {
    if (serverEra === "modern" && m.method === "notifications/cancelled" && m.id === undefined) return cancelUpstream(m);
    if (isRequest(m) && m.method === "initialize") clientEra ??= "legacy";
    const meta = (m.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
    if (isRequest(m) && (m.method === "server/discover" || typeof meta?.[META_PROTOCOL_VERSION] === "string")) clientEra ??= "modern";
    // Answers to requests of the proxy's own (input requests put to a legacy client).
    if (!m.method && m.id !== undefined && m.id !== null && internal.has(m.id as Id)) {
      const done = internal.get(m.id as Id)!;
      internal.delete(m.id as Id);
      return done(m);
    }
    if (serverEra === "modern" && clientEra !== "modern") return legacyToModern(m);
    if (serverEra === "legacy" && clientEra === "modern") return modernToLegacy(m);
    if (isRequest(m) && serverEra === "modern" && m.method === "tools/call") originals.set(m.id, m);
    return sendUp(m);
  };

  /**
   * A legacy client in front of a 2026-07-28 server expects list changes and resource updates unasked
   * (its GET stream, resources/subscribe). The proxy keeps one subscriptions/listen open for what the
   * server's capabilities offer and the URIs the client subscribed to (basic/patterns/subscriptions),
   * and opens a new one, closing the old, when that set changes. Its notifications go to the client.
   */
  const legacySubscriptions = new Set<string>();
  let listenId: string | undefined;
  const listenFor = () => {
    if (listenId) up.cancel?.(listenId);
    if (listenId) internal.delete(listenId);
    listenId = undefined;
    const caps = (discovered?.capabilities ?? {}) as Record<string, { listChanged?: unknown; subscribe?: unknown } | undefined>;
    const notifications: Record<string, unknown> = {};
    for (const [key, cap] of Object.values(LISTEN_FILTER)) if (cap !== "subscribe" && caps[cap]?.listChanged) notifications[key] = true;
    if (legacySubscriptions.size && caps.resources?.subscribe) notifications.resourceSubscriptions = [...legacySubscriptions];
    if (!Object.keys(notifications).length) return;
    const id = (listenId = nextId("listen"));
    // Its answer is the stream's end (or the server's refusal): nothing the client asked for.
    internal.set(id, (a) => void ("error" in a && o.debug?.(`the MCP server refused subscriptions/listen: ${short(JSON.stringify(a.error), 300)}`)));
    const m: JSONRPCMessage = { jsonrpc: "2.0", id, method: "subscriptions/listen", params: modernMeta({ notifications }) };
    trace?.("proxy >", m);
    void sendUp(m).catch((e) => {
      internal.delete(id);
      o.debug?.(`subscriptions/listen failed: ${(e as Error)?.message ?? e}`);
    });
  };

  /** A legacy client in front of a 2026-07-28 server. */
  const legacyToModern = async (m: JSONRPCMessage): Promise<void> => {
    if (!isRequest(m)) {
      // No client notification (initialized, roots/list_changed, cancelled) exists on modern HTTP;
      // once initialized, the change notifications the client was promised come from a listen stream.
      if (m.method === "notifications/initialized") return listenFor();
      if (m.method) return;
      return sendUp(m); // an answer to a server request (a modern server sends none)
    }
    switch (m.method) {
      case "initialize": {
        const p = (m.params ?? {}) as { protocolVersion?: unknown; capabilities?: unknown; clientInfo?: unknown };
        clientCaps = p.capabilities ?? {};
        clientInfo = p.clientInfo;
        if (!discovered) {
          const r = await call("server/discover", modernMeta({}));
          if (!("result" in r)) {
            owed.delete(m.id);
            return replyError(m.id, PROXY_ERROR, `mcp-auth: the MCP server answered server/discover with an error: ${short(JSON.stringify(r.error), 300)}`);
          }
          discovered = r.result as Record<string, unknown>;
        }
        owed.delete(m.id);
        return reply(m.id, initializeFromDiscover(p.protocolVersion, discovered));
      }
      case "ping":
        owed.delete(m.id);
        return reply(m.id, {});
      case "logging/setLevel": {
        const level = (m.params as { level?: unknown } | undefined)?.level;
        if (typeof level === "string") logLevel = level;
        owed.delete(m.id);
        return reply(m.id, {});
      }
      case "resources/subscribe":
      case "resources/unsubscribe": {
        const uri = (m.params as { uri?: unknown } | undefined)?.uri;
        owed.delete(m.id);
        if (typeof uri !== "string" || uri.length > 4096) return replyError(m.id, -32602, "Invalid params: uri");
        if (m.method === "resources/subscribe" && legacySubscriptions.size >= 100 && !legacySubscriptions.has(uri)) return replyError(m.id, PROXY_ERROR, "mcp-auth: at most 100 resource subscriptions");
        if (m.method === "resources/subscribe") legacySubscriptions.add(uri);
        else legacySubscriptions.delete(uri);
        listenFor();
        return reply(m.id, {});
      }
    }
    const sent: JSONRPCMessage & { id: Id } = { ...m, params: modernMeta(m.params) };
    if (["tools/call", "resources/read", "prompts/get"].includes(m.method)) originals.set(m.id, sent);
    return sendUp(sent);
  };

  /** A 2026-07-28 client in front of a legacy server. */
  const modernToLegacy = async (m: JSONRPCMessage): Promise<void> => {
    if (!isRequest(m)) {
      const target = (m.params as { requestId?: unknown } | undefined)?.requestId;
      if (m.method === "notifications/cancelled" && (typeof target === "string" || typeof target === "number") && subscriptions.has(target)) return unlisten(target);
      return sendUp({ ...m, ...(m.params === undefined ? {} : { params: legacyParams(m.params) }) });
    }
    const meta = ((m.params as { _meta?: Record<string, unknown> } | undefined)?._meta ?? {}) as Record<string, unknown>;
    const requested = meta[META_PROTOCOL_VERSION];
    if (typeof requested === "string" && !MODERN_VERSIONS.includes(requested)) {
      owed.delete(m.id);
      return replyError(m.id, UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version", { supported: MODERN_VERSIONS, requested });
    }
    const init = await handshake(meta[META_CLIENT_CAPABILITIES], meta[META_CLIENT_INFO]);
    if (m.method === "server/discover") {
      owed.delete(m.id);
      return reply(m.id, discoverFromInitialize(init));
    }
    if (m.method === "subscriptions/listen") return listen(m, init);
    const state = (m.params as { requestState?: unknown } | undefined)?.requestState;
    if (typeof state === "string") return retryWithInput(m, state);
    if (INPUT_METHODS.has(m.method)) {
      const state = randomUUID();
      const caps = meta[META_CLIENT_CAPABILITIES];
      held.set(m.id, { waiting: m.id, method: m.method, caps: caps && typeof caps === "object" ? (caps as Record<string, unknown>) : {}, queued: [], asked: new Map(), state });
      heldStates.set(state, m.id);
    }
    // The per-request log level becomes the legacy session's level, when the server logs at all.
    const level = meta[META_LOG_LEVEL];
    if (typeof level === "string" && level !== upstreamLevel && (init.capabilities as Record<string, unknown> | undefined)?.logging) {
      upstreamLevel = level;
      await call("logging/setLevel", { level });
    }
    return sendUp({ ...m, params: legacyParams(m.params) });
  };

  // Notifications keep their order relative to what follows them (initialized before the next request),
  // and nothing is sent before the first message has settled the era and the transport; requests then
  // run side by side.
  let barrier: Promise<unknown> = Promise.resolve();
  let first = true;
  down.onmessage = (m) => {
    trace?.("stdio >", m);
    if (isRequest(m)) {
      owed.set(m.id, m.method);
      cancelled.delete(m.id); // an id used again after its cancellation
    }
    const sent = barrier
      .then(open)
      .then(() => handle(m))
      .catch((e) => fail(m, e));
    if (first || !isRequest(m)) barrier = sent;
    first = false;
  };
  down.onerror = (e) => o.error(`ignored a line from the MCP client that is not JSON-RPC: ${short(e.message)}`);

  const closed = new Promise<void>((resolve) => {
    o.input.once("end", resolve);
    o.input.once("close", resolve);
  });
  await down.start();
  await closed;

  // stdin is closed: answer what is still owed (a piped batch wants its results), then end the session.
  const deadline = o.now() + (o.drainMs ?? 3000);
  while (owed.size && o.now() < deadline) await sleep(20);
  await barrier;
  closing = true;
  if (!opened) return void (await down.close().catch(() => {}));
  await opened.catch(() => {});
  if (!up) return void (await down.close().catch(() => {}));
  if (up.terminateSession) await within(2000, up.terminateSession().catch(() => {}));
  await up.close().catch(() => {});
  await down.close().catch(() => {});
}

/** The current token, renewed shortly before it expires; concurrent callers share one renewal. */
export function bearerCache(o: ProxyOptions) {
  let current: { token: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;
  const renew = (forceRefresh: boolean) =>
    (pending ??= o
      .token({ forceRefresh })
      .then((t) => keep(t))
      .finally(() => (pending = undefined)));
  const keep = (t: BearerToken) => {
    const now = o.now();
    const expires = t.expires_at * 1000;
    current = { token: t.access_token, renewAt: expires - Math.min(MAX_SKEW_MS, Math.max(0, expires - now) / 2) };
    return t.access_token;
  };
  return {
    /** A token obtained elsewhere (a step-up) replaces the current one. */
    set: keep,
    get: (): Promise<string> => (current && o.now() < current.renewAt ? Promise.resolve(current.token) : renew(false)),
    /** The server refused `stale`: get a new one, unless someone already has. */
    refused: async (stale: string): Promise<string> => {
      // A renewal under way may just hand back the cached (refused) token: wait for it, then judge.
      await pending?.catch(() => {});
      return current && current.token !== stale ? current.token : renew(true);
    },
  };
}

/**
 * ctx.fetch with the bearer token on every request; a 401 gets one renewal and one retry, a 403
 * insufficient_scope a step-up (at most MAX_STEP_UPS per session) and one retry.
 */
export function authorizedFetch(o: ProxyOptions, bearer: ReturnType<typeof bearerCache>): Fetch {
  let stepUps = 0;
  let guardShown = false;
  let badShown = false;
  let outsideShown = false;
  let stepping: Promise<string> | undefined;
  const mayStepUp = o.covers ?? ((u: URL) => covers(o.url, u));
  /**
   * The scopes a 403 insufficient_scope challenge asks for: none for any other answer, without a
   * step-up, for a URL the profile does not cover, or when the challenge is not a list of scope-tokens.
   */
  const stepUpScopes = (res: Response, url: URL): string[] => {
    if (res.status !== 403 || !o.stepUp) return [];
    const c = parseWwwAuthenticate(res.headers.get("www-authenticate"));
    if (c?.params.error !== "insufficient_scope") return [];
    if (!mayStepUp(url)) {
      if (!outsideShown) o.error(`the MCP server asks for more scope at ${url.origin}${url.pathname}, outside ${o.owner}'s server: no step-up there; passing its refusal on`);
      outsideShown = true;
      return [];
    }
    const scopes = (c.params.scope ?? "").split(" ").filter(Boolean);
    if (scopes.length > MAX_SCOPES || !scopes.every((s) => s.length <= MAX_SCOPE_LENGTH && SCOPE_TOKEN.test(s))) {
      if (!badShown) o.error(`the MCP server ${o.url.host} asks for more scope, but not as a list of OAuth scopes; passing its refusal on`);
      badShown = true;
      return [];
    }
    return [...new Set(scopes)];
  };
  const withToken = (init: RequestInit | undefined, token: string): RequestInit => {
    const headers = new Headers(init?.headers);
    headers.set("authorization", `Bearer ${token}`);
    return { ...init, headers };
  };
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    // The transports stay on the server's origin; should one ever stray, the token does not follow.
    if (url.origin !== o.url.origin) throw new McpAuthError(`refusing to send the token of ${o.owner} to ${url.origin}, which is not the MCP server's origin ${o.url.origin}`);
    const token = await bearer.get();
    let res = await o.fetch(input, withToken(init, token));
    let used = token;
    for (let scopes = stepUpScopes(res, url); scopes.length; scopes = stepUpScopes(res, url)) {
      const current = await bearer.get();
      if (current === used) {
        // Requests refused together share one step-up.
        if (!stepping) {
          if (stepUps >= MAX_STEP_UPS) {
            if (!guardShown) o.error(`the MCP server ${o.url.host} still asks for more scope (${scopes.join(" ")}) after ${MAX_STEP_UPS} step-ups; passing its refusal on`);
            guardShown = true;
            break;
          }
          stepUps++;
          o.error(`the MCP server ${o.url.host} needs scope ${scopes.join(" ")}: getting a token that has it (step-up ${stepUps} of ${MAX_STEP_UPS})`);
          stepping = o.stepUp!(scopes).then((t) => bearer.set(t)).finally(() => (stepping = undefined));
        }
        used = await stepping;
      } else used = current; // someone stepped up meanwhile
      await res.body?.cancel().catch(() => {});
      res = await o.fetch(input, withToken(init, used));
    }
    if (res.status !== 401) return res;
    await res.body?.cancel().catch(() => {});
    o.debug?.("the server answered 401: getting a new token and retrying once");
    const fresh = await bearer.refused(used);
    const again = await o.fetch(input, withToken(init, fresh));
    if (again.status !== 401) return again;
    await again.body?.cancel().catch(() => {});
    throw new TokenRefusedError(`the MCP server ${o.url.host} refused the token of ${o.owner} (HTTP 401, also after getting a new one)`, { hint: o.loginHint });
  };
}

function short(s: string, max = 2000): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Waits for `p`, but no longer than `ms` (and leaves no timer behind to keep the process up). */
async function within(ms: number, p: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
