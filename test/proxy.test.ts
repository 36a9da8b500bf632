import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, user, type Sandboxed } from "./helpers/cli.js";
import { runInProcess } from "./helpers/in-process.js";
import { startKubernetesMcp, type KubernetesMcp } from "./helpers/k8s-mcp.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * `mcp-auth proxy` spawned as Claude Desktop would (command + args, JSON-RPC lines on stdin/stdout),
 * in front of the real kubernetes-mcp-server, which validates every token against the sandbox IdP.
 * Access tokens live 6 s here, so a token really expires during a session.
 */
const KCP_AUDIENCE = "urn:kcp:mcp";
const TTL = 6;
const sb = useSandbox({ tokenTtl: TTL });
let k8s: KubernetesMcp;
let u: Sandboxed;

beforeAll(async () => {
  k8s = await startKubernetesMcp({ issuer: sb.issuer, audience: KCP_AUDIENCE });
  u = user({ MCP_AUTH_STORE: "file" });
  // The profiles are written in-process; every proxy below is the real process, as an MCP client starts it.
  const add = (name: string, resource: string, mcpUrl: string) =>
    runInProcess(["profiles", "add", name, "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--grant", "client_credentials", "--client-secret-stdin", "--resource", resource, "--mcp-url", mcpUrl], u.env, "sandbox-secret\n");
  for (const r of [await add("kcp", KCP_AUDIENCE, k8s.url), await add("sb", sb.mcpUrl, sb.mcpUrl), await add("wrong", sb.mcpUrl, k8s.url)]) expect(r.code, r.stderr).toBe(0);
}, 60_000);
afterAll(async () => {
  await k8s?.stop();
  u?.cleanup();
});

type Message = { jsonrpc: string; id?: number | string | null; method?: string; result?: any; error?: { code: number; message: string; data?: unknown } };

/** The MCP client's side of the pipe: send lines, await answers by id, close stdin, get the exit code. */
function launch(args: string[]) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [BIN, "proxy", ...args], { env: u.env, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  const messages: Message[] = [];
  const waiters = new Map<number | string, (m: Message) => void>();
  child.stderr.on("data", (d) => (stderr += d));
  let pending = "";
  child.stdout.on("data", (d) => {
    stdout += d;
    pending += d;
    let nl: number;
    while ((nl = pending.indexOf("\n")) !== -1) {
      const m = JSON.parse(pending.slice(0, nl)) as Message;
      pending = pending.slice(nl + 1);
      messages.push(m);
      if (m.id !== undefined && m.id !== null) waiters.get(m.id)?.(m);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  let next = 1;
  const request = (method: string, params?: unknown): Promise<Message> => {
    const id = next++;
    const answered = new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${method}\nstderr: ${stderr}`)), 30_000);
      waiters.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
    child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
    return answered;
  };
  const notify = (method: string) => child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method }) + "\n");
  const initialize = async () => {
    const r = await request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "claude-desktop-like", version: "0" } });
    expect(r.result, JSON.stringify(r) + stderr).toBeDefined();
    notify("notifications/initialized");
    return r;
  };
  const close = async () => {
    child.stdin.end();
    const code = await Promise.race([exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit after stdin closed\nstderr: ${stderr}`)), 20_000))]);
    return { code, stdout, stderr: () => stderr, messages };
  };
  return { request, notify, initialize, close, stderr: () => stderr, kill: () => child.kill("SIGKILL") };
}

/** Every stdout line is one JSON-RPC 2.0 message: nothing else may reach the MCP client. */
function onlyJsonRpc(stdout: string) {
  const lines = stdout.split("\n");
  expect(lines.pop()).toBe("");
  for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: "2.0" });
}

