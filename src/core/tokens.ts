import type { Context } from "../context.js";
import { AuthError, McpAuthError } from "../errors.js";
import { isBearer, tokenProblem } from "../format.js";
import { configure, discover, openid, targetParams, toTokenSet, wrapOAuthError, type TokenSet } from "../oauth/client.js";
import { acquire } from "../store/lock.js";
import { accounts, deleteCachedToken, readCachedToken, writeCachedToken, type CachedToken } from "../store/tokens.js";
import { cacheKey } from "../target.js";
import { clientSecretOf, loginHint, type Target } from "./target.js";

/**
 * The token use case: cache → refresh → acquire, under a per-target lock so that parallel callers
 * make one IdP request between them and a rotating refresh token is spent exactly once.
 */
export interface GetTokenOptions {
  /** Seconds of life a cached token must still have. */
  minTtl: number;
  forceRefresh?: boolean;
  noCache?: boolean;
  /** Run a browser/device login if one is needed (only when a person is there). */
  login?: (t: Target) => Promise<TokenSet>;
}

export interface TokenResult extends TokenSet {
  source: "cache" | "refresh" | "grant" | "login";
}

const memoryCache = new Map<string, { rec: Omit<CachedToken, "identity">; access: string; refresh?: string }>();

export async function getToken(ctx: Context, t: Target, o: GetTokenOptions): Promise<TokenResult> {
  if (o.noCache) return acquire_(ctx, t, o);
  if (!o.forceRefresh) {
    const hit = await cached(ctx, t, o.minTtl);
    if (hit) return hit;
  }
  const startedAt = ctx.now() / 1000;
  const release = await acquire(ctx.paths.locks, cacheKey(t), { onWait: (holder) => ctx.info(`Waiting for another mcp-auth (${holder}) that is getting this token…`) });
  try {
    // Someone may have got a token while we waited for the lock: take it if it is fresh enough, or if
    // it was obtained after we started (asking the IdP again would give nothing better).
    const hit = await cached(ctx, t, 0);
    if (hit && (hit.obtainedAt >= startedAt || (!o.forceRefresh && hit.expires_at - ctx.now() / 1000 >= o.minTtl))) return hit;
    const refreshed = await tryRefresh(ctx, t);
    if (refreshed) return refreshed;
    const got = await acquire_(ctx, t, o);
    await saveTokens(ctx, t, got);
    return got;
  } finally {
    release();
  }
}

async function acquire_(ctx: Context, t: Target, o: GetTokenOptions): Promise<TokenResult> {
  if (t.grant === "client_credentials") return { ...(await clientCredentials(ctx, t)), source: "grant" };
  if (!o.login) {
    throw new AuthError(`profile "${t.profile}" needs a login (${t.grant === "device_code" ? "device code" : "browser"}) and this is not an interactive terminal`, { hint: loginHint(t) });
  }
  return { ...(await o.login(t)), source: "login" };
}

export async function oauthConfig(ctx: Context, t: Target) {
  const env = ctx.oauthEnv();
  const metadata = await discover(t.issuer, env);
  return configure(metadata, { clientId: t.clientId, clientSecret: await clientSecretOf(ctx, t), authMethod: t.authMethod }, env);
}

async function clientCredentials(ctx: Context, t: Target): Promise<TokenSet> {
  const client = await openid();
  const config = await oauthConfig(ctx, t);
  try {
    return toTokenSet(await client.clientCredentialsGrant(config, targetParams(t)), ctx.now());
  } catch (e) {
    throw wrapOAuthError(e, `token request to ${t.issuer}`);
  }
}

async function cached(ctx: Context, t: Target, minTtl: number): Promise<(TokenResult & { obtainedAt: number }) | null> {
  const key = cacheKey(t);
  const mem = memoryCache.get(key);
  const rec = mem?.rec ?? readCachedToken(ctx.paths, t);
  if (!rec || rec.expires_at - ctx.now() / 1000 < minTtl) return null;
  let access = mem?.access ?? rec.access_token;
  if (!access && rec.access_store) {
    try {
      access = (await (await ctx.secretsOf(rec.access_store)).get(accounts.accessToken(key))) ?? undefined;
    } catch (e) {
      // The keychain holding it is not usable right now: a cache miss, not a failure.
      ctx.debug(`cached access token unavailable: ${(e as Error).message}`);
    }
  }
  // A cached token that could not be printed (tampered with, or cached before tokens were checked) is a miss.
  if (!access || tokenProblem("access_token", access) || !isBearer(rec.token_type)) return null;
  return { access_token: access, token_type: rec.token_type, expires_at: rec.expires_at, scope: rec.scope, source: "cache", obtainedAt: rec.obtained_at };
}

