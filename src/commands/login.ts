import { portNumber } from "../core/inputs.js";
import type { Command } from "commander";
import type { Context } from "../context.js";
import { mcpLogin, type McpSetupInput } from "../core/mcp-login.js";
import { saveRedirectUri, saveScopes, withScopes } from "../core/profiles.js";
import { loopbackRedirect } from "../oauth/redirect-uri.js";
import { login } from "../core/session.js";
import { UsageError } from "../errors.js";
import { readSecret } from "../io/secret-input.js";
import type { LoginOptions } from "../core/login.js";
import { askClientId, duration, optionFlag, profileFor, seconds, withSpinner, withProfileOptions, type Run } from "./shared.js";

export interface LoginCommandOptions {
  /** A profile name, or an MCP server URL. */
  profileArg?: string;
  profile?: string;
  provider?: string;
  device?: boolean;
  port?: string;
  /** An exact loopback redirect URI registered at the IdP; saved in the profile once the login worked. */
  redirectUri?: string;
  /** false with --no-browser */
  browser?: boolean;
  browserCommand?: string;
  loginTimeout?: string;
  /** With a profile: scopes to add (step-up). With a URL: the scopes to request. */
  scope?: string[];
  // Only with an MCP server URL:
  issuer?: string;
  clientId?: string;
  clientSecretStdin?: boolean;
  clientSecretEnv?: string;
  clientMetadataUrl?: string;
  /** false with --no-resource */
  resource?: boolean;
  allowMissingPkceMetadata?: boolean;
  force?: boolean;
}

const URL_ONLY = ["issuer", "clientId", "clientSecretStdin", "clientSecretEnv", "clientMetadataUrl", "allowMissingPkceMetadata", "force"] as const;

