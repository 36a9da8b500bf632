import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { relayFromFetch } from "../src/oauth/http.js";
import { runProxy } from "../src/mcp/proxy.js";
import { MAX_SSE_EVENT_BYTES, MAX_SSE_LINE_BYTES, sseParser, StreamError } from "../src/mcp/transport.js";
import { rng } from "./helpers/random.js";

/**
 * The proxy's event-stream reader against a hostile server: a `data:` line that never ends, an event
 * that never ends, a stream that stops mid-event. Each ends only the request it was answering, with a
 * JSON-RPC error, while what the reader holds stays under its caps; the next request still goes
 * through. (The process-level memory bound is in test/proxy-stream-memory.test.ts.)
 */
const MB = 1024 * 1024;
const enc = new TextEncoder();

/** A body of `total` bytes, made chunk by chunk as it is read: `head`, then `fill` repeated. Counts what was pulled. */
function endless(head: string, fill: string, total: number) {
  const stats = { pulled: 0, cancelled: false };
  const chunk = enc.encode(fill.repeat(Math.ceil(64 * 1024 / fill.length)));
  let sentHead = false;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (!sentHead) {
        sentHead = true;
        stats.pulled += head.length;
        return c.enqueue(enc.encode(head));
      }
      if (stats.pulled >= total) return c.close();
      stats.pulled += chunk.length;
      c.enqueue(chunk);
    },
    cancel() {
      stats.cancelled = true;
    },
  });
  return { body, stats };
}

function sse(text: string | ReadableStream<Uint8Array>): Response {
  return new Response(typeof text === "string" ? enc.encode(text) : text, { status: 200, headers: { "content-type": "text/event-stream" } });
}

const answer = (id: unknown, result: unknown = {}) => `event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id, result })}\n\n`;

function rig(fetch: (init: RequestInit) => Response | Promise<Response>, transport?: "sse") {
  const input = new PassThrough();
  const output = new PassThrough();
  const errors: string[] = [];
  const messages: any[] = [];
  let out = "";
  output.on("data", (d) => {
    out += d;
    let nl: number;
    while ((nl = out.indexOf("\n")) !== -1) {
      messages.push(JSON.parse(out.slice(0, nl)));
      out = out.slice(nl + 1);
    }
  });
  const done = runProxy({
    url: new URL("https://mcp.example.invalid/mcp"),
    input,
    output,
    token: async () => ({ access_token: "T", expires_at: 4_000_000_000 }),
    relay: relayFromFetch(async (_u, init) => fetch(init ?? {})),
    now: () => Date.now(),
    error: (l) => errors.push(l),
    owner: 'profile "p"',
    loginHint: "run: mcp-auth login p",
    drainMs: 2000,
    transport,
  });
  const send = (m: object) => input.write(JSON.stringify({ jsonrpc: "2.0", ...m }) + "\n");
  const until = async (pred: () => boolean) => {
    for (let i = 0; i < 3000 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(pred(), JSON.stringify({ messages, errors })).toBe(true);
  };
  const byId = (id: number) => messages.find((m) => m.id === id);
  return { send, errors, messages, done, until, byId, end: () => input.end() };
}

describe("a hostile Streamable HTTP server ends only the request it answers", () => {
  it.each([
    ["a data: line that never ends", "event: message\ndata: ", "x", /event-stream line over 4 MB/],
    ["a comment line that never ends", ": ", "x", /event-stream line over 4 MB/],
    ["an event that never ends (data lines, no blank line)", "event: message\n", "data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", /event-stream event over 4 MB/],
  ])("%s: a JSON-RPC error for that request, the body cancelled after the cap, the next request answered", async (_what, head, fill, why) => {
    let hostile: ReturnType<typeof endless> | undefined;
    const r = rig((init) => {
      const m = JSON.parse(String(init.body));
      if (m.id === undefined) return new Response(null, { status: 202 });
      if (m.method === "tools/call") return sse((hostile = endless(head, fill, 50 * MB)).body);
      return sse(answer(m.id));
    });
    r.send({ id: 1, method: "initialize" });
    await r.until(() => !!r.byId(1));
    r.send({ id: 2, method: "tools/call" });
    await r.until(() => !!r.byId(2));
    r.send({ id: 3, method: "tools/list" });
    await r.until(() => !!r.byId(3));
    r.end();
    await r.done;
    expect(r.byId(2)).toMatchObject({ error: { code: -31000, message: expect.stringMatching(why) } });
    expect(r.byId(3)).toEqual({ jsonrpc: "2.0", id: 3, result: {} });
    expect(r.errors).toEqual([expect.stringMatching(why)]);
    // The reader stopped reading at its cap: the rest of the 50 MB was never pulled.
    expect(hostile!.stats.cancelled).toBe(true);
    expect(hostile!.stats.pulled).toBeLessThan(MAX_SSE_LINE_BYTES + 256 * 1024);
  });

  it("a stream that ends mid-event, without its answer: a JSON-RPC error instead of a request left hanging", async () => {
    const r = rig((init) => {
      const m = JSON.parse(String(init.body));
      if (m.id === undefined) return new Response(null, { status: 202 });
      if (m.method === "tools/call") return sse(`event: message\ndata: {"jsonrpc":"2.0","id":${m.id},"result":`);
      return sse(answer(m.id));
    });
    r.send({ id: 1, method: "initialize" });
    r.send({ id: 2, method: "tools/call" });
    await r.until(() => !!r.byId(2));
    r.end();
    await r.done;
    expect(r.byId(1)).toMatchObject({ result: {} });
    expect(r.byId(2)).toMatchObject({ error: { code: -31000, message: expect.stringContaining("ended before its answer") } });
  });
});

describe("a hostile HTTP+SSE (2024-11-05) server", () => {
  it("an oversized event on its one stream fails every request still owed, and later ones at once", async () => {
    let hostile: ReturnType<typeof endless> | undefined;
    let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
    const r = rig((init) => {
      if (init.method === "GET") {
        return sse(
          new ReadableStream<Uint8Array>({
            start(c) {
              stream = c;
              c.enqueue(enc.encode("event: endpoint\ndata: /messages?s=1\n\n"));
            },
          }),
        );
      }
      const m = JSON.parse(String(init.body));
      if (m.method === "initialize") stream!.enqueue(enc.encode(answer(m.id)));
      if (m.method === "tools/call") {
        // The answer to 2 is a line that never ends, pumped into the one stream.
        hostile = endless("event: message\ndata: ", "y", 50 * MB);
        void (async () => {
          const reader = hostile!.body.getReader();
          try {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) return;
              stream!.enqueue(value);
              await new Promise((res) => setImmediate(res));
            }
          } catch {
            /* the proxy cancelled the stream */
          }
        })();
      }
      return new Response(null, { status: 202 });
    }, "sse");
    r.send({ id: 1, method: "initialize" });
    await r.until(() => !!r.byId(1));
    r.send({ id: 2, method: "tools/call" });
    await r.until(() => !!r.byId(2));
    r.send({ id: 3, method: "tools/list" });
    await r.until(() => !!r.byId(3));
    r.end();
    await r.done;
    expect(r.byId(2)).toMatchObject({ error: { code: -31000, message: expect.stringContaining("line over 4 MB") } });
    expect(r.byId(3)).toMatchObject({ error: { code: -31000, message: expect.stringContaining("line over 4 MB") } });
    expect(hostile!.stats.pulled).toBeLessThan(MAX_SSE_LINE_BYTES + 256 * 1024);
  });
});

