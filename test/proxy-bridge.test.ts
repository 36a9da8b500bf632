import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { AuthError } from "../src/errors.js";
import { authorizedRelay, bearerCache, runProxy, type BearerToken } from "../src/mcp/proxy.js";
import { relayFromFetch } from "../src/oauth/http.js";

/**
 * The bridge in-process: streams for stdin/stdout, a scripted token source, a movable clock, and a
 * fetch that plays a Streamable HTTP server (JSON answers) which accepts only the tokens it is told to.
 * The real CLI against real servers is test/proxy.test.ts; this is for counts and races.
 */
function rig(o: { accept: (token: string) => boolean; tokens: string[]; lifetimeSec?: number }) {
  let now = 1_700_000_000_000;
  const input = new PassThrough();
  const output = new PassThrough();
  const errors: string[] = [];
  const tokenCalls: boolean[] = [];
  const seen: Array<{ method: string; auth: string | null; session: string | null }> = [];
  let out = "";
  const answers = new Map<number, (m: any) => void>();
  output.on("data", (d) => {
    out += d;
    let nl: number;
    while ((nl = out.indexOf("\n")) !== -1) {
      const m = JSON.parse(out.slice(0, nl));
      out = out.slice(nl + 1);
      if (m.id !== undefined) answers.get(m.id)?.(m);
    }
  });
  const token = async ({ forceRefresh }: { forceRefresh: boolean }): Promise<BearerToken> => {
    tokenCalls.push(forceRefresh);
    await new Promise((r) => setTimeout(r, 10)); // an IdP round trip, so that callers overlap
    if (!o.tokens.length) throw new AuthError('profile "p" needs a login (browser) and this is not an interactive terminal', { hint: "run: mcp-auth login p" });
    const t = o.tokens[Math.min(tokenCalls.length - 1, o.tokens.length - 1)]!;
    return { access_token: t, expires_at: Math.floor(now / 1000) + (o.lifetimeSec ?? 3600) };
  };
  const fetch = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const h = new Headers(init?.headers);
    const auth = h.get("authorization");
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
    seen.push({ method: init?.method ?? "GET", auth, session: h.get("mcp-session-id") });
    if (!o.accept(auth?.replace(/^Bearer /, "") ?? "")) return new Response("", { status: 401, headers: { "www-authenticate": 'Bearer error="invalid_token"' } });
    if (init?.method !== "POST") return new Response(null, { status: 405 });
    if (body.id === undefined) return new Response(null, { status: 202 });
    const result = body.method === "initialize" ? { protocolVersion: "2025-06-18", capabilities: {}, serverInfo: { name: "fake", version: "0" } } : { echo: body.method };
    return new Response(JSON.stringify({ jsonrpc: "2.0", id: body.id, result }), { status: 200, headers: { "content-type": "application/json", "mcp-session-id": "s-1" } });
  };
  const done = runProxy({
    url: new URL("https://mcp.example.invalid/mcp"),
    input,
    output,
    token,
    relay: relayFromFetch(fetch),
    now: () => now,
    error: (l) => errors.push(l),
    owner: 'profile "p"',
    loginHint: "run: mcp-auth login p",
    drainMs: 2000,
  });
  let id = 0;
  const request = (method: string) => {
    const n = ++id;
    const p = new Promise<any>((r) => answers.set(n, r));
    input.write(JSON.stringify({ jsonrpc: "2.0", id: n, method }) + "\n");
    return p;
  };
  return { o, input, errors, tokenCalls, seen, request, done, advance: (ms: number) => (now += ms), raw: (line: string) => input.write(line) };
}

