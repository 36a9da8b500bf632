import { portNumber } from "../core/inputs.js";
import type { Command } from "commander";
import type { Context } from "../context.js";
import { invocation } from "../io/invocation.js";
import { UsageError } from "../errors.js";
import { addProfile, checkEnterprise, removeProfile, renameProfile, updateProfile, useProfile } from "../core/profiles.js";
import { providers } from "../plugins.js";
import { rotateKey } from "../core/keys.js";
import { oneLine } from "../io/sanitize.js";
import { loopbackRedirect } from "../oauth/redirect-uri.js";
import { readSecret } from "../io/secret-input.js";
import { parseSecretCommand, showCommand } from "../core/secret-command.js";
import { AUTH_METHODS, FEDERATIONS, GRANTS, KEY_ALGS, type Federation, type Grant, type KeyAlg, type TokenAuthMethod } from "../profile.js";
import { askClientId, choice, optionFlag, profileFor, secretCommandToStore, type Run } from "./shared.js";
import { authorizeParamOption, authorizeParamsOf, presetOptions, PRESET_ONLY, runPresetAdd } from "./presets.js";

export interface ProfilesAddOptions {
  name: string;
  /** Without it, --mcp-url is required and the authorization server is discovered. */
  issuer?: string;
  clientId?: string;
  clientSecretStdin?: boolean;
  clientSecretEnv?: string;
  /** --client-secret-cmd 'COMMAND': the secret is what it prints, at every token request. */
  clientSecretCmd?: string;
  grant?: Grant;
  scope?: string[];
  /** A URI, or false with --no-resource. */
  resource?: string | false;
  audience?: string;
  mcpUrl?: string;
  clientMetadataUrl?: string;
  allowMissingPkceMetadata?: boolean;
  redirectPort?: string;
  redirectUri?: string;
  /** Hand out the ID token as the bearer (false with `profiles set --no-use-id-token`). */
  useIdToken?: boolean;
  /** Enterprise-managed authorization through this IdP profile. */
  enterprise?: string;
  authMethod?: TokenAuthMethod;
  kind: string;
  default?: boolean;
  force?: boolean;
  // private_key_jwt and identity federation
  clientAuth?: "private-key-jwt";
  generateKey?: boolean;
  keyFile?: string;
  alg?: KeyAlg;
  keyAudience?: "issuer" | "token-endpoint";
  /** --key-id KID, or false with --no-key-id. */
  keyId?: string | false;
  assertionFrom?: string;
  federation?: Federation;
  subjectTokenType?: string;
  json?: boolean;
  /** `--authorize-param KEY=VALUE`, repeatable. */
  authorizeParam?: string[];
  // An IdP preset (src/presets/, docs/presets.md)
  preset?: string;
  tenant?: string;
  domain?: string;
  authServer?: string;
  authority?: string;
}

