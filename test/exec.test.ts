import { spawn, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renewAt, runExec, SpawnError, type ChildLike, type ExecOptions } from "../src/mcp/exec.js";
import { startSandbox, type Sandbox } from "../src/sandbox/server.js";
import { ROOT } from "./helpers/cli.js";

/**
 * `mcp-auth exec`'s supervisor (src/mcp/exec.ts), in-process, around a real stdio MCP server built on
 * the official SDK (test/fixtures/stdio/token-server.mjs) that calls the sandbox's MCP server with the
 * token it was started with, so a token the sandbox refuses fails the call. The renewal timer is the
 * test's: it fires when the test says the token is due, so nothing waits for a real expiry.
 */
const SERVER = join(ROOT, "test", "fixtures", "stdio", "token-server.mjs");
let sb: Sandbox;

beforeAll(async () => {
  sb = await startSandbox({ protocol: "legacy" });
}, 60_000);
afterAll(async () => {
  await sb?.close();
});

async function realToken(): Promise<{ access_token: string; expires_in: number }> {
  const basic = Buffer.from(`${sb.clients.m2m.clientId}:${sb.clients.m2m.clientSecret}`).toString("base64");
  const res = await fetch(`${sb.issuer}/token`, {
    method: "POST",
    headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", resource: sb.mcpUrl, scope: "mcp:read" }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { access_token: string; expires_in: number };
}

type Msg = Record<string, any>;

/** exec around a command, with the test holding stdin/stdout, the renewal timer and the token source. */
async function rig(o: { command?: string[]; env?: NodeJS.ProcessEnv; format?: "raw" | "header"; token?: ExecOptions["token"] } = {}) {
  const input = new PassThrough();
  const output = new PassThrough();
  const errors: string[] = [];
  const timers: Array<{ ms: number; fn: () => void; cancelled: boolean }> = [];
  /** How far the test moved exec's clock ahead of real time. */
  let skew = 0;
  const tokens: string[] = [];
  let raw = Buffer.alloc(0);
  const messages: Msg[] = [];
  const answers = new Map<unknown, (m: Msg) => void>();
  let pending = "";
  output.on("data", (d: Buffer) => {
    raw = Buffer.concat([raw, d]);
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf("\n")) !== -1) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let m: Msg;
      try {
        m = JSON.parse(line);
      } catch {
        continue;
      }
      messages.push(m);
      if (m.id !== undefined && !m.method) answers.get(m.id)?.(m);
    }
  });
  const token: ExecOptions["token"] =
    o.token ??
    (async () => {
      const t = await realToken();
      tokens.push(t.access_token);
      return { access_token: t.access_token, expires_at: Math.floor((Date.now() + skew) / 1000) + t.expires_in };
    });
  const [cmd, ...args] = o.command ?? [process.execPath, SERVER];
  const children: ChildProcess[] = [];
  const handle = await runExec({
    spawn: (tok) => {
      const child = spawn(cmd!, args, { env: { ...process.env, UPSTREAM_MCP_URL: sb.mcpUrl, ...o.env, MCP_AUTH_TOKEN: o.format === "header" ? `Bearer ${tok}` : tok }, stdio: ["pipe", "pipe", "inherit"] });
      children.push(child);
      return child;
    },
    token,
    input,
    output,
    now: () => Date.now() + skew,
    timer: (ms, fn) => {
      const t = { ms, fn, cancelled: false };
      timers.push(t);
      return () => void (t.cancelled = true);
    },
    error: (l) => errors.push(l),
    graceMs: 200,
  });
  let next = 1;
  const request = (method: string, params?: unknown): Promise<Msg> => {
    const id = next++;
    const answered = new Promise<Msg>((resolve) => answers.set(id, resolve));
    input.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
    return answered;
  };
  const notify = (method: string) => input.write(JSON.stringify({ jsonrpc: "2.0", method }) + "\n");
  const initialize = async () => {
    const r = await request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "legacy-client", version: "0" } });
    notify("notifications/initialized");
    return r;
  };
  const whoami = async () => {
    const r = await request("tools/call", { name: "whoami", arguments: {} });
    expect(r.result?.isError, JSON.stringify(r)).toBeFalsy();
    return JSON.parse(r.result.content[0].text) as { pid: number; initializations: number; upstream: { client_id: string } };
  };
  /** The token is due: the clock moves on with the renewal timer (the latest armed) until it no longer re-arms. */
  const due = () => {
    for (let armed = timers.length; ; armed = timers.length) {
      const t = timers.filter((x) => !x.cancelled).at(-1)!;
      t.cancelled = true;
      skew += t.ms;
      t.fn();
      if (timers.length === armed) return;
    }
  };
  /** Resolves once a restart has completed. */
  const restarted = async (n: number) => {
    for (let i = 0; i < 500 && handle.restarts.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    expect(handle.restarts.length).toBe(n);
  };
  const close = async () => {
    input.end();
    return handle.done;
  };
  return { input, output, handle, children, errors, timers, tokens, messages, raw: () => raw, request, notify, initialize, whoami, due, restarted, close };
}