describe("runProxy (in-process)", () => {
  it("parallel first requests share one token request; the session id is kept", async () => {
    const r = rig({ accept: (t) => t === "A", tokens: ["A"] });
    expect((await r.request("initialize")).result.serverInfo.name).toBe("fake");
    const answers = await Promise.all([1, 2, 3, 4, 5].map(() => r.request("tools/list")));
    expect(answers.every((a) => a.result?.echo === "tools/list")).toBe(true);
    expect(r.tokenCalls).toEqual([false]);
    // the era probe (server/discover) and initialize go without a session; everything after carries it
    expect(r.seen.filter((s) => s.method === "POST").slice(2).every((s) => s.session === "s-1")).toBe(true);
    r.input.end();
    await r.done;
  });

  it("five requests refused at once → one forced renewal, five retries that succeed, nothing on stderr", async () => {
    const r = rig({ accept: () => true, tokens: ["A", "B"] });
    await r.request("initialize");
    r.o.accept = (t) => t === "B"; // the server stops taking A
    const answers = await Promise.all([1, 2, 3, 4, 5].map(() => r.request("tools/list")));
    expect(answers.every((a) => a.result?.echo === "tools/list")).toBe(true);
    expect(r.tokenCalls).toEqual([false, true]);
    expect(r.errors).toEqual([]);
    r.input.end();
    await r.done;
  });

  it("renews shortly before expiry: a 30 s token is used for 15 s", async () => {
    const r = rig({ accept: () => true, tokens: ["A", "B"], lifetimeSec: 30 });
    await r.request("initialize");
    r.advance(14_000);
    await r.request("tools/list");
    expect(r.tokenCalls).toEqual([false]);
    r.advance(2_000);
    await r.request("tools/list");
    expect(r.tokenCalls).toEqual([false, false]);
    expect(r.seen.at(-1)!.auth).toBe("Bearer B");
    r.input.end();
    await r.done;
  });

  it("refused after renewal → a JSON-RPC error per request, one stderr line, and the bridge keeps going", async () => {
    const r = rig({ accept: () => false, tokens: ["A", "B", "C"] });
    const a = await r.request("initialize");
    const b = await r.request("tools/list");
    for (const m of [a, b]) expect(m.error).toMatchObject({ code: -31000, data: { status: 401 }, message: expect.stringContaining("mcp-auth login p") });
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/refused the token of profile "p".*run: mcp-auth login p/);
    r.input.end();
    await r.done;
  });

  it("a token source that fails (login needed) answers the request with its message", async () => {
    const r = rig({ accept: () => true, tokens: [] });
    const a = await r.request("initialize");
    expect(a.error).toMatchObject({ code: -31000, message: expect.stringMatching(/needs a login.*run: mcp-auth login p/) });
    expect(r.errors).toEqual([expect.stringContaining("run: mcp-auth login p")]);
    r.input.end();
    await r.done;
  });

  it("a line that is not JSON-RPC is reported and skipped; answers owed when stdin closes are still delivered", async () => {
    const r = rig({ accept: () => true, tokens: ["A"] });
    r.raw("this is not json\n");
    const init = r.request("initialize");
    r.input.end();
    expect((await init).result.serverInfo.name).toBe("fake");
    await r.done;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toContain("not JSON-RPC");
  });
});

/**
 * -32020 (HeaderMismatch) on a tools/call (streamable-http, "Request Metadata"): the tool's
 * x-mcp-header annotations changed since the client's tools/list; the proxy reads tools/list again
 * and retries once with the new Mcp-Param-* headers, under a new JSON-RPC id.
 */
