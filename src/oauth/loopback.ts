import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type * as OC from "openid-client";
import { AuthError, McpAuthError, NetworkError, UsageError } from "../errors.js";
import { openid, wrapOAuthError } from "./client.js";
import { markControl, registerSecret } from "../io/sanitize.js";
import type { LoopbackRedirect } from "./redirect-uri.js";

/**
 * Authorization code + PKCE (S256) through a one-shot loopback redirect on 127.0.0.1 (RFC 8252).
 * The browser gets its answer only after the code exchange, so the page tells the truth.
 * Any web page can send requests to the loopback port, so a callback that is not this login's (wrong
 * `state`, or an RFC 9207 `iss` other than the issuer's) is answered 400 and ignored; only a matching
 * callback ends the flow, once. openid-client checks both again on the code exchange.
 */
export interface LoopbackOptions {
  params: Record<string, string>;
  /** 0 = a random free port; IdPs that register an exact redirect URI need a fixed one. */
  port: number;
  /** An exact redirect URI registered at the IdP (`--redirect-uri`): its hosts, port and path replace the default. */
  redirect?: LoopbackRedirect;
  /** Says what could not be done but did not stop the login (no IPv6 loopback for `localhost`). */
  warn?: (line: string) => void;
  timeoutMs: number;
  /** What to suggest when the browser never comes back (the caller knows whether it opened one). */
  timeoutHint?: string;
  /** Shows the URL to the user (opens a browser, prints it…). */
  open(url: string): Promise<void>;
}

export async function loopbackLogin(config: OC.Configuration, o: LoopbackOptions): Promise<OC.TokenEndpointResponse> {
  const client = await openid();
  checkBrowserLogin(config);
  const verifier = client.randomPKCECodeVerifier();
  registerSecret(verifier); // never printed, even if a server echoes it back
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();

  const { servers, redirectUri, path } = await loopbackListeners(o);

  try {
    const url = client.buildAuthorizationUrl(config, {
      ...o.params,
      redirect_uri: redirectUri,
      response_type: "code",
      code_challenge: challenge,
      code_challenge_method: "S256",
      state,
    });
    let settle!: { resolve: (t: OC.TokenEndpointResponse) => void; reject: (e: unknown) => void };
    const result = new Promise<OC.TokenEndpointResponse>((resolve, reject) => (settle = { resolve, reject }));
    let handled = false;
    const ignored: string[] = [];
    const metadata = config.serverMetadata();
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      const current = new URL(req.url ?? "/", redirectUri);
      if (current.pathname !== path || handled) {
        res.writeHead(404, { "content-type": "text/plain" }).end("Not found\n");
        return;
      }
      const problem = notThisLogin(current, state, metadata);
      if (problem) {
        ignored.push(problem);
        page(res, 400, "Not this login", `This request ${problem}, so mcp-auth ignored it. The login is still waiting.`);
        return;
      }
      handled = true; // one shot: a second callback can never replay or swap the code
      exchange(client, config, current, verifier, state, o.params.resource).then(
        (tokens) => {
          page(res, 200, "Login complete", "You are signed in to mcp-auth. You can close this window and return to the terminal.");
          settle.resolve(tokens);
        },
        (e: McpAuthError) => {
          page(res, 400, "Login failed", `${e.message}. Return to the terminal for details.`);
          settle.reject(e);
        },
      );
    };
    for (const s of servers) s.on("request", onRequest);
    await o.open(url.href);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const also = ignored.length ? ` (ignored ${ignored.length} redirect${ignored.length > 1 ? "s" : ""} not meant for this login; the last one ${ignored.at(-1)})` : "";
        reject(new AuthError(`login timed out after ${Math.round(o.timeoutMs / 1000)}s waiting for the browser${also}`, { hint: o.timeoutHint ?? "run the login again; use --no-browser to copy the URL by hand" }));
      }, o.timeoutMs);
    });
    try {
      return await Promise.race([result, timeout]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    for (const s of servers) {
      s.closeAllConnections?.();
      s.close();
    }
  }
}

/** The metadata allows a browser login with PKCE S256 (loopback or paste-back), or exit 3. */
export function checkBrowserLogin(config: OC.Configuration): void {
  if (!config.serverMetadata().authorization_endpoint) {
    throw new NetworkError("unusable server metadata: authorization_endpoint is missing, so a browser login is impossible", { hint: "fix the server's metadata, or use a grant it supports" });
  }
  // S256 is the only method we send; a server that lists its methods without it would reject the login.
  const methods = config.serverMetadata().code_challenge_methods_supported;
  if (Array.isArray(methods) && !methods.includes("S256")) {
    throw new NetworkError(`the authorization server does not support PKCE with S256 (code_challenge_methods_supported: ${markControl(methods.join(", ")) || "none"}); refusing to log in without it`);
  }
}

