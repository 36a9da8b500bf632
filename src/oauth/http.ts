import { readFileSync } from "node:fs";
import { isIP, isIPv4, isIPv6, type LookupFunction } from "node:net";
import { NetworkError, UsageError } from "../errors.js";
import { classifyAddress, describeReach, isLocalhostName, judge, reachOf, resolveByName, widest, type AddressPolicy, type Classified, type Reach, type ResolvedAddress, type Resolver } from "./address-policy.js";

/**
 * The one fetch every request goes through (openid-client's customFetch and the admin APIs): a
 * timeout on each request covering the body too, `--debug` traces with secrets redacted, no
 * redirect ever followed (a request carrying credentials that meets a 3xx fails naming the
 * Location), bodies read whole but capped, `localhost` and `*.localhost` connected to loopback
 * without asking a resolver, a server-sent URL connected only to addresses its AddressPolicy allows
 * (./address-policy.ts), and — only when one of those, a proxy, a custom CA or --insecure is in
 * play — npm undici, loaded lazily because importing it costs more than Node's start-up.
 */
export interface HttpOptions {
  timeoutMs: number;
  debug?: (line: string) => void;
  /** Notices (stderr): a connection --allow-private-network let through. */
  warn?: (line: string) => void;
  caFile?: string;
  insecure?: boolean;
  env: NodeJS.ProcessEnv;
  /** Name resolution; default the system's (dns.lookup). Tests map names to this machine's own addresses. */
  resolve?: Resolver;
  /** The timer that ends a request after timeoutMs (default: real time; tests pass a clock they move). */
  timers?: Timers;
}

export type { ResolvedAddress, Resolver } from "./address-policy.js";

/** Scheduling on some clock: the process's own, or one a test moves. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};


/**
 * `returnRedirects`: the caller follows 3xx answers itself, checking each hop (a web session that
 * keeps its cookie to one origin); without it a redirect of a request carrying credentials is refused.
 * `addressPolicy`: the URL came from a server; connect only to addresses the policy allows.
 */
export type FetchInit = RequestInit & { returnRedirects?: boolean; addressPolicy?: AddressPolicy };
export type Fetch = (input: string | URL | Request, init?: FetchInit) => Promise<Response>;

/** A fetch whose every request follows `policy` (the URLs it is given came from a server). */
export function withAddressPolicy(fetch: Fetch, policy: AddressPolicy): Fetch {
  return (input, init) => fetch(input, { ...init, addressPolicy: policy });
}

/** A server-sent URL leads somewhere the policy does not allow: exit 3, the message names the URL. */
export class AddressRefusedError extends NetworkError {}

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
  // A web page may show a secret once (OpenProject's new OAuth application): only its title is traced.
  if (contentType.includes("html") || /^\s*<(!doctype|html)\b/i.test(text)) {
    const title = /<title\b[^>]*>[\s\S]*?<\/title>/i.exec(text)?.[0];
    return `${title ? `${title.replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, "[redacted-jwt]")} ` : ""}[HTML page, ${text.length} characters, not shown]`;
  }
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

function proxyEnv(e: NodeJS.ProcessEnv): { httpProxy?: string; httpsProxy?: string; noProxy?: string } {
  return { httpProxy: e.http_proxy || e.HTTP_PROXY, httpsProxy: e.https_proxy || e.HTTPS_PROXY, noProxy: e.no_proxy ?? e.NO_PROXY };
}

function needsUndici(o: HttpOptions): boolean {
  const p = proxyEnv(o.env);
  return Boolean(o.caFile || o.insecure || p.httpProxy || p.httpsProxy);
}

/** Largest response body read (discovery, token and admin JSON are a few KB): more is an attack or a mistake. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Longest body text a `--debug` trace shows. */
const TRACE_BODY_CHARS = 2000;
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Loopback never goes through a proxy, whatever NO_PROXY says (as Go's net/http): a proxy has no
 * business seeing requests, and credentials, meant for this machine.
 */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (isLocalhostName(h)) return true;
  if (isIPv4(h)) return h.startsWith("127.");
  if (isIPv6(h)) return h === "::1" || /^::ffff:(7f[0-9a-f]{2}:[0-9a-f]{1,4}|127\.[\d.]+)$/.test(h); // IPv4-mapped 127/8
  return false;
}

