import { UsageError } from "../errors.js";
import { sanitize, sanitizeOutput, stripControl } from "./sanitize.js";

/**
 * The terminal, in one object: streams, whether a person can be asked something, colour, prompts and
 * spinners. Every TTY/colour/prompt decision lives here, so nothing below the command layer touches
 * process.stdin/stdout/stderr, and a test can swap the whole thing (test/helpers/context.ts).
 *
 * stdout carries data (a token, JSON) and the reports a command was asked for (a status, a listing);
 * prompts, spinners, notices and warnings go to stderr. Whatever a person reads, on either stream, is
 * written by `print`/`info`/`warn`, which strip control sequences (src/io/sanitize.ts); `out` itself is
 * only for machine output, which must stay byte-exact.
 */
export interface Terminal {
  in: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Machine output only (a token, JSON, JSON-RPC), byte-exact. A report for a person goes through `print`. */
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** A person is there: stdin and stderr are terminals and --non-interactive was not given. */
  interactive: boolean;
  /** Why nobody can be asked, for messages: "--non-interactive was given" or "this is not an interactive terminal". */
  notInteractiveBecause?: string;
  color: boolean;
  prompter: Prompter;
  /** A spinner on stderr; draws only on a TTY outside CI, else prints nothing until it ends. */
  spinner(text: string): Spinner;
  /** Human output on stdout (a listing, a report): one line or several, control sequences and known secrets removed. */
  print(text: string): void;
  /** One line (or several) to stderr, control characters and known secrets removed. */
  info(msg: string): void;
  warn(msg: string): void;
  /** Semantic colours (no-ops without colour). */
  paint: Painter;
}

