import type { Command } from "commander";
import { setFlagsFromString } from "node:v8";
import type { Context } from "../context.js";
import { assertCovers } from "../core/covers.js";
import { portNumber } from "../core/inputs.js";
import { checkMcpUrl } from "../core/mcp.js";
import { proxyTokens } from "../core/proxy-tokens.js";
import { UsageError } from "../errors.js";
import { profileFor, seconds, withProfileOptions, type Run } from "./shared.js";

export interface ServeCommandOptions {
  profile?: string;
  provider?: string;
  port?: string;
  minTtl?: string;
  debug?: boolean;
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * A loopback Streamable HTTP endpoint in front of the profile's MCP server (src/mcp/serve.ts). Prints
 * the URL and the header to send once, on stdout, and runs until SIGINT/SIGTERM (then exits 0).
 */
export async function runServeCommand(ctx: Context, o: ServeCommandOptions, stopped: (stop: () => void) => void = untilSignal): Promise<void> {
  const profile = profileFor(ctx, o);
  if (!profile.mcpUrl) throw new UsageError(`profile "${profile.name}" has no MCP server URL`, { hint: `save one: mcp-auth profiles add ${profile.name} … --mcp-url URL --force` });
  const url = checkMcpUrl(ctx, profile.mcpUrl);
  assertCovers(profile, url);
  const port = o.port === undefined ? 0 : portNumber("--port", o.port, { allowZero: true });
  const minTtl = seconds("--min-ttl", o.minTtl, 60);
  const notice = (line: string) => ctx.io.info(`mcp-auth: ${line}`);
  const tokens = proxyTokens(ctx, profile, { minTtl, notice });
  // The proxy's memory settings (src/commands/proxy.ts): a long-lived process relaying many requests.
  setFlagsFromString("--semi-space-growth-factor=1");
  setFlagsFromString("--optimize-for-size");
  setFlagsFromString("--liftoff-only");
  const { startServe } = await import("../mcp/serve.js");
  const serving = await startServe({
    url,
    port,
    token: tokens.token,
    stepUp: tokens.stepUp,
    covers: tokens.covers,
    fetch: ctx.fetch,
    now: () => ctx.now(),
    error: notice,
    debug: o.debug ? (line) => ctx.debug(line) : undefined,
    owner: `profile "${profile.name}"`,
    loginHint: tokens.loginHint,
  });
  // The one place the secret is shown: stdout, for the client's configuration (never stderr or --debug).
  ctx.io.out.write(JSON.stringify({ url: serving.url, headers: { Authorization: `Bearer ${serving.secret}` } }) + "\n");
  notice(`serving profile "${profile.name}" (${url.href}) at ${serving.url}; the header to send is on stdout. Stop with Ctrl-C.`);
  await new Promise<void>((resolve) => stopped(resolve));
  await serving.close();
}

function untilSignal(stop: () => void): void {
  const once = () => {
    for (const s of SIGNALS) process.off(s, once);
    stop();
  };
  for (const s of SIGNALS) {
    process.removeAllListeners(s); // the CLI's Ctrl-C handler exits 130; stopping serve is its normal end
    process.on(s, once);
  }
}

export function registerServe(program: Command, getCtx: () => Context, run: Run<ServeCommandOptions> = runServeCommand): void {
  const cmd = program
    .command("serve")
    .description("a loopback MCP endpoint (Streamable HTTP) that forwards to the profile's server with a fresh token, for clients that take only a URL and a static header")
    .option("--port <n>", "port on 127.0.0.1 (default: a free one)")
    .option("--min-ttl <seconds>", "renew a cached token with less life than this", "60")
    .addHelpText(
      "after",
      '\nPrints {"url": …, "headers": {"Authorization": "Bearer <secret>"}} once on stdout: the secret is new on every start.\nRequests need that header, a loopback Host, and no Origin or a loopback one (403 otherwise).\nExits 0 when stopped (SIGINT, SIGTERM), 2 when the port is taken, 4 when there is no token.\n\nExamples:\n  mcp-auth serve --profile dev\n  mcp-auth serve --profile dev --port 8931',
    );
  withProfileOptions(cmd);
  cmd.action((o: ServeCommandOptions, c: Command) => run(getCtx(), { ...o, debug: Boolean(c.optsWithGlobals().debug) }));
}
