import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { FileError } from "../errors.js";
import type { Paths } from "../paths.js";
import { writeError, writeFileAtomic } from "./fsutil.js";
import { assertPrivateDir, readPrivateFile } from "./trust.js";
import type { StoreKind } from "./secrets.js";
import { cacheIdentity, cacheKey, type CacheIdentity } from "../profile.js";

/**
 * The token cache. One small 0600 JSON file per target holds the access token and its expiry, so a
 * cached `mcp-auth token` is one file read (the keychain library alone costs more than Node's own
 * start-up). Refresh tokens never go in it: they live in the secret store, and the record says which.
 * With `accessTokenStore: "keychain"` the access token moves to the keychain too.
 */
export interface CachedToken {
  version: 1;
  /** cacheIdentity() of the target: a record found under the right name but for another target is ignored. */
  identity: string;
  profile: string | null;
  issuer: string;
  clientId: string;
  /** Absent when the access token is kept in the secret store instead. */
  access_token?: string;
  token_type: string;
  /** unix seconds */
  expires_at: number;
  obtained_at: number;
  scope?: string;
  /** The store holding this target's refresh token, if it has one. */
  refresh_store?: StoreKind;
  /** The store holding the access token when it is not in this file. */
  access_store?: StoreKind;
  /** "id_token": the token held is the ID token (`--use-id-token`), served only to a target that asks for it. */
  bearer?: "id_token";
}

export function tokenFile(p: Pick<Paths, "tokens">, t: CacheIdentity): string {
  return join(p.tokens, `${cacheKey(t)}.json`);
}

/**
 * The cache is ours and disposable: anything unreadable, or for another target, counts as "no cached
 * token". What is not ours is refused (FileError, exit 5), never served: a config or tokens dir that
 * another account owns or can write to, a record owned by another uid or writable by others, or a
 * symlink in place of the record (opened with O_NOFOLLOW, the owner checked on the opened fd).
 */
export function readCachedToken(p: Pick<Paths, "tokens">, t: CacheIdentity): CachedToken | null {
  assertPrivateDir(dirname(p.tokens));
  assertPrivateDir(p.tokens);
  let text: string | null;
  try {
    text = readPrivateFile(tokenFile(p, t));
  } catch (e) {
    if (e instanceof FileError) throw e;
    return null;
  }
  if (text === null) return null;
  try {
    const rec = JSON.parse(text) as CachedToken;
    return rec && rec.version === 1 && typeof rec.expires_at === "number" && rec.identity === cacheIdentity(t) ? rec : null;
  } catch {
    return null;
  }
}

export function writeCachedToken(p: Pick<Paths, "tokens">, t: CacheIdentity, rec: Omit<CachedToken, "identity">): void {
  writeFileAtomic(tokenFile(p, t), JSON.stringify({ ...rec, identity: cacheIdentity(t) }, null, 2) + "\n", { mode: 0o600, root: dirname(p.tokens) });
}

export function deleteCachedToken(p: Pick<Paths, "tokens">, t: CacheIdentity): void {
  assertPrivateDir(dirname(p.tokens));
  assertPrivateDir(p.tokens);
  try {
    rmSync(tokenFile(p, t), { force: true });
  } catch (e) {
    throw writeError(e, p.tokens);
  }
}

/** Secret-store account names. */
export const accounts = {
  clientSecret: (profile: string) => `client-secret:${profile}`,
  refreshToken: (key: string) => `refresh-token:${key}`,
  accessToken: (key: string) => `access-token:${key}`,
};
