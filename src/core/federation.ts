import { readFileSync } from "node:fs";
import type * as OC from "openid-client";
import type { Context } from "../context.js";
import { AuthError, FileError, McpAuthError, NetworkError, UsageError } from "../errors.js";
import { registerSecret, registerSecretEnv } from "../io/sanitize.js";
import { checkUrl, openid, targetParams, toTokenSet, wrapOAuthError, type TokenSet } from "../oauth/client.js";
import { AddressRefusedError } from "../oauth/http.js";
import { normalizeIssuer, type Federation } from "../profile.js";
import { audiences, decodeToken } from "./decode.js";
import { relativeTime, type Check } from "./checks.js";
import type { Target } from "./target.js";
import { describeSource, parseAssertionSource, type AssertionSource } from "./assertion-source.js";

export { assertionSetting, describeSource, parseAssertionSource, type AssertionSource } from "./assertion-source.js";

/**
 * Identity federation: a CI job proves who it is with the token its platform gives it (a GitHub
 * Actions OIDC token, a GitLab `id_tokens` JWT, a Kubernetes projected service-account token), used
 * either as the client assertion (RFC 7523 §2.2) or as the subject of a token exchange (RFC 8693).
 * The CI token is read fresh for every token request and never stored, cached or printed.
 */
export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const TOKEN_TYPE_JWT = "urn:ietf:params:oauth:token-type:jwt";
const TOKEN_TYPE_ID = "urn:ietf:params:oauth:token-type:id_token";
const TOKEN_TYPE_ACCESS = "urn:ietf:params:oauth:token-type:access_token";

/** `jwt` / `id_token` / `access_token` as RFC 8693 URNs; anything else (OCI's literal `jwt` is the URN's short form) as given. */
export function subjectTokenType(v: string | undefined): string {
  if (!v || v === "jwt") return TOKEN_TYPE_JWT;
  if (v === "id_token") return TOKEN_TYPE_ID;
  if (v === "access_token") return TOKEN_TYPE_ACCESS;
  return v;
}


/**
 * Reads the CI token. GitHub Actions: GET $ACTIONS_ID_TOKEN_REQUEST_URL with `audience`, bearer
 * $ACTIONS_ID_TOKEN_REQUEST_TOKEN, answer `{"value": JWT}` (docs.github.com, "Security hardening with
 * OpenID Connect" → "Methods for requesting the OIDC token"). The audience defaults to the issuer the
 * token is for (RFC 7523 §3: aud identifies the authorization server).
 */
