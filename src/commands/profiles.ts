import type { Command } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { addProfile, removeProfile, setClientId, useProfile } from "../core/profiles.js";
import { rotateKey } from "../core/keys.js";
import { readSecret } from "../io/secret-input.js";
import { AUTH_METHODS, FEDERATIONS, GRANTS, KEY_ALGS, type Federation, type Grant, type KeyAlg, type TokenAuthMethod } from "../target.js";
import { choice, type Run } from "./shared.js";

export interface ProfilesAddOptions {
  name: string;
  issuer: string;
  clientId?: string;
  clientSecretStdin?: boolean;
  clientSecretEnv?: string;
  grant?: Grant;
  scope?: string[];
  resource?: string;
  audience?: string;
  mcpUrl?: string;
  redirectPort?: string;
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
  assertionFrom?: string;
  federation?: Federation;
  subjectTokenType?: string;
  json?: boolean;
}

export async function runProfilesAdd(ctx: Context, o: ProfilesAddOptions): Promise<void> {
  const secret = await readSecret(ctx, { stdin: o.clientSecretStdin, env: o.clientSecretEnv }, "client secret", "client-secret");
  const saved = await addProfile(ctx, {
    name: o.name,
    issuer: o.issuer,
    clientId: o.clientId,
    clientSecret: secret,
    grant: o.grant,
    scopes: o.scope,
    resource: o.resource,
    audience: o.audience,
    mcpUrl: o.mcpUrl,
    redirectPort: o.redirectPort,
    authMethod: o.authMethod,
    kind: o.kind,
    makeDefault: o.default,
    force: o.force,
    clientAuth: o.clientAuth,
    generateKey: o.generateKey,
    keyFile: o.keyFile,
    alg: o.alg,
    keyAudience: o.keyAudience,
    assertionFrom: o.assertionFrom,
    federation: o.federation,
    subjectTokenType: o.subjectTokenType,
  });
  if (saved.publicJwk) {
    // The public JWK is data (stdout): it is what the IdP must be given. Its private half stays in the store.
    ctx.io.out.write(o.json ? JSON.stringify({ profile: o.name, jwk: saved.publicJwk }, null, 2) + "\n" : JSON.stringify(saved.publicJwk) + "\n");
    ctx.info(`Saved profile "${o.name}" (${saved.grant}, private_key_jwt; private key ${saved.key!.kid} in the ${saved.key!.store} store).`);
    ctx.info(`Register the public key above at the IdP as the client's JWKS ({"keys":[…]}).`);
    if (!saved.clientId) return ctx.info(`Then: mcp-auth profiles set ${o.name} --client-id ID`);
    return ctx.info(`Try: mcp-auth token --profile ${o.name}`);
  }
  if (o.json) ctx.io.out.write(JSON.stringify({ profile: o.name }) + "\n");
  if (saved.assertion) {
    ctx.info(`Saved profile "${o.name}" (${saved.assertion.federation} with the CI token from ${saved.assertion.from}; ${saved.secretStore ? `client secret in the ${saved.secretStore} store` : "no secret stored"}).`);
    return ctx.info(`Try: mcp-auth token --profile ${o.name}   (check the trust with: mcp-auth doctor --profile ${o.name})`);
  }
  ctx.info(`Saved profile "${o.name}" (${saved.grant}${saved.secretStore ? `, client secret in the ${saved.secretStore} store` : ""}).`);
  ctx.info(saved.grant === "client_credentials" ? `Try: mcp-auth token --profile ${o.name}` : `Next: mcp-auth login ${o.name}`);
}

export interface ProfilesListOptions {
  json?: boolean;
  quiet?: boolean;
}

export function runProfilesList(ctx: Context, o: ProfilesListOptions): void {
  const cfg = ctx.config();
  if (o.quiet) return void ctx.io.out.write(Object.keys(cfg.profiles).map((n) => `${n}\n`).join(""));
  const rows = Object.entries(cfg.profiles).map(([name, p]) => ({ name, default: cfg.defaultProfile === name, provider: p.provider, grant: p.grant, issuer: p.issuer, clientId: p.clientId }));
  if (o.json) return void ctx.io.out.write(JSON.stringify(rows, null, 2) + "\n");
  if (!rows.length) return void ctx.io.out.write("No profiles. Create one with: mcp-auth profiles add NAME --issuer URL --client-id ID\n");
  const w = Math.max(...rows.map((r) => r.name.length)) + 2;
  for (const r of rows) ctx.io.out.write(`${(r.default ? "* " : "  ") + r.name.padEnd(w)}${r.provider.padEnd(10)}${r.grant.padEnd(20)}${r.issuer}\n`);
}

export function runProfilesShow(ctx: Context, o: { name: string; json?: boolean }): void {
  const profiles = ctx.config().profiles;
  const p = Object.hasOwn(profiles, o.name) ? profiles[o.name] : undefined;
  if (!p) throw new UsageError(`no profile named "${o.name}"`);
  const view = { name: o.name, ...p, clientSecret: p.secretStore ? `stored (${p.secretStore})` : "none" };
  delete (view as { secretStore?: unknown }).secretStore;
  if (o.json) return void ctx.io.out.write(JSON.stringify(view, null, 2) + "\n");
  for (const [k, v] of Object.entries(view)) if (v !== undefined) ctx.io.out.write(`${k}: ${Array.isArray(v) ? v.join(" ") : typeof v === "object" ? JSON.stringify(v) : v}\n`);
}

export async function runProfilesUse(ctx: Context, o: { name: string }): Promise<void> {
  await useProfile(ctx, o.name);
  ctx.info(`Default profile: ${o.name}`);
}

