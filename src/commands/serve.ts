import type { Command } from "commander";
import type { Context } from "../context.js";
import { assertCovers } from "../core/covers.js";
import { portNumber } from "../core/inputs.js";
import { checkMcpUrl } from "../core/mcp.js";
import { UsageError } from "../errors.js";
import { profileFor, relayUpstream, withProfileOptions, type Run } from "./shared.js";

export interface ServeCommandOptions {
  profile?: string;
  provider?: string;
  port?: string;
  /** Write the endpoint (URL and secret) into this MCP client's config. */
  client?: string;
  scope?: string;
  name?: string;
  minTtl?: string;
  debug?: boolean;
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * A loopback Streamable HTTP endpoint in front of the profile's MCP server (src/mcp/serve.ts). Prints
 * the URL and the header to send once, on stdout, and runs until SIGINT, SIGTERM or SIGHUP (then exits 0).
 */
export async function runServeCommand(ctx: Context, o: ServeCommandOptions, stopped: (stop: () => void) => void = untilSignal): Promise<void> {
  const profile = profileFor(ctx, o);
  if (!o.client && (o.scope || o.name)) throw new UsageError(`${o.scope ? "--scope" : "--name"} only applies with --client`);
  if (!profile.mcpUrl) throw new UsageError(`profile "${profile.name}" has no MCP server URL`, { hint: `save one: mcp-auth profiles add ${profile.name} … --mcp-url URL --force` });
  const url = checkMcpUrl(ctx, profile.mcpUrl);
  assertCovers(profile, url);
  const port = o.port === undefined ? 0 : portNumber("--port", o.port, { allowZero: true });
  const upstream = relayUpstream(ctx, profile, o);
  // A profile that needs a login fails now (exit 4), not at the client's first request.
  await upstream.token({ forceRefresh: false });
  const { startServe } = await import("../mcp/serve.js");
  const serving = await startServe({ ...upstream, url, port });
  try {
    // The client's entry first: once the header is printed, everything is in place.
    if (o.client) await configureClient(ctx, o, profile.name, serving);
    // The one place the secret is shown: stdout, for the client's configuration (never stderr or --debug).
    ctx.io.out.write(JSON.stringify({ url: serving.url, headers: { Authorization: `Bearer ${serving.secret}` } }) + "\n");
    upstream.error(`serving profile "${profile.name}" (${url.href}) at ${serving.url}; the header to send is on stdout. Stop with Ctrl-C.`);
    await new Promise<void>((resolve) => stopped(resolve));
  } finally {
    await serving.close();
  }
}

/** The client's entry: this endpoint's URL and secret (replaced on every start; add-client's plan → apply). */
async function configureClient(ctx: Context, o: ServeCommandOptions, profile: string, serving: { url: string; secret: string }): Promise<void> {
  const { applyAddClient, prepareAddClient } = await import("../core/clients.js");
  const { selfLauncher } = await import("./clients.js");
  const req = { client: o.client!, profile, name: o.name, scope: o.scope, endpoint: { url: serving.url, secret: serving.secret }, cwd: process.cwd(), platform: process.platform, launcher: selfLauncher(), claudeCli: null };
  const p = await prepareAddClient(ctx, req);
  const done = await applyAddClient(ctx, p, req);
  ctx.info(`mcp-auth: ${done.action === "unchanged" ? "already in" : "wrote the endpoint and its secret into"} ${p.writer.title} (${p.spec.scope} scope, ${p.path}) as "${p.spec.name}"${done.backup ? `; previous version: ${done.backup}` : ""}`);
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
    .option("--client <client>", "also write the URL and secret into this MCP client's config (user or local scope; rewritten on every start)")
    .option("--scope <scope>", "with --client: user | local (default: the client's own)")
    .option("--name <server>", "with --client: server name in the client (default: the profile name)")
    .option("--min-ttl <seconds>", "renew a cached token with less life than this", "60")
    .addHelpText(
      "after",
      '\nPrints {"url": …, "headers": {"Authorization": "Bearer <secret>"}} once on stdout: the secret is new on every start.\nRequests need that header, a loopback Host, and no Origin or a loopback one (403 otherwise).\nExits 0 when stopped (SIGINT, SIGTERM, SIGHUP), 2 when the port is taken, 4 when there is no token.\n\nExamples:\n  mcp-auth serve --profile dev\n  mcp-auth serve --profile dev --port 8931 --client cursor',
    );
  withProfileOptions(cmd);
  cmd.action((o: ServeCommandOptions, c: Command) => run(getCtx(), { ...o, debug: Boolean(c.optsWithGlobals().debug) }));
}
