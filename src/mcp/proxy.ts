import { covers } from "../core/covers.js";
import { McpAuthError } from "../errors.js";
import { parseWwwAuthenticate } from "../oauth/discovery.js";
import { headerOf, type Relay, type RelayAnswer } from "../oauth/http.js";
import { ProxySession, TokenRefusedError } from "./proxy-session.js";
import type { MemoryTransport } from "./transport.js";

export { PROXY_ERROR, TokenRefusedError } from "./proxy-session.js";

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
 * log come in as parameters. This module holds the token side (a cached bearer, renewed before it
 * expires; a 401 retried once; a 403 insufficient_scope stepped up); ./proxy-session.ts the JSON-RPC side.
 */
export interface BearerToken {
  access_token: string;
  /** Seconds since the epoch. */
  expires_at: number;
}

/** The proxy's MCP client: over stdio (`mcp-auth proxy`), or in memory (serve's era bridges). */
export type ProxyClient =
  | {
      /** From the MCP client: newline-delimited JSON-RPC. */
      input: NodeJS.ReadableStream;
      /** To the MCP client: JSON-RPC only. */
      output: NodeJS.WritableStream;
      client?: undefined;
    }
  | {
      /**
       * Messages as objects, with no JSON text or stream in between; the session drains and ends
       * once `closed` settles.
       */
      client: { transport: MemoryTransport; closed: Promise<void> };
      input?: undefined;
      output?: undefined;
    };

/** Everything but the client: the server, its token, how requests reach it. */
export interface ProxyUpstream {
  url: URL;
  /** A token from the cache or the IdP; `forceRefresh` when the server refused the last one. */
  token: (o: { forceRefresh: boolean }) => Promise<BearerToken>;
  /** What carries every request to the server (src/oauth/http.ts createRelay; a test's server through relayFromFetch). */
  relay: Relay;
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
  /**
   * The server's protocol era (docs/mcp-2026-07-28.md): `auto` probes it with server/discover; the
   * client's era is read from its first message. Across eras the proxy translates.
   */
  protocol?: "auto" | "legacy" | "2026-07-28";
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
  /** Extra headers on every request to the server (`--header`), never one the proxy or the transport sets. */
  headers?: ReadonlyArray<readonly [string, string]>;
}

export type ProxyOptions = ProxyClient & ProxyUpstream;

/** Step-ups per proxy session: the spec's "no more than a few times", so a server that is never satisfied cannot loop us. */
export const MAX_STEP_UPS = 2;

/** A challenge may ask for this many scopes at most, each an RFC 6749 §3.3 scope-token of this length at most. */
const MAX_SCOPES = 32;
const MAX_SCOPE_LENGTH = 256;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** Refresh a token this long before it expires: a minute, or half its life if it is shorter. */
const MAX_SKEW_MS = 60_000;

/** Runs until the input closes; resolves once the session is closed upstream. */
export async function runProxy(o: ProxyOptions): Promise<void> {
  await new ProxySession(o, authorizedRelay(o, bearerCache(o))).run();
}

/** The current token, renewed shortly before it expires; concurrent callers share one renewal. */
export function bearerCache(o: ProxyUpstream) {
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
 * The token side of each request: `send` carries the bearer token; a 401 gets one renewal and one
 * retry, a 403 insufficient_scope a step-up (at most MAX_STEP_UPS per session) and one retry.
 */
function tokenGate(o: ProxyUpstream, bearer: ReturnType<typeof bearerCache>) {
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
  const stepUpScopes = (res: RelayAnswer, url: URL): string[] => {
    if (res.status !== 403 || !o.stepUp) return [];
    const c = parseWwwAuthenticate(headerOf(res.headers, "www-authenticate") ?? null);
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
  /** The token after a step-up for `scopes`: requests refused together share one. */
  const steppedUp = async (scopes: string[], used: string): Promise<string | undefined> => {
    const current = await bearer.get();
    if (current !== used) return current; // someone stepped up meanwhile
    if (!stepping) {
      if (stepUps >= MAX_STEP_UPS) {
        if (!guardShown) o.error(`the MCP server ${o.url.host} still asks for more scope (${scopes.join(" ")}) after ${MAX_STEP_UPS} step-ups; passing its refusal on`);
        guardShown = true;
        return undefined;
      }
      stepUps++;
      o.error(`the MCP server ${o.url.host} needs scope ${scopes.join(" ")}: getting a token that has it (step-up ${stepUps} of ${MAX_STEP_UPS})`);
      stepping = o.stepUp!(scopes).then((t) => bearer.set(t)).finally(() => (stepping = undefined));
    }
    return stepping;
  };
  return async function authorized(url: URL, send: (token: string) => Promise<RelayAnswer>): Promise<RelayAnswer> {
    // The transports stay on the server's origin; should one ever stray, the token does not follow.
    if (url.origin !== o.url.origin) throw new McpAuthError(`refusing to send the token of ${o.owner} to ${url.origin}, which is not the MCP server's origin ${o.url.origin}`);
    let used = await bearer.get();
    let res = await send(used);
    for (let scopes = stepUpScopes(res, url); scopes.length; scopes = stepUpScopes(res, url)) {
      const next = await steppedUp(scopes, used);
      if (next === undefined) break;
      used = next;
      res.discard();
      res = await send(used);
    }
    if (res.status !== 401) return res;
    res.discard();
    o.debug?.("the server answered 401: getting a new token and retrying once");
    const again = await send(await bearer.refused(used));
    if (again.status !== 401) return again;
    again.discard();
    throw new TokenRefusedError(`the MCP server ${o.url.host} refused the token of ${o.owner} (HTTP 401, also after getting a new one)`, { hint: o.loginHint });
  };
}

/** `o.relay` with the bearer token on every request, through the token gate. */
export function authorizedRelay(o: ProxyUpstream, bearer: ReturnType<typeof bearerCache>): Relay {
  const authorized = tokenGate(o, bearer);
  const extra = (o.headers ?? []).map(([k, v]) => [k.toLowerCase(), v] as const);
  return (url, init) =>
    authorized(
      url,
      (token) => {
        // Extra headers first, then the token: a name the transport or the token owns is refused earlier (src/headers.ts), and never wins here.
        const headers: Record<string, string> = Object.assign(Object.create(null), init.headers);
        for (const [k, v] of extra) if (!(k in headers)) headers[k] = v;
        headers.authorization = `Bearer ${token}`;
        return o.relay(url, { ...init, headers });
      },
    );
}
