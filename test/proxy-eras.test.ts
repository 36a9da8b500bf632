import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eraCache, headerParams, headerValue, probeEra } from "../src/mcp/era.js";
import { PROXY_ERROR, runProxy, type BearerToken } from "../src/mcp/proxy.js";
import { createRelay, relayFromFetch, type RelayInit } from "../src/oauth/http.js";
import { startSandbox, type Sandbox } from "../src/sandbox/server.js";
import { startKubernetesMcp, type KubernetesMcp } from "./helpers/k8s-mcp.js";

/**
 * `mcp-auth proxy` across MCP eras (docs/mcp-2026-07-28.md), in-process, against real servers: the
 * sandbox's 2026-07-28-only server (the official SDK 2.x, @modelcontextprotocol/server, with 2025-era
 * requests rejected) and kubernetes-mcp-server 0.0.66 (legacy). Tokens are real client-credentials
 * tokens from the sandbox IdP; mid-session the proxy's clock passes the token's expiry and the next
 * token it gets is one the server refuses, so both the renewal and the refresh on 401 happen.
 */
const KCP_AUDIENCE = "urn:kcp:mcp";
/** The relay `mcp-auth proxy` uses, to the real servers. */
const realRelay = createRelay({ timeoutMs: 30_000, env: {} });
let modern: Sandbox;
let both: Sandbox;
let k8s: KubernetesMcp;

beforeAll(async () => {
  modern = await startSandbox({ protocol: "2026-07-28" });
  both = await startSandbox({ protocol: "both" });
  k8s = await startKubernetesMcp({ issuer: modern.issuer, audience: KCP_AUDIENCE });
}, 60_000);
afterAll(async () => {
  await k8s?.stop();
  await modern?.close();
  await both?.close();
});

