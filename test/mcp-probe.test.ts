import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { describeMcpAnswer, mcpReachable, readMcpAnswer } from "../src/mcp/probe.js";
import { octoperf } from "../src/providers/octoperf.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * The MCP reachability checks after a sign-in (doctor, bootstrap openproject / octoperf): a server that
 * answers our `initialize` with a JSON-RPC error — as a server speaking only the stateless 2026-07-28
 * revision does — took the token and is reachable; 401/403 are refusals whatever their body.
 */
const rpcError = (code: number, message: string, data?: unknown) => JSON.stringify({ jsonrpc: "2.0", id: 1, error: { code, message, ...(data ? { data } : {}) } });
const UNSUPPORTED = rpcError(-32022, "Unsupported protocol version", { supported: ["2026-07-28"], requested: "2025-06-18" });

describe("readMcpAnswer", () => {
  const table: Array<{ name: string; status: number; body: string; kind: string; reachable: boolean; detail?: RegExp }> = [
    { name: "initialize result", status: 200, body: JSON.stringify({ jsonrpc: "2.0", id: 1, result: { protocolVersion: "2025-06-18", capabilities: {}, serverInfo: { name: "k8s", version: "1" } } }), kind: "result", reachable: true, detail: /^initialize answered 200 \(k8s, protocol 2025-06-18\)$/ },
    { name: "initialize result in an SSE event", status: 200, body: `event: message\nid: 1\ndata: {"jsonrpc":"2.0","id":1,\ndata: "result":{"serverInfo":{"name":"sse"}}}\n\n`, kind: "result", reachable: true, detail: /\(sse\)/ },
    { name: "2026-07-28-only server: 400 UnsupportedProtocolVersionError", status: 400, body: UNSUPPORTED, kind: "error", reachable: true, detail: /^initialize answered 400 with JSON-RPC error -32022 "Unsupported protocol version": it is an MCP server and took the token, a server without the initialize handshake; it speaks 2026-07-28$/ },
    { name: "400 invalid params naming the supported versions", status: 400, body: rpcError(-32602, "Invalid params", { supported: ["2026-07-28", "2026-12-01"] }), kind: "error", reachable: true, detail: /-32602 "Invalid params".*it speaks 2026-07-28, 2026-12-01$/ },
    { name: "404 method not found with a JSON-RPC body", status: 404, body: rpcError(-32601, "Method not found"), kind: "error", reachable: true, detail: /-32601 "Method not found": it is an MCP server and took the token$/ },
    { name: "200 with a JSON-RPC error", status: 200, body: rpcError(-32000, "Bad Request: Server not initialized"), kind: "error", reachable: true },
    { name: "SSE stream carrying only an error response", status: 200, body: `data: ${UNSUPPORTED}\n\n`, kind: "error", reachable: true },
    { name: "an id-less JSON-RPC error (HeaderMismatch)", status: 400, body: JSON.stringify({ jsonrpc: "2.0", error: { code: -32020, message: "Header mismatch" } }), kind: "error", reachable: true },
    { name: "401 is a refusal even with a JSON-RPC body", status: 401, body: rpcError(-32001, "Unauthorized"), kind: "refused", reachable: false },
    { name: "403 is a refusal", status: 403, body: UNSUPPORTED, kind: "refused", reachable: false },
    { name: "500 with a JSON-RPC error is server trouble", status: 500, body: rpcError(-32603, "Internal error"), kind: "none", reachable: false },
    { name: "404 HTML page is not an MCP answer", status: 404, body: "<html>Not Found</html>", kind: "none", reachable: false },
    { name: "400 plain text is not an MCP answer", status: 400, body: "Bad Request", kind: "none", reachable: false },
    { name: "JSON without the JSON-RPC envelope", status: 400, body: JSON.stringify({ error: { code: -32022, message: "x" } }), kind: "none", reachable: false },
    { name: "an error code that is not an integer", status: 400, body: JSON.stringify({ jsonrpc: "2.0", id: 1, error: { code: "x", message: "y" } }), kind: "none", reachable: false },
    { name: "a result with an error status", status: 400, body: JSON.stringify({ jsonrpc: "2.0", id: 1, result: {} }), kind: "none", reachable: false },
    { name: "empty body", status: 200, body: "", kind: "none", reachable: false },
  ];
  it.each(table)("$name", ({ status, body, kind, reachable, detail }) => {
    const a = readMcpAnswer(status, body);
    expect(a.kind).toBe(kind);
    expect(mcpReachable(a)).toBe(reachable);
    if (detail) expect(describeMcpAnswer(a)).toMatch(detail);
  });

  it("server text is stripped of control characters and bounded", () => {
    const a = readMcpAnswer(400, rpcError(-32022, `evil\u001b[2J${"x".repeat(500)}`, { supported: ["2026-07-28\u0007", 7, "b"] }));
    const line = describeMcpAnswer(a);
    expect(line).not.toMatch(/[\u0000-\u001f]/);
    expect(line.length).toBeLessThan(400);
    expect(a).toMatchObject({ kind: "error", supported: ["2026-07-28?", "b"] });
  });
});

