import type { Command } from "commander";
import type { Context } from "../context.js";
import { login } from "../core/session.js";
import { UsageError } from "../errors.js";
import { duration, profileFor, seconds, withSpinner, withProfileOptions, type Run } from "./shared.js";

export interface LoginCommandOptions {
  profileArg?: string;
  profile?: string;
  provider?: string;
  device?: boolean;
  port?: string;
  /** false with --no-browser */
  browser?: boolean;
  browserCommand?: string;
  loginTimeout?: string;
}

export async function runLogin(ctx: Context, o: LoginCommandOptions): Promise<void> {
  const profile = profileFor(ctx, o, o.profileArg);
  const port = o.port === undefined ? undefined : Number(o.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UsageError(`--port must be a port number, got "${o.port}"`);
  const run = () =>
    login(ctx, profile, {
      device: o.device,
      port,
      browser: o.browser !== false,
      browserCommand: o.browserCommand,
      timeoutSec: seconds("--login-timeout", o.loginTimeout, 300),
    });
  // Client credentials are one request to the IdP; a browser or device login prints its own progress.
  const r = profile.grant === "client_credentials" ? await withSpinner(ctx, `Getting a token from ${profile.issuer}…`, run) : await run();
  const valid = duration(r.token.expires_at - ctx.now() / 1000);
  if (r.kind === "client_credentials") ctx.info(`Profile "${profile.name}" uses client credentials: got a token, valid for ${valid}.`);
  else ctx.info(`Logged in: profile "${profile.name}", token valid for ${valid}${r.token.refresh_token ? ", refreshable" : ""}.`);
}

export function registerLogin(program: Command, getCtx: () => Context, run: Run<LoginCommandOptions> = runLogin): void {
  const cmd = program
    .command("login [profile]")
    .description("sign in with a browser (authorization code + PKCE) or a device code; tokens go to the cache")
    .option("--device", "use the device-code flow (SSH, WSL, no local browser)")
    .option("--port <port>", "fixed loopback port for the redirect (default: a random free port)")
    .option("--no-browser", "print the URL instead of opening a browser")
    .option("--browser-command <cmd>", "open the URL with this command (`CMD <url>`; env BROWSER works too)")
    .option("--login-timeout <seconds>", "how long to wait for the browser", "300");
  withProfileOptions(cmd);
  cmd.action((name: string | undefined, o: LoginCommandOptions) => run(getCtx(), { ...o, profileArg: name }));
}
