import { join } from "node:path";
import type * as OC from "openid-client";
import { AuthError, McpAuthError, NetworkError, UsageError } from "../errors.js";
import { isBearer, tokenProblem, tokenTypeName, type TokenField } from "../format.js";
import { writeFileAtomic } from "../store/fsutil.js";
import { readPrivateFile } from "../store/trust.js";
import { fnv1a64, type TokenAuthMethod } from "../profile.js";
import type { Fetch } from "./http.js";
import type { AuthServerEnv } from "./discovery.js";
import { checkMetadata, checkResource, checkUrl, ENDPOINTS, type ServerMetadata } from "./urls.js";

/**
 * Data-first wrappers over openid-client: discovery (cached on disk), a Configuration per client,
 * and one place that turns openid-client's errors into ours.
 */
export type { ServerMetadata } from "./urls.js";
// The URL rules live in ./urls.js (discovery needs them without the rest of this module).
export { checkMetadata, checkResource, checkUrl, displayUrl, ENDPOINTS, type UrlKind } from "./urls.js";

export interface OAuthEnv {
  fetch: Fetch;
  /** The IdP modules, for the metadata quirks they declare (oauth/discovery.ts). */
  plugins: AuthServerEnv["plugins"];
  /** Directory for cached discovery documents. */
  discoveryDir: string;
  /** Seconds a discovery document stays fresh. */
  discoveryTtl: number;
  allowHttp: boolean;
  now: () => number; // ms
  /** The per-request limit (--timeout); openid-client gets the same one instead of its own 30 s. */
  timeoutMs: number;
}

let oc: typeof OC | undefined;
/** openid-client, imported on first use (simple commands never pay for it). */
export async function openid(): Promise<typeof OC> {
  return (oc ??= await import("openid-client"));
}

/**
 * The fetch openid-client uses: ours, plus two guards. Every request URL follows the https/loopback
 * rule (whatever switch openid-client has on), and an abort by openid-client's own timer reads as
 * the timeout it is rather than "cannot reach".
 */
function guardedFetch(env: OAuthEnv): Fetch {
  return async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    try {
      checkUrl(url, "a request", env.allowHttp, "endpoint");
    } catch (e) {
      throw new NetworkError(`refusing a request the server's metadata led to: ${(e as Error).message}`, { cause: e, hint: "fix the server, or pass --allow-http if you really mean it" });
    }
    try {
      return await env.fetch(input, init);
    } catch (e) {
      const reason = init?.signal?.aborted ? (init.signal.reason as { name?: string } | undefined) : undefined;
      if (reason?.name === "TimeoutError" && !(e instanceof NetworkError && /timed out/.test(e.message))) throw timeoutError(new URL(url).host, env.timeoutMs, e);
      throw e;
    }
  };
}

function timeoutError(host: string, timeoutMs: number, cause: unknown): NetworkError {
  return new NetworkError(`request to ${host} timed out after ${timeoutMs / 1000}s`, { cause, hint: "is the server up? raise the limit with --timeout SECONDS" });
}

interface DiscoveryRecord {
  fetched_at: number;
  issuer: string;
  metadata: ServerMetadata;
}

/**
 * The discovery cache file of an issuer, also read by the token fast path (src/fast-fetch.ts). Named by
 * a non-cryptographic hash, as cacheKey() names token records: node:crypto would cost that path ~3 ms
 * before its request, and a collision could only cause a miss, since the stored issuer is checked on read.
 */
export function discoveryFile(dir: string, issuer: string): string {
  return join(dir, `i-${fnv1a64(issuer)}.json`);
}

/**
 * The issuer's metadata: OpenID discovery first, then RFC 8414. Cached for `discoveryTtl` seconds so a
 * warm token request costs exactly one HTTP request.
 */
