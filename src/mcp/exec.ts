import type { BearerToken } from "./proxy.js";

/**
 * The supervisor behind `mcp-auth exec`: a stdio MCP server that calls an API with the user's token
 * (read from an environment variable at start) runs under it. Bytes pass through unchanged in both
 * directions, one newline-delimited JSON-RPC message per line (the stdio transport's framing); each
 * line is only looked at, to know which requests are still owed an answer.
 *
 * An environment variable cannot change inside a running process, so before the token expires a new
 * server is started with a fresh one while the old one keeps serving, and takes over at a moment when
 * neither side owes the other an answer (never in the middle of a request). A legacy-era client shook
 * hands once (`initialize`, `notifications/initialized`; docs/mcp-2026-07-28.md): that handshake, and
 * the log level it set, is replayed to the new process and the answers are swallowed, so the client
 * notices nothing. A 2026-07-28 client carries its state on every request and needs no replay.
 *
 * Nothing here touches the process: the child is started by `spawn`, signals come in through `kill`.
 */
export interface ChildLike {
  stdin: NodeJS.WritableStream & { end(): void; destroyed?: boolean };
  stdout: NodeJS.ReadableStream;
  pid?: number;
  kill(signal?: NodeJS.Signals): boolean;
  on(event: "close", fn: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  on(event: "error", fn: (e: Error) => void): this;
  once(event: "spawn", fn: () => void): this;
}

export interface ExecOptions {
  /** Starts the server with `token` in its environment. */
  spawn: (token: string) => ChildLike;
  /** A token from the cache or the IdP (`forceRefresh`: not the one the last server got). */
  token: (o: { forceRefresh: boolean }) => Promise<BearerToken>;
  /** From the MCP client. */
  input: NodeJS.ReadableStream;
  /** To the MCP client. */
  output: NodeJS.WritableStream;
  now: () => number; // ms
  /** Runs `fn` after `ms`; returns its cancel. Default: setTimeout. */
  timer?: (ms: number, fn: () => void) => () => void;
  /** One line to the user (stderr). */
  error: (line: string) => void;
  debug?: (line: string) => void;
  /** How long a replaced server gets to exit once its stdin is closed, before SIGTERM, then SIGKILL (ms). */
  graceMs?: number;
  /** How long the new server gets to answer the replayed handshake (ms). */
  replayTimeoutMs?: number;
}

export interface ExecResult {
  /** The server's exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ExecHandle {
  /** Settles when the server the client talks to has exited. */
  done: Promise<ExecResult>;
  /** Passes a signal on to the running server. */
  kill(signal: NodeJS.Signals): void;
  /**
   * Restarts so far: how long the new server took to start and replay the handshake (while the old one
   * served), and how long it then waited for a moment between exchanges (ms). The client's messages are
   * never held.
   */
  restarts: Array<{ preparedMs: number; waitedMs: number }>;
}

/** The server could not be started at all (exit 127 when not found, 126 when not executable, as a shell does). */
export class SpawnError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Restart this long before the token expires: a minute, or half its remaining life if that is shorter. */
const MAX_SKEW_MS = 60_000;
/** After a failed restart, try again this much later (the old server keeps running meanwhile). */
const RETRY_MS = 5_000;
/** setTimeout's longest delay; a later renewal is checked again when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function renewAt(t: BearerToken, now: number): number {
  const expires = t.expires_at * 1000;
  return expires - Math.min(MAX_SKEW_MS, Math.max(0, expires - now) / 2);
}

type Msg = { id?: unknown; method?: unknown; result?: unknown; error?: unknown; params?: unknown };

/** The JSON-RPC messages of one line (a 2025-03-26 batch is an array), or none when it is not JSON. */
function messages(line: Buffer): Msg[] {
  try {
    const v: unknown = JSON.parse(line.toString("utf8"));
    const all = Array.isArray(v) ? v : [v];
    return all.filter((m): m is Msg => Boolean(m) && typeof m === "object" && !Array.isArray(m));
  } catch {
    return [];
  }
}

const hasId = (m: Msg) => typeof m.id === "string" || typeof m.id === "number";
const isRequest = (m: Msg) => typeof m.method === "string" && hasId(m);
const isAnswer = (m: Msg) => typeof m.method !== "string" && hasId(m) && ("result" in m || "error" in m);
/** Ids as keys: 1 and "1" are different requests. */
const key = (id: unknown) => JSON.stringify(id);

/** Splits a byte stream into lines, each with its "\n", as they complete. */
function lineSplitter(onLine: (line: Buffer) => void) {
  let parts: Buffer[] = [];
  return {
    feed(chunk: Buffer): void {
      let from = 0;
      let nl: number;
      while ((nl = chunk.indexOf(0x0a, from)) !== -1) {
        const piece = chunk.subarray(from, nl + 1);
        onLine(parts.length ? Buffer.concat([...parts, piece]) : piece);
        parts = [];
        from = nl + 1;
      }
      if (from < chunk.length) parts.push(Buffer.from(chunk.subarray(from)));
    },
    /** What is left without a final newline. */
    rest(): Buffer | undefined {
      const r = parts.length ? Buffer.concat(parts) : undefined;
      parts = [];
      return r;
    },
  };
}

export async function runExec(o: ExecOptions): Promise<ExecHandle> {
  const timer = o.timer ?? ((ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  });
  const graceMs = o.graceMs ?? 3000;
  const replayTimeoutMs = o.replayTimeoutMs ?? 30_000;

  /** Client requests the server has not answered, and server requests the client has not. */
  const clientOwed = new Set<string>();
  const serverOwed = new Set<string>();
  /** The legacy handshake and session state, to replay: the messages as the client sent them. */
  let initialize: Msg | undefined;
  let initialized: Buffer | undefined;
  let logLevel: Msg | undefined;
  /** Answers to replayed requests: id → resolve (they never reach the client). */
  const replies = new Map<string, (m: Msg) => void>();
  let replaySeq = 0;

  /** Bumped whenever the state to replay changes: a server prepared before that is out of date. */
  let stateVersion = 0;
  let preparing = false;
  /** A server started with a fresh token and brought up to the client's state, waiting for an idle moment. */
  let ready: { child: ChildLike; token: BearerToken; version: number; since: number; preparedMs: number } | undefined;
  let inputEnded = false;
  let cancelRenewal: (() => void) | undefined;
  const restarts: ExecHandle["restarts"] = [];

  let resolveDone!: (r: ExecResult) => void;
  const done = new Promise<ExecResult>((res) => (resolveDone = res));
  let finished = false;

  let current: ChildLike;
  let currentToken: string;

  const write = (child: ChildLike, b: Buffer) => {
    if (!child.stdin.destroyed) child.stdin.write(b);
  };

  /** A line from the client: always to the current server (a new one takes over only between exchanges). */
  const fromClient = (line: Buffer) => {
    for (const m of messages(line)) {
      if (isRequest(m)) {
        clientOwed.add(key(m.id));
        if (m.method === "initialize") (initialize = m), stateVersion++;
        if (m.method === "logging/setLevel") (logLevel = m), stateVersion++;
      } else if (isAnswer(m)) serverOwed.delete(key(m.id));
      else if (m.method === "notifications/initialized") (initialized = line), stateVersion++;
      // A cancelled request may never be answered (basic/utilities/cancellation).
      else if (m.method === "notifications/cancelled") clientOwed.delete(key((m.params as { requestId?: unknown } | undefined)?.requestId));
    }
    write(current, line);
    maybeSwap();
  };

  /** A line from a server: the current one's go to the client; a new one's only answer the replay. */
  const fromServer = (child: ChildLike, line: Buffer) => {
    const ms = messages(line);
    if (ms.length === 1 && isAnswer(ms[0]!) && replies.has(key(ms[0]!.id))) {
      const k = key(ms[0]!.id);
      const r = replies.get(k)!;
      replies.delete(k);
      return r(ms[0]!);
    }
    if (child !== current) return; // a server being prepared, or a replaced one's last words
    for (const m of ms) {
      if (isAnswer(m)) clientOwed.delete(key(m.id));
      else if (isRequest(m)) serverOwed.add(key(m.id));
      else if (m.method === "notifications/cancelled") serverOwed.delete(key((m.params as { requestId?: unknown } | undefined)?.requestId));
    }
    o.output.write(line);
    maybeSwap();
  };

  /** Starts a server with `token`; resolves once it runs (rejects with SpawnError if it cannot start). */
  const start = (token: string): Promise<ChildLike> =>
    new Promise((resolve, reject) => {
      let child: ChildLike;
      try {
        child = o.spawn(token);
      } catch (e) {
        return reject(new SpawnError((e as Error).message, 126));
      }
      const lines = lineSplitter((l) => fromServer(child, l));
      // A server that exited has a closed stdin: its close event ends the run, not an EPIPE.
      (child.stdin as NodeJS.EventEmitter).on("error", () => {});
      child.stdout.on("data", (d: Buffer) => lines.feed(d));
      child.stdout.on("end", () => {
        const r = lines.rest();
        if (r) fromServer(child, r);
      });
      child.on("error", (e: NodeJS.ErrnoException) => reject(new SpawnError(e.message, e.code === "ENOENT" ? 127 : 126)));
      child.on("close", (code, signal) => closed(child, code, signal));
      // A command that cannot be started reports "error" instead of "spawn".
      child.once("spawn", () => resolve(child));
    });

  const closed = (child: ChildLike, code: number | null, signal: NodeJS.Signals | null) => {
    if (child === ready?.child) {
      ready = undefined;
      return failed(new Error(`the new MCP server exited (${signal ?? `code ${code}`}) before it took over`));
    }
    if (child !== current || finished) return;
    finished = true;
    cancelRenewal?.();
    if (ready) stop(ready.child);
    o.input.off("data", onInput);
    resolveDone({ code, signal });
  };

  const schedule = (t: BearerToken) => {
    cancelRenewal?.();
    if (!Number.isFinite(t.expires_at) || t.expires_at <= 0) return; // no expiry: nothing to renew
    const at = renewAt(t, o.now());
    const arm = () => {
      const wait = at - o.now();
      if (wait > 0) cancelRenewal = timer(Math.min(wait, MAX_TIMER_MS), arm);
      else void prepare();
    };
    arm();
  };

  const idle = () => clientOwed.size === 0 && serverOwed.size === 0;

  /** Sends a request to `child` with an id of its own and waits for its answer. */
  const replay = (child: ChildLike, m: Msg): Promise<Msg> =>
    new Promise((resolve, reject) => {
      const id = `mcp-auth-replay-${++replaySeq}`;
      const cancel = timer(replayTimeoutMs, () => {
        replies.delete(key(id));
        reject(new Error(`the restarted MCP server did not answer ${String(m.method)} within ${replayTimeoutMs / 1000} s`));
      });
      replies.set(key(id), (a) => {
        cancel();
        resolve(a);
      });
      child.on("close", () => {
        cancel();
        replies.delete(key(id));
        reject(new Error(`the restarted MCP server exited during ${String(m.method)}`));
      });
      write(child, Buffer.from(JSON.stringify({ ...m, id }) + "\n"));
    });

  const failed = (e: unknown) => {
    o.error(`could not restart the MCP server with a fresh token: ${(e as Error)?.message ?? e}; the running one continues, trying again in ${RETRY_MS / 1000} s`);
    cancelRenewal?.();
    cancelRenewal = timer(RETRY_MS, () => void prepare());
  };

  /**
   * Before the token expires: a new server with a fresh token, brought up to the client's state (the
   * replayed handshake), while the current one keeps serving. It takes over at the next moment when
   * neither side owes the other an answer, so the client's messages are never held.
   */
  const prepare = async () => {
    if (preparing || ready || finished || inputEnded) return;
    preparing = true;
    const began = o.now();
    let next: ChildLike | undefined;
    try {
      let t = await o.token({ forceRefresh: false });
      if (t.access_token === currentToken) t = await o.token({ forceRefresh: true });
      next = await start(t.access_token);
      const version = stateVersion;
      if (initialize) {
        const a = await replay(next, initialize);
        if (!("result" in a)) throw new Error(`the restarted MCP server refused the replayed initialize: ${JSON.stringify(a.error).slice(0, 300)}`);
        if (initialized) write(next, initialized);
      }
      if (logLevel) await replay(next, logLevel);
      if (finished || inputEnded) return void stop(next);
      ready = { child: next, token: t, version, since: o.now(), preparedMs: o.now() - began };
    } catch (e) {
      if (next) stop(next);
      failed(e);
    } finally {
      preparing = false;
      maybeSwap();
    }
  };

  /** The prepared server takes over, if neither side owes the other an answer now. */
  const maybeSwap = () => {
    if (!ready || preparing || finished || inputEnded || !idle()) return;
    const next = ready;
    ready = undefined;
    if (next.version !== stateVersion) {
      // The client changed its session state (initialize, log level) meanwhile: prepare again.
      stop(next.child);
      return void prepare();
    }
    const old = current;
    current = next.child;
    currentToken = next.token.access_token;
    stop(old);
    schedule(next.token);
    restarts.push({ preparedMs: next.preparedMs, waitedMs: o.now() - next.since });
    o.debug?.(`the MCP server runs with a fresh token now (pid ${old.pid} → ${next.child.pid}; started in ${next.preparedMs} ms while the old one served, took over ${o.now() - next.since} ms later, between exchanges)`);
  };

  /** Ends a replaced server as the stdio transport asks: close its stdin, then SIGTERM, then SIGKILL. */
  const stop = (child: ChildLike) => {
    let exited = false;
    child.on("close", () => (exited = true));
    child.stdin.end();
    timer(graceMs, () => {
      if (exited) return;
      child.kill("SIGTERM");
      timer(graceMs, () => void (exited || child.kill("SIGKILL")));
    });
  };

  const input = lineSplitter(fromClient);
  const onInput = (d: Buffer | string) => input.feed(typeof d === "string" ? Buffer.from(d) : d);

  const first = await o.token({ forceRefresh: false });
  currentToken = first.access_token;
  current = await start(first.access_token);
  schedule(first);
  o.input.on("data", onInput);
  o.input.once("end", () => {
    const r = input.rest();
    if (r) fromClient(r);
    inputEnded = true;
    current.stdin.end();
    if (ready) stop(ready.child);
    ready = undefined;
  });

  return {
    done,
    restarts,
    kill: (signal) => {
      current.kill(signal);
    },
  };
}
