import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { registerSecret, registerSecretEnv } from "./sanitize.js";

/**
 * Reads a secret the safe ways only: from stdin (piped, or a hidden prompt on a terminal) or from a
 * named environment variable. Never from argv, where `ps` and shell history would see it. Whatever is
 * read is registered, so it is scrubbed from everything mcp-auth prints for the rest of the run.
 */
export async function readSecret(ctx: Context, o: { stdin?: boolean; env?: string }, what: string, flagPrefix: string): Promise<string | undefined> {
  if (o.stdin && o.env) throw new UsageError(`pass only one of --${flagPrefix}-stdin and --${flagPrefix}-env`);
  if (o.env) {
    const v = ctx.env[o.env];
    if (!v) throw new UsageError(`$${o.env} is empty or not set (it should hold the ${what})`);
    registerSecretEnv(o.env, ctx.env);
    return v;
  }
  if (!o.stdin) return undefined;
  if (ctx.io.in.isTTY) {
    const v = await ctx.io.prompter.password(`${what[0]!.toUpperCase()}${what.slice(1)}:`, { flagHint: `pipe it to --${flagPrefix}-stdin, or use --${flagPrefix}-env VAR` });
    if (!v) throw new UsageError(`no ${what} entered`);
    registerSecret(v);
    return v;
  }
  const chunks: Buffer[] = [];
  for await (const c of ctx.io.in) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  const v = Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
  if (!v) throw new UsageError(`--${flagPrefix}-stdin: nothing was read from standard input`);
  registerSecret(v);
  return v;
}
