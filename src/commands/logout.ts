import type { Command } from "commander";
import type { Context } from "../context.js";
import { forgetTokens, oauthConfig, storedTokens } from "../core/tokens.js";
import { targetFromProfile, type Target } from "../core/target.js";
import { openid, wrapOAuthError } from "../oauth/client.js";
import { acquire } from "../store/lock.js";
import { cacheKey } from "../target.js";
import { profileFor, withProfileOptions } from "./shared.js";

export function registerLogout(program: Command, getCtx: () => Context): void {
  const cmd = program
    .command("logout [profile]")
    .description("forget a profile's cached tokens (the profile and its client secret stay)")
    .option("--revoke", "also revoke the tokens at the IdP (when it has a revocation endpoint)")
    .option("--all", "log out of every profile");
  withProfileOptions(cmd);
  cmd.action(async (name: string | undefined, o) => {
    const ctx = getCtx();
    const cfg = ctx.config();
    const profiles = o.all ? Object.keys(cfg.profiles).map((n) => ({ name: n, ...cfg.profiles[n]! })) : [profileFor(ctx, o, name)];
    for (const p of profiles) {
      const t = targetFromProfile(p);
      const release = await acquire(ctx.paths.locks, cacheKey(t));
      try {
        const tokens = await storedTokens(ctx, t);
        // Revoke first: if that fails, the tokens stay here so the revocation can be retried.
        if (o.revoke && (tokens.refreshToken || tokens.accessToken)) await revoke(ctx, t, tokens);
        await forgetTokens(ctx, t);
        ctx.info(tokens.had ? `Logged out of "${p.name}".` : `"${p.name}" had no cached tokens.`);
      } finally {
        release();
      }
    }
  });
}

async function revoke(ctx: Context, t: Target, tokens: { refreshToken?: string; accessToken?: string }): Promise<void> {
  const config = await oauthConfig(ctx, t);
  if (!config.serverMetadata().revocation_endpoint) {
    ctx.warn(`${t.issuer} has no revocation endpoint; the tokens are only removed here`);
    return;
  }
  const client = await openid();
  for (const [token, hint] of [[tokens.refreshToken, "refresh_token"], [tokens.accessToken, "access_token"]] as const) {
    if (!token) continue;
    try {
      await client.tokenRevocation(config, token, { token_type_hint: hint });
    } catch (e) {
      const err = wrapOAuthError(e, "revocation");
      // RFC 7009 §2.2.1: a server may refuse to revoke a token type (self-contained JWT access
      // tokens, typically); revoking the refresh token already ended the grant.
      if (err.code !== "unsupported_token_type") throw err;
      ctx.debug(`${hint}: ${err.message}`);
    }
  }
  ctx.info(`Revoked the tokens of "${t.profile}" at the IdP.`);
}