describe("exec: the server's environment and the pass-through", () => {
  it.each(["raw", "header"] as const)("the server gets the token (%s) and calls the protected MCP server with it", async (format) => {
    const r = await rig({ format, env: { TOKEN_FORMAT: format } });
    await r.initialize();
    const who = await r.whoami();
    expect(who.upstream.client_id).toBe("sandbox-m2m");
    expect(await r.close()).toEqual({ code: 0, signal: null });
  }, 30_000);

  it("passes lines through byte for byte in both directions, JSON or not", async () => {
    // cat echoes what it reads: what comes out must be exactly what went in.
    const r = await rig({ command: ["cat"] });
    const sent = Buffer.concat([
      Buffer.from('{"jsonrpc":"2.0",  "id":1 ,"method":"ping"}\r\n'),
      Buffer.from("not json at all\n"),
      Buffer.from([0xff, 0xfe, 0x0a]),
      Buffer.from('{"jsonrpc":"2.0","method":"notifications/x","params":{"s":"ü😀"}}\n'),
    ]);
    r.input.write(sent.subarray(0, 7));
    r.input.write(sent.subarray(7));
    await r.close();
    expect(r.raw().equals(sent)).toBe(true);
  }, 30_000);

  it("exits with the server's exit code", async () => {
    const r = await rig({ env: { EXIT_CODE: "7" } });
    expect(await r.close()).toEqual({ code: 7, signal: null });
  }, 30_000);

  it("passes a signal on and reports the one that ended the server", async () => {
    const r = await rig();
    await r.initialize();
    r.handle.kill("SIGTERM");
    expect(await r.handle.done).toEqual({ code: null, signal: "SIGTERM" });
  }, 30_000);

  it.each([
    ["a command that does not exist", ["/nonexistent/mcp-server"], 127],
    ["a file that is not executable", [join(ROOT, "package.json")], 126],
  ])("%s cannot start: SpawnError with the shell's exit code", async (_what, command, code) => {
    const err = await rig({ command }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpawnError);
    expect((err as SpawnError).exitCode).toBe(code);
  });
});

