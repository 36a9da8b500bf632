import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, user, type Sandboxed } from "./helpers/cli.js";
import { addSandboxClient, useSandbox } from "./helpers/sandbox.js";

/**
 * `mcp-auth proxy` as a process, in front of a hostile MCP server on 127.0.0.1 that answers one tool
 * call with an event stream whose `data:` line never ends (60 MB, written as fast as the proxy reads).
 * The process boundary is the point: the proxy's peak resident memory (VmHWM) must stay inside its
 * 80 MB budget, that request gets a JSON-RPC error, and the next one is still answered.
 */
const sb = useSandbox();
const MB = 1024 * 1024;
const HOSTILE_BYTES = 60 * MB;
const BUDGET_MB = 80;

let server: Server;
let url = "";
let u: Sandboxed;
const sent = { bytes: 0, closedEarly: false };

/** Writes `total` bytes of one endless line, waiting for the socket to drain, until the reader hangs up. */
async function pour(res: ServerResponse, total: number): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.write("event: message\ndata: ");
  const chunk = Buffer.alloc(256 * 1024, "x");
  let closed = false;
  res.on("close", () => (closed = true));
  while (sent.bytes < total && !closed) {
    sent.bytes += chunk.length;
    if (!res.write(chunk)) await new Promise((r) => (res.once("drain", r), res.once("close", r)));
  }
  sent.closedEarly = closed;
  res.end();
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      if (req.method !== "POST") return void res.writeHead(405).end();
      const m = JSON.parse(body);
      if (m.id === undefined) return void res.writeHead(202).end();
      if (m.method === "tools/call") return void pour(res, HOSTILE_BYTES);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: m.method === "initialize" ? { protocolVersion: "2025-06-18", capabilities: {}, serverInfo: { name: "hostile", version: "0" } } : { tools: [] } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  u = user({ MCP_AUTH_STORE: "file" });
  await addSandboxClient(u, sb, { name: "hostile", resource: url, mcpUrl: url });
}, 60_000);
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  u?.cleanup();
});

/** A memory figure of a live process, in MB, from /proc (VmRSS now, VmHWM its peak). */
function memory(pid: number, field: "VmRSS" | "VmHWM"): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)![1]) / 1024;
}

describe("mcp-auth proxy fed an endless event-stream line", () => {
  it("ends that request with a JSON-RPC error, answers the next, and peaks under 80 MB of memory", async () => {
    const child = spawn(process.execPath, [BIN, "proxy", "--profile", "hostile"], { env: u.env, stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const answers = new Map<number, any>();
    const waiters = new Map<number, () => void>();
    let pending = "";
    child.stdout.on("data", (d) => {
      pending += d;
      let nl: number;
      while ((nl = pending.indexOf("\n")) !== -1) {
        const m = JSON.parse(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        answers.set(m.id, m);
        waiters.get(m.id)?.();
      }
    });
    const exited = new Promise<number | null>((r) => child.on("close", r));
    const ask = (id: number, method: string, params: object = {}) => {
      const got = new Promise<any>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer to ${method}; stderr: ${stderr}`)), 60_000);
        waiters.set(id, () => (clearTimeout(timer), resolve(answers.get(id))));
      });
      child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
      return got;
    };

    expect((await ask(1, "initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "0" } })).result).toBeDefined();
    const settledMb = memory(child.pid!, "VmRSS");
    child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
    const call = await ask(2, "tools/call", { name: "x", arguments: {} });
    expect(call.error).toMatchObject({ code: -31000, message: expect.stringContaining("event-stream line over 4 MB") });
    expect(await ask(3, "tools/list")).toMatchObject({ result: { tools: [] } });

    const peakMb = memory(child.pid!, "VmHWM");
    child.stdin.end();
    expect(await exited).toBe(0);

    expect(peakMb).toBeLessThan(BUDGET_MB);
    // What the hostile answer added: a 4 MB line and its bookkeeping, not the 60 MB sent at it.
    expect(peakMb - settledMb).toBeLessThan(24);
    // The proxy hung up once the line passed its cap: the rest of the 60 MB was never sent.
    expect(sent.closedEarly).toBe(true);
    expect(sent.bytes).toBeLessThan(HOSTILE_BYTES);
    expect(stderr).toMatch(/event-stream line over 4 MB/);
  }, 120_000);
});
