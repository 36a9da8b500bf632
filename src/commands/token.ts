import type { Command } from "commander";
import type { Context } from "../context.js";
import { getToken } from "../core/tokens.js";
import { interactiveLogin } from "../core/login.js";
import { FORMATS, formatToken, type Format } from "../format.js";
import { UsageError } from "../errors.js";
import { FEDERATIONS, type Federation } from "../target.js";
import { choice, seconds, targetFor, withAdHocOptions, withProfileOptions, type Run } from "./shared.js";

export interface TokenOptions {
  format: Format;
  minTtl?: string;
  forceRefresh?: boolean;
  /** false with --no-cache */
  cache?: boolean;
  envName?: string;
  profile?: string;
  provider?: string;
  issuer?: string;
  clientId?: string;
  clientSecretEnv?: string;
  scope?: string[];
  resource?: string;
  audience?: string;
  /** Profile-less identity federation: where the CI token is, and how it is used. */
  assertionFrom?: string;
  federation?: Federation;
}

/** Prints a valid access token, and nothing else, on stdout. */
export async function runToken(ctx: Context, o: TokenOptions): Promise<void> {
  const minTtl = seconds("--min-ttl", o.minTtl, 60);
  if ((o.assertionFrom || o.federation) && !o.issuer) {
    throw new UsageError("--assertion-from and --federation only apply with --issuer (profile-less mode)", { hint: "for a profile: mcp-auth profiles add NAME … --assertion-from SOURCE --force" });
  }
  const target = targetFor(ctx, o);
  const token = await getToken(ctx, target, {
    minTtl,
    forceRefresh: o.forceRefresh,
    noCache: o.cache === false,
    login: ctx.nonInteractive ? undefined : interactiveLogin(ctx, { browser: true, timeoutSec: 300 }),
  });
  ctx.io.out.write(formatToken({ ...token, profile: target.profile }, o.format, { envName: o.envName, now: Math.floor(ctx.now() / 1000), env: ctx.env }));
}

export function registerToken(program: Command, getCtx: () => Context, run: Run<TokenOptions> = runToken): void {
  const cmd = program
    .command("token")
    .description("print a valid access token (cached, refreshed or newly acquired)")
    .addOption(choice("-f, --format <format>", "raw | json | header | headers-json | env | github", FORMATS).default("raw"))
    .option("--min-ttl <seconds>", "minimum remaining lifetime of a cached token", "60")
    .option("--force-refresh", "ignore the cached access token")
    .option("--no-cache", "neither read nor write the token cache")
    .option("--env-name <NAME>", "variable name for --format env/github", "MCP_AUTH_TOKEN")
    .addHelpText("after", "\nExamples:\n  mcp-auth token --profile dev\n  mcp-auth token --provider thunder --format header\n  MCP_AUTH_CLIENT_SECRET=… mcp-auth token --issuer https://idp.example.com --client-id ci");
  withProfileOptions(cmd);
  withAdHocOptions(cmd);
  cmd
    .option("--assertion-from <source>", "profile-less: the CI's own token instead of a secret: github-actions[:AUDIENCE] | env:VAR | file:PATH")
    .addOption(choice("--federation <how>", "profile-less: client-assertion (default) or token-exchange", FEDERATIONS));
  cmd.action((o: TokenOptions) => run(getCtx(), o));
}
