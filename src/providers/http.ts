import { AuthError, type ProviderContext, McpAuthError, NetworkError } from "../sdk.js";

/**
 * JSON requests to IdP admin APIs, through the context's fetch (timeouts, proxy, redacted traces,
 * no redirects, bounded bodies).
 * Returns status, headers and parsed body; callers decide what each status means, and
 * `apiError()` turns an error body of any IdP into one readable message.
 */
export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface ApiRequest {
  token?: string;
  json?: unknown;
  form?: Record<string, string>;
  headers?: Record<string, string>;
}

export async function api<T = unknown>(ctx: ProviderContext, method: string, url: string, r: ApiRequest = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { accept: "application/json", ...r.headers };
  let body: string | undefined;
  if (r.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(r.json);
  } else if (r.form) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(r.form).toString();
  }
  if (r.token) headers.authorization = `Bearer ${r.token}`;
  // Never followed: admin calls carry a password, a secret or a token (a 3xx is a NetworkError naming
  // its Location, from ctx.fetch). Bodies are capped there too.
  const res = await ctx.fetch(url, { method, headers, body, redirect: "manual" });
  const text = await res.text(); // already read by ctx.fetch: a cut-off, stalled or oversized body failed there
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      if ((res.headers.get("content-type") ?? "").includes("json")) {
        throw new NetworkError(`${method} ${new URL(url).pathname} returned malformed JSON (HTTP ${res.status})`);
      }
      parsed = undefined;
    }
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** Text of a value that may be a plain string or an i18n object `{key, defaultValue}` (Thunder ≥ 0.35). */
export function i18n(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && "defaultValue" in v) return String((v as { defaultValue: unknown }).defaultValue);
  return undefined;
}

/** One message from whatever error body an IdP sent; 401/403 become AuthError (exit 4). */
export function apiError(action: string, res: ApiResponse, hint?: string): McpAuthError {
  const b = (res.body ?? {}) as Record<string, unknown>;
  const parts = [
    typeof b.code === "string" ? b.code : undefined,
    i18n(b.message),
    i18n(b.description),
    typeof b.errorMessage === "string" ? b.errorMessage : undefined,
    typeof b.error === "string" ? b.error : undefined,
    typeof b.error_description === "string" ? b.error_description : undefined,
  ].filter((x, i, a): x is string => Boolean(x) && a.indexOf(x) === i);
  const detail = parts.length ? parts.join(": ") : res.text ? res.text.slice(0, 200).replace(/\s+/g, " ") : "(empty body)";
  const message = `${action} failed: HTTP ${res.status}: ${detail}`;
  const code = typeof b.code === "string" ? b.code : typeof b.error === "string" ? b.error : undefined;
  if (res.status === 401 || res.status === 403) return new AuthError(message, { hint, code });
  if (res.status >= 500) return new NetworkError(message, { hint, code });
  return new McpAuthError(message, { hint, code });
}
