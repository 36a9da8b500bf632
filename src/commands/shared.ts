import { Option, type Command } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { relativeTime } from "../core/checks.js";
import { adHocTarget, targetFromProfile, type AdHocOptions, type Target } from "../core/target.js";
import { checkCommandToStore, parseSecretCommand, secretFromCommand } from "../core/secret-command.js";
import { selectProfile, type Profile } from "../profile.js";
import { setFlagsFromString } from "node:v8";
import { proxyTokens } from "../core/proxy-tokens.js";

/** The command-line flag of an option key, as commander names it: `clientSecretEnv` → `--client-secret-env`. */
export function optionFlag(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** A command's use of its options: the real run, or a capture in parse tests. */
export type Run<O> = (ctx: Context, o: O) => Promise<void> | void;

/** --profile / --provider, accepted by every command that acts on a profile. */
export function withProfileOptions(cmd: Command): Command {
  return cmd
    .option("-p, --profile <name>", "profile to use (env MCP_AUTH_PROFILE)")
    .option("--provider <kind>", "use the only profile of this provider kind (e.g. thunder, keycloak)");
}

/** Flags of the profile-less mode (CI): a target built from flags and an environment variable. */
export function withAdHocOptions(cmd: Command): Command {
  return cmd
    .option("--issuer <url>", "profile-less: the issuer URL (needs --client-id)")
    .option("--client-id <id>", "profile-less: the client id")
    .option("--client-secret-env <VAR>", "profile-less: read the client secret from $VAR (default MCP_AUTH_CLIENT_SECRET)")
    .option("--client-secret-cmd <command>", "profile-less: get the client secret from this command (run without a shell), e.g. 'vault kv get -field=secret ci/mcp'")
    .option("--scope <scope...>", "profile-less: scopes to request")
    .option("--resource <uri>", "profile-less: RFC 8707 resource indicator")
    .option("--audience <aud>", "profile-less: audience parameter");
}

export function profileFor(ctx: Context, o: { profile?: string; provider?: string }, positional?: string): Profile {
  if (positional && o.profile && positional !== o.profile) throw new UsageError(`two different profiles given: "${positional}" and "${o.profile}"`);
  return selectProfile(ctx.config(), { profile: positional ?? o.profile, provider: o.provider }, ctx.env);
}

export function targetFor(ctx: Context, o: { profile?: string; provider?: string; clientSecretCmd?: string } & Partial<AdHocOptions>, positional?: string): Target {
  if (o.issuer) {
    if (o.profile || o.provider || positional) throw new UsageError("--issuer (profile-less mode) cannot be combined with a profile");
    // A command that did not run the secret command first (withCommandSecret) must not fall back to $MCP_AUTH_CLIENT_SECRET.
    if (o.clientSecretCmd !== undefined && o.commandSecret === undefined) throw new UsageError("--client-secret-cmd is not supported by this command");
    return adHocTarget(o as AdHocOptions, ctx.env);
  }
  for (const flag of ["clientId", "clientSecretEnv", "clientSecretCmd", "scope", "resource", "audience"] as const) {
    if (o[flag] !== undefined) throw new UsageError(`${optionFlag(flag)} only applies with --issuer (profile-less mode)`, { hint: "to change a profile, use: mcp-auth profiles add NAME … --force" });
  }
  return targetFromProfile(profileFor(ctx, o, positional));
}

/**
 * Profile-less `--client-secret-cmd`: runs the command (src/core/secret-command.ts) and returns the
 * options with what it printed, for targetFor. A command that takes the profile-less flags calls this
 * first: targetFor itself does not run commands.
 */
export async function withCommandSecret<O extends Partial<AdHocOptions> & { profile?: string; provider?: string; clientSecretCmd?: string }>(ctx: Context, o: O): Promise<O> {
  if (o.clientSecretCmd === undefined) return o;
  if (!o.issuer) throw new UsageError("--client-secret-cmd only applies with --issuer (profile-less mode)", { hint: "for a profile: mcp-auth profiles set NAME --client-secret-cmd 'COMMAND'" });
  if (o.clientSecretEnv) throw new UsageError("pass only one of --client-secret-cmd and --client-secret-env");
  if (!o.clientId) throw new UsageError("--issuer needs --client-id");
  const argv = parseSecretCommand(o.clientSecretCmd);
  return { ...o, commandSecret: await secretFromCommand(argv, { env: ctx.env, owner: `client "${o.clientId}"`, clientId: o.clientId }) };
}

/**
 * `--client-secret-cmd` for a profile about to be saved: parsed, refused where it could not run later,
 * and run once (a typo fails now). Returns the command and what it printed.
 */
export async function secretCommandToStore(ctx: Context, o: { clientSecretCmd?: string; clientSecretStdin?: boolean; clientSecretEnv?: string; clientId?: string }, owner: string): Promise<{ argv: string[]; value: string } | undefined> {
  if (o.clientSecretCmd === undefined) return undefined;
  if (o.clientSecretStdin || o.clientSecretEnv) throw new UsageError("pass only one of --client-secret-cmd, --client-secret-stdin and --client-secret-env");
  if (!o.clientId) throw new UsageError("--client-secret-cmd needs --client-id");
  const argv = parseSecretCommand(o.clientSecretCmd);
  return { argv, value: await checkCommandToStore(ctx, argv, owner, o.clientId) };
}

export function seconds(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a number of seconds, got "${value}"`);
  return n;
}

export function choice<T extends string>(flags: string, desc: string, values: readonly T[]): Option {
  return new Option(flags, desc).choices(values as unknown as string[]);
}

/** "in 53 min", "2 h ago": the one rule doctor's checks use too. */
export { relativeTime as relative } from "../core/checks.js";

/** "60 min", "2 h": a length of time, for "valid for …". */
export function duration(sec: number): string {
  return relativeTime(Math.max(0, sec)).replace(/^in /, "");
}

/**
 * Runs a network step under a spinner on stderr. The terminal draws it only on a TTY (never in CI or
 * when piped); `quiet` (a --json run) turns it off altogether.
 */
export async function withSpinner<T>(ctx: Context, text: string, fn: () => Promise<T>, o: { quiet?: boolean; done?: (v: T) => string | undefined } = {}): Promise<T> {
  if (o.quiet) return fn();
  const s = ctx.io.spinner(text);
  try {
    const v = await fn();
    const done = o.done?.(v);
    if (done === undefined) s.stop();
    else s.succeed(done);
    return v;
  } catch (e) {
    s.stop();
    throw e;
  }
}

/** For a set-up from an MCP URL: asks a person for a client id when the server offers no registration (nobody to ask: undefined). */
export function askClientId(ctx: Context): ((issuer: string) => Promise<string>) | undefined {
  return ctx.io.interactive ? (issuer) => ctx.io.prompter.input(`${issuer} offers no client registration. Client id (from its admin):`, { flagHint: "--client-id ID" }) : undefined;
}

/**
 * What `proxy` and `serve` (a relay of the profile's MCP server) are given: the token source with
 * step-up, HTTP, the clock, and where notices and the --debug trace go. Also sets V8 for a long-lived
 * process that relays many requests (measured by `npm run bench`, scripts/bench-proxy.mjs): the young
 * generation stays at its starting size and the old one is collected sooner (peak RSS ~135 → ~95 MB);
 * fetch's llhttp (WebAssembly; the token requests still go by fetch, the MCP server's by the relay)
 * stays on the baseline tier, whose one-off optimising recompile would briefly take ~25 MB
 * (~96 → ~75 MB). Set before the first request.
 */
export function relayUpstream(ctx: Context, profile: Profile, o: { minTtl?: string; debug?: boolean }) {
  const notice = (line: string) => ctx.io.info(`mcp-auth: ${line}`);
  const tokens = proxyTokens(ctx, profile, { minTtl: seconds("--min-ttl", o.minTtl, 60), notice });
  setFlagsFromString("--semi-space-growth-factor=1");
  setFlagsFromString("--optimize-for-size");
  setFlagsFromString("--liftoff-only");
  return {
    token: tokens.token,
    stepUp: tokens.stepUp,
    covers: tokens.covers,
    relay: ctx.relay,
    now: () => ctx.now(),
    error: notice,
    debug: o.debug ? (line: string) => ctx.debug(line) : undefined,
    owner: `profile "${profile.name}"`,
    loginHint: tokens.loginHint,
  };
}
