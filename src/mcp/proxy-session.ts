import { randomUUID } from "node:crypto";
import { AuthError, McpAuthError } from "../errors.js";
import { redact, type Relay } from "../oauth/http.js";
import { checkTools, discoverFromInitialize, initializeFromDiscover, INPUT_CAPABILITY, legacyParams, legacyResult, modernResult } from "./bridge.js";
import { HEADER_MISMATCH, LEGACY_VERSIONS, META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL, META_PROTOCOL_VERSION, META_SUBSCRIPTION_ID, MODERN_VERSION, MODERN_VERSIONS, modernHeaders, paramHeaders, probeEra, UNSUPPORTED_PROTOCOL_VERSION, withModernMeta, type HeaderParam } from "./era.js";
import type { ProxyOptions } from "./proxy.js";
import { HttpTransportError, isRequest, SseTransport, StdioTransport, StreamError, StreamableHttpTransport, type JSONRPCMessage, type Transport } from "./transport.js";

/**
 * One `mcp-auth proxy` session: the MCP client on stdio (`down`), the server over HTTP (`up`), and
 * the translation between their protocol eras (docs/mcp-2026-07-28.md). src/mcp/proxy.ts gives it
 * the authorized relay; this class owns the JSON-RPC bookkeeping. Its methods, in order: the
 * session's life (run, drain, close), messages to the client, the upstream transport, requests of
 * the proxy's own, then each era pairing (a legacy client at a modern server, a modern client at a
 * legacy server).
 */

/**
 * JSON-RPC error code of failures the proxy itself reports: outside the range JSON-RPC reserves
 * (-32768…-32000), as the 2026-07-28 spec asks of codes it does not define (docs/mcp-2026-07-28.md).
 */
export const PROXY_ERROR = -31000;

/** The server refused a token we had just renewed. */
export class TokenRefusedError extends AuthError {}

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

type Id = string | number;
type Request = JSONRPCMessage & { id: Id; method: string };
type Capabilities = Record<string, { listChanged?: unknown; subscribe?: unknown } | undefined>;

/**
 * A modern client's tools/call, resources/read or prompts/get at a legacy server: the server's own
 * requests made while serving it (on its POST stream) are held and given to the client as that
 * request's input_required result; the client's retry carries the answers, which go up as the
 * server's responses, and the retry waits for the original request's result in its place.
 */
interface Held {
  /** The client request that currently waits for the upstream result: the original, then each retry. */
  waiting?: Id;
  method: string;
  /** The capabilities the client declared in that request's `_meta`. */
  caps: Record<string, unknown>;
  /** The server's requests not yet put to the client. */
  queued: Request[];
  /** inputRequests key → the server's request id, for the answers the next retry brings. */
  asked: Map<string, Id>;
  /** The upstream result, when it came while the client was still gathering input. */
  result?: JSONRPCMessage;
  /** The opaque requestState the client echoes: it names this entry. */
  state: string;
}

export class ProxySession {
  private readonly down: Transport;
  private up!: Transport;
  private readonly trace?: (dir: string, m: unknown) => void;
  /** Requests sent upstream and not answered yet: id → method. */
  private readonly owed = new Map<Id, string>();
  private refusedShown = false;
  private closing = false;

  // Eras. `serverEra` is settled before the first message goes up; the HTTP+SSE transport predates
  // 2026-07-28, so a server reached through it is legacy, with nothing to probe.
  private serverEra: "modern" | "legacy" | undefined;
  private clientEra: "modern" | "legacy" | undefined;
  private modernVersion = MODERN_VERSION;
  private discovered: Record<string, unknown> | undefined;
  /** What a legacy client declared in initialize; sent in `_meta` of each modern request. */
  private clientCaps: unknown = {};
  private clientInfo: unknown;
  private logLevel: string | undefined;
  /** Tools' x-mcp-header parameters, from the last tools/list seen. */
  private readonly toolParams = new Map<string, HeaderParam[]>();

  /** Requests the proxy sends on its own (upstream or to the client): id → resolve. */
  private readonly internal = new Map<Id, (m: JSONRPCMessage) => void>();
  /** Retries sent with a new id upstream: that id → the client's id. */
  private readonly alias = new Map<Id, Id>();
  /** Client requests kept for a retry (input_required, -32020): id → request. */
  private readonly originals = new Map<Id, Request>();
  /** Client requests cancelled before their answer came: that answer is not passed on. */
  private readonly cancelled = new Set<Id>();
  private seq = 0;

  private mayFallBack = false;
  private opened: Promise<void> | undefined;
  /** Notifications keep their order relative to what follows them; see onClientMessage. */
  private barrier: Promise<unknown> = Promise.resolve();
  private first = true;

  // A legacy client at a modern server.
  /** input_required rounds per client request. */
  private readonly rounds = new Map<Id, number>();
  /** tools/call requests already retried once after -32020. */
  private readonly retried = new Set<Id>();
  private readonly legacySubscriptions = new Set<string>();
  private listenId: string | undefined;

