import type { Fetch } from "../oauth/http.js";

/**
 * The transports behind `mcp-auth proxy`: newline-delimited JSON-RPC on stdio, and MCP's two HTTP
 * transports (Streamable HTTP, the older HTTP+SSE) over a fetch. They follow the MCP SDK's client
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
  onmessage?: (m: JSONRPCMessage) => void;
  /** Stream trouble outside any send (a failed send rejects instead). */
  onerror?: (e: Error) => void;
  setProtocolVersion?(v: string): void;
  terminateSession?(): Promise<void>;
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
  private readonly onData = (chunk: Buffer | string) => {
    this.buf += typeof chunk === "string" ? chunk : chunk.toString("utf8");
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) !== -1) {
      const line = this.buf.slice(0, nl).replace(/\r$/, "");
      this.buf = this.buf.slice(nl + 1);
      let m: JSONRPCMessage;
      try {
        m = asMessage(JSON.parse(line));
      } catch (e) {
        this.onerror?.(e as Error);
        continue;
      }
      this.onmessage?.(m);
    }
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

interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Server-sent events from a response body (the text/event-stream format of the HTML standard). */
async function readSse(body: ReadableStream<Uint8Array>, onEvent: (e: SseEvent) => void, onRetry?: (ms: number) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let event = "";
  let data: string[] = [];
  let id: string | undefined;
  const line = (l: string) => {
    if (l === "") {
      if (data.length || id !== undefined) onEvent({ event: event || "message", data: data.join("\n"), id });
      event = "";
      data = [];
      id = undefined;
      return;
    }
    if (l.startsWith(":")) return;
    const colon = l.indexOf(":");
    const field = colon === -1 ? l : l.slice(0, colon);
    const value = colon === -1 ? "" : l.slice(colon + (l[colon + 1] === " " ? 2 : 1));
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id" && !value.includes("\0")) id = value;
    else if (field === "retry" && /^\d+$/.test(value)) onRetry?.(Number(value));
  };
  for (;;) {
    const { value, done } = await reader.read();
    buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
    // A lone \r may end a line too; one at the very end waits for the next chunk (it may be \r\n).
    let m: RegExpExecArray | null;
    const eol = /\r\n|\r(?=[^\n])|\n/g;
    let from = 0;
    while ((m = eol.exec(buf))) {
      line(buf.slice(from, m.index));
      from = m.index + m[0].length;
    }
    buf = buf.slice(from);
    if (done) return;
  }
}

const mediaType = (h: string | null) => (h ?? "").split(";")[0]!.trim().toLowerCase();

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
  onmessage?: (m: JSONRPCMessage) => void;
  onerror?: (e: Error) => void;
  private sessionId?: string;
  private protocolVersion?: string;
  private readonly abort = new AbortController();
  private retryMs = 1000;
  private reconnectTimer?: ReturnType<typeof setTimeout>;

  constructor(
    private readonly url: URL,
    private readonly fetch: Fetch,
  ) {}

  async start(): Promise<void> {}

  setProtocolVersion(v: string): void {
    this.protocolVersion = v;
  }

  private headers(): Headers {
    const h = new Headers();
    if (this.sessionId) h.set("mcp-session-id", this.sessionId);
    if (this.protocolVersion) h.set("mcp-protocol-version", this.protocolVersion);
    return h;
  }

  async send(m: JSONRPCMessage): Promise<void> {
    const headers = this.headers();
    headers.set("content-type", "application/json");
    headers.set("accept", "application/json, text/event-stream");
    const res = await this.fetch(this.url, { method: "POST", headers, body: JSON.stringify(m), signal: this.abort.signal });
    const sid = res.headers.get("mcp-session-id");
    if (sid) this.sessionId = sid;
    if (!res.ok) {
      const text = await res.text().catch(() => null);
      throw new HttpTransportError(res.status, `Error POSTing to endpoint: ${text}`);
    }
    if (res.status === 202 || !isRequest(m)) {
      await res.body?.cancel().catch(() => {});
      if (res.status === 202 && m.method === "notifications/initialized") this.openStream().catch(() => {});
      return;
    }
    const type = mediaType(res.headers.get("content-type"));
    if (type === "application/json") return deliver(await res.json(), this);
    if (type === "text/event-stream" && res.body) return void this.readStream(res.body, false);
    await res.body?.cancel().catch(() => {});
    throw new HttpTransportError(-1, `Unexpected content type: ${res.headers.get("content-type")}`);
  }

  /** The GET stream for what the server sends unasked. */
  private async openStream(lastEventId?: string, attempt = 0): Promise<void> {
    try {
      const headers = this.headers();
      headers.set("accept", "text/event-stream");
      if (lastEventId) headers.set("last-event-id", lastEventId);
      const res = await this.fetch(this.url, { method: "GET", headers, signal: this.abort.signal });
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        if (res.status === 405) return;
        throw new HttpTransportError(res.status, `Failed to open SSE stream: ${res.statusText}`);
      }
      if (res.body) void this.readStream(res.body, true, attempt);
    } catch (e) {
      this.onerror?.(e as Error);
      throw e;
    }
  }

  /**
   * One event stream: a POST's answers, or the GET stream. A POST stream that ends before its answer
   * after announcing an event id is resumed on a GET, as the spec allows.
   */
  private async readStream(body: ReadableStream<Uint8Array>, isGet: boolean, attempt = 0): Promise<void> {
    let lastId: string | undefined;
    let answered = false;
    try {
      await readSse(
        body,
        (e) => {
          if (e.id) lastId = e.id;
          if (!e.data || e.event !== "message") return;
          try {
            const m = asMessage(JSON.parse(e.data));
            if ("result" in m || "error" in m) answered = true;
            this.onmessage?.(m);
          } catch (err) {
            this.onerror?.(err as Error);
          }
        },
        (ms) => (this.retryMs = ms),
      );
    } catch (e) {
      if (this.abort.signal.aborted) return;
      this.onerror?.(new Error(`SSE stream disconnected: ${(e as Error)?.message ?? e}`));
    }
    if (this.abort.signal.aborted || answered || !(isGet || lastId)) return;
    if (attempt >= 2) return this.onerror?.(new Error("Maximum reconnection attempts (2) exceeded."));
    this.reconnectTimer = setTimeout(
      () => this.openStream(lastId, attempt + 1).catch(() => {}),
      isGet && attempt === 0 ? 0 : this.retryMs * 1.5 ** attempt,
    );
    this.reconnectTimer.unref?.();
  }

  /** DELETE the session (405: the server keeps sessions its own way). */
  async terminateSession(): Promise<void> {
    if (!this.sessionId) return;
    const res = await this.fetch(this.url, { method: "DELETE", headers: this.headers(), signal: this.abort.signal });
    await res.body?.cancel().catch(() => {});
    if (!res.ok && res.status !== 405) throw new HttpTransportError(res.status, `Failed to terminate session: ${res.statusText}`);
    this.sessionId = undefined;
  }

  async close(): Promise<void> {
    clearTimeout(this.reconnectTimer);
    this.abort.abort();
  }
}