async function realToken(sb: Sandbox, resource: string): Promise<{ access_token: string; expires_in: number }> {
  const basic = Buffer.from(`${sb.clients.m2m.clientId}:${sb.clients.m2m.clientSecret}`).toString("base64");
  const res = await fetch(`${sb.issuer}/token`, {
    method: "POST",
    headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", resource, scope: "mcp:read" }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { access_token: string; expires_in: number };
}

type Msg = Record<string, any>;

function rig(url: string, audience: string) {
  let now = Date.now();
  const input = new PassThrough();
  const output = new PassThrough();
  const errors: string[] = [];
  const tokenCalls: boolean[] = [];
  const upstream: Array<{ method: string; headers: Headers; body?: Msg }> = [];
  const answers = new Map<unknown, (m: Msg) => void>();
  const fromProxy: Msg[] = [];
  let out = "";
  output.on("data", (d) => {
    out += d;
    let nl: number;
    while ((nl = out.indexOf("\n")) !== -1) {
      const m = JSON.parse(out.slice(0, nl));
      out = out.slice(nl + 1);
      fromProxy.push(m);
      if (m.id !== undefined && !m.method) answers.get(m.id)?.(m);
    }
  });
  // 1: a real token; 2 (after the clock passed its expiry): one the server refuses; 3 (forced): real again.
  const token = async ({ forceRefresh }: { forceRefresh: boolean }): Promise<BearerToken> => {
    tokenCalls.push(forceRefresh);
    const t = await realToken(modern, audience);
    const access = tokenCalls.length === 2 ? `${t.access_token.slice(0, -4)}AAAA` : t.access_token;
    return { access_token: access, expires_at: Math.floor(now / 1000) + t.expires_in };
  };
  const done = runProxy({
    url: new URL(url),
    input,
    output,
    token,
    relay: async (u, init) => {
      const body = typeof init.body === "string" ? (JSON.parse(init.body) as Msg) : undefined;
      upstream.push({ method: init.method, headers: new Headers(init.headers), body });
      return realRelay(u, init);
    },
    now: () => now,
    error: (l) => errors.push(l),
    owner: 'profile "p"',
    loginHint: "run: mcp-auth login p",
    drainMs: 5000,
  });
  let id = 0;
  const request = (method: string, params?: unknown): Promise<Msg> => {
    const n = ++id;
    const p = new Promise<Msg>((r) => answers.set(n, r));
    input.write(JSON.stringify({ jsonrpc: "2.0", id: n, method, ...(params === undefined ? {} : { params }) }) + "\n");
    return p;
  };
  const notify = (method: string) => input.write(JSON.stringify({ jsonrpc: "2.0", method }) + "\n");
  const close = async () => {
    input.end();
    await done;
  };
  return { request, notify, close, errors, tokenCalls, upstream, fromProxy, expire: () => (now += 24 * 3600 * 1000) };
}

const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": { name: "modern-client", version: "1" } };

describe("proxy across eras, with a token that expires mid-session", () => {
  const cases = [
    { name: "legacy client → 2026-07-28 server", client: "legacy", server: "modern" },
    { name: "2026-07-28 client → legacy server (kubernetes-mcp-server)", client: "modern", server: "legacy" },
    { name: "2026-07-28 client → 2026-07-28 server", client: "modern", server: "modern" },
    { name: "legacy client → legacy server (kubernetes-mcp-server)", client: "legacy", server: "legacy" },
  ] as const;

  it.each(cases)("$name", async ({ client, server }) => {
    eraCache.clear();
    const url = server === "modern" ? modern.mcpUrl : k8s.url;
    const r = rig(url, server === "modern" ? modern.mcpUrl : KCP_AUDIENCE);
    const call = (method: string, params: Record<string, unknown> = {}) => r.request(method, client === "modern" ? { ...params, _meta: meta } : params);

    if (client === "legacy") {
      const init = await r.request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "legacy-client", version: "1" } });
      expect(init.result, JSON.stringify(init)).toMatchObject({ protocolVersion: "2025-06-18", serverInfo: { name: server === "modern" ? "mcp-auth-sandbox" : expect.any(String) } });
      r.notify("notifications/initialized");
      expect((await r.request("ping")).result).toEqual({});
    } else {
      const d = await call("server/discover");
      expect(d.result, JSON.stringify(d)).toMatchObject({ resultType: "complete", supportedVersions: expect.arrayContaining(["2026-07-28"]), capabilities: { tools: expect.any(Object) } });
      if (server === "legacy") expect(d.result).toMatchObject({ supportedVersions: ["2026-07-28"], ttlMs: 0, cacheScope: "private" });
    }
    const list = await call("tools/list");
    expect(list.result?.tools?.length, JSON.stringify(list)).toBeGreaterThan(0);
    if (client === "modern") expect(list.result).toMatchObject({ resultType: "complete", ttlMs: expect.any(Number), cacheScope: expect.stringMatching(/^(public|private)$/) });
    else expect(list.result).not.toHaveProperty("resultType");

    r.expire(); // the proxy's clock passes the token's expiry: it renews, gets a refused token, refreshes
    const again = server === "modern" ? await call("tools/call", { name: "whoami", arguments: {} }) : await call("tools/list");
    expect(again.result, JSON.stringify(again)).toBeDefined();
    if (server === "modern") expect(again.result.content[0].text).toContain(modern.clients.m2m.clientId);
    expect(r.tokenCalls).toEqual([false, false, true]);
    await r.close();
    expect(r.errors).toEqual([]);

    const posts = r.upstream.filter((u) => u.method === "POST" && u.body?.method);
    if (server === "modern") {
      // No handshake, no session, the 2026-07-28 headers and _meta on every request.
      expect(posts.map((p) => p.body!.method)).not.toContain("initialize");
      for (const p of posts) {
        expect(p.headers.get("mcp-session-id")).toBeNull();
        expect(p.headers.get("mcp-protocol-version")).toBe("2026-07-28");
        expect(p.headers.get("mcp-method")).toBe(p.body!.method);
        expect(p.body!.params._meta["io.modelcontextprotocol/protocolVersion"]).toBe("2026-07-28");
      }
      expect(posts.find((p) => p.body!.method === "tools/call")!.headers.get("mcp-name")).toBe("whoami");
      expect(r.upstream.some((u) => u.method === "GET" || u.method === "DELETE")).toBe(false);
    } else {
      // One handshake upstream; nothing of 2026-07-28's _meta reaches the legacy server.
      expect(posts.filter((p) => p.body!.method === "initialize")).toHaveLength(1);
      for (const p of posts.filter((p) => p.body!.method !== "server/discover")) expect(JSON.stringify(p.body)).not.toContain("io.modelcontextprotocol/");
    }
  }, 60_000);
});