/**
 * The listener(s) for the redirect: 127.0.0.1 on the given or a random port by default; for an exact
 * redirect URI, its port on its host — both loopbacks for `localhost`, which a browser may resolve to
 * either. A machine without IPv6 loopback still gets the login on 127.0.0.1 (with a warning), unless
 * the URI names [::1] itself. `listen` is replaceable so that a machine without ::1 can be played.
 */
export async function loopbackListeners(o: Pick<LoopbackOptions, "port" | "redirect" | "warn">, listen = listenOn): Promise<{ servers: Server[]; redirectUri: string; path: string }> {
  const r = o.redirect;
  const servers: Server[] = [];
  try {
    for (const host of r?.hosts ?? ["127.0.0.1" as const]) {
      const port = r ? r.port : o.port;
      try {
        servers.push(await listen(port, host, r ? "the redirect URI's" : "--port"));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (host === "::1" && (code === "EADDRNOTAVAIL" || code === "EAFNOSUPPORT") && servers.length) {
          o.warn?.(`this machine has no IPv6 loopback (::1), so the login listens on 127.0.0.1:${port} only; a browser that resolves localhost to ::1 will not reach it`);
          continue;
        }
        if (host === "::1" && (code === "EADDRNOTAVAIL" || code === "EAFNOSUPPORT")) {
          throw new UsageError(`cannot listen on [::1]:${port} for the login redirect: this machine has no IPv6 loopback (${code})`, { hint: "register and pass a redirect URI on 127.0.0.1 or localhost instead (--redirect-uri)" });
        }
        throw e;
      }
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  const port = (servers[0]!.address() as AddressInfo).port;
  return r ? { servers, redirectUri: r.uri, path: r.path } : { servers, redirectUri: `http://127.0.0.1:${port}/callback`, path: "/callback" };
}

export function listenOn(port: number, host: "127.0.0.1" | "::1", flag: string): Promise<Server> {
  const server = createServer();
  return new Promise<Server>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        e.code === "EADDRINUSE"
          ? new UsageError(`port ${port} on ${host === "::1" ? "[::1]" : host} is in use, cannot receive the login redirect`, { hint: flag === "--port" ? "free it, or pick another with --port" : "free it: the IdP accepts only the registered redirect URI's port" })
          : e,
      ),
    );
    server.listen({ port, host, ipv6Only: host === "::1" }, () => resolve(server));
  });
}

/**
 * Why a callback is not the answer to this login (then it is ignored), or undefined. State first,
 * then RFC 9207: a present `iss` must be the issuer, and one the server promised must be present.
 * Checked before an `error` is believed, so a forged "access_denied" cannot end the login either.
 */
export function notThisLogin(current: URL, state: string, metadata: OC.ServerMetadata): string | undefined {
  if (current.searchParams.get("state") !== state) return "carried the wrong state (a stale or forged login attempt)";
  const iss = current.searchParams.get("iss");
  if (iss !== null && iss !== metadata.issuer) return "came from another issuer than the one being logged in to (RFC 9207 iss mismatch)";
  if (iss === null && metadata.authorization_response_iss_parameter_supported) return "lacked the issuer (iss) this server always sends (RFC 9207)";
  return undefined;
}

export async function exchange(client: typeof OC, config: OC.Configuration, current: URL, verifier: string, state: string, resource?: string): Promise<OC.TokenEndpointResponse> {
  const error = current.searchParams.get("error");
  if (error) {
    const desc = current.searchParams.get("error_description");
    throw new AuthError(`login refused by the server: ${error}${desc ? `: ${desc}` : ""}`);
  }
  try {
    // RFC 8707 / MCP spec: `resource` on the token request too, not only on the authorization request.
    return await client.authorizationCodeGrant(config, current, { pkceCodeVerifier: verifier, expectedState: state }, resource ? { resource } : undefined);
  } catch (e) {
    throw wrapOAuthError(e, "login", config);
  }
}

function page(res: ServerResponse, status: number, title: string, text: string): void {
  const ok = status === 200;
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", connection: "close" });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mcp-auth: ${esc(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;margin:0;background:#f6f7f9;color:#1d2330}
main{background:#fff;padding:2rem 2.5rem;border-radius:12px;box-shadow:0 2px 12px #0002;max-width:32rem}
h1{font-size:1.3rem;margin:0 0 .5rem;color:${ok ? "#17693a" : "#a3261a"}}</style></head>
<body><main><h1>${ok ? "✓" : "✗"} ${esc(title)}</h1><p>${esc(text)}</p></main></body></html>`);
}