function cacheRecords(): Array<{ file: string; rec: Record<string, unknown> }> {
  const dir = join(u.configDir, "tokens");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => ({ file: join(dir, f), rec: JSON.parse(readFileSync(join(dir, f), "utf8")) }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("mcp-auth proxy in front of kubernetes-mcp-server", () => {
  it("initialize, tools/list and a tool call go through; stdin closed → exit 0; stdout is JSON-RPC only", async () => {
    const p = launch(["--profile", "kcp"]);
    const init = await p.initialize();
    expect(init.result.serverInfo.name).toMatch(/kubernetes/i);
    const list = await p.request("tools/list");
    const names = (list.result.tools as Array<{ name: string }>).map((t) => t.name);
    expect(names).toContain("configuration_view");
    const call = await p.request("tools/call", { name: "configuration_view", arguments: {} });
    expect(call.error, JSON.stringify(call)).toBeUndefined();
    expect(JSON.stringify(call.result.content)).toContain("dummy"); // the server's kubeconfig
    const end = await p.close();
    expect(end.code, end.stderr()).toBe(0);
    onlyJsonRpc(end.stdout);
    expect(end.stderr()).toBe("");
  }, 60_000);

  it("a token that expires mid-session is renewed: the next call succeeds and the IdP saw a new token request", async () => {
    const p = launch(["--profile", "kcp"]);
    await p.initialize();
    expect((await p.request("tools/list")).result.tools.length).toBeGreaterThan(0);
    const before = sb.grants.client_credentials ?? 0;
    await sleep((TTL + 1) * 1000); // the token the proxy holds is now expired: the server would refuse it
    const list = await p.request("tools/list");
    expect(list.error, JSON.stringify(list)).toBeUndefined();
    expect(list.result.tools.length).toBeGreaterThan(0);
    expect(sb.grants.client_credentials ?? 0).toBeGreaterThan(before);
    const end = await p.close();
    expect(end.code, end.stderr()).toBe(0);
    onlyJsonRpc(end.stdout);
  }, 60_000);

  it("a 401 gets one new token and a retry: the client never sees it", async () => {
    // The cache holds a token that looks fresh but that the server refuses.
    const first = launch(["--profile", "kcp"]);
    await first.initialize();
    expect((await first.close()).code).toBe(0);
    for (const { file, rec } of cacheRecords()) {
      if (rec.access_token) writeFileSync(file, JSON.stringify({ ...rec, access_token: "not-a-valid-token", expires_at: Math.floor(Date.now() / 1000) + 3600 }));
    }
    const before = sb.grants.client_credentials ?? 0;
    const p = launch(["--profile", "kcp", "--min-ttl", "0"]);
    const init = await p.initialize();
    expect(init.error).toBeUndefined();
    const list = await p.request("tools/list");
    expect(list.error, JSON.stringify(list)).toBeUndefined();
    expect(sb.grants.client_credentials ?? 0).toBeGreaterThan(before);
    const end = await p.close();
    expect(end.code).toBe(0);
    expect(end.stderr()).toBe("");
  }, 60_000);

  it("a token the server refuses even after a refresh → a JSON-RPC error for that request and one stderr line naming `mcp-auth login`", async () => {
    // Profile "wrong" gets tokens for another audience: kubernetes-mcp-server answers 401 invalid_token.
    const p = launch(["--profile", "wrong"]);
    const before = sb.grants.client_credentials ?? 0;
    const init = await p.request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "c", version: "0" } });
    expect(init.error?.message).toContain("mcp-auth login wrong");
    expect(init.error).toMatchObject({ code: -31000, data: { status: 401 } });
    expect(sb.grants.client_credentials ?? 0).toBeGreaterThan(before); // it did try a new token
    const again = await p.request("tools/list");
    expect(again.error?.message).toContain("refused the token");
    const end = await p.close();
    expect(end.code).toBe(0);
    onlyJsonRpc(end.stdout);
    const lines = end.stderr().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^mcp-auth: .*refused the token of profile "wrong".*mcp-auth login wrong/);
    expect(end.stderr()).not.toMatch(/eyJ/);
  }, 60_000);
});