describe("sseParser", () => {
  const STREAM =
    "\uFEFF: hello\r\nevent: message\r\ndata: {\"a\":1}\r\n\r\n" + // CRLF, a BOM first
    "id: 7\rdata: two\rdata: lines\r\r" + // lone CR
    "event: endpoint\ndata:/x?y=1\n\n" + // no space after the colon
    "data\n\n" + // a field without a colon: empty data
    "retry: 1500\nid: 8\n\n" + // an id alone still makes an event (resumption)
    "data: é€😀\n\n" + // multi-byte characters, to be split between chunks
    "data: unfinished"; // dropped at the end of the stream
  const EXPECTED = [
    { event: "message", data: '{"a":1}', id: undefined },
    { event: "message", data: "two\nlines", id: "7" },
    { event: "endpoint", data: "/x?y=1", id: undefined },
    { event: "message", data: "", id: undefined },
    { event: "message", data: "", id: "8" },
    { event: "message", data: "é€😀", id: undefined },
  ];

  it("gives the same events however the bytes are cut (200 random cuttings)", () => {
    const bytes = enc.encode(STREAM);
    const random = rng(17);
    for (let round = 0; round < 200; round++) {
      const events: unknown[] = [];
      const retries: number[] = [];
      const p = sseParser((e) => events.push(e), (ms) => retries.push(ms));
      for (let i = 0; i < bytes.length; ) {
        const n = 1 + Math.floor(random() * (round % 2 ? 3 : 40));
        p.feed(bytes.subarray(i, i + n));
        i += n;
      }
      expect(events).toEqual(EXPECTED);
      expect(retries).toEqual([1500]);
    }
  });

  it.each([
    ["one endless data: line", "data: ", "z", "line"],
    ["many data: lines, no blank line", "", "data: zzzzzzzzzzzzzzzz\n", "event"],
  ])("%s (50 MB in 64 KB chunks): throws at the cap, never holding more than it", (_what, head, fill, kind) => {
    const p = sseParser(() => {});
    const chunk = enc.encode(fill.repeat(Math.ceil(64 * 1024 / fill.length)));
    p.feed(enc.encode(head));
    let fed = 0;
    let peak = 0;
    let error: unknown;
    try {
      while (fed < 50 * MB) {
        p.feed(chunk);
        fed += chunk.length;
        peak = Math.max(peak, p.buffered());
      }
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StreamError);
    expect((error as Error).message).toContain(`${kind} over 4 MB`);
    expect(peak).toBeLessThanOrEqual(kind === "line" ? MAX_SSE_LINE_BYTES : MAX_SSE_EVENT_BYTES);
    expect(fed).toBeLessThan(MAX_SSE_EVENT_BYTES + chunk.length);
  });

  it("events up to the cap pass, and what it holds goes back to zero after each", () => {
    const events: string[] = [];
    const p = sseParser((e) => events.push(e.data));
    const big = "q".repeat(MAX_SSE_EVENT_BYTES - 16);
    for (let i = 0; i < 3; i++) {
      p.feed(enc.encode(`data: ${big}\n`));
      p.feed(enc.encode("\n"));
      expect(p.buffered()).toBe(0);
    }
    expect(events).toHaveLength(3);
    expect(events[2]).toHaveLength(big.length);
  });
});
