import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { McpAuthError, UsageError } from "../errors.js";
import { headerOf, isLoopbackHost, redact, type Relay, type RelayAnswer, type Timers } from "../oauth/http.js";
import { probeEra } from "./era.js";
import { authorizedRelay, bearerCache, PROXY_ERROR, type ProxyOptions } from "./proxy.js";
import { clientEra, eraBridges } from "./serve-bridge.js";
import { asMessage, MAX_SSE_EVENT_BYTES } from "./transport.js";

/**
 * The loopback endpoint behind `mcp-auth serve`, for MCP clients that can only be given a URL and a
 * static header. It forwards each Streamable HTTP request (POST, the GET stream, DELETE) to the
 * profile's MCP server with a fresh token in place of the static header, and streams the answer back
 * unchanged (through a relay, not fetch: ../oauth/http.ts createRelay), so a client of the server's protocol era (docs/mcp-2026-07-28.md) speaks to it directly:
 * session ids, MCP-Protocol-Version and the 2026-07-28 request-metadata headers (Mcp-Method, Mcp-Name,
 * Mcp-Param-*) pass through. A client of the other era goes through the proxy's bridge instead
 * (./serve-bridge.ts). Tokens come from the proxy's token source and gate (./proxy.ts: renewal before
 * expiry, one retry on 401, step-up on 403 insufficient_scope).
 *
 * Any local process, and any web page through the browser, can reach a loopback port, so a request is
 * served only when it carries the per-serve secret, its Host is this loopback endpoint, and its
 * Origin, when present, is a loopback one (the Streamable HTTP transport's DNS-rebinding defence).
 */
/**
 * `relay` carries every request to the server (src/oauth/http.ts createRelay): a passed-through
 * answer is streamed to the client as it arrives; the era probe and the bridges use it too.
 */
export type ServeOptions = Pick<ProxyOptions, "url" | "token" | "stepUp" | "covers" | "relay" | "now" | "error" | "debug" | "owner" | "loginHint"> & {
  /** 0: any free port. */
  port: number;
  /** The secret clients must send as `Authorization: Bearer <secret>` (default: 32 random bytes). */
  secret?: string;
  /** The clock of the event streams' keep-alive comments (default: the process's). */
  timers?: Timers;
};

export interface Serving {
  /** The endpoint's URL (http://127.0.0.1:PORT/mcp). */
  url: string;
  port: number;
  /** What a client must send: printed once, written into the client's entry, never logged. */
  secret: string;
  close(): Promise<void>;
}

export const SERVE_PATH = "/mcp";

/** Request headers passed to the server: the MCP ones; never cookies, the secret, Host or Origin. */
const REQUEST_HEADERS = new Set(["content-type", "accept", "last-event-id"]);
/**
 * Response headers passed to the client; not WWW-Authenticate (the client's credential is the secret,
 * not an OAuth token). Allow: a 405 must name what the endpoint takes (RFC 9110 §15.5.6).
 */
const RESPONSE_HEADERS = new Set(["content-type", "cache-control", "mcp-session-id", "mcp-protocol-version", "retry-after", "allow"]);

/** The per-serve secret: 256 random bits, URL-safe. */
export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** Is this the loopback endpoint on `port`: a Host header naming a loopback host and our port. */
export function loopbackHost(host: string | undefined, port: number): boolean {
  if (!host) return false;
  let u: URL;
  try {
    u = new URL(`http://${host}`);
  } catch {
    return false;
  }
  return u.host === host.toLowerCase() && isLoopbackHost(u.hostname) && Number(u.port || 80) === port;
}

/** An Origin a browser sends from a loopback page (any port); "null" and everything else are foreign. */
export function loopbackOrigin(origin: string): boolean {
  try {
    const u = new URL(origin);
    return (u.protocol === "http:" || u.protocol === "https:") && u.origin === origin.toLowerCase().replace(/\/$/, "") && isLoopbackHost(u.hostname);
  } catch {
    return false;
  }
}

export async function startServe(o: ServeOptions): Promise<Serving> {
  const endpoint = new ServeEndpoint(o);
  const port = await endpoint.listen();
  return {
    url: `http://127.0.0.1:${port}${SERVE_PATH}`,
    port,
    secret: endpoint.secret,
    close: () => endpoint.close(),
  };
}

/** What the server's era probe found: "dual" takes both handshakes; undefined, not known (yet). */
type ServerEra = "modern" | "legacy" | "dual" | undefined;

/**
 * One `mcp-auth serve` endpoint: the loopback HTTP server, its secret, the token source shared by
 * every request, and the era bridges. Its methods, in order: the endpoint's life (listen, close),
 * one request (respond, handle, guard, authorized, passThrough), then the server's era and the
 * error answers.
 */