describe("era probe (server/discover, then initialize)", () => {
  it.each([
    { name: "2026-07-28-only server (SDK 2.x)", which: "modern", era: "modern", dual: false },
    // SDK 2.4's server/discover lists only the modern versions, although it also answers initialize.
    { name: "dual-era server (SDK 2.x)", which: "both", era: "modern", dual: false },
    { name: "kubernetes-mcp-server 0.0.66", which: "k8s", era: "legacy", dual: undefined },
  ] as const)("$name", async ({ which, era, dual }) => {
    eraCache.clear();
    const url = which === "k8s" ? k8s.url : which === "both" ? both.mcpUrl : modern.mcpUrl;
    const t = await realToken(which === "both" ? both : modern, which === "k8s" ? KCP_AUDIENCE : url);
    const authed = (u: URL, init: RelayInit) => realRelay(u, { ...init, headers: { ...init.headers, authorization: `Bearer ${t.access_token}` } });
    const p = await probeEra(authed, new URL(url));
    expect(p.era, p.detail).toBe(era);
    if (era === "modern") expect(p).toMatchObject({ version: "2026-07-28", dualEra: dual });
    else expect(p.version).toMatch(/^2025-/);
    expect(eraCache.get(new URL(url).origin)).toBe(p);
  }, 30_000);

  it.each([
    { name: "2026-07-28-only server (SDK 2.x): older clients are refused", which: "modern", dual: false },
    { name: "dual-era server (SDK 2.x): older clients still get in", which: "both", dual: true },
  ] as const)("askLegacy (doctor's report), $name", async ({ which, dual }) => {
    eraCache.clear();
    const sb = which === "both" ? both : modern;
    const t = await realToken(sb, sb.mcpUrl);
    const authed = (u: URL, init: RelayInit) => realRelay(u, { ...init, headers: { ...init.headers, authorization: `Bearer ${t.access_token}` } });
    const p = await probeEra(authed, new URL(sb.mcpUrl), { fresh: true, askLegacy: true });
    expect(p).toMatchObject({ era: "modern", version: "2026-07-28", dualEra: dual });
  }, 30_000);
});

describe("request metadata", () => {
  it.each([
    ["us-west1", "us-west1"],
    ["Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="],
    [" padded ", "=?base64?IHBhZGRlZCA=?="],
    ["line1\nline2", "=?base64?bGluZTEKbGluZTI=?="],
    ["=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="],
  ])("header value %j → %j (streamable-http, Value Encoding)", (v, want) => expect(headerValue(v)).toBe(want));

  it.each([
    { name: "valid", schema: { type: "object", properties: { region: { type: "string", "x-mcp-header": "Region" } } }, want: [{ name: "Region", path: ["region"] }] },
    { name: "nested properties", schema: { properties: { a: { type: "object", properties: { b: { type: "integer", "x-mcp-header": "B" } } } } }, want: [{ name: "B", path: ["a", "b"] }] },
    { name: "under items", schema: { properties: { a: { type: "array", items: { type: "string", "x-mcp-header": "A" } } } }, want: undefined },
    { name: "a number", schema: { properties: { a: { type: "number", "x-mcp-header": "A" } } }, want: undefined },
    { name: "duplicate names", schema: { properties: { a: { type: "string", "x-mcp-header": "X" }, b: { type: "string", "x-mcp-header": "x" } } }, want: undefined },
    { name: "not a token", schema: { properties: { a: { type: "string", "x-mcp-header": "A B" } } }, want: undefined },
  ])("x-mcp-header: $name", ({ schema, want }) => expect(headerParams(schema)).toEqual(want));
});

