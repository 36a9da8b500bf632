import { readFileSync } from "node:fs";
import { NetworkError, UsageError } from "../errors.js";

/**
 * The one fetch every request goes through: a timeout on each request, `--debug` traces with
 * secrets redacted, and — only when a proxy, a custom CA or --insecure is in play — npm undici,
 * loaded lazily because importing it costs more than Node's start-up.
 */
export interface HttpOptions {
  timeoutMs: number;
  debug?: (line: string) => void;
  caFile?: string;
  insecure?: boolean;
  env: NodeJS.ProcessEnv;
}

export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Keys whose values never appear in a trace (form bodies, JSON bodies, query strings). */
const SECRET_KEYS = new Set([
  "access_token", "refresh_token", "id_token", "client_secret", "code", "code_verifier", "device_code",
  "password", "assertion", "client_assertion", "subject_token", "actor_token", "token", "secret",
  "registration_access_token", "challengeToken", "challenge_token", "clientSecret", "accessToken", "assertion_token",
  "refreshToken", "idToken", "value", // Keycloak's client-secret answer is {"type":"secret","value":"…"}
]);
const SECRET_JSON_FIELD = new RegExp(`"(${[...SECRET_KEYS].join("|")})"\\s*:\\s*"(?:[^"\\\\]|\\\\.)*"`, "g");

export function redact(text: string, contentType = ""): string {
  if (!text) return text;
  if (contentType.includes("json") || /^\s*[[{]/.test(text)) {
    try {
      return JSON.stringify(JSON.parse(text), (k, v) => (SECRET_KEYS.has(k) && typeof v === "string" ? "[redacted]" : v));
    } catch {
      // Not parseable (cut off, or almost-JSON): still never show a secret-named field.
      return text.replace(SECRET_JSON_FIELD, '"$1":"[redacted]"').replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, "[redacted-jwt]");
    }
  }
  if (contentType.includes("x-www-form-urlencoded") || /^[\w.~%-]+=[^&\s]*(&[\w.~%-]+=[^&\s]*)*$/.test(text)) {
    const params = new URLSearchParams(text);
    for (const k of [...params.keys()]) if (SECRET_KEYS.has(k)) params.set(k, "[redacted]");
    return params.toString();
  }
  // JWTs and long opaque strings anywhere else
  return text.replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, "[redacted-jwt]");
}

function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    for (const k of [...url.searchParams.keys()]) if (SECRET_KEYS.has(k)) url.searchParams.set(k, "[redacted]");
    return url.toString();
  } catch {
    return u;
  }
}

function redactHeaders(h: Headers): string {
  const parts: string[] = [];
  h.forEach((v, k) => {
    const lk = k.toLowerCase();
    parts.push(`${k}: ${lk === "authorization" || lk === "cookie" || lk === "set-cookie" || lk === "dpop" ? v.replace(/^(\w+)\s.*$/, "$1 [redacted]").replace(/^[^\s]+$/, "[redacted]") : v}`);
  });
  return parts.join("; ");
}

function needsUndici(o: HttpOptions): boolean {
  const e = o.env;
  return Boolean(o.caFile || o.insecure || e.HTTPS_PROXY || e.https_proxy || e.HTTP_PROXY || e.http_proxy);
}

export function createFetch(o: HttpOptions): Fetch {
  let dispatcherFetch: Promise<Fetch> | undefined;
  const viaUndici = needsUndici(o);

  const base = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    if (!viaUndici) return fetch(input, init);
    dispatcherFetch ??= undiciFetch(o);
    return dispatcherFetch.then((f) => f(input, init));
  };

  return async (input, init = {}) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const method = init.method ?? (input instanceof Request ? input.method : "GET");
    // The timeout covers the wait for the response headers and the body, except for an event stream:
    // that is meant to stay open (MCP's SSE streams), so its timer stops once the headers are in.
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new DOMException("timed out", "TimeoutError")), o.timeoutMs);
    timer.unref?.();
    const signal = init.signal ? AbortSignal.any([init.signal, timeout.signal]) : timeout.signal;
    if (o.debug) {
      const headers = new Headers(init.headers);
      const body = typeof init.body === "string" ? init.body : init.body instanceof URLSearchParams ? init.body.toString() : "";
      o.debug(`> ${method} ${redactUrl(url)}`);
      o.debug(`>   ${redactHeaders(headers)}`);
      if (body) o.debug(`>   ${redact(body, headers.get("content-type") ?? "")}`);
    }
    const started = Date.now();
    let res: Response;
    try {
      res = await base(input, { ...init, signal });
    } catch (e) {
      clearTimeout(timer);
      throw toNetworkError(e, url, timeout.signal.aborted, o.timeoutMs);
    }
    const stream = (res.headers.get("content-type") ?? "").startsWith("text/event-stream");
    if (stream) clearTimeout(timer);
    if (o.debug) {
      const ct = res.headers.get("content-type") ?? "";
      let text = "";
      try {
        // An event stream is not waited for (it may never end): its messages are traced by their reader.
        if (!stream) text = await res.clone().text();
      } catch {
        /* stream errors surface to the caller */
      }
      o.debug(`< ${res.status} ${method} ${redactUrl(url)} (${Date.now() - started} ms) ${ct}`);
      const www = res.headers.get("www-authenticate");
      if (www) o.debug(`<   www-authenticate: ${www}`);
      // Redact the whole body first: a cut-off body would no longer parse as JSON.
      const shown = redact(text, ct);
      if (shown) o.debug(`<   ${shown.length > 2000 ? `${shown.slice(0, 2000)}…` : shown}`);
    }
    return res;
  };
}

function toNetworkError(e: unknown, url: string, timedOut: boolean, timeoutMs: number): NetworkError {
  const host = safeHost(url);
  if (timedOut) return new NetworkError(`request to ${host} timed out after ${timeoutMs / 1000}s`, { cause: e, hint: "is the server up? raise the limit with --timeout SECONDS" });
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (e as Error).message;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(detail)) {
    return new NetworkError(`the TLS certificate of ${host} is not trusted (${detail})`, { cause: e, hint: "add its CA with --ca-file PEM or NODE_EXTRA_CA_CERTS" });
  }
  return new NetworkError(`cannot reach ${host}: ${detail}`, { cause: e, hint: "check the URL, your network and HTTPS_PROXY/NO_PROXY" });
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** npm undici with a proxy-aware agent; its Response is re-wrapped as a global Response for openid-client. */
async function undiciFetch(o: HttpOptions): Promise<Fetch> {
  const undici = await import("undici");
  const tls = await import("node:tls");
  let ca: string[] | undefined;
  if (o.caFile) {
    try {
      ca = [...tls.rootCertificates, readFileSync(o.caFile, "utf8")];
    } catch (e) {
      throw new UsageError(`cannot read --ca-file ${o.caFile}: ${(e as Error).message}`);
    }
  }
  const connect = { ca, rejectUnauthorized: !o.insecure };
  // proxyTunnel: false = plain http:// requests go to the proxy in absolute form, as curl does;
  // https:// still tunnels with CONNECT.
  const dispatcher = new undici.EnvHttpProxyAgent({ connect, proxyTls: connect, requestTls: connect, proxyTunnel: false } as never);
  return async (input, init) => {
    const res = await undici.fetch(input as never, { ...(init as object), dispatcher } as never);
    return new Response(res.body as never, { status: res.status, statusText: res.statusText, headers: res.headers as never });
  };
}
