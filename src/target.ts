import { readFileSync } from "node:fs";
import { FileError, UsageError } from "./errors.js";
import { migrateConfig } from "./store/config-version.js";

/**
 * Profiles and "targets". A target is everything needed to get one token: issuer, client, grant,
 * scopes, resource/audience. A profile is a named, saved target; profile-less CI calls build an
 * ad-hoc target from flags. This module only uses node built-ins: the cached-token fast path
 * (src/fast.ts) loads it.
 */

export const GRANTS = ["client_credentials", "authorization_code", "device_code"] as const;
export type Grant = (typeof GRANTS)[number];
export const AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"] as const;
export type TokenAuthMethod = (typeof AUTH_METHODS)[number];

export interface ProfileData {
  /** Provider kind: "oidc" for any standard server; IdP modules add "thunder", "keycloak", … */
  provider: string;
  issuer: string;
  clientId: string;
  grant: Grant;
  scopes?: string[];
  /** RFC 8707 resource indicator sent on token requests. */
  resource?: string;
  /** Non-standard `audience` parameter (Auth0 and others). */
  audience?: string;
  mcpUrl?: string;
  redirectPort?: number;
  tokenEndpointAuthMethod?: TokenAuthMethod;
  /** Which secret store holds this profile's client secret, if it has one. */
  secretStore?: "keychain" | "file" | "memory";
  /** Provider-specific, non-secret facts (an application id, a realm…). */
  extra?: Record<string, unknown>;
}

export interface Profile extends ProfileData {
  name: string;
}

export interface Settings {
  /** Where short-lived access tokens are cached: a 0600 file (fast; default) or the keychain too. */
  accessTokenStore?: "file" | "keychain";
  /** Default secret store; MCP_AUTH_STORE / --store override it. */
  store?: "keychain" | "file" | "memory";
}

export interface Config {
  version: 1;
  defaultProfile?: string;
  settings?: Settings;
  profiles: Record<string, ProfileData>;
}

export function emptyConfig(): Config {
  return { version: 1, profiles: {} };
}

/** Parses config.json text; a file we cannot understand is refused (exit 5), never overwritten. */
export function parseConfig(text: string, file: string): Config {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new FileError(`cannot parse ${file}: ${(e as Error).message}`, {
      hint: "fix or move the file; mcp-auth left it untouched",
    });
  }
  if (!data || typeof data !== "object" || Array.isArray(data)) {
    throw new FileError(`cannot parse ${file}: expected a JSON object`, { hint: "fix or move the file; mcp-auth left it untouched" });
  }
  const cfg = migrateConfig(data as Record<string, unknown>, file) as Partial<Config>;
  const refuse = (why: string) => new FileError(`cannot use ${file}: ${why}`, { hint: "fix or move the file; mcp-auth left it untouched" });
  if (cfg.profiles !== undefined && (typeof cfg.profiles !== "object" || cfg.profiles === null || Array.isArray(cfg.profiles))) throw refuse('"profiles" must be an object');
  for (const [name, p] of Object.entries(cfg.profiles ?? {})) {
    if (!p || typeof p !== "object") throw refuse(`profile "${name}" is not an object`);
    for (const key of ["provider", "issuer", "clientId", "grant"] as const) {
      if (typeof p[key] !== "string" || !p[key]) throw refuse(`profile "${name}" has no "${key}"`);
    }
    if (!(GRANTS as readonly string[]).includes(p.grant)) throw refuse(`profile "${name}" has an unknown grant "${p.grant}"`);
    if (p.scopes !== undefined && !(Array.isArray(p.scopes) && p.scopes.every((x) => typeof x === "string"))) throw refuse(`profile "${name}": "scopes" must be a list of strings`);
  }
  return { ...cfg, version: 1, profiles: cfg.profiles ?? {} };
}

export function readConfigSync(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return emptyConfig();
    throw new FileError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return parseConfig(text, file);
}

export interface Selector {
  profile?: string;
  provider?: string;
}