describe("input_required for a legacy client (basic/patterns/mrtr)", () => {
  function modernServer(needs: string) {
    const seen: Msg[] = [];
    const fetchImpl = async (_u: unknown, init?: RequestInit): Promise<Response> => {
      const m = JSON.parse(String(init?.body)) as Msg;
      seen.push(m);
      const json = (result: unknown) => new Response(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }), { headers: { "content-type": "application/json" } });
      if (m.method === "server/discover") return json({ resultType: "complete", supportedVersions: ["2026-07-28"], capabilities: { tools: {} }, _meta: { "io.modelcontextprotocol/serverInfo": { name: "mrtr", version: "1" } }, ttlMs: 0, cacheScope: "public" });
      const p = m.params as Msg;
      if (!p.inputResponses) return json({ resultType: "input_required", inputRequests: { q: { method: needs, params: { message: "name?", requestedSchema: { type: "object", properties: {} } } } }, requestState: "opaque-1" });
      return json({ resultType: "complete", content: [{ type: "text", text: `got ${JSON.stringify(p.inputResponses.q)} state ${p.requestState}` }] });
    };
    return { seen, fetchImpl };
  }
  const start = (fetchImpl: (u: unknown, init?: RequestInit) => Promise<Response>) => {
    const input = new PassThrough();
    const output = new PassThrough();
    const got: Msg[] = [];
    let out = "";
    output.on("data", (d) => {
      out += d;
      let nl: number;
      while ((nl = out.indexOf("\n")) !== -1) {
        got.push(JSON.parse(out.slice(0, nl)));
        out = out.slice(nl + 1);
      }
    });
    const done = runProxy({ url: new URL("https://mcp.example.invalid/mcp"), input, output, token: async () => ({ access_token: "T", expires_at: 4e9 }), relay: relayFromFetch(fetchImpl as never), now: () => Date.now(), error: () => {}, owner: 'profile "p"', loginHint: "", drainMs: 2000 });
    const until = async (f: () => unknown) => {
      for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    return { input, got, done, until, send: (m: Msg) => input.write(JSON.stringify({ jsonrpc: "2.0", ...m }) + "\n") };
  };

  it("elicitation becomes the legacy elicitation/create request, and the retry carries the answer and requestState under a new id", async () => {
    const s = modernServer("elicitation/create");
    const p = start(s.fetchImpl);
    p.send({ id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: { elicitation: {} }, clientInfo: { name: "c", version: "1" } } });
    p.send({ id: 2, method: "tools/call", params: { name: "t", arguments: {} } });
    await p.until(() => p.got.some((m) => m.method === "elicitation/create"));
    const ask = p.got.find((m) => m.method === "elicitation/create")!;
    p.send({ id: ask.id, result: { action: "accept", content: { name: "octocat" } } });
    await p.until(() => p.got.some((m) => m.id === 2));
    p.input.end();
    await p.done;
    expect(p.got.find((m) => m.id === 2)!.result.content[0].text).toBe('got {"action":"accept","content":{"name":"octocat"}} state opaque-1');
    const calls = s.seen.filter((m) => m.method === "tools/call");
    expect(calls).toHaveLength(2);
    expect(calls[1]!.id).not.toBe(calls[0]!.id);
  });

  it("a request the client did not declare a capability for is a clear error with the proxy's own code", async () => {
    const s = modernServer("sampling/createMessage");
    const p = start(s.fetchImpl);
    p.send({ id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "c", version: "1" } } });
    p.send({ id: 2, method: "tools/call", params: { name: "t", arguments: {} } });
    await p.until(() => p.got.some((m) => m.id === 2));
    p.input.end();
    await p.done;
    expect(p.got.find((m) => m.id === 2)!.error).toMatchObject({ code: PROXY_ERROR, message: expect.stringContaining("sampling/createMessage") });
    expect(PROXY_ERROR < -32768 || PROXY_ERROR > -32000).toBe(true);
  });
});

/**
 * A legacy server's own requests (elicitation/create, sampling/createMessage, roots/list), made while
 * it serves a 2026-07-28 client's tools/call, reach that client as the call's input_required result;
 * the client's retry carries the answers (basic/patterns/mrtr). The server is the official SDK 1.x
 * (2025-11-25) with sessions and event-stream answers, so its requests ride the call's POST stream.
 */
