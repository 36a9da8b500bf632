import type { Paths } from "../paths.js";
import { McpAuthError } from "../errors.js";
import { registerSecret } from "../io/sanitize.js";
import { cacheKey, type CacheIdentity } from "../profile.js";
import { acquire, type LockOptions } from "./lock.js";
import { STORE_KINDS, type SecretStore, type StoreKind } from "./secrets.js";
import { accounts, deleteCachedToken, readCachedToken, writeCachedToken, type CachedToken } from "./tokens.js";

/**
 * The token cache as one repository: for a target it derives, once, the cache key and from it the
 * record file, the lock and the secret-store accounts, and it owns the in-memory backend used when
 * nothing may be persisted (MCP_AUTH_STORE=memory). Use cases above it never compute keys.
 */
export type TokenRecord = Omit<CachedToken, "identity">;

export interface StoredTokens {
  rec: TokenRecord | null;
  accessToken?: string;
  refreshToken?: string;
}

export interface TokensToSave {
  access_token: string;
  token_type: string;
  expires_at: number;
  scope?: string;
  refresh_token?: string;
  /** "id_token": access_token is the ID token (`--use-id-token`). */
  bearer?: "id_token";
}

export interface ForgetReport {
  /** Something was found and removed (a record, a refresh or access token in some store). */
  removed: boolean;
  /** Stores that could not be searched or cleaned, with why. */
  failed: string[];
}

export interface TokenCacheDeps {
  paths: Paths;
  /** The store new secrets go to. */
  secrets(): Promise<SecretStore>;
  /** The store of a kind, without fallback (throws when it is not usable). */
  secretsOf(kind: StoreKind): Promise<SecretStore>;
  /** Nothing may be persisted (memory store forced). */
  memoryOnly(): boolean;
  /** Access tokens go to the keychain too (settings.accessTokenStore / MCP_AUTH_ACCESS_TOKEN_STORE). */
  accessTokensInKeychain(): boolean;
  now(): number; // ms
  /** The clock and pause the lock waits with (default: real time; tests pass a clock they move). */
  lockTiming?: Pick<LockOptions, "now" | "sleep">;
}

export interface TokenCache {
  key(t: CacheIdentity): string;
  /** The cross-process lock of a target (held across read → refresh/login → save). */
  lock(t: CacheIdentity, o?: LockOptions): Promise<() => void>;
  /** The record only (for `status`); never reads a secret store. */
  record(t: CacheIdentity): TokenRecord | null;
  /** The access token, if cached (reading the secret store when it lives there). */
  accessToken(t: CacheIdentity, rec: TokenRecord): Promise<string | undefined>;
  refreshToken(t: CacheIdentity): Promise<string | undefined>;
  save(t: CacheIdentity & { profile: string | null; issuer: string; clientId: string }, ts: TokensToSave): Promise<void>;
  /**
   * Removes a target's tokens everywhere: the record, and the refresh/access token accounts of its key
   * in every store — whatever the record says, so a missing or corrupt record never leaves a live
   * refresh token behind.
   */
  forget(t: CacheIdentity): Promise<ForgetReport>;
  /** Removes a secret account (e.g. a client secret) from every store. */
  purgeAccount(account: string): Promise<ForgetReport>;
}

interface MemoryEntry {
  rec: TokenRecord;
  access: string;
  refresh?: string;
}

export function createTokenCache(d: TokenCacheDeps): TokenCache {
  const memory = new Map<string, MemoryEntry>();

  const cache: TokenCache = {
    key: (t) => cacheKey(t),
    lock: (t, o) => acquire(d.paths.locks, cacheKey(t), { ...d.lockTiming, ...o }),
    record: (t) => memory.get(cacheKey(t))?.rec ?? readCachedToken(d.paths, t),
    async accessToken(t, rec) {
      const key = cacheKey(t);
      const mem = memory.get(key);
      if (mem) return mem.access;
      if (rec.access_token) return rec.access_token;
      if (!rec.access_store) return undefined;
      return (await (await d.secretsOf(rec.access_store)).get(accounts.accessToken(key))) ?? undefined;
    },
    async refreshToken(t) {
      const key = cacheKey(t);
      const mem = memory.get(key);
      if (mem) return mem.refresh;
      const rec = readCachedToken(d.paths, t);
      if (!rec?.refresh_store) return undefined;
      const rt = (await (await d.secretsOf(rec.refresh_store)).get(accounts.refreshToken(key))) ?? undefined;
      registerSecret(rt);
      return rt;
    },
    // Secrets first, then the record that points at them.
    async save(t, ts) {
      const key = cacheKey(t);
      registerSecret(ts.refresh_token);
      const rec = recordOf(t, ts, d.now());
      if (d.memoryOnly()) {
        memory.set(key, { rec, access: ts.access_token, refresh: ts.refresh_token });
        return;
      }
      const keychainAccess = d.accessTokensInKeychain();
      const store = ts.refresh_token || keychainAccess ? await d.secrets() : undefined;
      if (ts.refresh_token && store) {
        await store.set(accounts.refreshToken(key), ts.refresh_token);
        rec.refresh_store = store.kind;
      }
      if (store && keychainAccess && store.kind === "keychain") {
        await store.set(accounts.accessToken(key), ts.access_token);
        rec.access_store = store.kind;
      } else {
        rec.access_token = ts.access_token;
      }
      writeCachedToken(d.paths, t, rec);
    },
    async forget(t) {
      const key = cacheKey(t);
      const hadMemory = memory.delete(key);
      const hadRecord = readCachedToken(d.paths, t) !== null;
      const report = await inEveryStore(d, async (s) => {
        const a = await s.delete(accounts.refreshToken(key));
        const b = await s.delete(accounts.accessToken(key));
        return a || b;
      });
      deleteCachedToken(d.paths, t);
      report.removed ||= hadMemory || hadRecord;
      return report;
    },
    purgeAccount: (account) => inEveryStore(d, (s) => s.delete(account)),
  };
  return cache;
}

/** The cache record of a token response: what `status` shows, and where the secrets went (filled in by save). */
function recordOf(t: CacheIdentity & { profile: string | null; issuer: string; clientId: string }, ts: TokensToSave, nowMs: number): TokenRecord {
  return { version: 1, profile: t.profile, issuer: t.issuer, clientId: t.clientId, token_type: ts.token_type, expires_at: ts.expires_at, obtained_at: nowMs / 1000, scope: ts.scope, ...(ts.bearer && { bearer: ts.bearer }) };
}

/** Runs fn on every store that may hold something of ours; stores that cannot be opened are reported, not fatal. */
async function inEveryStore(d: Pick<TokenCacheDeps, "secretsOf">, fn: (s: SecretStore) => Promise<boolean>): Promise<ForgetReport> {
  const report: ForgetReport = { removed: false, failed: [] };
  for (const kind of STORE_KINDS) {
    let store: SecretStore;
    try {
      store = await d.secretsOf(kind);
    } catch (e) {
      // A keychain that does not exist here cannot hold anything; one that exists but did not answer might.
      const why = (e as Error).message;
      if (!/D-Bus session|not installed|failed to load/.test(why)) report.failed.push(`${kind}: ${why}`);
      continue;
    }
    try {
      if (await fn(store)) report.removed = true;
    } catch (e) {
      if (!(e instanceof McpAuthError)) throw e;
      report.failed.push(`${kind}: ${e.message}`);
    }
  }
  return report;
}