export async function runProfilesAdd(ctx: Context, o: ProfilesAddOptions): Promise<void> {
  if (o.preset) return runPresetAdd(ctx, o as ProfilesAddOptions & Record<string, unknown>);
  for (const k of PRESET_ONLY) if (o[k] !== undefined) throw new UsageError(`${optionFlag(k)} only applies with --preset`);
  const keyProfile = o.clientAuth === "private-key-jwt";
  if (!o.issuer || (!o.clientId && !keyProfile)) {
    if (o.mcpUrl && !keyProfile && !o.assertionFrom) return addDiscovered(ctx, o);
    if (!o.issuer) throw new UsageError("pass --issuer URL and --client-id ID, or --mcp-url URL to discover them from the MCP server");
  }
  for (const k of ["clientMetadataUrl", "allowMissingPkceMetadata"] as const) {
    if (o[k] !== undefined) throw new UsageError(`${optionFlag(k)} only applies when the authorization server is discovered (--mcp-url without --issuer)`);
  }
  if (o.resource === false) throw new UsageError("--no-resource only applies when the authorization server is discovered; without --resource none is sent");
  const clientSecretCommand = secretCommandOf(o);
  const secret = await readSecret(ctx, { stdin: o.clientSecretStdin, env: o.clientSecretEnv }, "client secret", "client-secret");
  const saved = await addProfile(ctx, {
    name: o.name,
    issuer: o.issuer!,
    clientId: o.clientId,
    clientSecret: secret,
    clientSecretCommand,
    grant: o.grant,
    scopes: o.scope,
    resource: o.resource,
    audience: o.audience,
    mcpUrl: o.mcpUrl,
    redirectPort: o.redirectPort,
    redirectUri: o.redirectUri,
    useIdToken: o.useIdToken,
    enterprise: o.enterprise,
    authMethod: o.authMethod,
    kind: o.kind,
    makeDefault: o.default,
    force: o.force,
    clientAuth: o.clientAuth,
    generateKey: o.generateKey,
    keyFile: o.keyFile,
    alg: o.alg,
    keyAudience: o.keyAudience,
    keyId: o.keyId,
    assertionFrom: o.assertionFrom,
    federation: o.federation,
    subjectTokenType: o.subjectTokenType,
    authorizeParams: authorizeParamsOf(o.authorizeParam),
  });
  if (saved.publicJwk) {
    // The public JWK is data (stdout): it is what the IdP must be given. Its private half stays in the store.
    ctx.io.out.write(o.json ? JSON.stringify({ profile: o.name, jwk: saved.publicJwk }, null, 2) + "\n" : JSON.stringify(saved.publicJwk) + "\n");
    ctx.info(`Saved profile "${o.name}" (${saved.grant}, private_key_jwt; private key ${saved.key!.kid} in the ${saved.key!.store} store).`);
    ctx.info(`Register the public key above at the IdP as the client's JWKS ({"keys":[…]}).`);
    if (!saved.clientId) return ctx.info(`Then: mcp-auth profiles set ${o.name} --client-id ID`);
    return ctx.info(`Try: ${invocation(ctx.env)} token --profile ${o.name}`);
  }
  if (o.json) ctx.io.out.write(JSON.stringify({ profile: o.name }) + "\n");
  if (saved.enterprise) {
    ctx.info(`Saved profile "${o.name}": tokens for it come through the enterprise IdP profile "${saved.enterprise.idp}" (ID-JAG), no browser of its own.`);
    return ctx.info(`Next: ${invocation(ctx.env)} login --enterprise ${saved.enterprise.idp}   then: ${invocation(ctx.env)} token --profile ${o.name}`);
  }
  if (saved.assertion) {
    ctx.info(`Saved profile "${o.name}" (${saved.assertion.federation} with the CI token from ${saved.assertion.from}; ${saved.secretStore ? `client secret in the ${saved.secretStore} store` : "no secret stored"}).`);
    return ctx.info(`Try: ${invocation(ctx.env)} token --profile ${o.name}   (check the trust with: ${invocation(ctx.env)} doctor --profile ${o.name})`);
  }
  ctx.info(`Saved profile "${o.name}" (${saved.grant}${saved.secretStore ? `, client secret in the ${saved.secretStore} store` : saved.clientSecretCommand ? ", client secret from its command at each token request" : ""}).`);
  ctx.info(saved.grant === "client_credentials" ? `Try: ${invocation(ctx.env)} token --profile ${o.name}` : `Next: ${invocation(ctx.env)} login ${o.name}`);
}

