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
  on(event: "close" | "exit", fn: (code: number | null, signal: NodeJS.Signals | null) => void): this;
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
/** How long a server's output is still read once it has exited (see `start`). */
const AFTER_EXIT_MS = 500;
/** After a failed restart, try again this much later (the old server keeps running meanwhile). */
const RETRY_MS = 5_000;
/**
 * The renewal timer looks at the wall clock again at least this often: timers stop while a laptop
 * sleeps (macOS, Windows: nodejs/node#20661, #6763) and the token's expiry does not, so one timer
 * for the whole wait would wake a server that has run on an expired token since the lid opened.
 */
const CHECK_MS = 60_000;

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

/** The id a notifications/cancelled names (basic/utilities/cancellation). */
const cancelledId = (m: Msg) => (m.params as { requestId?: unknown } | undefined)?.requestId;

/** ExecOptions.timer's default. */
function setTimer(ms: number, fn: () => void): () => void {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
}

/** A server started with a fresh token and brought up to the client's state, waiting for an idle moment. */
interface Prepared {
  child: ChildLike;
  token: BearerToken;
  /** The session state it was brought up to (see `stateVersion`). */
  version: number;
  /** When it was ready, and how long that took (ms). */
  since: number;
  preparedMs: number;
}

/**
 * The state of one `mcp-auth exec` run. Its methods, in order: the run's life (run, inputEnd,
 * closed), the bytes passing through (fromClient, fromServer), starting and stopping a server
 * (start, stop), then the restart (schedule, prepare, replay, failed, maybeSwap).
 */
class ExecSupervisor {
  private readonly timer: (ms: number, fn: () => void) => () => void;
  private readonly graceMs: number;
  private readonly replayTimeoutMs: number;

  /** Client requests the server has not answered, and server requests the client has not. */
  private readonly clientOwed = new Set<string>();
  private readonly serverOwed = new Set<string>();
  /** The legacy handshake and session state, to replay: the messages as the client sent them. */
  private initialize: Msg | undefined;
  private initialized: Buffer | undefined;
  private logLevel: Msg | undefined;
  /** Answers to replayed requests: id → resolve (they never reach the client). */
  private readonly replies = new Map<string, (m: Msg) => void>();
  private replaySeq = 0;
  /**
   * Requests a server made while it was prepared, such as the roots/list a server sends once
   * initialized: nobody could answer them then, so they go to the client when that server takes over.
   */
  private readonly held = new Map<ChildLike, Buffer[]>();

  /** Bumped whenever the state to replay changes: a server prepared before that is out of date. */
  private stateVersion = 0;
  private preparing = false;
  private ready: Prepared | undefined;
  /** The run is ending (the client left, or a signal was passed on): no server takes over any more. */
  private ending = false;
  private cancelRenewal: (() => void) | undefined;
  /** A failed restart was reported and none has worked since: the retries stay quiet. */
  private failing = false;
  private readonly restarts: ExecHandle["restarts"] = [];

  private resolveDone!: (r: ExecResult) => void;
  private readonly done = new Promise<ExecResult>((res) => (this.resolveDone = res));
  private finished = false;
  /** How the current server ended, kept until every other server has exited too. */
  private result: ExecResult | undefined;
  /** Every server process not yet exited: the current one, one being prepared or ready, replaced ones shutting down. */
  private readonly alive = new Set<ChildLike>();
  private readonly stopping = new Set<ChildLike>();

  /** The server the client talks to, and the token it was started with. */
  private current!: ChildLike;
  private currentToken!: string;

  /**
   * Backpressure, as a pipe would apply it: a server whose output the client does not read yet is
   * paused until the client's side drains, and the client is paused while the current server's stdin
   * is full (until it drains, exits or is replaced). Without it, either side could fill exec's memory.
   */
  private serverPaused: ChildLike | undefined;
  private clientPausedFor: ChildLike | undefined;

  private readonly input = lineSplitter((l) => this.fromClient(l));
  /** Kept as one function so that `closed` can take it off the input again. */
  private readonly onInput = (d: Buffer | string) => this.input.feed(typeof d === "string" ? Buffer.from(d) : d);

