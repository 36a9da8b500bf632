import type { Command } from "commander";
import type { Context } from "../context.js";
import { interactiveLogin } from "../core/login.js";
import { getToken, saveTokens } from "../core/tokens.js";
import { acquire } from "../store/lock.js";
import { cacheKey } from "../target.js";
import { profileFor, relative, seconds, withProfileOptions } from "./shared.js";
import { targetFromProfile } from "../core/target.js";
import { UsageError } from "../errors.js";

export function registerLogin(program: Command, getCtx: () => Context): void {
  const cmd = program
    .command("login [profile]")
    .description("sign in with a browser (authorization code + PKCE) or a device code; tokens go to the cache")
    .option("--device", "use the device-code flow (SSH, WSL, no local browser)")
    .option("--port <port>", "fixed loopback port for the redirect (default: a random free port)")
    .option("--no-browser", "print the URL instead of opening a browser")
    .option("--browser-command <cmd>", "open the URL with this command (`CMD <url>`; env BROWSER works too)")
    .option("--login-timeout <seconds>", "how long to wait for the browser", "300");
  withProfileOptions(cmd);
  cmd.action(async (name: string | undefined, o) => {
    const ctx = getCtx();
    const profile = profileFor(ctx, o, name);
    const t = targetFromProfile(profile);
    if (t.grant === "client_credentials") {
      // Nothing to sign in to: check the credentials by getting a fresh token instead.
      const tok = await getToken(ctx, t, { minTtl: 0, forceRefresh: true });
      ctx.info(`Profile "${profile.name}" uses client credentials: got a token, valid ${relative(tok.expires_at - ctx.now() / 1000)}.`);
      return;
    }
    const port = o.port === undefined ? undefined : Number(o.port);
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UsageError(`--port must be a port number, got "${o.port}"`);
    const login = interactiveLogin(ctx, {
      device: o.device,
      port,
      browser: o.browser !== false,
      browserCommand: o.browserCommand,
      timeoutSec: seconds("--login-timeout", o.loginTimeout, 300),
    });
    // Hold the profile's lock so a parallel `token` waits for this login instead of starting another.
    const release = await acquire(ctx.paths.locks, cacheKey(t));
    try {
      const tokens = await login(t);
      await saveTokens(ctx, t, tokens);
      ctx.info(`Logged in: profile "${profile.name}", token valid ${relative(tokens.expires_at - ctx.now() / 1000)}${tokens.refresh_token ? ", refreshable" : ""}.`);
    } finally {
      release();
    }
  });
}