/**
 * A 2026-07-28-only MCP server guarded by a bearer token: 401 with a challenge without the token,
 * and HTTP 400 + UnsupportedProtocolVersionError for our legacy `initialize` with it. It also serves
 * OpenProject's /api/v3/users/me, so the OpenProject API-token bootstrap can run against it.
 */
const TOKEN = "modern-server-token-1234";
let server: Server;
let base: string;
const seen: Array<{ method?: string; path?: string; auth?: string }> = [];
beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      seen.push({ method: req.method, path: req.url, auth: req.headers.authorization });
      const authed = req.headers.authorization === `Bearer ${TOKEN}`;
      if (req.url === "/api/v3/users/me") {
        if (!authed) return void res.writeHead(401, { "content-type": "application/hal+json" }).end('{"_type":"Error","message":"You did not provide the correct credentials."}');
        return void res.writeHead(200, { "content-type": "application/hal+json" }).end('{"_type":"User","login":"alice"}');
      }
      if (req.url !== "/mcp" || req.method !== "POST") return void res.writeHead(404).end();
      if (!authed) return void res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"` }).end();
      const m = JSON.parse(raw) as { method?: string };
      if (m.method === "initialize") return void res.writeHead(400, { "content-type": "application/json" }).end(UNSUPPORTED);
      res.writeHead(404, { "content-type": "application/json" }).end(rpcError(-32601, "Method not found"));
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
});

describe("checks after sign-in count a 2026-07-28-only server as reachable", () => {
  it("doctor: MCP initialize passes, tools/list is skipped with the reason", async () => {
    tc = createTestContext({ stdin: `${TOKEN}\n` });
    await tc.run(["doctor", "--url", `${base}/mcp`, "--token-stdin", "--json"]);
    const { checks } = JSON.parse(tc.stdout()) as { checks: Array<{ id: string; status: string; detail?: string }> };
    expect(checks.find((c) => c.id === "mcp.initialize")).toMatchObject({ status: "pass", detail: expect.stringContaining("JSON-RPC error -32022") });
    expect(checks.find((c) => c.id === "mcp.tools")).toMatchObject({ status: "skip" });
    expect(seen.filter((s) => s.auth === `Bearer ${TOKEN}`).length).toBeGreaterThan(0);
    expect(tc.stdout() + tc.stderr()).not.toContain(TOKEN);
  });

  it("doctor: a token the server refuses still fails", async () => {
    tc = createTestContext({ stdin: "not-the-token-5678\n" });
    await tc.run(["doctor", "--url", `${base}/mcp`, "--token-stdin", "--json"]);
    const { checks } = JSON.parse(tc.stdout()) as { checks: Array<{ id: string; status: string }> };
    expect(checks.find((c) => c.id === "mcp.initialize")).toMatchObject({ status: "fail" });
  });

  it("bootstrap openproject --api-token-env: the MCP endpoint check passes", async () => {
    tc = createTestContext({ env: { OP_TOKEN: TOKEN } });
    const code = await tc.run(["bootstrap", "openproject", "--url", base, "--api-token-env", "OP_TOKEN", "--profile", "op"]);
    expect(tc.stderr()).toMatch(/✓ MCP endpoint: http:\/\/127\.0\.0\.1:\d+\/mcp initialize answered 400 with JSON-RPC error -32022/);
    expect(code, tc.stderr()).toBe(0);
  });

  it("bootstrap octoperf's post-sign-in check: the MCP server accepts the token", async () => {
    tc = createTestContext();
    const input = { url: base } as Parameters<NonNullable<typeof octoperf.verify>>[1];
    const result = { action: "created" as const, facts: [], profile: { provider: "octoperf", issuer: base, clientId: "c", grant: "authorization_code" as const, mcpUrl: `${base}/mcp` } };
    const checks = await octoperf.verify!(tc.ctx, input, result, TOKEN);
    expect(checks.find((c) => c.what === "MCP server accepts the token")).toMatchObject({ ok: true, detail: expect.stringContaining("it speaks 2026-07-28") });
    const refused = await octoperf.verify!(tc.ctx, input, result, "not-the-token-5678");
    expect(refused.find((c) => c.what === "MCP server accepts the token")).toMatchObject({ ok: false });
  });
});