  constructor(private readonly o: ExecOptions) {
    this.timer = o.timer ?? setTimer;
    this.graceMs = o.graceMs ?? 3000;
    this.replayTimeoutMs = o.replayTimeoutMs ?? 30_000;
  }

  // ── The run's life ──────────────────────────────────────────────────────────────────────────

  /** Starts the first server; the client's bytes flow only once it runs. */
  async run(): Promise<ExecHandle> {
    const first = await this.o.token({ forceRefresh: false });
    this.currentToken = first.access_token;
    this.current = await this.start(first.access_token);
    this.schedule(first);
    this.o.input.on("data", this.onInput);
    this.o.input.once("end", () => this.inputEnd());
    return {
      done: this.done,
      restarts: this.restarts,
      kill: (signal) => {
        // The server decides how to exit, and exec exits as it did: no new one may take over meanwhile.
        this.endRestarts();
        this.current.kill(signal);
      },
    };
  }

  /** The client is gone: the server gets EOF as the stdio transport asks, and none takes over any more. */
  private inputEnd(): void {
    const r = this.input.rest();
    if (r) this.fromClient(r);
    this.endRestarts();
    this.current.stdin.end();
  }

  private endRestarts(): void {
    this.ending = true;
    if (this.ready) this.stop(this.ready.child);
    this.ready = undefined;
  }

  /**
   * A server exited: the current one ends the run; a prepared one is a failed restart. The run is done
   * once every server has exited: one still starting or shutting down when the current one ends is
   * stopped and waited for, so none is left writing to a pipe nobody reads (it would die of EPIPE,
   * onto the client's stderr).
   */
  private closed(child: ChildLike, code: number | null, signal: NodeJS.Signals | null): void {
    this.alive.delete(child);
    this.held.delete(child);
    this.resumeClient(child);
    if (child === this.ready?.child) {
      this.ready = undefined;
      if (!this.finished) this.failed(new Error(`the new MCP server exited (${signal ?? `code ${code}`}) before it took over`));
    } else if (child === this.current && !this.finished) {
      this.finished = true;
      this.result = { code, signal };
      this.cancelRenewal?.();
      this.o.input.off("data", this.onInput);
      for (const other of this.alive) this.stop(other);
    }
    if (this.result && this.alive.size === 0) this.resolveDone(this.result);
  }

  // ── The bytes passing through ───────────────────────────────────────────────────────────────

  /** A line from the client: always to the current server (a new one takes over only between exchanges). */
  private fromClient(line: Buffer): void {
    for (const m of messages(line)) {
      if (isRequest(m)) {
        this.clientOwed.add(key(m.id));
        if (m.method === "initialize") this.initialize = m;
        if (m.method === "logging/setLevel") this.logLevel = m;
        if (m.method === "initialize" || m.method === "logging/setLevel") this.stateVersion++;
      } else if (isAnswer(m)) this.serverOwed.delete(key(m.id));
      else if (m.method === "notifications/initialized") {
        // The notification alone: a 2025-03-26 batch may carry requests that must not run twice.
        this.initialized = Buffer.from(JSON.stringify(m) + "\n");
        this.stateVersion++;
      }
      // A cancelled request may never be answered.
      else if (m.method === "notifications/cancelled") this.clientOwed.delete(key(cancelledId(m)));
    }
    if (!this.write(this.current, line)) this.pauseClient(this.current);
    this.maybeSwap();
  }

  /** A line from a server: the current one's go to the client; a new one's only answer the replay. */
  private fromServer(child: ChildLike, line: Buffer): void {
    const ms = messages(line);
    const only = ms.length === 1 ? ms[0]! : undefined;
    const reply = only && isAnswer(only) ? this.replies.get(key(only.id)) : undefined;
    if (only && reply) {
      this.replies.delete(key(only.id));
      return reply(only);
    }
    if (child !== this.current) {
      // A server being prepared: its requests wait for the switch; the rest, and a replaced one's last words, are dropped.
      if (!this.stopping.has(child) && ms.some(isRequest)) this.held.set(child, [...(this.held.get(child) ?? []), line]);
      return;
    }
    for (const m of ms) {
      if (isAnswer(m)) this.clientOwed.delete(key(m.id));
      else if (isRequest(m)) this.serverOwed.add(key(m.id));
      else if (m.method === "notifications/cancelled") this.serverOwed.delete(key(cancelledId(m)));
    }
    if (!this.o.output.write(line)) this.pauseServer(child);
    this.maybeSwap();
  }

