import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { main } from "../../src/cli.js";
import { createContext, type Context, type GlobalOptions, type Waits } from "../../src/context.js";
import { UsageError } from "../../src/errors.js";
import type { Resolver } from "../../src/oauth/http.js";
import { sanitize } from "../../src/io/sanitize.js";
import { humanWriter, painter, type Prompter, type Terminal, type Validate } from "../../src/io/terminal.js";
import { plugins } from "../../src/plugins.js";

/**
 * An in-process Context for the many small cases: captured stdout/stderr, scripted prompt answers, a
 * browser that records URLs (and may act on them), a clock the test moves, a temp config dir. The
 * real CLI process is covered by the end-to-end tests; this is for tables of flags, messages and plans.
 */
export interface TestContextOptions {
  env?: NodeJS.ProcessEnv;
  /** Text on stdin (piped, not a TTY). */
  stdin?: string;
  /** A person is there: prompts are answered from `answers`. */
  interactive?: boolean;
  /** Answers to prompts, in order. A function gets the question. */
  answers?: Array<string | boolean | ((question: string) => string | boolean)>;
  /** Fixed clock, ms (default: a fixed date). */
  now?: number;
  /**
   * Waiting (lock retries, request time-outs) runs on the test's clock: a lock wait moves it, a
   * request's time-out fires when the test moves it past. Default: real time.
   */
  virtualTime?: boolean;
  /** What the browser does with a URL (e.g. follow the login); it records the URL either way. */
  onBrowse?: (url: string) => Promise<void> | void;
  /** The browser cannot run here, for this reason (an SSH session, no display…), as systemBrowser would say. */
  noBrowser?: string;
  global?: GlobalOptions;
  /** Name resolution for every request (map names to 127.0.0.1 or this machine's own addresses only). */
  resolve?: Resolver;
}

export interface TestContext {
  ctx: Context;
  configDir: string;
  env: NodeJS.ProcessEnv;
  stdout(): string;
  stderr(): string;
  /** Questions that were asked, in order (a question asked again appears again). */
  asked: string[];
  /** The reasons answers were refused with (the prompt's validate), in order. */
  rejected: string[];
  /** URLs the browser was sent to. */
  browsed: string[];
  clock: { now(): number; advance(ms: number): void };
  /** With `virtualTime`: timers on `clock` (a test schedules its own events with waits.setTimeout). */
  waits: Waits;
  /** Runs a command line in-process with this context; returns the exit code. */
  run(argv: string[]): Promise<number>;
  /** run(), with what that one command wrote to stdout and stderr. */
  capture(argv: string[]): Promise<{ code: number; out: string; err: string }>;
  cleanup(): void;
}

class Capture extends Writable {
  chunks: string[] = [];
  isTTY = false;
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk.toString());
    cb();
  }
  text(): string {
    return this.chunks.join("");
  }
}

export function createTestContext(o: TestContextOptions = {}): TestContext {
  const home = mkdtempSync(join(tmpdir(), "mcp-auth-ctx-"));
  const configDir = join(home, "config");
  const env: NodeJS.ProcessEnv = { HOME: home, MCP_AUTH_CONFIG_DIR: configDir, MCP_AUTH_STORE: "file", NO_COLOR: "1", ...o.env };
  const out = new Capture();
  const err = new Capture();
  const asked: string[] = [];
  const rejected: string[] = [];
  const browsed: string[] = [];
  const answers = [...(o.answers ?? [])];
  let now = o.now ?? Date.UTC(2026, 10, 29, 12, 0, 0);
  // Timers on the test's clock: advancing it fires the due ones, in order, each at its own time.
  const timers: Array<{ at: number; fn: () => void }> = [];
  const clock = {
    now: () => now,
    advance: (ms: number) => {
      const to = now + ms;
      for (;;) {
        const due = timers.filter((t) => t.at <= to).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers.splice(timers.indexOf(due), 1);
        now = Math.max(now, due.at);
        due.fn();
      }
      now = to;
    },
  };
  const waits: Waits = {
    now: clock.now,
    // The time passes at once; the real event loop still turns, so I/O (a server's answer) goes on.
    sleep: async (ms) => {
      clock.advance(ms);
      await new Promise((r) => setImmediate(r));
    },
    setTimeout: (fn, ms) => {
      const t = { at: now + ms, fn };
      timers.push(t);
      return t;
    },
    clearTimeout: (t) => {
      const i = timers.indexOf(t as (typeof timers)[number]);
      if (i >= 0) timers.splice(i, 1);
    },
  };

  const answer = (question: string, flagHint?: string): string | boolean => {
    asked.push(question);
    if (!o.interactive) throw new UsageError(`cannot ask "${question}": this is not an interactive terminal`, { hint: flagHint });
    const a = answers.shift();
    if (a === undefined) throw new Error(`unexpected question: ${question}`);
    return typeof a === "function" ? a(question) : a;
  };
  // As on a terminal: an answer the prompt's validate refuses is asked again (validate sees the default when nothing was typed).
  const validated = async (m: string, p?: { flagHint?: string; default?: string; validate?: Validate }): Promise<string> => {
    for (;;) {
      const a = String(answer(m, p?.flagHint));
      const problem = p?.validate ? await p.validate(a || (p.default ?? "")) : true;
      if (problem === true) return a;
      rejected.push(problem);
    }
  };
  const prompter: Prompter = {
    password: async (m, p) => validated(m, p),
    confirm: async (m, p) => Boolean(answer(m, p?.flagHint)),
    input: async (m, p) => validated(m, p),
    select: async (m, _choices, p) => String(answer(m, p?.flagHint)) as never,
  };
  const stdin = (o.interactive ? Object.assign(new PassThrough(), { isTTY: true }) : Readable.from(o.stdin === undefined ? [] : [o.stdin])) as Terminal["in"];
  const paint = painter(false);
  const terminal: Terminal = {
    in: stdin,
    out,
    err,
    interactive: Boolean(o.interactive),
    color: false,
    paint,
    prompter,
    spinner: () => ({ succeed: () => {}, fail: () => {}, stop: () => {} }),
    print: humanWriter(out, false),
    info: (m) => void err.write(`${sanitize(m)}\n`),
    warn: (m) => void err.write(`warning: ${sanitize(m)}\n`),
  };
  const browser = {
    open: async (url: string) => {
      browsed.push(url);
      await o.onBrowse?.(url);
    },
    unavailable: () => o.noBrowser,
  };
  const make = (g: GlobalOptions) => createContext({ ...o.global, ...g }, { env, terminal, clock, browser, resolve: o.resolve, plugins, waits: o.virtualTime ? waits : undefined });
  const ctx = make(o.global ?? {});
  return {
    ctx,
    configDir,
    env,
    stdout: () => out.text(),
    stderr: () => err.text(),
    asked,
    rejected,
    browsed,
    clock,
    waits,
    run: (argv) => main(argv, make, { out, err }),
    capture: async (argv) => {
      const [o, e] = [out.text().length, err.text().length];
      const code = await main(argv, make, { out, err });
      return { code, out: out.text().slice(o), err: err.text().slice(e) };
    },
    cleanup: () => rmSync(home, { recursive: true, force: true }),
  };
}
