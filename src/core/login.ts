import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { targetParams, toTokenSet, type TokenSet } from "../oauth/client.js";
import { checkAuthorizeParams } from "../oauth/authorize-params.js";
import { deviceLogin } from "../oauth/device.js";
import { loopbackLogin } from "../oauth/loopback.js";
import type { Target } from "./target.js";
import { oauthConfig } from "./tokens.js";

/** How a person completes a login: which flow, and how the URL reaches a browser. */
export interface LoginOptions {
  device?: boolean;
  port?: number;
  /** false = only print the URL. */
  browser: boolean;
  /** Run this instead of the system browser opener: `CMD <url>`. */
  browserCommand?: string;
  timeoutSec: number;
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
    const res = await loopbackLogin(config, {
      // Extra parameters (Google's access_type=offline…) go on the authorization request only.
      params: { ...params, ...checkAuthorizeParams(t.authorizeParams, t.profile) },
      port: o.port ?? t.redirectPort ?? 0,
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
    });
    return toTokenSet(res, ctx.now());
  };
}

function waitFor(sec: number): string {
  return sec % 60 === 0 ? `${sec / 60} min` : `${sec} s`;
}

/** `--browser-command`, else $BROWSER, else the platform opener (ctx.browser decides). */
async function openBrowser(ctx: Context, url: string, o: LoginOptions): Promise<void> {
  await ctx.browser.open(url, { command: o.browserCommand });
}
