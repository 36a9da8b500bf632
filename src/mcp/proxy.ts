import { covers } from "../core/covers.js";
import { AuthError, McpAuthError } from "../errors.js";
import { parseWwwAuthenticate } from "../oauth/discovery.js";
import { redact, type Fetch } from "../oauth/http.js";
import { HttpTransportError, isRequest, SseTransport, StdioTransport, StreamError, StreamableHttpTransport, type JSONRPCMessage, type Transport } from "./transport.js";

/**
 * The stdio ↔ MCP-over-HTTP bridge behind `mcp-auth proxy`: an MCP client that only speaks stdio
 * (Claude Desktop, …) launches us; every JSON-RPC line it writes is sent to the remote server with a
 * fresh bearer token, and everything the server sends back (responses, notifications, requests, on
 * POST or GET event streams) is written to stdout, one JSON-RPC message per line.
 *
 * Its transports (./transport.ts) follow the MCP SDK's client transports without loading the SDK's
 * zod schemas (the proxy's memory budget): Streamable HTTP first, then the older HTTP+SSE transport
 * when the server answers the first POST with 400/404/405 (the fallback the SDK's documentation
 * recommends for clients). Nothing here touches the process: the streams, the token source and the
 * log come in as parameters.
 */
export interface BearerToken {
  access_token: string;
  /** Seconds since the epoch. */
  expires_at: number;
}

export interface ProxyOptions {
  url: URL;
  /** From the MCP client: newline-delimited JSON-RPC. */
  input: NodeJS.ReadableStream;
  /** To the MCP client: JSON-RPC only. */
  output: NodeJS.WritableStream;
  /** A token from the cache or the IdP; `forceRefresh` when the server refused the last one. */
  token: (o: { forceRefresh: boolean }) => Promise<BearerToken>;
  fetch: Fetch;
  now: () => number; // ms
  /** One line to the user (stderr); the caller strips control characters and known secrets. */
  error: (line: string) => void;
  /** Traffic trace (stderr, --debug). Messages are redacted before they get here. */
  debug?: (line: string) => void;
  /** Who the token belongs to, for messages: `profile "dev"`. */
  owner: string;
  /** What to do when the token is refused: `run: mcp-auth login dev`. */
  loginHint: string;
  transport?: "auto" | "streamable-http" | "sse";
  /** How long to wait for answers still owed after stdin closes (ms). */
  drainMs?: number;
  /**
   * Step-up (MCP spec 2025-11-25): the server answered 403 insufficient_scope naming `scopes`; get a
   * token that also has them. Absent = report the refusal.
   */
  stepUp?: (scopes: string[]) => Promise<BearerToken>;
  /**
   * The request URLs a 403 may step up for: the profile's own server (src/core/covers.ts). Default:
   * `url` and what lies under it. A legacy HTTP+SSE server may name a POST endpoint elsewhere on its
   * origin; a refusal there is passed on and never widens the profile.
   */
  covers?: (url: URL) => boolean;
}

/** Step-ups per proxy session: the spec's "no more than a few times", so a server that is never satisfied cannot loop us. */
export const MAX_STEP_UPS = 2;

/** A challenge may ask for this many scopes at most, each an RFC 6749 §3.3 scope-token of this length at most. */
const MAX_SCOPES = 32;
const MAX_SCOPE_LENGTH = 256;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** JSON-RPC error code of failures the proxy itself reports (the implementation-defined server range). */
export const PROXY_ERROR = -32000;

/** Refresh a token this long before it expires: a minute, or half its life if it is shorter. */
const MAX_SKEW_MS = 60_000;

/** The server refused a token we had just renewed. */
export class TokenRefusedError extends AuthError {}

type Id = string | number;