/** `profiles add NAME --mcp-url URL` without --issuer: discover and register, as `login URL` does, without signing in. */
async function addDiscovered(ctx: Context, o: ProfilesAddOptions): Promise<void> {
  for (const k of ["audience", "authMethod"] as const) {
    if (o[k] !== undefined) throw new UsageError(`${optionFlag(k)} cannot be combined with discovery (--mcp-url without --issuer)`);
  }
  if (typeof o.resource === "string") throw new UsageError("--resource comes from the MCP server's metadata when it is discovered", { hint: "pass --issuer and --client-id to set everything by hand" });
  if (o.kind !== "oidc") throw new UsageError("--kind cannot be combined with discovery (--mcp-url without --issuer)");
  const byCommand = await secretCommandToStore(ctx, o, `profile "${o.name}"`);
  const secret = byCommand?.value ?? (await readSecret(ctx, { stdin: o.clientSecretStdin, env: o.clientSecretEnv }, "client secret", "client-secret"));
  if (secret && !o.clientId) throw new UsageError("--client-secret-* needs --client-id");
  const redirectPort = o.redirectPort === undefined ? undefined : portNumber("--redirect-port", String(o.redirectPort));
  if (redirectPort !== undefined && o.redirectUri !== undefined) throw new UsageError("--redirect-port and --redirect-uri exclude each other: the URI fixes the port");
  const { setupMcpProfile } = await import("../core/mcp-login.js");
  if (o.enterprise !== undefined) checkEnterprise(ctx, { name: o.name, enterprise: o.enterprise, grant: o.grant, useIdToken: o.useIdToken });
  if (Object.hasOwn(ctx.config().profiles, o.name) && !o.force) throw new UsageError(`profile "${o.name}" already exists`, { hint: "pass --force to replace it" });
  const r = await setupMcpProfile(ctx, {
    mcpUrl: o.mcpUrl!,
    name: o.name,
    issuer: o.issuer,
    clientId: o.clientId,
    clientSecret: secret,
    clientSecretCommand: byCommand?.argv,
    grant: o.grant,
    clientMetadataUrl: o.clientMetadataUrl,
    scopes: o.scope,
    noResource: o.resource === false,
    allowMissingPkceMetadata: o.allowMissingPkceMetadata,
    redirectPort,
    authorizeParams: authorizeParamsOf(o.authorizeParam),
    useIdToken: o.useIdToken,
    ...(o.enterprise && { enterprise: o.enterprise, grant: "client_credentials" as const }),
    redirectUri: o.redirectUri === undefined ? undefined : loopbackRedirect(o.redirectUri).uri,
    makeDefault: o.default,
    force: true,
    askClientId: askClientId(ctx),
  });
  if (r.kind === "open") {
    throw new UsageError(`${r.mcpUrl} answered without asking for a token: it needs no authentication, so no profile was saved`);
  }
  for (const note of r.discovery?.notes ?? []) ctx.info(`note: ${note}`);
  const p = r.profile;
  if (p.enterprise) ctx.info(`Tokens for it come through the enterprise IdP profile "${p.enterprise.idp}" (ID-JAG). Next: ${invocation(ctx.env)} login --enterprise ${p.enterprise.idp}`);
  ctx.info(`Saved profile "${p.name}": ${p.mcpUrl} → authorization server ${p.issuer}, client ${p.clientId} (${r.registration === "dcr" ? "registered just now" : r.registration === "reused" ? "registered before" : r.registration})${p.scopes?.length ? `, scopes ${p.scopes.join(" ")}` : ""}.`);
  ctx.info(p.grant === "client_credentials" ? `Try: ${invocation(ctx.env)} token --profile ${p.name}` : `Next: ${invocation(ctx.env)} login ${p.name}`);
}

export interface ProfilesListOptions {
  json?: boolean;
  quiet?: boolean;
}

export function runProfilesList(ctx: Context, o: ProfilesListOptions): void {
  const cfg = ctx.config();
  if (o.quiet) return void ctx.io.out.write(Object.keys(cfg.profiles).map((n) => `${n}\n`).join("")); // names match PROFILE_NAME
  const rows = Object.entries(cfg.profiles).map(([name, p]) => ({ name, default: cfg.defaultProfile === name, provider: p.provider, grant: p.grant, issuer: p.issuer, clientId: p.clientId }));
  if (o.json) return void ctx.io.out.write(JSON.stringify(rows, null, 2) + "\n");
  if (!rows.length) return ctx.io.print(`No profiles. Set one up with: ${invocation(ctx.env)} init, or ${invocation(ctx.env)} login <mcp-url>`);
  const w = Math.max(...rows.map((r) => r.name.length)) + 2;
  for (const r of rows) ctx.io.print(`${(r.default ? "* " : "  ") + r.name.padEnd(w)}${oneLine(r.provider).padEnd(10)}${r.grant.padEnd(20)}${oneLine(r.issuer)}`);
}

export function runProfilesShow(ctx: Context, o: { name?: string; json?: boolean }): void {
  // Without a name: the profile a bare `mcp-auth token` would use.
  const { name, ...p } = profileFor(ctx, { profile: o.name });
  const view = { name, ...p, clientSecret: p.secretStore ? `stored (${p.secretStore})` : p.clientSecretCommand ? `from command: ${showCommand(p.clientSecretCommand)}` : "none" };
  delete (view as { secretStore?: unknown }).secretStore;
  delete (view as { clientSecretCommand?: unknown }).clientSecretCommand;
  if (o.json) return void ctx.io.out.write(JSON.stringify(view, null, 2) + "\n");
  // Values may have come from a server (discovered issuer, scopes, registration): one line each, no control sequences.
  for (const [k, v] of Object.entries(view)) if (v !== undefined) ctx.io.print(`${k}: ${oneLine(Array.isArray(v) ? v.join(" ") : typeof v === "object" ? JSON.stringify(v) : String(v))}`);
}

