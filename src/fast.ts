/**
 * The cached-token fast path, bundled on its own as dist/fast.cjs and loaded by bin/mcp-auth.js
 * before anything else. It answers `mcp-auth token` from the cache using node built-ins only; any
 * flag it does not know, any doubt, and it returns false: src/fast-fetch.ts (a token from the IdP)
 * or the full CLI takes over.
 */
import { writeSync } from "node:fs";
import { profileCovers } from "./core/covers.js";
import { formatToken, isFormat, type Format } from "./format.js";
import { paths, type Paths } from "./paths.js";
import { readCachedToken } from "./store/tokens.js";
import { headerSpecs, resolveHeaders } from "./headers.js";
import { readConfigSync, secretFingerprint, selectProfile, splitScopes, type CacheIdentity, type Config, type Profile } from "./profile.js";

const VALUE_FLAGS: Record<string, string> = {
  "--profile": "profile",
  "-p": "profile",
  "--provider": "provider",
  "--format": "format",
  "-f": "format",
  "--min-ttl": "minTtl",
  "--env-name": "envName",
  "--issuer": "issuer",
  "--client-id": "clientId",
  "--scope": "scope",
  "--resource": "resource",
  "--audience": "audience",
  "--client-secret-env": "secretEnv",
  "--header": "header",
  "--header-env": "headerEnv",
};

/** A `token` call as the fast paths understand it. */
export interface TokenCall {
  paths: Paths;
  config: Config;
  id: CacheIdentity;
  /** The profile, or null for a profile-less (--issuer) call. */
  profile: Profile | null;
  /** Profile-less: the client secret from the environment. */
  secret?: string;
  format: Format;
  envName?: string;
  minTtl: number;
  /** --min-ttl was given (the full CLI warns when a new token is shorter-lived). */
  minTtlGiven: boolean;
  /** The global --store value, if given. */
  storeFlag?: string;
  /** headers-json: `--header`/`--header-env`, their values read (src/headers.ts). */
  headers: Array<[string, string]>;
}

/**
 * Reads argv the way the full CLI would, for the flags the fast paths know; null for anything else
 * (another command, an unknown flag, a value that needs the full CLI's message). Throws on files it
 * refuses (the callers treat any throw as "let the full CLI say it").
 */
export function parseTokenCall(argv: string[], env: NodeJS.ProcessEnv): TokenCall | null {
  // Global flags a client's headersHelper puts before `token` (src/clients/claude.ts).
  let dirFlag: string | undefined;
  let storeFlag: string | undefined;
  let start = 0;
  for (;;) {
    const a = argv[start];
    if (a === "--non-interactive") start += 1;
    else if (a === "--config-dir" && argv[start + 1]) (dirFlag = argv[start + 1]), (start += 2);
    else if (a === "--store" && argv[start + 1] && argv[start + 1] !== "memory") (storeFlag = argv[start + 1]), (start += 2);
    else break;
  }
  if (argv[start] !== "token") return null;
  const o: Record<string, string> = {};
  const scopes: string[] = [];
  const header: string[] = [];
  const headerEnv: string[] = [];
  for (let i = start + 1; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const name = VALUE_FLAGS[flag];
    if (!name) return null;
    const value = flag !== arg ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) return null;
    if (name === "scope") scopes.push(value);
    else if (name === "header") header.push(value);
    else if (name === "headerEnv") headerEnv.push(value);
    else o[name] = value;
  }
  const format = (o.format ?? "raw") as Format;
  if (!isFormat(format)) return null;
  // --env-name with another format deserves a warning: the full CLI gives it.
  if (o.envName !== undefined && format !== "env" && format !== "github") return null;
  const minTtl = o.minTtl === undefined ? 60 : Number(o.minTtl);
  if (!Number.isFinite(minTtl) || minTtl < 0) return null;
  if (env.MCP_AUTH_STORE === "memory") return null;
  // Extra headers go with headers-json only (the full CLI says so otherwise); a bad one or an unset variable throws.
  if ((header.length || headerEnv.length) && format !== "headers-json") return null;
  const headers = resolveHeaders(headerSpecs(header, headerEnv), env);

  const p = paths(env, undefined, dirFlag);
  const config = readConfigSync(p.config);
  if (config.settings?.store === "memory") return null;
  const base = { paths: p, config, format, envName: o.envName, minTtl, minTtlGiven: o.minTtl !== undefined, storeFlag, headers };
  if (o.issuer) {
    const secret = env[o.secretEnv ?? "MCP_AUTH_CLIENT_SECRET"];
    if (!o.clientId || o.profile || o.provider || !secret) return null;
    const id = { issuer: o.issuer, clientId: o.clientId, scopes: splitScopes(scopes), resource: o.resource, audience: o.audience, profile: null, secretFingerprint: secretFingerprint(secret) };
    return { ...base, id, profile: null, secret };
  }
  if (o.clientId || scopes.length || o.resource || o.audience) return null;
  const prof = selectProfile(config, { profile: o.profile, provider: o.provider }, env);
  // A Claude Code headersHelper asking for another server's token: the full CLI refuses it (src/commands/token.ts).
  const asked = env.CLAUDE_CODE_MCP_SERVER_URL;
  if (asked !== undefined && !profileCovers(prof, asked)) return null;
  return { ...base, id: { ...prof, profile: prof.name }, profile: prof };
}

// fs.writeSync(1) rather than process.stdout: creating the stdout stream costs more than the rest of this file.
export function writeOut(text: string, out: (s: string) => void = (s) => void writeSync(1, s)): void {
  try {
    out(text);
  } catch (e) {
    // A closed pipe (`mcp-auth token | head -c0`) is the reader's choice, not our failure.
    if ((e as NodeJS.ErrnoException).code !== "EPIPE") throw e;
  }
}

/**
 * What the last tryCachedToken made of its argv: null when it is no call for the fast paths (or a file
 * was refused), undefined before any. The launcher hands it to src/fast-fetch.ts on a miss, so that
 * the config is read, checked and parsed once per process rather than once per bundle.
 */
export let lastCall: TokenCall | null | undefined;

export function tryCachedToken(argv: string[], env: NodeJS.ProcessEnv, out?: (s: string) => void): boolean {
  let text: string;
  lastCall = null;
  try {
    const call = (lastCall = parseTokenCall(argv, env));
    if (!call) return false;
    // Trust checks cost a few stat calls: config dir and config.json (readConfigSync), tokens dir and
    // the record, opened without following a symlink and checked by fstat (readCachedToken). Any
    // refusal lands in the catch below: the full CLI then reports it (exit 5).
    const rec = readCachedToken(call.paths, call.id);
    const now = Date.now() / 1000;
    if (!rec?.access_token || rec.expires_at - now < call.minTtl) return false;
    // An ID token cached for `--use-id-token` goes only to a profile that hands it out (src/core/tokens.ts).
    if ((rec.bearer === "id_token") !== Boolean(call.profile?.useIdToken)) return false;
    text = formatToken({ ...rec, access_token: rec.access_token }, call.format, { envName: call.envName, now: Math.floor(now), env, headers: call.headers });
  } catch {
    return false;
  }
  writeOut(text, out);
  return true;
}