  /** Writes to a server's stdin; false when it is full (the bytes are queued, not lost). */
  private write(child: ChildLike, b: Buffer): boolean {
    return child.stdin.destroyed ? true : child.stdin.write(b);
  }

  private pauseServer(child: ChildLike): void {
    if (this.serverPaused) return;
    this.serverPaused = child;
    child.stdout.pause();
    this.o.output.once("drain", () => {
      this.serverPaused = undefined;
      child.stdout.resume();
    });
  }

  private pauseClient(child: ChildLike): void {
    if (this.clientPausedFor) return;
    this.clientPausedFor = child;
    this.o.input.pause();
    child.stdin.once("drain", () => this.resumeClient(child));
  }

  /** The client may send again: the server it waited for drained, exited or was replaced. */
  private resumeClient(child: ChildLike): void {
    if (this.clientPausedFor !== child) return;
    this.clientPausedFor = undefined;
    if (!this.finished) this.o.input.resume();
  }

  // ── Starting and stopping a server ──────────────────────────────────────────────────────────

  /** Starts a server with `token`; resolves once it runs (rejects with SpawnError if it cannot start). */
  private start(token: string): Promise<ChildLike> {
    return new Promise((resolve, reject) => {
      let child: ChildLike;
      try {
        child = this.o.spawn(token);
      } catch (e) {
        return reject(new SpawnError((e as Error).message, 126));
      }
      const lines = lineSplitter((l) => this.fromServer(child, l));
      // A server that exited has a closed stdin: its close event ends the run, not an EPIPE.
      (child.stdin as NodeJS.EventEmitter).on("error", () => {});
      child.stdout.on("data", (d: Buffer) => lines.feed(d));
      child.stdout.on("end", () => {
        const r = lines.rest();
        if (r) this.fromServer(child, r);
      });
      child.on("error", (e: NodeJS.ErrnoException) => reject(new SpawnError(e.message, e.code === "ENOENT" ? 127 : 126)));
      child.on("close", (code, signal) => this.closed(child, code, signal));
      // "close" waits for stdout to close, which a helper the server started may hold open for good (a
      // daemon, an agent): once the server has exited, what it wrote is read a little longer, then its
      // stdout is closed by us, so that the run ends as the server did.
      child.on("exit", () => void setTimeout(() => (child.stdout as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.(), AFTER_EXIT_MS).unref());
      // A command that cannot be started reports "error" instead of "spawn".
      child.once("spawn", () => {
        this.alive.add(child);
        resolve(child);
      });
    });
  }

  /** Ends a replaced server as the stdio transport asks: close its stdin, then SIGTERM, then SIGKILL. */
  private stop(child: ChildLike): void {
    if (this.stopping.has(child)) return;
    this.stopping.add(child);
    this.held.delete(child);
    let exited = false;
    child.on("close", () => {
      exited = true;
      this.stopping.delete(child);
    });
    child.stdin.end();
    this.timer(this.graceMs, () => {
      if (exited) return;
      child.kill("SIGTERM");
      this.timer(this.graceMs, () => void (exited || child.kill("SIGKILL")));
    });
  }

  // ── The restart ─────────────────────────────────────────────────────────────────────────────

  /** Prepares the next server when `t` is about to expire, by the wall clock (see CHECK_MS). */
  private schedule(t: BearerToken): void {
    this.cancelRenewal?.();
    if (!Number.isFinite(t.expires_at) || t.expires_at <= 0) return; // no expiry: nothing to renew
    const at = renewAt(t, this.o.now());
    const arm = () => {
      const wait = at - this.o.now();
      if (wait > 0) this.cancelRenewal = this.timer(Math.min(wait, CHECK_MS), arm);
      else void this.prepare();
    };
    arm();
  }

  /**
   * Before the token expires: a new server with a fresh token, brought up to the client's state (the
   * replayed handshake), while the current one keeps serving. It takes over at the next moment when
   * neither side owes the other an answer, so the client's messages are never held.
   */
  private async prepare(): Promise<void> {
    if (this.preparing || this.ready || this.finished || this.ending) return;
    this.preparing = true;
    const began = this.o.now();
    let next: ChildLike | undefined;
    try {
      // The cache may still hold the token the current server got: that one is about to expire.
      let t = await this.o.token({ forceRefresh: false });
      if (t.access_token === this.currentToken) t = await this.o.token({ forceRefresh: true });
      next = await this.start(t.access_token);
      const version = this.stateVersion;
      if (this.initialize) {
        const a = await this.replay(next, this.initialize);
        if (!("result" in a)) throw new Error(`the restarted MCP server refused the replayed initialize: ${JSON.stringify(a.error).slice(0, 300)}`);
        if (this.initialized) this.write(next, this.initialized);
      }
      if (this.logLevel) await this.replay(next, this.logLevel);
      if (this.finished || this.ending) return void this.stop(next);
      this.ready = { child: next, token: t, version, since: this.o.now(), preparedMs: this.o.now() - began };
    } catch (e) {
      if (next) this.stop(next);
      // A server stopped because the run ended is no failed restart.
      if (!this.finished && !this.ending) this.failed(e);
    } finally {
      this.preparing = false;
      this.maybeSwap();
    }
  }

  /** Sends a request to `child` with an id of its own and waits for its answer. */
  private replay(child: ChildLike, m: Msg): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const id = `mcp-auth-replay-${++this.replaySeq}`;
      const cancel = this.timer(this.replayTimeoutMs, () => {
        this.replies.delete(key(id));
        reject(new Error(`the restarted MCP server did not answer ${String(m.method)} within ${this.replayTimeoutMs / 1000} s`));
      });
      this.replies.set(key(id), (a) => {
        cancel();
        resolve(a);
      });
      child.on("close", () => {
        cancel();
        this.replies.delete(key(id));
        reject(new Error(`the restarted MCP server exited during ${String(m.method)}`));
      });
      this.write(child, Buffer.from(JSON.stringify({ ...m, id }) + "\n"));
    });
  }

  /** A restart that did not work out: the running server continues, and it is tried again later (said once). */
  private failed(e: unknown): void {
    if (!this.failing) this.o.error(`could not restart the MCP server with a fresh token: ${(e as Error)?.message ?? e}; the running one continues, trying again every ${RETRY_MS / 1000} s`);
    this.failing = true;
    this.cancelRenewal?.();
    this.cancelRenewal = this.timer(RETRY_MS, () => void this.prepare());
  }

  /** The prepared server takes over, if neither side owes the other an answer now. */
  private maybeSwap(): void {
    const idle = this.clientOwed.size === 0 && this.serverOwed.size === 0;
    if (!this.ready || this.preparing || this.finished || this.ending || !idle) return;
    const next = this.ready;
    this.ready = undefined;
    if (next.version !== this.stateVersion) {
      // The client changed its session state (initialize, log level) meanwhile: prepare again.
      this.stop(next.child);
      return void this.prepare();
    }
    const old = this.current;
    this.current = next.child;
    this.currentToken = next.token.access_token;
    this.failing = false;
    this.stop(old);
    this.resumeClient(old);
    this.schedule(next.token);
    const held = this.held.get(next.child) ?? [];
    this.held.delete(next.child);
    for (const line of held) this.fromServer(next.child, line);
    const waitedMs = this.o.now() - next.since;
    this.restarts.push({ preparedMs: next.preparedMs, waitedMs });
    this.o.debug?.(`the MCP server runs with a fresh token now (pid ${old.pid} → ${next.child.pid}; started in ${next.preparedMs} ms while the old one served, took over ${waitedMs} ms later, between exchanges)`);
  }
}

export async function runExec(o: ExecOptions): Promise<ExecHandle> {
  return new ExecSupervisor(o).run();
}