/** A redirect target as it may be printed: no control characters, no userinfo, query or fragment. */
export function safeLocation(location: string | null, base: string): string {
  if (!location) return "(no Location header)";
  let shown: string;
  try {
    const u = new URL(location, base);
    u.username = u.password = u.search = u.hash = "";
    shown = u.href;
  } catch {
    shown = location.replace(/[?#][\s\S]*$/, "");
  }
  shown = shown.replace(CONTROL, "");
  return shown.length > 200 ? `${shown.slice(0, 200)}…` : shown;
}

/** Authorization, cookies or a body: a request whose content must reach only the URL it was meant for. */
function carriesCredentials(input: string | URL | Request, init: RequestInit): boolean {
  const headers = new Headers(input instanceof Request ? input.headers : undefined);
  new Headers(init.headers).forEach((v, k) => headers.set(k, v));
  return headers.has("authorization") || headers.has("cookie") || headers.has("proxy-authorization") || init.body != null || (input instanceof Request && input.body != null);
}

export function createFetch(o: HttpOptions): Fetch {
  let dispatcherFetch: Promise<DispatchFetch> | undefined;
  const viaUndici = needsUndici(o);
  const addresses = addressBook(o);
  const timers = o.timers ?? realTimers;

  const base = async (input: string | URL | Request, init: FetchInit): Promise<Response> => {
    const { addressPolicy: policy, returnRedirects: _handledHere, ...rest } = init;
    const u = new URL(urlOf(input));
    const host = bareHost(u.hostname);
    // Judged before anything is sent (and under the request's timeout); the connection then goes
    // to the judged addresses only (the pinned lookup below).
    if (policy) await abortable(addresses.check(policy, host, safeLocation(u.href, u.href), proxied(o.env, u)), init.signal);
    if (!viaUndici && !policy && !o.resolve && !(isLocalhostName(host) && !isIP(host))) return fetch(input, rest);
    dispatcherFetch ??= undiciFetch(o, (p) => addresses.lookup(p));
    return (await dispatcherFetch)(input, rest, policy);
  };

  return async (input, init = {}) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const method = init.method ?? (input instanceof Request ? input.method : "GET");
    // The timeout covers the wait for the response headers and the body, except for an event stream:
    // that is meant to stay open (MCP's SSE streams), so its timer stops once the headers are in.
    const timeout = new AbortController();
    const timer = timers.setTimeout(() => timeout.abort(new DOMException("timed out", "TimeoutError")), o.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout.signal]) : timeout.signal;
    const credentialed = carriesCredentials(input, init);
    if (o.debug) {
      const headers = new Headers(init.headers);
      const body = typeof init.body === "string" ? init.body : init.body instanceof URLSearchParams ? init.body.toString() : "";
      o.debug(`> ${method} ${redactUrl(url)}`);
      o.debug(`>   ${redactHeaders(headers)}`);
      if (body) o.debug(`>   ${redact(body, headers.get("content-type") ?? "")}`);
    }
    const started = Date.now();
    let res: Response;
    let bytes: Uint8Array | null;
    try {
      // Never "follow": the next hop would get the same password, secret or token, unchecked for http/https.
      res = await base(input, { ...init, signal, redirect: "manual" });
    } catch (e) {
      timers.clearTimeout(timer);
      const refused = causeOf(e, AddressRefusedError);
      if (refused) throw refused;
      throw toNetworkError(e, url, timeout.signal.aborted, o.timeoutMs);
    }
    const ct = res.headers.get("content-type") ?? "";
    const stream = ct.startsWith("text/event-stream");
    if (stream) timers.clearTimeout(timer);
    if (o.debug) {
      o.debug(`< ${res.status} ${method} ${redactUrl(url)} (${Date.now() - started} ms) ${ct}`);
      const www = res.headers.get("www-authenticate");
      if (www) o.debug(`<   www-authenticate: ${www.replace(CONTROL, " ")}`);
    }
    if (res.status >= 300 && res.status < 400 && res.status !== 304 && !(init as FetchInit).returnRedirects && (credentialed || init.redirect !== "manual")) {
      await res.body?.cancel().catch(() => {});
      throw redirectRefused(url, res.status, res.headers.get("location"), credentialed);
    }
    // An event stream is handed on as it comes (its reader, the MCP transport, parses it message by
    // message); everything else is read whole, capped, under the timeout.
    if (stream && res.ok) return res;
    try {
      bytes = await readCapped(res, url);
    } catch (e) {
      if (e instanceof NetworkError || timeout.signal.aborted) throw e instanceof NetworkError ? e : toNetworkError(e, url, true, o.timeoutMs);
      throw new NetworkError(`the response from ${safeHost(url)} was cut off (${(e as Error).message})`, { cause: e });
    } finally {
      timers.clearTimeout(timer);
    }
    if (o.debug && bytes?.length) {
      // Redact the whole body first (a cut-off body would no longer parse as JSON), then cut.
      const shown = redact(new TextDecoder().decode(bytes), ct).replace(CONTROL, " ");
      o.debug(`<   ${shown.length > TRACE_BODY_CHARS ? `${shown.slice(0, TRACE_BODY_CHARS)}…` : shown}`);
    }
    // A buffered copy: every consumer (openid-client, the admin APIs) reads at most MAX_BODY_BYTES.
    const copy = new Response(NULL_BODY_STATUS.has(res.status) ? null : (bytes as BodyInit | null), { status: res.status, statusText: res.statusText, headers: res.headers });
    Object.defineProperty(copy, "url", { value: res.url || url }); // error messages name the host from it
    return copy;
  };
}

