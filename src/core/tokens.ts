import type { Context } from "../context.js";
import { AuthError, FileError, UsageError } from "../errors.js";
import { isBearer, tokenProblem } from "../format.js";
import { configure, discover, openid, targetParams, toTokenSet, wrapOAuthError, type TokenSet } from "../oauth/client.js";
import type { ForgetReport, TokenRecord } from "../store/cache.js";
import { clientSecretOf, loginHint, type Target } from "./target.js";
import { federatedToken } from "./federation.js";
import { keyClientAuth, withKeyRollover } from "./keys.js";
import type * as OC from "openid-client";

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

export async function getToken(ctx: Context, t: Target, o: GetTokenOptions): Promise<TokenResult> {
  if (t.staticToken) return staticToken(ctx, t);
  if (o.noCache || t.noCache) return acquire_(ctx, t, o);
  if (!o.forceRefresh) {
    const hit = await cached(ctx, t, o.minTtl);
    if (hit) return hit;
  }
  const startedAt = ctx.now() / 1000;
  let release: () => void;
  try {
    release = await ctx.tokens.lock(t, { onWait: (holder) => ctx.info(`Waiting for another mcp-auth (${holder}) that is getting this token…`) });
  } catch (e) {
    // A read-only or full config dir: client credentials need no state, so the token can still be had,
    // uncached. Anything with a refresh token must not run without its lock (a rotated token would be lost).
    if (!(e instanceof FileError) || t.grant !== "client_credentials") throw e;
    ctx.warn(`${e.message}; getting a token without caching it`);
    return acquire_(ctx, t, o);
  }
  try {
    // Someone may have got a token while we waited for the lock: take it if it is fresh enough, or if
    // it was obtained after we started (asking the IdP again would give nothing better).
    const hit = await cached(ctx, t, 0);
    if (hit && (hit.obtainedAt >= startedAt || (!o.forceRefresh && hit.expires_at - ctx.now() / 1000 >= o.minTtl))) return hit;
    const refreshed = await tryRefresh(ctx, t);
    if (refreshed) return refreshed;
    const got = await acquire_(ctx, t, o);
    try {
      await saveTokens(ctx, t, got);
    } catch (e) {
      if (!(e instanceof FileError) || got.refresh_token) throw e;
      ctx.warn(`the token could not be cached: ${e.message}`);
    }
    return got;
  } finally {
    release();
  }
}

async function acquire_(ctx: Context, t: Target, o: GetTokenOptions): Promise<TokenResult> {
  if (t.enterprise) {
    // The IdP's sign-in (with a browser, once) is the only interactive part: the rest is two token requests.
    const { enterpriseToken } = await import("./enterprise.js");
    return { ...bearerOf(t, await enterpriseToken(ctx, t, { login: o.login, tokens: { getToken, oauthConfig } })), source: "grant" };
  }
  if (t.grant === "client_credentials") return { ...bearerOf(t, await clientCredentials(ctx, t)), source: "grant" };
  if (!o.login) {
    const how = t.grant === "device_code" ? "device code" : "browser";
    // On a terminal, the command is one that does not sign in (doctor): saying "not an interactive terminal" would be false.
    const why = ctx.io.interactive ? `profile "${t.profile}" has no token yet: it needs a login (${how})` : `profile "${t.profile}" needs a login (${how}) and ${ctx.io.notInteractiveBecause ?? "this is not an interactive terminal"}`;
    throw new AuthError(why, { hint: loginHint(t) });
  }
  return { ...bearerOf(t, await o.login(t)), source: "login" };
}

/**
 * The token a target hands out: the access token, or for `useIdToken` (servers fronted by AWS Cognito
 * or AgentCore that check the ID token) the ID token, living until its own `exp` — so the cache
 * refreshes it when it, not the access token, runs out. The refresh token stays as it is.
 */