export async function runLogin(ctx: Context, o: LoginCommandOptions): Promise<void> {
  const port = o.port === undefined ? undefined : portNumber("--port", String(o.port), { allowZero: true });
  if (o.redirectUri !== undefined) {
    loopbackRedirect(o.redirectUri);
    if (port !== undefined) throw new UsageError("--port and --redirect-uri exclude each other: the URI fixes the port");
    if (o.device) throw new UsageError("--redirect-uri is for browser logins, not --device");
  }
  const how: LoginOptions = {
    device: o.device,
    port,
    redirectUri: o.redirectUri,
    browser: o.browser !== false,
    browserCommand: o.browserCommand,
    timeoutSec: seconds("--login-timeout", o.loginTimeout, 300),
  };
  if (o.profileArg && /^https?:\/\//i.test(o.profileArg)) return loginToServer(ctx, o.profileArg, o, how);
  for (const k of URL_ONLY) if (o[k] !== undefined) throw new UsageError(`${optionFlag(k)} only applies to a login with an MCP server URL (mcp-auth login https://…)`);
  if (o.resource === false) throw new UsageError("--no-resource only applies to a login with an MCP server URL");
  let profile = profileFor(ctx, o, o.profileArg);
  // A profile set up from an MCP URL signs in the same way, so a client the server forgot is registered again.
  if (profile.extra?.discovered && profile.mcpUrl && profile.extra.registration === "dcr" && !o.scope?.length) {
    return loginToServer(ctx, profile.mcpUrl, { ...o, profile: profile.name }, how);
  }
  // Step-up: sign in with the added scopes; the profile keeps them only once that worked.
  if (o.scope?.length) profile = withScopes(profile, o.scope);
  const run = () => login(ctx, profile, how);
  // Client credentials are one request to the IdP; a browser or device login prints its own progress.
  const r = profile.grant === "client_credentials" ? await withSpinner(ctx, `Getting a token from ${profile.issuer}…`, run) : await run();
  if (o.scope?.length) await saveScopes(ctx, profile.name, profile.scopes!);
  if (o.redirectUri && r.kind === "login" && profile.redirectUri !== o.redirectUri) await saveRedirectUri(ctx, profile.name, o.redirectUri);
  const valid = duration(r.token.expires_at - ctx.now() / 1000);
  if (r.kind === "client_credentials") ctx.info(`Profile "${profile.name}" uses client credentials: got a token, valid for ${valid}.`);
  else ctx.info(`Logged in: profile "${profile.name}", token valid for ${valid}${r.token.refresh_token ? ", refreshable" : ""}.`);
}

/** `login https://…`: discovery, registration and a browser login, saved as a profile. */
async function loginToServer(ctx: Context, url: string, o: LoginCommandOptions, how: LoginOptions): Promise<void> {
  if (o.provider) throw new UsageError("--provider does not apply to a login with an MCP server URL");
  const input: McpSetupInput = {
    mcpUrl: url,
    name: o.profile,
    issuer: o.issuer,
    clientId: o.clientId,
    clientSecret: await readSecret(ctx, { stdin: o.clientSecretStdin, env: o.clientSecretEnv }, "client secret", "client-secret"),
    clientMetadataUrl: o.clientMetadataUrl,
    scopes: o.scope,
    noResource: o.resource === false,
    allowMissingPkceMetadata: o.allowMissingPkceMetadata,
    device: o.device,
    redirectPort: port0(how.port),
    redirectUri: o.redirectUri,
    force: o.force,
    askClientId: askClientId(ctx),
  };
  if (input.clientSecret && !input.clientId) throw new UsageError("--client-secret-* needs --client-id");
  const r = await mcpLogin(ctx, input, how);
  if (r.setup.kind === "open") {
    ctx.info(`${r.setup.mcpUrl} answered without asking for a token: it needs no authentication, so there is nothing to log in to (and anyone who can reach it can use it).`);
    return;
  }
  const p = r.setup.profile;
  const valid = r.login ? duration(r.login.token.expires_at - ctx.now() / 1000) : "";
  const reg = { "pre-registered": "the given client", cimd: "its client metadata document", dcr: "a client registered just now", reused: "the client registered before", entered: "the entered client" }[r.setup.registration];
  ctx.info(`Logged in to ${p.mcpUrl} through ${p.issuer} with ${reg} (${p.clientId}); saved as profile "${p.name}", token valid for ${valid}.`);
  ctx.info(`Next: mcp-auth token --profile ${p.name}   or   mcp-auth add-client claude --profile ${p.name}`);
}

const port0 = (p: number | undefined) => (p ? p : undefined);

export function registerLogin(program: Command, getCtx: () => Context, run: Run<LoginCommandOptions> = runLogin): void {
  const cmd = program
    .command("login [profile-or-url]")
    .description("sign in with a browser (authorization code + PKCE) or a device code; given an MCP server URL, discover its authorization server, register and save a profile first")
    .option("--device", "use the device-code flow (SSH, WSL, no local browser)")
    .option("--port <port>", "fixed loopback port for the redirect (default: a random free port)")
    .option("--redirect-uri <uri>", "the exact loopback redirect URI registered at the IdP (http://localhost|127.0.0.1|[::1]:PORT/PATH); saved in the profile")
    .option("--no-browser", "print the URL instead of opening a browser")
    .option("--browser-command <cmd>", "open the URL with this command (`CMD <url>`; env BROWSER works too)")
    .option("--login-timeout <seconds>", "how long to wait for the browser", "300")
    .option("--scope <scope...>", "a profile: scopes to add to it (step-up); a URL: scopes to request instead of the server's")
    .option("--issuer <url>", "URL login: use this authorization server instead of discovering it")
    .option("--client-id <id>", "URL login: a client registered by the server's admin (no registration)")
    .option("--client-secret-stdin", "URL login: that client's secret, from stdin")
    .option("--client-secret-env <VAR>", "URL login: that client's secret, from $VAR")
    .option("--client-metadata-url <url>", "URL login: your https Client ID Metadata Document, used when the server supports it")
    .option("--no-resource", "URL login: do not send RFC 8707 resource (for servers that reject it)")
    .option("--allow-missing-pkce-metadata", "URL login: proceed although the server does not advertise PKCE S256")
    .option("--force", "URL login: replace a profile of that name that points at another server");
  withProfileOptions(cmd);
  cmd.action((name: string | undefined, o: LoginCommandOptions) => run(getCtx(), { ...o, profileArg: name }));
}
