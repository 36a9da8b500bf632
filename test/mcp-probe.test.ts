import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { describeEra, eraCache, eraReachable, probeEra } from "../src/mcp/era.js";
import { relayFromFetch } from "../src/oauth/http.js";
import { discoverMcp } from "../src/core/mcp-login.js";
import { octoperf } from "../src/providers/octoperf.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * The era probe every check shares (src/mcp/era.ts; docs/mcp-2026-07-28.md, "Telling the eras apart"):
 * server/discover first, initialize only when no modern answer came, never keyed to one error code; a
 * recognised modern error (-32020/-32021/-32022) means modern and never falls back (basic/versioning,
 * streamable-http and stdio "Backward Compatibility"). Then the checks built on it: doctor, login <url>,
 * bootstrap openproject / octoperf, against a 2026-07-28-only server.
 */
const rpcError = (code: number, message: string, data?: unknown) => JSON.stringify({ jsonrpc: "2.0", id: 1, error: { code, message, ...(data ? { data } : {}) } });
const rpcResult = (result: unknown) => JSON.stringify({ jsonrpc: "2.0", id: 1, result });
const UNSUPPORTED = rpcError(-32022, "Unsupported protocol version", { supported: ["2026-07-28"], requested: "2025-11-25" });
const DISCOVER = rpcResult({ resultType: "complete", supportedVersions: ["2026-07-28"], capabilities: { tools: {} }, ttlMs: 0, cacheScope: "public", _meta: { "io.modelcontextprotocol/serverInfo": { name: "modern", version: "1" } } });
const INIT = rpcResult({ protocolVersion: "2025-11-25", capabilities: {}, serverInfo: { name: "legacy", version: "1" } });
const json = { "content-type": "application/json" };

