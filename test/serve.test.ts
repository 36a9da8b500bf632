import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loopbackHost, loopbackOrigin, startServe, type Serving } from "../src/mcp/serve.js";
import type { BearerToken } from "../src/mcp/proxy.js";
import { startSandbox, type Sandbox } from "../src/sandbox/server.js";

/** The `_meta` a 2026-07-28 client sends on each request. */
const META = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": { name: "modern", version: "0" } };
import { createRelay, relayFromFetch, type Timers } from "../src/oauth/http.js";

const realRelay = createRelay({ timeoutMs: 30_000, env: {} });

/**
 * `mcp-auth serve`'s endpoint (src/mcp/serve.ts), in-process, in front of the sandbox's real MCP
 * servers of both eras (legacy: the SDK 1.x server; 2026-07-28: the official SDK 2.x), with real
 * client-credentials tokens from the sandbox IdP. The clients are the official SDK's own (legacy) and a
 * 2026-07-28 client posting `_meta` and the request-metadata headers; the guards are tested with raw
 * requests whose Host and Origin the test chooses.
 */
let legacy: Sandbox;
let modern: Sandbox;

beforeAll(async () => {
  legacy = await startSandbox({ protocol: "legacy" });
  modern = await startSandbox({ protocol: "2026-07-28" });
}, 60_000);
afterAll(async () => {
  await legacy?.close();
  await modern?.close();
});

async function realToken(sb: Sandbox): Promise<BearerToken> {
  const basic = Buffer.from(`${sb.clients.m2m.clientId}:${sb.clients.m2m.clientSecret}`).toString("base64");
  const res = await fetch(`${sb.issuer}/token`, {
    method: "POST",
    headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", resource: sb.mcpUrl, scope: "mcp:read" }),
  });
  expect(res.status).toBe(200);
  const t = (await res.json()) as { access_token: string; expires_in: number };
  return { access_token: t.access_token, expires_at: Math.floor(Date.now() / 1000) + t.expires_in };
}

async function serve(sb: Sandbox, o: { token?: () => Promise<BearerToken>; fetch?: typeof fetch; timers?: Timers } = {}) {
  const errors: string[] = [];
  const debug: string[] = [];
  const upstream: Headers[] = [];
  const s = await startServe({
    url: new URL(sb.mcpUrl),
    port: 0,
    token: o.token ?? (() => realToken(sb)),
    // Every request to the server (passed through, the era probe, the bridges): the real relay, or the test's fetch when it plays the server.
    relay: async (u, init) => {
      upstream.push(new Headers(init.headers));
      return (o.fetch ? relayFromFetch(o.fetch) : realRelay)(u, init);
    },
    now: () => Date.now(),
    error: (l) => errors.push(l),
    debug: (l) => debug.push(l),
    owner: 'profile "sb"',
    loginHint: "run: mcp-auth login sb",
    timers: o.timers,
  });
  return { s, errors, debug, upstream };
}

/** A raw request with the Host, Origin and Authorization the test picks (fetch would set Host itself). */
function raw(s: Serving, headers: Record<string, string>, o: { method?: string; path?: string; body?: string } = {}): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: s.port, method: o.method ?? "POST", path: o.path ?? "/mcp", headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers } }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    // GET and DELETE carry no body, as clients send them.
    if (o.method === "GET" || o.method === "DELETE") return void req.end();
    req.end(o.body ?? JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "0" } } }));
  });
}

