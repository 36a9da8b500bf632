import type { Context } from "../context.js";
import { AuthError, McpAuthError, UsageError } from "../errors.js";
import { targetParams, toTokenSet, type TokenSet } from "../oauth/client.js";
import { deviceLogin } from "../oauth/device.js";
import { loopbackLogin } from "../oauth/loopback.js";
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
}

/** Browser (authorization code + PKCE on a loopback redirect) or device-code login for a target. */
export function interactiveLogin(ctx: Context, o: LoginOptions): (t: Target) => Promise<TokenSet> {
  return async (t) => {
    const config = await oauthConfig(ctx, t);
    const params = targetParams(t);
    if (o.device || t.grant === "device_code") {
      const res = await deviceLogin(config, params, async (d) => {
        ctx.info(`To sign in, open ${d.verificationUri} and enter the code: ${d.userCode}`);
        if (d.verificationUriComplete) ctx.info(`(or open ${d.verificationUriComplete})`);
        ctx.info(`Waiting for approval (the code expires in ${Math.round(d.expiresIn / 60)} min)…`);
        if (o.browserCommand) await openBrowser(ctx, d.verificationUriComplete ?? d.verificationUri, o);
      }, o.timeoutSec * 1000);
      return toTokenSet(res, ctx.now());
    }
    if (t.grant === "client_credentials") throw new UsageError(`profile "${t.profile}" uses client credentials; it needs no login`, { hint: "use: mcp-auth token" });
    const exact = o.redirectUri ?? t.redirectUri;
    if (exact && o.port !== undefined) throw new UsageError(`--port cannot be combined with ${o.redirectUri ? "--redirect-uri" : `profile "${t.profile}"'s redirect URI ${exact}`}: the URI fixes the port`);
    const res = await loopbackLogin(config, {
      params,
      port: o.port ?? t.redirectPort ?? 0,
      ...(exact && { redirect: loopbackRedirect(exact, o.redirectUri ? "--redirect-uri" : `the redirect URI of profile "${t.profile}"`) }),
      warn: (line) => ctx.warn(line),
      timeoutMs: o.timeoutSec * 1000,
      // --no-browser was given: suggesting it again would not help.
      timeoutHint: o.browser || o.browserCommand ? undefined : "run the login again and open the URL in a browser on this machine, or use --device",
      open: async (url) => {
        if (o.browser || o.browserCommand) {
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