/** The whole body, refused as soon as it passes MAX_BODY_BYTES (by Content-Length or by bytes read). */
async function readCapped(res: Response, url: string): Promise<Uint8Array | null> {
  if (!res.body) return null;
  const declared = Number(res.headers.get("content-length") ?? "");
  if (declared > MAX_BODY_BYTES) {
    await res.body.cancel().catch(() => {});
    throw tooLarge(url);
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge(url);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** A 3xx answer mcp-auth does not follow (the next hop would get the same credentials, unchecked). */
function redirectRefused(url: string, status: number, location: string | null, credentialed: boolean): NetworkError {
  return new NetworkError(`${safeHost(url)} answered HTTP ${status}, redirecting to ${safeLocation(location, url)}; mcp-auth does not follow redirects${credentialed ? " of requests that carry credentials" : ""}`, {
    hint: "use the URL it points to, if you trust it",
  });
}

/** A body past its cap (MAX_BODY_BYTES). */
function tooLarge(url: string, cap = MAX_BODY_BYTES): NetworkError {
  return new NetworkError(`the response from ${safeHost(url)} is too large (over ${cap / 1024 / 1024} MB)`, { hint: "is this the right URL?" });
}

/** A header of a relayed answer as one value (several are joined as HTTP joins them). */
export function headerOf(headers: RelayAnswer["headers"], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

function toNetworkError(e: unknown, url: string, timedOut: boolean, timeoutMs: number): NetworkError {
  const host = safeHost(url);
  if (timedOut) return new NetworkError(`request to ${host} timed out after ${timeoutMs / 1000}s`, { cause: e, hint: "is the server up? raise the limit with --timeout SECONDS" });
  const cause = (e as { cause?: { code?: unknown; message?: string } }).cause;
  const detail = (typeof cause?.code === "string" ? cause.code : undefined) ?? cause?.message ?? (e as Error).message;
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

function urlOf(input: string | URL | Request): string {
  return typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
}

/** A URL's hostname as a resolver or an address check takes it: no IPv6 brackets, no trailing dot. */
function bareHost(hostname: string): string {
  return hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
}

function hostOf(url: string): string | undefined {
  try {
    return bareHost(new URL(url).hostname);
  } catch {
    return undefined;
  }
}

/** Whether a request to `u` goes through HTTP(S)_PROXY (NO_PROXY aside: the stricter answer). */
function proxied(env: NodeJS.ProcessEnv, u: URL): boolean {
  const p = proxyEnv(env);
  return Boolean(u.protocol === "https:" ? p.httpsProxy || p.httpProxy : p.httpProxy) && !isLoopbackHost(u.hostname);
}

function causeOf<T>(e: unknown, type: abstract new (...a: never[]) => T): T | undefined {
  for (let c = e, depth = 0; c && depth < 8; c = (c as { cause?: unknown }).cause, depth++) if (c instanceof type) return c;
  return undefined;
}

/** `work`, or the signal's reason as soon as it aborts (a resolver takes no signal). */
function abortable<T>(work: Promise<T>, signal: AbortSignal | null | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}


/**
 * Name resolution for every connection: `localhost` names are loopback, other names go to the
 * resolver; under an AddressPolicy every address is judged first, and a connection may only use
 * addresses that were judged (pinned per policy and host), so a second, different answer from the
 * resolver (DNS rebinding) is never connected to.
 */
function addressBook(o: HttpOptions) {
  const resolveName = resolveByName(o.resolve);
  const reaches = new WeakMap<AddressPolicy, Promise<Reach>>();
  const pins = new WeakMap<AddressPolicy, Map<string, ResolvedAddress[]>>();
  const lifted = new Set<string>();

  /** How internal the URLs the user gave are (remembered once every one of them resolved). */
  const referenceReach = (policy: AddressPolicy): Promise<Reach> => {
    const known = reaches.get(policy);
    if (known) return known;
    let complete = true;
    const work = Promise.all(
      policy.references.map(async (ref) => {
        const host = hostOf(ref);
        if (host === undefined) return "public" as Reach; // not a URL: allows nothing further in
        const addrs = isIP(host)
          ? [host]
          : await resolveName(host).then(
              (list) => list.map((a) => a.address),
              () => ((complete = false), [] as string[]),
            );
        return reachOf(addrs.map(classifyAddress));
      }),
    ).then((list) => {
      if (!complete) reaches.delete(policy); // a resolver hiccup must not make a long-running proxy strict for good
      return widest(list);
    });
    reaches.set(policy, work);
    return work;
  };

  const refusal = (shown: string, host: string, c: Classified, why: string) =>
    new AddressRefusedError(`refusing ${shown}: ${host === c.address ? host : `${host} resolves to ${c.address}, which`} is ${why}`, { code: "address_refused" });

  /** The addresses a request to `host` may use under `policy`; throws AddressRefusedError naming `shown`. */
  const check = async (policy: AddressPolicy, host: string, shown: string, viaProxy = false): Promise<ResolvedAddress[]> => {
    const literal = isIP(host);
    // An address the user typed is theirs to use, whatever it is (no resolver is involved).
    if (literal && policy.references.some((r) => hostOf(r) === host)) return [{ address: host, family: literal as 4 | 6 }];
    let list: ResolvedAddress[];
    try {
      list = literal ? [{ address: host, family: literal as 4 | 6 }] : await resolveName(host);
    } catch (e) {
      // Through a proxy, the proxy resolves the name: only a name that resolves here can be judged,
      // and a name the user gave is theirs to send to their proxy.
      if (!viaProxy) throw new TypeError("fetch failed", { cause: e }); // reported as any unreachable host
      if (policy.allowPrivateNetwork || policy.references.some((r) => hostOf(r) === host)) return [];
      throw new AddressRefusedError(`refusing ${shown}: ${host} does not resolve here, so where the proxy would take the request cannot be checked; to let the proxy decide (an intranet set-up), pass --allow-private-network`, { code: "address_refused", cause: e });
    }
    const reference = await referenceReach(policy);
    const gave = policy.references.map((r) => safeHost(r)).join(" and ") || "nothing";
    for (const a of list) {
      const c = classifyAddress(a.address);
      const verdict = judge(c, reference, policy.allowPrivateNetwork);
      if (verdict === "never") {
        throw refusal(shown, host, c, `${c.kind}; mcp-auth never connects there by name or for a URL a server sent (--allow-private-network does not change that)`);
      }
      if (verdict === "more-internal") {
        throw refusal(shown, host, c, `${describeReach(c.class as Reach)} (${c.kind}), more internal than ${gave}, ${policy.references.length > 1 ? "the servers" : "the server"} you gave (${describeReach(reference)}); if that is intended (an intranet set-up), pass --allow-private-network`);
      }
      if (verdict === "lifted" && !lifted.has(`${host} ${c.address}`)) {
        lifted.add(`${host} ${c.address}`);
        o.warn?.(`--allow-private-network: connecting to ${shown} (${c.address}, ${describeReach(c.class as Reach)}) although ${gave} is on ${describeReach(reference)}`);
      }
    }
    if (!list.length) throw Object.assign(new Error(`${host} has no address`), { code: "ENOTFOUND" });
    if (!literal) {
      let forPolicy = pins.get(policy);
      if (!forPolicy) pins.set(policy, (forPolicy = new Map()));
      forPolicy.set(host, list);
    }
    o.debug?.(`  ${host} → ${list.map((a) => a.address).join(", ")} (${list.map((a) => classifyAddress(a.address).class).join(", ")}; allowed up to ${describeReach(reference)})`);
    return list;
  };

  /**
   * net.connect's `lookup` (tls.connect's too, through undici's `connect`) for connections made under
   * `policy`: the addresses judged for that host; without a policy, localhost pinning and the resolver.
   */
  const lookup =
    (policy: AddressPolicy | undefined): LookupFunction =>
    (hostname, options, callback) => {
      const host = bareHost(hostname);
      const pinned = policy ? pins.get(policy)?.get(host) : undefined;
      const found = pinned ? Promise.resolve(pinned) : policy ? check(policy, host, host) : resolveName(host);
      found.then(
        (list) => {
          const f = options.family as number | string | undefined;
          const family = f === 4 || f === "IPv4" ? 4 : f === 6 || f === "IPv6" ? 6 : 0;
          const usable = family ? list.filter((a) => a.family === family) : list;
          if (!usable.length) return callback(Object.assign(new Error(`${host} has no IPv${family} address`), { code: "ENOTFOUND" }), "");
          if (options.all) callback(null, usable);
          else callback(null, usable[0]!.address, usable[0]!.family);
        },
        (e: NodeJS.ErrnoException) => callback(e, ""),
      );
    };

  return { check, lookup };
}

type DispatchFetch = (input: string | URL | Request, init: RequestInit, policy?: AddressPolicy) => Promise<Response>;
type Undici = typeof import("undici");

/**
 * npm undici's dispatchers: a direct agent for loopback, a proxy-aware one (HTTP(S)_PROXY, NO_PROXY)
 * for the rest, per AddressPolicy (so a connection judged under one policy is never reused under
 * another), each resolving names through `lookupFor`.
 */
async function undiciDispatchers(o: HttpOptions, lookupFor: (policy: AddressPolicy | undefined) => LookupFunction): Promise<{ undici: Undici; dispatcherFor: (url: URL, policy?: AddressPolicy) => object }> {
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
  const tlsOptions = { ca, rejectUnauthorized: !o.insecure };
  const p = proxyEnv(o.env);
  const agents = new Map<AddressPolicy | undefined, { direct: object; proxied: object }>();
  const agentsFor = (policy: AddressPolicy | undefined) => {
    let a = agents.get(policy);
    if (a) return a;
    // The lookup is for connections to the server itself; the proxy's own connection resolves as usual.
    const connect = { ...tlsOptions, lookup: lookupFor(policy) };
    const direct = new undici.Agent({ connect });
    const proxied =
      p.httpProxy || p.httpsProxy
        ? new undici.EnvHttpProxyAgent({
            ...p,
            connect,
            proxyTls: tlsOptions,
            requestTls: tlsOptions,
            // proxyTunnel: false = plain http:// requests go to the proxy in absolute form, as curl does;
            // https:// still tunnels with CONNECT.
            proxyTunnel: false,
            clientFactory: (origin: URL, opts: object) => oneTunnelAttempt(new undici.Pool(origin, opts)),
          } as never)
        : direct;
    agents.set(policy, (a = { direct, proxied }));
    return a;
  };
  return { undici, dispatcherFor: (url, policy) => (isLoopbackHost(url.hostname) ? agentsFor(policy).direct : agentsFor(policy).proxied) };
}

/** npm undici's fetch over those dispatchers; its Response is re-wrapped as a global Response for openid-client. */
async function undiciFetch(o: HttpOptions, lookupFor: (policy: AddressPolicy | undefined) => LookupFunction): Promise<DispatchFetch> {
  const { undici, dispatcherFor } = await undiciDispatchers(o, lookupFor);
  return async (input, init, policy) => {
    const dispatcher = dispatcherFor(new URL(urlOf(input)), policy);
    const res = await undici.fetch(input as never, { ...(init as object), dispatcher } as never);
    return new Response(res.body as never, { status: res.status, statusText: res.statusText, headers: res.headers as never });
  };
}

/** An MCP server's answer as a relay hands it on: as it arrives, without WHATWG Request/Response objects. */
export interface RelayAnswer {
  status: number;
  /** The reason phrase the server sent, for messages. */
  statusText?: string;
  /** Lower-case names, as the server sent them. */
  headers: Record<string, string | string[] | undefined>;
  /** The body as it arrives: an event stream stays open; anything else is capped at MAX_BODY_BYTES and ends within the timeout. */
  body: AsyncIterable<Uint8Array>;
  /** Drops the rest of the body (a refused answer about to be retried, a client that left). */
  discard(): void;
}

export interface RelayInit {
  method: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  body?: Uint8Array | string;
  /**
   * Aborting ends the request, or the body being read, with the signal's reason (an AbortError, never a
   * NetworkError): how the MCP transports cancel one request or close. One signal may serve many
   * requests: what a request adds to it is removed once that request's body ends or is dropped.
   */
  signal?: AbortSignal;
}
export type Relay = (url: URL, init: RelayInit) => Promise<RelayAnswer>;

/**
 * Requests to the MCP server, for `mcp-auth proxy` and `mcp-auth serve`: the same names, CA, proxy and
 * timeout as createFetch, no redirect followed (a 3xx fails naming its Location: the request carries
 * the token), and `--debug` traces with secrets redacted. Made for a relay that runs for hours:
 * fetch's Request, Headers, Response and web streams cost it more CPU per request than everything else
 * it does, and their garbage most of its memory growth. A direct connection goes by node:http(s); npm
 * undici (about 19 MB once loaded) only when a proxy, a CA file or --insecure is in play.
 */
export function createRelay(o: HttpOptions): Relay {
  const addresses = addressBook(o);
  const timers = o.timers ?? realTimers;
  let sender: Promise<Send> | undefined;
  return async (url, init) => {
    const send = await (sender ??= relaySender(o, (p) => addresses.lookup(p)));
    const { signal } = init;
    if (signal?.aborted) throw signal.reason;
    if (o.debug) {
      o.debug(`> ${init.method} ${redactUrl(url.href)}`);
      o.debug(`>   ${redactHeaders(new Headers(init.headers))}`);
    }
    const started = Date.now();
    // Ended by the timeout (until the headers are in, and for anything but an event stream until its
    // body has ended) or by the caller's signal; the carrier says how (no AbortController per request).
    const stop: Stop = {};
    let timedOut = false;
    let timer: unknown = timers.setTimeout(() => ((timedOut = true), stop.cut?.()), o.timeoutMs);
    const onAbort = () => stop.cut?.();
    signal?.addEventListener("abort", onAbort, { once: true });
    const stopTimer = () => {
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
    };
    // The request is over (failed, refused, its body ended or dropped): nothing of it stays on the caller's signal.
    const release = () => {
      stopTimer();
      signal?.removeEventListener("abort", onAbort);
    };
    let res: Sent;
    try {
      res = await send(url, init, stop);
    } catch (e) {
      release();
      if (signal?.aborted) throw signal.reason;
      throw toNetworkError(e, url.href, timedOut, o.timeoutMs);
    }
    // Destroying an unread body (discard, a refused redirect) emits an error nobody else may be listening for.
    res.body.on("error", () => {});
    const ct = headerOf(res.headers, "content-type") ?? "";
    if (o.debug) {
      o.debug(`< ${res.statusCode} ${init.method} ${redactUrl(url.href)} (${Date.now() - started} ms) ${ct.replace(CONTROL, " ")}`);
      const www = headerOf(res.headers, "www-authenticate");
      if (www) o.debug(`<   www-authenticate: ${www.replace(CONTROL, " ")}`);
    }
    if (res.statusCode >= 300 && res.statusCode < 400 && res.statusCode !== 304) {
      release();
      res.body.destroy();
      throw redirectRefused(url.href, res.statusCode, headerOf(res.headers, "location") ?? null, true);
    }
    const stream = ct.startsWith("text/event-stream");
    if (stream) stopTimer();
    return {
      status: res.statusCode,
      statusText: res.statusText,
      headers: res.headers,
      // An event stream nobody can abort is handed on as it is (serve's pass-through); anything else is watched to its end.
      body: stream && !signal ? res.body : watched(res.body, { url: url.href, cap: !stream, signal, timedOut: () => timedOut, timeoutMs: o.timeoutMs, done: release }),
      discard: () => {
        release();
        // A body already in whole (a 202, a refused 401) is drained, so its keep-alive connection is
        // reused; anything still arriving is cut off with its connection.
        if (res.body.complete) res.body.resume();
        else res.body.destroy();
      },
    };
  };
}

type Sent = {
  statusCode: number;
  statusText?: string;
  headers: RelayAnswer["headers"];
  /** `complete`: node:http's IncomingMessage has received the whole body. */
  body: AsyncIterable<Uint8Array> & { on(event: "error", fn: () => void): unknown; destroy(): void; resume(): void; complete?: boolean };
};
/** How a request in flight is ended (its timeout, the caller's signal): set by the carrier as it sends. */
type Stop = { cut?: () => void };
type Send = (url: URL, init: RelayInit, stop: Stop) => Promise<Sent>;

/** What carries a relayed request: node:http(s) with keep-alive, or npm undici's request API when a proxy, a CA file or --insecure needs it. */
async function relaySender(o: HttpOptions, lookupFor: (policy: AddressPolicy | undefined) => LookupFunction): Promise<Send> {
  if (needsUndici(o)) {
    const { undici, dispatcherFor } = await undiciDispatchers(o, lookupFor);
    return async (url, init, stop) => {
      const abort = new AbortController();
      stop.cut = () => abort.abort();
      const r = await undici.request(url, { method: init.method as "POST", headers: init.headers, body: init.body ?? null, signal: abort.signal, dispatcher: dispatcherFor(url) as never, headersTimeout: 0, bodyTimeout: 0 });
      return { statusCode: r.statusCode, statusText: r.statusText, headers: r.headers, body: r.body };
    };
  }
  const [http, https] = await Promise.all([import("node:http"), import("node:https")]);
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  const lookup = lookupFor(undefined);
  return (url, init, stop) =>
    new Promise((resolve, reject) => {
      const tls = url.protocol === "https:";
      const { body } = init;
      const headers = body === undefined ? init.headers : { ...init.headers, "content-length": String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength) };
      const req = (tls ? https : http).request(url, { method: init.method, headers, agent: tls ? agents.https : agents.http, lookup }, (res) =>
        resolve({ statusCode: res.statusCode ?? 0, statusText: res.statusMessage, headers: res.headers, body: res }),
      );
      // Destroying the request ends its response too, mid-body (IncomingMessage "aborted").
      stop.cut = () => req.destroy(new Error("aborted"));
      req.on("error", reject);
      req.end(body);
    });
}

/** A relay over a fetch (a test's own fetch, discovery's address-checked one): the same answers, through Response objects. */
export function relayFromFetch(fetch: Fetch): Relay {
  return async (url, init) => {
    const { signal } = init;
    const res = await fetch(url, { method: init.method, headers: init.headers, ...(init.body !== undefined ? { body: init.body as BodyInit } : {}), ...(signal ? { signal } : {}), redirect: "manual" });
    const headers: RelayAnswer["headers"] = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    // Its own reader, so discard() and the signal can end a read that is waiting (the stream stays locked to it).
    const reader = res.body?.getReader();
    let ended = !reader;
    const drop = () => {
      if (ended) return;
      ended = true;
      signal?.removeEventListener("abort", drop);
      void reader!.cancel().catch(() => {});
    };
    if (signal?.aborted) {
      drop();
      throw signal.reason;
    }
    if (!ended) signal?.addEventListener("abort", drop, { once: true });
    return {
      status: res.status,
      statusText: res.statusText,
      headers,
      body: (async function* () {
        try {
          for (;;) {
            const next = await reader?.read();
            if (signal?.aborted) throw signal.reason;
            if (!next || next.done) return;
            yield next.value;
          }
        } finally {
          drop();
        }
      })(),
      discard: drop,
    };
  };
}

/**
 * A relayed body watched to its end: past MAX_BODY_BYTES (`cap`) it is refused; aborted by the
 * caller's signal it fails with the signal's reason, by the timeout with the timeout's own words;
 * `done` when it ends either way.
 */
async function* watched(
  body: Sent["body"],
  o: { url: string; cap: boolean; signal?: AbortSignal; timedOut: () => boolean; timeoutMs: number; done: () => void },
): AsyncIterable<Uint8Array> {
  let size = 0;
  try {
    for await (const chunk of body) {
      if (o.cap && (size += chunk.byteLength) > MAX_BODY_BYTES) {
        body.destroy();
        throw tooLarge(o.url);
      }
      yield chunk;
    }
  } catch (e) {
    if (o.signal?.aborted) throw o.signal.reason;
    if (o.timedOut() && !(e instanceof NetworkError)) throw toNetworkError(e, o.url, true, o.timeoutMs);
    throw e;
  } finally {
    o.done();
  }
}

/**
 * A relayed answer's whole body as text, at most `cap` bytes (default MAX_BODY_BYTES): past that the
 * rest is dropped and the read fails as too large. `partial`: a body past the cap, or one that breaks
 * off, gives what came before instead (an answer looked at for what it says, not passed on).
 */
export async function answerText(a: RelayAnswer, o: { url: URL; cap?: number; partial?: boolean }): Promise<string> {
  const cap = o.cap ?? MAX_BODY_BYTES;
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of a.body) {
      size += chunk.byteLength;
      if (size > cap) {
        a.discard();
        if (!o.partial) throw tooLarge(o.url.href, cap);
        parts.push(chunk.subarray(0, chunk.byteLength - (size - cap)));
        break;
      }
      parts.push(chunk);
    }
  } catch (e) {
    if (!o.partial) throw e;
  }
  return utf8.decode(parts.length === 1 ? parts[0] : Buffer.concat(parts));
}
const utf8 = new TextDecoder();

/**
 * undici 7 retries a CONNECT whose socket the proxy dropped forever (UND_ERR_SOCKET counts as
 * recoverable while no request is running: tens of thousands of connections a second; fixed in
 * undici 8, nodejs/undici#5441). Re-labelling that failure makes it fail the request: one attempt.
 */
function oneTunnelAttempt<T extends { connect: (...a: never[]) => unknown }>(proxyClient: T): T {
  const connect = (proxyClient.connect as (opts: object) => Promise<unknown>).bind(proxyClient);
  (proxyClient as unknown as { connect: (opts: object) => Promise<unknown> }).connect = async (opts: object) => {
    try {
      return await connect(opts);
    } catch (e) {
      if ((e as { code?: string }).code !== "UND_ERR_SOCKET") throw e;
      throw new Error("the proxy closed the connection while opening a tunnel (CONNECT)", { cause: e });
    }
  };
  return proxyClient;
}