export interface Painter {
  success(s: string): string;
  warn(s: string): string;
  fail(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

export interface Spinner {
  succeed(text?: string): void;
  fail(text?: string): void;
  stop(): void;
}

export interface Choice<T extends string = string> {
  value: T;
  name: string;
  description?: string;
}

/**
 * Checks an answer before the prompt takes it: true, or the reason shown under the question, which is
 * then asked again (a typo costs one more try, not the whole run). It gets the default when nothing was typed.
 */
export type Validate = (v: string) => string | true | Promise<string | true>;

/** Questions to a person. Every method throws a UsageError naming the flag to pass when nobody can answer. */
export interface Prompter {
  password(message: string, o?: { flagHint?: string; validate?: Validate }): Promise<string>;
  confirm(message: string, o?: { default?: boolean; flagHint?: string }): Promise<boolean>;
  input(message: string, o?: { default?: string; flagHint?: string; validate?: Validate }): Promise<string>;
  select<T extends string>(message: string, choices: Choice<T>[], o?: { default?: T; flagHint?: string }): Promise<T>;
}

export interface TerminalOptions {
  stdin?: Terminal["in"];
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  nonInteractive?: boolean;
}

export function colorEnabled(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== "0";
  return isTTY && env.TERM !== "dumb";
}

export function painter(color: boolean): Painter {
  const p = (code: number) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { success: p(32), warn: p(33), fail: p(31), dim: p(2), bold: p(1) };
}

export function createTerminal(o: TerminalOptions): Terminal {
  const stdin = o.stdin ?? process.stdin;
  const out = o.stdout ?? process.stdout;
  const err = o.stderr ?? process.stderr;
  const color = colorEnabled(o.env, Boolean(err.isTTY));
  const interactive = !o.nonInteractive && Boolean(stdin.isTTY && err.isTTY);
  const why = o.nonInteractive ? "--non-interactive was given" : NOT_A_TERMINAL;
  const paint = painter(color);
  const write = humanWriter(err, false);
  const spinners = new Set<PausableSpinner>();
  return {
    in: stdin,
    out,
    err,
    interactive,
    notInteractiveBecause: interactive ? undefined : why,
    color,
    paint,
    prompter: interactive ? pausingSpinners(inquirerPrompter(stdin, err), spinners) : refusingPrompter(why),
    spinner: (text) => (err.isTTY && !o.env.CI && interactive ? oraSpinner(text, err, spinners) : quietSpinner()),
    print: humanWriter(out, color),
    info: write,
    warn: (m) => write(`${paint.warn("warning:")} ${m}`),
  };
}

/**
 * Writes text for a person, then a newline: control sequences and known secrets removed. With
 * `colours`, the painter's own colour codes are kept (callers paint only values they have cleaned).
 */
export function humanWriter(stream: NodeJS.WritableStream, colours: boolean): (text: string) => void {
  return (text) => void stream.write(`${colours ? sanitizeOutput(text) : sanitize(text)}\n`);
}

export const NOT_A_TERMINAL = "this is not an interactive terminal";

/** Nobody to ask: name the flag that answers the question instead. */
export function refusingPrompter(why: string = NOT_A_TERMINAL): Prompter {
  const refuse = (message: string, flagHint?: string): never => {
    throw new UsageError(`cannot ask "${message.replace(/[:?]\s*$/, "")}": ${why}`, {
      hint: flagHint ?? "run it in a terminal, or pass the answer as a flag",
    });
  };
  return {
    password: async (m, o) => refuse(m, o?.flagHint),
    confirm: async (m, o) => refuse(m, o?.flagHint),
    input: async (m, o) => refuse(m, o?.flagHint),
    select: async (m, _c, o) => refuse(m, o?.flagHint),
  };
}

/** @inquirer/prompts, loaded on first use, drawing on stderr (stdout stays data only). */
function inquirerPrompter(input: Terminal["in"], output: NodeJS.WritableStream): Prompter {
  const ctx = { input: input as NodeJS.ReadableStream, output: output as NodeJS.WritableStream, clearPromptOnDone: false };
  const load = () => import("@inquirer/prompts");
  // Questions and choices may quote a server (a discovered scope, a client name): no control sequences.
  const clean = (s: string) => sanitize(s).replace(/[\r\n\t]+/g, " ");
  return {
    password: async (message, o) => (await load()).password({ message: clean(message), mask: "*", validate: cleanReason(o?.validate) }, ctx as never),
    confirm: async (message, o) => (await load()).confirm({ message: clean(message), default: o?.default }, ctx as never),
    input: async (message, o) => (await load()).input({ message: clean(message), default: o?.default === undefined ? undefined : stripControl(o.default), validate: cleanReason(o?.validate) }, ctx as never),
    select: async (message, choices, o) =>
      (await load()).select({ message: clean(message), choices: choices.map((c) => ({ ...c, name: clean(c.name), ...(c.description !== undefined && { description: clean(c.description) }) })), default: o?.default }, ctx as never),
  };
}

/** A reason may quote what a server said (a DNS error, a status text): shown without control sequences. */
function cleanReason(validate: Validate | undefined): Validate | undefined {
  if (!validate) return undefined;
  return async (v) => {
    const r = await validate(v);
    return r === true ? true : sanitize(r).replace(/[\r\n\t]+/g, " ");
  };
}

/** A spinner that can step aside while a question is open, and come back after. */
export interface PausableSpinner extends Spinner {
  pause(): void;
  resume(): void;
}

/**
 * A question asked while a step's spinner runs (a provider asking which mode to use, halfway through
 * "creating the client"): the spinner stops drawing while the prompt is open, so it never animates
 * over the question or the answer being typed, and goes on afterwards.
 */
export function pausingSpinners(p: Prompter, running: ReadonlySet<PausableSpinner>): Prompter {
  const around = async <T>(ask: () => Promise<T>): Promise<T> => {
    const paused = [...running];
    for (const s of paused) s.pause();
    try {
      return await ask();
    } finally {
      for (const s of paused) s.resume();
    }
  };
  return {
    password: (m, o) => around(() => p.password(m, o)),
    confirm: (m, o) => around(() => p.confirm(m, o)),
    input: (m, o) => around(() => p.input(m, o)),
    select: (m, c, o) => around(() => p.select(m, c, o)),
  };
}

function quietSpinner(): Spinner {
  return { succeed: () => {}, fail: () => {}, stop: () => {} };
}

/** ora is ESM and costs a few ms to load: it is started lazily and the spinner works before it arrives. */
function oraSpinner(text: string, stream: NodeJS.WritableStream, running: Set<PausableSpinner>): Spinner {
  let ended: { how: "succeed" | "fail" | "stop"; text?: string } | undefined;
  let paused = 0;
  let spinner: { succeed(t?: string): void; fail(t?: string): void; stop(): void; start(): unknown } | undefined;
  void import("ora").then(({ default: ora }) => {
    if (ended) return;
    spinner = ora({ text: sanitize(text), stream: stream as never, discardStdin: false });
    if (!paused) spinner.start();
  }, () => {});
  const end = (how: "succeed" | "fail" | "stop", t?: string) => {
    if (ended) return;
    ended = { how, text: t };
    running.delete(self);
    if (spinner) spinner[how](t === undefined ? undefined : sanitize(t));
    else if (how !== "stop") stream.write(`${how === "succeed" ? "✔" : "✖"} ${sanitize(t ?? text)}\n`);
  };
  const self: PausableSpinner = {
    succeed: (t) => end("succeed", t),
    fail: (t) => end("fail", t),
    stop: () => end("stop"),
    pause: () => {
      if (paused++ === 0 && !ended) spinner?.stop(); // clears its line: the prompt draws on a clean one
    },
    resume: () => {
      if (--paused === 0 && !ended) spinner?.start();
    },
  };
  running.add(self);
  return self;
}
