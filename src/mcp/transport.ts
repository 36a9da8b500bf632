import { answerText, headerOf, type Relay, type RelayAnswer } from "../oauth/http.js";

/**
 * The transports behind `mcp-auth proxy`: newline-delimited JSON-RPC on stdio, and MCP's two HTTP
 * transports (Streamable HTTP, the older HTTP+SSE) over a relay (src/oauth/http.ts createRelay:
 * node:http(s) keep-alive, no WHATWG Request/Headers/Response or web streams, whose per-request
 * garbage and CPU would dominate a proxy that runs for hours). They follow the MCP SDK's client
 * transports (@modelcontextprotocol/sdk client/streamableHttp.js and client/sse.js: same requests,
 * headers, session handling and errors) but do not use them: those validate every message with the
 * SDK's zod schemas, and loading those schemas alone costs a long-lived proxy ~20 MB of its 80 MB RSS
 * budget. The bridge only relays messages, so checking the JSON-RPC envelope is all it needs; the
 * client and the server validate the contents. Only the SDK's types are used (erased at build).
 */
export type JSONRPCMessage = {
  jsonrpc: "2.0";
  id?: string | number;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: unknown;
};

export interface Transport {
  start(): Promise<void>;
  send(m: JSONRPCMessage): Promise<void>;
  close(): Promise<void>;
  /** `related`: the request whose POST stream carried `m` (a server's request made while serving it). */
  onmessage?: (m: JSONRPCMessage, related?: JSONRPCMessage) => void;
  /** Stream trouble outside any send (a failed send rejects instead). */
  onerror?: (e: Error) => void;
  /**
   * A request sent without error whose answer will never come: its stream broke a cap or ended first.
   * The proxy answers it with a JSON-RPC error, so the client is not left waiting.
   */
  onrequesterror?: (request: JSONRPCMessage, e: Error) => void;
  setProtocolVersion?(v: string): void;
  terminateSession?(): Promise<void>;
  /** Cancels request `id` by closing its answer's stream (2026-07-28 HTTP); false when none is open. */
  cancel?(id: string | number): boolean;
}

/** An HTTP status the server answered with (-1: an answer of the wrong kind), as the SDK's StreamableHTTPError. */
export class HttpTransportError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(`Streamable HTTP error: ${message}`);
  }
}

/** A JSON-RPC 2.0 request, notification or response; the contents are the endpoints' business. */
export function asMessage(v: unknown): JSONRPCMessage {
  const m = v as JSONRPCMessage;
  const idOk = (id: unknown) => typeof id === "string" || (typeof id === "number" && Number.isInteger(id));
  const ok =
    typeof m === "object" &&
    m !== null &&
    !Array.isArray(m) &&
    m.jsonrpc === "2.0" &&
    (typeof m.method === "string" ? m.id === undefined || idOk(m.id) : ("result" in m || "error" in m) && (idOk(m.id) || ("error" in m && (m.id === undefined || m.id === null))));
  if (!ok) throw new Error(`not a JSON-RPC 2.0 message: ${JSON.stringify(v)?.slice(0, 200)}`);
  return m;
}

export const isRequest = (m: JSONRPCMessage): m is JSONRPCMessage & { id: string | number; method: string } => typeof m.method === "string" && m.id !== undefined;

/** The MCP client's side: one JSON-RPC message per line, in and out. */
export class StdioTransport implements Transport {
  onmessage?: (m: JSONRPCMessage) => void;
  onerror?: (e: Error) => void;
  private buf = "";
  private readonly decoder = new TextDecoder();
  private readonly onData = (chunk: Buffer | string) => {
    // Streaming decode (a character may be split between chunks); only the new text is searched for line ends.
    const text = typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    let from = 0;
    let nl: number;
    while ((nl = text.indexOf("\n", from)) !== -1) {
      const line = (this.buf + text.slice(from, nl)).replace(/\r$/, "");
      this.buf = "";
      from = nl + 1;
      let m: JSONRPCMessage;
      try {
        m = asMessage(JSON.parse(line));
      } catch (e) {
        this.onerror?.(e as Error);
        continue;
      }
      this.onmessage?.(m);
    }
    this.buf += text.slice(from);
  };
  private readonly onError = (e: Error) => this.onerror?.(e);

