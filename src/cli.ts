import { Command, CommanderError, Option } from "commander";
import { createContext, type Context, type GlobalOptions } from "./context.js";
import { ExitCode, McpAuthError, UsageError } from "./errors.js";
import { registerCommands } from "./commands/index.js";
import { optionFlag } from "./commands/shared.js";
import { completionScript, type Shell } from "./completion.js";
import { undoAll } from "./interrupt.js";
import { invocation } from "./io/invocation.js";
import { sanitize } from "./io/sanitize.js";
import { colorEnabled, painter } from "./io/terminal.js";
import { plugins } from "./plugins.js";

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  other failure
  2  usage error (bad flags or arguments)
  3  network error: IdP/server unreachable, timed out, or a malformed response
  4  authentication required, or credentials refused (run: mcp-auth login PROFILE)
  5  a file mcp-auth must read or edit cannot be parsed or changed (it is left untouched)
  130 interrupted`;

export interface Streams {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/**
 * commander's Command, with typo suggestions taken from the command's own options only: by default
 * commander also offers the parent's (global) flags, so `status --profile` got "Did you mean --ca-file?".
 * Subcommand suggestions are already the command's own.
 */
export class McpAuthCommand extends Command {
  override createCommand(name?: string): Command {
    return new McpAuthCommand(name);
  }

  unknownOption(flag: string): void {
    // commander walks up to the parents until one has positional options: make the parent that one, briefly.
    const parent = this.parent as unknown as { _enablePositionalOptions?: boolean } | null;
    const saved = parent?._enablePositionalOptions;
    if (parent) parent._enablePositionalOptions = true;
    try {
      (Command.prototype as unknown as { unknownOption(f: string): void }).unknownOption.call(this, flag);
    } finally {
      if (parent) parent._enablePositionalOptions = saved;
    }
  }
}

/** `error:` in red on a colour terminal, plain otherwise (NO_COLOR, a pipe, a file). */
export function errorLabel(stream: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): string {
  return painter(colorEnabled(env, Boolean((stream as { isTTY?: boolean }).isTTY))).fail("error:");
}

export function buildProgram(getCtx: () => Context, streams: Streams = { out: process.stdout, err: process.stderr }): Command {
  const program = new McpAuthCommand("mcp-auth")
    .description("Get, cache and refresh OAuth tokens for MCP servers, and wire MCP clients to them.")
    .version(VERSION, "-V, --version")
    .option("--debug", "trace HTTP exchanges (secrets redacted) and show stack traces")
    .addOption(new Option("--store <kind>", "secret store (env MCP_AUTH_STORE; auto = the keychain if usable, else file)").choices(["keychain", "file", "memory", "auto"]))
    .option("--timeout <seconds>", "timeout for each HTTP request (default 30, env MCP_AUTH_TIMEOUT)")
    .option("--ca-file <path>", "trust this PEM CA bundle too (NODE_EXTRA_CA_CERTS also works)")
    .option("--insecure", "do not verify TLS certificates (dangerous; for throw-away test setups)")
    .option("--allow-http", "allow plain http:// for non-loopback hosts")
    .option("--allow-private-network", "let URLs a server sends lead into your private network or to this machine (intranet set-ups)")
    .option("--non-interactive", "never prompt or open a browser; fail with exit 4 instead")
    .option("--config-dir <dir>", "mcp-auth's config dir (default: $MCP_AUTH_CONFIG_DIR, else per OS)")
    .exitOverride() // set before subcommands are added: they copy it
    // Every command's help lists the global flags (--timeout, --debug, --store…) too.
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeErr: (s) => streams.err.write(s),
      writeOut: (s) => streams.out.write(s),
      // Usage errors are one line too: "error: unknown option '--x' (Did you mean --y?) (see --help)".
      outputError: (s, write) => write(`${errorLabel(streams.err)} ${usageLine(s)} (see --help)\n`),
    })
    .addHelpText("after", EXIT_CODES_HELP + "\n\nConfig dir: $MCP_AUTH_CONFIG_DIR, else ~/.config/mcp-auth (XDG_CONFIG_HOME).");
  program.hook("preAction", (_program, command) => refuseControlInClientIds(command));
  registerCommands(program, getCtx);
  return program;
}

/**
 * A client id is echoed in messages and, in CI, reaches logs whose runner acts on `::command::`
 * lines: one holding a control character (a line break, ESC) is refused from every flag that takes one
 * (--client-id, --admin-client-id…), before anything runs.
 */
function refuseControlInClientIds(command: Command): void {
  for (const [key, value] of Object.entries(command.opts())) {
    if (!/clientId$/i.test(key) || typeof value !== "string" || !/[\x00-\x1f\x7f-\x9f]/.test(value)) continue;
    throw new UsageError(`${optionFlag(key)} must not contain control characters (a line break, tab or escape)`);
  }
}

/**
 * commander's message as one safe line. The value of a mistyped `--flag=value` is never echoed: it may
 * be a password typed into the wrong flag (`--admin-password=…`).
 */
export function usageLine(message: string): string {
  const line = message
    .replace(/^error: /, "")
    .trim()
    .replace(/\s*\n\s*/g, " ")
    .replace(/'(-{1,2}[^'=\s]+)=[^']*'/g, "'$1=…'");
  return sanitize(line);
}

/** A completion script, for the build to ship in completions/ (no context: completion reads nothing). */
export function completionFor(shell: Shell): string {
  return completionScript(
    buildProgram(() => {
      throw new Error("no context while generating completions");
    }),
    shell,
  );
}

declare const __VERSION__: string | undefined;
const VERSION = typeof __VERSION__ === "string" ? __VERSION__ : "0.0.0";

/**
 * Runs one command line and returns its exit code: the only place that turns errors into exit codes.
 * `makeContext` builds the context from the global flags (tests pass one with captured streams).
 */
export async function main(argv: string[], makeContext: (g: GlobalOptions) => Context = (g) => createContext(g, { plugins }), streams?: Streams): Promise<number> {
  let ctx: Context | undefined;
  let debug = argv.includes("--debug");
  const err = streams?.err ?? process.stderr;
  const program = buildProgram(() => {
    if (!ctx) {
      const g = program.opts<GlobalOptions>();
      debug ||= Boolean(g.debug);
      ctx = makeContext(g);
    }
    return ctx;
  }, streams);
  try {
    await program.parseAsync(argv, { from: "user" });
    return ExitCode.OK;
  } catch (e) {
    // A hint's command in the form that runs from here (`npx mcp-auth …` when mcp-auth is not on PATH).
    const verbs = program.commands.map((c) => c.name()).join("|");
    const me = invocation(ctx?.env ?? process.env);
    const runnable = (hint: string) => (me === "mcp-auth" ? hint : hint.replace(new RegExp(`(^|[\\s:(\`'"])(?<!npx )mcp-auth (?=(?:${verbs})\\b)`, "g"), `$1${me} `));
    return report(e, debug, err, runnable);
  }
}