describe("runProxy: -32020 on tools/call", () => {
  const modernServer = (o: { header: () => string; alwaysMismatch?: boolean }) => {
    const calls: Array<{ id: unknown; method: string; headers: Headers }> = [];
    const fetch = async (_u: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const h = new Headers(init?.headers);
      const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
      if (init?.method !== "POST") return new Response(null, { status: 405 });
      calls.push({ id: body.id, method: body.method, headers: h });
      const answer = (status: number, rest: object) => new Response(JSON.stringify({ jsonrpc: "2.0", id: body.id, ...rest }), { status, headers: { "content-type": "application/json" } });
      const tool = { name: "get", inputSchema: { type: "object", properties: { region: { type: "string", "x-mcp-header": o.header() } } } };
      if (body.method === "server/discover") return answer(200, { result: { resultType: "complete", supportedVersions: ["2026-07-28"], capabilities: { tools: {} }, _meta: { "io.modelcontextprotocol/serverInfo": { name: "m", version: "1" } } } });
      if (body.method === "tools/list") return answer(200, { result: { resultType: "complete", tools: [tool], ttlMs: 0, cacheScope: "private" } });
      if (body.method === "tools/call") {
        if (o.alwaysMismatch || h.get(`mcp-param-${o.header()}`) !== body.params.arguments.region) return answer(400, { error: { code: -32020, message: "Header mismatch" } });
        return answer(200, { result: { resultType: "complete", content: [{ type: "text", text: "ok" }] } });
      }
      return answer(404, { error: { code: -32601, message: "Method not found" } });
    };
    return { fetch, calls };
  };
  const drive = async (server: ReturnType<typeof modernServer>) => {
    const input = new PassThrough();
    const output = new PassThrough();
    const answers = new Map<number, (m: any) => void>();
    let out = "";
    output.on("data", (d) => {
      out += d;
      for (let nl = out.indexOf("\n"); nl !== -1; nl = out.indexOf("\n")) {
        const m = JSON.parse(out.slice(0, nl));
        out = out.slice(nl + 1);
        if (m.id !== undefined) answers.get(m.id)?.(m);
      }
    });
    const done = runProxy({ url: new URL("https://mcp.example.invalid/mcp"), input, output, token: async () => ({ access_token: "T", expires_at: 2_000_000_000 }), relay: relayFromFetch(server.fetch), now: () => 1_700_000_000_000, error: () => {}, owner: 'profile "p"', loginHint: "", drainMs: 2000 });
    let n = 0;
    const request = (method: string, params: unknown) => {
      const id = ++n;
      const p = new Promise<any>((r) => answers.set(id, r));
      input.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
      return p;
    };
    const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} };
    await request("tools/list", { _meta: meta });
    const call = await request("tools/call", { name: "get", arguments: { region: "eu-west" }, _meta: meta });
    input.end();
    await done;
    return call;
  };

  it("re-reads tools/list and retries once with the new header", async () => {
    let header = "Region";
    const s = modernServer({ header: () => header });
    const orig = s.fetch;
    let listed = 0;
    s.fetch = async (u, init) => {
      const r = await orig(u, init);
      if (typeof init?.body === "string" && JSON.parse(init.body).method === "tools/list" && ++listed === 1) header = "Zone"; // changed after the client's tools/list
      return r;
    };
    const call = await drive(s);
    expect(call, JSON.stringify(call)).toMatchObject({ id: 2, result: { content: [{ text: "ok" }] } });
    expect(s.calls.map((c) => c.method)).toEqual(["server/discover", "tools/list", "tools/call", "tools/list", "tools/call"]);
    const [first, retry] = s.calls.filter((c) => c.method === "tools/call");
    expect(first!.headers.get("mcp-param-region")).toBe("eu-west");
    expect(retry!.headers.get("mcp-param-zone")).toBe("eu-west");
    expect(retry!.id).not.toBe(first!.id);
  });

  it("a second -32020 goes to the client as the server's error, with no third try", async () => {
    const s = modernServer({ header: () => "Region", alwaysMismatch: true });
    const call = await drive(s);
    expect(call).toMatchObject({ id: 2, error: { code: -32020 } });
    expect(s.calls.filter((c) => c.method === "tools/call")).toHaveLength(2);
  });
});

/**
 * notifications/cancelled toward a 2026-07-28 server (basic/patterns/cancellation): on Streamable HTTP,
 * closing the request's answer stream is the cancellation, and no notification is expected; the client
 * gets no answer for the cancelled request, and the proxy goes on.
 */