export async function runProfilesRemove(ctx: Context, o: { name: string }): Promise<void> {
  await removeProfile(ctx, o.name);
  ctx.info(`Removed profile "${o.name}" and its secrets.`);
}

// ---- private_key_jwt: rotate-key, and completing a key profile's client id -------------------------

export async function runProfilesRotateKey(ctx: Context, o: { name: string; alg?: KeyAlg; json?: boolean }): Promise<void> {
  const key = await rotateKey(ctx, o.name, o.alg);
  ctx.io.out.write(o.json ? JSON.stringify({ profile: o.name, jwk: key.publicJwk }, null, 2) + "\n" : JSON.stringify(key.publicJwk) + "\n");
  ctx.info(`New key ${key.kid} for profile "${o.name}". Register it at the IdP (keep the old one there until then):`);
  ctx.info(`the previous key ${key.previous!.kid} is used while the IdP refuses the new one, and deleted after the first token the new key gets.`);
}

export async function runProfilesSet(ctx: Context, o: { name: string; clientId?: string }): Promise<void> {
  if (o.clientId === undefined) throw new UsageError("nothing to set", { hint: "pass --client-id ID" });
  await setClientId(ctx, o.name, o.clientId);
  ctx.info(`Profile "${o.name}": client id ${o.clientId}.`);
}

export interface ProfilesRuns {
  add: Run<ProfilesAddOptions>;
  list: Run<ProfilesListOptions>;
  show: Run<{ name: string; json?: boolean }>;
  use: Run<{ name: string }>;
  remove: Run<{ name: string }>;
  rotateKey: Run<{ name: string; alg?: KeyAlg; json?: boolean }>;
  set: Run<{ name: string; clientId?: string }>;
}

const RUNS: ProfilesRuns = { add: runProfilesAdd, list: runProfilesList, show: runProfilesShow, use: runProfilesUse, remove: runProfilesRemove, rotateKey: runProfilesRotateKey, set: runProfilesSet };

export function registerProfiles(program: Command, getCtx: () => Context, runs: Partial<ProfilesRuns> = {}): void {
  const r = { ...RUNS, ...runs };
  const profiles = program.command("profiles").description("manage saved profiles (issuer, client, grant, scopes)");

  profiles
    .command("add <name>")
    .description("save a profile; its client secret goes to the secret store")
    .requiredOption("--issuer <url>", "the authorization server's issuer URL")
    .option("--client-id <id>", "the OAuth client id (required, except for a key profile whose id the IdP assigns later)")
    .option("--client-secret-stdin", "read the client secret from stdin (a hidden prompt on a terminal)")
    .option("--client-secret-env <VAR>", "read the client secret from $VAR now and store it")
    .addOption(choice("--grant <grant>", "how tokens are obtained", GRANTS))
    .option("--scope <scope...>", "scopes to request")
    .option("--resource <uri>", "RFC 8707 resource indicator (usually the MCP server URL)")
    .option("--audience <aud>", "audience parameter, for IdPs that use one")
    .option("--mcp-url <url>", "the MCP server this profile is for")
    .option("--redirect-port <port>", "fixed loopback port for browser logins")
    .addOption(choice("--auth-method <method>", "token endpoint client authentication", AUTH_METHODS))
    .option("--kind <provider>", "provider kind", "oidc")
    .option("--default", "make it the default profile")
    .option("--force", "replace an existing profile of that name")
    // private_key_jwt (RFC 7523) and identity federation
    .addOption(choice("--client-auth <method>", "private-key-jwt: sign assertions with a key instead of a secret", ["private-key-jwt"] as const))
    .option("--generate-key", "with private-key-jwt: make a key pair (private half in the secret store); prints the public JWK")
    .option("--key-file <path>", "with private-key-jwt: import a PEM or JWK private key into the secret store")
    .addOption(choice("--alg <alg>", "key algorithm (default ES256)", KEY_ALGS))
    .addOption(choice("--key-audience <aud>", "aud of the signed assertion: issuer (default) or token-endpoint (Okta)", ["issuer", "token-endpoint"] as const))
    .option("--assertion-from <source>", "use the CI's own token: github-actions[:AUDIENCE] | env:VAR | file:PATH")
    .addOption(choice("--federation <how>", "how the CI token is used (default client-assertion)", FEDERATIONS))
    .option("--subject-token-type <type>", "token exchange: jwt (default) | id_token | a literal the IdP wants")
    .option("--json", "print {profile, jwk} as JSON")
    .action((name: string, o: Omit<ProfilesAddOptions, "name">) => r.add(getCtx(), { ...o, name }));

  profiles
    .command("list")
    .alias("ls")
    .description("list profiles")
    .option("--json", "machine-readable output")
    .option("-q, --quiet", "names only, one per line")
    .action((o: ProfilesListOptions) => r.list(getCtx(), o));

  profiles
    .command("show <name>")
    .description("show a profile (never its secrets)")
    .option("--json", "machine-readable output")
    .action((name: string, o: { json?: boolean }) => r.show(getCtx(), { ...o, name }));

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
    .command("set <name>")
    .description("change a profile's client id (e.g. the one an IdP assigned after seeing the key)")
    .option("--client-id <id>", "the OAuth client id")
    .action((name: string, o: { clientId?: string }) => r.set(getCtx(), { ...o, name }));

  profiles
    .command("remove <name>")
    .alias("rm")
    .description("delete a profile, its client secret and its cached tokens")
    .action((name: string) => r.remove(getCtx(), { name }));
}
