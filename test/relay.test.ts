import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { NetworkError } from "../src/errors.js";
import { createRelay, MAX_BODY_BYTES, type RelayAnswer } from "../src/oauth/http.js";

/**
 * serve's relay (src/oauth/http.ts createRelay) against small local servers: what it hands on, and
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

describe("serve's relay", () => {
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