describe("runProxy: cancellation toward a 2026-07-28 server", () => {
  it.each(["legacy", "modern"] as const)("a %s client's notifications/cancelled closes the request's stream", async (client) => {
    const posted: any[] = [];
    let aborted = false;
    let callStarted = false;
    const fetch = async (_u: string | URL | Request, init?: RequestInit): Promise<Response> => {
      if (init?.method !== "POST") return new Response(null, { status: 405 });
      const body = JSON.parse(String(init.body));
      posted.push(body);
      const json = (result: unknown) => new Response(JSON.stringify({ jsonrpc: "2.0", id: body.id, result }), { headers: { "content-type": "application/json" } });
      if (body.method === "server/discover") return json({ resultType: "complete", supportedVersions: ["2026-07-28"], capabilities: { tools: {} }, _meta: { "io.modelcontextprotocol/serverInfo": { name: "m", version: "1" } } });
      if (body.id === undefined) return new Response(null, { status: 202 });
      if (body.method === "tools/call") {
        callStarted = true;
        // A long tool call: a progress notification, then nothing until the client goes away.
        const stream = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode(`event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 1 } })}\n\n`));
            init.signal?.addEventListener("abort", () => {
              aborted = true;
              c.error(new DOMException("aborted", "AbortError"));
            });
          },
        });
        return new Response(stream, { headers: { "content-type": "text/event-stream" } });
      }
      return json({ resultType: "complete", tools: [], ttlMs: 0, cacheScope: "private" });
    };
    const { input, got, errors, done, send, until } = scriptedSession(fetch);
    const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} };
    const params = (p: object) => (client === "modern" ? { ...p, _meta: meta } : p);
    if (client === "legacy") send({ id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "c", version: "1" } } });
    send({ id: 2, method: "tools/call", params: params({ name: "slow", arguments: {} }) });
    await until(() => callStarted && got.some((m) => m.method === "notifications/progress"));
    send({ method: "notifications/cancelled", params: { requestId: 2, reason: "user" } });
    await until(() => aborted);
    send({ id: 3, method: "tools/list", params: params({}) });
    await until(() => got.some((m) => m.id === 3));
    input.end();
    await done;
    expect(aborted).toBe(true);
    expect(got.filter((m) => m.id === 2)).toEqual([]);
    expect(got.find((m) => m.id === 3)).toMatchObject({ result: { tools: [] } });
    expect(posted.map((m) => m.method)).not.toContain("notifications/cancelled");
    expect(errors).toEqual([]);
  });
});

/**
 * A legacy client in front of a 2026-07-28 server (basic/patterns/subscriptions): the list changes its
 * initialize result promises, and the resources it subscribes to, come from a subscriptions/listen
 * stream the proxy keeps open, reopened with the new filter when the client subscribes.
 */
describe("runProxy: change notifications for a legacy client at a 2026-07-28 server", () => {
  it("opens subscriptions/listen after initialized, reopens it on resources/subscribe, relays its notifications", async () => {
    const listens: Array<{ filter: any; aborted: boolean }> = [];
    const posted: any[] = [];
    const sse = (m: object) => new TextEncoder().encode(`event: message\ndata: ${JSON.stringify(m)}\n\n`);
    const fetch = async (_u: string | URL | Request, init?: RequestInit): Promise<Response> => {
      if (init?.method !== "POST") return new Response(null, { status: 405 });
      const body = JSON.parse(String(init.body));
      posted.push(body);
      const json = (result: unknown) => new Response(JSON.stringify({ jsonrpc: "2.0", id: body.id, result }), { headers: { "content-type": "application/json" } });
      if (body.method === "server/discover") return json({ resultType: "complete", supportedVersions: ["2026-07-28"], capabilities: { tools: { listChanged: true }, resources: { subscribe: true } }, _meta: { "io.modelcontextprotocol/serverInfo": { name: "m", version: "1" } } });
      if (body.method === "subscriptions/listen") {
        const l = { filter: body.params.notifications, aborted: false };
        listens.push(l);
        const sub = { "io.modelcontextprotocol/subscriptionId": body.id };
        const stream = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(sse({ jsonrpc: "2.0", method: "notifications/subscriptions/acknowledged", params: { _meta: sub, notifications: l.filter } }));
            if (l.filter.toolsListChanged) c.enqueue(sse({ jsonrpc: "2.0", method: "notifications/tools/list_changed", params: { _meta: sub } }));
            for (const uri of l.filter.resourceSubscriptions ?? []) c.enqueue(sse({ jsonrpc: "2.0", method: "notifications/resources/updated", params: { uri, _meta: sub } }));
            init.signal?.addEventListener("abort", () => {
              l.aborted = true;
              c.error(new DOMException("aborted", "AbortError"));
            });
          },
        });
        return new Response(stream, { headers: { "content-type": "text/event-stream" } });
      }
      return json({ resultType: "complete", tools: [], ttlMs: 0, cacheScope: "private" });
    };
    const { input, got, errors, done, send, until } = scriptedSession(fetch);
    send({ id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "c", version: "1" } } });
    await until(() => got.some((m) => m.id === 1));
    expect(got.find((m) => m.id === 1).result.capabilities).toMatchObject({ tools: { listChanged: true }, resources: { subscribe: true } });
    send({ method: "notifications/initialized" });
    await until(() => got.some((m) => m.method === "notifications/tools/list_changed"));
    send({ id: 2, method: "resources/subscribe", params: { uri: "mem://a" } });
    await until(() => got.some((m) => m.method === "notifications/resources/updated"));
    input.end();
    await done;
    expect(got.find((m) => m.id === 2)).toMatchObject({ result: {} });
    expect(listens.map((l) => l.filter)).toEqual([{ toolsListChanged: true }, { toolsListChanged: true, resourceSubscriptions: ["mem://a"] }]);
    expect(listens.map((l) => l.aborted)).toEqual([true, true]); // replaced, then closed with the proxy
    expect(got.find((m) => m.method === "notifications/resources/updated")).toMatchObject({ params: { uri: "mem://a" } });
    expect(got.map((m) => m.method)).not.toContain("notifications/subscriptions/acknowledged");
    expect(posted.every((m) => m.method !== "resources/subscribe")).toBe(true);
    expect(errors).toEqual([]);
  });
});