describe("mcp-auth proxy, other servers and options", () => {
  it("defaults --url to the profile's mcpUrl; the SDK's own Client works through it (sandbox MCP server)", async () => {
    const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
    const { StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js");
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, "proxy", "--profile", "sb"], env: u.env as Record<string, string>, stderr: "pipe" });
    const client = new Client({ name: "t", version: "0" });
    await client.connect(transport);
    const result = await client.callTool({ name: "whoami", arguments: {} });
    const who = JSON.parse((result.content as Array<{ text: string }>)[0]!.text);
    expect(who).toMatchObject({ client_id: "sandbox-m2m", aud: sb.mcpUrl });
    await client.close();
  }, 60_000);

  it("--debug traces the traffic on stderr with the token redacted, and stdout stays JSON-RPC", async () => {
    const p = launch(["--profile", "sb", "--debug"]);
    await p.initialize();
    await p.request("tools/call", { name: "whoami", arguments: {} });
    const end = await p.close();
    expect(end.code).toBe(0);
    onlyJsonRpc(end.stdout);
    expect(end.stderr()).toContain("stdio > ");
    expect(end.stderr()).toContain("authorization: Bearer [redacted]");
    expect(end.stderr()).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
  }, 60_000);

  it.each([
    ["", [], 0],
    // The event stream outlives --timeout and is not held up by --debug's tracing of bodies.
    [" (--debug, a stream older than --timeout)", ["--debug", "--timeout", "2"], 3000],
  ])("falls back to the older HTTP+SSE transport, with the token on the stream and on every POST, and forwards server notifications%s", async (_label, extra, pause) => {
    const legacy = await legacySseServer();
    try {
      // A profile for this server: another profile's token never goes to it.
      const add = await runInProcess(["profiles", "add", "legacy", "--force", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--grant", "client_credentials", "--client-secret-stdin", "--resource", sb.mcpUrl, "--mcp-url", legacy.url], u.env, "sandbox-secret\n");
      expect(add.code, add.stderr).toBe(0);
      const p = launch(["--profile", "legacy", ...(extra as string[])]);
      const init = await p.initialize();
      expect(init.result.serverInfo.name).toBe("legacy-sse");
      await sleep(pause as number);
      const call = await p.request("tools/call", { name: "shout", arguments: {} });
      expect(call.result.content[0].text).toBe("done");
      const end = await p.close();
      expect(end.code, end.stderr()).toBe(0);
      onlyJsonRpc(end.stdout);
      expect(end.stderr()).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
      // The server's notification reached the client, before the answer to the call that caused it.
      const note = end.messages.findIndex((m) => m.method === "notifications/message");
      expect(note).toBeGreaterThan(-1);
      expect(note).toBeLessThan(end.messages.findIndex((m) => m.id === call.id));
      expect(legacy.seen[0]).toMatchObject({ method: "POST", path: "/sse", status: 405 }); // Streamable HTTP tried first
      expect(legacy.seen.filter((r) => r.method === "GET" && r.path === "/sse")).toHaveLength(1);
      expect(legacy.seen.filter((r) => r.path === "/messages").length).toBeGreaterThanOrEqual(3);
      for (const r of legacy.seen) expect(r.auth).toMatch(/^Bearer eyJ/);
    } finally {
      await legacy.close();
    }
  }, 60_000);

  it.each([
    [["--profile", "kcp", "--url", "http://mcp.example.invalid/mcp"], /refusing plain http:\/\//],
    [["--profile", "kcp", "--url", "ftp://127.0.0.1/mcp"], /must be an https:\/\/ URL/],
  ])("refuses %j with exit 2 before reading stdin", async (args, message) => {
    const r = await runInProcess(["proxy", ...args], u.env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(message);
  });

  it("a profile without an MCP URL and no --url is a usage error", async () => {
    const add = await runInProcess(["profiles", "add", "nourl", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--grant", "client_credentials", "--client-secret-stdin"], u.env, "sandbox-secret\n");
    expect(add.code, add.stderr).toBe(0);
    const r = await runInProcess(["proxy", "--profile", "nourl"], u.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--url");
  });
});

/** An MCP server of the 2024-11-05 kind (HTTP+SSE, the SDK's SSEServerTransport) that wants a bearer token. */
async function legacySseServer(): Promise<{ url: string; seen: Array<{ method: string; path: string; status: number; auth?: string }>; close(): Promise<void> }> {
  const { McpServer } = await import("@modelcontextprotocol/sdk/server/mcp.js");
  const { SSEServerTransport } = await import("@modelcontextprotocol/sdk/server/sse.js");
  const sessions = new Map<string, InstanceType<typeof SSEServerTransport>>();
  const seen: Array<{ method: string; path: string; status: number; auth?: string }> = [];
  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    const record = (status: number) => seen.push({ method: req.method ?? "", path: url.pathname, status, auth: req.headers.authorization });
    if (!/^Bearer eyJ/.test(req.headers.authorization ?? "")) {
      record(401);
      return void res.writeHead(401, { "www-authenticate": "Bearer" }).end();
    }
    if (url.pathname === "/sse" && req.method === "GET") {
      record(200);
      const transport = new SSEServerTransport("/messages", res);
      sessions.set(transport.sessionId, transport);
      const mcp = new McpServer({ name: "legacy-sse", version: "1.0.0" }, { capabilities: { logging: {} } });
      mcp.registerTool("shout", { description: "sends a notification, then answers" }, async (extra) => {
        await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: "hello from the server" } });
        return { content: [{ type: "text", text: "done" }] };
      });
      res.on("close", () => void mcp.close());
      return void (await mcp.connect(transport));
    }
    if (url.pathname === "/messages" && req.method === "POST") {
      const transport = sessions.get(url.searchParams.get("sessionId") ?? "");
      record(transport ? 202 : 404);
      if (!transport) return void res.writeHead(404).end();
      return void (await transport.handlePostMessage(req, res));
    }
    record(405);
    res.writeHead(405, { allow: "GET" }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/sse`,
    seen,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