  constructor(
    private readonly input: NodeJS.ReadableStream,
    private readonly output: NodeJS.WritableStream,
  ) {}

  async start(): Promise<void> {
    this.input.on("data", this.onData);
    this.input.on("error", this.onError);
  }

  send(m: JSONRPCMessage): Promise<void> {
    return new Promise((resolve) => (this.output.write(`${JSON.stringify(m)}\n`) ? resolve() : this.output.once("drain", resolve)));
  }

  async close(): Promise<void> {
    this.input.off("data", this.onData);
    this.input.off("error", this.onError);
    this.buf = "";
  }
}

/**
 * The MCP client's side in memory (serve's era bridges): `deliver` hands the session a message as the
 * stdio transport would (an envelope that is not JSON-RPC goes to onerror), and what the session sends
 * goes to `onsend`, as objects: no JSON text, buffer or stream per message.
 */
export class MemoryTransport implements Transport {
  onmessage?: (m: JSONRPCMessage) => void;
  onerror?: (e: Error) => void;

  constructor(private readonly onsend: (m: JSONRPCMessage) => void) {}

  async start(): Promise<void> {}

  async send(m: JSONRPCMessage): Promise<void> {
    this.onsend(m);
  }

  async close(): Promise<void> {}

  deliver(v: unknown): void {
    let m: JSONRPCMessage;
    try {
      m = asMessage(v);
    } catch (e) {
      return void this.onerror?.(e as Error);
    }
    this.onmessage?.(m);
  }
}

interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * What the event-stream reader holds at most. An MCP message is one event, nearly always one `data:`
 * line: 4 MB is far above what a tool result carries, and what a server sends past it would have to be
 * held whole, decoded, parsed and written again, several copies inside the proxy's 80 MB budget. A
 * line or an event over its cap ends that stream (the request it answers gets a JSON-RPC error).
 */
export const MAX_SSE_LINE_BYTES = 4 * 1024 * 1024;
export const MAX_SSE_EVENT_BYTES = 4 * 1024 * 1024;

/** A server sent a line or an event over the reader's caps, or a stream ended without its answer. */
export class StreamError extends Error {}

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
// One decoder per line; a BOM is stripped once, at the start of the stream, as the standard says.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * The text/event-stream format of the HTML standard, parsed from bytes as they arrive. Each byte is
 * looked at once: only the new chunk is searched for line ends, and a partial line is kept as a list
 * of chunks (joined once, when it ends), so a line spread over many chunks costs linear time, and what
 * is held never exceeds the caps (`buffered()` says how much that is).
 * Written here rather than taken from eventsource-parser: its 3.x line splitter searches for `\r` again
 * from every line start, and 4.x needs Node 22.12.
 */