describe("exec: restarts before the token expires", () => {
  it("renews at a minute before expiry, or half the remaining life when shorter", () => {
    expect(renewAt({ access_token: "t", expires_at: 3600 }, 0)).toBe(3_540_000);
    expect(renewAt({ access_token: "t", expires_at: 10 }, 0)).toBe(5_000);
    expect(renewAt({ access_token: "t", expires_at: 10 }, 20_000)).toBe(10_000);
  });

  it("a legacy client's session survives two restarts: new processes, new tokens, its handshake replayed and the answers swallowed", async () => {
    const r = await rig();
    const init = await r.initialize();
    expect(init.result.serverInfo.name).toBe("token-server");
    const a = await r.whoami();
    r.due();
    await r.restarted(1);
    const b = await r.whoami();
    r.due();
    await r.restarted(2);
    const c = await r.whoami();
    expect(new Set([a.pid, b.pid, c.pid]).size).toBe(3);
    expect(new Set(r.tokens).size).toBe(3);
    // Each new process was initialized (the replay), and answered with the sandbox's approval of its token.
    for (const w of [a, b, c]) expect(w).toMatchObject({ initializations: 1, upstream: { client_id: "sandbox-m2m" } });
    // The client saw one initialize answer (its own) and nothing with an id it did not send.
    expect(r.messages.filter((m) => m.result?.serverInfo)).toHaveLength(1);
    expect(r.messages.map((m) => m.id).filter((id) => id !== undefined)).toEqual([1, 2, 3, 4]);
    expect(r.errors).toEqual([]);
    await r.close();
  }, 60_000);

  it("never restarts in the middle of a request: the one in flight is answered by the old server, the next by the new", async () => {
    const r = await rig();
    await r.initialize();
    const first = await r.whoami();
    const slow = r.request("tools/call", { name: "slow", arguments: { ms: 300 } });
    await new Promise((res) => setImmediate(res));
    r.due();
    expect(r.handle.restarts).toHaveLength(0);
    const answered = await slow;
    expect(JSON.parse(answered.result.content[0].text).pid).toBe(first.pid);
    await r.restarted(1);
    expect((await r.whoami()).pid).not.toBe(first.pid);
    await r.close();
  }, 60_000);

  it("the client is served without a pause while the new server starts; it takes over at the next idle moment", async () => {
    const r = await rig();
    await r.initialize();
    const first = await r.whoami();
    r.due();
    const during = await r.whoami(); // sent while the new process starts: the old one answers it
    expect(during.pid).toBe(first.pid);
    await r.restarted(1);
    const after = await r.whoami();
    expect(after.pid).not.toBe(first.pid);
    expect(after.upstream.client_id).toBe("sandbox-m2m");
    await r.close();
  }, 60_000);

  it("a handshake the client makes while the new server starts is replayed too (the server is prepared again)", async () => {
    const r = await rig();
    r.due(); // before the client said anything: nothing to replay yet
    const init = await r.initialize();
    expect(init.result.serverInfo.name).toBe("token-server");
    await r.restarted(1);
    const w = await r.whoami();
    expect(w).toMatchObject({ initializations: 1, upstream: { client_id: "sandbox-m2m" } });
    expect(r.messages.filter((m) => m.result?.serverInfo)).toHaveLength(1);
    await r.close();
  }, 60_000);

  it("a 2026-07-28-style client without a handshake gets no replay", async () => {
    const r = await rig({ command: ["cat"] });
    r.due();
    await r.restarted(1);
    // cat would have echoed a replayed initialize; nothing was sent.
    r.input.write('{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{"_meta":{}}}\n');
    await r.close();
    expect(r.raw().toString()).toBe('{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{"_meta":{}}}\n');
  }, 30_000);

  it("a server still being prepared when the client leaves is stopped and waited for: exec ends with no process left behind", async () => {
    // Answers initialize; the one started with the token "slow" answers after 500 ms, and lives until it has.
    const script = `require("node:readline").createInterface({ input: process.stdin }).on("line", (l) => {
      const m = JSON.parse(l);
      if (m.method !== "initialize") return;
      const answer = JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: "2025-06-18", capabilities: {}, serverInfo: { name: "s", version: "0" } } });
      setTimeout(() => process.stdout.write(answer + "\\n"), process.env.MCP_AUTH_TOKEN === "slow" ? 500 : 0);
    });`;
    let calls = 0;
    const r = await rig({ command: [process.execPath, "-e", script], token: async () => ({ access_token: ++calls === 1 ? "first" : "slow", expires_at: Math.floor(Date.now() / 1000) + 3600 }) });
    await r.initialize();
    r.due();
    // The new server runs and has been sent the replayed initialize; it has not answered yet.
    for (let i = 0; i < 500 && !(r.children[1]?.pid && r.children[1].stdin?.writableLength === 0); i++) await new Promise((res) => setTimeout(res, 5));
    expect(r.children).toHaveLength(2);
    expect(await r.close()).toEqual({ code: 0, signal: null });
    // Both servers had exited when exec was done: none is left to write to a pipe nobody reads.
    expect(r.children.map((c) => c.exitCode ?? c.signalCode)).toEqual([0, 0]);
    expect(r.handle.restarts).toHaveLength(0);
    expect(r.errors).toEqual([]);
  }, 30_000);

  it("a restart that cannot get a token keeps the running server and says so once", async () => {
    let calls = 0;
    const r = await rig({
      token: async () => {
        if (++calls > 1) throw new Error("the IdP is down");
        const t = await realToken();
        return { access_token: t.access_token, expires_at: Math.floor(Date.now() / 1000) + t.expires_in };
      },
    });
    await r.initialize();
    const a = await r.whoami();
    r.due();
    for (let i = 0; i < 100 && !r.errors.length; i++) await new Promise((res) => setTimeout(res, 10));
    expect(r.errors).toEqual([expect.stringContaining("could not restart the MCP server with a fresh token: the IdP is down")]);
    expect((await r.whoami()).pid).toBe(a.pid);
    await r.close();
  }, 30_000);
});

