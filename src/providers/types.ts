import type { Command } from "commander";
import type { Context } from "../context.js";

/**
 * One IdP = one module implementing Provider, registered in ./index.ts. `mcp-auth bootstrap <id>`
 * declares the provider's options, runs bootstrap() (which creates or reuses the OAuth client and
 * saves a profile with its secret already in the secret store), gets a first token for
 * client-credentials profiles, then runs verify(). Providers never print: they return lines.
 */
export interface Provider<O = Record<string, unknown>> {
  id: string;
  title: string;
  /** One line for `mcp-auth bootstrap --help`. */
  summary: string;
  /** Declares the options of `mcp-auth bootstrap <id>`. */
  declare(cmd: Command): Command;
  bootstrap(ctx: Context, opts: O): Promise<BootstrapResult>;
  /** Post-token checks (a DCR probe, the token's audience…); runs after the first token. */
  verify?(ctx: Context, opts: O, result: BootstrapResult, token?: string): Promise<Check[]>;
}

export interface BootstrapResult {
  /** The saved profile, if this run created or updated one. */
  profile?: string;
  /** What happened, for the summary: created / reused / rotated. */
  action: "created" | "reused" | "rotated" | "configured";
  /** Facts to report (app id, client id…), in order. Never secrets. */
  facts: Array<[string, string]>;
  /** Extra lines to show after the summary (next steps, server config…). */
  notes?: string[];
  /** The client secret, only so `--show-secret` can print it; it is already stored. */
  clientSecret?: string;
  /** Checks already made while bootstrapping (they need the admin session). */
  checks?: Check[];
  /** Data the user asked for on stdout (e.g. a server config file). */
  stdout?: string;
  /** Machine-readable extras for --json. */
  json?: Record<string, unknown>;
}

export interface Check {
  ok: boolean;
  what: string;
  detail?: string;
  /** How to fix it, when !ok. */
  fix?: string;
}

export function defineProvider<O>(p: Provider<O>): Provider<O> {
  return p;
}
