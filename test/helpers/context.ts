import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { main } from "../../src/cli.js";
import { createContext, type Context, type GlobalOptions } from "../../src/context.js";
import { UsageError } from "../../src/errors.js";
import type { Resolver } from "../../src/oauth/http.js";
import { sanitize } from "../../src/io/sanitize.js";
import { humanWriter, painter, type Prompter, type Terminal } from "../../src/io/terminal.js";
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
  /** What the browser does with a URL (e.g. follow the login); it records the URL either way. */
  onBrowse?: (url: string) => Promise<void> | void;
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
  /** Questions that were asked, in order. */
  asked: string[];
  /** URLs the browser was sent to. */
  browsed: string[];
  clock: { now(): number; advance(ms: number): void };
  /** Runs a command line in-process with this context; returns the exit code. */
  run(argv: string[]): Promise<number>;
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
  const browsed: string[] = [];
  const answers = [...(o.answers ?? [])];
  let now = o.now ?? Date.UTC(2026, 10, 29, 12, 0, 0);
  const clock = { now: () => now, advance: (ms: number) => void (now += ms) };

  const answer = (question: string, flagHint?: string): string | boolean => {
    asked.push(question);
    if (!o.interactive) throw new UsageError(`cannot ask "${question}": this is not an interactive terminal`, { hint: flagHint });
    const a = answers.shift();
    if (a === undefined) throw new Error(`unexpected question: ${question}`);
    return typeof a === "function" ? a(question) : a;
  };
  const prompter: Prompter = {
    password: async (m, p) => String(answer(m, p?.flagHint)),
    confirm: async (m, p) => Boolean(answer(m, p?.flagHint)),
    input: async (m, p) => String(answer(m, p?.flagHint)),
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
  };
  const make = (g: GlobalOptions) => createContext({ ...o.global, ...g }, { env, terminal, clock, browser, resolve: o.resolve, plugins });
  const ctx = make(o.global ?? {});
  return {
    ctx,
    configDir,
    env,
    stdout: () => out.text(),
    stderr: () => err.text(),
    asked,
    browsed,
    clock,
    run: (argv) => main(argv, make, { out, err }),
    cleanup: () => rmSync(home, { recursive: true, force: true }),
  };
}
