import type { Command } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { getToken } from "../core/tokens.js";
import { claimRows, decodeToken } from "../core/decode.js";
import { oneLine } from "../io/sanitize.js";
import { readSecret } from "../io/secret-input.js";
import { targetFor, withProfileOptions, type Run } from "./shared.js";

export interface DecodeOptions {
  profile?: string;
  provider?: string;
  tokenStdin?: boolean;
  json?: boolean;
}

/** A profile's token (cached, refreshed or obtained without a person), or the one on stdin. */
export async function tokenForCommand(ctx: Context, o: { profile?: string; provider?: string; tokenStdin?: boolean }): Promise<string> {
  if (o.tokenStdin) {
    if (o.profile || o.provider) throw new UsageError("pass either --token-stdin or a profile, not both");
    return (await readSecret(ctx, { stdin: true }, "access token", "token"))!.trim();
  }
  return (await getToken(ctx, targetFor(ctx, o), { minTtl: 0 })).access_token;
}

/** Shows what a token says (header and claims), never the token or its signature. */
export async function runDecode(ctx: Context, o: DecodeOptions): Promise<void> {
  const d = decodeToken(await tokenForCommand(ctx, o));
  const now = Math.floor(ctx.now() / 1000);
  const out = ctx.io.out;
  if (o.json) {
    out.write(`${JSON.stringify(d.kind === "jwt" ? { kind: "jwt", header: d.header, claims: d.claims } : { kind: "opaque", length: d.length, reason: d.why }, null, 2)}\n`);
    return;
  }
  if (d.kind === "opaque") {
    return ctx.io.print(`This token is opaque (${d.length} characters): ${oneLine(d.why)}.\nOnly the server that issued it can say what it grants (token introspection, RFC 7662).`);
  }
  // Every name and value is the issuer's: one line each, no control sequences.
  const table = (title: string, rows: Array<[string, string]>) => {
    const cells = rows.map(([k, v]) => [oneLine(k), oneLine(v)] as const);
    const w = Math.max(...cells.map(([k]) => k.length));
    ctx.io.print(`${title}\n${cells.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join("\n")}`);
  };
  table("Header", Object.entries(d.header).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  table("Claims", claimRows(d.claims, now));
  ctx.io.print("(signature not shown, and not verified: decode reads the token, the server checks it)");
}

export function registerDecode(program: Command, getCtx: () => Context, run: Run<DecodeOptions> = runDecode): void {
  const cmd = program
    .command("decode")
    .description("show a token's header and claims (never the token itself)")
    .option("--token-stdin", "decode the token read from standard input instead of a profile's")
    .option("--json", "print header and claims as JSON")
    .addHelpText("after", "\nExamples:\n  mcp-auth decode --profile dev\n  echo \"$TOKEN\" | mcp-auth decode --token-stdin");
  withProfileOptions(cmd);
  cmd.action((o: DecodeOptions) => run(getCtx(), o));
}
