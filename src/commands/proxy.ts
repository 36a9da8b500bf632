import type { Command } from "commander";
import type { Context } from "../context.js";
import { checkMcpUrl } from "../core/mcp.js";
import { assertCovers } from "../core/covers.js";
import { UsageError } from "../errors.js";
import { headerSpecs, resolveHeaders } from "../headers.js";
import { registerSecret } from "../io/sanitize.js";
import { choice, profileFor, relayUpstream, withProfileOptions, type Run } from "./shared.js";

export interface ProxyCommandOptions {
  profile?: string;
  provider?: string;
  url?: string;
  transport?: "auto" | "streamable-http" | "sse";
  /** The server's MCP era: auto (probe with server/discover) | legacy | 2026-07-28. */
  protocol?: "auto" | "legacy" | "2026-07-28";
  minTtl?: string;
  /** `--header 'Name: value'` and `--header-env Name=VAR`, repeatable. */
  header?: string[];
  headerEnv?: string[];
  /** The global --debug: trace JSON-RPC traffic (redacted) on stderr. */
  debug?: boolean;
}

/**
 * Bridges an MCP client that speaks stdio to a remote MCP server, with the profile's token on every
 * request. stdout carries JSON-RPC only; everything else goes to stderr. Returns when stdin closes.
 */
export async function runProxyCommand(ctx: Context, o: ProxyCommandOptions): Promise<void> {
  const profile = profileFor(ctx, o);
  const raw = o.url ?? profile.mcpUrl;
  if (!raw) {
    throw new UsageError(`profile "${profile.name}" has no MCP server URL`, { hint: `pass --url URL, or save one: mcp-auth profiles add ${profile.name} … --mcp-url URL --force` });
  }
  const url = checkMcpUrl(ctx, raw);
  // A planted `proxy --url https://elsewhere` must not get this profile's token (exit 2, before any request).
  assertCovers(profile, url);
  // Values from the environment are read now (this process's), and never printed in a trace.
  const headers = resolveHeaders(headerSpecs(o.header, o.headerEnv), ctx.env, (v) => registerSecret(v));
  const upstream = relayUpstream(ctx, profile, o);
  // stdout is the protocol channel: a stray console.log from any library would corrupt it.
  for (const k of ["log", "info", "debug"] as const) console[k] = (...a: unknown[]) => ctx.io.err.write(`${a.map(String).join(" ")}\n`);
  const { runProxy } = await import("../mcp/proxy.js");
  await runProxy({ ...upstream, url, input: ctx.io.in, output: ctx.io.out, transport: o.transport, protocol: o.protocol, headers });
}

function collect(v: string, all: string[]): string[] {
  return [...all, v];
}

export function registerProxy(program: Command, getCtx: () => Context, run: Run<ProxyCommandOptions> = runProxyCommand): void {
  const cmd = program
    .command("proxy")
    .description("stdio ↔ remote MCP server bridge that adds the profile's token to every request (for clients without OAuth)")
    .option("--url <url>", "the MCP server (default: the profile's mcpUrl; another URL must be under it or its resource)")
    .addOption(choice("--transport <kind>", "auto (Streamable HTTP, then HTTP+SSE) | streamable-http | sse", ["auto", "streamable-http", "sse"]).default("auto"))
    .addOption(choice("--protocol <era>", "the server's MCP era: auto (ask it with server/discover) | legacy (initialize handshake) | 2026-07-28; clients of either era are bridged", ["auto", "legacy", "2026-07-28"]).default("auto"))
    .option("--min-ttl <seconds>", "renew a cached token with less life than this", "60")
    .option("--header <header>", "an extra header on every request, 'Name: value' (repeatable; never Authorization)", collect, [])
    .option("--header-env <Name=VAR>", "an extra header whose value is read from $VAR when the proxy starts (repeatable; for secrets)", collect, [])
    .addHelpText(
      "after",
      '\nstdout carries JSON-RPC only; notices go to stderr (--debug traces the traffic, tokens redacted).\nExits 0 when stdin closes.\n\nClaude Desktop (claude_desktop_config.json):\n  "k8s": { "command": "mcp-auth", "args": ["proxy", "--profile", "dev"] }',
    );
  withProfileOptions(cmd);
  cmd.action((o: ProxyCommandOptions, c: Command) => run(getCtx(), { ...o, debug: Boolean(c.optsWithGlobals().debug) }));
}
