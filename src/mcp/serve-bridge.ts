import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Timers } from "../oauth/http.js";
import { isModernVersion, META_PROTOCOL_VERSION, META_SUBSCRIPTION_ID } from "./era.js";
import { runProxy, type ProxyOptions } from "./proxy.js";
import { MemoryTransport } from "./transport.js";

/**
 * `mcp-auth serve` across protocol eras (docs/mcp-2026-07-28.md): when the client's era is one the
 * server does not speak, the request is not passed through but handed to the proxy's own bridge
 * (./proxy.ts, runProxy), handed to it as a message object (a MemoryTransport: no JSON text or stream
 * in between), and its answer sent back as JSON (a subscriptions/listen: an event stream). A legacy
 * client in front of a 2026-07-28-only server gets a session of its own (Mcp-Session-Id, one bridge per
 * session; what the server sends unasked goes to the session's GET stream); 2026-07-28 clients in front
 * of a legacy server share one bridge, their request ids made unique on the way in and restored on the
 * way out.
 */
type Msg = { jsonrpc: "2.0"; id?: string | number; method?: string; params?: unknown; result?: unknown; error?: unknown };
type ProxyBase = Omit<ProxyOptions, "input" | "output" | "client" | "protocol">;

/**
 * Between keep-alive comments on the event streams serve holds open itself (a session's GET stream, a
 * subscription): a stream quiet for long is not ended by a client's idle timeout (Node's fetch: 5
 * minutes). The SDK's server transport sends one every 15 s; 2026-07-28 encourages them on long streams.
 */
const KEEP_ALIVE_MS = 15_000;
const realTimers: Timers = { setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout) };

/** Bridged legacy sessions at most; a new one past that ends the one unused longest (a client that never says DELETE). */
const MAX_SESSIONS = 32;

interface Bridge {
  send(m: Msg): void;
  /** Answers to requests sent through `send`, by id. */
  waiting: Map<string | number, (m: Msg) => void>;
  /** What the bridge sends that answers nothing the client is waiting for. */
  unasked?: (m: Msg) => void;
  close(): void;
}

function startBridge(base: ProxyBase, protocol: "legacy" | "2026-07-28"): Bridge {
  const waiting = new Map<string | number, (m: Msg) => void>();
  // What the session sends the client: an answer someone waits for, or something unasked. An answer
  // nobody waits for (its client left) is dropped: a GET stream carries no responses (2025-11-25).
  const client = new MemoryTransport((m) => {
    if (m.method !== undefined) return bridge.unasked?.(m);
    const answer = m.id === undefined ? undefined : waiting.get(m.id);
    waiting.delete(m.id!);
    answer?.(m);
  });
  let end!: () => void;
  const closed = new Promise<void>((resolve) => (end = resolve));
  const bridge: Bridge = {
    send: (m) => client.deliver(m),
    waiting,
    close: () => end(),
  };
  void runProxy({ ...base, client: { transport: client, closed }, protocol, transport: "streamable-http" }).catch((e: unknown) => base.error(`the era bridge stopped: ${(e as Error)?.message ?? e}`));
  return bridge;
}

/** The era a request's client speaks: its protocol version header or `_meta`, or server/discover. */
export function clientEra(headers: IncomingMessage["headers"], m: Msg): "modern" | "legacy" {
  const meta = (m.params as { _meta?: Record<string, unknown> } | undefined)?._meta?.[META_PROTOCOL_VERSION];
  const v = typeof meta === "string" ? meta : typeof headers["mcp-protocol-version"] === "string" ? headers["mcp-protocol-version"] : undefined;
  if (m.method === "server/discover" || (v !== undefined && isModernVersion(v))) return "modern";
  return "legacy";
}

