import type { Command } from "commander";
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { Context } from "../context.js";
import { ENV_NAME } from "../core/argv.js";
import { proxyTokens } from "../core/proxy-tokens.js";
import { SilentError, UsageError } from "../errors.js";
import { envWithoutSecrets } from "../io/sanitize.js";
import { choice, profileFor, seconds, withProfileOptions, type Run } from "./shared.js";

export interface ExecCommandOptions {
  profile?: string;
  provider?: string;
  /** The server's command line, after `--`. */
  command: string[];
  envName?: string;
  format?: "raw" | "header";
  minTtl?: string;
  debug?: boolean;
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Runs a stdio MCP server with the profile's token in an environment variable, restarting it with a
 * fresh one before the token expires (src/mcp/exec.ts). Exits with the server's own exit code.
 */
export async function runExecCommand(ctx: Context, o: ExecCommandOptions): Promise<void> {
  const [cmd, ...args] = o.command;
  if (!cmd) throw new UsageError("exec needs the MCP server's command after --", { hint: "mcp-auth exec --profile P -- node server.js" });
  const envName = o.envName ?? "MCP_AUTH_TOKEN";
  if (!ENV_NAME.test(envName)) throw new UsageError(`--env-name "${envName}" is not an environment variable name (letters, digits and _)`);
  const profile = profileFor(ctx, o);
  const minTtl = seconds("--min-ttl", o.minTtl, 60);
  const notice = (line: string) => ctx.io.info(`mcp-auth: ${line}`);
  const tokens = proxyTokens(ctx, profile, { minTtl, notice });
  const value = (t: string) => (o.format === "header" ? `Bearer ${t}` : t);
  // stdout is the protocol channel: a stray console.log from any library would corrupt it.
  for (const k of ["log", "info", "debug"] as const) console[k] = (...a: unknown[]) => ctx.io.err.write(`${a.map(String).join(" ")}\n`);
  const { runExec, SpawnError } = await import("../mcp/exec.js");
  let handle;
  try {
    handle = await runExec({
      // The token goes to the child in its environment only: never on its command line (visible in ps).
      // The server is someone else's code: mcp-auth's own secrets (MCP_AUTH_CLIENT_SECRET, …) stay out.
      spawn: (token) => spawn(cmd, args, { env: { ...envWithoutSecrets(ctx.env), [envName]: value(token) }, stdio: ["pipe", "pipe", "inherit"] }),
      token: tokens.token,
      input: ctx.io.in,
      output: ctx.io.out,
      now: () => ctx.now(),
      error: notice,
      debug: o.debug ? (line) => ctx.debug(line) : undefined,
    });
  } catch (e) {
    if (e instanceof SpawnError) {
      notice(`cannot start ${cmd}: ${e.message}`);
      throw new SilentError(e.exitCode);
    }
    throw e;
  }
  // Signals are the server's to handle: it decides how to exit, and exec exits as it did.
  const forward = (s: NodeJS.Signals) => handle.kill(s);
  for (const s of SIGNALS) {
    process.removeAllListeners(s); // the CLI's own Ctrl-C handler would exit before the server does
    process.on(s, forward);
  }
  const r = await handle.done;
  for (const s of SIGNALS) process.off(s, forward);
  const code = r.code ?? 128 + (r.signal ? (constants.signals[r.signal] ?? 0) : 0);
  if (code !== 0) throw new SilentError(code);
}

export function registerExec(program: Command, getCtx: () => Context, run: Run<ExecCommandOptions> = runExecCommand): void {
  const cmd = program
    .command("exec")
    .description("run a stdio MCP server with the profile's token in an environment variable, restarted with a fresh one before it expires")
    .argument("<command...>", "the MCP server's command and arguments, after --")
    .option("--env-name <var>", "the environment variable that holds the token", "MCP_AUTH_TOKEN")
    .addOption(choice("--format <format>", "raw (the token) | header (Bearer <token>)", ["raw", "header"]).default("raw"))
    .option("--min-ttl <seconds>", "renew a cached token with less life than this", "60")
    .addHelpText(
      "after",
      "\nstdin and stdout pass through unchanged; the server's stderr is mcp-auth's. Before the token expires the server\nis replaced by a new one, started beforehand, between JSON-RPC exchanges (a legacy client's initialize is replayed).\nExits with the server's exit code (128+N when signal N ended it), 127 when the command is not found, 126 when it\ncannot be run, 4 when there is no token (run: mcp-auth login PROFILE).\n\nExamples:\n  mcp-auth exec --profile dev -- node server.js\n  mcp-auth exec --profile gh --env-name GITHUB_PERSONAL_ACCESS_TOKEN -- github-mcp-server stdio\n  mcp-auth add-client claude --profile dev --stdio-command 'github-mcp-server stdio' --env-name GITHUB_PERSONAL_ACCESS_TOKEN",
    );
  withProfileOptions(cmd);
  cmd.action((command: string[], o: Omit<ExecCommandOptions, "command">, c: Command) => run(getCtx(), { ...o, command, debug: Boolean(c.optsWithGlobals().debug) }));
}
