import type * as OC from "openid-client";
import { McpAuthError, NetworkError, UsageError } from "../errors.js";
import { markControl } from "../io/sanitize.js";

/**
 * The URL rules every URL we send a credential to follows (https, or loopback http; no user info, no
 * fragment), and the check of a metadata document's endpoints against them. Kept apart from
 * ./client.js so discovery and registration use them without loading the openid-client wrappers.
 */
export type ServerMetadata = OC.ServerMetadata;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1|.+\.localhost)$/i;

/**
 * What a URL is for. `issuer`: RFC 8414 §2 allows no query and no fragment. `resource` (an MCP server,
 * RFC 8707 §2) and `endpoint` (RFC 6749 §3.1/§3.2): a query is fine, a fragment is not. None may carry
 * a user name or password: they would be saved, sent and echoed.
 */
export type UrlKind = "issuer" | "resource" | "endpoint";

/** A URL as it may be shown: never its user name or password (also when it does not parse). */
export function displayUrl(raw: string): string {
  try {
    const u = new URL(raw);
    u.username = "";
    u.password = "";
    return u.href;
  } catch {
    return raw.replace(/\/\/[^/?#]*@/, "//…@");
  }
}

/** https always; http only for loopback hosts (where TLS adds nothing) unless --allow-http. */
export function checkUrl(raw: string, what: string, allowHttp: boolean, kind: UrlKind = "endpoint"): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${what} is not a valid URL: "${displayUrl(raw)}"`);
  }
  if (url.username || url.password) {
    throw new UsageError(`${what} must not contain a user name or password (${displayUrl(raw)})`, { hint: "drop the \"user:password@\" part; credentials never go in a URL" });
  }
  if (url.hash || raw.includes("#")) throw new UsageError(`${what} must not contain a fragment ("#…"): ${url.origin}${url.pathname}`);
  if (kind === "issuer" && (url.search || raw.includes("?"))) {
    throw new UsageError(`${what} must not contain a query ("?…"): ${url.origin}${url.pathname}`, { hint: "an issuer is scheme, host, port and path only (RFC 8414)" });
  }
  if (url.protocol === "https:") return url;
  if (url.protocol !== "http:") throw new UsageError(`${what} must be an https:// URL, got "${displayUrl(raw)}"`);
  if (!allowHttp && !LOOPBACK.test(url.hostname)) {
    throw new UsageError(`refusing plain http:// for ${what} ${displayUrl(raw)}: tokens would travel unencrypted`, { hint: "use https, or pass --allow-http if you really mean it", code: "insecure_http" });
  }
  return url;
}

/** A resource indicator that is an http(s) URL (an MCP server) follows the `resource` rules; other URIs pass. */
export function checkResource(raw: string, what: string): void {
  if (/^https?:/i.test(raw)) checkUrl(raw, what, true, "resource");
}

/** Every endpoint openid-client may call, taken from the metadata. */
export const ENDPOINTS = [
  "token_endpoint",
  "authorization_endpoint",
  "device_authorization_endpoint",
  "revocation_endpoint",
  "introspection_endpoint",
  "userinfo_endpoint",
  "jwks_uri",
  "registration_endpoint",
  "pushed_authorization_request_endpoint",
  "end_session_endpoint",
  "backchannel_authentication_endpoint",
] as const;

/**
 * Refuses (exit 3) metadata we cannot use safely: no usable token_endpoint, or any endpoint that is
 * not https (or loopback http, or --allow-http). Each endpoint is checked on its own, because
 * openid-client's insecure-requests switch is per configuration, not per endpoint.
 */
export function checkMetadata(metadata: ServerMetadata, allowHttp: boolean): void {
  // Server text: no control characters reach the terminal.
  const bad = (field: string, why: string, hint = "fix the server's metadata") =>
    new NetworkError(markControl(`unusable server metadata for ${displayUrl(String(metadata.issuer))}: ${field} ${why}`), { hint });
  if (metadata.token_endpoint === undefined) throw bad("token_endpoint", "is missing");
  const entries: Array<[string, unknown]> = ENDPOINTS.filter((f) => metadata[f] !== undefined).map((f) => [f, metadata[f]]);
  const aliases = metadata.mtls_endpoint_aliases;
  if (aliases && typeof aliases === "object") for (const [k, v] of Object.entries(aliases)) entries.push([`mtls_endpoint_aliases.${k}`, v]);
  for (const [field, value] of entries) {
    if (typeof value !== "string") throw bad(field, "is not a string");
    try {
      checkUrl(value, field, allowHttp, "endpoint");
    } catch (e) {
      const msg = (e as McpAuthError).message;
      if ((e as McpAuthError).code === "insecure_http") {
        throw bad(field, `is plain http:// on a host that is not loopback (${new URL(value).host}): the client secret and tokens would travel unencrypted`, "fix the server, or pass --allow-http if you really mean it");
      }
      throw bad(field, `is not a usable https URL (${msg.replace(`${field} `, "")})`);
    }
  }
}