export function sseParser(onEvent: (e: SseEvent) => void, onRetry?: (ms: number) => void, caps = { line: MAX_SSE_LINE_BYTES, event: MAX_SSE_EVENT_BYTES }) {
  let parts: Uint8Array[] = [];
  let partBytes = 0;
  let afterCr = false;
  let first = true;
  let event = "";
  let data: string[] = [];
  let dataBytes = 0;
  let id: string | undefined;

  const tooLong = (what: string, cap: number) => new StreamError(`the MCP server sent an event-stream ${what} over ${cap / 1024 / 1024} MB`);

  const line = (raw: Uint8Array) => {
    let bytes = raw;
    if (first) {
      first = false;
      if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    }
    if (bytes.length === 0) {
      if (data.length || id !== undefined) onEvent({ event: event || "message", data: data.join("\n"), id });
      event = "";
      data = [];
      dataBytes = 0;
      id = undefined;
      return;
    }
    if (bytes[0] === COLON) return; // a comment (keep-alive)
    const text = utf8.decode(bytes);
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    const value = colon === -1 ? "" : text.slice(colon + (text[colon + 1] === " " ? 2 : 1));
    if (field === "data") {
      dataBytes += bytes.length + 1;
      if (dataBytes > caps.event) throw tooLong("event", caps.event);
      data.push(value);
    } else if (field === "event") event = value;
    else if (field === "id" && !value.includes("\0")) id = value;
    else if (field === "retry" && /^\d+$/.test(value)) onRetry?.(Number(value));
  };

  return {
    /** Bytes held: the partial line and the event's data so far. */
    buffered: () => partBytes + dataBytes,
    feed(chunk: Uint8Array): void {
      let i = 0;
      // A \r that ended the last chunk may be the first half of \r\n.
      if (afterCr && chunk.length) {
        afterCr = false;
        if (chunk[0] === LF) i = 1;
      }
      // The next \n and \r at or after i, each searched for again only once passed: linear per chunk.
      let lf = -2;
      let cr = -2;
      while (i < chunk.length) {
        if (lf !== -1 && lf < i) lf = chunk.indexOf(LF, i);
        if (cr !== -1 && cr < i) cr = chunk.indexOf(CR, i);
        const eol = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
        if (eol === -1) {
          partBytes += chunk.length - i;
          if (partBytes > caps.line) throw tooLong("line", caps.line);
          parts.push(chunk.slice(i)); // a copy: the rest of the chunk is not kept alive by it
          return;
        }
        if (partBytes + eol - i > caps.line) throw tooLong("line", caps.line);
        const rest = chunk.subarray(i, eol);
        const whole = parts.length ? Buffer.concat([...parts, rest]) : rest;
        parts = [];
        partBytes = 0;
        line(whole);
        i = eol + 1;
        if (chunk[eol] === CR) {
          if (i === chunk.length) afterCr = true;
          else if (chunk[i] === LF) i++;
        }
      }
    },
  };
}

/** Reads an answer's body as server-sent events until it ends; a cap exceeded discards the body and throws. */
async function readSse(answer: RelayAnswer, onEvent: (e: SseEvent) => void, onRetry?: (ms: number) => void): Promise<void> {
  const parser = sseParser(onEvent, onRetry);
  // An unfinished last event is dropped, as the standard says.
  for await (const chunk of answer.body) {
    try {
      parser.feed(chunk);
    } catch (e) {
      answer.discard();
      throw e;
    }
  }
}

/** The JSON-RPC error answering request `id` in a body, if that is what the body is. */
function jsonRpcErrorFor(text: string, id: string | number): JSONRPCMessage | undefined {
  try {
    const m = asMessage(JSON.parse(text));
    if ("error" in m && (m.id === id || m.id === undefined || m.id === null)) return { jsonrpc: "2.0", id, error: m.error };
  } catch {
    /* not a JSON-RPC answer */
  }
  return undefined;
}

const mediaType = (h: string | undefined) => (h ?? "").split(";")[0]!.trim().toLowerCase();
const ok = (a: RelayAnswer) => a.status >= 200 && a.status < 300;

/** Parses the JSON-RPC messages of one SSE event or JSON body and hands each on. */
function deliver(data: unknown, t: Transport) {
  for (const m of Array.isArray(data) ? data : [data]) t.onmessage?.(asMessage(m));
}

/**
 * MCP Streamable HTTP (client side): each message is POSTed; the answer is JSON or an event stream;
 * the session id and protocol version ride along as headers; after `notifications/initialized` a GET
 * stream carries what the server sends on its own (405: it has none). A GET stream that ends or
 * breaks is reopened (Last-Event-ID resumes it), twice at most in a row, as the SDK does.
 */
export class StreamableHttpTransport implements Transport {
  onmessage?: (m: JSONRPCMessage, related?: JSONRPCMessage) => void;
  onerror?: (e: Error) => void;
  onrequesterror?: (request: JSONRPCMessage, e: Error) => void;
  private sessionId?: string;
  private protocolVersion?: string;
  private readonly abort = new AbortController();
  private retryMs = 1000;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  /** Modern requests whose answers are still to come, each with its own abort: closing it cancels the request. */
  private readonly inflight = new Map<string | number, AbortController>();
  private readonly cancelled = new Set<string | number>();