/** Runs until the input closes; resolves once the session is closed upstream. */
export async function runProxy(o: ProxyOptions): Promise<void> {
  const trace = o.debug ? (dir: string, m: unknown) => o.debug!(`${dir} ${short(redact(JSON.stringify(m)))}`) : undefined;
  const bearer = bearerCache(o);
  const authFetch = authorizedFetch(o, bearer);

  const down = new StdioTransport(o.input, o.output);
  /** Requests sent upstream and not answered yet: id → method. */
  const owed = new Map<Id, string>();
  let refusedShown = false;
  let closing = false;

  const toClient = (m: JSONRPCMessage) => {
    trace?.("stdio <", m);
    if (("result" in m || "error" in m) && m.id !== undefined) {
      const method = owed.get(m.id as Id);
      owed.delete(m.id as Id);
      // The transport adds MCP-Protocol-Version to later requests, as the SDK's own Client does.
      if (method === "initialize" && "result" in m && m.result) {
        const v = (m.result as { protocolVersion?: unknown }).protocolVersion;
        if (typeof v === "string") up.setProtocolVersion?.(v);
      }
    }
    void down.send(m).catch(() => {});
  };

  const report = (e: unknown): string => {
    const err = e instanceof McpAuthError ? e : new McpAuthError((e as Error)?.message ?? String(e));
    // A server's error text may be a whole HTML page, or echo the token: keep it short and redacted.
    const line = `${short(redact(err.message), 300)}${err.hint ? ` (${err.hint})` : ""}`.replace(/\s*\n\s*/g, " ");
    // One line per episode: a client retrying in a loop must not flood the log.
    if (!(e instanceof AuthError) || !refusedShown) o.error(line);
    if (e instanceof AuthError) refusedShown = true;
    return line;
  };

  const fail = (m: JSONRPCMessage, e: unknown) => {
    const line = report(e);
    if (!isRequest(m)) return;
    owed.delete(m.id);
    const status = e instanceof HttpTransportError ? e.code : e instanceof TokenRefusedError ? 401 : undefined;
    toClient({ jsonrpc: "2.0", id: m.id, error: { code: PROXY_ERROR, message: `mcp-auth: ${line}`, data: status ? { status } : undefined } });
  };

  const wire = (t: Transport) => {
    t.onmessage = (m) => {
      refusedShown = false;
      toClient(m);
    };
    // Failed sends are answered through `fail`; this only sees the transport's own stream trouble.
    t.onerror = (e) => {
      if (closing) return;
      if (e instanceof AuthError || e instanceof StreamError) report(e);
      else o.debug?.(`upstream: ${e.message}`);
    };
    // A request whose answer cannot come any more (its event stream broke a cap or ended first).
    t.onrequesterror = (m, e) => fail(m, e);
  };

  const streamable = (): Transport => new StreamableHttpTransport(o.url, authFetch);
  const legacy = async (): Promise<Transport> => new SseTransport(o.url, authFetch);
  let up: Transport = o.transport === "sse" ? await legacy() : streamable();
  wire(up);
  await up.start();
  let mayFallBack = (o.transport ?? "auto") === "auto";

  const sendUp = async (m: JSONRPCMessage): Promise<void> => {
    try {
      await up.send(m);
    } catch (e) {
      // An old HTTP+SSE server does not take POSTs at its SSE URL: reconnect that way, once.
      if (!(mayFallBack && e instanceof HttpTransportError && [400, 404, 405].includes(e.code ?? 0))) throw e;
      o.debug?.(`upstream answered ${e.code} to a Streamable HTTP POST; trying the HTTP+SSE transport`);
      mayFallBack = false;
      await up.close().catch(() => {});
      up = await legacy();
      wire(up);
      await up.start();
      await up.send(m);
    } finally {
      mayFallBack = false;
    }
  };

  // Notifications keep their order relative to what follows them (initialized before the next request),
  // and nothing is sent before the first message (initialize) has settled the transport; requests then
  // run side by side.
  let barrier: Promise<unknown> = Promise.resolve();
  let first = true;
  down.onmessage = (m) => {
    trace?.("stdio >", m);
    if (isRequest(m)) owed.set(m.id, m.method);
    const sent = barrier.then(() => sendUp(m)).catch((e) => fail(m, e));
    if (first || !isRequest(m)) barrier = sent;
    first = false;
  };
  down.onerror = (e) => o.error(`ignored a line from the MCP client that is not JSON-RPC: ${short(e.message)}`);

  const closed = new Promise<void>((resolve) => {
    o.input.once("end", resolve);
    o.input.once("close", resolve);
  });
  await down.start();
  await closed;

  // stdin is closed: answer what is still owed (a piped batch wants its results), then end the session.
  const deadline = o.now() + (o.drainMs ?? 3000);
  while (owed.size && o.now() < deadline) await sleep(20);
  await barrier;
  closing = true;
  if (up.terminateSession) await within(2000, up.terminateSession().catch(() => {}));
  await up.close().catch(() => {});
  await down.close().catch(() => {});
}

