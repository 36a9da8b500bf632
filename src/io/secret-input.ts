import type { Context } from "../context.js";
import { UsageError } from "../errors.js";

/**
 * Reads a secret the safe ways only: from stdin (piped, or a hidden prompt on a terminal) or from a
 * named environment variable. Never from argv, where `ps` and shell history would see it.
 */
export async function readSecret(ctx: Context, o: { stdin?: boolean; env?: string }, what: string, flagPrefix: string): Promise<string | undefined> {
  if (o.stdin && o.env) throw new UsageError(`pass only one of --${flagPrefix}-stdin and --${flagPrefix}-env`);
  if (o.env) {
    const v = ctx.env[o.env];
    if (!v) throw new UsageError(`$${o.env} is empty or not set (it should hold the ${what})`);
    return v;
  }
  if (!o.stdin) return undefined;
  if (process.stdin.isTTY) {
    const { password } = await import("@inquirer/prompts");
    const v = await password({ message: `${what[0]!.toUpperCase()}${what.slice(1)}:`, mask: "*" }, { output: process.stderr });
    if (!v) throw new UsageError(`no ${what} entered`);
    return v;
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const v = Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
  if (!v) throw new UsageError(`--${flagPrefix}-stdin: nothing was read from standard input`);
  return v;
}