  /**
   * `modern`: the 2026-07-28 shape (docs/mcp-2026-07-28.md): no session id, no GET stream, no
   * resumption; each POST carries the request-metadata headers `modern` computes; a 4xx whose body is
   * the JSON-RPC error for the request (-32022, -32020, -32601, …) is that request's answer.
   */
  constructor(
    private readonly url: URL,
    private readonly relay: Relay,
    private readonly modern?: (m: JSONRPCMessage) => Record<string, string>,
  ) {}

  async start(): Promise<void> {}

  setProtocolVersion(v: string): void {
    this.protocolVersion = v;
  }

  private headers(): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.sessionId && !this.modern) h["mcp-session-id"] = this.sessionId;
    if (this.protocolVersion) h["mcp-protocol-version"] = this.protocolVersion;
    return h;
  }

  async send(m: JSONRPCMessage): Promise<void> {
    const headers = this.headers();
    if (this.modern) for (const [k, v] of Object.entries(this.modern(m))) headers[k.toLowerCase()] = v;
    headers["content-type"] = "application/json";
    headers.accept = "application/json, text/event-stream";
    // 2026-07-28: closing a request's answer stream is how a client cancels it (basic/patterns/cancellation).
    const own = this.modern && isRequest(m) ? new AbortController() : undefined;
    if (own) {
      this.cancelled.delete(m.id!);
      this.inflight.set(m.id!, own);
      if (this.abort.signal.aborted) own.abort(); // closed already
    }
    try {
      // Its own signal only (close() aborts each): AbortSignal.any would cost every request a composite signal.
      return await this.post(m, headers, own ? own.signal : this.abort.signal);
    } catch (e) {
      if (own && this.cancelled.delete(m.id!)) return;
      throw e;
    } finally {
      if (own && this.inflight.get(m.id!) === own && !this.streaming.has(m.id!)) this.inflight.delete(m.id!);
    }
  }

  /** Requests whose answer comes on an event stream still being read. */
  private readonly streaming = new Set<string | number>();

  cancel(id: string | number): boolean {
    const own = this.inflight.get(id);
    if (!own) return false;
    this.inflight.delete(id);
    this.streaming.delete(id);
    this.cancelled.add(id);
    own.abort();
    return true;
  }

  private async post(m: JSONRPCMessage, headers: Record<string, string>, signal: AbortSignal): Promise<void> {
    const res = await this.relay(this.url, { method: "POST", headers, body: JSON.stringify(m), signal });
    const sid = headerOf(res.headers, "mcp-session-id");
    if (sid && !this.modern) this.sessionId = sid;
    if (!ok(res)) {
      const text = await answerText(res, { url: this.url }).catch(() => null);
      if (this.modern && isRequest(m) && res.status >= 400 && res.status < 500 && text) {
        const answer = jsonRpcErrorFor(text.slice(0, MAX_SSE_EVENT_BYTES), m.id);
        if (answer) return void this.onmessage?.(answer);
      }
      throw new HttpTransportError(res.status, `Error POSTing to endpoint: ${text}`);
    }
    if (res.status === 202 || !isRequest(m)) {
      res.discard();
      if (res.status === 202 && m.method === "notifications/initialized") this.openStream().catch(() => {});
      return;
    }
    const type = mediaType(headerOf(res.headers, "content-type"));
    if (type === "application/json") return deliver(JSON.parse(await answerText(res, { url: this.url })), this);
    if (type === "text/event-stream") {
      if (this.inflight.has(m.id!)) this.streaming.add(m.id!);
      return void this.readStream(res, false, 0, m);
    }
    res.discard();
    throw new HttpTransportError(-1, `Unexpected content type: ${headerOf(res.headers, "content-type") ?? null}`);
  }

  /** The GET stream for what the server sends unasked, or to resume a POST stream that still owes `request` its answer. */
  private async openStream(lastEventId?: string, attempt = 0, request?: JSONRPCMessage): Promise<void> {
    try {
      const headers = this.headers();
      headers.accept = "text/event-stream";
      if (lastEventId) headers["last-event-id"] = lastEventId;
      const res = await this.relay(this.url, { method: "GET", headers, signal: this.abort.signal });
      if (!ok(res)) {
        res.discard();
        if (res.status === 405) {
          if (request) this.onrequesterror?.(request, new StreamError("the MCP server's event stream ended before its answer, and the server offers no stream to resume it on"));
          return;
        }
        throw new HttpTransportError(res.status, `Failed to open SSE stream: ${res.statusText ?? ""}`);
      }
      void this.readStream(res, true, attempt, request);
    } catch (e) {
      if (request) this.onrequesterror?.(request, e as Error);
      else this.onerror?.(e as Error);
      throw e;
    }
  }

  /**
   * One event stream: a POST's answers (to `request`), or a GET stream. A stream that ends before its
   * answer after announcing an event id is resumed on a GET, as the spec allows; one that broke the
   * reader's caps is not (it would send the same again). A request whose answer can no longer come is
   * handed to onrequesterror.
   */
  private async readStream(answer: RelayAnswer, isGet: boolean, attempt = 0, request?: JSONRPCMessage): Promise<void> {
    let lastId: string | undefined;
    let answered = false;
    let failed: Error | undefined;
    const giveUp = (e: Error) => (request && !answered ? this.onrequesterror?.(request, e) : this.onerror?.(e));
    try {
      await readSse(
        answer,
        (e) => {
          if (e.id) lastId = e.id;
          if (!e.data || e.event !== "message") return;
          try {
            const m = asMessage(JSON.parse(e.data));
            if ("result" in m || "error" in m) answered ||= !request || m.id === request.id;
            this.onmessage?.(m, request);
          } catch (err) {
            this.onerror?.(err as Error);
          }
        },
        (ms) => (this.retryMs = ms),
      );
    } catch (e) {
      if (this.abort.signal.aborted) return;
      if (request?.id !== undefined && this.cancelled.delete(request.id)) return;
      if (e instanceof StreamError) return void giveUp(e);
      failed = new Error(`SSE stream disconnected: ${(e as Error)?.message ?? e}`);
      if (!request) this.onerror?.(failed);
    }
    if (request?.id !== undefined && this.streaming.delete(request.id)) this.inflight.delete(request.id);
    if (this.abort.signal.aborted || answered) return;
    if (!(isGet || lastId) || this.modern) {
      if (request) giveUp(failed ?? new StreamError("the MCP server's event stream ended before its answer"));
      return;
    }
    if (attempt >= 2) return void giveUp(new Error("Maximum reconnection attempts (2) exceeded."));
    this.reconnectTimer = setTimeout(
      () => this.openStream(lastId, attempt + 1, request).catch(() => {}),
      isGet && attempt === 0 ? 0 : this.retryMs * 1.5 ** attempt,
    );
    this.reconnectTimer.unref?.();
  }

  /** DELETE the session (405: the server keeps sessions its own way). */
  async terminateSession(): Promise<void> {
    if (!this.sessionId) return;
    const res = await this.relay(this.url, { method: "DELETE", headers: this.headers(), signal: this.abort.signal });
    res.discard();
    if (!ok(res) && res.status !== 405) throw new HttpTransportError(res.status, `Failed to terminate session: ${res.statusText ?? ""}`);
    this.sessionId = undefined;
  }

  async close(): Promise<void> {
    clearTimeout(this.reconnectTimer);
    this.abort.abort();
    for (const own of this.inflight.values()) own.abort();
    this.inflight.clear();
  }
}

