import type { Command } from "commander";
import { setFlagsFromString } from "node:v8";
import type { Context } from "../context.js";
import { checkMcpUrl } from "../core/mcp.js";
import { loginHint, targetFromProfile } from "../core/target.js";
import { getToken } from "../core/tokens.js";
import { saveScopes, withScopes } from "../core/profiles.js";
import { login } from "../core/session.js";
import { AuthError, UsageError } from "../errors.js";
import { choice, profileFor, seconds, withProfileOptions, type Run } from "./shared.js";

export interface ProxyCommandOptions {
  profile?: string;
  provider?: string;
  url?: string;
  transport?: "auto" | "streamable-http" | "sse";
  minTtl?: string;
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
  const minTtl = seconds("--min-ttl", o.minTtl, 60);
  let target = targetFromProfile(profile);
  // stdout is the protocol channel: a stray console.log from any library would corrupt it.
  for (const k of ["log", "info", "debug"] as const) console[k] = (...a: unknown[]) => ctx.io.err.write(`${a.map(String).join(" ")}\n`);
  // A long-lived process that allocates a little per message: keep the young generation at its
  // starting size and collect the old one sooner. Measured by `npm run bench` (scripts/bench-proxy.mjs):
  // peak RSS over a few thousand requests ~135 MB → ~95 MB.
  setFlagsFromString("--semi-space-growth-factor=1");
  setFlagsFromString("--optimize-for-size");
  // fetch parses HTTP with llhttp compiled to WebAssembly; after a few dozen requests V8 recompiles
  // it with its optimising tier, a one-off that briefly takes ~25 MB of native memory (the proxy's
  // peak RSS). The baseline tier parses a few KB of headers just as well. Set before the first fetch.
  // With the zod-free transports (src/mcp/transport.ts): peak RSS over 10,000 requests ~96 → ~75 MB.
  setFlagsFromString("--liftoff-only");
  const { runProxy } = await import("../mcp/proxy.js");
  await runProxy({
    url,
    input: ctx.io.in,
    output: ctx.io.out,
    // No login from here: stdin belongs to the MCP client. The error says which command to run.
    token: ({ forceRefresh }) => getToken(ctx, target, { minTtl, forceRefresh }),
    // Step-up on 403 insufficient_scope: the challenged scopes added to the profile's. Client
    // credentials just ask again; a person signs in again in the browser (never through stdin).
    stepUp: async (scopes) => {
      const wider = withScopes({ ...profile, scopes: target.scopes }, scopes);
      const next = targetFromProfile(wider);
      const got =
        next.grant === "client_credentials"
          ? await getToken(ctx, next, { minTtl, forceRefresh: true })
          : (await login(ctx, wider, { browser: true, timeoutSec: 300 })).token;
      // The IdP decides what it grants (and may drop what it does not know): keep only a real step-up.
      const granted = got.scope?.split(/\s+/);
      const missing = granted ? scopes.filter((s) => !granted.includes(s)) : [];
      if (missing.length) {
        throw new AuthError(`the IdP did not grant ${missing.join(" ")} to ${profile.name}'s client (granted: ${got.scope || "nothing"})`, { hint: "ask the IdP's admin to allow that scope for the client" });
      }
      await saveScopes(ctx, profile.name, wider.scopes!);
      target = next;
      return got;
    },
    fetch: ctx.fetch,
    now: () => ctx.now(),
    error: (line) => ctx.io.info(`mcp-auth: ${line}`),
    debug: o.debug ? (line) => ctx.debug(line) : undefined,
    owner: `profile "${profile.name}"`,
    loginHint: loginHint(target),
    transport: o.transport,
  });
}

export function registerProxy(program: Command, getCtx: () => Context, run: Run<ProxyCommandOptions> = runProxyCommand): void {
  const cmd = program
    .command("proxy")
    .description("stdio ↔ remote MCP server bridge that adds the profile's token to every request (for clients without OAuth)")
    .option("--url <url>", "the MCP server (default: the profile's mcpUrl)")
    .addOption(choice("--transport <kind>", "auto (Streamable HTTP, then HTTP+SSE) | streamable-http | sse", ["auto", "streamable-http", "sse"]).default("auto"))
    .option("--min-ttl <seconds>", "renew a cached token with less life than this", "60")
    .addHelpText(
      "after",
      '\nstdout carries JSON-RPC only; notices go to stderr (--debug traces the traffic, tokens redacted).\nExits 0 when stdin closes.\n\nClaude Desktop (claude_desktop_config.json):\n  "k8s": { "command": "mcp-auth", "args": ["proxy", "--profile", "dev"] }',
    );
  withProfileOptions(cmd);
  cmd.action((o: ProxyCommandOptions, c: Command) => run(getCtx(), { ...o, debug: Boolean(c.optsWithGlobals().debug) }));
}