/** The proxy in-process against a scripted upstream `fetch`: what the client sends, and every line it gets back. */
function scriptedSession(fetch: typeof globalThis.fetch) {
  const input = new PassThrough();
  const output = new PassThrough();
  const got: any[] = [];
  const errors: string[] = [];
  let out = "";
  output.on("data", (d) => {
    out += d;
    for (let nl = out.indexOf("\n"); nl !== -1; nl = out.indexOf("\n")) {
      got.push(JSON.parse(out.slice(0, nl)));
      out = out.slice(nl + 1);
    }
  });
  const done = runProxy({ url: new URL("https://mcp.example.invalid/mcp"), input, output, token: async () => ({ access_token: "T", expires_at: 2_000_000_000 }), relay: relayFromFetch(fetch), now: () => 1_700_000_000_000, error: (l) => errors.push(l), owner: 'profile "p"', loginHint: "", drainMs: 2000 });
  const send = (m: object) => input.write(JSON.stringify({ jsonrpc: "2.0", ...m }) + "\n");
  const until = async (f: () => unknown) => {
    for (let i = 0; i < 300 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  return { input, got, errors, done, send, until };
}

describe("authorizedRelay", () => {
  it("extra headers never replace one the transport set (any case), the first of a name wins, and the token is always the profile's", async () => {
    const sent: Array<Record<string, string>> = [];
    const o = {
      url: new URL("https://mcp.example.invalid/mcp"),
      input: new PassThrough(),
      output: new PassThrough(),
      token: async () => ({ access_token: "T", expires_at: 2_000_000_000 }),
      relay: relayFromFetch(async (_u, init) => (sent.push({ ...(init?.headers as Record<string, string>) }), new Response("{}", { headers: { "content-type": "application/json" } }))),
      now: () => 1_700_000_000_000,
      error: () => {},
      owner: 'profile "p"',
      loginHint: "",
      headers: [["Accept", "text/plain"], ["X-Tenant", "acme"], ["x-tenant", "other"], ["Authorization", "Bearer planted"]] as const,
    };
    const relay = authorizedRelay(o, bearerCache(o));
    const a = await relay(o.url, { method: "POST", headers: { accept: "application/json, text/event-stream", "content-type": "application/json" }, body: "{}" });
    a.discard();
    expect(sent).toEqual([{ accept: "application/json, text/event-stream", "content-type": "application/json", "x-tenant": "acme", authorization: "Bearer T" }]);
  });
});