export async function runProfilesUse(ctx: Context, o: { name: string }): Promise<void> {
  await useProfile(ctx, o.name);
  ctx.info(`Default profile: ${o.name}`);
}

export async function runProfilesRemove(ctx: Context, o: { name: string; yes?: boolean }): Promise<void> {
  await (await import("./clients.js")).removeEntriesOfProfile(ctx, o.name, o);
  const r = await removeProfile(ctx, o.name);
  let next = "";
  if (r.newDefault) next = ` "${r.newDefault}" is now the default profile.`;
  else if (r.wasDefault && r.remaining.length) next = ` There is no default profile now; pick one with: mcp-auth profiles use NAME (${r.remaining.join(", ")})`;
  ctx.info(`Removed profile "${o.name}" and its secrets.${next}`);
}

export async function runProfilesRename(ctx: Context, o: { from: string; to: string }): Promise<void> {
  await renameProfile(ctx, o.from, o.to);
  ctx.info(`Renamed profile "${o.from}" to "${o.to}" (client secret and cached tokens moved).`);
  await (await import("./clients.js")).retargetEntriesOfProfile(ctx, o.from, o.to);
}

/** `profiles set`: the `profiles add` flags that edit a field, each optional. */
export type ProfilesSetOptions = { name: string; resource?: string; authorizeParam?: string[] } & Partial<
  Pick<ProfilesAddOptions, "issuer" | "clientId" | "clientSecretStdin" | "clientSecretEnv" | "clientSecretCmd" | "grant" | "scope" | "audience" | "mcpUrl" | "redirectPort" | "redirectUri" | "useIdToken" | "authMethod" | "kind" | "keyId">
>;

/** Edits a profile without re-adding it: the stored client secret stays unless a new one is given. */
export async function runProfilesSet(ctx: Context, o: ProfilesSetOptions): Promise<void> {
  const { name, clientSecretStdin, clientSecretEnv, clientSecretCmd: _cmd, scope, authorizeParam, ...rest } = o;
  const changed = Object.entries(o).filter(([k, v]) => k !== "name" && v !== undefined);
  if (!changed.length) throw new UsageError("nothing to change", { hint: "pass the fields to change, e.g. --scope \"openid mcp:read\" or --resource URL (see --help)" });
  const clientSecretCommand = secretCommandOf(o);
  const clientSecret = clientSecretStdin || clientSecretEnv ? await readSecret(ctx, { stdin: clientSecretStdin, env: clientSecretEnv }, "client secret", "client-secret") : undefined;
  const saved = await updateProfile(ctx, name, { ...rest, scopes: scope, clientSecret, clientSecretCommand, authorizeParams: authorizeParamsOf(authorizeParam) });
  ctx.info(`Updated profile "${name}" (${changed.map(([k, v]) => (v === false ? optionFlag(k).replace(/^--/, "--no-") : optionFlag(k))).join(", ")}); its cached tokens were cleared.`);
  if (saved.grant !== "client_credentials") ctx.info(`Next: ${invocation(ctx.env)} login ${name}`);
}

/** --client-secret-cmd, parsed into an argument vector; one way of giving the secret only. */
function secretCommandOf(o: { clientSecretCmd?: string; clientSecretStdin?: boolean; clientSecretEnv?: string }): string[] | undefined {
  if (o.clientSecretCmd === undefined) return undefined;
  if (o.clientSecretStdin || o.clientSecretEnv) throw new UsageError("pass only one of --client-secret-cmd, --client-secret-stdin and --client-secret-env");
  return parseSecretCommand(o.clientSecretCmd);
}

// ---- private_key_jwt: rotate-key (`profiles set NAME --client-id ID` completes a key profile) --------

export async function runProfilesRotateKey(ctx: Context, o: { name: string; alg?: KeyAlg; json?: boolean }): Promise<void> {
  const key = await rotateKey(ctx, o.name, o.alg);
  ctx.io.out.write(o.json ? JSON.stringify({ profile: o.name, jwk: key.publicJwk }, null, 2) + "\n" : JSON.stringify(key.publicJwk) + "\n");
  ctx.info(`New key ${key.kid} for profile "${o.name}". Register it at the IdP (keep the old one there until then):`);
  ctx.info(`the previous key ${key.previous!.kid} is used while the IdP refuses the new one, and deleted after the first token the new key gets.`);
}


