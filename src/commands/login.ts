import { portNumber } from "../core/inputs.js";
import type { Command } from "commander";
import type { Context } from "../context.js";
import { mcpLogin, type McpSetupInput } from "../core/mcp-login.js";
import { saveAuthorizeParams, saveRedirectUri, saveScopes, withScopes } from "../core/profiles.js";
import { authorizeParamOption, authorizeParamsOf } from "./presets.js";
import { loopbackRedirect } from "../oauth/redirect-uri.js";
import { login } from "../core/session.js";
import { AuthError, UsageError } from "../errors.js";
import { readLine } from "../io/line-input.js";
import { getToken } from "../core/tokens.js";
import { targetFromProfile } from "../core/target.js";
import { readSecret } from "../io/secret-input.js";
import { MAX_PASTE } from "../oauth/paste.js";
import type { LoginOptions } from "../core/login.js";
import { askClientId, duration, optionFlag, profileFor, seconds, secretCommandToStore, withSpinner, withProfileOptions, type Run } from "./shared.js";
import { invocation } from "../io/invocation.js";

export interface LoginCommandOptions {
  /** A profile name, or an MCP server URL. */
  profileArg?: string;
  profile?: string;
  provider?: string;
  device?: boolean;
  paste?: boolean;
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
  clientSecretCmd?: string;
  clientMetadataUrl?: string;
  /** false with --no-resource */
  resource?: boolean;
  allowMissingPkceMetadata?: boolean;
  force?: boolean;
  /** `--authorize-param KEY=VALUE`: a profile keeps them once the login worked; a URL login stores them in the new profile. */
  authorizeParam?: string[];
  /** `login --enterprise IDP_PROFILE`: sign in to the enterprise IdP, then get a token for every profile that names it. */
  enterprise?: string;
}

const URL_ONLY = ["issuer", "clientId", "clientSecretStdin", "clientSecretEnv", "clientSecretCmd", "clientMetadataUrl", "allowMissingPkceMetadata", "force"] as const;

export async function runLogin(ctx: Context, o: LoginCommandOptions): Promise<void> {
  const port = o.port === undefined ? undefined : portNumber("--port", String(o.port), { allowZero: true });
  if (o.paste && o.device) throw new UsageError("pass only one of --paste and --device");
  if (o.paste && o.browserCommand) throw new UsageError("--paste is for a browser on another machine; --browser-command opens one here", { hint: "drop one of them" });
  // Piped stdin that held the client secret has nothing left to paste.
  const stdinTaken = Boolean(o.clientSecretStdin && !ctx.io.in.isTTY);
  if (o.paste && stdinTaken) throw new UsageError("--paste reads the address from stdin, which --client-secret-stdin has used", { hint: "pass the secret with --client-secret-env VAR" });
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
    paste: o.paste,
    ...(stdinTaken ? {} : { readPasted: () => readLine(ctx.io.in, { max: MAX_PASTE, err: ctx.io.err }) }),
  };
  const extraParams = authorizeParamsOf(o.authorizeParam);
  if (o.enterprise !== undefined) return loginEnterprise(ctx, o, how);
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
  if (extraParams) profile = { ...profile, authorizeParams: Object.keys(extraParams).length ? { ...profile.authorizeParams, ...extraParams } : undefined };
  const run = () => login(ctx, profile, how);
  // Client credentials are one request to the IdP; a browser or device login prints its own progress.
  const r = profile.grant === "client_credentials" ? await withSpinner(ctx, `Getting a token from ${profile.issuer}…`, run) : await run();
  if (o.scope?.length) await saveScopes(ctx, profile.name, profile.scopes!);
  if (extraParams && r.kind === "login") await saveAuthorizeParams(ctx, profile.name, profile.authorizeParams ?? {});
  if (o.redirectUri && r.kind === "login" && profile.redirectUri !== o.redirectUri) await saveRedirectUri(ctx, profile.name, o.redirectUri);
  const valid = duration(r.token.expires_at - ctx.now() / 1000);
  if (r.kind === "client_credentials") ctx.info(`Profile "${profile.name}" uses client credentials: got a token, valid for ${valid}.`);
  else ctx.info(`Logged in: profile "${profile.name}", token valid for ${valid}${r.token.refresh_token ? ", refreshable" : ""}.`);
}

