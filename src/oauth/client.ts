import { createHash } from "node:crypto";
import { join } from "node:path";
import type * as OC from "openid-client";
import { AuthError, McpAuthError, NetworkError, UsageError } from "../errors.js";
import { writeFileAtomic } from "../store/fsutil.js";
import { readPrivateFile } from "../store/trust.js";
import type { TokenAuthMethod } from "../target.js";
import type { Fetch } from "./http.js";

/**
 * Data-first wrappers over openid-client: discovery (cached on disk), a Configuration per client,
 * and one place that turns openid-client's errors into ours.
 */
export type ServerMetadata = OC.ServerMetadata;

export interface OAuthEnv {
  fetch: Fetch;
  /** Directory for cached discovery documents. */
  discoveryDir: string;
  /** Seconds a discovery document stays fresh. */
  discoveryTtl: number;
  allowHttp: boolean;
  now: () => number; // ms
}

let oc: typeof OC | undefined;
/** openid-client, imported on first use (simple commands never pay for it). */
export async function openid(): Promise<typeof OC> {
  return (oc ??= await import("openid-client"));
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1|.+\.localhost)$/i;

/** https always; http only for loopback hosts (where TLS adds nothing) unless --allow-http. */
export function checkUrl(raw: string, what: string, allowHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${what} is not a valid URL: "${raw}"`);
  }
  if (url.protocol === "https:") return url;
  if (url.protocol !== "http:") throw new UsageError(`${what} must be an https:// URL, got "${raw}"`);
  if (!allowHttp && !LOOPBACK.test(url.hostname)) {
    throw new UsageError(`refusing plain http:// for ${what} ${raw}: tokens would travel unencrypted`, { hint: "use https, or pass --allow-http if you really mean it" });
  }
  return url;
}

interface DiscoveryRecord {
  fetched_at: number;
  issuer: string;
  metadata: ServerMetadata;
}

function discoveryFile(env: OAuthEnv, issuer: string): string {
  return join(env.discoveryDir, createHash("sha256").update(issuer).digest("hex").slice(0, 32) + ".json");
}

/**
 * The issuer's metadata: OpenID discovery first, then RFC 8414. Cached for `discoveryTtl` seconds so a
 * warm token request costs exactly one HTTP request.
 */
export async function discover(issuer: string, env: OAuthEnv, opts: { refresh?: boolean } = {}): Promise<ServerMetadata> {
  const file = discoveryFile(env, issuer);
  if (!opts.refresh) {
    try {
      const rec = JSON.parse(readPrivateFile(file) ?? "null") as DiscoveryRecord; // a planted or foreign cache is ignored
      if (rec.issuer === issuer && env.now() - rec.fetched_at < env.discoveryTtl * 1000) return rec.metadata;
    } catch {
      /* no usable cache */
    }
  }
  const client = await openid();
  const url = checkUrl(issuer, "the issuer", env.allowHttp);
  const options = {
    execute: url.protocol === "http:" ? [client.allowInsecureRequests] : [],
    [client.customFetch]: env.fetch as never,
  };
  let config: OC.Configuration;
  try {
    config = await client.discovery(url, "discovery", undefined, undefined, { ...options, algorithm: "oidc" });
  } catch (e) {
    // Not an OpenID provider? Try RFC 8414 before giving up (many OAuth/MCP servers only publish that).
    if (!isStatus(e, 404)) throw wrapOAuthError(e, `discovery at ${issuer}`);
    try {
      config = await client.discovery(url, "discovery", undefined, undefined, { ...options, algorithm: "oauth2" });
    } catch (e2) {
      throw wrapOAuthError(e2, `discovery at ${issuer}`);
    }
  }
  const metadata = config.serverMetadata();
  try {
    writeFileAtomic(file, JSON.stringify({ fetched_at: env.now(), issuer, metadata } satisfies DiscoveryRecord), { mode: 0o600 });
  } catch {
    /* a read-only config dir only costs us the cache */
  }
  return metadata;
}

function isStatus(e: unknown, status: number): boolean {
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Response && cause.status === status;
}

export interface ClientSpec {
  clientId: string;
  clientSecret?: string;
  authMethod?: TokenAuthMethod;
}

/** An openid-client Configuration for one client of a discovered server. */
export async function configure(metadata: ServerMetadata, spec: ClientSpec, env: OAuthEnv): Promise<OC.Configuration> {
  const client = await openid();
  let auth: OC.ClientAuth;
  const method = spec.authMethod ?? defaultAuthMethod(metadata, spec.clientSecret);
  if (method === "none" || !spec.clientSecret) auth = client.None();
  else if (method === "client_secret_post") auth = client.ClientSecretPost(spec.clientSecret);
  else auth = client.ClientSecretBasic(spec.clientSecret);
  const config = new client.Configuration(metadata, spec.clientId, undefined, auth);
  config[client.customFetch] = env.fetch as never;
  if (metadata.token_endpoint && new URL(metadata.token_endpoint).protocol === "http:") {
    checkUrl(metadata.token_endpoint, "the token endpoint", env.allowHttp);
    client.allowInsecureRequests(config);
  }
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
}

/** Normalises a token endpoint response; an unknown lifetime falls back to the JWT's exp, else 5 minutes. */
export function toTokenSet(res: OC.TokenEndpointResponse, nowMs: number): TokenSet {
  const now = Math.floor(nowMs / 1000);
  let expiresAt = typeof res.expires_in === "number" ? now + res.expires_in : jwtExp(res.access_token) ?? now + 300;
  if (!Number.isFinite(expiresAt)) expiresAt = now + 300;
  return {
    access_token: res.access_token,
    token_type: res.token_type ?? "Bearer",
    expires_at: expiresAt,
    scope: res.scope,
    refresh_token: res.refresh_token,
    id_token: res.id_token,
  };
}

function jwtExp(token: string): number | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** Extra token-request parameters for a target (RFC 8707 resource, non-standard audience). */
export function targetParams(t: { scopes?: string[]; resource?: string; audience?: string }): Record<string, string> {
  const p: Record<string, string> = {};
  if (t.scopes?.length) p.scope = t.scopes.join(" ");
  if (t.resource) p.resource = t.resource;
  if (t.audience) p.audience = t.audience;
  return p;
}

/** Turns whatever openid-client (or our fetch) threw into one of our typed errors. */
export function wrapOAuthError(e: unknown, action: string): McpAuthError {
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
      return new NetworkError(`${action} timed out`, { cause: e, code: err.code });
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