  // A modern client at a legacy server.
  /** Upstream request id (the client's original id) → its held server requests. */
  private readonly held = new Map<Id, Held>();
  private readonly heldStates = new Map<string, Id>();
  private legacyInit: Promise<Record<string, unknown>> | undefined;
  private upstreamLevel: string | undefined;
  private readonly subscriptions = new Map<Id, { filter: Record<string, boolean>; uris: string[] }>();
  /** Resource URI → how many subscriptions hold it upstream. */
  private readonly subscribedUris = new Map<string, number>();

  constructor(
    private readonly o: ProxyOptions,
    private readonly authRelay: Relay,
  ) {
    this.down = o.client ? o.client.transport : new StdioTransport(o.input, o.output);
    this.trace = o.debug ? (dir, m) => o.debug!(`${dir} ${short(redact(JSON.stringify(m)))}`) : undefined;
    this.serverEra = o.protocol === "2026-07-28" ? "modern" : o.protocol === "legacy" || o.transport === "sse" ? "legacy" : undefined;
  }

  // ── The session's life ──────────────────────────────────────────────────────────────────────

  /** Runs until the input closes; resolves once the session is closed upstream. */
  async run(): Promise<void> {
    this.down.onmessage = (m) => this.onClientMessage(m);
    this.down.onerror = (e) => this.o.error(`ignored a line from the MCP client that is not JSON-RPC: ${short(e.message)}`);
    const { o } = this;
    const closed = o.client
      ? o.client.closed
      : new Promise<void>((resolve) => {
          o.input.once("end", resolve);
          o.input.once("close", resolve);
        });
    await this.down.start();
    await closed;
    await this.drain();
    await this.close();
  }

  /**
   * Nothing goes up before the server's era is known and the transport open. A first `initialize`
   * holds everything after it until answered: the legacy session (Mcp-Session-Id) comes with that
   * answer. Any other first message holds the rest only until the session is ready, not until its
   * own answer: a 2026-07-28 client's long tools/call must not stall its other requests (nor, in
   * `mcp-auth serve`, other clients' on the shared bridge). Ready, for a 2026-07-28 client at a
   * legacy server, is the proxy's own handshake, which `handle` of the first request (run first on
   * `opened`) has started. Notifications keep their order relative to what follows them
   * (initialized before the next request); requests then run side by side.
   */
  private onClientMessage(m: JSONRPCMessage): void {
    this.trace?.("stdio >", m);
    if (isRequest(m)) {
      this.owed.set(m.id, m.method);
      this.cancelled.delete(m.id); // an id used again after its cancellation
    }
    // On arrival, not when handled: a request that overtakes the first one is routed by the same era.
    this.settleClientEra(m);
    const opened = this.barrier.then(() => this.open());
    const sent = opened.then(() => this.handle(m)).catch((e) => this.fail(m, e));
    if (this.first) this.barrier = m.method === "initialize" ? sent : opened.then(() => this.legacyInit).catch(() => {});
    else if (!isRequest(m)) this.barrier = sent;
    this.first = false;
  }

