import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { getEventListeners } from "node:events";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { NetworkError } from "../src/errors.js";
import { answerText, createRelay, MAX_BODY_BYTES, relayFromFetch, type RelayAnswer } from "../src/oauth/http.js";

/**
 * The relay of proxy and serve (src/oauth/http.ts createRelay) against small local servers: what it hands on, and
 * where it stops as createFetch does (a redirect, a body past the cap, a server that never answers).
 */
let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

async function serveWith(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<URL> {
  server = createServer(handler);
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
}

async function text(a: RelayAnswer): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const c of a.body) parts.push(c);
  return Buffer.concat(parts).toString("utf8");
}

/** Timers the test fires itself. */
function manualTimers() {
  const pending = new Set<() => void>();
  return {
    setTimeout: (fn: () => void) => (pending.add(fn), fn),
    clearTimeout: (h: unknown) => void pending.delete(h as () => void),
    fire: () => [...pending].forEach((f) => (pending.delete(f), f())),
    get pending() {
      return pending.size;
    },
  };
}

describe("the relay", () => {
  // node:http(s) for a direct connection; npm undici when a proxy, a CA file or --insecure is in play.
  it.each([
    ["node:http", {}],
    ["undici", { insecure: true }],
  ])("over %s: sends the method, headers and body as given, and hands back the status, headers and body", async (_carrier, extra) => {
    let seen: { method?: string; auth?: string; mcp?: string; body?: string } = {};
    const url = await serveWith((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        seen = { method: req.method, auth: req.headers.authorization, mcp: req.headers["mcp-method"] as string, body };
        res.writeHead(200, { "content-type": "application/json", "mcp-session-id": "s1" }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
      });
    });
    const debug: string[] = [];
    const relay = createRelay({ timeoutMs: 30_000, env: {}, debug: (l) => debug.push(l), ...extra });
    const a = await relay(url, { method: "POST", headers: { authorization: "Bearer secret-token-value", "content-type": "application/json", "mcp-method": "tools/list" }, body: Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/list"}') });
    expect(a.status).toBe(200);
    expect(a.headers["mcp-session-id"]).toBe("s1");
    expect(await text(a)).toBe('{"jsonrpc":"2.0","id":1,"result":{}}');
    expect(seen).toEqual({ method: "POST", auth: "Bearer secret-token-value", mcp: "tools/list", body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    expect(debug.join("\n")).toMatch(/^> POST http:\/\/127\.0\.0\.1:\d+\/mcp$/m);
    expect(debug.join("\n")).toMatch(/^< 200 POST .* application\/json$/m);
    expect(debug.join("\n")).not.toContain("secret-token-value");
  });

  it.each([
    ["node:http", {}],
    ["undici", { insecure: true }],
  ])("over %s: refuses a redirect, naming where it points: the request carried the token", async (_carrier, extra) => {
    const url = await serveWith((_req, res) => res.writeHead(307, { location: "https://elsewhere.example.invalid/mcp" }).end());
    const relay = createRelay({ timeoutMs: 30_000, env: {}, ...extra });
    const err = await relay(url, { method: "POST", headers: { authorization: "Bearer t" }, body: Buffer.from("{}") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as Error).message).toMatch(/answered HTTP 307, redirecting to https:\/\/elsewhere\.example\.invalid\/mcp; mcp-auth does not follow redirects/);
  });

  it("a localhost name reaches loopback without asking a resolver, its Host header kept", async () => {
    let host: string | undefined;
    const url = await serveWith((req, res) => ((host = req.headers.host), res.writeHead(200, { "content-type": "application/json" }).end("{}")));
    const named = new URL(url.href.replace("127.0.0.1", "mcp.localhost"));
    const relay = createRelay({ timeoutMs: 30_000, env: {}, resolve: async () => Promise.reject(new Error("no resolver may be asked")) });
    const a = await relay(named, { method: "POST", headers: {}, body: Buffer.from("{}") });
    expect(a.status).toBe(200);
    expect(await text(a)).toBe("{}");
    expect(host).toBe(named.host);
  });

  it("cuts a JSON body off past MAX_BODY_BYTES", async () => {
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const url = await serveWith((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      for (let i = 0; i <= MAX_BODY_BYTES / chunk.length; i++) res.write(chunk);
      res.end();
    });
    const a = await createRelay({ timeoutMs: 30_000, env: {} })(url, { method: "POST", headers: {}, body: Buffer.from("{}") });
    await expect(text(a)).rejects.toThrow(/too large \(over 4 MB\)/);
  });

  it("leaves an event stream open past the timeout; a JSON body must end within it", async () => {
    const url = await serveWith((req, res) => {
      res.writeHead(200, { "content-type": req.headers.accept === "sse" ? "text/event-stream" : "application/json" });
      res.write(req.headers.accept === "sse" ? ": open\n\n" : "{");
    });
    const timers = manualTimers();
    const relay = createRelay({ timeoutMs: 30_000, env: {}, timers });
    const sse = await relay(url, { method: "GET", headers: { accept: "sse" } });
    expect(timers.pending).toBe(0); // the stream's timer stopped with its headers
    const json = await relay(url, { method: "GET", headers: { accept: "json" } });
    expect(timers.pending).toBe(1);
    const read = text(json);
    timers.fire();
    await expect(read).rejects.toThrow();
    sse.discard();
  });

  it("a server that never answers times out with the timeout's own words", async () => {
    const url = await serveWith(() => {});
    const timers = manualTimers();
    const asked = createRelay({ timeoutMs: 5_000, env: {}, timers })(url, { method: "POST", headers: {}, body: Buffer.from("{}") });
    await expect.poll(() => timers.pending).toBe(1);
    timers.fire();
    await expect(asked).rejects.toThrow(/request to 127\.0\.0\.1:\d+ timed out after 5s/);
  });

  it("discard() closes the server's stream (a client that left)", async () => {
    let closed = false;
    const url = await serveWith((req, res) => {
      req.socket.on("close", () => (closed = true));
      res.writeHead(200, { "content-type": "text/event-stream" }).write(": open\n\n");
    });
    const a = await createRelay({ timeoutMs: 30_000, env: {} })(url, { method: "GET", headers: {} });
    a.discard();
    await expect.poll(() => closed).toBe(true);
  });
});

describe("a relay request's signal", () => {
  const carriers = [
    ["node:http", {}],
    ["undici", { insecure: true }],
  ] as const;

  /** What a request ended by its signal fails with: the signal's reason, never a NetworkError. */
  const abortedBy = (e: unknown, reason: unknown) => {
    expect(e).not.toBeInstanceOf(NetworkError);
    expect(e).toBe(reason);
  };

  it.each(carriers)("over %s: aborting before the headers ends the request with the signal's reason", async (_carrier, extra) => {
    let reached = false;
    let closed = false;
    const url = await serveWith((req) => ((reached = true), req.socket.on("close", () => (closed = true)))); // never answers
    const relay = createRelay({ timeoutMs: 30_000, env: {}, ...extra });
    const abort = new AbortController();
    const asked = relay(url, { method: "POST", headers: {}, body: "{}", signal: abort.signal }).catch((e: unknown) => e);
    await expect.poll(() => reached).toBe(true);
    abort.abort();
    abortedBy(await asked, abort.signal.reason);
    await expect.poll(() => closed).toBe(true);
    expect(getEventListeners(abort.signal, "abort")).toHaveLength(0);
  });

  it.each(carriers)("over %s: aborting mid event-stream ends the read waiting for it, and the server's stream", async (_carrier, extra) => {
    let closed = false;
    const url = await serveWith((req, res) => {
      req.socket.on("close", () => (closed = true));
      res.writeHead(200, { "content-type": "text/event-stream" }).write("event: message\ndata: 1\n\n");
    });
    const relay = createRelay({ timeoutMs: 30_000, env: {}, ...extra });
    const abort = new AbortController();
    const a = await relay(url, { method: "GET", headers: {}, signal: abort.signal });
    const it = a.body[Symbol.asyncIterator]();
    expect(Buffer.from((await it.next()).value!).toString()).toBe("event: message\ndata: 1\n\n");
    const waiting = it.next().catch((e: unknown) => e);
    abort.abort();
    abortedBy(await waiting, abort.signal.reason);
    await expect.poll(() => closed).toBe(true);
    expect(getEventListeners(abort.signal, "abort")).toHaveLength(0);
  });

  it.each(carriers)("over %s: a signal already aborted sends nothing", async (_carrier, extra) => {
    let asked = 0;
    const url = await serveWith((_req, res) => (asked++, res.end("{}")));
    const abort = new AbortController();
    abort.abort();
    abortedBy(await createRelay({ timeoutMs: 30_000, env: {}, ...extra })(url, { method: "GET", headers: {}, signal: abort.signal }).catch((e: unknown) => e), abort.signal.reason);
    expect(asked).toBe(0);
  });

  it.each(carriers)("over %s: requests sharing a long-lived signal leave nothing on it, however each ended", async (_carrier, extra) => {
    const url = await serveWith((req, res) => {
      const path = req.url!;
      if (path === "/json") return res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
      if (path === "/sse-ends") return res.writeHead(200, { "content-type": "text/event-stream" }).end("data: 1\n\n");
      if (path === "/sse-open") return void res.writeHead(200, { "content-type": "text/event-stream" }).write("data: 1\n\n");
      if (path === "/redirect") return res.writeHead(307, { location: "https://elsewhere.example.invalid/" }).end();
      if (path === "/accepted") return res.writeHead(202).end();
      // /silent: never answers (the timeout ends it)
    });
    const timers = manualTimers();
    const relay = createRelay({ timeoutMs: 5_000, env: {}, timers, ...extra });
    const shared = new AbortController();
    const signal = shared.signal;
    const at = (p: string) => new URL(p, url);
    const listeners = () => getEventListeners(signal, "abort").length;

    expect(await text(await relay(at("/json"), { method: "GET", headers: {}, signal }))).toBe('{"ok":true}');
    expect(listeners()).toBe(0);
    expect(await text(await relay(at("/sse-ends"), { method: "GET", headers: {}, signal }))).toBe("data: 1\n\n");
    expect(listeners()).toBe(0);
    (await relay(at("/sse-open"), { method: "GET", headers: {}, signal })).discard();
    expect(listeners()).toBe(0);
    (await relay(at("/accepted"), { method: "POST", headers: {}, body: "{}", signal })).discard();
    expect(listeners()).toBe(0);
    await expect(relay(at("/redirect"), { method: "POST", headers: {}, body: "{}", signal })).rejects.toThrow(/does not follow redirects/);
    expect(listeners()).toBe(0);
    const silent = relay(at("/silent"), { method: "POST", headers: {}, body: "{}", signal });
    await expect.poll(() => timers.pending).toBe(1);
    expect(listeners()).toBe(1); // while it runs
    timers.fire();
    await expect(silent).rejects.toThrow(/timed out after 5s/);
    expect(listeners()).toBe(0);
    const refused = new URL(url.href);
    refused.port = String(await closedPort());
    await expect(relay(refused, { method: "GET", headers: {}, signal })).rejects.toThrow(NetworkError);
    expect(listeners()).toBe(0);
    expect(signal.aborted).toBe(false);
  });

  it("relayFromFetch hands the signal to the fetch, and ends a read its fetch would leave waiting", async () => {
    const seen: Array<AbortSignal | null | undefined> = [];
    let cancelled = false;
    const relay = relayFromFetch(async (_u, init) => {
      seen.push(init?.signal);
      // A body that never ends and ignores the signal, as a test's server may.
      const body = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new TextEncoder().encode("data: 1\n\n")), cancel: () => void (cancelled = true) });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    });
    const abort = new AbortController();
    const a = await relay(new URL("https://mcp.example.invalid/mcp"), { method: "GET", headers: {}, signal: abort.signal });
    expect(seen).toEqual([abort.signal]);
    expect(getEventListeners(abort.signal, "abort")).toHaveLength(1);
    const it = a.body[Symbol.asyncIterator]();
    await it.next();
    const waiting = it.next().catch((e: unknown) => e);
    abort.abort();
    expect(await waiting).toBe(abort.signal.reason);
    expect(cancelled).toBe(true);
    expect(getEventListeners(abort.signal, "abort")).toHaveLength(0);

    // A body read to its end, or dropped, leaves nothing on a long-lived signal.
    const shared = new AbortController();
    const plain = relayFromFetch(async () => new Response("{}", { headers: { "content-type": "application/json" } }));
    expect(await text(await plain(new URL("https://mcp.example.invalid/mcp"), { method: "GET", headers: {}, signal: shared.signal }))).toBe("{}");
    (await plain(new URL("https://mcp.example.invalid/mcp"), { method: "GET", headers: {}, signal: shared.signal })).discard();
    expect(getEventListeners(shared.signal, "abort")).toHaveLength(0);
  });

  it("relayFromFetch: a signal aborted while the fetch ran fails with its reason", async () => {
    const abort = new AbortController();
    const relay = relayFromFetch(async () => (abort.abort(), new Response("{}")));
    expect(await relay(new URL("https://mcp.example.invalid/mcp"), { method: "GET", headers: {}, signal: abort.signal }).catch((e: unknown) => e)).toBe(abort.signal.reason);
  });
});