describe("a legacy server's requests for a 2026-07-28 client (input_required)", () => {
  let server: import("node:http").Server;
  let url: string;
  beforeAll(async () => {
    const http = await import("node:http");
    const { randomUUID } = await import("node:crypto");
    const { McpServer } = await import("@modelcontextprotocol/sdk/server/mcp.js");
    const { StreamableHTTPServerTransport } = await import("@modelcontextprotocol/sdk/server/streamableHttp.js");
    const types = await import("@modelcontextprotocol/sdk/types.js");
    const asks = {
      "elicitation/create": { params: { message: "Your GitHub login?", requestedSchema: { type: "object", properties: { name: { type: "string" } } } }, schema: types.ElicitResultSchema },
      "sampling/createMessage": { params: { messages: [{ role: "user", content: { type: "text", text: "Capital of France?" } }], maxTokens: 10 }, schema: types.CreateMessageResultSchema },
      "roots/list": { params: {}, schema: types.ListRootsResultSchema },
    } as const;
    const sessions = new Map<string, InstanceType<typeof StreamableHTTPServerTransport>>();
    server = http.createServer(async (req, res) => {
      const sid = req.headers["mcp-session-id"];
      let t = typeof sid === "string" ? sessions.get(sid) : undefined;
      if (!t) {
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, onsessioninitialized: (id) => void sessions.set(id, transport) });
        const mcp = new McpServer({ name: "legacy-asker", version: "1.0.0" });
        for (const [method, a] of Object.entries(asks)) {
          mcp.registerTool(`ask-${method.split("/")[0]}`, { description: `asks the client for ${method}` }, async (extra) => {
            const answer = await extra.sendRequest({ method, params: a.params } as never, a.schema as never);
            return { content: [{ type: "text" as const, text: `answer: ${JSON.stringify(answer)}` }] };
          });
        }
        // Resources with per-URI subscriptions, and a tool that changes things: the legacy server's own
        // change notifications (tools list on its GET stream, resources/updated for subscribed URIs).
        const subscribed = new Set<string>();
        mcp.registerResource("a", "mem://a", {}, async () => ({ contents: [{ uri: "mem://a", text: "a" }] }));
        mcp.server.registerCapabilities({ resources: { subscribe: true, listChanged: true } });
        mcp.server.setRequestHandler(types.SubscribeRequestSchema, async (r) => (subscribed.add(r.params.uri), {}));
        mcp.server.setRequestHandler(types.UnsubscribeRequestSchema, async (r) => (subscribed.delete(r.params.uri), {}));
        mcp.registerTool("change", { description: "changes the tools and resource mem://a" }, async () => {
          mcp.sendToolListChanged();
          for (const uri of subscribed) await mcp.server.sendResourceUpdated({ uri });
          return { content: [{ type: "text" as const, text: `subscribed: ${[...subscribed].join(",")}` }] };
        });
        mcp.registerTool("ask-twice", { description: "elicits twice in a row" }, async (extra) => {
          const one = await extra.sendRequest({ method: "elicitation/create", params: asks["elicitation/create"].params } as never, types.ElicitResultSchema as never);
          const two = await extra.sendRequest({ method: "elicitation/create", params: { ...asks["elicitation/create"].params, message: "Sure?" } } as never, types.ElicitResultSchema as never);
          return { content: [{ type: "text" as const, text: `answers: ${JSON.stringify([one, two])}` }] };
        });
        await mcp.connect(transport);
        t = transport;
      }
      await t.handleRequest(req, res);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as import("node:net").AddressInfo).port}/mcp`;
  });
  afterAll(async () => {
    server.closeAllConnections(); // the sessions' GET streams
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** `hold`: a POST of that method is held at the relay until `release` (a server slow to answer it, with JSON). */
  const start = (hold?: string) => {
    eraCache.clear();
    const input = new PassThrough();
    const output = new PassThrough();
    const got: Msg[] = [];
    const posted: Msg[] = [];
    /** The session's trace: a line for each client message as soon as it is read. */
    const traced: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let out = "";
    output.on("data", (d) => {
      out += d;
      for (let nl = out.indexOf("\n"); nl !== -1; nl = out.indexOf("\n")) {
        got.push(JSON.parse(out.slice(0, nl)));
        out = out.slice(nl + 1);
      }
    });
    const relay = async (u: URL, init: RelayInit) => {
      const m = typeof init.body === "string" ? (JSON.parse(init.body) as Msg) : undefined;
      if (m) posted.push(m);
      if (hold && m?.method === hold) await held;
      return realRelay(u, init);
    };
    const done = runProxy({ url: new URL(url), input, output, token: async () => ({ access_token: "T", expires_at: 4e9 }), relay, now: () => Date.now(), error: () => {}, debug: (l) => traced.push(l), owner: 'profile "p"', loginHint: "", drainMs: 2000 });
    const answer = async (id: number): Promise<Msg> => {
      for (let i = 0; i < 500 && !got.some((m) => m.id === id && !m.method); i++) await new Promise((r) => setTimeout(r, 10));
      return got.find((m) => m.id === id && !m.method)!;
    };
    const send = (m: Msg) => input.write(JSON.stringify({ jsonrpc: "2.0", ...m }) + "\n");
    const until = async (f: () => unknown) => {
      for (let i = 0; i < 500 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    return { send, answer, until, got, posted, traced, release, close: async () => (input.end(), await done) };
  };
  const caps = { elicitation: {}, sampling: {}, roots: {} };
  const metaWith = (clientCapabilities: object) => ({ ...meta, "io.modelcontextprotocol/clientCapabilities": clientCapabilities });

  it.each([
    { method: "elicitation/create", tool: "ask-elicitation", input: { action: "accept", content: { name: "octocat" } } },
    { method: "sampling/createMessage", tool: "ask-sampling", input: { role: "assistant", content: { type: "text", text: "Paris" }, model: "m" } },
    { method: "roots/list", tool: "ask-roots", input: { roots: [{ uri: "file:///work", name: "work" }] } },
  ])("$method: input_required, then the retry's inputResponses answer the server", async ({ method, tool, input }) => {
    const p = start();
    p.send({ id: 1, method: "tools/call", params: { name: tool, arguments: {}, _meta: metaWith(caps) } });
    const first = await p.answer(1);
    expect(first?.result, JSON.stringify(first)).toMatchObject({ resultType: "input_required", requestState: expect.any(String) });
    const entries = Object.entries(first.result.inputRequests as Record<string, Msg>);
    expect(entries).toHaveLength(1);
    expect(entries[0]![1]).toMatchObject({ method });
    p.send({ id: 2, method: "tools/call", params: { name: tool, arguments: {}, inputResponses: { [entries[0]![0]]: input }, requestState: first.result.requestState, _meta: metaWith(caps) } });
    const done = await p.answer(2);
    expect(done?.result, JSON.stringify(done)).toMatchObject({ resultType: "complete" });
    expect(JSON.parse(done.result.content[0].text.replace(/^answer: /, ""))).toEqual(input);
    await p.close();
    // The retry stays with the proxy: the legacy server saw one tools/call, and the answer to its request.
    expect(p.posted.filter((m) => m.method === "tools/call")).toHaveLength(1);
    expect(p.posted.filter((m) => !m.method && m.result).map((m) => m.result)).toEqual([input]);
  }, 30_000);

  it("a long tools/call first does not hold the client's next request: that waits for the proxy's handshake only", async () => {
    const p = start("tools/call");
    p.send({ id: 1, method: "tools/call", params: { name: "change", arguments: {}, _meta: metaWith({}) } });
    p.send({ method: "notifications/cancelled", params: { requestId: 99 } }); // nothing the server knows: it ignores it
    p.send({ id: 2, method: "tools/list", params: { _meta: metaWith({}) } });
    const list = await p.answer(2);
    expect(list?.result?.tools?.map((t: Msg) => t.name), JSON.stringify(list)).toContain("change");
    expect(p.got.some((m) => m.id === 1)).toBe(false); // still held
    p.release();
    expect((await p.answer(1))?.result?.content?.[0]?.text).toBe("subscribed: ");
    await p.close();
    // One handshake, before anything of the client's.
    const methods = p.posted.map((m) => m.method).filter((m) => m !== "server/discover");
    expect(methods.slice(0, 2)).toEqual(["initialize", "notifications/initialized"]);
    expect(methods.slice(2).sort()).toEqual(["notifications/cancelled", "tools/call", "tools/list"]);
  }, 30_000);

  it("a legacy client's initialize holds what it sends next until the handshake is answered", async () => {
    const p = start("initialize");
    p.send({ id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "legacy", version: "1" } } });
    p.send({ method: "notifications/initialized" });
    p.send({ id: 2, method: "tools/list" });
    // initialize is on its way and held; the session has read the rest (and had every chance to send it on).
    await p.until(() => p.posted.some((m) => m.method === "initialize") && p.traced.some((l) => l.startsWith("stdio >") && l.includes('"tools/list"')));
    await new Promise((r) => setImmediate(r));
    expect(p.posted.map((m) => m.method).filter((m) => m !== "server/discover")).toEqual(["initialize"]);
    p.release();
    expect((await p.answer(1))?.result?.protocolVersion).toBe("2025-06-18");
    const list = await p.answer(2);
    expect(list?.result?.tools?.length, JSON.stringify(list)).toBeGreaterThan(0);
    await p.close();
    expect(p.posted.map((m) => m.method).filter((m) => m !== "server/discover")).toEqual(["initialize", "notifications/initialized", "tools/list"]);
  }, 30_000);

  it("two requests in a row: two input_required rounds, each retry under a new id", async () => {
    const p = start();
    p.send({ id: 1, method: "tools/call", params: { name: "ask-twice", arguments: {}, _meta: metaWith(caps) } });
    let last = await p.answer(1);
    for (const [id, name] of [[2, "a"], [3, "b"]] as const) {
      expect(last?.result, JSON.stringify(last)).toMatchObject({ resultType: "input_required" });
      const [key] = Object.keys(last.result.inputRequests);
      p.send({ id, method: "tools/call", params: { name: "ask-twice", arguments: {}, inputResponses: { [key!]: { action: "accept", content: { name } } }, requestState: last.result.requestState, _meta: metaWith(caps) } });
      last = await p.answer(id);
    }
    expect(last.result.content[0].text).toBe('answers: [{"action":"accept","content":{"name":"a"}},{"action":"accept","content":{"name":"b"}}]');
    await p.close();
  }, 30_000);

  it("a capability the client did not declare: the server gets a clear error, the client no input_required", async () => {
    const p = start();
    p.send({ id: 1, method: "tools/call", params: { name: "ask-sampling", arguments: {}, _meta: metaWith({}) } });
    const a = await p.answer(1);
    expect(a?.result?.resultType, JSON.stringify(a)).not.toBe("input_required");
    expect(JSON.stringify(a)).toContain("did not declare the sampling capability");
    await p.close();
  }, 30_000);

  it("a requestState the proxy did not issue is refused", async () => {
    const p = start();
    p.send({ id: 1, method: "tools/call", params: { name: "ask-roots", arguments: {}, inputResponses: {}, requestState: "forged", _meta: metaWith(caps) } });
    expect((await p.answer(1)).error).toMatchObject({ code: -32602 });
    await p.close();
  }, 30_000);

  it("subscriptions/listen: acknowledged as far as the server can, change notifications tagged, cancellation unsubscribes", async () => {
    const p = start();
    p.send({ id: 1, method: "server/discover", params: { _meta: metaWith({}) } });
    await p.answer(1);
    p.send({ id: 2, method: "subscriptions/listen", params: { _meta: metaWith({}), notifications: { toolsListChanged: true, promptsListChanged: true, resourceSubscriptions: ["mem://a"] } } });
    const sub = { "io.modelcontextprotocol/subscriptionId": 2 };
    await p.until(() => p.got.some((m) => m.method === "notifications/subscriptions/acknowledged"));
    // The server has no prompts: that part of the filter is not acknowledged.
    expect(p.got.find((m) => m.method === "notifications/subscriptions/acknowledged")).toMatchObject({ params: { _meta: sub, notifications: { toolsListChanged: true, resourceSubscriptions: ["mem://a"] } } });
    expect(p.got.find((m) => m.method === "notifications/subscriptions/acknowledged")!.params.notifications).not.toHaveProperty("promptsListChanged");
    p.send({ id: 3, method: "tools/call", params: { name: "change", arguments: {}, _meta: metaWith({}) } });
    expect((await p.answer(3)).result.content[0].text).toBe("subscribed: mem://a");
    await p.until(() => p.got.some((m) => m.method === "notifications/tools/list_changed") && p.got.some((m) => m.method === "notifications/resources/updated"));
    expect(p.got.find((m) => m.method === "notifications/tools/list_changed")).toMatchObject({ params: { _meta: sub } });
    expect(p.got.find((m) => m.method === "notifications/resources/updated")).toMatchObject({ params: { uri: "mem://a", _meta: sub } });
    p.send({ method: "notifications/cancelled", params: { requestId: 2 } });
    await p.until(() => p.posted.some((m) => m.method === "resources/unsubscribe"));
    p.send({ id: 4, method: "tools/call", params: { name: "change", arguments: {}, _meta: metaWith({}) } });
    expect((await p.answer(4)).result.content[0].text).toBe("subscribed: ");
    await p.close();
    expect(p.posted.filter((m) => m.method === "resources/subscribe").map((m) => m.params)).toEqual([{ uri: "mem://a" }]);
    expect(p.posted.find((m) => m.method === "resources/unsubscribe")!.params).toEqual({ uri: "mem://a" });
    expect(p.posted.map((m) => m.method)).not.toContain("notifications/cancelled");
    expect(p.got.filter((m) => m.id === 2)).toEqual([]); // the stream ended by the client gets no answer
  }, 30_000);
});
