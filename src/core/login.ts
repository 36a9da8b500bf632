import type * as OC from "openid-client";
import type { Context } from "../context.js";
import { AuthError, McpAuthError, NetworkError, UsageError } from "../errors.js";
import { targetParams, toTokenSet, type TokenSet } from "../oauth/client.js";
import { checkAuthorizeParams } from "../oauth/authorize-params.js";
import { deviceLogin } from "../oauth/device.js";
import { AddressRefusedError } from "../oauth/http.js";
import { loopbackLogin } from "../oauth/loopback.js";
import { MAX_PASTE, pasteLogin } from "../oauth/paste.js";
import { readLine } from "../io/line-input.js";
import { loopbackRedirect, redirectMismatch } from "../oauth/redirect-uri.js";
import type { Target } from "./target.js";
import { oauthConfig } from "./tokens.js";

/** How a person completes a login: which flow, and how the URL reaches a browser. */
export interface LoginOptions {
  device?: boolean;
  port?: number;
  /** `login --redirect-uri`: this exact loopback redirect URI instead of the profile's. */
  redirectUri?: string;
  /** false = only print the URL. */
  browser: boolean;
  /** Run this instead of the system browser opener: `CMD <url>`. */
  browserCommand?: string;
  timeoutSec: number;
  /** Paste-back: print the URL, then read the address the browser was sent to (or the code). */
  paste?: boolean;
  /**
   * Reads the pasted line. Default: the terminal, when there is one. Without either, no paste-back
   * (stdin may be someone else's: the proxy's is the MCP client's JSON-RPC).
   */
  readPasted?: () => Promise<string>;
}

/** Browser (authorization code + PKCE on a loopback redirect) or device-code login for a target. */
export function interactiveLogin(ctx: Context, o: LoginOptions): (t: Target) => Promise<TokenSet> {
  const run = signIn(ctx, o);
  return async (t) => {
    try {
      return await run(t);
    } catch (e) {
      // What the IdP said stays the message; a preset that knows the quirk names its fix (docs/presets.md).
      throw (await import("../presets/index.js")).withPresetHint(t, e);
    }
  };
}