/** The process entry point (bin/mcp-auth.js). */
export async function run(argv: string[]): Promise<void> {
  let stopping = false;
  process.on("SIGINT", () => {
    if (stopping) process.exit(ExitCode.INTERRUPTED); // a second Ctrl-C does not wait for the undo
    stopping = true;
    process.stderr.write("\nmcp-auth: interrupted\n");
    void undoAll().finally(() => process.exit(ExitCode.INTERRUPTED));
  });
  process.exitCode = await main(argv);
}

function report(e: unknown, debug: boolean, out: NodeJS.WritableStream, runnable: (hint: string) => string = (h) => h): number {
  if (e instanceof CommanderError) {
    if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
    return ExitCode.USAGE; // commander already printed the message
  }
  if ((e as Error)?.name === "ExitPromptError") return ExitCode.INTERRUPTED;
  const err = e instanceof McpAuthError ? e : new McpAuthError((e as Error)?.message ?? String(e), { cause: e });
  if (err.message) {
    const hint = err.hint ? ` (${runnable(err.hint)})` : "";
    out.write(`${errorLabel(out)} ${sanitize(`${err.message}${hint}`).replace(/\n+/g, " ")}\n`);
  }
  if (debug) {
    for (let c: unknown = e; c; c = (c as { cause?: unknown }).cause) {
      if (c instanceof Error) out.write(`${sanitize(c.stack ?? c.message)}\n`);
      else break;
    }
  }
  if (err instanceof UsageError) return ExitCode.USAGE;
  return err.exitCode;
}
