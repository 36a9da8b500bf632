import { closeSync, openSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { FileError, UsageError } from "./errors.js";
import { withScheme } from "./core/inputs.js";
import { migrateConfig } from "./store/config-version.js";
import { assertPrivateDir, assertTrustedFd } from "./store/trust.js";

/**
 * Profiles and "targets". A target is everything needed to get one token: issuer, client, grant,
 * scopes, resource/audience. A profile is a named, saved target; profile-less CI calls build an
 * ad-hoc target from flags. This module only uses node built-ins: the cached-token fast path
 * (src/fast.ts) loads it.
 */

export const GRANTS = ["client_credentials", "authorization_code", "device_code"] as const;
export type Grant = (typeof GRANTS)[number];
/** The grants in plain words, for the wizard's lists (flags and files keep the grant's name). */
export const GRANT_WORDS: Readonly<Record<Grant, string>> = {
  client_credentials: "machine-to-machine (client credentials: CI, services)",
  authorization_code: "people, signing in with a browser (authorization code + PKCE)",
  device_code: "people, signing in on another device (device code)",
};
export const AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"] as const;
export type TokenAuthMethod = (typeof AUTH_METHODS)[number] | "private_key_jwt";

// ---- Keys and identity federation (RFC 7523, RFC 8693) -------------------------------------------
export const KEY_ALGS = ["ES256", "RS256"] as const;
export type KeyAlg = (typeof KEY_ALGS)[number];
export const FEDERATIONS = ["client-assertion", "token-exchange"] as const;
export type Federation = (typeof FEDERATIONS)[number];

/** A private_key_jwt signing key: its private half is in the secret store, never in the config. */
export interface KeyRef {
  /** The RFC 7638 thumbprint: names the key in the secret store. */
  kid: string;
  /** The assertion's `kid` header when it is not the thumbprint (imported or renamed keys); null: none. */
  keyId?: string | null;
  alg: KeyAlg;
  store: "keychain" | "file" | "memory";
}

export interface ProfileKey extends KeyRef {
  /** The public JWK to register at the IdP (public members only). */
  publicJwk: Record<string, unknown>;
  /** The assertion's `aud`: the issuer identifier (default; RFC 7523bis, oidc-provider, Keycloak) or the token endpoint URL (Okta). */
  audience?: "token-endpoint";
  /** After `profiles rotate-key`: the key in use before, kept until the new one has earned a token. */
  previous?: KeyRef;
}

/** Identity federation: the CI's own token replaces a client secret. */
export interface ProfileAssertion {
  /** github-actions[:AUDIENCE] | env:VAR | file:PATH (a place to read the token from, never the token). */
  from: string;
  federation: Federation;
  /** RFC 8693 subject_token_type for token exchange (default urn:ietf:params:oauth:token-type:jwt). */
  subjectTokenType?: string;
}

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
  /** Extra authorization-request parameters (`--authorize-param`; src/oauth/authorize-params.ts). */
  authorizeParams?: Record<string, string>;
  mcpUrl?: string;
  redirectPort?: number;
  /** An exact loopback redirect URI registered at the IdP (replaces redirectPort; src/oauth/redirect-uri.ts). */
  redirectUri?: string;
  tokenEndpointAuthMethod?: TokenAuthMethod;
  /** Hand out the ID token instead of the access token (servers behind AWS Cognito / AgentCore); its own exp drives refresh. */
  useIdToken?: boolean;
  /** Enterprise-managed authorization (ID-JAG): tokens come through this IdP profile's sign-in (src/core/enterprise.ts). */
  enterprise?: { idp: string };
  /** Which secret store holds this profile's client secret, if it has one. */
  secretStore?: "keychain" | "file" | "memory";
  /**
   * The client secret is what this command prints (`--client-secret-cmd`), run without a shell for
   * every token request; it is never stored. Run only from a private config (src/store/trust.ts).
   */
  clientSecretCommand?: string[];
  /** private_key_jwt client authentication with this key. */
  key?: ProfileKey;
  /** Identity federation: where the CI token comes from and how it is used. */
  assertion?: ProfileAssertion;
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

/**
 * Profile names become file names (`tokens/p-NAME.json`, `locks/p-NAME.lock`) and keychain accounts,
 * so they are checked wherever they come from, config.json included: no "/", "..", leading dot or
 * underscore (so never `__proto__`), at most 64 characters.
 */
export const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isProfileName(name: string): boolean {
  return PROFILE_NAME.test(name);
}

/**
 * The profiles map has no prototype, so names such as `constructor` or `toString` are ordinary
 * profiles and never inherited members; reads still use Object.hasOwn (see profileOf).
 */
export function profileMap(entries: Iterable<[string, ProfileData]> = []): Record<string, ProfileData> {
  const m = Object.create(null) as Record<string, ProfileData>;
  for (const [k, v] of entries) m[k] = v;
  return m;
}

/** The profile called `name`, if there is one (own properties only). */
export function profileOf(cfg: Pick<Config, "profiles">, name: string): ProfileData | undefined {
  return Object.hasOwn(cfg.profiles, name) ? cfg.profiles[name] : undefined;
}

export function emptyConfig(): Config {
  return { version: 1, profiles: profileMap() };
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
    if (!isProfileName(name)) throw refuse(`invalid profile name ${JSON.stringify(name)} (use letters, digits, ".", "_" or "-", max 64)`);
    if (!p || typeof p !== "object") throw refuse(`profile "${name}" is not an object`);
    for (const key of ["provider", "issuer", "clientId", "grant"] as const) {
      // A key-only profile may wait for the client id the IdP assigns once it has seen the key.
      if (key === "clientId" && p.key && p.clientId === "") continue;
      if (typeof p[key] !== "string" || !p[key]) throw refuse(`profile "${name}" has no "${key}"`);
    }
    if (!(GRANTS as readonly string[]).includes(p.grant)) throw refuse(`profile "${name}" has an unknown grant "${p.grant}"`);
    if (p.scopes !== undefined && !(Array.isArray(p.scopes) && p.scopes.every((x) => typeof x === "string"))) throw refuse(`profile "${name}": "scopes" must be a list of strings`);
    const cmd = p.clientSecretCommand;
    if (cmd !== undefined && !(Array.isArray(cmd) && cmd.length > 0 && cmd.every((x) => typeof x === "string") && cmd[0] !== "")) throw refuse(`profile "${name}": "clientSecretCommand" must be a non-empty list of strings (the command and its arguments)`);
  }
  if (cfg.defaultProfile !== undefined && typeof cfg.defaultProfile !== "string") throw refuse('"defaultProfile" must be a string');
  return { ...cfg, version: 1, profiles: profileMap(Object.entries(cfg.profiles ?? {})) };
}