export async function readAssertion(ctx: Context, s: AssertionSource, defaultAudience: string): Promise<string> {
  let token: string;
  if (s.kind === "env") {
    const v = ctx.env[s.name];
    if (!v) throw new UsageError(`no CI token: $${s.name} is not set`, { hint: "GitLab: declare it under id_tokens: in the job; other CIs: export the JWT in that variable" });
    registerSecretEnv(s.name, ctx.env);
    token = v.trim();
  } else if (s.kind === "file") {
    try {
      token = readFileSync(s.path, "utf8").trim(); // re-read every time: projected tokens are rotated on disk
    } catch (e) {
      throw new FileError(`cannot read the CI token file ${s.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { hint: "Kubernetes: mount a projected serviceAccountToken volume with the IdP as audience" });
    }
  } else {
    token = await githubIdToken(ctx, s.audience ?? defaultAudience);
  }
  registerSecret(token);
  const d = decodeToken(token);
  if (d.kind !== "jwt") throw new AuthError(`the CI token from ${describeSource(s)} is not a JWT (${d.why})`);
  const exp = d.claims.exp;
  const now = Math.floor(ctx.now() / 1000);
  if (typeof exp === "number" && exp <= now) {
    throw new AuthError(`the CI token from ${describeSource(s)} expired ${now - exp} s ago (exp ${new Date(exp * 1000).toISOString()})`, {
      hint: s.kind === "file" ? "the kubelet refreshes projected tokens: is the volume still mounted?" : "request a fresh token: CI tokens live minutes",
    });
  }
  return token;
}

async function githubIdToken(ctx: Context, audience: string): Promise<string> {
  const url = ctx.env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const bearer = ctx.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!url || !bearer) {
    throw new UsageError("no GitHub Actions ID token: ACTIONS_ID_TOKEN_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set", {
      hint: "give the job `permissions: id-token: write` (and run it on GitHub Actions)",
    });
  }
  registerSecretEnv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", ctx.env);
  const u = checkUrl(url, "ACTIONS_ID_TOKEN_REQUEST_URL", ctx.allowHttp);
  u.searchParams.set("audience", audience);
  let res: Response;
  try {
    res = await ctx.fetch(u.href, { headers: { authorization: `bearer ${bearer}`, accept: "application/json" } });
  } catch (e) {
    if (e instanceof McpAuthError) throw e;
    throw new NetworkError(`cannot reach the GitHub Actions ID token endpoint (${u.host}): ${(e as Error).message}`);
  }
  const text = await res.text();
  if (res.status === 401 || res.status === 403) throw new AuthError(`the GitHub Actions ID token request was refused (HTTP ${res.status})`, { hint: "the job needs `permissions: id-token: write`" });
  if (!res.ok) throw new NetworkError(`the GitHub Actions ID token endpoint answered HTTP ${res.status}`);
  let value: unknown;
  try {
    value = (JSON.parse(text) as { value?: unknown }).value;
  } catch {
    /* below */
  }
  if (typeof value !== "string" || !value) throw new NetworkError("the GitHub Actions ID token endpoint sent no \"value\"");
  return value;
}

/** The claims a trust is configured on, for error hints and `doctor` (never the token). */
export function trustClaims(token: string): string {
  const d = decodeToken(token);
  if (d.kind !== "jwt") return "";
  const c = d.claims;
  return ["iss", "sub", "aud"].filter((k) => c[k] !== undefined).map((k) => `${k}=${typeof c[k] === "string" ? c[k] : JSON.stringify(c[k])}`).join(", ");
}

function explain(e: unknown, token: string | undefined, t: Target, federation: Federation, limit: { timeout: number }): McpAuthError {
  const err = wrapOAuthError(e, `${federation === "token-exchange" ? "token exchange" : "token request"} at ${t.issuer}`, limit);
  if (!(err instanceof AuthError) || !token) return err;
  const claims = trustClaims(token);
  return new AuthError(err.message, {
    code: err.code,
    cause: err,
    hint: `the IdP must trust this CI identity (${claims})${federation === "client-assertion" ? ` for client ${t.clientId}` : ""}; check with: mcp-auth doctor${t.profile ? ` --profile ${t.profile}` : ""}`,
  });
}

/** A ClientAuth sending the CI token as the client assertion; it is read when the request is made. */
export function assertionClientAuth(ctx: Context, t: Target, seen: { token?: string }): OC.ClientAuth {
  const a = t.assertion!;
  const source = parseAssertionSource(a.from);
  return (async (as: OC.ServerMetadata, client: OC.ClientMetadata, body: URLSearchParams) => {
    seen.token = await readAssertion(ctx, source, String(as.issuer));
    body.set("client_id", client.client_id);
    body.set("client_assertion_type", JWT_BEARER);
    body.set("client_assertion", seen.token);
  }) as unknown as OC.ClientAuth;
}

/**
 * A token with a federated identity. client-assertion: a client_credentials grant authenticated by
 * the CI token. token-exchange: the CI token is the subject_token; the client authenticates as
 * configured (none, or a secret where the IdP insists, e.g. OCI).
 */
export async function federatedToken(ctx: Context, t: Target, config: (clientAuth?: OC.ClientAuth) => Promise<OC.Configuration>): Promise<TokenSet> {
  const a = t.assertion!;
  const client = await openid();
  const seen: { token?: string } = {};
  if (a.federation === "client-assertion") {
    try {
      return noRefresh(toTokenSet(await client.clientCredentialsGrant(await config(assertionClientAuth(ctx, t, seen)), targetParams(t)), ctx.now()));
    } catch (e) {
      throw explain(e, seen.token, t, a.federation, { timeout: ctx.oauthEnv().timeoutMs / 1000 });
    }
  }
  const cfg = await config();
  seen.token = await readAssertion(ctx, parseAssertionSource(a.from), cfg.serverMetadata().issuer);
  const params = {
    ...targetParams(t),
    subject_token: seen.token,
    subject_token_type: subjectTokenType(a.subjectTokenType),
    requested_token_type: TOKEN_TYPE_ACCESS,
  };
  try {
    return noRefresh(toTokenSet(await client.genericGrantRequest(cfg, TOKEN_EXCHANGE, params), ctx.now()));
  } catch (e) {
    throw explain(e, seen.token, t, a.federation, { timeout: ctx.oauthEnv().timeoutMs / 1000 });
  }
}

/** The identity is proved anew with a fresh CI token each time: a refresh token would only be a long-lived secret to keep. */
function noRefresh(ts: TokenSet): TokenSet {
  const { refresh_token: _dropped, ...rest } = ts;
  return rest;
}


/**
 * `doctor` for a federated profile: can the CI token be had here, what does it claim (the values the
 * IdP's trust must match, shown as `decode` would, never the token), and does its issuer publish the
 * keys the IdP needs. Whether the IdP trusts it is the token check that follows.
 */
export async function federationChecks(ctx: Context, t: Target): Promise<Check[]> {
  const a = t.assertion!;
  const source = parseAssertionSource(a.from);
  const checks: Check[] = [];
  let token: string;
  try {
    token = await readAssertion(ctx, source, t.issuer);
  } catch (e) {
    return [{ id: "federation.source", ok: false, status: "fail", what: "CI token", detail: (e as Error).message, fix: (e as McpAuthError).hint ?? "run this inside the CI job" }];
  }
  const d = decodeToken(token);
  const claims = d.kind === "jwt" ? d.claims : {};
  const exp = typeof claims.exp === "number" ? ` expires ${relativeTime(claims.exp - ctx.now() / 1000)}` : "";
  checks.push({ id: "federation.source", ok: true, status: "pass", what: "CI token", detail: `from ${describeSource(source)}: ${trustClaims(token)}${exp} (${a.federation})` });
  const auds = audiences(claims);
  if (a.federation === "client-assertion" && !auds.some((x) => normalizeIssuer(x) === normalizeIssuer(t.issuer) || x.startsWith(`${normalizeIssuer(t.issuer)}/`))) {
    checks.push({ id: "federation.audience", ok: true, status: "warn", what: "CI token audience", detail: `aud ${auds.join(", ") || "(none)"} does not name ${t.issuer}`, fix: "fine if the IdP expects exactly this audience (Entra: api://AzureADTokenExchange); otherwise drop the :AUDIENCE suffix" });
  }
  const iss = typeof claims.iss === "string" ? claims.iss : undefined;
  if (iss) {
    try {
      // The CI token's issuer is the token's say-so: it leads no further in than the profile's issuer.
      const res = await ctx.fetchFrom([t.issuer])(`${normalizeIssuer(iss)}/.well-known/openid-configuration`, { headers: { accept: "application/json" } });
      const jwksUri = res.ok ? ((await res.json()) as { jwks_uri?: unknown }).jwks_uri : undefined;
      if (typeof jwksUri !== "string") throw new Error(`HTTP ${res.status}, no jwks_uri`);
      checks.push({ id: "federation.issuer", ok: true, status: "pass", what: "CI issuer keys", detail: `${iss} publishes ${jwksUri} (the IdP must be able to reach it)` });
    } catch (e) {
      checks.push({ id: "federation.issuer", ok: true, status: "warn", what: "CI issuer keys", detail: e instanceof AddressRefusedError ? e.message : `${iss}/.well-known/openid-configuration: ${(e as Error).message}`, fix: "the IdP verifies the CI token with that issuer's JWKS: give it the keys another way (Kubernetes: the cluster's service-account issuer discovery)" });
    }
  }
  return checks;
}
