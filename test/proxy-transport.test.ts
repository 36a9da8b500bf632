import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { relayFromFetch } from "../src/oauth/http.js";
import { runProxy } from "../src/mcp/proxy.js";
import { MemoryTransport } from "../src/mcp/transport.js";

/**
 * The proxy's own transports in-process, against a fetch that plays a Streamable HTTP server whose
 * answers are event streams cut at awkward places (mid-line, between \r and \n), plus a GET stream.
 */
function sse(chunks: string[]): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const s of chunks) c.enqueue(enc.encode(s));
      c.close();
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "text/event-stream; charset=utf-8", "mcp-session-id": "s-9" } });
}

function rig(fetch: (init: RequestInit, h: Headers) => Response | Promise<Response>) {
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
    relay: relayFromFetch(async (_u, init) => fetch(init ?? {}, new Headers(init?.headers))),
    now: () => Date.now(),
    error: (l) => errors.push(l),
    owner: 'profile "p"',
    loginHint: "run: mcp-auth login p",
    drainMs: 2000,
  });
  const until = async (pred: () => boolean) => {
    for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  return { input, errors, messages, done, until };
}

describe("proxy transports (in-process)", () => {
  it("event-stream answers cut anywhere, multi-line data, comments and a GET stream all reach stdout in order", async () => {
    const seen: string[] = [];
    const r = rig((init, h) => {
      seen.push(`${init.method} ${h.get("mcp-session-id") ?? "-"} ${h.get("mcp-protocol-version") ?? "-"}`);
      if (init.method === "GET") return sse([": keep-alive\n\nid: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n"]);
      if (init.method === "DELETE") return new Response(null, { status: 200 });
      const m = JSON.parse(String(init.body));
      if (m.id === undefined) return new Response(null, { status: 202 });
      const result = m.method === "initialize" ? { protocolVersion: "2025-06-18" } : { tools: [] };
      const note = JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { n: 1 } });
      const answer = JSON.stringify({ jsonrpc: "2.0", id: m.id, result });
      // the answer's JSON split over two data lines (joined with \n: still one JSON text)
      const [a, b] = [answer.slice(0, 10), answer.slice(10)];
      return sse([`event: message\r\ndata: ${note}\r`, `\n\r\ndata: ${a}\ndata`, `: ${b}\r\n`, "\r\n"]);
    });
    r.input.write(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} }) + "\n");
    await r.until(() => r.messages.some((m) => m.id === 1));
    r.input.write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
    r.input.write(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }) + "\n");
    await r.until(() => r.messages.some((m) => m.id === 2) && r.messages.some((m) => m.method === "notifications/tools/list_changed"));
    r.input.end();
    await r.done;
    expect(r.errors).toEqual([]);
    expect(r.messages.map((m) => m.id ?? m.method)).toEqual(expect.arrayContaining(["notifications/progress", 1, 2, "notifications/tools/list_changed"]));
    expect(r.messages.findIndex((m) => m.method === "notifications/progress")).toBeLessThan(r.messages.findIndex((m) => m.id === 1));
    expect(r.messages.find((m) => m.id === 1).result.protocolVersion).toBe("2025-06-18");
    // the session id and the negotiated protocol version ride on every later request, the GET stream included
    // the era probe (server/discover as 2026-07-28) first, then the client's initialize without a session
    expect(seen.slice(0, 2)).toEqual(["POST - 2026-07-28", "POST - -"]);
    expect(seen.filter((s) => !s.startsWith("POST - ")).every((s) => s.endsWith(" s-9 2025-06-18"))).toBe(true);
    expect(seen.some((s) => s.startsWith("GET "))).toBe(true);
    expect(seen.at(-1)).toMatch(/^DELETE s-9/);
  });

  it("lines that are JSON but not JSON-RPC 2.0 are reported and skipped; the next request still goes through", async () => {
    const r = rig((init) => {
      const m = JSON.parse(String(init.body));
      return new Response(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: {} }), { headers: { "content-type": "application/json" } });
    });
    r.input.write('{"jsonrpc":"1.0","id":1,"method":"x"}\n[1,2]\n{"jsonrpc":"2.0","id":{},"method":"x"}\n');
    r.input.write(JSON.stringify({ jsonrpc: "2.0", id: 7, method: "initialize" }) + "\r\n");
    await r.until(() => r.messages.length > 0);
    r.input.end();
    await r.done;
    expect(r.messages).toEqual([{ jsonrpc: "2.0", id: 7, result: {} }]);
    expect(r.errors).toHaveLength(3);
    for (const e of r.errors) expect(e).toContain("not JSON-RPC");
  });

  it("a server answer that is neither JSON nor an event stream → a JSON-RPC error for that request", async () => {
    const r = rig(() => new Response("<html>hi</html>", { headers: { "content-type": "text/html" } }));
    r.input.write(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize" }) + "\n");
    await r.until(() => r.messages.length > 0);
    r.input.end();
    await r.done;
    expect(r.messages[0]).toMatchObject({ id: 1, error: { code: -31000, message: expect.stringContaining("Unexpected content type: text/html") } });
  });

  it("a client in memory (serve's era bridges): messages as objects both ways, the same envelope check, the session ends when told", async () => {
    const errors: string[] = [];
    const got: unknown[] = [];
    const client = new MemoryTransport((m) => got.push(m));
    let end!: () => void;
    const closed = new Promise<void>((r) => (end = r));
    const done = runProxy({
      url: new URL("https://mcp.example.invalid/mcp"),
      client: { transport: client, closed },
      token: async () => ({ access_token: "T", expires_at: 4_000_000_000 }),
      relay: relayFromFetch(async (_u, init) => {
        const m = JSON.parse(String(init?.body));
        return new Response(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: {} }), { headers: { "content-type": "application/json" } });
      }),
      now: () => Date.now(),
      error: (l) => errors.push(l),
      owner: 'profile "p"',
      loginHint: "",
      drainMs: 2000,
      protocol: "legacy",
    });
    for (const bad of [{ jsonrpc: "1.0", id: 1, method: "x" }, [1, 2], { jsonrpc: "2.0", id: {}, method: "x" }]) client.deliver(bad);
    client.deliver({ jsonrpc: "2.0", id: 7, method: "initialize" });
    for (let i = 0; i < 200 && !got.length; i++) await new Promise((r) => setTimeout(r, 10));
    end();
    await done;
    expect(got).toEqual([{ jsonrpc: "2.0", id: 7, result: {} }]);
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toContain("not JSON-RPC");
  });
});