export async function discover(issuer: string, env: OAuthEnv, opts: { refresh?: boolean } = {}): Promise<ServerMetadata> {
  const url = checkUrl(issuer, "the issuer", env.allowHttp, "issuer");
  const file = discoveryFile(env.discoveryDir, issuer);
  if (!opts.refresh) {
    try {
      const rec = JSON.parse(readPrivateFile(file) ?? "null") as DiscoveryRecord; // a planted or foreign cache is ignored
      if (rec.issuer === issuer && env.now() - rec.fetched_at < env.discoveryTtl * 1000) {
        checkMetadata(rec.metadata, env.allowHttp);
        return rec.metadata;
      }
    } catch {
      /* no usable cache */
    }
  }
  const client = await openid();
  const options = {
    execute: url.protocol === "http:" ? [client.allowInsecureRequests] : [],
    [client.customFetch]: guardedFetch(env) as never,
    timeout: env.timeoutMs / 1000,
  };
  let config: OC.Configuration;
  try {
    config = await client.discovery(url, "discovery", undefined, undefined, { ...options, algorithm: "oidc" }).catch((e: unknown) => declaredConfig(env, issuer, e));
  } catch (e) {
    // Not an OpenID provider? Try RFC 8414 before giving up (many OAuth/MCP servers only publish that).
    if (!isStatus(e, 404)) throw wrapOAuthError(e, `discovery at ${issuer}`, { timeout: env.timeoutMs / 1000 });
    try {
      config = await client.discovery(url, "discovery", undefined, undefined, { ...options, algorithm: "oauth2" });
    } catch (e2) {
      if (!isStatus(e2, 404) || url.pathname === "/") throw wrapOAuthError(e2, `discovery at ${issuer}`, { timeout: env.timeoutMs / 1000 });
      // An issuer with a path may publish only the OIDC path-insertion form, the one the MCP spec's
      // order has and openid-client does not try (docs/mcp-authorization.md).
      const { fetchAuthServerMetadata } = await import("./discovery.js");
      const found = await fetchAuthServerMetadata(env, issuer).catch(() => {
        throw wrapOAuthError(e2, `discovery at ${issuer}`, { timeout: env.timeoutMs / 1000 });
      });
      if (found.proxiedBy) throw wrapOAuthError(e2, `discovery at ${issuer}`, { timeout: env.timeoutMs / 1000 });
      config = new client.Configuration(found.metadata, "discovery");
    }
  }
  const metadata = config.serverMetadata();
  // Before caching: a document we cannot use must not keep failing runs after the server is fixed.
  checkMetadata(metadata, env.allowHttp);
  try {
    writeFileAtomic(file, JSON.stringify({ fetched_at: env.now(), issuer, metadata } satisfies DiscoveryRecord), { mode: 0o600 });
  } catch {
    /* a read-only config dir only costs us the cache */
  }
  return metadata;
}

/**
 * openid-client refused metadata naming another issuer: that stands, unless a provider declares it
 * as its IdP's documented behaviour (docs/idp/oci.md). Nothing the document names is fetched.
 */
async function declaredConfig(env: OAuthEnv, issuer: string, e: unknown): Promise<OC.Configuration> {
  if ((e as { code?: string }).code !== "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED") throw e;
  const { fetchAuthServerMetadata } = await import("./discovery.js");
  const found = await fetchAuthServerMetadata(env, issuer, { followNamed: false }).catch((e2: unknown) => {
    throw (e2 as McpAuthError).code === "metadata_refused" ? e2 : wrapOAuthError(e, `discovery at ${issuer}`, { timeout: env.timeoutMs / 1000 });
  });
  if (!found.quirk) throw wrapOAuthError(e, `discovery at ${issuer}`, { timeout: env.timeoutMs / 1000 });
  return new (await openid()).Configuration(found.metadata, "discovery");
}

function isStatus(e: unknown, status: number): boolean {
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Response && cause.status === status;
}

export interface ClientSpec {
  clientId: string;
  clientSecret?: string;
  authMethod?: TokenAuthMethod;
  /** A client authentication built elsewhere (private_key_jwt, a federated client assertion). */
  clientAuth?: OC.ClientAuth;
}