/**
 * Picks the profile a command acts on: --profile (or MCP_AUTH_PROFILE), else the only profile of
 * --provider KIND, else the default profile, else the only profile there is.
 */
export function selectProfile(cfg: Config, sel: Selector, env: NodeJS.ProcessEnv = process.env): Profile {
  const names = Object.keys(cfg.profiles);
  const name = sel.profile ?? (sel.provider ? undefined : env.MCP_AUTH_PROFILE);
  if (name) {
    const p = cfg.profiles[name];
    if (!p) {
      throw new UsageError(`no profile named "${name}"`, {
        hint: names.length ? `known profiles: ${names.join(", ")}` : "create one with: mcp-auth profiles add NAME --issuer URL --client-id ID",
      });
    }
    if (sel.provider && p.provider !== sel.provider) {
      throw new UsageError(`profile "${name}" is a ${p.provider} profile, not ${sel.provider}`);
    }
    return { name, ...p };
  }
  if (sel.provider) {
    const matches = names.filter((n) => cfg.profiles[n]!.provider === sel.provider);
    if (matches.length === 1) return { name: matches[0]!, ...cfg.profiles[matches[0]!]! };
    if (matches.length === 0) {
      throw new UsageError(`no ${sel.provider} profile`, { hint: `create one with: mcp-auth bootstrap ${sel.provider}, or mcp-auth profiles add` });
    }
    throw new UsageError(`${matches.length} ${sel.provider} profiles match: ${matches.join(", ")}`, { hint: "pick one with --profile NAME" });
  }
  if (cfg.defaultProfile && cfg.profiles[cfg.defaultProfile]) return { name: cfg.defaultProfile, ...cfg.profiles[cfg.defaultProfile]! };
  if (names.length === 1) return { name: names[0]!, ...cfg.profiles[names[0]!]! };
  if (names.length === 0) {
    throw new UsageError("no profile configured", {
      hint: "create one with: mcp-auth profiles add NAME --issuer URL --client-id ID (or pass --issuer and --client-id)",
    });
  }
  throw new UsageError(`several profiles exist (${names.join(", ")}); say which one`, { hint: "pass --profile NAME or set MCP_AUTH_PROFILE" });
}

/** Fingerprint of a client secret for the cache identity (the file holding it is 0600 and holds a token for it anyway). */
export function secretFingerprint(secret: string): string {
  return fnv1a64(`mcp-auth:${secret}`);
}

/** The parts of a target that identify a cached token. */
export interface CacheIdentity {
  issuer: string;
  clientId: string;
  scopes?: string[];
  resource?: string;
  audience?: string;
  profile: string | null;
  /** Profile-less targets: a fingerprint of the client secret, so a changed secret never reuses a cached token. */
  secretFingerprint?: string;
}

/** Canonical JSON of what a cached token was obtained for; stored with it and compared on every read. */
export function cacheIdentity(t: CacheIdentity): string {
  const id: unknown[] = [normalizeIssuer(t.issuer), t.clientId, [...(t.scopes ?? [])].sort(), t.resource ?? null, t.audience ?? null, t.profile];
  if (t.secretFingerprint) id.push(t.secretFingerprint);
  return JSON.stringify(id);
}

/**
 * The cache entry (file, lock, keychain account) of a target: the profile name for profiles, a hash of
 * the identity for profile-less targets. Not a cryptographic hash on purpose: node:crypto would cost
 * the cached path ~15% of Node's start-up, and a collision could only cause a cache miss, since the
 * stored identity is checked on read.
 */
export function cacheKey(t: CacheIdentity): string {
  if (t.profile) return `p-${t.profile}`;
  return `h-${fnv1a64(cacheIdentity(t))}`;
}

export function fnv1a64(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(text, "utf8")) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
}

export function normalizeIssuer(issuer: string): string {
  return issuer.replace(/\/+$/, "");
}

export function splitScopes(values: string[] | string | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const list = (Array.isArray(values) ? values : [values]).flatMap((v) => v.split(/[\s,]+/)).filter(Boolean);
  return list.length ? [...new Set(list)] : undefined;
}
