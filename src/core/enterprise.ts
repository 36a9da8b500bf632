import type { Context } from "../context.js";
import { AuthError, McpAuthError, UsageError } from "../errors.js";
import { registerSecret } from "../io/sanitize.js";
import { openid, toTokenSet, wrapOAuthError, type TokenSet } from "../oauth/client.js";
import { profileOf, type ProfileData } from "../profile.js";
import { targetFromProfile, type Target } from "./target.js";
import type { getToken, oauthConfig } from "./tokens.js";

/**
 * Enterprise-managed authorization (the MCP extension io.modelcontextprotocol/enterprise-managed-
 * authorization; Okta calls it cross-app access), docs/enterprise.md. The user signs in once to the
 * enterprise IdP through an ordinary authorization-code profile of it; for an MCP server whose profile
 * names that IdP, mcp-auth then
 *   1. exchanges the IdP's ID token at the IdP (RFC 8693) for an Identity Assertion JWT Authorization
 *      Grant: requested_token_type id-jag, audience = the MCP authorization server's issuer, resource =
 *      the MCP server (ext-auth spec §4);
 *   2. presents the ID-JAG to the MCP server's authorization server as an RFC 7523 JWT-bearer grant,
 *      authenticating as its client there (§5).
 * No browser after the first sign-in; "refresh" is a new exchange, so no refresh token is kept.
 */
export const ID_JAG = "urn:ietf:params:oauth:token-type:id-jag";
export const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token";
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/** The IdP profile an enterprise profile names, as a target handing out its ID token (the subject token). */
export function idpTarget(ctx: Context, t: Target): Target {
  const name = t.enterprise!.idp;
  const p = profileOf(ctx.config(), name);
  if (!p) throw new UsageError(`profile "${t.profile}" names the enterprise IdP profile "${name}", which does not exist`, { hint: `create it: mcp-auth profiles add ${name} --issuer IDP_URL --client-id ID --grant authorization_code` });
  const ci = ciIdentityProblem(name, p);
  if (ci) throw new UsageError(ci.message, { hint: ci.hint });
  if (p.grant === "client_credentials" || p.enterprise) throw new UsageError(`the enterprise IdP profile "${name}" must sign a person in (authorization code or device code)`);
  if (!p.scopes?.includes("openid")) throw new UsageError(`the enterprise IdP profile "${name}" does not ask for the openid scope, so it gets no ID token to exchange`, { hint: `mcp-auth profiles set ${name} --scope openid ${(p.scopes ?? []).join(" ")}`.trim() });
  // Same scopes as the profile itself: one cache entry and one refresh token for both uses.
  return { ...targetFromProfile({ name, ...p }), useIdToken: true };
}

/**
 * A federated (CI identity) profile cannot be the enterprise IdP profile. The subject of the ID-JAG
 * exchange is "the identity assertion (e.g. the OpenID Connect ID Token or SAML assertion) for the
 * target end-user", from single sign-on (ext-auth §3-§4; draft-ietf-oauth-identity-assertion-authz-grant
 * §4.3), and the IdP checks that its `aud` is the requesting client (§4.3.3). A CI job's token is a
 * workload's, issued by its CI platform: no person signed in, and no ID token of the IdP to exchange.
 * In CI the CI token goes to the MCP server's authorization server itself (docs/enterprise.md).
 */
export function ciIdentityProblem(name: string, p: Pick<ProfileData, "assertion" | "grant">): { message: string; hint: string } | undefined {
  if (!p.assertion || p.grant === "authorization_code" || p.grant === "device_code") return undefined;
  return {
    message: `the enterprise IdP profile "${name}" is a CI identity (the token from ${p.assertion.from}): enterprise-managed authorization exchanges the ID token of a person's sign-in, which a CI token cannot stand in for`,
    hint: "in CI, give the CI token to the MCP server's authorization server itself: mcp-auth profiles add SRV --issuer AS_URL --client-id ID --assertion-from SOURCE",
  };
}

export interface EnterpriseOptions {
  /** Signs the user in to the IdP when it has no (refreshable) ID token; absent = nobody to ask. */
  login?: (t: Target) => Promise<TokenSet>;
  /** core/tokens.ts, which calls this module: handed in rather than imported back. */
  tokens: { getToken: typeof getToken; oauthConfig: typeof oauthConfig };
}

/** An access token for the MCP server through its two legs; each leg's failure says which it was. */
export async function enterpriseToken(ctx: Context, t: Target, o: EnterpriseOptions): Promise<TokenSet> {
  const idp = idpTarget(ctx, t);
  const id = await o.tokens.getToken(ctx, idp, { minTtl: 60, login: o.login }).catch((e: unknown) => {
    throw leg(e, 0, t, idp);
  });
  registerSecret(id.access_token); // the ID token travels in a form body: never in a trace
  const jag = await exchangeForJag(ctx, t, idp, id.access_token, o.tokens.oauthConfig);
  return presentJag(ctx, t, jag, o.tokens.oauthConfig);
}