/**
 * MCP's HTTP+SSE transport (protocol 2024-11-05): a GET event stream whose first `endpoint` event
 * names the URL (same origin) to POST messages to; every answer comes on the stream.
 */
export class SseTransport implements Transport {
  onmessage?: (m: JSONRPCMessage) => void;
  onerror?: (e: Error) => void;
  onrequesterror?: (request: JSONRPCMessage, e: Error) => void;
  private endpoint?: URL;
  /** Requests whose answers are still to come on the stream; failed together when it ends. */
  private readonly owed = new Map<string | number, JSONRPCMessage>();
  /** Why the stream is gone: every later request fails at once rather than waiting forever. */
  private ended?: Error;
  private protocolVersion?: string;
  private readonly abort = new AbortController();

  constructor(
    private readonly url: URL,
    private readonly relay: Relay,
  ) {}

  setProtocolVersion(v: string): void {
    this.protocolVersion = v;
  }

  private headers(): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.protocolVersion) h["mcp-protocol-version"] = this.protocolVersion;
    return h;
  }

  async start(): Promise<void> {
    const headers = this.headers();
    headers.accept = "text/event-stream";
    headers["cache-control"] = "no-store";
    const res = await this.relay(this.url, { method: "GET", headers, signal: this.abort.signal });
    if (!ok(res)) {
      res.discard();
      throw new Error(`SSE error: Non-200 status code (${res.status})`);
    }
    if (mediaType(headerOf(res.headers, "content-type")) !== "text/event-stream") {
      res.discard();
      throw new Error(`SSE error: Invalid content type, expected "text/event-stream" (got ${headerOf(res.headers, "content-type") ?? null})`);
    }
    await new Promise<void>((resolve, reject) => {
      readSse(res, (e) => {
        if (e.event === "endpoint") {
          try {
            const endpoint = new URL(e.data, this.url);
            if (endpoint.origin !== this.url.origin) throw new Error(`Endpoint origin does not match connection origin: ${endpoint.origin}`);
            this.endpoint = endpoint;
            resolve();
          } catch (err) {
            reject(err);
            void this.close();
          }
        } else if (e.event === "message") {
          try {
            const data: unknown = JSON.parse(e.data);
            for (const m of Array.isArray(data) ? data : [data]) {
              const msg = asMessage(m);
              if (("result" in msg || "error" in msg) && msg.id != null) this.owed.delete(msg.id);
              this.onmessage?.(msg);
            }
          } catch (err) {
            this.onerror?.(err as Error);
          }
        }
      }).then(
        () => {
          reject(new Error("SSE stream ended before the endpoint event"));
          if (this.endpoint) this.streamEnded(new StreamError("the MCP server's HTTP+SSE stream ended"));
        },
        (err) => {
          reject(err);
          if (this.endpoint) this.streamEnded(err instanceof StreamError ? err : new Error(`SSE stream disconnected: ${(err as Error)?.message ?? err}`));
        },
      );
    });
  }

  /** The one stream is gone: the answers it owed will never come. */
  private streamEnded(e: Error): void {
    if (this.abort.signal.aborted) return;
    this.ended = e;
    const owed = [...this.owed.values()];
    this.owed.clear();
    if (!owed.length) this.onerror?.(e);
    for (const m of owed) this.onrequesterror?.(m, e);
  }

  async send(m: JSONRPCMessage): Promise<void> {
    if (!this.endpoint) throw new Error("Not connected");
    if (this.ended) throw this.ended;
    const headers = this.headers();
    headers["content-type"] = "application/json";
    // Owed before the POST: the answer may come on the stream before the POST's own response.
    if (isRequest(m)) this.owed.set(m.id, m);
    try {
      const res = await this.relay(this.endpoint, { method: "POST", headers, body: JSON.stringify(m), signal: this.abort.signal });
      if (!ok(res)) {
        const text = await answerText(res, { url: this.endpoint }).catch(() => null);
        throw new Error(`Error POSTing to endpoint (HTTP ${res.status}): ${text}`);
      }
      res.discard();
    } catch (e) {
      // Already answered with the stream's end: one error per request is enough.
      if (isRequest(m) && !this.owed.delete(m.id)) return;
      throw e;
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
  }
}