/**
 * MCP's HTTP+SSE transport (protocol 2024-11-05): a GET event stream whose first `endpoint` event
 * names the URL (same origin) to POST messages to; every answer comes on the stream.
 */
export class SseTransport implements Transport {
  onmessage?: (m: JSONRPCMessage) => void;
  onerror?: (e: Error) => void;
  private endpoint?: URL;
  private protocolVersion?: string;
  private readonly abort = new AbortController();

  constructor(
    private readonly url: URL,
    private readonly fetch: Fetch,
  ) {}

  setProtocolVersion(v: string): void {
    this.protocolVersion = v;
  }

  private headers(): Headers {
    const h = new Headers();
    if (this.protocolVersion) h.set("mcp-protocol-version", this.protocolVersion);
    return h;
  }

  async start(): Promise<void> {
    const headers = this.headers();
    headers.set("accept", "text/event-stream");
    headers.set("cache-control", "no-store");
    const res = await this.fetch(this.url, { method: "GET", headers, signal: this.abort.signal });
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`SSE error: Non-200 status code (${res.status})`);
    }
    if (mediaType(res.headers.get("content-type")) !== "text/event-stream") {
      await res.body.cancel().catch(() => {});
      throw new Error(`SSE error: Invalid content type, expected "text/event-stream" (got ${res.headers.get("content-type")})`);
    }
    await new Promise<void>((resolve, reject) => {
      readSse(res.body!, (e) => {
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
            deliver(JSON.parse(e.data), this);
          } catch (err) {
            this.onerror?.(err as Error);
          }
        }
      }).then(
        () => {
          reject(new Error("SSE stream ended before the endpoint event"));
          if (this.endpoint && !this.abort.signal.aborted) this.onerror?.(new Error("SSE stream ended"));
        },
        (err) => {
          reject(err);
          if (this.endpoint && !this.abort.signal.aborted) this.onerror?.(new Error(`SSE stream disconnected: ${(err as Error)?.message ?? err}`));
        },
      );
    });
  }

  async send(m: JSONRPCMessage): Promise<void> {
    if (!this.endpoint) throw new Error("Not connected");
    const headers = this.headers();
    headers.set("content-type", "application/json");
    const res = await this.fetch(this.endpoint, { method: "POST", headers, body: JSON.stringify(m), signal: this.abort.signal });
    if (!res.ok) {
      const text = await res.text().catch(() => null);
      throw new Error(`Error POSTing to endpoint (HTTP ${res.status}): ${text}`);
    }
    await res.body?.cancel().catch(() => {});
  }

  async close(): Promise<void> {
    this.abort.abort();
  }
}