class ServeEndpoint {
  readonly secret: string;
  /** The secret as bytes, compared with each request's bearer credential. */
  private readonly expected: Buffer;
  /** The era probe and the pass-through: one token cache and gate, so a renewal or a step-up serves both. */
  private readonly upstream: Relay;
  private readonly bridges: ReturnType<typeof eraBridges>;
  private readonly server: ReturnType<typeof createServer>;
  /** The port asked for until the server listens, then the one it got (0 becomes a real port). */
  private port: number;
  /** An upstream failure is reported once until a request gets through again. */
  private shown = false;
  /** The server's era, asked once: "modern" only when it does not also take the initialize handshake. */
  private era: Promise<ServerEra> | undefined;

  constructor(private readonly o: ServeOptions) {
    this.secret = o.secret ?? newSecret();
    this.expected = Buffer.from(this.secret);
    this.upstream = authorizedRelay(o, bearerCache(o));
    this.port = o.port;
    this.bridges = eraBridges(o, o.timers);
    // Bound once: the request listener allocates nothing of its own per request.
    this.server = createServer(this.onRequest);
    // Idle keep-alive sockets must not hold a stopping server open.
    this.server.keepAliveTimeout = 5000;
  }

  // ── The endpoint's life ─────────────────────────────────────────────────────────────────────

  /** Listens on 127.0.0.1 and gives the port; a port in use is the user's to change (UsageError). */
  async listen(): Promise<number> {
    const { server, o } = this;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e: NodeJS.ErrnoException) =>
        reject(e.code === "EADDRINUSE" ? new UsageError(`port ${o.port} on 127.0.0.1 is already in use`, { hint: "pick another with --port N, or leave --port out for a free port" }) : e),
      );
      server.listen(o.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    return this.port;
  }

  /** Ends the bridges' sessions and every open connection (streams included), then the server. */
  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.bridges.close();
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  // ── One request ─────────────────────────────────────────────────────────────────────────────

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => void this.respond(req, res);

  /** Serves a request; whatever escapes `handle` is a 500, or a cut connection once the answer began. */
  private async respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.handle(req, res);
    } catch (e) {
      this.o.debug?.(`serve: ${(e as Error)?.message ?? e}`);
      if (!res.headersSent) refuse(res, 500, "Internal error");
      else res.destroy();
    }
  }

  /** Checks the request, then sends it where its session and the two eras say: a bridge, or straight through. */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refused = this.guard(req);
    if (refused) return refuse(res, ...refused);
    if (req.method !== "POST" && req.method !== "GET" && req.method !== "DELETE") {
      res.setHeader("allow", "GET, POST, DELETE");
      return refuse(res, 405, "Method not allowed");
    }
    let body: Buffer | undefined;
    if (req.method === "POST") {
      body = await readBody(req, MAX_SSE_EVENT_BYTES);
      if (!body) return refuse(res, 413, `Request body over ${MAX_SSE_EVENT_BYTES / 1024 / 1024} MB`);
    }
    const header = req.headers["mcp-session-id"];
    const sid = typeof header === "string" ? header : undefined;
    const m = body ? oneMessage(body) : undefined;
    if (this.bridges.owns(sid)) return this.bridges.legacy(req, res, m);
    if (m) {
      // A bridge is needed only when the two eras differ; the server is probed at the first message that could tell.
      const client = clientEra(req.headers, m);
      // A modern-only server has no sessions: a legacy client's session id is one of the bridge's that
      // ended (DELETE, MAX_SESSIONS), which the bridge answers 404 so that the client starts a new one.
      if (client === "legacy" && (m.method === "initialize" || sid !== undefined) && (await this.serverEra()) === "modern") return this.bridges.legacy(req, res, m);
      if (client === "modern" && (await this.serverEra()) === "legacy") return this.bridges.modern(res, m);
    }
    await this.passThrough(req, res, body);
  }

  /** Why a request is not served (status and text), or undefined when it may go on. */
  private guard(req: IncomingMessage): [number, string] | undefined {
    const origin = req.headers.origin;
    if (origin !== undefined && !loopbackOrigin(origin)) return [403, "Forbidden: this endpoint takes requests from loopback origins only"];
    if (!loopbackHost(req.headers.host, this.port)) return [403, "Forbidden: Host must be this loopback endpoint"];
    if (!this.authorized(req.headers.authorization)) return [401, "Unauthorized: send the header mcp-auth serve printed when it started"];
    if ((req.url ?? "/").split("?")[0] !== SERVE_PATH) return [404, `Not found: the MCP endpoint is ${SERVE_PATH}`];
    return undefined;
  }

  /**
   * Does the Authorization header carry the secret: the scheme in any case (RFC 9110 §11.1), then
   * constant time over the secret's bytes; only a length that differs (a public 50) returns early.
   */
  private authorized(h: string | undefined): boolean {
    if (h === undefined || h.slice(0, 7).toLowerCase() !== "bearer ") return false;
    const got = Buffer.from(h.slice(7));
    return got.length === this.expected.length && timingSafeEqual(got, this.expected);
  }

  /** The request as the client sent it (its MCP headers, its body), with a fresh token; the answer streamed back. */
  private async passThrough(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): Promise<void> {
    const { o } = this;
    const headers = requestHeaders(req);
    // A client that goes away ends its request upstream too: the stream it was reading is closed (in
    // 2026-07-28, how a request is cancelled).
    let answer: RelayAnswer | undefined;
    let gone = false;
    res.on("close", () => {
      if (res.writableFinished) return;
      gone = true;
      answer?.discard();
    });
    const began = o.now();
    try {
      answer = await this.upstream(o.url, { method: req.method!, headers, body });
    } catch (e) {
      if (!gone) this.answerError(res, body, e);
      return;
    }
    this.shown = false;
    if (gone) return answer.discard();
    o.debug?.(`${req.method} ${SERVE_PATH} → ${answer.status} (${o.now() - began} ms to headers)`);
    const back = responseHeaders(answer);
    res.writeHead(answer.status, back);
    // An event stream may stay quiet for long (a GET stream, a long tool call's answer): its client
    // learns at once that it is open, as from the server itself, before its fetch gives up waiting for
    // headers (undici: 5 minutes).
    if (back["content-type"]?.startsWith("text/event-stream")) res.flushHeaders();
    try {
      for await (const chunk of answer.body) {
        if (gone) break;
        if (!res.write(chunk)) await drained(res);
      }
    } catch {
      /* the server or the client went away mid-stream, or the body passed its cap or its time */
      return void res.destroy();
    }
    res.end();
  }

  // ── The server's era, and errors ────────────────────────────────────────────────────────────

  /** The server's era, probed once and shared; a failed or inconclusive probe is asked again next time. */
  private serverEra(): Promise<ServerEra> {
    return (this.era ??= probeEra(this.upstream, this.o.url, { askLegacy: true }).then(
      (p) => (p.era === "modern" ? (p.dualEra ? "dual" : "modern") : p.era === "legacy" ? "legacy" : ((this.era = undefined), undefined)),
      () => ((this.era = undefined), undefined),
    ));
  }

  /**
   * The server could not be reached or would not take a token: a JSON-RPC error for the client (so it
   * shows the cause), and one line for the user until a request gets through again.
   */
  private answerError(res: ServerResponse, body: Buffer | undefined, e: unknown): void {
    const err = e instanceof McpAuthError ? e : new McpAuthError((e as Error)?.message ?? String(e));
    const line = `${redact(err.message).slice(0, 300)}${err.hint ? ` (${err.hint})` : ""}`;
    if (!this.shown) this.o.error(line);
    this.shown = true;
    res.writeHead(502, { "content-type": "application/json" });
    res.end(JSON.stringify({ jsonrpc: "2.0", id: requestId(body), error: { code: PROXY_ERROR, message: `mcp-auth: ${line}` } }));
  }
}