/** An event stream (GET, or a POST of `body`): resolves once its headers are in; `data` is what came so far; `close` leaves it. */
function openStream(s: Serving, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: IncomingHttpHeaders; data: () => string; close: () => void }> {
  return new Promise((resolve, reject) => {
    const post = body === undefined ? {} : { "content-type": "application/json", accept: "application/json, text/event-stream" };
    const req = httpRequest({ host: "127.0.0.1", port: s.port, method: body === undefined ? "GET" : "POST", path: "/mcp", headers: { accept: "text/event-stream", ...post, ...headers } }, (res) => {
      let data = "";
      res.on("data", (d) => (data += d));
      res.on("error", () => {});
      resolve({ status: res.statusCode ?? 0, headers: res.headers, data: () => data, close: () => req.destroy() });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A POST the client gives up on: `leave` closes its connection before the answer. */
function leaving(s: Serving, headers: Record<string, string>, body: string): { leave: () => void } {
  const req = httpRequest({ host: "127.0.0.1", port: s.port, method: "POST", path: "/mcp", headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers } });
  req.on("error", () => {});
  req.end(body);
  return { leave: () => req.destroy() };
}

/** A request body as text. */
const textOf = (init: RequestInit | undefined): string => (init?.body instanceof Uint8Array ? Buffer.from(init.body).toString() : String(init?.body ?? ""));

/**
 * The server's fetch, with each `method` request held until `release`: `reached` once one is on its
 * way, `answered` once the server's answer to it is in.
 */
function holding(method: string) {
  let release!: () => void;
  let reached!: () => void;
  let answered!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const hold = {
    release: () => release(),
    reached: new Promise<void>((r) => (reached = r)),
    answered: new Promise<void>((r) => (answered = r)),
    fetch: (async (u, init) => {
      if (!textOf(init).includes(`"method":"${method}"`)) return fetch(u, init);
      reached();
      await held;
      const res = await fetch(u, { ...init, signal: undefined });
      const text = await res.text();
      answered();
      return new Response(text, { status: res.status, headers: res.headers });
    }) as typeof fetch,
  };
  return hold;
}

/** Timers the test fires (`fire`: everything due, as if the time had come). */
function manualTimers() {
  const due = new Map<number, () => void>();
  let n = 0;
  return {
    setTimeout: (fn: () => void) => (due.set(++n, fn), n),
    clearTimeout: (t: unknown) => void due.delete(t as number),
    fire: () => {
      const now = [...due];
      due.clear();
      for (const [, fn] of now) fn();
    },
  };
}

/** The endpoint's secret, for raw requests. */
const auth = (s: Serving) => ({ authorization: `Bearer ${s.secret}` });

/** A legacy client's initialize through raw requests: the session id serve's bridge gave it. */
async function legacySession(s: Serving): Promise<string> {
  const r = await raw(s, auth(s));
  expect(r.status, r.body).toBe(200);
  const sid = r.headers["mcp-session-id"];
  expect(typeof sid).toBe("string");
  return sid as string;
}

describe("serve: who may use the endpoint", () => {
  let rig: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    rig = await serve(legacy);
  });
  afterAll(() => rig.s.close());

  it.each([
    ["the secret, a loopback Host, no Origin", {}, 200],
    ["a loopback Origin (any port)", { origin: "http://localhost:3000" }, 200],
    ["Host localhost", { host: "localhost:PORT" }, 200],
    ["no secret", { authorization: "" }, 401],
    ["a wrong secret", { authorization: "Bearer nope" }, 401],
    ["the secret under another scheme", { authorization: "Basic SECRET" }, 401],
    // The scheme is case-insensitive (RFC 9110 §11.1); the secret is not.
    ["the scheme in lower case", { authorization: "bearer SECRET" }, 200],
    ["the secret in another case", { authorization: "Bearer SECRET_UPPER" }, 401],
    ["the secret with a second blank before it", { authorization: "Bearer  SECRET" }, 401],
    ["a foreign Origin (DNS rebinding)", { origin: "http://evil.example" }, 403],
    ["Origin null", { origin: "null" }, 403],
    ["an https Origin on a look-alike name", { origin: "https://127.0.0.1.evil.example" }, 403],
    ["a foreign Host (DNS rebinding)", { host: "evil.example:PORT" }, 403],
    ["a loopback Host on another port", { host: "127.0.0.1:1" }, 403],
    ["a foreign Origin even with the secret and a good Host", { origin: "http://attacker.invalid" }, 403],
  ])("%s → %s", async (_what, h: Record<string, string>, status) => {
    const headers: Record<string, string> = { host: `127.0.0.1:${rig.s.port}`, authorization: `Bearer ${rig.s.secret}` };
    for (const [k, v] of Object.entries(h)) headers[k] = v.replace("PORT", String(rig.s.port)).replace("SECRET_UPPER", rig.s.secret.toUpperCase()).replace("SECRET", rig.s.secret);
    if (headers.authorization === "") delete headers.authorization;
    const r = await raw(rig.s, headers);
    expect(r.status, r.body).toBe(status);
  });

  it("another path is 404, another method 405; the secret never reaches the server or the log", async () => {
    const auth = { host: `127.0.0.1:${rig.s.port}`, authorization: `Bearer ${rig.s.secret}` };
    expect((await raw(rig.s, auth, { path: "/other" })).status).toBe(404);
    expect((await raw(rig.s, auth, { method: "PUT" })).status).toBe(405);
    for (const h of rig.upstream) expect(h.get("authorization")).not.toContain(rig.s.secret);
    expect([...rig.errors, ...rig.debug].join("\n")).not.toContain(rig.s.secret);
  });

  it.each([
    ["127.0.0.1:8080", 8080, true],
    ["localhost:8080", 8080, true],
    ["[::1]:8080", 8080, true],
    ["LOCALHOST:8080", 8080, true],
    ["127.0.0.1:8081", 8080, false],
    ["127.0.0.1", 8080, false],
    ["example.com:8080", 8080, false],
    ["127.0.0.1:8080@evil.example", 8080, false],
    [undefined, 8080, false],
  ])("Host %s on port %s: %s", (host, port, ok) => {
    expect(loopbackHost(host, port)).toBe(ok);
  });

  it.each([
    ["http://127.0.0.1:5173", true],
    ["http://[::1]", true],
    ["https://localhost", true],
    ["http://evil.example", false],
    ["null", false],
    ["file://", false],
    ["http://127.0.0.1.nip.io", false],
  ])("Origin %s: %s", (origin, ok) => {
    expect(loopbackOrigin(origin)).toBe(ok);
  });
});

describe("serve: both eras pass through with a fresh token", () => {
  it("the official SDK's legacy client lists and calls tools through the endpoint with only the static header", async () => {
    const rig = await serve(legacy);
    const client = new Client({ name: "static-header-client", version: "0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(rig.s.url), { requestInit: { headers: { authorization: `Bearer ${rig.s.secret}` } } }));
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain("whoami");
    const r = await client.callTool({ name: "whoami", arguments: {} });
    expect(JSON.parse((r.content as Array<{ text: string }>)[0]!.text)).toMatchObject({ client_id: "sandbox-m2m" });
    // Every upstream request carried a sandbox token, not the secret.
    for (const h of rig.upstream) expect(h.get("authorization")).toMatch(/^Bearer ey/);
    await client.close();
    await rig.s.close();
  }, 30_000);

  it("a 2026-07-28 client's request-metadata headers and _meta reach the 2026-07-28 server", async () => {
    const rig = await serve(modern);
    const res = await fetch(rig.s.url, {
      method: "POST",
      headers: { authorization: `Bearer ${rig.s.secret}`, accept: "application/json, text/event-stream", "content-type": "application/json", "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "whoami" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {}, _meta: META } }),
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const json = text.trimStart().startsWith("{") ? text : text.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n");
    const m = JSON.parse(json);
    expect(JSON.parse(m.result.content[0].text)).toMatchObject({ client_id: "sandbox-m2m" });
    expect(rig.upstream.at(-1)!.get("mcp-method")).toBe("tools/call");
    expect(rig.upstream.at(-1)!.get("mcp-name")).toBe("whoami");
    await rig.s.close();
  }, 30_000);

  it("a legacy client in front of a 2026-07-28-only server is bridged: its session runs through the proxy's bridge", async () => {
    const rig = await serve(modern);
    const client = new Client({ name: "legacy-client", version: "0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(rig.s.url), { requestInit: { headers: { authorization: `Bearer ${rig.s.secret}` } } }));
    expect(client.getServerVersion()?.name).toBe("mcp-auth-sandbox");
    const r = await client.callTool({ name: "whoami", arguments: {} });
    expect(JSON.parse((r.content as Array<{ text: string }>)[0]!.text)).toMatchObject({ client_id: "sandbox-m2m" });
    // Upstream saw 2026-07-28 requests only: no initialize, each with its request-metadata headers.
    expect(rig.upstream.map((h) => h.get("mcp-method"))).toContain("tools/call");
    await client.close();
    await rig.s.close();
  }, 30_000);

  it("a 2026-07-28 client in front of a legacy server is bridged; its own request ids come back", async () => {
    const rig = await serve(legacy);
    const post = async (id: number | string, method: string, params: Record<string, unknown>) => {
      const res = await fetch(rig.s.url, {
        method: "POST",
        headers: { authorization: `Bearer ${rig.s.secret}`, accept: "application/json, text/event-stream", "content-type": "application/json", "mcp-protocol-version": "2026-07-28", "mcp-method": method },
        body: JSON.stringify({ jsonrpc: "2.0", id, method, params: { ...params, _meta: META } }),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { id: unknown; result: any };
    };
    const [discover, call] = await Promise.all([post("d", "server/discover", {}), post(7, "tools/call", { name: "whoami", arguments: {} })]);
    expect(discover).toMatchObject({ id: "d", result: { supportedVersions: ["2026-07-28"] } });
    expect(call.id).toBe(7);
    expect(JSON.parse(call.result.content[0].text)).toMatchObject({ client_id: "sandbox-m2m" });
    await rig.s.close();
  }, 30_000);

  it("a client that leaves an event stream closes the stream upstream (how 2026-07-28 cancels a request)", async () => {
    let cancelled = false;
    const rig = await serve(legacy, {
      token: async () => ({ access_token: "t", expires_at: Math.floor(Date.now() / 1000) + 3600 }),
      fetch: async () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start: (c) => c.enqueue(new TextEncoder().encode(": open\n\n")),
            cancel: () => void (cancelled = true),
          }),
          { status: 200, headers: { "content-type": "text/event-stream" } },
        ),
    });
    const abort = new AbortController();
    const res = await fetch(rig.s.url, { method: "POST", headers: { authorization: `Bearer ${rig.s.secret}`, "content-type": "application/json", accept: "application/json, text/event-stream" }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}', signal: abort.signal });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    await res.body!.getReader().read();
    abort.abort();
    await expect.poll(() => cancelled).toBe(true);
    await rig.s.close();
  });

  it("a server's event stream reaches the client as soon as its headers do, before any event", async () => {
    const rig = await serve(legacy, {
      token: async () => ({ access_token: "t", expires_at: Math.floor(Date.now() / 1000) + 3600 }),
      fetch: async () => new Response(new ReadableStream<Uint8Array>(), { status: 200, headers: { "content-type": "text/event-stream", "mcp-session-id": "s1" } }),
    });
    const stream = await openStream(rig.s, { ...auth(rig.s), "mcp-session-id": "s1" });
    expect(stream.status).toBe(200);
    expect(stream.headers["content-type"]).toBe("text/event-stream");
    stream.close();
    await rig.s.close();
  }, 10_000);

  it("a server's 405 to GET and DELETE (2026-07-28 has neither) comes back with its Allow header", async () => {
    const rig = await serve(modern);
    const h = { ...auth(rig.s), "mcp-protocol-version": "2026-07-28" };
    for (const method of ["GET", "DELETE"]) {
      const r = await raw(rig.s, h, { method });
      expect(r.status, r.body).toBe(405);
      expect(r.headers.allow).toContain("POST");
    }
    await rig.s.close();
  });

  it("a long answer streamed back leaves no listener behind for each chunk the client had to drain", async () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x3a); // ':' an event-stream comment
    const rig = await serve(legacy, {
      token: async () => ({ access_token: "t", expires_at: Math.floor(Date.now() / 1000) + 3600 }),
      fetch: async () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start: (c) => {
              for (let i = 0; i < 40; i++) c.enqueue(chunk);
              c.close();
            },
          }),
          { status: 200, headers: { "content-type": "text/event-stream" } },
        ),
    });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    try {
      const r = await raw(rig.s, auth(rig.s), { body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big"}}' });
      expect(r.body.length).toBe(40 * chunk.length);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      expect(warnings.filter((w) => w.startsWith("MaxListenersExceededWarning"))).toEqual([]);
    } finally {
      process.off("warning", onWarning);
      await rig.s.close();
    }
  });

  it("a token the server refuses is renewed once; one still refused is a JSON-RPC error for the client, reported once", async () => {
    let calls = 0;
    const rig = await serve(legacy, {
      token: async () => {
        const t = await realToken(legacy);
        return ++calls === 1 ? { ...t, access_token: `${t.access_token.slice(0, -4)}AAAA` } : t;
      },
    });
    const auth = { host: `127.0.0.1:${rig.s.port}`, authorization: `Bearer ${rig.s.secret}` };
    const ok = await raw(rig.s, auth);
    expect(ok.status, ok.body).toBe(200);
    expect(calls).toBe(2);
    await rig.s.close();

    const bad = await serve(legacy, { token: async () => ({ ...(await realToken(legacy)), access_token: "not-a-token" }) });
    const a = { host: `127.0.0.1:${bad.s.port}`, authorization: `Bearer ${bad.s.secret}` };
    const r1 = await raw(bad.s, a);
    const r2 = await raw(bad.s, a);
    expect(r1.status).toBe(502);
    expect(JSON.parse(r1.body)).toMatchObject({ jsonrpc: "2.0", id: 1, error: { code: -31000, message: expect.stringContaining("refused the token of profile \"sb\"") } });
    expect(r2.status).toBe(502);
    expect(bad.errors).toHaveLength(1);
    await bad.s.close();
  }, 30_000);
});

describe("serve: the era bridges", () => {
  it.each([
    ["a method that is not a string", '{"jsonrpc":"2.0","id":2,"method":5}'],
    ["an id that is not an integer", '{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}'],
    ["an id that is an object", '{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}'],
    ["a null id on a request", '{"jsonrpc":"2.0","id":null,"method":"tools/list"}'],
  ])("a bridged session answers a body that is not a JSON-RPC message (%s) with 400, at once", async (_what, body) => {
    const rig = await serve(modern);
    const sid = await legacySession(rig.s);
    const r = await raw(rig.s, { ...auth(rig.s), "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" }, { body });
    expect(r.status).toBe(400);
    expect(rig.errors).toEqual([]);
    await rig.s.close();
  }, 10_000);

  it("a bridged session ended by DELETE, or one serve never gave, is 404 (the client then starts a new session)", async () => {
    const rig = await serve(modern);
    const sid = await legacySession(rig.s);
    const list = '{"jsonrpc":"2.0","id":2,"method":"tools/list"}';
    const h = (id: string) => ({ ...auth(rig.s), "mcp-session-id": id, "mcp-protocol-version": "2025-06-18" });
    expect((await raw(rig.s, h(sid), { body: list })).status).toBe(200);
    expect((await raw(rig.s, h(sid), { method: "DELETE" })).status).toBe(200);
    expect((await raw(rig.s, h(sid), { body: list })).status).toBe(404);
    expect((await raw(rig.s, h("never-given"), { body: list })).status).toBe(404);
    // A new initialize, even one that still carries the old id, starts a new session.
    const again = await raw(rig.s, h(sid));
    expect(again.status, again.body).toBe(200);
    expect(again.headers["mcp-session-id"]).not.toBe(sid);
    await rig.s.close();
  }, 10_000);

  it("past 32 bridged sessions the one left unused longest ends, not the oldest one still in use", async () => {
    const rig = await serve(modern);
    const list = '{"jsonrpc":"2.0","id":2,"method":"tools/list"}';
    const h = (id: string) => ({ ...auth(rig.s), "mcp-session-id": id, "mcp-protocol-version": "2025-06-18" });
    const sessions: string[] = [];
    for (let i = 0; i < 32; i++) sessions.push(await legacySession(rig.s));
    expect((await raw(rig.s, h(sessions[0]!), { body: list })).status).toBe(200);
    await legacySession(rig.s); // the 33rd
    expect((await raw(rig.s, h(sessions[0]!), { body: list })).status).toBe(200);
    expect((await raw(rig.s, h(sessions[1]!), { body: list })).status).toBe(404);
    await rig.s.close();
  }, 30_000);

  it("a bridged session's GET stream answers at once, before the server has anything to send", async () => {
    const rig = await serve(modern);
    const sid = await legacySession(rig.s);
    const stream = await openStream(rig.s, { ...auth(rig.s), "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" });
    expect(stream.status).toBe(200);
    expect(stream.headers["content-type"]).toBe("text/event-stream");
    expect(stream.headers["mcp-session-id"]).toBe(sid);
    stream.close();
    await rig.s.close();
  }, 10_000);

  it("the answer to a request its client left is not sent on the session's GET stream (2025-11-25 sends no response there)", async () => {
    const hold = holding("tools/call");
    const rig = await serve(modern, { fetch: hold.fetch });
    const sid = await legacySession(rig.s);
    const h = { ...auth(rig.s), "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" };
    expect((await raw(rig.s, h, { body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })).status).toBe(202);
    const stream = await openStream(rig.s, h);
    const call = leaving(rig.s, h, '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{}}}');
    await hold.reached;
    call.leave();
    hold.release();
    await hold.answered;
    // A request after it: by its answer, the left one's has long been through the bridge.
    expect((await raw(rig.s, h, { body: '{"jsonrpc":"2.0","id":4,"method":"tools/list"}' })).status).toBe(200);
    expect(stream.data()).not.toContain('"result"');
    stream.close();
    await rig.s.close();
  }, 10_000);

  /** serve in front of the legacy server, a tools/call held there, every body sent upstream; a 2026-07-28 client has discovered it. */
  async function discoveredWithHeldCall() {
    const hold = holding("tools/call");
    const sent: string[] = [];
    const rig = await serve(legacy, { fetch: (async (u, init) => (sent.push(textOf(init)), hold.fetch(u, init))) as typeof fetch });
    const h = { ...auth(rig.s), "mcp-protocol-version": "2026-07-28" };
    expect((await raw(rig.s, { ...h, "mcp-method": "server/discover" }, { body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "server/discover", params: { _meta: META } }) })).status).toBe(200);
    return { hold, sent, rig, h };
  }

  it("a 2026-07-28 client that leaves its bridged request cancels it at the legacy server (2026-07-28: leaving is cancelling)", async () => {
    const { hold, sent, rig, h } = await discoveredWithHeldCall();
    const call = leaving(rig.s, { ...h, "mcp-method": "tools/call", "mcp-name": "whoami" }, JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "whoami", arguments: {}, _meta: META } }));
    await hold.reached;
    call.leave();
    await expect.poll(() => sent.find((b) => b.includes('"notifications/cancelled"'))).toBeDefined();

    const upstreamId = JSON.parse(sent.find((b) => b.includes('"tools/call"'))!).id;
    expect(JSON.parse(sent.find((b) => b.includes('"notifications/cancelled"'))!).params.requestId).toBe(upstreamId);
    hold.release();
    await rig.s.close();
  }, 10_000);

  it("a 2026-07-28 client's notifications/cancelled cannot cancel another client's bridged request", async () => {
    const { hold, sent, rig, h } = await discoveredWithHeldCall();
    const call = raw(rig.s, { ...h, "mcp-method": "tools/call", "mcp-name": "whoami" }, { body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {}, _meta: META } }) });
    await hold.reached;
    const theirs = JSON.parse(sent.find((b) => b.includes('"tools/call"'))!).id;
    // Another client names the id the bridge gave the first one's request.
    const cancel = await raw(rig.s, { ...h, "mcp-method": "notifications/cancelled" }, { body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: theirs } }) });
    expect(cancel.status).toBe(202);
    hold.release();
    expect((await call).status).toBe(200);
    expect(sent.filter((b) => b.includes('"notifications/cancelled"'))).toEqual([]);
    await rig.s.close();
  }, 10_000);

  it("2026-07-28 clients share the bridge to a legacy server: one's long tools/call, its first request, does not hold another's", async () => {
    const hold = holding("tools/call");
    const rig = await serve(legacy, { fetch: hold.fetch });
    const h = { ...auth(rig.s), "mcp-protocol-version": "2026-07-28" };
    const call = raw(rig.s, { ...h, "mcp-method": "tools/call", "mcp-name": "whoami" }, { body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {}, _meta: META } }) });
    await hold.reached;
    // Another client, while the server still works on the call.
    const list = await raw(rig.s, { ...h, "mcp-method": "tools/list" }, { body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: { _meta: META } }) });
    expect(list.status, list.body).toBe(200);
    expect(JSON.parse(list.body)).toMatchObject({ id: 1, result: { tools: expect.arrayContaining([expect.objectContaining({ name: "whoami" })]) } });
    hold.release();
    const answer = await call;
    expect(answer.status, answer.body).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ id: 1, result: { content: [{ type: "text", text: expect.stringContaining(legacy.clients.m2m.clientId) }] } });
    expect(rig.errors).toEqual([]);
    await rig.s.close();
  }, 10_000);

  it("a 2026-07-28 client's subscriptions/listen at a legacy server is an event stream: acknowledged under the client's id; leaving it cancels it", async () => {
    const rig = await serve(legacy);
    const h = { ...auth(rig.s), "mcp-protocol-version": "2026-07-28" };
    expect((await raw(rig.s, { ...h, "mcp-method": "server/discover" }, { body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "server/discover", params: { _meta: META } }) })).status).toBe(200);
    const listen = await openStream(rig.s, { ...h, "mcp-method": "subscriptions/listen" }, JSON.stringify({ jsonrpc: "2.0", id: "sub-1", method: "subscriptions/listen", params: { notifications: { toolsListChanged: true }, _meta: META } }));
    expect(listen.status).toBe(200);
    expect(listen.headers["content-type"]).toBe("text/event-stream");
    await expect.poll(() => listen.data()).toContain("\n\n");
    const ack = JSON.parse(/^data: (.*)$/m.exec(listen.data())![1]!);
    expect(ack).toMatchObject({ method: "notifications/subscriptions/acknowledged", params: { notifications: { toolsListChanged: true }, _meta: { "io.modelcontextprotocol/subscriptionId": "sub-1" } } });
    listen.close();
    // The bridge is told, under the id it gave the request (its trace), and ends the subscription.
    await expect.poll(() => rig.debug.find((l) => l.includes('"notifications/cancelled"'))).toMatch(/"requestId":"serve-\d+"/);
    await rig.s.close();
  }, 10_000);

  it("the event streams serve holds open itself carry a keep-alive comment while quiet (a client's idle timeout would end them)", async () => {
    const timers = manualTimers();
    const rig = await serve(modern, { timers });
    const sid = await legacySession(rig.s);
    const stream = await openStream(rig.s, { ...auth(rig.s), "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" });
    timers.fire();
    await expect.poll(() => stream.data()).toContain(": keepalive\n\n");
    timers.fire();
    await expect.poll(() => stream.data().split(": keepalive").length - 1).toBe(2);
    stream.close();
    await rig.s.close();

    const timers2 = manualTimers();
    const rig2 = await serve(legacy, { timers: timers2 });
    const h = { ...auth(rig2.s), "mcp-protocol-version": "2026-07-28" };
    expect((await raw(rig2.s, { ...h, "mcp-method": "server/discover" }, { body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "server/discover", params: { _meta: META } }) })).status).toBe(200);
    const listen = await openStream(rig2.s, { ...h, "mcp-method": "subscriptions/listen" }, JSON.stringify({ jsonrpc: "2.0", id: "sub-1", method: "subscriptions/listen", params: { notifications: { toolsListChanged: true }, _meta: META } }));
    timers2.fire();
    await expect.poll(() => listen.data()).toContain(": keepalive\n\n");
    listen.close();
    await rig2.s.close();
  }, 10_000);

  it("a 2026-07-28 client's body that is not a JSON-RPC message is not bridged: the legacy server answers it", async () => {
    const rig = await serve(legacy);
    const r = await raw(rig.s, { ...auth(rig.s), "mcp-protocol-version": "2026-07-28" }, { body: '{"jsonrpc":"2.0","id":1,"method":5}' });
    expect(r.status).toBe(400);
    expect(rig.errors).toEqual([]);
    await rig.s.close();
  }, 10_000);
});
