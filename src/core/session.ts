import { readdirSync } from "node:fs";
import { join } from "node:path";
import { assertPrivateDir, readPrivateFile } from "../store/trust.js";
import type { Context } from "../context.js";
import { McpAuthError, NetworkError } from "../errors.js";
import { revokeTokens, type RevocationOutcome } from "../oauth/revoke.js";
import type { Profile } from "../profile.js";
import { interactiveLogin, type LoginOptions } from "./login.js";
import { targetFromProfile, type Target } from "./target.js";
import { bearerOf, forgetTokens, getToken, oauthConfig, saveTokens, storedTokens, type TokenResult } from "./tokens.js";

/**
 * Sessions: signing in and out. Both hold the target's lock, so a parallel `token` waits for a login
 * in progress instead of starting another, and never reads tokens a logout is removing.
 */
export type LoginResult = { kind: "client_credentials"; token: TokenResult } | { kind: "login"; token: TokenResult };

export async function login(ctx: Context, profile: Profile, o: LoginOptions): Promise<LoginResult> {
  const t = targetFromProfile(profile);
  if (t.grant === "client_credentials") {
    // Nothing to sign in to: check the credentials by getting a fresh token instead.
    return { kind: "client_credentials", token: await getToken(ctx, t, { minTtl: 0, forceRefresh: true }) };
  }
  const run = interactiveLogin(ctx, o);
  const release = await ctx.tokens.lock(t);
  try {
    const tokens = bearerOf(t, await run(t));
    await saveTokens(ctx, t, tokens);
    return { kind: "login", token: { ...tokens, source: "login" } };
  } finally {
    release();
  }
}

export interface LogoutOptions {
  revoke?: boolean;
  /** Forget the tokens here even when they could not be revoked. */
  force?: boolean;
  /** Asked when revocation failed and --force was not given; absent = nobody to ask (keep the tokens). */
  confirmForget?: (profile: string, failed: string) => Promise<boolean>;
}

export interface LogoutResult {
  profile: string;
  /** Tokens were found (and, unless kept, removed). */
  had: boolean;
  /** Revocation: per-token outcomes, "no-endpoint", or absent when not asked for / nothing to revoke. */
  revocation?: RevocationOutcome[] | "no-endpoint";
  /** The tokens were removed from this machine. */
  forgotten: boolean;
  /** Revocation failed and the tokens were kept. */
  error?: McpAuthError;
  /** Stores that could not be searched. */
  unchecked: string[];
}

export async function logout(ctx: Context, profile: Profile, o: LogoutOptions): Promise<LogoutResult> {
  const t = targetFromProfile(profile);
  const release = await ctx.tokens.lock(t);
  try {
    const tokens = await storedTokens(ctx, t);
    const result: LogoutResult = { profile: profile.name, had: tokens.had, forgotten: false, unchecked: [] };
    if (o.revoke && (tokens.refreshToken || tokens.accessToken)) {
      // Revoke first: if that fails, the tokens stay here so the revocation can be retried.
      const failure = await revoke(ctx, t, tokens, result);
      if (failure) {
        const forget = o.force || (o.confirmForget ? await o.confirmForget(profile.name, failure.message) : false);
        if (!forget) {
          result.error = failure;
          return result;
        }
      }
    }
    const report = await forgetTokens(ctx, t);
    // Tokens a provider exchanged from this session (an OCI session token) go with it.
    for (const p of ctx.plugins.providers) for (const id of p.forget?.({ name: profile.name, issuer: t.issuer, clientId: t.clientId }).tokens ?? []) await ctx.tokens.forget(id);
    result.had ||= report.removed;
    result.forgotten = true;
    result.unchecked = report.failed;
    return result;
  } finally {
    release();
  }
}

async function revoke(ctx: Context, t: Target, tokens: { refreshToken?: string; accessToken?: string }, result: LogoutResult): Promise<McpAuthError | undefined> {
  let config;
  try {
    config = await oauthConfig(ctx, t);
  } catch (e) {
    const err = e instanceof McpAuthError ? e : new NetworkError((e as Error).message, { cause: e });
    result.revocation = [
      ...(tokens.refreshToken ? [{ hint: "refresh_token" as const, result: "failed" as const, error: err }] : []),
      ...(tokens.accessToken ? [{ hint: "access_token" as const, result: "failed" as const, error: err }] : []),
    ];
    return err;
  }
  if (!config.serverMetadata().revocation_endpoint) {
    result.revocation = "no-endpoint";
    return undefined;
  }
  result.revocation = await revokeTokens(config, tokens, `revocation at ${t.issuer}`);
  const failed = result.revocation.find((r) => r.result === "failed");
  if (!failed) return undefined;
  return failed.error instanceof McpAuthError ? failed.error : new NetworkError(failed.error?.message ?? "revocation failed");
}

/** A token cached for a profile-less (CI) target: what `status` can say about it, never the token. */
export interface ProfilelessToken {
  issuer: string;
  clientId: string;
  scopes: string[];
  resource: string | null;
  audience: string | null;
  expires_at: number;
  scope?: string;
}

/**
 * The cache records of profile-less targets (`token --issuer … --client-id …`), so `status` shows every
 * token this machine holds. A record we cannot read or do not trust is skipped here: `token` reports it.
 */
export function profilelessTokens(ctx: Context): ProfilelessToken[] {
  let names: string[];
  try {
    assertPrivateDir(ctx.paths.tokens);
    names = readdirSync(ctx.paths.tokens).filter((n) => /^h-[0-9a-f]{16}\.json$/.test(n)).sort();
  } catch {
    return [];
  }
  const found: ProfilelessToken[] = [];
  for (const n of names) {
    try {
      const rec = JSON.parse(readPrivateFile(join(ctx.paths.tokens, n)) ?? "null") as { version?: number; profile?: unknown; identity?: string; expires_at?: unknown; scope?: string } | null;
      if (!rec || rec.version !== 1 || rec.profile !== null || typeof rec.expires_at !== "number" || typeof rec.identity !== "string") continue;
      // cacheIdentity(): [issuer, clientId, scopes, resource, audience, profile, secret fingerprint]
      const [issuer, clientId, scopes, resource, audience] = JSON.parse(rec.identity) as [string, string, string[], string | null, string | null];
      if (typeof issuer !== "string" || typeof clientId !== "string") continue;
      found.push({ issuer, clientId, scopes: Array.isArray(scopes) ? scopes : [], resource: resource ?? null, audience: audience ?? null, expires_at: rec.expires_at, scope: rec.scope });
    } catch {
      continue;
    }
  }
  return found;
}