/** `login https://…`: discovery, registration and a browser login, saved as a profile. */
async function loginToServer(ctx: Context, url: string, o: LoginCommandOptions, how: LoginOptions): Promise<void> {
  if (o.provider) throw new UsageError("--provider does not apply to a login with an MCP server URL");
  const byCommand = await secretCommandToStore(ctx, o, o.profile ? `profile "${o.profile}"` : `the profile for ${url}`);
  const input: McpSetupInput = {
    mcpUrl: url,
    name: o.profile,
    issuer: o.issuer,
    clientId: o.clientId,
    clientSecret: byCommand?.value ?? (await readSecret(ctx, { stdin: o.clientSecretStdin, env: o.clientSecretEnv }, "client secret", "client-secret")),
    clientSecretCommand: byCommand?.argv,
    clientMetadataUrl: o.clientMetadataUrl,
    scopes: o.scope,
    noResource: o.resource === false,
    allowMissingPkceMetadata: o.allowMissingPkceMetadata,
    device: o.device,
    redirectPort: port0(how.port),
    authorizeParams: authorizeParamsOf(o.authorizeParam),
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
  ctx.info(`Next: ${invocation(ctx.env)} token --profile ${p.name}   or   ${invocation(ctx.env)} add-client claude --profile ${p.name}`);
}

/**
 * `login --enterprise IDP`: one sign-in at the enterprise IdP (its ID token kept), then a token for each
 * MCP server profile naming that IdP, through the ID-JAG exchange: no further browser (docs/enterprise.md).
 */
async function loginEnterprise(ctx: Context, o: LoginCommandOptions, how: LoginOptions): Promise<void> {
  if (o.profileArg || o.profile || o.provider) throw new UsageError("login --enterprise takes the IdP profile's name only: mcp-auth login --enterprise IDP_PROFILE");
  for (const k of URL_ONLY) if (o[k] !== undefined) throw new UsageError(`${optionFlag(k)} does not apply to login --enterprise`);
  const { idpTarget } = await import("../core/enterprise.js");
  const cfg = ctx.config();
  const servers = Object.entries(cfg.profiles).filter(([, p]) => p.enterprise?.idp === o.enterprise).map(([name]) => name);
  const idp = profileFor(ctx, { profile: o.enterprise });
  // The IdP profile's own checks (it signs a person in, asks for openid), through any server naming it.
  if (servers.length) idpTarget(ctx, targetFromProfile(profileFor(ctx, { profile: servers[0] })));
  const r = await login(ctx, { ...idp, useIdToken: true }, how);
  ctx.info(`Signed in to the enterprise IdP ${idp.issuer} (profile "${idp.name}"), valid for ${duration(r.token.expires_at - ctx.now() / 1000)}.`);
  if (!servers.length) return ctx.info(`No profile names it yet: mcp-auth profiles add SERVER --mcp-url URL --enterprise ${idp.name} --client-id ID`);
  let failed = 0;
  for (const name of servers) {
    try {
      const t = await getToken(ctx, targetFromProfile(profileFor(ctx, { profile: name })), { minTtl: 60, forceRefresh: true });
      ctx.info(`  ✓ ${name}: token valid for ${duration(t.expires_at - ctx.now() / 1000)}`);
    } catch (e) {
      failed++;
      ctx.warn(`${name}: ${(e as Error).message}${(e as { hint?: string }).hint ? ` (${(e as { hint?: string }).hint})` : ""}`);
    }
  }
  if (failed) throw new AuthError(`${failed} of ${servers.length} MCP server profile${servers.length > 1 ? "s" : ""} got no token through ${idp.name}`, { hint: "see the lines above; mcp-auth doctor --profile NAME explains each leg" });
}

const port0 = (p: number | undefined) => (p ? p : undefined);

export function registerLogin(program: Command, getCtx: () => Context, run: Run<LoginCommandOptions> = runLogin): void {
  const cmd = program
    .command("login [profile-or-url]")
    .description("sign in with a browser (authorization code + PKCE) or a device code; given an MCP server URL, discover its authorization server, register and save a profile first")
    .option("--device", "use the device-code flow (SSH, WSL, no local browser)")
    .option("--paste", "sign in with a browser on any machine, then paste back the address it was sent to (any server; the default where no browser can run and there is no device code)")
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
    .option("--client-secret-cmd <command>", "URL login: that client's secret, from this command at each token request (run without a shell, never stored)")
    .option("--client-metadata-url <url>", "URL login: your https Client ID Metadata Document, used when the server supports it")
    .option("--no-resource", "URL login: do not send RFC 8707 resource (for servers that reject it)")
    .option("--allow-missing-pkce-metadata", "URL login: proceed although the server does not advertise PKCE S256")
    .option("--force", "URL login: replace a profile of that name that points at another server")
    .addOption(authorizeParamOption("an extra authorization-request parameter (repeatable), e.g. access_type=offline; the profile keeps it"))
    .option("--enterprise <idp-profile>", "sign in to the enterprise IdP once, then get tokens for every profile naming it (ID-JAG)");
  withProfileOptions(cmd);
  cmd.action((name: string | undefined, o: LoginCommandOptions) => run(getCtx(), { ...o, profileArg: name }));
}
