import type { Command } from "commander";
import type { Context } from "../context.js";
import { forgetTokens, oauthConfig } from "../core/tokens.js";
import { targetFromProfile } from "../core/target.js";
import { openid, wrapOAuthError } from "../oauth/client.js";
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
      const { refreshToken, accessToken, had } = await forgetTokens(ctx, t);
      if (o.revoke && (refreshToken || accessToken)) {
        const config = await oauthConfig(ctx, t);
        if (!config.serverMetadata().revocation_endpoint) {
          ctx.warn(`${p.issuer} has no revocation endpoint; tokens were only removed locally`);
        } else {
          const client = await openid();
          try {
            if (refreshToken) await client.tokenRevocation(config, refreshToken, { token_type_hint: "refresh_token" });
            if (accessToken) await client.tokenRevocation(config, accessToken, { token_type_hint: "access_token" });
          } catch (e) {
            throw wrapOAuthError(e, "revocation");
          }
          ctx.info(`Revoked the tokens of "${p.name}" at the IdP.`);
        }
      }
      ctx.info(had ? `Logged out of "${p.name}".` : `"${p.name}" had no cached tokens.`);
    }
  });
}