/** An openid-client Configuration for one client of a discovered server. */
export async function configure(metadata: ServerMetadata, spec: ClientSpec, env: OAuthEnv): Promise<OC.Configuration> {
  const client = await openid();
  let auth: OC.ClientAuth;
  const method = spec.authMethod ?? defaultAuthMethod(metadata, spec.clientSecret);
  if (spec.clientAuth) auth = spec.clientAuth;
  else if (method === "none" || method === "private_key_jwt" || !spec.clientSecret) auth = client.None();
  else if (method === "client_secret_post") auth = client.ClientSecretPost(spec.clientSecret);
  else auth = client.ClientSecretBasic(spec.clientSecret);
  checkMetadata(metadata, env.allowHttp);
  const config = new client.Configuration(metadata, spec.clientId, undefined, auth);
  config[client.customFetch] = guardedFetch(env) as never;
  config.timeout = env.timeoutMs / 1000;
  // Safe only because checkMetadata passed every endpoint, and guardedFetch checks every request.
  if (ENDPOINTS.some((f) => typeof metadata[f] === "string" && new URL(metadata[f] as string).protocol === "http:")) client.allowInsecureRequests(config);
  return config;
}

/** RFC 6749 says servers must support HTTP Basic; use POST only when the server says it wants that. */
function defaultAuthMethod(metadata: ServerMetadata, secret: string | undefined): TokenAuthMethod {
  if (!secret) return "none";
  const supported = metadata.token_endpoint_auth_methods_supported;
  if (supported && !supported.includes("client_secret_basic") && supported.includes("client_secret_post")) return "client_secret_post";
  return "client_secret_basic";
}

export interface TokenSet {
  access_token: string;
  token_type: string;
  /** unix seconds */
  expires_at: number;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
  /** "id_token": access_token holds the ID token (`--use-id-token`; src/core/tokens.ts bearerOf). */
  bearer?: "id_token";
}

/** Longest we trust a lifetime we cannot check (an opaque token): a day, whatever expires_in says. */
export const MAX_OPAQUE_LIFETIME = 24 * 3600;

/**
 * Normalises a token endpoint response, refusing (exit 3, naming the field, never the value) what we
 * could not safely cache or print: a token type other than Bearer, tokens outside the RFC 6750
 * b64token syntax (refresh and ID tokens: visible ASCII), or longer than 64 KB. The lifetime is
 * expires_in (unknown when absent, negative or not a number: then the JWT's exp, else 5 minutes),
 * never beyond the JWT's exp, and at most MAX_OPAQUE_LIFETIME for a token without one.
 */
export function toTokenSet(res: OC.TokenEndpointResponse, nowMs: number): TokenSet {
  const malformed = (why: string) => new NetworkError(`malformed response from the token endpoint: ${why}`);
  const type = typeof res.token_type === "string" ? res.token_type : undefined;
  if (!isBearer(type)) throw malformed(`unsupported token type "${tokenTypeName(type!)}" (mcp-auth supports Bearer tokens only)`);
  for (const field of ["access_token", "refresh_token", "id_token"] as TokenField[]) {
    if (field !== "access_token" && res[field] === undefined) continue;
    const problem = tokenProblem(field, res[field]);
    if (problem) throw malformed(problem);
  }
  const now = Math.floor(nowMs / 1000);
  const exp = jwtExp(res.access_token);
  const expiresIn = typeof res.expires_in === "number" && Number.isFinite(res.expires_in) && res.expires_in >= 0 ? res.expires_in : undefined;
  let expiresAt = expiresIn !== undefined ? now + expiresIn : (exp ?? now + 300);
  expiresAt = Math.floor(Math.min(expiresAt, exp ?? now + MAX_OPAQUE_LIFETIME));
  return {
    access_token: res.access_token,
    token_type: "Bearer",
    expires_at: expiresAt,
    scope: res.scope,
    refresh_token: res.refresh_token,
    id_token: res.id_token,
  };
}