type Answer = [status: number, body: string, headers?: Record<string, string>];
describe("probeEra", () => {
  const table: Array<{ name: string; discover: Answer; initialize?: Answer; era: string; version?: string; dual?: boolean; supported?: string[]; refused?: boolean; sentInit: boolean; reachable: boolean; detail?: RegExp }> = [
    { name: "2026-07-28-only: a DiscoverResult", discover: [200, DISCOVER], era: "modern", version: "2026-07-28", dual: false, supported: ["2026-07-28"], sentInit: false, reachable: true, detail: /speaks 2026-07-28; it lists 2026-07-28 \(server\/discover answered 200/ },
    { name: "dual-era: discover lists both eras", discover: [200, rpcResult({ supportedVersions: ["2026-07-28", "2025-11-25"] })], era: "modern", version: "2026-07-28", dual: true, sentInit: false, reachable: true },
    { name: "DiscoverResult in an SSE event", discover: [200, `event: message\ndata: ${DISCOVER}\n\n`, { "content-type": "text/event-stream" }], era: "modern", version: "2026-07-28", sentInit: false, reachable: true },
    // kubernetes-mcp-server 0.0.66: answers discover, lists only legacy versions; the version both list is legacy.
    { name: "discover listing only legacy versions (kubernetes-mcp-server 0.0.66)", discover: [200, rpcResult({ supportedVersions: ["2025-11-25", "2025-06-18"] })], initialize: [200, INIT], era: "legacy", version: "2025-11-25", supported: ["2025-11-25", "2025-06-18"], sentInit: true, reachable: true },
    { name: "-32022 listing ours: modern, no second request", discover: [400, rpcError(-32022, "Unsupported", { supported: ["2026-07-28", "2025-11-25"], requested: "2026-07-28" })], era: "modern", version: "2026-07-28", sentInit: false, reachable: true },
    // The spec: a recognised modern error identifies a modern server; retry with a listed version, do not fall back.
    { name: "-32022 listing only legacy versions: modern, no fallback to initialize", discover: [400, rpcError(-32022, "Unsupported", { supported: ["2025-11-25"], requested: "2026-07-28" })], initialize: [200, INIT], era: "modern", supported: ["2025-11-25"], sentInit: false, reachable: true, detail: /no version in common/ },
    { name: "-32022 listing only a later modern version", discover: [400, rpcError(-32022, "Unsupported", { supported: ["2027-03-01"], requested: "2026-07-28" })], era: "modern", supported: ["2027-03-01"], sentInit: false, reachable: true },
    { name: "-32020 header mismatch", discover: [400, rpcError(-32020, "Header mismatch")], era: "modern", version: "2026-07-28", sentInit: false, reachable: true },
    { name: "-32021 missing client capability", discover: [400, rpcError(-32021, "Missing capability", { requiredCapabilities: {} })], era: "modern", version: "2026-07-28", sentInit: false, reachable: true },
    { name: "plain-text 400 → initialize", discover: [400, "Bad Request: unsupported protocol version"], initialize: [200, INIT, { "mcp-session-id": "s1" }], era: "legacy", version: "2025-11-25", sentInit: true, reachable: true },
    { name: "empty 400 → initialize", discover: [400, ""], initialize: [200, INIT], era: "legacy", sentInit: true, reachable: true },
    { name: "-32601 → initialize", discover: [404, rpcError(-32601, "Method not found")], initialize: [200, INIT], era: "legacy", sentInit: true, reachable: true },
    { name: "-32602 → initialize (not keyed to one code)", discover: [400, rpcError(-32602, "Invalid params")], initialize: [200, INIT], era: "legacy", sentInit: true, reachable: true },
    { name: "-32600 with 200 → initialize", discover: [200, rpcError(-32600, "Bad Request: Server not initialized")], initialize: [200, INIT], era: "legacy", sentInit: true, reachable: true },
    { name: "405 → initialize", discover: [405, ""], initialize: [200, INIT], era: "legacy", sentInit: true, reachable: true },
    { name: "initialize answered with a JSON-RPC error: still a legacy MCP server", discover: [400, ""], initialize: [400, rpcError(-32000, "Bad Request")], era: "legacy", sentInit: true, reachable: true },
    { name: "initialize answered -32022 naming 2026-07-28: modern", discover: [404, rpcError(-32601, "Method not found")], initialize: [400, UNSUPPORTED], era: "modern", version: "2026-07-28", sentInit: true, reachable: true },
    { name: "401 challenge: reachable, era unknown", discover: [401, "", { "www-authenticate": 'Bearer resource_metadata="https://x.invalid/.well-known/oauth-protected-resource"' }], era: "unknown", refused: true, sentInit: false, reachable: true },
    { name: "403 on initialize", discover: [400, ""], initialize: [403, ""], era: "unknown", refused: true, sentInit: true, reachable: true },
    { name: "404 HTML twice: not an MCP server", discover: [404, "<html>Not Found</html>"], initialize: [404, "<html>Not Found</html>"], era: "unknown", sentInit: true, reachable: false },
    { name: "500 with a JSON-RPC error: server trouble", discover: [500, ""], initialize: [500, rpcError(-32603, "Internal error")], era: "unknown", sentInit: true, reachable: false },
    { name: "a result with an error status is not one", discover: [400, rpcResult({ supportedVersions: ["2026-07-28"] })], initialize: [400, rpcResult({})], era: "unknown", sentInit: true, reachable: false },
    { name: "JSON without the JSON-RPC envelope", discover: [400, JSON.stringify({ error: { code: -32022 } })], initialize: [400, JSON.stringify({ error: {} })], era: "unknown", sentInit: true, reachable: false },
  ];
  it.each(table)("$name", async (c) => {
    eraCache.clear();
    const sent: Array<{ method: string; rpc?: string; headers: Headers; body?: any }> = [];
    const fetch = async (_u: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
      const headers = new Headers(init?.headers);
      sent.push({ method: init?.method ?? "GET", rpc: body?.method, headers, body });
      if (init?.method === "DELETE") return new Response(null, { status: 405 });
      const [status, text, h] = body?.method === "server/discover" ? c.discover : (c.initialize ?? [500, "unexpected"]);
      return new Response(text || null, { status, headers: { ...(text.startsWith("{") ? json : {}), ...h } });
    };
    const p = await probeEra(relayFromFetch(fetch), new URL("https://mcp.example.invalid/mcp"));
    expect(p.era, p.detail).toBe(c.era);
    if ("version" in c) expect(p.version).toBe(c.version);
    else if (c.era === "modern") expect(p.version).toBeUndefined();
    if (c.dual !== undefined) expect(p.dualEra).toBe(c.dual);
    if (c.supported) expect(p.supported).toEqual(c.supported);
    expect(Boolean(p.refused)).toBe(Boolean(c.refused));
    expect(eraReachable(p)).toBe(c.reachable);
    if (c.detail) expect(`${p.era}, ${describeEra(p)}`).toMatch(c.detail);
    expect(sent.some((s) => s.rpc === "initialize")).toBe(c.sentInit);
    // The probe is a well-formed modern request: _meta and the request-metadata headers.
    const d = sent[0]!;
    expect(d).toMatchObject({ method: "POST", rpc: "server/discover" });
    expect(d.headers.get("mcp-protocol-version")).toBe("2026-07-28");
    expect(d.headers.get("mcp-method")).toBe("server/discover");
    expect(d.body.params._meta).toMatchObject({ "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} });
    // A session the probe opened is ended.
    if (c.initialize?.[2]?.["mcp-session-id"]) expect(sent.at(-1)).toMatchObject({ method: "DELETE" });
    // Decided answers are cached per origin; refusals are not.
    expect(eraCache.has("https://mcp.example.invalid")).toBe(c.era !== "unknown");
  });

  it("server text is stripped of control characters and bounded", async () => {
    eraCache.clear();
    const evil = rpcResult({ supportedVersions: ["2026-07-28", "2025-11-25\u001b[2J", 7], _meta: { "io.modelcontextprotocol/serverInfo": { name: `evil\u0007${"x".repeat(500)}` } } });
    const p = await probeEra(relayFromFetch(async () => new Response(evil, { status: 200, headers: json })), new URL("https://mcp.example.invalid/mcp"));
    const line = describeEra(p);
    expect(line).not.toMatch(/[\u0000-\u001f]/);
    expect(line.length).toBeLessThan(600);
    expect(p.supported).toHaveLength(2);
  });
});

/**
 * A 2026-07-28-only MCP server as the spec pages describe it: `server/discover` and `tools/list` served
 * statelessly when `_meta` and the request-metadata headers are there (400/-32020 when a header is
 * missing), `initialize` refused with 400 and -32022 naming its versions. `/mcp` wants a bearer token
 * (401 with a challenge without it); `/open` wants none. It also serves OpenProject's
 * /api/v3/users/me, so the OpenProject API-token bootstrap can run against it.
 */
const TOKEN = "modern-server-token-1234";
let server: Server;
let base: string;
const seen: Array<{ method?: string; path?: string; auth?: string; rpc?: string }> = [];
beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      let m: { method?: string; id?: unknown; params?: { _meta?: Record<string, unknown> } } = {};
      try {
        m = JSON.parse(raw);
      } catch {
        /* not JSON */
      }
      seen.push({ method: req.method, path: req.url, auth: req.headers.authorization, rpc: m.method });
      const authed = req.headers.authorization === `Bearer ${TOKEN}`;
      if (req.url === "/api/v3/users/me") {
        if (!authed) return void res.writeHead(401, { "content-type": "application/hal+json" }).end('{"_type":"Error","message":"You did not provide the correct credentials."}');
        return void res.writeHead(200, { "content-type": "application/hal+json" }).end('{"_type":"User","login":"alice"}');
      }
      if ((req.url !== "/mcp" && req.url !== "/open") || req.method !== "POST") return void res.writeHead(req.method === "POST" ? 404 : 405).end();
      if (req.url === "/mcp" && !authed) return void res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"` }).end();
      const answer = (status: number, body: unknown) => void res.writeHead(status, json).end(JSON.stringify({ jsonrpc: "2.0", id: m.id ?? null, ...(body as object) }));
      if (m.method === "initialize") return answer(400, { error: { code: -32022, message: "Unsupported protocol version", data: { supported: ["2026-07-28"], requested: "2025-11-25" } } });
      const version = m.params?._meta?.["io.modelcontextprotocol/protocolVersion"];
      if (typeof version !== "string" || !m.params?._meta?.["io.modelcontextprotocol/clientCapabilities"]) return answer(400, { error: { code: -32602, message: "Missing _meta" } });
      if (req.headers["mcp-protocol-version"] !== version || req.headers["mcp-method"] !== m.method) return answer(400, { error: { code: -32020, message: "Header mismatch" } });
      if (version !== "2026-07-28") return answer(400, { error: { code: -32022, message: "Unsupported protocol version", data: { supported: ["2026-07-28"], requested: version } } });
      if (m.method === "server/discover") return answer(200, { result: { resultType: "complete", supportedVersions: ["2026-07-28"], capabilities: { tools: {} }, ttlMs: 0, cacheScope: "private", _meta: { "io.modelcontextprotocol/serverInfo": { name: "modern-only", version: "1" } } } });
      if (m.method === "tools/list") return answer(200, { result: { resultType: "complete", tools: [{ name: "whoami", inputSchema: { type: "object" } }], ttlMs: 0, cacheScope: "private" } });
      answer(404, { error: { code: -32601, message: "Method not found" } });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let tc: TestContext | undefined;
afterEach(() => {
  tc?.cleanup();
  tc = undefined;
  seen.length = 0;
  eraCache.clear();
});

type Checks = { checks: Array<{ id: string; status: string; detail?: string; fix?: string }> };

describe("checks of a 2026-07-28-only server", () => {
  it("doctor: reports the era, lists tools the 2026-07-28 way, and names the era mismatch", async () => {
    tc = createTestContext({ stdin: `${TOKEN}\n` });
    await tc.run(["doctor", "--url", `${base}/mcp`, "--token-stdin", "--json"]);
    const { checks } = JSON.parse(tc.stdout()) as Checks;
    expect(checks.find((c) => c.id === "server.reachable")).toMatchObject({ status: "pass" });
    expect(checks.find((c) => c.id === "server.auth")).toMatchObject({ status: "pass", what: "MCP server asks for a Bearer token" });
    expect(checks.find((c) => c.id === "mcp.initialize")).toMatchObject({ status: "pass", detail: expect.stringContaining("modern-only, speaks 2026-07-28") });
    expect(checks.find((c) => c.id === "mcp.tools")).toMatchObject({ status: "pass", detail: "1 tool(s)" });
    expect(checks.find((c) => c.id === "mcp.era")).toMatchObject({ status: "pass", detail: "speaks 2026-07-28 (lists 2026-07-28)" });
    expect(checks.find((c) => c.id === "mcp.era.clients")).toMatchObject({ status: "warn", detail: expect.stringMatching(/^this server speaks only 2026-07-28; .* sends initialize, which it refuses$/), fix: expect.stringContaining("mcp-auth add-client … --strategy proxy") });
    // doctor also asks whether older clients get in (this server refuses initialize, hence the warning).
    expect(seen.filter((s) => s.auth === `Bearer ${TOKEN}`).map((s) => s.rpc)).toEqual(["server/discover", "initialize", "tools/list"]);
    expect(tc.stdout() + tc.stderr()).not.toContain(TOKEN);
  });

  it("doctor: a client entry that connects directly is named in the mismatch", async () => {
    tc = createTestContext({ stdin: `${TOKEN}\n` });
    const home = tc.env.HOME!;
    mkdirSync(join(home, ".cursor"), { recursive: true });
    writeFileSync(join(home, ".cursor", "mcp.json"), JSON.stringify({ mcpServers: { modern: { url: `${base}/mcp` }, other: { url: "https://other.example.invalid/mcp" } } }));
    await tc.run(["doctor", "--url", `${base}/mcp`, "--token-stdin", "--json"]);
    const { checks } = JSON.parse(tc.stdout()) as Checks;
    expect(checks.find((c) => c.id === "mcp.era.clients")?.detail).toBe('this server speaks only 2026-07-28; cursor "modern" connects to it directly and sends initialize, which it refuses');
  });

  it("doctor: a server that needs no token is reachable through its 2026-07-28 answer, with its era", async () => {
    tc = createTestContext();
    await tc.run(["doctor", "--url", `${base}/open`, "--json"]);
    const { checks } = JSON.parse(tc.stdout()) as Checks;
    expect(checks.find((c) => c.id === "server.reachable")).toMatchObject({ status: "pass" });
    expect(checks.find((c) => c.id === "server.auth")).toMatchObject({ status: "pass", what: "MCP server needs no authentication" });
    expect(checks.find((c) => c.id === "mcp.era")).toMatchObject({ status: "pass" });
    expect(checks.find((c) => c.id === "mcp.era.clients")).toMatchObject({ status: "warn" });
    // The one initialize is doctor asking whether older clients get in, not a fallback to the old era.
    expect(seen.filter((s) => s.rpc === "initialize")).toHaveLength(1);
  });

  it("doctor: a token the server refuses still fails", async () => {
    tc = createTestContext({ stdin: "not-the-token-5678\n" });
    await tc.run(["doctor", "--url", `${base}/mcp`, "--token-stdin", "--json"]);
    const { checks } = JSON.parse(tc.stdout()) as Checks;
    expect(checks.find((c) => c.id === "mcp.initialize")).toMatchObject({ status: "fail" });
  });

  it("login <url> discovery: a 2026-07-28 server that needs no token is open, not 'not an MCP endpoint'", async () => {
    tc = createTestContext();
    const d = await discoverMcp(tc.ctx, `${base}/open`);
    expect(d).toMatchObject({ open: true, probe: { status: 200, era: { era: "modern", version: "2026-07-28" } } });
    const refused = await discoverMcp(tc.ctx, `${base}/nothing`).catch((e: Error) => e);
    expect(String(refused)).toMatch(/answered 404 to MCP's server\/discover and initialize.*does not look like an MCP endpoint/);
  });

  it("bootstrap openproject --api-token-env: the MCP endpoint check passes", async () => {
    tc = createTestContext({ env: { OP_TOKEN: TOKEN } });
    const code = await tc.run(["bootstrap", "openproject", "--url", base, "--api-token-env", "OP_TOKEN", "--profile", "op"]);
    expect(tc.stderr()).toMatch(/✓ MCP endpoint: http:\/\/127\.0\.0\.1:\d+\/mcp modern-only, speaks 2026-07-28/);
    expect(code, tc.stderr()).toBe(0);
  });

  it("bootstrap octoperf's post-sign-in check: the MCP server accepts the token", async () => {
    tc = createTestContext();
    const input = { url: base } as Parameters<NonNullable<typeof octoperf.verify>>[1];
    const result = { action: "created" as const, facts: [], profile: { provider: "octoperf", issuer: base, clientId: "c", grant: "authorization_code" as const, mcpUrl: `${base}/mcp` } };
    const checks = await octoperf.verify!(tc.ctx, input, result, TOKEN);
    expect(checks.find((c) => c.what === "MCP server accepts the token")).toMatchObject({ ok: true, detail: expect.stringContaining("speaks 2026-07-28") });
    const refused = await octoperf.verify!(tc.ctx, input, result, "not-the-token-5678");
    expect(refused.find((c) => c.what === "MCP server accepts the token")).toMatchObject({ ok: false });
  });
});
