import type { Command } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { headerSpecs, resolveHeaders } from "../headers.js";
import { registerSecret } from "../io/sanitize.js";
import { assertCovers } from "../core/covers.js";
import { getToken, tokenState } from "../core/tokens.js";
import { interactiveLogin } from "../core/login.js";
import { FORMATS, formatToken, type Format } from "../format.js";
import { FEDERATIONS, type Federation } from "../profile.js";
import { choice, duration, profileFor, seconds, targetFor, withAdHocOptions, withCommandSecret, withProfileOptions, type Run } from "./shared.js";

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
  clientSecretCmd?: string;
  scope?: string[];
  resource?: string;
  audience?: string;
  /** --exchange oci-upst: print an OCI session token got by exchanging the profile's token */
  exchange?: "oci-upst";
  ociSessionDir?: string;
  /** Profile-less identity federation: where the CI token is, and how it is used. */
  assertionFrom?: string;
  federation?: Federation;
  /** headers-json: extra headers printed beside Authorization (`--header`, `--header-env`). */
  header?: string[];
  headerEnv?: string[];
  /** Print the ID token instead of the access token (servers behind AWS Cognito / AgentCore). */
  useIdToken?: boolean;
}

/** Prints a valid access token, and nothing else, on stdout. */
export async function runToken(ctx: Context, o: TokenOptions): Promise<void> {
  const minTtl = seconds("--min-ttl", o.minTtl, 60);
  if (o.exchange || o.ociSessionDir) return runExchange(ctx, o, minTtl);
  if (o.envName !== undefined && o.format !== "env" && o.format !== "github") ctx.warn(`--env-name only applies with --format env or github; ignored with --format ${o.format}`);
  if ((o.assertionFrom || o.federation) && !o.issuer) {
    throw new UsageError("--assertion-from and --federation only apply with --issuer (profile-less mode)", { hint: "for a profile: mcp-auth profiles add NAME … --assertion-from SOURCE --force" });
  }
  const specs = headerSpecs(o.header, o.headerEnv);
  if (specs.length && o.format !== "headers-json") throw new UsageError("--header and --header-env only apply with --format headers-json (a client's headers helper)");
  const headers = resolveHeaders(specs, ctx.env, (v) => registerSecret(v));
  let target = targetFor(ctx, await withCommandSecret(ctx, o));
  if (o.useIdToken) {
    if (target.grant === "client_credentials") throw new UsageError("--use-id-token needs a profile that signs a person in: client credentials yield no ID token");
    target = { ...target, useIdToken: true };
  }
  helperGuard(ctx, o);
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
  ctx.io.out.write(formatToken({ ...token, profile: target.profile }, o.format, { envName: o.envName, now: Math.floor(ctx.now() / 1000), env: ctx.env, headers }));
}

/**
 * Claude Code runs a `headersHelper` with the URL of the server it is connecting to in
 * CLAUDE_CODE_MCP_SERVER_URL. A project `.mcp.json` from a cloned repository can pair any URL with
 * `mcp-auth token --profile work`, so a profile's token is printed there only for a URL the profile
 * covers, as `proxy --url` does (src/core/covers.ts). Profile-less tokens name their own issuer.
 */
function helperGuard(ctx: Context, o: TokenOptions): void {
  const asked = ctx.env.CLAUDE_CODE_MCP_SERVER_URL;
  if (asked === undefined || o.issuer) return;
  let url: URL;
  try {
    url = new URL(asked);
  } catch {
    throw new UsageError("CLAUDE_CODE_MCP_SERVER_URL is not a URL: no token is printed for it");
  }
  assertCovers(profileFor(ctx, o), url, "the server Claude Code asked a token for");
}

async function runExchange(ctx: Context, o: TokenOptions, minTtl: number): Promise<void> {
  if (!o.exchange) throw new UsageError("--oci-session-dir needs --exchange oci-upst");
  if (o.issuer) throw new UsageError("--exchange needs a profile (made by mcp-auth bootstrap oci --token-exchange), not --issuer");
  const exchange = ctx.plugins.providers.flatMap((p) => p.exchanges ?? []).find((x) => x.id === o.exchange);
  if (!exchange) throw new UsageError(`unknown exchange "${o.exchange}"`);
  // An exchanged token may not be a Bearer token at all (an OCI UPST signs API requests with its key).
  if (!exchange.bearer && (o.format === "header" || o.format === "headers-json")) throw new UsageError(`--format ${o.format} does not apply to ${exchange.title}`, { hint: "use raw, json, env or github" });
  targetFor(ctx, o); // the same refusals as a plain `token` (ad-hoc flags with a profile…)
  const p = profileFor(ctx, o);
  const got = await exchange.get(ctx, p, {
    minTtl,
    forceRefresh: o.forceRefresh,
    noCache: o.cache === false,
    login: ctx.nonInteractive ? undefined : interactiveLogin(ctx, { browser: true, timeoutSec: 300 }),
  });
  const out = formatToken({ ...got, profile: p.name }, o.format, { envName: o.envName, now: Math.floor(ctx.now() / 1000), env: ctx.env });
  if (o.ociSessionDir) {
    if (!exchange.writeSessionDir) throw new UsageError(`--oci-session-dir does not apply to ${exchange.title}`);
    ctx.info(exchange.writeSessionDir(o.ociSessionDir, got, p.name));
  }
  ctx.io.out.write(out);
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
    .option("--header <header>", "with --format headers-json: an extra header, 'Name: value' (repeatable; never Authorization)", (v: string, all: string[]) => [...all, v], [])
    .option("--header-env <Name=VAR>", "with --format headers-json: an extra header whose value is read from $VAR now (repeatable)", (v: string, all: string[]) => [...all, v], [])
    .option("--use-id-token", "print the ID token instead of the access token (servers behind AWS Cognito / AgentCore); refreshed by its own expiry")
    .addOption(choice("--exchange <kind>", "print a token exchanged for the profile's: oci-upst (OCI session token)", ["oci-upst"]))
    .option("--oci-session-dir <dir>", "with --exchange oci-upst: also write the token and its private key where `oci --auth security_token` reads them")
    .addHelpText("after", "\nExamples:\n  mcp-auth token --profile dev\n  mcp-auth token --provider thunder --format header\n  MCP_AUTH_CLIENT_SECRET=… mcp-auth token --issuer https://idp.example.com --client-id ci\n  mcp-auth token --profile oci --exchange oci-upst --oci-session-dir ~/.oci/sessions/oci");
  withProfileOptions(cmd);
  withAdHocOptions(cmd);
  cmd
    .option("--assertion-from <source>", "profile-less: the CI's own token instead of a secret: github-actions[:AUDIENCE] | env:VAR | file:PATH")
    .addOption(choice("--federation <how>", "profile-less: client-assertion (default) or token-exchange", FEDERATIONS));
  cmd.action((o: TokenOptions) => run(getCtx(), o));
}