/** Leg 1: the ID token for an ID-JAG at the IdP (ext-auth §4; draft-ietf-oauth-identity-assertion-authz-grant §4.3). */
export async function exchangeForJag(ctx: Context, t: Target, idp: Target, idToken: string, configOf: typeof oauthConfig): Promise<string> {
  const client = await openid();
  const [idpConfig, asConfig] = await Promise.all([configOf(ctx, idp), configOf(ctx, t)]);
  const audience = String(asConfig.serverMetadata().issuer);
  const resource = t.resource ?? t.enterprise?.mcpUrl;
  const params: Record<string, string> = {
    requested_token_type: ID_JAG,
    audience,
    ...(resource && { resource }),
    ...(t.scopes?.length && { scope: t.scopes.join(" ") }),
    subject_token: idToken,
    subject_token_type: ID_TOKEN_TYPE,
  };
  let res;
  try {
    res = await client.genericGrantRequest(idpConfig, TOKEN_EXCHANGE_GRANT, params);
  } catch (e) {
    throw leg(wrapOAuthError(e, `token exchange at the enterprise IdP ${idp.issuer}`, { timeout: ctx.oauthEnv().timeoutMs / 1000 }), 1, t, idp);
  }
  const issued = (res as { issued_token_type?: unknown }).issued_token_type;
  if (issued !== ID_JAG || typeof res.access_token !== "string" || !res.access_token) {
    throw new AuthError(`the enterprise IdP ${idp.issuer} answered the token exchange with ${typeof issued === "string" ? `a ${issued}` : "no issued_token_type"}, not an ID-JAG`, { hint: "the IdP does not support enterprise-managed authorization (ID-JAG) for this client; ask its administrator" });
  }
  registerSecret(res.access_token);
  return res.access_token;
}

/** Leg 2: the ID-JAG as an RFC 7523 JWT-bearer grant at the MCP server's authorization server (ext-auth §5). */
export async function presentJag(ctx: Context, t: Target, jag: string, configOf: typeof oauthConfig): Promise<TokenSet> {
  const client = await openid();
  const config = await configOf(ctx, t);
  try {
    const res = await client.genericGrantRequest(config, JWT_BEARER_GRANT, { assertion: jag, ...(t.scopes?.length && { scope: t.scopes.join(" ") }) });
    const { refresh_token: _none, ...ts } = toTokenSet(res, ctx.now());
    return ts; // a new exchange replaces a refresh
  } catch (e) {
    throw leg(wrapOAuthError(e, `JWT-bearer grant at ${t.issuer}`, { timeout: ctx.oauthEnv().timeoutMs / 1000 }), 2, t);
  }
}

/** Which leg failed and what fixes it: the sign-in (0), the IdP's exchange (1), the MCP authorization server (2). */
function leg(e: unknown, n: 0 | 1 | 2, t: Target, idp?: Target): unknown {
  if (!(e instanceof McpAuthError)) return e;
  const code = e.code;
  const hints: Record<0 | 1 | 2, string> = {
    0: `sign in to the enterprise IdP first: mcp-auth login --enterprise ${t.enterprise!.idp}`,
    1:
      code === "invalid_target" || code === "access_denied" || code === "unauthorized_client"
        ? `the IdP's administrator has not allowed this client to reach ${t.issuer} (${t.resource ?? t.enterprise?.mcpUrl ?? "the MCP server"}); ask them to grant access`
        : code === "unsupported_grant_type" || code === "invalid_request"
          ? `the IdP ${idp?.issuer} does not offer the ID-JAG token exchange to this client (enterprise-managed authorization / cross-app access must be enabled for it)`
          : code === "invalid_grant"
            ? `the IdP refused the ID token; sign in again: mcp-auth login --enterprise ${t.enterprise!.idp}`
            : `check the IdP profile: mcp-auth doctor --profile ${t.enterprise!.idp}`,
    2:
      code === "invalid_client" || code === "unauthorized_client"
        ? `the MCP authorization server ${t.issuer} does not accept client ${t.clientId} for the JWT-bearer grant; register it there (profiles set ${t.profile} --client-id ID --client-secret-stdin)`
        : code === "invalid_grant"
          ? `${t.issuer} did not accept the ID-JAG: it must trust the enterprise IdP ${idp?.issuer ?? ""} as an issuer, and know client ${t.clientId}`.replace("  ", " ")
          : code === "unsupported_grant_type"
            ? `${t.issuer} does not support the JWT-bearer grant (RFC 7523), so it does not support enterprise-managed authorization`
            : `check with: mcp-auth doctor --profile ${t.profile}`,
  };
  const what = ["signing in to the enterprise IdP", "leg 1 of 2 (ID token → ID-JAG at the enterprise IdP)", "leg 2 of 2 (ID-JAG → access token at the MCP authorization server)"][n];
  const Kind = e.constructor as new (m: string, o: object) => McpAuthError;
  return new Kind(`enterprise-managed authorization, ${what}: ${e.message}`, { cause: e, code, hint: hints[n] });
}