describe("answerText", () => {
  const answer = (chunks: string[]): RelayAnswer & { discarded: boolean } => {
    const a = {
      status: 200,
      headers: {},
      discarded: false,
      body: (async function* () {
        for (const c of chunks) yield new TextEncoder().encode(c);
      })(),
      discard: () => void (a.discarded = true),
    };
    return a;
  };
  const url = new URL("https://mcp.example.invalid/mcp");

  it("reads the whole body as UTF-8 text", async () => {
    expect(await answerText(answer(['{"a":', '"é"}']), { url })).toBe('{"a":"é"}');
  });

  it("past its cap: drops the rest and fails naming the host, or gives what came first when partial", async () => {
    const over = answer(["12345", "67890"]);
    await expect(answerText(over, { url, cap: 8 })).rejects.toThrow(/the response from mcp\.example\.invalid is too large/);
    expect(over.discarded).toBe(true);
    const cut = answer(["12345", "67890"]);
    expect(await answerText(cut, { url, cap: 8, partial: true })).toBe("12345678");
    expect(cut.discarded).toBe(true);
  });

  it("a body that breaks off fails, or gives what came when partial", async () => {
    const broken = () => ({
      status: 200,
      headers: {},
      body: (async function* () {
        yield new TextEncoder().encode("data: ");
        throw new Error("reset");
      })(),
      discard: () => {},
    });
    await expect(answerText(broken(), { url })).rejects.toThrow("reset");
    expect(await answerText(broken(), { url, partial: true })).toBe("data: ");
  });
});

/** A port on 127.0.0.1 nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
