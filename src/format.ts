import { appendFileSync } from "node:fs";
import { NetworkError, UsageError } from "./errors.js";

/**
 * How `mcp-auth token` prints a token. Shared by the fast path and the full CLI, so: node built-ins
 * only, and cheap.
 */
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
  /** headers-json: headers printed beside Authorization (`token --header`, checked by src/headers.ts). */
  headers?: ReadonlyArray<readonly [string, string]>;
}

export function isFormat(f: string): f is Format {
  return (FORMATS as readonly string[]).includes(f);
}

/** Longest token accepted from a server or the cache (a JWT with many claims is a few KB). */
export const MAX_TOKEN_LENGTH = 64 * 1024;
/**
 * RFC 6750 §2.1 b64token. Stricter than RFC 6749's VSCHAR on purpose: no quote, space, `;`, `$`,
 * backtick or line break can ever reach a shell, an env file or a header.
 */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Refresh and ID tokens are never printed, but still travel in forms and files: visible ASCII only. */
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

export type TokenField = "access_token" | "refresh_token" | "id_token";

/** Why a token a server gave us is unusable, or undefined when it is fine. Never includes the value. */
export function tokenProblem(field: TokenField, value: unknown): string | undefined {
  if (typeof value !== "string" || !value) return `${field} is missing or not a string`;
  if (value.length > MAX_TOKEN_LENGTH) return `${field} is longer than ${MAX_TOKEN_LENGTH / 1024} KB`;
  if (field === "access_token") return B64TOKEN.test(value) ? undefined : `${field} is not a bearer token (RFC 6750 b64token syntax)`;
  return VISIBLE_ASCII.test(value) ? undefined : `${field} contains spaces or control characters`;
}

/** Only Bearer tokens are supported (RFC 6750; token types are case-insensitive). */
export function isBearer(type: string | undefined): boolean {
  return type === undefined || type.toLowerCase() === "bearer";
}

/**
 * A server-chosen token type, safe to show: known names in their usual spelling, anything else
 * lower-cased and cut down to harmless characters.
 */
export function tokenTypeName(type: string): string {
  const t = type.toLowerCase();
  if (t === "dpop") return "DPoP";
  return t.replace(/[^a-z0-9_.+-]/g, "?").slice(0, 40);
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A POSIX shell single-quoted string: nothing inside is interpreted. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * One `NAME=value` line for $GITHUB_ENV. A line break would start a second variable (the runner reads
 * the file line by line), so it is refused rather than escaped.
 */
export function githubEnvLine(name: string, value: string): string {
  if (!ENV_NAME.test(name) || /[\r\n]/.test(value)) throw new NetworkError("refusing to write a value with a line break to $GITHUB_ENV");
  return `${name}=${value}\n`;
}

/** Workflow-command data escaping (what @actions/core does), so the mask covers the whole value. */
function escapeCommandData(value: string): string {
  return value.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

/**
 * Returns what goes to stdout. `github` also appends to $GITHUB_ENV (so later steps see it).
 * Refuses (NetworkError) a token that is not a Bearer b64token — on the fast path that means "let the
 * full CLI decide" — and still quotes per format, in case a check upstream is ever loosened.
 */
export function formatToken(t: PrintableToken, format: Format, opts: FormatOptions): string {
  const problem = tokenProblem("access_token", t.access_token);
  if (problem) throw new NetworkError(`refusing to print the token: malformed response (${problem})`);
  if (!isBearer(t.token_type)) throw new NetworkError(`refusing to print a ${tokenTypeName(t.token_type!)} token: only Bearer tokens are supported`);
  const token = t.access_token;
  const envName = opts.envName ?? "MCP_AUTH_TOKEN";
  if (!ENV_NAME.test(envName)) throw new UsageError(`--env-name must be a shell variable name, got "${envName}"`);
  switch (format) {
    case "raw":
      return `${token}\n`;
    case "json":
      return (
        JSON.stringify({
          access_token: token,
          token_type: "Bearer",
          expires_at: t.expires_at ?? null,
          expires_in: t.expires_at === undefined ? null : Math.max(0, t.expires_at - opts.now),
          scope: t.scope ?? null,
          profile: t.profile,
        }) + "\n"
      );
    case "header":
      if (/[\x00-\x1f\x7f]/.test(token)) throw new NetworkError("refusing to print a header with control characters");
      return `Authorization: Bearer ${token}\n`;
    case "headers-json":
      return JSON.stringify({ ...Object.fromEntries(opts.headers ?? []), Authorization: `Bearer ${token}` }) + "\n";
    case "env":
      return `export ${envName}=${shellQuote(token)}\n`;
    case "github": {
      const file = opts.env.GITHUB_ENV;
      if (!file) throw new UsageError("--format github needs $GITHUB_ENV (it is set inside GitHub Actions)");
      const line = githubEnvLine(envName, token);
      appendFileSync(file, line, { mode: 0o600 });
      return `::add-mask::${escapeCommandData(token)}\n`;
    }
  }
}