/** A refusal the endpoint itself gives: status and one line of text. */
function refuse(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(`${message}\n`);
}

/** The client's headers the server gets: the MCP ones (REQUEST_HEADERS, mcp-*), nothing else. */
function requestHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v === "string" && (REQUEST_HEADERS.has(k) || k.startsWith("mcp-"))) headers[k] = v;
  }
  return headers;
}

/** The server's headers the client gets (RESPONSE_HEADERS). */
function responseHeaders(answer: RelayAnswer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of RESPONSE_HEADERS) {
    const v = headerOf(answer.headers, k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** The client has taken what was written, or has gone; neither listener stays behind (a stream may wait thousands of times). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** A request body of at most `cap` bytes (undefined past that). */
function readBody(req: IncomingMessage, cap: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    req.on("data", (chunk: Buffer) => {
      n += chunk.length;
      if (n <= cap) parts.push(chunk);
    });
    req.on("end", () => resolve(n > cap ? undefined : parts.length === 1 ? parts[0] : Buffer.concat(parts)));
    req.on("error", reject);
  });
}


/**
 * The one JSON-RPC message of a body (a batch or anything else: undefined, and it passes through). A
 * bridge takes only what its session takes (asMessage): anything else would never be answered.
 */
function oneMessage(body: Buffer): ({ jsonrpc: "2.0"; id?: string | number; method?: string; params?: unknown } & Record<string, unknown>) | undefined {
  try {
    return asMessage(JSON.parse(body.toString("utf8"))) as never;
  } catch {
    return undefined;
  }
}

/** The id of the JSON-RPC request in a body, for an error answer (null when there is none). */
function requestId(body: Buffer | undefined): string | number | null {
  try {
    const m = JSON.parse(body?.toString("utf8") ?? "") as { id?: unknown };
    return typeof m.id === "string" || typeof m.id === "number" ? m.id : null;
  } catch {
    return null;
  }
}
