import type * as OC from "openid-client";
import { openid, wrapOAuthError } from "./client.js";

/** What happened to each token sent for revocation (RFC 7009). */
export interface RevocationOutcome {
  hint: "refresh_token" | "access_token";
  /** revoked; unsupported = the server does not revoke this type (fine for self-contained JWTs); failed. */
  result: "revoked" | "unsupported" | "failed";
  error?: Error;
}

/**
 * Revokes the refresh token first (that ends the grant), then the access token. Never throws: every
 * token gets an outcome, so the caller can say exactly what was and was not revoked.
 *
 * @example
 *   const outcomes = await revokeTokens(config, { refreshToken: rt, accessToken: at });
 *   if (outcomes.some((o) => o.result === "failed")) … // keep the tokens, offer --force
 */
export async function revokeTokens(config: OC.Configuration, tokens: { refreshToken?: string; accessToken?: string }, action = "revocation"): Promise<RevocationOutcome[]> {
  const client = await openid();
  const outcomes: RevocationOutcome[] = [];
  for (const [token, hint] of [[tokens.refreshToken, "refresh_token"], [tokens.accessToken, "access_token"]] as const) {
    if (!token) continue;
    try {
      await client.tokenRevocation(config, token, { token_type_hint: hint });
      outcomes.push({ hint, result: "revoked" });
    } catch (e) {
      const err = wrapOAuthError(e, action, config);
      // RFC 7009 §2.2.1: a server may refuse to revoke a token type (self-contained JWT access tokens,
      // typically); revoking the refresh token already ended the grant.
      outcomes.push({ hint, result: err.code === "unsupported_token_type" ? "unsupported" : "failed", error: err });
    }
  }
  return outcomes;
}