export interface ProfilesRuns {
  add: Run<ProfilesAddOptions>;
  list: Run<ProfilesListOptions>;
  show: Run<{ name?: string; json?: boolean }>;
  use: Run<{ name: string }>;
  remove: Run<{ name: string; yes?: boolean }>;
  rename: Run<{ from: string; to: string }>;
  set: Run<ProfilesSetOptions>;
  rotateKey: Run<{ name: string; alg?: KeyAlg; json?: boolean }>;
}

const RUNS: ProfilesRuns = { add: runProfilesAdd, list: runProfilesList, show: runProfilesShow, use: runProfilesUse, remove: runProfilesRemove, rename: runProfilesRename, set: runProfilesSet, rotateKey: runProfilesRotateKey };

/** Provider kinds a profile may have: "oidc" for any standard server, and every IdP module's id. */
export const PROFILE_KINDS = ["oidc", ...providers.map((p) => p.id)];

export function registerProfiles(program: Command, getCtx: () => Context, runs: Partial<ProfilesRuns> = {}): void {
  const r = { ...RUNS, ...runs };
  const profiles = program.command("profiles").description("manage saved profiles (issuer, client, grant, scopes)");

  registerAdd(profiles, getCtx, r.add);

  profiles
    .command("list")
    .alias("ls")
    .description("list profiles")
    .option("--json", "machine-readable output")
    .option("-q, --quiet", "names only, one per line")
    .action((o: ProfilesListOptions) => r.list(getCtx(), o));

  profiles
    .command("show [name]")
    .description("show a profile, the default one without a name (never its secrets)")
    .option("--json", "machine-readable output")
    .action((name: string | undefined, o: { json?: boolean }) => r.show(getCtx(), { ...o, name }));

  profiles
    .command("use <name>")
    .description("make a profile the default")
    .action((name: string) => r.use(getCtx(), { name }));

  profiles
    .command("rotate-key <name>")
    .description("make a new private_key_jwt key; the old one is deleted after the new one earns a token")
    .addOption(choice("--alg <alg>", "key algorithm (default: the current key's)", KEY_ALGS))
    .option("--json", "print {profile, jwk} as JSON")
    .action((name: string, o: { alg?: KeyAlg; json?: boolean }) => r.rotateKey(getCtx(), { ...o, name }));

  profiles
    .command("remove <name>")
    .alias("rm")
    .description("delete a profile, its client secret and its cached tokens (and, if you say so, the client entries using it)")
    .option("-y, --yes", "also remove the client entries that use the profile, without asking")
    .action((name: string, o: { yes?: boolean }) => r.remove(getCtx(), { name, ...o }));

  profiles
    .command("rename <old> <new>")
    .alias("mv")
    .description("rename a profile, moving its client secret, cached tokens, default status and the client entries using it")
    .action((from: string, to: string) => r.rename(getCtx(), { from, to }));

  registerSet(profiles, getCtx, r.set);

}