export function bearerOf(t: Pick<Target, "useIdToken" | "profile">, ts: TokenSet): TokenSet {
  if (!t.useIdToken) return ts;
  const why = !ts.id_token ? "the IdP returned no ID token" : idTokenExp(ts.id_token) === undefined ? "the ID token has no exp claim" : undefined;
  if (why) {
    throw new AuthError(`${why}, and profile${t.profile ? ` "${t.profile}"` : ""} hands out the ID token (--use-id-token)`, {
      hint: "request the openid scope (mcp-auth profiles set NAME --scope \"openid …\"), or drop --use-id-token",
    });
  }
  return { ...ts, access_token: ts.id_token!, expires_at: idTokenExp(ts.id_token!)!, bearer: "id_token" };
}

function idTokenExp(jwt: string): number | undefined {
  try {
    const exp = (JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? Math.floor(exp) : undefined;
  } catch {
    return undefined;
  }
}

export async function oauthConfig(ctx: Context, t: Target, clientAuth?: OC.ClientAuth) {
  // Every endpoint the issuer's metadata names leads no further in than the issuer itself (which
  // the user gave, or which discovery held to the MCP URL the user gave).
  const env = ctx.oauthEnv([t.issuer]);
  // configure() checks fixed endpoints with the same https/loopback rules as discovered ones.
  const metadata = t.endpoints ? { issuer: t.issuer, ...t.endpoints } : await discover(t.issuer, env);
  if (!t.clientId) throw new UsageError(`profile "${t.profile}" has no client id yet`, { hint: `once the IdP has assigned one: mcp-auth profiles set ${t.profile} --client-id ID` });
  // Client authentication: a federated CI token (given), a private key, or the client secret.
  clientAuth ??= await keyClientAuth(ctx, t, metadata);
  const config = await configure(metadata, { clientId: t.clientId, clientSecret: clientAuth ? undefined : await clientSecretOf(ctx, t), authMethod: t.authMethod, clientAuth }, env);
  // An IdP whose token endpoint bends the standard (GitHub: errors in a 200 answer) gets its preset's fix.
  if (t.preset) await (await import("../presets/index.js")).presetTokenFetch(config, t);
  return config;
}

/**
 * A personal API token is a long-lived secret kept in the secret store; it is handed out as it is and
 * never copied into the token cache. It has no expiry we could know: a day from now, like an opaque token.
 */
async function staticToken(ctx: Context, t: Target): Promise<TokenResult> {
  const value = await clientSecretOf(ctx, t);
  if (!value) throw new AuthError(`profile "${t.profile}" has no API token in the secret store`, { hint: loginHint(t) });
  return { access_token: value, token_type: "Bearer", expires_at: Math.floor(ctx.now() / 1000) + 86400, source: "grant" };
}

async function clientCredentials(ctx: Context, t: Target): Promise<TokenSet> {
  if (t.assertion) return federatedToken(ctx, t, (auth) => oauthConfig(ctx, t, auth));
  return withKeyRollover(ctx, t, (k) => secretOrKeyGrant(ctx, k));
}

async function secretOrKeyGrant(ctx: Context, t: Target): Promise<TokenSet> {
  const client = await openid();
  const config = await oauthConfig(ctx, t);
  try {
    return toTokenSet(await client.clientCredentialsGrant(config, targetParams(t)), ctx.now());
  } catch (e) {
    const err = wrapOAuthError(e, `token request to ${t.issuer}`, config);
    // The usual cause: the secret was rotated in the IdP. The easy fix keeps everything else of the profile.
    if (err instanceof AuthError && err.code === "invalid_client" && !err.hint && t.profile && t.secret.from === "store" && !t.key) {
      throw new AuthError(err.message, { code: err.code, cause: err, hint: `if the client secret changed, store the new one: mcp-auth profiles set ${t.profile} --client-secret-stdin` });
    }
    throw err;
  }
}

async function cached(ctx: Context, t: Target, minTtl: number): Promise<(TokenResult & { obtainedAt: number }) | null> {
  const rec = ctx.tokens.record(t);
  if (!rec || rec.expires_at - ctx.now() / 1000 < minTtl) return null;
  // The record holds the other kind of token (`token --use-id-token` on an ordinary profile, or back): a miss, and a refresh.
  if ((rec.bearer === "id_token") !== Boolean(t.useIdToken)) return null;
  let access: string | undefined;
  try {
    access = await ctx.tokens.accessToken(t, rec);
  } catch (e) {
    // The keychain holding it is not usable right now: a cache miss, not a failure.
    ctx.debug(`cached access token unavailable: ${(e as Error).message}`);
  }
  // A cached token that could not be printed (tampered with, or cached before tokens were checked) is a miss.
  if (!access || tokenProblem("access_token", access) || !isBearer(rec.token_type)) return null;
  return { access_token: access, token_type: rec.token_type, expires_at: rec.expires_at, scope: rec.scope, source: "cache", obtainedAt: rec.obtained_at };
}

async function tryRefresh(ctx: Context, t: Target): Promise<TokenResult | null> {
  const rt = await ctx.tokens.refreshToken(t);
  if (!rt) return null;
  const client = await openid();
  const config = await oauthConfig(ctx, t);
  let ts: TokenSet;
  try {
    ts = toTokenSet(await client.refreshTokenGrant(config, rt, targetParams({ resource: t.resource, audience: t.audience })), ctx.now());
    // A refresh answered without an ID token leaves a useIdToken target nothing to hand out: sign in again.
    if (t.useIdToken && !ts.id_token) throw new AuthError(`the IdP answered the refresh without an ID token${t.profile ? ` for profile "${t.profile}"` : ""}, which it hands out (--use-id-token)`, { hint: loginHint(t) });
  } catch (e) {
    const err = wrapOAuthError(e, `refresh at ${t.issuer}`, config);
    if (err instanceof AuthError && err.code === "invalid_grant") {
      // The refresh token is dead: forget this target's tokens (and only these), then start over.
      await forgetTokens(ctx, t);
      if (t.grant === "client_credentials") {
        ctx.debug("the refresh token was refused (invalid_grant); getting a new token with the client credentials");
        return null;
      }
      throw new AuthError(`the IdP refused the refresh token${t.profile ? ` of profile "${t.profile}"` : ""} (invalid_grant), so its cached tokens were cleared`, { hint: loginHint(t), cause: err });
    }
    if (err instanceof AuthError && err.code === "invalid_client" && t.registered) {
      // The server forgot the client mcp-auth registered for itself: its tokens are worthless, and
      // `login` registers a new client (once) before signing in again.
      await forgetTokens(ctx, t);
      throw new AuthError(`the authorization server no longer knows the client mcp-auth registered for profile "${t.profile}" (invalid_client), so its cached tokens were cleared`, { hint: `run: mcp-auth login ${t.profile} (it registers a new client)`, cause: err });
    }
    // Network trouble, a 5xx, anything else: keep the refresh token for the next try.
    throw err;
  }
  // A server that does not rotate returns no new refresh token: keep using the old one.
  const result: TokenResult = { ...bearerOf(t, ts), refresh_token: ts.refresh_token ?? rt, source: "refresh" };
  await saveTokens(ctx, t, result);
  return result;
}

/** Persists a token set: the refresh token (and optionally the access token) to the secret store first, then the cache record. */
export async function saveTokens(ctx: Context, t: Target, ts: TokenSet): Promise<void> {
  await ctx.tokens.save(t, ts);
}

/** A target's stored tokens (for revocation), read where they were written; nothing is removed. */
export async function storedTokens(ctx: Context, t: Target): Promise<{ refreshToken?: string; accessToken?: string; had: boolean }> {
  const rec = ctx.tokens.record(t);
  const refreshToken = await ctx.tokens.refreshToken(t);
  const accessToken = rec ? await ctx.tokens.accessToken(t, rec) : undefined;
  return { refreshToken, accessToken, had: Boolean(rec || refreshToken) };
}

/** Removes a target's cached tokens everywhere (cache record, refresh and access token in every store). */
export async function forgetTokens(ctx: Context, t: Target): Promise<ForgetReport> {
  const report = await ctx.tokens.forget(t);
  for (const f of report.failed) ctx.warn(`could not check or clean a secret store (${f})`);
  return report;
}

/** The cache record of a target, for `status`. Never exposes tokens. */
export function tokenState(ctx: Context, t: Target): TokenRecord | null {
  return ctx.tokens.record(t);
}