async function tryRefresh(ctx: Context, t: Target): Promise<TokenResult | null> {
  const key = cacheKey(t);
  const mem = memoryCache.get(key);
  const rec = mem?.rec ?? readCachedToken(ctx.paths, t);
  if (!rec?.refresh_store) return null;
  const store = await ctx.secretsOf(rec.refresh_store);
  const rt = mem?.refresh ?? (await store.get(accounts.refreshToken(key)));
  if (!rt) return null;
  const client = await openid();
  const config = await oauthConfig(ctx, t);
  let ts: TokenSet;
  try {
    ts = toTokenSet(await client.refreshTokenGrant(config, rt, targetParams({ resource: t.resource, audience: t.audience })), ctx.now());
  } catch (e) {
    const err = wrapOAuthError(e, `refresh at ${t.issuer}`);
    if (err instanceof AuthError && err.code === "invalid_grant") {
      // The refresh token is dead: forget this target's tokens (and only these), then start over.
      await forgetTokens(ctx, t);
      if (t.grant === "client_credentials") {
        ctx.debug("the refresh token was refused (invalid_grant); getting a new token with the client credentials");
        return null;
      }
      throw new AuthError(`the IdP refused the refresh token${t.profile ? ` of profile "${t.profile}"` : ""} (invalid_grant), so its cached tokens were cleared`, { hint: loginHint(t), cause: err });
    }
    // Network trouble, a 5xx, anything else: keep the refresh token for the next try.
    throw err;
  }
  // A server that does not rotate returns no new refresh token: keep using the old one.
  const result: TokenResult = { ...ts, refresh_token: ts.refresh_token ?? rt, source: "refresh" };
  await saveTokens(ctx, t, result);
  return result;
}

/** Persists a token set: the refresh token (and optionally the access token) to the secret store first, then the cache record. */
export async function saveTokens(ctx: Context, t: Target, ts: TokenSet): Promise<void> {
  const key = cacheKey(t);
  const memoryOnly = ctx.forcedStore() === "memory";
  const store = !memoryOnly && (ts.refresh_token || wantsKeychainAccess(ctx)) ? await ctx.secrets() : undefined;
  const rec: Omit<CachedToken, "identity"> = {
    version: 1,
    profile: t.profile,
    issuer: t.issuer,
    clientId: t.clientId,
    token_type: ts.token_type,
    expires_at: ts.expires_at,
    obtained_at: ctx.now() / 1000,
    scope: ts.scope,
  };
  if (memoryOnly) {
    memoryCache.set(key, { rec, access: ts.access_token, refresh: ts.refresh_token });
    return;
  }
  if (ts.refresh_token && store) {
    await store.set(accounts.refreshToken(key), ts.refresh_token);
    rec.refresh_store = store.kind;
  }
  if (store && wantsKeychainAccess(ctx) && store.kind === "keychain") {
    await store.set(accounts.accessToken(key), ts.access_token);
    rec.access_store = store.kind;
  } else {
    rec.access_token = ts.access_token;
  }
  writeCachedToken(ctx.paths, t, rec);
}

function wantsKeychainAccess(ctx: Context): boolean {
  return (ctx.env.MCP_AUTH_ACCESS_TOKEN_STORE ?? ctx.config().settings?.accessTokenStore) === "keychain";
}

/** A target's stored tokens (for revocation), read where they were written; nothing is removed. */
export async function storedTokens(ctx: Context, t: Target): Promise<{ refreshToken?: string; accessToken?: string; had: boolean }> {
  const key = cacheKey(t);
  const mem = memoryCache.get(key);
  const rec = readCachedToken(ctx.paths, t);
  let refreshToken = mem?.refresh;
  let accessToken = mem?.access ?? rec?.access_token;
  if (rec?.refresh_store) refreshToken ??= (await (await ctx.secretsOf(rec.refresh_store)).get(accounts.refreshToken(key))) ?? undefined;
  if (rec?.access_store) accessToken ??= (await (await ctx.secretsOf(rec.access_store)).get(accounts.accessToken(key))) ?? undefined;
  return { refreshToken, accessToken, had: Boolean(rec || mem) };
}

/** Removes a target's cached tokens everywhere (cache record, refresh and access token in their stores). */
export async function forgetTokens(ctx: Context, t: Target): Promise<void> {
  const key = cacheKey(t);
  memoryCache.delete(key);
  const rec = readCachedToken(ctx.paths, t);
  for (const [kind, account] of [
    [rec?.refresh_store, accounts.refreshToken(key)],
    [rec?.access_store, accounts.accessToken(key)],
  ] as const) {
    if (!kind) continue;
    try {
      await (await ctx.secretsOf(kind)).delete(account);
    } catch (e) {
      if (!(e instanceof McpAuthError)) throw e;
      ctx.warn(`could not remove a token from the ${kind} store: ${e.message}`);
    }
  }
  deleteCachedToken(ctx.paths, t);
}

/** The cache record of a target, for `status`. Never exposes tokens. */
export function tokenState(ctx: Context, t: Target): Omit<CachedToken, "identity"> | null {
  return memoryCache.get(cacheKey(t))?.rec ?? readCachedToken(ctx.paths, t);
}