/**
 * Scripted in-process servers, for the framing and restart cases where what matters is exactly which
 * message reaches which process: each `FakeServer` is a ChildLike whose stdin the test reads as
 * JSON-RPC and whose stdout it writes, and which exits when its stdin is closed, as a stdio server does.
 */
class FakeServer extends EventEmitter {
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  readonly received: Msg[] = [];
  private exited = false;
  constructor(
    readonly token: string,
    readonly pid: number,
    behave: (s: FakeServer, m: Msg) => void,
  ) {
    super();
    let buf = "";
    this.stdin.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) !== -1) {
        const v = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        for (const m of Array.isArray(v) ? v : [v]) {
          this.received.push(m);
          behave(this, m);
        }
      }
    });
    this.stdin.on("finish", () => this.exit(0, null));
    setImmediate(() => this.emit("spawn"));
  }
  send(m: Msg): void {
    this.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...m }) + "\n");
  }
  /** What the server does on a signal; by default it dies of it. */
  onSignal?: (signal: NodeJS.Signals) => void;
  kill(signal: NodeJS.Signals = "SIGTERM"): boolean {
    if (this.onSignal) this.onSignal(signal);
    else this.exit(null, signal);
    return true;
  }
  exit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    this.stdout.end();
    setImmediate(() => this.emit("close", code, signal));
  }
}

/** Answers initialize, logging/setLevel and any other request; `extra` adds a server's own behaviour. */
const answering = (extra?: (s: FakeServer, m: Msg) => void) => (s: FakeServer, m: Msg) => {
  extra?.(s, m);
  if (m.method === "initialize") s.send({ id: m.id, result: { protocolVersion: "2025-06-18", capabilities: {}, serverInfo: { name: "fake", version: "0" } } });
  else if (typeof m.method === "string" && m.id !== undefined) s.send({ id: m.id, result: { pid: s.pid } });
};

/** `o.token(n)`: the n-th token request's outcome instead of a fresh token, when it returns one. */
async function fakeRig(behave: (s: FakeServer, m: Msg) => void, o: { token?: (n: number) => Promise<never> | undefined } = {}) {
  const input = new PassThrough();
  const output = new PassThrough();
  const servers: FakeServer[] = [];
  const errors: string[] = [];
  const timers: Array<{ ms: number; at: number; fn: () => void; cancelled: boolean }> = [];
  const messages: Msg[] = [];
  /** Time awake (ms), which timers count. */
  let awakeMs = 0;
  let pending = "";
  output.on("data", (d: Buffer) => {
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf("\n")) !== -1) {
      messages.push(JSON.parse(pending.slice(0, nl)));
      pending = pending.slice(nl + 1);
    }
  });
  let now = 1_000_000;
  let n = 0;
  const handle = await runExec({
    spawn: (token) => {
      const s = new FakeServer(token, 100 + servers.length, behave);
      servers.push(s);
      return s as unknown as ChildLike;
    },
    token: async () => (await o.token?.(++n)) ?? { access_token: `token-${n}`, expires_at: now / 1000 + 3600 },
    input,
    output,
    now: () => now,
    timer: (ms, fn) => {
      const t = { ms, at: awakeMs + ms, fn, cancelled: false };
      timers.push(t);
      return () => void (t.cancelled = true);
    },
    error: (l) => errors.push(l),
  });
  const send = (m: Msg | Msg[]) => input.write(JSON.stringify(Array.isArray(m) ? m.map((x) => ({ jsonrpc: "2.0", ...x })) : { jsonrpc: "2.0", ...m }) + "\n");
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };
  /** The token is due: the clock moves past the renewal time and the renewal timer fires. */
  const due = async () => {
    now += 3600_000;
    const t = timers.filter((x) => !x.cancelled).at(-1)!;
    t.cancelled = true;
    t.fn();
    await settle();
  };
  /** The machine slept for `ms`: the wall clock moved on, timers did not (they count only time awake). */
  const sleep = (ms: number) => void (now += ms);
  /** `ms` awake: both clocks move on, and the timers that come due meanwhile fire, in order. */
  const awake = async (ms: number) => {
    const end = awakeMs + ms;
    for (;;) {
      const t = timers.filter((x) => !x.cancelled && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!t) break;
      now += t.at - awakeMs;
      awakeMs = t.at;
      t.cancelled = true;
      t.fn();
      await settle();
    }
    now += end - awakeMs;
    awakeMs = end;
  };
  return { input, output, servers, errors, messages, handle, send, settle, due, sleep, awake };
}

