import type { Command } from "commander";
import type { Context } from "../context.js";
import { SilentError, UsageError } from "../errors.js";
import { allPassed } from "../core/checks.js";
import { doctor } from "../core/doctor.js";
import { profileCovers, serversOf } from "../core/covers.js";
import { checkMcpUrl } from "../core/mcp.js";
import { targetFromProfile } from "../core/target.js";
import { checksStatusJson, renderChecks } from "../io/checks.js";
import { readSecret } from "../io/secret-input.js";
import { sanitize } from "../io/sanitize.js";
import { profileFor, withSpinner, type Run } from "./shared.js";

export interface DoctorOptions {
  profile?: string;
  provider?: string;
  url?: string;
  tokenStdin?: boolean;
  audience?: string;
  json?: boolean;
}

/** The checklist from MCP URL to accepted token; exit 1 when anything failed. */
export async function runDoctor(ctx: Context, o: DoctorOptions): Promise<void> {
  let profile: ReturnType<typeof profileFor> | undefined;
  try {
    profile = profileFor(ctx, o);
  } catch (e) {
    // Without --profile, a missing profile only means "check the server alone".
    if (o.profile || o.provider || !(e instanceof UsageError)) throw e;
  }
  const mcpUrl = o.url ?? profile?.mcpUrl;
  const url = mcpUrl ? checkMcpUrl(ctx, mcpUrl) : undefined;
  if (!mcpUrl && !profile) throw new UsageError("nothing to check: pass --url MCP_URL and/or --profile P");
  // A URL the profile does not cover is checked without the profile: its token goes only to its own server.
  const elsewhere = profile && url && !profileCovers(profile, url) ? { profile: profile.name, servers: serversOf(profile), named: Boolean(o.profile || o.provider || ctx.env.MCP_AUTH_PROFILE) } : undefined;
  const target = profile && !elsewhere ? targetFromProfile(profile) : undefined;
  const token = o.tokenStdin ? (await readSecret(ctx, { stdin: true }, "access token", "token"))!.trim() : undefined;
  const found = await withSpinner(ctx, `Checking ${mcpUrl ?? `profile "${profile!.name}"`}…`, () => doctor(ctx, { mcpUrl, target, token, audience: o.audience, elsewhere }), { quiet: o.json });
  // Details quote server text (URLs from metadata, challenges): no control sequences reach the terminal.
  const clean = (s: string | undefined) => (s === undefined ? undefined : sanitize(s).replace(/[\r\n\t]+/g, " "));
  const checks = found.map((c) => ({ ...c, what: clean(c.what)!, ...(c.detail !== undefined ? { detail: clean(c.detail) } : {}), ...(c.fix !== undefined ? { fix: clean(c.fix) } : {}) }));
  if (o.json) ctx.io.out.write(`${JSON.stringify({ checks: checksStatusJson(checks) }, null, 2)}\n`);
  else ctx.io.print(renderChecks(checks, { color: ctx.io.color }).join("\n"));
  if (!allPassed(checks)) throw new SilentError(1);
}

export function registerDoctor(program: Command, getCtx: () => Context, run: Run<DoctorOptions> = runDoctor): void {
  const cmd = program
    .command("doctor")
    .description("check the path from an MCP server URL to an accepted token, naming each failure and its fix")
    .option("-p, --profile <name>", "profile to check (env MCP_AUTH_PROFILE)")
    .option("--provider <kind>", "use the only profile of this provider kind")
    .option("--url <mcp-url>", "the MCP server (default: the profile's MCP URL; a URL the profile does not cover is checked without its token)")
    .option("--token-stdin", "check the token read from standard input instead of the profile's")
    .option("--audience <aud>", "the audience the server expects, when it does not say")
    .option("--json", "print {checks:[{id,status,what,detail,fix}]} on stdout")
    .addHelpText("after", "\nExit status: 0 when nothing failed, 1 otherwise.\n\nExamples:\n  mcp-auth doctor --profile dev\n  mcp-auth doctor --url https://mcp.example.com/mcp\n  echo \"$TOKEN\" | mcp-auth doctor --url https://mcp.example.com/mcp --token-stdin");
  cmd.action((o: DoctorOptions) => run(getCtx(), o));
}
