import type { Command } from "commander";
import type { Context } from "../context.js";
import { getToken, tokenState } from "../core/tokens.js";
import { interactiveLogin } from "../core/login.js";
import { FORMATS, formatToken, type Format } from "../format.js";
import { choice, duration, seconds, targetFor, withAdHocOptions, withProfileOptions, type Run } from "./shared.js";

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
}

/** Prints a valid access token, and nothing else, on stdout. */
export async function runToken(ctx: Context, o: TokenOptions): Promise<void> {
  const minTtl = seconds("--min-ttl", o.minTtl, 60);
  if (o.envName !== undefined && o.format !== "env" && o.format !== "github") ctx.warn(`--env-name only applies with --format env or github; ignored with --format ${o.format}`);
  const target = targetFor(ctx, o);
  // A spinner only when the IdP will be asked: a cached answer stays silent (and is usually answered by src/fast.ts anyway).
  const rec = o.cache === false || o.forceRefresh ? null : tokenState(ctx, target);
  const hit = rec !== null && rec.expires_at - ctx.now() / 1000 >= minTtl;
  const spin = hit ? undefined : ctx.io.spinner(`Getting a token from ${target.issuer}…`);
  const login = ctx.nonInteractive ? undefined : interactiveLogin(ctx, { browser: true, timeoutSec: 300 });
  let token;
  try {
    token = await getToken(ctx, target, {
      minTtl,
      forceRefresh: o.forceRefresh,
      noCache: o.cache === false,
      login: login && ((t) => (spin?.stop(), login(t))),
    });
  } finally {
    spin?.stop();
  }
  const life = token.expires_at - ctx.now() / 1000;
  if (o.minTtl !== undefined && token.source !== "cache" && life < minTtl) {
    ctx.warn(`--min-ttl ${minTtl} is longer than the tokens ${target.issuer} issues (${duration(life)}): every call will ask the IdP`);
  }
  ctx.io.out.write(formatToken({ ...token, profile: target.profile }, o.format, { envName: o.envName, now: Math.floor(ctx.now() / 1000), env: ctx.env }));
}

export function registerToken(program: Command, getCtx: () => Context, run: Run<TokenOptions> = runToken): void {
  const cmd = program
    .command("token")
    .description("print a valid access token (cached, refreshed or newly acquired)")
    .addOption(choice("-f, --format <format>", "raw | json | header | headers-json | env | github", FORMATS).default("raw"))
    .option("--min-ttl <seconds>", "minimum remaining lifetime of a cached token (default: 60)")
    .option("--force-refresh", "ignore the cached access token")
    .option("--no-cache", "neither read nor write the token cache")
    .option("--env-name <NAME>", "variable name for --format env/github (default: MCP_AUTH_TOKEN)")
    .addHelpText("after", "\nExamples:\n  mcp-auth token --profile dev\n  mcp-auth token --provider thunder --format header\n  MCP_AUTH_CLIENT_SECRET=… mcp-auth token --issuer https://idp.example.com --client-id ci");
  withProfileOptions(cmd);
  withAdHocOptions(cmd);
  cmd.action((o: TokenOptions) => run(getCtx(), o));
}