describe("exec: backpressure, as a pipe applies it", () => {
  const LINE = "x".repeat(1024);
  it("a client that does not read yet holds the server's output in the server, not in exec; all of it arrives, in order, once it reads", async () => {
    // A tools/call whose answer comes as 2,000 progress notifications of 1 KiB and then the result.
    const r = await fakeRig(
      answering((s, m) => {
        if (m.method !== "tools/call") return;
        for (let i = 0; i < 2000; i++) s.send({ method: "notifications/progress", params: { progressToken: 1, progress: i, message: LINE } });
      }),
    );
    r.output.pause();
    r.send({ id: 1, method: "tools/call", params: { name: "big", _meta: { progressToken: 1 } } });
    await r.settle();
    // exec wrote until the client's side was full, then paused the server: the rest waits in the server's pipe.
    expect(r.output.writableLength + r.output.readableLength).toBeLessThan(64 * 1024);
    const waiting = r.servers[0]!.stdout;
    expect(waiting.readableLength + waiting.writableLength).toBeGreaterThan(1024 * 1024);
    r.output.resume();
    await r.settle();
    while (r.messages.length < 2001) await new Promise((res) => setImmediate(res));
    expect(r.messages.filter((m) => m.method === "notifications/progress").map((m) => m.params.progress)).toEqual([...Array(2000).keys()]);
    expect(r.messages.at(-1)).toMatchObject({ id: 1, result: { pid: 100 } });
    r.input.end();
    await r.handle.done;
  });
  it("a server that does not read its stdin yet pauses the client; the client goes on once the server reads", async () => {
    const r = await fakeRig(answering());
    const server = r.servers[0]!;
    server.stdin.pause();
    for (let i = 0; i < 200; i++) r.send({ method: "notifications/message", params: { data: LINE } });
    await r.settle();
    expect(r.input.isPaused()).toBe(true);
    expect(server.stdin.writableLength + server.stdin.readableLength).toBeLessThan(64 * 1024);
    server.stdin.resume();
    await r.settle();
    expect(r.input.isPaused()).toBe(false);
    r.send({ id: 1, method: "tools/list" });
    while (!r.messages.some((m) => m.id === 1)) await new Promise((res) => setImmediate(res));
    expect(server.received.filter((m) => m.method === "notifications/message")).toHaveLength(200);
    r.input.end();
    await r.handle.done;
  });
});