function signIn(ctx: Context, o: LoginOptions): (t: Target) => Promise<TokenSet> {
  return async (t) => {
    const config = await oauthConfig(ctx, t);
    const params = targetParams(t);
    let codeShown = false;
    const device = async () => {
      const res = await deviceLogin(config, params, async (d) => {
        codeShown = true;
        ctx.info(`To sign in, open ${d.verificationUri} and enter the code: ${d.userCode}`);
        if (d.verificationUriComplete) ctx.info(`(or open ${d.verificationUriComplete})`);
        ctx.info(`Waiting for approval (the code expires in ${Math.round(d.expiresIn / 60)} min)…`);
        if (o.browserCommand) await openBrowser(ctx, d.verificationUriComplete ?? d.verificationUri, o);
      }, o.timeoutSec * 1000);
      return toTokenSet(res, ctx.now());
    };
    if (o.device || t.grant === "device_code") return device();
    if (t.grant === "client_credentials") throw new UsageError(`profile "${t.profile}" uses client credentials; it needs no login`, { hint: "use: mcp-auth token" });
    const exact = o.redirectUri ?? t.redirectUri;
    if (exact && o.port !== undefined) throw new UsageError(`--port cannot be combined with ${o.redirectUri ? "--redirect-uri" : `profile "${t.profile}"'s redirect URI ${exact}`}: the URI fixes the port`);
    const read = o.readPasted ?? (ctx.io.interactive ? () => readLine(ctx.io.in, { max: MAX_PASTE, err: ctx.io.err }) : undefined);
    if (o.paste && !read) throw new UsageError("--paste needs a terminal to paste into");
    let paste = Boolean(o.paste);
    // Nobody would see a browser the opener starts here: do not pretend, and wait for nothing.
    const headless = o.paste || o.device || !o.browser || o.browserCommand ? undefined : ctx.browser.unavailable?.();
    if (headless) {
      if (config.serverMetadata().device_authorization_endpoint) {
        ctx.info(`No browser can be opened here (${headless}); signing in with a device code instead${read ? " (--paste: paste back the address a browser elsewhere is sent to)" : ""}.`);
        try {
          return await device();
        } catch (e) {
          // The server has the device flow but refused it to this client: paste-back still works.
          if (!(e instanceof AuthError) || codeShown || !read) throw e;
          ctx.info(`The authorization server does not let this client use a device code (${e.message}); sign in by pasting back the address instead.`);
        }
      } else if (read) ctx.info(`No browser can be opened here (${headless}), and the authorization server offers no device code: sign in by pasting back the address.`);
      else ctx.info(`No browser can be opened here (${headless}): open the URL below in a browser on this machine, or run mcp-auth login in a terminal to paste back the address.`);
      paste = Boolean(read);
    }
    await checkAuthorizationEndpoint(ctx, t, config);
    if (paste && read) {
      // A profile's exact redirect URI is the one the IdP allows; nothing listens on it either way.
      const redirectUri = exact ? loopbackRedirect(exact, o.redirectUri ? "--redirect-uri" : `the redirect URI of profile "${t.profile}"`).uri : pasteRedirectUri(o.port || t.redirectPort);
      const res = await pasteLogin(config, {
        params: { ...params, ...checkAuthorizeParams(t.authorizeParams, t.profile) },
        redirectUri,
        show: async (url) => {
          ctx.info(`Open this URL in a browser on any machine and sign in:\n  ${url}`);
          ctx.info(`The browser then goes to ${redirectUri}?code=…, which fails to load; that is expected.`);
          ctx.info("Copy the whole address from its address bar, paste it here (it is not shown) and press Enter:");
        },
        read,
      });
      return toTokenSet(res, ctx.now());
    }
    const browse = !headless && (o.browser || Boolean(o.browserCommand));
    const res = await loopbackLogin(config, {
      // Extra parameters (Google's access_type=offline…) go on the authorization request only.
      params: { ...params, ...checkAuthorizeParams(t.authorizeParams, t.profile) },
      port: o.port ?? t.redirectPort ?? 0,
      ...(exact && { redirect: loopbackRedirect(exact, o.redirectUri ? "--redirect-uri" : `the redirect URI of profile "${t.profile}"`) }),
      warn: (line) => ctx.warn(line),
      timeoutMs: o.timeoutSec * 1000,
      // --no-browser was given (or no browser can run): suggesting it again would not help.
      timeoutHint: browse ? undefined : "run the login again and open the URL in a browser on this machine, or use --device",
      open: async (url) => {
        if (browse) {
          ctx.info(`Opening your browser to sign in. If it does not open, visit:\n  ${url}`);
          await openBrowser(ctx, url, o);
        } else {
          ctx.info(`Open this URL in a browser on this machine to sign in:\n  ${url}`);
        }
        ctx.info(`Waiting for the browser to complete the sign-in (up to ${waitFor(o.timeoutSec)}; Ctrl-C to cancel)…`);
      },
    }).catch((e: unknown) => {
      throw redirectRefused(e, t, exact);
    });
    return toTokenSet(res, ctx.now());
  };
}

/**
 * The redirect_uri of a paste-back login: the profile's loopback redirect (the one the IdP already
 * allows), on the port it was registered with, else on none (RFC 8252 §7.3 lets a native client's
 * loopback redirect take any port). Nothing listens; the address bar keeps the answer.
 */
export function pasteRedirectUri(port: number | undefined): string {
  return `http://127.0.0.1${port ? `:${port}` : ""}/callback`;
}

/**
 * The authorization endpoint answers (any HTTP status but a gateway's 502–504), or exit 3 now
 * rather than after minutes of waiting for a browser that cannot load it (discovery may be cached,
 * and the endpoint may live on another host than the issuer).
 */
async function checkAuthorizationEndpoint(ctx: Context, t: { issuer: string }, config: OC.Configuration): Promise<void> {
  const endpoint = config.serverMetadata().authorization_endpoint;
  if (!endpoint) return; // the login itself refuses such metadata, naming it
  let status: number;
  try {
    const res = await ctx.fetchFrom([t.issuer])(endpoint, { redirect: "manual", returnRedirects: true });
    await res.body?.cancel().catch(() => {});
    status = res.status;
  } catch (e) {
    if (e instanceof AddressRefusedError || !(e instanceof NetworkError)) throw e;
    throw new NetworkError(`the authorization endpoint cannot be reached, so a browser could not sign in: ${e.message}`, { hint: e.hint ?? "check that the IdP is up, then log in again", cause: e });
  }
  if (status >= 502 && status <= 504) {
    throw new NetworkError(`the authorization endpoint ${endpoint} answered HTTP ${status} (its gateway cannot reach the IdP), so a browser could not sign in`, { hint: "check that the IdP is up, then log in again" });
  }
}

/** A code exchange refused for its redirect URI (docs/redirect-uris.md) says which flag fixes it. */
function redirectRefused(e: unknown, t: Target, exact: string | undefined): unknown {
  if (!(e instanceof McpAuthError) || e.hint || !redirectMismatch(e.message)) return e;
  const fix = exact ? `check that ${exact} is registered at the IdP exactly as written` : `pass the redirect URI registered at the IdP: mcp-auth profiles set ${t.profile ?? "NAME"} --redirect-uri http://localhost:PORT/PATH`;
  return new AuthError(e.message, { cause: e, code: e.code, hint: fix });
}

function waitFor(sec: number): string {
  return sec % 60 === 0 ? `${sec / 60} min` : `${sec} s`;
}

/** `--browser-command`, else $BROWSER, else the platform opener (ctx.browser decides). */
async function openBrowser(ctx: Context, url: string, o: LoginOptions): Promise<void> {
  await ctx.browser.open(url, { command: o.browserCommand });
}