export function eraBridges(base: ProxyBase, timers: Timers = realTimers) {
  const sessions = new Map<string, Bridge & { stream?: ServerResponse }>();
  let modern: Bridge | undefined;
  let seq = 0;

  const json = (res: ServerResponse, m: Msg, headers: Record<string, string> = {}) => {
    res.writeHead(200, { "content-type": "application/json", ...headers }).end(JSON.stringify(m));
  };
  const accepted = (res: ServerResponse, headers: Record<string, string> = {}) => void res.writeHead(202, headers).end();
  /** A message as one event of an event stream. */
  const event = (m: Msg) => `event: message\ndata: ${JSON.stringify(m)}\n\n`;
  /** Onto a stream, unless serve has ended it (replaced, DELETE, answered): a write after end would be thrown, uncaught. */
  const write = (res: ServerResponse, text: string) => void (res.writableEnded || res.write(text));
  /** An event stream serve holds open: its headers now, then a comment every KEEP_ALIVE_MS until it closes. */
  const openStream = (res: ServerResponse, headers: Record<string, string> = {}) => {
    let timer: unknown;
    const tick = () => {
      write(res, ": keepalive\n\n");
      timer = timers.setTimeout(tick, KEEP_ALIVE_MS);
    };
    timer = timers.setTimeout(tick, KEEP_ALIVE_MS);
    res.on("close", () => timers.clearTimeout(timer));
    // Sent now: the client learns the stream is open before the server has anything for it.
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...headers }).flushHeaders();
  };
  /** 2026-07-28 clients' open subscriptions/listen streams, by the id the bridge gave the request; `id`: the client's. */
  const listens = new Map<string, { res: ServerResponse; id: string | number }>();

  /** One message through a bridge; a request waits for its answer, and `left` runs if its client leaves first. */
  const relay = (b: Bridge, m: Msg, res: ServerResponse, headers: Record<string, string> = {}, restore?: string | number, left?: () => void) => {
    if (m.method === undefined || m.id === undefined) {
      b.send(m);
      return accepted(res, headers);
    }
    const id = m.id;
    b.waiting.set(id, (a) => json(res, restore === undefined ? a : { ...a, id: restore }, headers));
    res.on("close", () => void (b.waiting.delete(id) && left?.()));
    b.send(m);
  };

  return {
    /** A session this bridge runs, by its Mcp-Session-Id. */
    owns: (sid: string | undefined) => sid !== undefined && sessions.has(sid),

    /** A legacy client's request for a 2026-07-28-only server, in a session of the bridge's own. */
    legacy(req: IncomingMessage, res: ServerResponse, m: Msg | undefined): void {
      const sid = req.headers["mcp-session-id"] as string | undefined;
      let s = sid === undefined ? undefined : sessions.get(sid);
      // Used now: it moves to the end of the map's order, the last to be ended past MAX_SESSIONS.
      if (s) {
        sessions.delete(sid!);
        sessions.set(sid!, s);
      }
      if (req.method === "DELETE" && s) {
        s.close();
        s.stream?.end();
        sessions.delete(sid!);
        return void res.writeHead(200).end();
      }
      if (req.method === "GET") {
        if (!s) return void res.writeHead(404, { "content-type": "text/plain" }).end("Session not found\n");
        s.stream?.end();
        const session = s;
        session.stream = res;
        res.on("close", () => void (session.stream === res && (session.stream = undefined)));
        return openStream(res, { "mcp-session-id": sid! });
      }
      if (!m) return void res.writeHead(400, { "content-type": "text/plain" }).end("Bad request\n");
      if (!s) {
        if (m.method !== "initialize") return void res.writeHead(404, { "content-type": "text/plain" }).end("Session not found\n");
        const id = randomUUID();
        if (sessions.size >= MAX_SESSIONS) {
          const [oldest, old] = sessions.entries().next().value!; // unused longest
          old.close();
          old.stream?.end();
          sessions.delete(oldest);
        }
        const b = startBridge(base, "2026-07-28");
        s = Object.assign(b, { stream: undefined as ServerResponse | undefined });
        const session = s;
        b.unasked = (x) => session.stream && write(session.stream, event(x));
        sessions.set(id, s);
        return relay(s, m, res, { "mcp-session-id": id });
      }
      relay(s, m, res, { "mcp-session-id": sid! });
    },

    /** A 2026-07-28 client's request for a legacy server: one shared bridge, ids made unique. */
    modern(res: ServerResponse, m: Msg): void {
      if (!modern) {
        modern = startBridge(base, "legacy");
        // What the bridge sends unasked is a subscription's notification, tagged with the listen request's id: to that stream, under the client's id.
        modern.unasked = (x) => {
          const params = x.params as { _meta?: Record<string, unknown> } | undefined;
          const sub = params?._meta?.[META_SUBSCRIPTION_ID];
          const l = typeof sub === "string" ? listens.get(sub) : undefined;
          if (l) write(l.res, event({ ...x, params: { ...params, _meta: { ...params!._meta, [META_SUBSCRIPTION_ID]: l.id } } }));
        };
      }
      // On HTTP a 2026-07-28 client cancels by leaving (below), never by notification: the id one would
      // name is its own, unknown to the shared bridge, or one the bridge gave another client's request.
      if (m.method === "notifications/cancelled") return accepted(res);
      if (m.id === undefined || m.method === undefined) return relay(modern, m, res);
      const id = `serve-${++seq}`;
      const bridge = modern;
      // On Streamable HTTP 2026-07-28 a client that leaves cancels its request (basic/patterns/cancellation); a legacy server is told so.
      const cancel = () => bridge.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: id } });
      if (m.method !== "subscriptions/listen") return relay(bridge, { ...m, id }, res, {}, m.id, cancel);
      // A subscription is an event stream (basic/patterns/subscriptions): its notifications until the client leaves it.
      const client = m.id;
      listens.set(id, { res, id: client });
      bridge.waiting.set(id, (a) => res.end(event({ ...a, id: client })));
      res.on("close", () => {
        listens.delete(id);
        if (bridge.waiting.delete(id)) cancel();
      });
      openStream(res);
      bridge.send({ ...m, id });
    },

    close(): void {
      for (const s of sessions.values()) {
        s.close();
        s.stream?.end();
      }
      sessions.clear();
      modern?.close();
    },
  };
}