function jwtExp(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** Extra token-request parameters for a target (RFC 8707 resource, non-standard audience). */
export function targetParams(t: { scopes?: string[]; resource?: string; audience?: string }): Record<string, string> {
  const p: Record<string, string> = {};
  if (t.scopes?.length) p.scope = t.scopes.join(" ");
  if (t.resource) {
    checkResource(t.resource, "the resource");
    p.resource = t.resource;
  }
  if (t.audience) p.audience = t.audience;
  return p;
}

/**
 * Turns whatever openid-client (or our fetch) threw into one of our typed errors. `limit`: the
 * openid-client Configuration (or anything with its `timeout`, in seconds) the request ran with, so
 * a timeout names the limit it hit.
 */
export function wrapOAuthError(e: unknown, action: string, limit?: { timeout?: number }): McpAuthError {
  for (let c: unknown = e; c; c = (c as { cause?: unknown }).cause) {
    if (c instanceof McpAuthError) return c;
  }
  const err = e as { name?: string; code?: string; error?: string; error_description?: string; status?: number; message?: string; cause?: unknown };
  if (err.name === "WWWAuthenticateChallengeError" && Array.isArray(err.cause)) {
    // A 401 whose reason is in the WWW-Authenticate header (RFC 6750 / RFC 6749 §5.2 with Basic).
    const params = (err.cause as Array<{ parameters?: Record<string, string> }>).find((c) => c.parameters?.error)?.parameters ?? {};
    const desc = params.error_description ? `: ${params.error_description}` : "";
    return new AuthError(`${action} refused: ${params.error ?? `HTTP ${err.status}`}${desc}`, { cause: e, code: params.error });
  }
  if (err.name === "ResponseBodyError" || err.name === "AuthorizationResponseError") {
    const desc = err.error_description ? `: ${err.error_description}` : "";
    const msg = `${action} refused: ${err.error}${desc}`;
    if ((err.status ?? 400) >= 500 || err.error === "server_error" || err.error === "temporarily_unavailable") return new NetworkError(msg, { cause: e, code: err.error });
    return new AuthError(msg, { cause: e, code: err.error });
  }
  const cause = err.cause;
  if (cause instanceof Response) {
    const ct = cause.headers.get("content-type") ?? "no content-type";
    const from = new URL(cause.url || "http://unknown").host;
    const what = cause.ok ? `expected JSON, got HTTP ${cause.status} (${ct})` : `HTTP ${cause.status} (${ct})`;
    return new NetworkError(`${action} failed: ${what} from ${from}`, { cause: e, code: err.code });
  }
  switch (err.code) {
    case "OAUTH_RESPONSE_IS_NOT_JSON":
    case "OAUTH_PARSE_ERROR":
    case "OAUTH_INVALID_RESPONSE":
    case "OAUTH_RESPONSE_IS_NOT_CONFORM":
      return new NetworkError(`${action} failed: malformed response (${detail(e)})`, { cause: e, code: err.code });
    case "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED":
      return new NetworkError(`${action} failed: ${detail(e)}`, {
        cause: e,
        code: err.code,
        hint: "the issuer URL must match the server's \"issuer\" exactly (scheme, host, port, path)",
      });
    case "OAUTH_TIMEOUT":
      return new NetworkError(`${action} timed out${limit?.timeout ? ` after ${limit.timeout}s` : ""}`, { cause: e, code: err.code, hint: "is the server up? raise the limit with --timeout SECONDS" });
    case "OAUTH_UNSUPPORTED_OPERATION": {
      // oauth4webapi refuses token types it does not know (e.g. "mac") before we see the response.
      let body: { token_type?: unknown } | undefined;
      for (let c: unknown = e; c && !body; c = (c as { cause?: unknown }).cause) body = (c as { body?: { token_type?: unknown } }).body;
      if (typeof body?.token_type === "string") {
        return new NetworkError(`${action} failed: malformed response from the token endpoint: unsupported token type "${tokenTypeName(body.token_type)}" (mcp-auth supports Bearer tokens only)`, { cause: e, code: err.code });
      }
      break;
    }
    case "OAUTH_HTTP_REQUEST_FORBIDDEN":
      return new UsageError(`${action}: plain http:// is not allowed here`, { cause: e, hint: "use https, or --allow-http" });
  }
  if (err.name === "TypeError") return new NetworkError(`${action} failed: ${err.message}`, { cause: e });
  return new McpAuthError(`${action} failed: ${detail(e)}`, { cause: e, code: err.code });
}

function detail(e: unknown): string {
  const parts: string[] = [];
  for (let c = e as { message?: string; cause?: unknown } | undefined; c && parts.length < 3; c = c.cause as typeof c) {
    if (c.message && !parts.includes(c.message)) parts.push(c.message);
  }
  return parts.join(": ") || String(e);
}