describe("exec: what each scripted server receives around a restart", () => {
  it("a notifications/initialized sent in a batch is replayed alone: the batch's requests are not run again on the new server", async () => {
    const r = await fakeRig(answering());
    r.send({ id: 1, method: "initialize", params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "c", version: "0" } } });
    await r.settle();
    // A 2025-03-26 client may batch; a tool call with side effects rides along with the notification.
    r.send([{ method: "notifications/initialized" }, { id: 2, method: "tools/call", params: { name: "create_issue", arguments: {} } }]);
    await r.settle();
    await r.due();
    expect(r.handle.restarts).toHaveLength(1);
    expect(r.servers[1]!.received.map((m) => m.method)).toEqual(["initialize", "notifications/initialized"]);
    r.input.end();
    await r.handle.done;
  });
  it("a request the new server makes while it is prepared (roots/list after initialized) reaches the client once it takes over, and the answer reaches it", async () => {
    // As the reference filesystem server does: once initialized, it asks a client with roots for them.
    const r = await fakeRig(answering((s, m) => m.method === "notifications/initialized" && s.send({ id: 0, method: "roots/list" })));
    r.send({ id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: { roots: {} }, clientInfo: { name: "c", version: "0" } } });
    await r.settle();
    r.send({ method: "notifications/initialized" });
    await r.settle();
    expect(r.messages.filter((m) => m.method === "roots/list")).toHaveLength(1);
    r.send({ id: 0, result: { roots: [{ uri: "file:///work" }] } });
    await r.settle();
    await r.due();
    expect(r.handle.restarts).toHaveLength(1);
    // The new server's roots/list went to the client, after the switch; the client's answer went to the new server.
    expect(r.messages.filter((m) => m.method === "roots/list")).toHaveLength(2);
    r.send({ id: 0, result: { roots: [{ uri: "file:///work" }] } });
    await r.settle();
    expect(r.servers[1]!.received.at(-1)).toMatchObject({ id: 0, result: { roots: [{ uri: "file:///work" }] } });
    r.send({ id: 2, method: "tools/list" });
    await r.settle();
    expect(r.messages.at(-1)).toMatchObject({ id: 2, result: { pid: 101 } });
    r.input.end();
    await r.handle.done;
  });
  it("a restart that keeps failing says so once, not at every retry; a later failure after a restart that worked says so again", async () => {
    let down = true;
    const r = await fakeRig(answering(), { token: (n) => (n > 1 && down ? Promise.reject(new Error("the IdP is down")) : undefined) });
    await r.due();
    for (let i = 0; i < 3; i++) await r.due(); // the retries, 5 s apart
    expect(r.errors).toEqual([expect.stringContaining("could not restart the MCP server with a fresh token: the IdP is down")]);
    expect(r.handle.restarts).toHaveLength(0);
    down = false;
    await r.due();
    expect(r.handle.restarts).toHaveLength(1);
    down = true;
    await r.due();
    expect(r.errors).toHaveLength(2);
    r.input.end();
    await r.handle.done;
  });
  it("after the machine slept past the renewal time, the restart comes within a minute of waking, not when the timer's own count runs out", async () => {
    // Timers stop while a laptop sleeps (macOS, Windows: nodejs/node#20661, #6763); the token's expiry does not.
    const r = await fakeRig(answering());
    r.send({ id: 1, method: "tools/list" });
    await r.settle();
    r.sleep(2 * 3600_000);
    await r.awake(60_000);
    expect(r.handle.restarts).toHaveLength(1);
    r.input.end();
    await r.handle.done;
  });
  it("a signal passed on to the server ends the run even when the server answers what it owes before it exits: no new server takes over", async () => {
    // The request is answered only at shutdown, as a server that finishes its work on SIGTERM does.
    const held: Msg[] = [];
    const r = await fakeRig(answering(), {});
    r.servers[0]!.onSignal = () => {
      for (const m of held) r.servers[0]!.send({ id: m.id, result: {} });
      setImmediate(() => r.servers[0]!.exit(0, null));
    };
    r.servers[0]!.stdin.removeAllListeners("data");
    r.servers[0]!.stdin.on("data", (d: Buffer) => held.push(JSON.parse(d.toString())));
    r.send({ id: 1, method: "tools/call", params: { name: "slow" } });
    await r.settle();
    await r.due(); // a new server is ready, waiting for the request to be answered
    expect(r.servers).toHaveLength(2);
    r.handle.kill("SIGTERM");
    expect(await r.handle.done).toEqual({ code: 0, signal: null });
    expect(r.handle.restarts).toHaveLength(0);
    expect(r.messages).toEqual([{ jsonrpc: "2.0", id: 1, result: {} }]);
  });
});