/** `profiles add`: every way a profile can be set up (a secret, discovery, a key, federation, a preset). */
function registerAdd(profiles: Command, getCtx: () => Context, run: ProfilesRuns["add"]): void {
  profiles
    .command("add <name>")
    .description("save a profile; its client secret goes to the secret store")
    .option("--issuer <url>", "the authorization server's issuer URL (omit it with --mcp-url to discover it)")
    .option("--client-id <id>", "the OAuth client id (omit it with --mcp-url to register one, or for a key profile whose id the IdP assigns later)")
    .option("--client-secret-stdin", "read the client secret from stdin (a hidden prompt on a terminal)")
    .option("--client-secret-env <VAR>", "read the client secret from $VAR now and store it")
    .option("--client-secret-cmd <command>", "get the client secret from this command at each token request (run without a shell, never stored), e.g. 'op read op://vault/item/secret'")
    .addOption(choice("--grant <grant>", "how tokens are obtained", GRANTS))
    .option("--scope <scope...>", "scopes to request")
    .option("--resource <uri>", "RFC 8707 resource indicator (usually the MCP server URL)")
    .option("--audience <aud>", "audience parameter, for IdPs that use one")
    .option("--mcp-url <url>", "the MCP server this profile is for; alone, its authorization server is discovered")
    .option("--no-resource", "with discovery: do not send RFC 8707 resource (for servers that reject it)")
    .option("--client-metadata-url <url>", "with discovery: your https Client ID Metadata Document, used when the server supports it")
    .option("--allow-missing-pkce-metadata", "with discovery: proceed although the server does not advertise PKCE S256")
    .option("--redirect-port <port>", "fixed loopback port for browser logins")
    .option("--redirect-uri <uri>", "the exact loopback redirect URI registered at the IdP (http://localhost|127.0.0.1|[::1]:PORT/PATH)")
    .option("--use-id-token", "hand out the ID token instead of the access token (servers behind AWS Cognito / AgentCore); adds the openid scope")
    .option("--enterprise <idp-profile>", "enterprise-managed authorization: tokens through that IdP profile's sign-in (ID-JAG), no browser per server")
    .addOption(choice("--auth-method <method>", "token endpoint client authentication", AUTH_METHODS))
    .addOption(choice("--kind <provider>", "provider kind", PROFILE_KINDS).default("oidc"))
    .option("--default", "make it the default profile")
    .option("--force", "replace an existing profile of that name")
    // private_key_jwt (RFC 7523) and identity federation
    .addOption(choice("--client-auth <method>", "private-key-jwt: sign assertions with a key instead of a secret", ["private-key-jwt"] as const))
    .option("--generate-key", "with private-key-jwt: make a key pair (private half in the secret store); prints the public JWK")
    .option("--key-file <path>", "with private-key-jwt: import a PEM or JWK private key into the secret store")
    .addOption(choice("--alg <alg>", "key algorithm (default ES256)", KEY_ALGS))
    .addOption(choice("--key-audience <aud>", "aud of the signed assertion: issuer (default) or token-endpoint (Okta)", ["issuer", "token-endpoint"] as const))
    .option("--key-id <kid>", "with private-key-jwt: the kid the IdP registered the key under (default: a generated key's thumbprint, an imported JWK's own kid, none for a PEM)")
    .option("--no-key-id", "with private-key-jwt: send no kid header")
    .option("--assertion-from <source>", "use the CI's own token: github-actions[:AUDIENCE] | env:VAR | file:PATH")
    .addOption(choice("--federation <how>", "how the CI token is used (default client-assertion)", FEDERATIONS))
    .option("--subject-token-type <type>", "token exchange: jwt (default) | id_token | a literal the IdP wants")
    .option("--json", "print {profile, jwk} as JSON")
    .addOption(authorizeParamOption())
    .action((name: string, o: Omit<ProfilesAddOptions, "name">) => run(getCtx(), { ...o, name }));
  const add = profiles.commands.find((c) => c.name() === "add")!;
  for (const opt of presetOptions()) add.addOption(opt);
}

/** `profiles set`: the fields of a saved profile that can change in place. */
function registerSet(profiles: Command, getCtx: () => Context, run: ProfilesRuns["set"]): void {
  profiles
    .command("set <name>")
    .description("change fields of a saved profile, keeping its stored client secret; \"\" clears a field")
    .option("--issuer <url>", "the authorization server's issuer URL")
    .option("--client-id <id>", "the OAuth client id")
    .option("--client-secret-stdin", "replace the client secret, read from stdin (a hidden prompt on a terminal)")
    .option("--client-secret-env <VAR>", "replace the client secret with $VAR")
    .option("--client-secret-cmd <command>", "get the client secret from this command at each token request instead (run without a shell, never stored)")
    .addOption(choice("--grant <grant>", "how tokens are obtained", GRANTS))
    .option("--scope <scope...>", "scopes to request (replaces the list)")
    .option("--resource <uri>", "RFC 8707 resource indicator")
    .option("--audience <aud>", "audience parameter")
    .option("--mcp-url <url>", "the MCP server this profile is for")
    .option("--redirect-port <port>", "fixed loopback port for browser logins")
    .option("--redirect-uri <uri>", "the exact loopback redirect URI registered at the IdP (http://localhost|127.0.0.1|[::1]:PORT/PATH)")
    .option("--use-id-token", "hand out the ID token instead of the access token (AWS Cognito / AgentCore)")
    .option("--no-use-id-token", "hand out the access token again")
    .addOption(choice("--auth-method <method>", "token endpoint client authentication", AUTH_METHODS))
    .addOption(choice("--kind <provider>", "provider kind", PROFILE_KINDS))
    .option("--key-id <kid>", "private_key_jwt: the kid the IdP registered the key under")
    .option("--no-key-id", "private_key_jwt: send no kid header (the IdP registered the key without one)")
    .addOption(authorizeParamOption("an extra authorization-request parameter (repeatable; replaces the stored ones; \"\" clears them)"))
    .action((name: string, o: Omit<ProfilesSetOptions, "name">) => run(getCtx(), { ...o, name }));
}
