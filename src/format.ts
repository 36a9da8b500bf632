import { appendFileSync } from "node:fs";
import { UsageError } from "./errors.js";

/** How `mcp-auth token` prints a token. Shared by the fast path and the full CLI. */
export const FORMATS = ["raw", "json", "header", "headers-json", "env", "github"] as const;
export type Format = (typeof FORMATS)[number];

export interface PrintableToken {
  access_token: string;
  token_type?: string;
  /** unix seconds */
  expires_at?: number;
  scope?: string;
  profile: string | null;
}

export interface FormatOptions {
  envName?: string;
  now: number; // unix seconds
  env: NodeJS.ProcessEnv;
}

export function isFormat(f: string): f is Format {
  return (FORMATS as readonly string[]).includes(f);
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Returns what goes to stdout. `github` also appends to $GITHUB_ENV (so later steps see it). */
export function formatToken(t: PrintableToken, format: Format, opts: FormatOptions): string {
  const type = bearerType(t.token_type);
  const envName = opts.envName ?? "MCP_AUTH_TOKEN";
  if (!ENV_NAME.test(envName)) throw new UsageError(`--env-name must be a shell variable name, got "${envName}"`);
  switch (format) {
    case "raw":
      return `${t.access_token}\n`;
    case "json":
      return (
        JSON.stringify({
          access_token: t.access_token,
          token_type: type,
          expires_at: t.expires_at ?? null,
          expires_in: t.expires_at === undefined ? null : Math.max(0, t.expires_at - opts.now),
          scope: t.scope ?? null,
          profile: t.profile,
        }) + "\n"
      );
    case "header":
      return `Authorization: ${type} ${t.access_token}\n`;
    case "headers-json":
      return JSON.stringify({ Authorization: `${type} ${t.access_token}` }) + "\n";
    case "env":
      return `export ${envName}=${t.access_token}\n`;
    case "github": {
      const file = opts.env.GITHUB_ENV;
      if (!file) throw new UsageError("--format github needs $GITHUB_ENV (it is set inside GitHub Actions)");
      appendFileSync(file, `${envName}=${t.access_token}\n`, { mode: 0o600 });
      return `::add-mask::${t.access_token}\n`;
    }
  }
}

/** Token types are case-insensitive (RFC 6750); print the canonical "Bearer". */
function bearerType(type: string | undefined): string {
  if (!type || type.toLowerCase() === "bearer") return "Bearer";
  return type;
}