  /** The client's era, from its first request that tells: initialize, or server/discover or a protocol version in `_meta`. */
  private settleClientEra(m: JSONRPCMessage): void {
    if (!isRequest(m) || this.clientEra) return;
    const meta = (m.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
    if (m.method === "initialize") this.clientEra = "legacy";
    else if (m.method === "server/discover" || typeof meta?.[META_PROTOCOL_VERSION] === "string") this.clientEra = "modern";
  }

  /** stdin is closed: answer what is still owed (a piped batch wants its results). */
  private async drain(): Promise<void> {
    const deadline = this.o.now() + (this.o.drainMs ?? 3000);
    while (this.owed.size && this.o.now() < deadline) await sleep(20);
    await this.barrier;
  }

  private async close(): Promise<void> {
    this.closing = true;
    if (this.opened) await this.opened.catch(() => {});
    if (this.opened && this.up) {
      if (this.up.terminateSession) await within(2000, this.up.terminateSession().catch(() => {}));
      await this.up.close().catch(() => {});
    }
    await this.down.close().catch(() => {});
  }

  /** One message from the client, once the server's era is known. */
  private async handle(m: JSONRPCMessage): Promise<void> {
    if (this.serverEra === "modern" && m.method === "notifications/cancelled" && m.id === undefined) return this.cancelUpstream(m);
    // Answers to requests of the proxy's own (input requests put to a legacy client).
    if (!m.method && m.id !== undefined && m.id !== null && this.internal.has(m.id as Id)) {
      const done = this.internal.get(m.id as Id)!;
      this.internal.delete(m.id as Id);
      return done(m);
    }
    if (this.serverEra === "modern" && this.clientEra !== "modern") return this.legacyToModern(m);
    if (this.serverEra === "legacy" && this.clientEra === "modern") return this.modernToLegacy(m);
    if (isRequest(m) && this.serverEra === "modern" && m.method === "tools/call") this.originals.set(m.id, m);
    return this.sendUp(m);
  }

  // ── To the client ───────────────────────────────────────────────────────────────────────────

  private reply(id: Id, result: unknown): void {
    this.toClient({ jsonrpc: "2.0", id, result });
  }

  private replyError(id: Id, code: number, message: string, data?: unknown): void {
    this.toClient({ jsonrpc: "2.0", id, error: { code, message, ...(data === undefined ? {} : { data }) } });
  }

  /** Straight to stdout, past the bookkeeping of toClient. */
  private sendDown(m: JSONRPCMessage): void {
    this.trace?.("stdio <", m);
    void this.down.send(m).catch(() => {});
  }

  /** Everything the server sends, and the proxy's own answers: translated for the client's era, then written. */
  private toClient(m: JSONRPCMessage, related?: JSONRPCMessage): void {
    if (("result" in m || "error" in m) && m.id !== undefined && m.id !== null) {
      const answer = this.answerForClient(m);
      if (!answer) return;
      m = answer;
    } else if (this.serverEra === "legacy" && this.clientEra === "modern" && isRequest(m)) {
      return this.serverRequest(m, related);
    } else if (this.serverEra === "modern" && this.clientEra !== "modern" && m.method === "notifications/subscriptions/acknowledged") {
      return; // the proxy's own subscriptions/listen: unknown to a legacy client
    } else if (this.serverEra === "legacy" && this.clientEra === "modern" && m.method && LISTEN_FILTER[m.method]) {
      // A legacy server's change notification: only on the subscriptions that asked for it.
      return this.notifySubscribers(m);
    }
    this.sendDown(m);
  }

  /** An answer on its way to the client: the proxy's own, held, retried or cancelled ones are settled here. */
  private answerForClient(m: JSONRPCMessage): JSONRPCMessage | undefined {
    const mine = this.internal.get(m.id as Id);
    if (mine) {
      this.internal.delete(m.id as Id);
      return void mine(m);
    }
    // A legacy server's answer to a request it asked input for: it answers the client's latest retry.
    const h = this.held.get(m.id as Id);
    if (h) {
      if (h.waiting === undefined) return void (h.result = m);
      this.held.delete(m.id as Id);
      this.heldStates.delete(h.state);
      m = { ...m, id: h.waiting };
    }
    const clientId = this.alias.get(m.id as Id);
    if (clientId !== undefined) {
      this.alias.delete(m.id as Id);
      m = { ...m, id: clientId };
    }
    const id = m.id as Id;
    // The client cancelled it: an answer that crossed the cancellation is not passed on.
    if (this.cancelled.delete(id)) return undefined;
    const method = this.owed.get(id);
    // The transport adds MCP-Protocol-Version to later requests, as the SDK's own Client does.
    if (method === "initialize" && "result" in m && m.result) {
      const v = (m.result as { protocolVersion?: unknown }).protocolVersion;
      if (typeof v === "string") this.up.setProtocolVersion?.(v);
    }
    if (this.serverEra === "modern") {
      const original = this.originals.get(id);
      if ("result" in m && (m.result as { resultType?: unknown })?.resultType === "input_required" && this.clientEra === "legacy" && original) return void this.inputRequired(original, m.result as Record<string, unknown>);
      // One retry per request: a second -32020 is the server's answer for the client.
      if ("error" in m && (m.error as { code?: unknown })?.code === HEADER_MISMATCH && original?.method === "tools/call" && !this.retried.has(id)) return void this.retryAfterToolsList(original);
      if ("result" in m && method === "tools/list") m = { ...m, result: checkTools(m.result, this.toolParams, this.o.error) };
      if ("result" in m && this.clientEra === "legacy") m = { ...m, result: legacyResult(m.result) };
    } else if (this.clientEra === "modern" && "result" in m) m = { ...m, result: modernResult(method, m.result) };
    this.owed.delete(id);
    this.originals.delete(id);
    this.retried.delete(id);
    return m;
  }

  /** One line to the user per episode: a client retrying in a loop must not flood the log. */
  private report(e: unknown): string {
    const err = e instanceof McpAuthError ? e : new McpAuthError((e as Error)?.message ?? String(e));
    // A server's error text may be a whole HTML page, or echo the token: keep it short and redacted.
    const line = `${short(redact(err.message), 300)}${err.hint ? ` (${err.hint})` : ""}`.replace(/\s*\n\s*/g, " ");
    if (!(e instanceof AuthError) || !this.refusedShown) this.o.error(line);
    if (e instanceof AuthError) this.refusedShown = true;
    return line;
  }

  /** A message could not go up (or its answer cannot come): the request it was gets an error answer. */
  private fail(m: JSONRPCMessage, e: unknown): void {
    if (isRequest(m) && this.cancelled.delete(this.alias.get(m.id) ?? m.id)) return;
    const line = this.report(e);
    if (!isRequest(m)) return;
    let id = this.alias.get(m.id) ?? m.id;
    const h = this.held.get(m.id);
    if (h) {
      this.held.delete(m.id);
      this.heldStates.delete(h.state);
      if (h.waiting === undefined) return; // the client is gathering input; its retry learns it is gone
      id = h.waiting;
    }
    this.alias.delete(m.id);
    this.internal.get(m.id)?.({ jsonrpc: "2.0", id: m.id, error: { code: PROXY_ERROR, message: `mcp-auth: ${line}` } });
    if (this.internal.delete(m.id)) return;
    this.owed.delete(id);
    this.originals.delete(id);
    const status = e instanceof HttpTransportError ? e.code : e instanceof TokenRefusedError ? 401 : undefined;
    this.toClient({ jsonrpc: "2.0", id, error: { code: PROXY_ERROR, message: `mcp-auth: ${line}`, data: status ? { status } : undefined } });
  }

  // ── Upstream ────────────────────────────────────────────────────────────────────────────────

  private wire(t: Transport): void {
    t.onmessage = (m, related) => {
      this.refusedShown = false;
      this.toClient(m, related);
    };
    // Failed sends are answered through `fail`; this only sees the transport's own stream trouble.
    t.onerror = (e) => {
      if (this.closing) return;
      if (e instanceof AuthError || e instanceof StreamError) this.report(e);
      else this.o.debug?.(`upstream: ${e.message}`);
    };
    // A request whose answer cannot come any more (its event stream broke a cap or ended first).
    t.onrequesterror = (m, e) => this.fail(m, e);
  }

  /** The 2026-07-28 headers of one message: request metadata, and Mcp-Param-* from the tool's schema. */
  private modernHeadersOf(m: JSONRPCMessage): Record<string, string> {
    const meta = (m.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
    const v = typeof meta?.[META_PROTOCOL_VERSION] === "string" ? (meta[META_PROTOCOL_VERSION] as string) : this.modernVersion;
    const h = modernHeaders(m, v);
    if (m.method === "tools/call") {
      const p = (m.params ?? {}) as { name?: unknown; arguments?: unknown };
      const params = typeof p.name === "string" ? this.toolParams.get(p.name) : undefined;
      if (params) Object.assign(h, paramHeaders(params, p.arguments));
    }
    return h;
  }

  private streamable(): Transport {
    return this.serverEra === "modern" ? new StreamableHttpTransport(this.o.url, this.authRelay, (m) => this.modernHeadersOf(m)) : new StreamableHttpTransport(this.o.url, this.authRelay);
  }

  private async startTransport(t: Transport): Promise<void> {
    this.up = t;
    this.wire(t);
    await t.start();
  }

  /** Settles the server's era (probing it when `auto`) and opens the upstream transport, once. */
  private open(): Promise<void> {
    return (this.opened ??= (async () => {
      if (!this.serverEra) await this.probeServerEra();
      await this.startTransport(this.o.transport === "sse" && this.serverEra === "legacy" ? new SseTransport(this.o.url, this.authRelay) : this.streamable());
      this.mayFallBack = this.serverEra === "legacy" && (this.o.transport ?? "auto") === "auto";
    })());
  }

  /** server/discover; the client's own initialize settles a legacy server, so the probe stops before its fallback. */
  private async probeServerEra(): Promise<void> {
    const p = await probeEra(this.authRelay, this.o.url, { initialize: false, fresh: true });
    this.serverEra = p.era === "modern" ? "modern" : "legacy";
    if (p.era === "modern") {
      // A modern server that lists no version we speak: no fallback to initialize (basic/versioning).
      if (!p.version) throw new McpAuthError(`the MCP server speaks ${p.supported?.join(", ") || "no version it names"}, none of which mcp-auth speaks (${MODERN_VERSIONS.join(", ")})`, { hint: "upgrade mcp-auth" });
      this.modernVersion = p.version;
      this.discovered = p.discover;
    }
    this.o.debug?.(`the MCP server speaks ${this.serverEra === "modern" ? this.modernVersion : "a version before 2026-07-28"} (${p.detail})`);
  }

  private async sendUp(m: JSONRPCMessage): Promise<void> {
    try {
      await this.up.send(m);
    } catch (e) {
      // An old HTTP+SSE server does not take POSTs at its SSE URL: reconnect that way, once.
      if (!(this.mayFallBack && e instanceof HttpTransportError && [400, 404, 405].includes(e.code ?? 0))) throw e;
      this.o.debug?.(`upstream answered ${e.code} to a Streamable HTTP POST; trying the HTTP+SSE transport`);
      this.mayFallBack = false;
      await this.up.close().catch(() => {});
      await this.startTransport(new SseTransport(this.o.url, this.authRelay));
      await this.up.send(m);
    } finally {
      this.mayFallBack = false;
    }
  }

  // ── Requests of the proxy's own ─────────────────────────────────────────────────────────────

  private nextId(what: string): string {
    return `mcp-auth-${what}-${++this.seq}`;
  }

  /** A request of the proxy's own, upstream; its answer is not the client's. */
  private call(method: string, params: unknown): Promise<JSONRPCMessage> {
    const id = this.nextId("call");
    const answer = new Promise<JSONRPCMessage>((resolve) => this.internal.set(id, resolve));
    const m: JSONRPCMessage = { jsonrpc: "2.0", id, method, params };
    this.trace?.("proxy >", m);
    return this.sendUp(m).then(
      () => answer,
      (e) => {
        this.internal.delete(id);
        throw e;
      },
    );
  }

  /** A request of the proxy's own to the client (a legacy client's elicitation, sampling, roots). */
  private ask(method: string, params: unknown): Promise<JSONRPCMessage> {
    const id = this.nextId("input");
    const answer = new Promise<JSONRPCMessage>((resolve) => this.internal.set(id, resolve));
    this.sendDown({ jsonrpc: "2.0", id, method, params });
    return answer;
  }

  /** Sends a client's request again under a new id (a retry must not reuse one); its answer goes to the client's id. */
  private resend(original: Request | (JSONRPCMessage & { id: Id }), params: unknown): Promise<void> {
    const id = this.nextId("retry");
    this.alias.set(id, original.id);
    const m: JSONRPCMessage = { jsonrpc: "2.0", id, method: original.method, params };
    return this.sendUp(m).catch((e) => this.fail(m, e));
  }

  // ── A legacy client at a 2026-07-28 server ──────────────────────────────────────────────────

  private modernMeta(params: unknown): unknown {
    return withModernMeta(params, { version: this.modernVersion, capabilities: this.clientCaps, clientInfo: this.clientInfo, logLevel: this.logLevel });
  }

  private async legacyToModern(m: JSONRPCMessage): Promise<void> {
    if (!isRequest(m)) {
      // No client notification (initialized, roots/list_changed, cancelled) exists on modern HTTP;
      // once initialized, the change notifications the client was promised come from a listen stream.
      if (m.method === "notifications/initialized") return this.listenFor();
      if (m.method) return;
      return this.sendUp(m); // an answer to a server request (a modern server sends none)
    }
    switch (m.method) {
      case "initialize":
        return this.initializeFromDiscover(m);
      case "ping":
        this.owed.delete(m.id);
        return this.reply(m.id, {});
      case "logging/setLevel": {
        const level = (m.params as { level?: unknown } | undefined)?.level;
        if (typeof level === "string") this.logLevel = level;
        this.owed.delete(m.id);
        return this.reply(m.id, {});
      }
      case "resources/subscribe":
      case "resources/unsubscribe":
        return this.subscribeForLegacy(m);
    }
    const sent: Request = { ...m, params: this.modernMeta(m.params) };
    if (INPUT_METHODS.has(m.method)) this.originals.set(m.id, sent);
    return this.sendUp(sent);
  }

  /** A legacy client's initialize, answered from server/discover (asked once). */
  private async initializeFromDiscover(m: Request): Promise<void> {
    const p = (m.params ?? {}) as { protocolVersion?: unknown; capabilities?: unknown; clientInfo?: unknown };
    this.clientCaps = p.capabilities ?? {};
    this.clientInfo = p.clientInfo;
    if (!this.discovered) {
      const r = await this.call("server/discover", this.modernMeta({}));
      if (!("result" in r)) {
        this.owed.delete(m.id);
        return this.replyError(m.id, PROXY_ERROR, `mcp-auth: the MCP server answered server/discover with an error: ${short(JSON.stringify(r.error), 300)}`);
      }
      this.discovered = r.result as Record<string, unknown>;
    }
    this.owed.delete(m.id);
    this.reply(m.id, initializeFromDiscover(p.protocolVersion, this.discovered));
  }

  /** resources/subscribe and unsubscribe of a legacy client: the URIs of the proxy's listen stream. */
  private subscribeForLegacy(m: Request): void {
    const uri = (m.params as { uri?: unknown } | undefined)?.uri;
    this.owed.delete(m.id);
    if (typeof uri !== "string" || uri.length > 4096) return this.replyError(m.id, -32602, "Invalid params: uri");
    if (m.method === "resources/subscribe" && this.legacySubscriptions.size >= 100 && !this.legacySubscriptions.has(uri)) return this.replyError(m.id, PROXY_ERROR, "mcp-auth: at most 100 resource subscriptions");
    if (m.method === "resources/subscribe") this.legacySubscriptions.add(uri);
    else this.legacySubscriptions.delete(uri);
    this.listenFor();
    this.reply(m.id, {});
  }

  /**
   * A legacy client in front of a 2026-07-28 server expects list changes and resource updates unasked
   * (its GET stream, resources/subscribe). The proxy keeps one subscriptions/listen open for what the
   * server's capabilities offer and the URIs the client subscribed to (basic/patterns/subscriptions),
   * and opens a new one, closing the old, when that set changes. Its notifications go to the client.
   */
  private listenFor(): void {
    if (this.listenId) {
      this.up.cancel?.(this.listenId);
      this.internal.delete(this.listenId);
    }
    this.listenId = undefined;
    const caps = (this.discovered?.capabilities ?? {}) as Capabilities;
    const notifications: Record<string, unknown> = {};
    for (const [key, cap] of Object.values(LISTEN_FILTER)) if (cap !== "subscribe" && caps[cap]?.listChanged) notifications[key] = true;
    if (this.legacySubscriptions.size && caps.resources?.subscribe) notifications.resourceSubscriptions = [...this.legacySubscriptions];
    if (!Object.keys(notifications).length) return;
    const id = (this.listenId = this.nextId("listen"));
    // Its answer is the stream's end (or the server's refusal): nothing the client asked for.
    this.internal.set(id, (a) => void ("error" in a && this.o.debug?.(`the MCP server refused subscriptions/listen: ${short(JSON.stringify(a.error), 300)}`)));
    const m: JSONRPCMessage = { jsonrpc: "2.0", id, method: "subscriptions/listen", params: this.modernMeta({ notifications }) };
    this.trace?.("proxy >", m);
    void this.sendUp(m).catch((e) => {
      this.internal.delete(id);
      this.o.debug?.(`subscriptions/listen failed: ${(e as Error)?.message ?? e}`);
    });
  }

  /**
   * A modern server's input_required result, for a legacy client: each input request becomes the
   * legacy server→client request of the same method (when the client declared that capability), and
   * the original request is retried with the answers (basic/patterns/mrtr).
   */
  private async inputRequired(original: Request, result: Record<string, unknown>): Promise<void> {
    const id = original.id;
    const n = (this.rounds.get(id) ?? 0) + 1;
    this.rounds.set(id, n);
    const end = (code: number, message: string) => {
      this.rounds.delete(id);
      this.owed.delete(id);
      this.originals.delete(id);
      this.replyError(id, code, message);
    };
    if (n > MAX_INPUT_ROUNDS) return end(PROXY_ERROR, `mcp-auth: the MCP server still asks for input after ${MAX_INPUT_ROUNDS} rounds`);
    const requests = Object.entries((result.inputRequests ?? {}) as Record<string, { method?: unknown; params?: unknown }>).slice(0, 32);
    const caps = (this.clientCaps ?? {}) as Record<string, unknown>;
    const missing = requests.map(([, r]) => String(r?.method)).filter((mth) => !INPUT_CAPABILITY[mth] || !caps[INPUT_CAPABILITY[mth]!]);
    if (missing.length) return end(PROXY_ERROR, `mcp-auth: the MCP server needs ${[...new Set(missing)].join(", ")} from the client to go on, which this MCP client did not declare`);
    const responses: Record<string, unknown> = {};
    for (const [key, r] of requests) {
      const a = await this.ask(r.method as string, r.params ?? {});
      if ("error" in a) return end(PROXY_ERROR, `mcp-auth: the MCP client refused the server's ${String(r.method)}: ${short(JSON.stringify(a.error), 300)}`);
      responses[key] = a.result;
    }
    const params: Record<string, unknown> = { ...((original.params ?? {}) as Record<string, unknown>), inputResponses: responses };
    if (typeof result.requestState === "string") params.requestState = result.requestState;
    else delete params.requestState;
    await this.resend(original, this.modernMeta(params));
  }

  /** -32020 on a tools/call: the tool's x-mcp-header parameters changed; read tools/list again, retry once. */
  private async retryAfterToolsList(original: Request): Promise<void> {
    this.retried.add(original.id);
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const base = cursor ? { cursor } : {};
      const r = await this.call("tools/list", this.clientEra === "legacy" ? this.modernMeta(base) : { ...base, _meta: (original.params as { _meta?: unknown } | undefined)?._meta });
      if (!("result" in r)) break;
      checkTools(r.result, this.toolParams, () => {});
      cursor = (r.result as { nextCursor?: unknown }).nextCursor as string | undefined;
      if (typeof cursor !== "string") break;
    }
    await this.resend(original, original.params);
  }

  /**
   * A client's notifications/cancelled toward a 2026-07-28 HTTP server: there, closing the request's
   * answer stream is the cancellation, and the notification is neither required nor expected
   * (basic/patterns/cancellation). Its retries under other ids are closed too.
   */
  private cancelUpstream(m: JSONRPCMessage): void {
    const id = (m.params as { requestId?: unknown } | undefined)?.requestId;
    if (typeof id !== "string" && typeof id !== "number") return; // malformed: ignored, as the spec says
    const ids = [id, ...[...this.alias].filter(([, c]) => c === id).map(([u]) => u)];
    let closed = false;
    for (const u of ids) closed = (this.up.cancel?.(u) ?? false) || closed;
    if (!closed && !this.owed.has(id)) return; // already answered, or unknown: nothing to cancel
    // A closed stream brings nothing more; a request not sent yet may still be answered: drop that answer.
    if (!closed) this.cancelled.add(id);
    this.owed.delete(id);
    this.originals.delete(id);
  }

  // ── A 2026-07-28 client at a legacy server ──────────────────────────────────────────────────

  private async modernToLegacy(m: JSONRPCMessage): Promise<void> {
    if (!isRequest(m)) {
      const target = (m.params as { requestId?: unknown } | undefined)?.requestId;
      if (m.method === "notifications/cancelled" && (typeof target === "string" || typeof target === "number") && this.subscriptions.has(target)) return this.unlisten(target);
      return this.sendUp({ ...m, ...(m.params === undefined ? {} : { params: legacyParams(m.params) }) });
    }
    const meta = ((m.params as { _meta?: Record<string, unknown> } | undefined)?._meta ?? {}) as Record<string, unknown>;
    const requested = meta[META_PROTOCOL_VERSION];
    if (typeof requested === "string" && !MODERN_VERSIONS.includes(requested)) {
      this.owed.delete(m.id);
      return this.replyError(m.id, UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version", { supported: MODERN_VERSIONS, requested });
    }
    const init = await this.handshake(meta[META_CLIENT_CAPABILITIES], meta[META_CLIENT_INFO]);
    if (m.method === "server/discover") {
      this.owed.delete(m.id);
      return this.reply(m.id, discoverFromInitialize(init));
    }
    if (m.method === "subscriptions/listen") return this.listen(m, init);
    const state = (m.params as { requestState?: unknown } | undefined)?.requestState;
    if (typeof state === "string") return this.retryWithInput(m, state);
    if (INPUT_METHODS.has(m.method)) this.hold(m, meta[META_CLIENT_CAPABILITIES]);
    // The per-request log level becomes the legacy session's level, when the server logs at all.
    const level = meta[META_LOG_LEVEL];
    if (typeof level === "string" && level !== this.upstreamLevel && (init.capabilities as Record<string, unknown> | undefined)?.logging) {
      this.upstreamLevel = level;
      await this.call("logging/setLevel", { level });
    }
    return this.sendUp({ ...m, params: legacyParams(m.params) });
  }

  /** A legacy server's handshake, done once for a modern client. */
  private handshake(capabilities: unknown, info: unknown): Promise<Record<string, unknown>> {
    return (this.legacyInit ??= (async () => {
      const r = await this.call("initialize", { protocolVersion: LEGACY_VERSIONS[0], capabilities: capabilities ?? {}, clientInfo: info ?? { name: "mcp-auth-proxy", version: "0" } });
      if (!("result" in r)) throw new McpAuthError(`the MCP server refused the initialize handshake: ${short(JSON.stringify(r.error), 300)}`);
      const result = r.result as Record<string, unknown>;
      if (typeof result.protocolVersion === "string") this.up.setProtocolVersion?.(result.protocolVersion);
      await this.sendUp({ jsonrpc: "2.0", method: "notifications/initialized" });
      return result;
    })());
  }

  /** A request that may need input: the server's requests made while serving it are held for the client (see Held). */
  private hold(m: Request, caps: unknown): void {
    const state = randomUUID();
    this.held.set(m.id, { waiting: m.id, method: m.method, caps: caps && typeof caps === "object" ? (caps as Record<string, unknown>) : {}, queued: [], asked: new Map(), state });
    this.heldStates.set(state, m.id);
  }

  /**
   * A legacy server's own request (elicitation, sampling, roots, ping): a modern client takes them
   * only as the input_required result of its own tools/call, resources/read or prompts/get.
   */
  private serverRequest(m: Request, related?: JSONRPCMessage): void {
    this.trace?.("upstream >", m);
    const h = related?.id === undefined ? undefined : this.held.get(related.id);
    const capability = INPUT_CAPABILITY[m.method];
    if (h && capability && h.caps[capability]) {
      h.queued.push(m);
      return this.askInput(h);
    }
    const why = !capability
      ? `mcp-auth proxy does not carry ${m.method} to it`
      : h
        ? `the client did not declare the ${capability} capability`
        : `2026-07-28 carries ${m.method} only inside the answer to a tools/call, resources/read or prompts/get, and this request came outside one (docs/mcp-2026-07-28.md)`;
    const answer: JSONRPCMessage = m.method === "ping" ? { jsonrpc: "2.0", id: m.id, result: {} } : { jsonrpc: "2.0", id: m.id, error: { code: -32601, message: `the MCP client speaks ${MODERN_VERSION}; ${why}` } };
    void this.sendUp(answer).catch((e) => this.report(e));
  }

  private askInput(h: Held): void {
    if (h.waiting === undefined || !h.queued.length) return;
    const inputRequests: Record<string, unknown> = {};
    for (const r of h.queued.splice(0)) {
      const key = `input-${++this.seq}`;
      h.asked.set(key, r.id);
      inputRequests[key] = { method: r.method, ...(r.params === undefined ? {} : { params: r.params }) };
    }
    const id = h.waiting;
    h.waiting = undefined;
    this.owed.delete(id);
    // Straight down: through toClient it would be taken for the held request's own answer.
    this.sendDown({ jsonrpc: "2.0", id, result: { resultType: "input_required", inputRequests, requestState: h.state } });
  }

  /** The client's retry of a held request: its inputResponses answer the server's requests. */
  private async retryWithInput(m: Request, state: string): Promise<void> {
    const upId = this.heldStates.get(state);
    const h = upId === undefined ? undefined : this.held.get(upId);
    if (!h || h.waiting !== undefined || h.method !== m.method) {
      this.owed.delete(m.id);
      return this.replyError(m.id, -32602, "Invalid params: requestState is not one mcp-auth proxy issued for this request, or it was already used");
    }
    const responses = ((m.params as { inputResponses?: unknown }).inputResponses ?? {}) as Record<string, unknown>;
    h.waiting = m.id;
    const answers = [...h.asked].map(([key, sid]): JSONRPCMessage => {
      const r = responses[key];
      return r && typeof r === "object" && !Array.isArray(r) ? { jsonrpc: "2.0", id: sid, result: r } : { jsonrpc: "2.0", id: sid, error: { code: PROXY_ERROR, message: "mcp-auth: the MCP client retried its request without an answer to this one" } };
    });
    h.asked.clear();
    for (const a of answers) await this.sendUp(a);
    if (h.result) return this.toClient(h.result);
    this.askInput(h);
  }

  /**
   * subscriptions/listen from a modern client at a legacy server (basic/patterns/subscriptions): the
   * legacy server announces list changes on its own (capability `listChanged`, on its GET stream) and
   * resource updates after resources/subscribe. The proxy acknowledges the part of the filter the
   * server can honour, subscribes upstream to the resources asked for, and hands each change
   * notification to the subscriptions that asked for it, tagged with their id. The request stays open
   * until the client cancels it (notifications/cancelled), which unsubscribes upstream.
   */
  private async listen(m: Request, init: Record<string, unknown>): Promise<void> {
    this.owed.delete(m.id); // a stream, not an answer owed before the client goes away
    const asked = ((m.params as { notifications?: unknown } | undefined)?.notifications ?? {}) as Record<string, unknown>;
    const caps = (init.capabilities ?? {}) as Capabilities;
    const filter: Record<string, boolean> = {};
    for (const [key, cap] of Object.values(LISTEN_FILTER)) if (cap !== "subscribe" && asked[key] === true && caps[cap]?.listChanged) filter[key] = true;
    const uris: string[] = [];
    if (Array.isArray(asked.resourceSubscriptions) && caps.resources?.subscribe) {
      for (const uri of new Set(asked.resourceSubscriptions.filter((u): u is string => typeof u === "string" && u.length <= 4096).slice(0, 100))) {
        if (!this.subscribedUris.has(uri)) {
          const r = await this.call("resources/subscribe", { uri });
          if (!("result" in r)) continue; // not honoured: left out of the acknowledgment
        }
        this.subscribedUris.set(uri, (this.subscribedUris.get(uri) ?? 0) + 1);
        uris.push(uri);
      }
    }
    this.subscriptions.set(m.id, { filter, uris });
    const notifications: Record<string, unknown> = { ...filter, ...(Array.isArray(asked.resourceSubscriptions) ? { resourceSubscriptions: uris } : {}) };
    const ack: JSONRPCMessage = { jsonrpc: "2.0", method: "notifications/subscriptions/acknowledged", params: { _meta: { [META_SUBSCRIPTION_ID]: m.id }, notifications } };
    this.trace?.("stdio <", ack);
    await this.down.send(ack);
  }

  private async unlisten(id: Id): Promise<void> {
    const s = this.subscriptions.get(id)!;
    this.subscriptions.delete(id);
    for (const uri of s.uris) {
      const n = (this.subscribedUris.get(uri) ?? 1) - 1;
      if (n > 0) this.subscribedUris.set(uri, n);
      else {
        this.subscribedUris.delete(uri);
        await this.call("resources/unsubscribe", { uri }).catch((e) => this.report(e));
      }
    }
  }

  private notifySubscribers(m: JSONRPCMessage): void {
    const [key] = LISTEN_FILTER[m.method!]!;
    const uri = (m.params as { uri?: unknown } | undefined)?.uri;
    for (const [id, s] of this.subscriptions) {
      if (key === "resourceSubscriptions" ? !(typeof uri === "string" && s.uris.includes(uri)) : !s.filter[key]) continue;
      const params = (m.params ?? {}) as Record<string, unknown>;
      this.sendDown({ jsonrpc: "2.0", method: m.method, params: { ...params, _meta: { ...((params._meta ?? {}) as object), [META_SUBSCRIPTION_ID]: id } } });
    }
  }
}

export function short(s: string, max = 2000): string {
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