/** The current token, renewed shortly before it expires; concurrent callers share one renewal. */
function bearerCache(o: ProxyOptions) {
  let current: { token: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;
  const renew = (forceRefresh: boolean) =>
    (pending ??= o
      .token({ forceRefresh })
      .then((t) => keep(t))
      .finally(() => (pending = undefined)));
  const keep = (t: BearerToken) => {
    const now = o.now();
    const expires = t.expires_at * 1000;
    current = { token: t.access_token, renewAt: expires - Math.min(MAX_SKEW_MS, Math.max(0, expires - now) / 2) };
    return t.access_token;
  };
  return {
    /** A token obtained elsewhere (a step-up) replaces the current one. */
    set: keep,
    get: (): Promise<string> => (current && o.now() < current.renewAt ? Promise.resolve(current.token) : renew(false)),
    /** The server refused `stale`: get a new one, unless someone already has. */
    refused: async (stale: string): Promise<string> => {
      // A renewal under way may just hand back the cached (refused) token: wait for it, then judge.
      await pending?.catch(() => {});
      return current && current.token !== stale ? current.token : renew(true);
    },
  };
}

/**
 * ctx.fetch with the bearer token on every request; a 401 gets one renewal and one retry, a 403
 * insufficient_scope a step-up (at most MAX_STEP_UPS per session) and one retry.
 */
function authorizedFetch(o: ProxyOptions, bearer: ReturnType<typeof bearerCache>): Fetch {
  let stepUps = 0;
  let guardShown = false;
  let badShown = false;
  let outsideShown = false;
  let stepping: Promise<string> | undefined;
  const mayStepUp = o.covers ?? ((u: URL) => covers(o.url, u));
  /**
   * The scopes a 403 insufficient_scope challenge asks for: none for any other answer, without a
   * step-up, for a URL the profile does not cover, or when the challenge is not a list of scope-tokens.
   */
  const stepUpScopes = (res: Response, url: URL): string[] => {
    if (res.status !== 403 || !o.stepUp) return [];
    const c = parseWwwAuthenticate(res.headers.get("www-authenticate"));
    if (c?.params.error !== "insufficient_scope") return [];
    if (!mayStepUp(url)) {
      if (!outsideShown) o.error(`the MCP server asks for more scope at ${url.origin}${url.pathname}, outside ${o.owner}'s server: no step-up there; passing its refusal on`);
      outsideShown = true;
      return [];
    }
    const scopes = (c.params.scope ?? "").split(" ").filter(Boolean);
    if (scopes.length > MAX_SCOPES || !scopes.every((s) => s.length <= MAX_SCOPE_LENGTH && SCOPE_TOKEN.test(s))) {
      if (!badShown) o.error(`the MCP server ${o.url.host} asks for more scope, but not as a list of OAuth scopes; passing its refusal on`);
      badShown = true;
      return [];
    }
    return [...new Set(scopes)];
  };
  const withToken = (init: RequestInit | undefined, token: string): RequestInit => {
    const headers = new Headers(init?.headers);
    headers.set("authorization", `Bearer ${token}`);
    return { ...init, headers };
  };
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    // The transports stay on the server's origin; should one ever stray, the token does not follow.
    if (url.origin !== o.url.origin) throw new McpAuthError(`refusing to send the token of ${o.owner} to ${url.origin}, which is not the MCP server's origin ${o.url.origin}`);
    const token = await bearer.get();
    let res = await o.fetch(input, withToken(init, token));
    let used = token;
    for (let scopes = stepUpScopes(res, url); scopes.length; scopes = stepUpScopes(res, url)) {
      const current = await bearer.get();
      if (current === used) {
        // Requests refused together share one step-up.
        if (!stepping) {
          if (stepUps >= MAX_STEP_UPS) {
            if (!guardShown) o.error(`the MCP server ${o.url.host} still asks for more scope (${scopes.join(" ")}) after ${MAX_STEP_UPS} step-ups; passing its refusal on`);
            guardShown = true;
            break;
          }
          stepUps++;
          o.error(`the MCP server ${o.url.host} needs scope ${scopes.join(" ")}: getting a token that has it (step-up ${stepUps} of ${MAX_STEP_UPS})`);
          stepping = o.stepUp!(scopes).then((t) => bearer.set(t)).finally(() => (stepping = undefined));
        }
        used = await stepping;
      } else used = current; // someone stepped up meanwhile
      await res.body?.cancel().catch(() => {});
      res = await o.fetch(input, withToken(init, used));
    }
    if (res.status !== 401) return res;
    await res.body?.cancel().catch(() => {});
    o.debug?.("the server answered 401: getting a new token and retrying once");
    const fresh = await bearer.refused(used);
    const again = await o.fetch(input, withToken(init, fresh));
    if (again.status !== 401) return again;
    await again.body?.cancel().catch(() => {});
    throw new TokenRefusedError(`the MCP server ${o.url.host} refused the token of ${o.owner} (HTTP 401, also after getting a new one)`, { hint: o.loginHint });
  };
}

function short(s: string, max = 2000): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Waits for `p`, but no longer than `ms` (and leaves no timer behind to keep the process up). */
async function within(ms: number, p: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