/**
 * Reads config.json. The config dir and the file must be ours and not writable by others (checked on
 * the opened fd, with one fstat), or the file is refused (exit 5): a planted config could point a
 * profile at another issuer.
 */
export function readConfigSync(file: string): Config {
  assertPrivateDir(dirname(file));
  let text: string;
  let fd: number;
  try {
    // A symlinked config.json (dotfiles) is followed: what it points at is what fstat checks.
    fd = openSync(file, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return emptyConfig();
    throw new FileError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    assertTrustedFd(file, fd);
    text = readFileSync(fd, "utf8");
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError(`cannot read ${file}: ${(e as Error).message}`);
  } finally {
    closeSync(fd);
  }
  return parseConfig(text, file);
}

export interface Selector {
  profile?: string;
  provider?: string;
}

/** `login 127.0.0.1:8080/mcp` or `login mcp.example.com`: a server's address without its scheme, taken for a profile's name. */
function serverWithoutScheme(name: string): string | undefined {
  if (!/[.:/]/.test(name)) return undefined;
  const url = withScheme(name);
  return url ? `for the server at that address, give its URL with the scheme: mcp-auth login ${url}` : undefined;
}

/** The easy first step when there is no profile at all (the error reporter puts the command in the form that runs from here). */
export const NO_PROFILE_YET = "set one up with: mcp-auth init, or mcp-auth login <mcp-url>";

/**
 * Picks the profile a command acts on: --profile (or MCP_AUTH_PROFILE), else the only profile of
 * --provider KIND, else the default profile, else the only profile there is.
 */
export function selectProfile(cfg: Config, sel: Selector, env: NodeJS.ProcessEnv = process.env): Profile {
  const names = Object.keys(cfg.profiles);
  const name = sel.profile ?? (sel.provider ? undefined : env.MCP_AUTH_PROFILE);
  if (name) {
    const p = profileOf(cfg, name);
    if (!p) {
      throw new UsageError(`no profile named "${name}"`, {
        hint: serverWithoutScheme(name) ?? (names.length ? `known profiles: ${names.join(", ")}` : NO_PROFILE_YET),
      });
    }
    if (sel.provider && p.provider !== sel.provider) {
      throw new UsageError(`profile "${name}" is a ${p.provider} profile, not ${sel.provider}`);
    }
    return { name, ...p };
  }
  if (sel.provider) {
    const matches = names.filter((n) => profileOf(cfg, n)!.provider === sel.provider);
    if (matches.length === 1) return { name: matches[0]!, ...profileOf(cfg, matches[0]!)! };
    if (matches.length === 0) {
      throw new UsageError(`no ${sel.provider} profile`, { hint: `create one with: mcp-auth bootstrap ${sel.provider}, or mcp-auth profiles add` });
    }
    throw new UsageError(`${matches.length} ${sel.provider} profiles match: ${matches.join(", ")}`, { hint: "pick one with --profile NAME" });
  }
  const def = cfg.defaultProfile ? profileOf(cfg, cfg.defaultProfile) : undefined;
  if (def) return { name: cfg.defaultProfile!, ...def };
  if (names.length === 1) return { name: names[0]!, ...profileOf(cfg, names[0]!)! };
  if (names.length === 0) {
    throw new UsageError("no profile configured", { hint: `${NO_PROFILE_YET}; or pass --issuer and --client-id` });
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
