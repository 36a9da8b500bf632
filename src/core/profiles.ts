import { portNumber } from "./inputs.js";
import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { checkResource, checkUrl } from "../oauth/client.js";
import { loopbackRedirect } from "../oauth/redirect-uri.js";
import { accounts } from "../store/tokens.js";
import { isProfileName, normalizeIssuer, profileOf, splitScopes, type Federation, type Grant, type KeyAlg, type Profile, type ProfileData, type TokenAuthMethod } from "../profile.js";
import { assertionSetting } from "./assertion-source.js";
import { ciIdentityProblem } from "./enterprise.js";
import { checkKeyId, forgetKeys, generateKey, importKeyFile, privateKeyAccount, renameKey, storeKey, withKeyId, type NewKey } from "./keys.js";
import { forgetTokens, storedTokens } from "./tokens.js";
import { checkCommandToStore } from "./secret-command.js";
import { targetFromProfile } from "./target.js";

/** Profile use cases: create/replace and remove a profile together with its secrets. */
export function checkProfileName(name: string): void {
  if (!isProfileName(name)) throw new UsageError(`invalid profile name "${name}": use letters, digits, ".", "_" or "-" (max 64)`);
}

export interface SaveProfileInput {
  name: string;
  data: ProfileData;
  clientSecret?: string;
  /** Replace an existing profile of that name. */
  force?: boolean;
  makeDefault?: boolean;
}

/**
 * Saves a profile and its secret: the secret goes to the secret store first, then the config. Used
 * by `profiles add`, `sandbox --save` and the IdP bootstrap commands.
 */
export async function saveProfile(ctx: Context, input: SaveProfileInput): Promise<ProfileData> {
  checkProfileName(input.name);
  return ctx.updateConfig(async (cfg) => {
    const existing = profileOf(cfg, input.name);
    if (existing && !input.force) throw new UsageError(`profile "${input.name}" already exists`, { hint: "pass --force to replace it" });
    const data: ProfileData = { ...input.data };
    if (input.clientSecret) delete data.clientSecretCommand; // a stored secret replaces a command
    if (data.clientSecretCommand) {
      // A command replaces a stored secret: nothing of it may stay behind.
      delete data.secretStore;
      if (existing?.secretStore) await (await ctx.secretsOf(existing.secretStore)).delete(accounts.clientSecret(input.name)).catch(() => false);
    } else if (input.clientSecret) {
      const store = await ctx.secrets();
      await store.set(accounts.clientSecret(input.name), input.clientSecret);
      data.secretStore = store.kind;
      if (existing?.secretStore && existing.secretStore !== store.kind) {
        await (await ctx.secretsOf(existing.secretStore)).delete(accounts.clientSecret(input.name)).catch(() => false);
      }
    } else if (existing?.secretStore && data.tokenEndpointAuthMethod !== "none") {
      data.secretStore = existing.secretStore; // keep the stored secret when only other fields change
    } else if (existing?.clientSecretCommand && data.tokenEndpointAuthMethod !== "none" && !existing.secretStore) {
      data.clientSecretCommand = existing.clientSecretCommand; // and the command, likewise
    }
    if (data.tokenEndpointAuthMethod === "none" || data.tokenEndpointAuthMethod === "private_key_jwt") delete data.clientSecretCommand;
    if (existing) {
      // The target may have changed (issuer, scopes…): old tokens must not be served for it.
      await forgetTokens(ctx, targetFromProfile({ name: input.name, ...existing }));
    }
    cfg.profiles[input.name] = data;
    if (input.makeDefault || Object.keys(cfg.profiles).length === 1) cfg.defaultProfile = input.name;
    return data;
  });
}


export interface RemoveResult {
  /** The removed profile was the default. */
  wasDefault: boolean;
  /** The profile that became the default (the only one left), if any. */
  newDefault?: string;
  /** Profiles left. */
  remaining: string[];
}

/** Deletes a profile, its client secret and its cached tokens; the only profile left becomes the default. */
export async function removeProfile(ctx: Context, name: string): Promise<RemoveResult> {
  return ctx.updateConfig(async (cfg) => {
    const p = profileOf(cfg, name);
    if (!p) throw new UsageError(`no profile named "${name}"`);
    await forgetTokens(ctx, targetFromProfile({ name, ...p }));
    // Every store, whatever the profile says: a secret written elsewhere by an older run must go too.
    const report = await ctx.tokens.purgeAccount(accounts.clientSecret(name));
    for (const f of report.failed) ctx.warn(`could not check a secret store for the client secret (${f})`);
    await forgetKeys(ctx, name, [p.key, p.key?.previous]);
    // What a provider kept for this profile (an OCI session token, and the key it is bound to).
    for (const provider of ctx.plugins.providers) {
      const kept = provider.forget?.({ name, issuer: p.issuer, clientId: p.clientId });
      for (const id of kept?.tokens ?? []) await ctx.tokens.forget(id);
      for (const account of kept?.accounts ?? []) await ctx.tokens.purgeAccount(account);
    }
    delete cfg.profiles[name];
    const remaining = Object.keys(cfg.profiles);
    const result: RemoveResult = { wasDefault: cfg.defaultProfile === name, remaining };
    if (result.wasDefault) {
      delete cfg.defaultProfile;
      // Otherwise the next `token` would say "several profiles exist" (or pick the survivor silently).
      if (remaining.length === 1) cfg.defaultProfile = result.newDefault = remaining[0];
    }
    return result;
  });
}

/**
 * Renames a profile with everything that hangs off its name: the client secret, the cached tokens
 * (refresh token included) and the default. The copies under the new name are made first and the old
 * ones removed only once config.json names the new profile, so a failure at any point leaves a working
 * profile (the old one, or the new one) and never one without its secret.
 */
export async function renameProfile(ctx: Context, from: string, to: string): Promise<void> {
  checkProfileName(to);
  const cfg0 = ctx.config();
  const p = profileOf(cfg0, from);
  if (!p) throw new UsageError(`no profile named "${from}"`, { hint: "see: mcp-auth profiles list" });
  if (profileOf(cfg0, to)) throw new UsageError(`profile "${to}" already exists`, { hint: `remove it first: mcp-auth profiles remove ${to}` });
  const oldT = targetFromProfile({ name: from, ...p });
  const newT = targetFromProfile({ name: to, ...p });
  const releaseOld = await ctx.tokens.lock(oldT);
  const releaseNew = await ctx.tokens.lock(newT).catch((e: unknown) => {
    releaseOld();
    throw e;
  });
  let copiedSecret = false;
  let copiedTokens = false;
  try {
    await ctx.updateConfig(async (cfg) => {
      const cur = profileOf(cfg, from);
      if (!cur) throw new UsageError(`no profile named "${from}"`);
      if (profileOf(cfg, to)) throw new UsageError(`profile "${to}" already exists`);
      if (cur.secretStore) {
        const store = await ctx.secretsOf(cur.secretStore);
        const secret = await store.get(accounts.clientSecret(from));
        if (secret !== null) {
          await store.set(accounts.clientSecret(to), secret);
          copiedSecret = true;
        }
      }
      const held = await storedTokens(ctx, oldT);
      const rec = ctx.tokens.record(oldT);
      if (rec && held.accessToken) {
        await ctx.tokens.save(newT, { access_token: held.accessToken, token_type: rec.token_type, expires_at: rec.expires_at, scope: rec.scope, refresh_token: held.refreshToken, ...(rec.bearer && { bearer: rec.bearer }) });
        copiedTokens = true;
      }
      cfg.profiles[to] = cur;
      delete cfg.profiles[from];
      if (cfg.defaultProfile === from) cfg.defaultProfile = to;
    });
  } catch (e) {
    // config.json still names the old profile: drop the copies.
    if (copiedTokens) await ctx.tokens.forget(newT).catch(() => undefined);
    if (copiedSecret) await ctx.tokens.purgeAccount(accounts.clientSecret(to)).catch(() => undefined);
    throw e;
  } finally {
    releaseNew();
    releaseOld();
  }
  await forgetTokens(ctx, oldT);
  const report = await ctx.tokens.purgeAccount(accounts.clientSecret(from));
  for (const f of report.failed) ctx.warn(`could not remove the old client secret from a secret store (${f})`);
}

/** What `profiles set` may change; absent fields stay as they are. */
/** What `profiles set` may change: the `profiles add` fields, each optional. */
export type ProfileChanges = Partial<Pick<AddProfileInput, "issuer" | "clientId" | "clientSecret" | "clientSecretCommand" | "grant" | "scopes" | "resource" | "audience" | "mcpUrl" | "redirectPort" | "redirectUri" | "authMethod" | "kind" | "keyId" | "authorizeParams" | "useIdToken">>;

/**
 * Edits a saved profile in place: the stored client secret is kept unless a new one is given, and the
 * cached tokens are dropped (they were obtained for the old settings). An empty string clears an
 * optional field (`--resource ""`).
 */
export async function updateProfile(ctx: Context, name: string, c: ProfileChanges): Promise<ProfileData> {
  const cur = profileOf(ctx.config(), name);
  if (!cur) throw new UsageError(`no profile named "${name}"`, { hint: "see: mcp-auth profiles list" });
  const opt = (v: string | undefined, old: string | undefined) => (v === undefined ? old : v === "" ? undefined : v);
  const scopes = c.scopes === undefined ? cur.scopes : splitScopes(c.scopes);
  // A redirect URI fixes the port, so setting one replaces the other.
  const redirectPort = c.redirectPort === undefined ? (c.redirectUri ? undefined : cur.redirectPort) : c.redirectPort === "" ? undefined : checkPort(c.redirectPort);
  const redirectUri = c.redirectUri === undefined ? (c.redirectPort ? undefined : cur.redirectUri) : c.redirectUri || undefined;
  let base = cur;
  if (c.keyId !== undefined) {
    if (!cur.key) throw new UsageError(`profile "${name}" has no private_key_jwt key, so --key-id and --no-key-id do not apply`);
    base = { ...cur, key: renameKey(cur.key, c.keyId === false ? null : checkKeyId(c.keyId, "--key-id")) };
  }
  return addProfile(ctx, {
    name,
    issuer: c.issuer ?? cur.issuer,
    clientId: c.clientId ?? cur.clientId,
    clientSecret: c.clientSecret,
    clientSecretCommand: c.clientSecretCommand,
    grant: c.grant ?? cur.grant,
    scopes,
    resource: opt(c.resource, cur.resource),
    audience: opt(c.audience, cur.audience),
    mcpUrl: opt(c.mcpUrl, cur.mcpUrl),
    redirectPort: redirectPort === undefined ? undefined : String(redirectPort),
    redirectUri,
    useIdToken: c.useIdToken ?? cur.useIdToken,
    authMethod: c.authMethod ?? cur.tokenEndpointAuthMethod,
    kind: c.kind ?? cur.provider,
    // An empty map clears them (`--authorize-param ""`).
    authorizeParams: c.authorizeParams === undefined ? cur.authorizeParams : Object.keys(c.authorizeParams).length ? c.authorizeParams : undefined,
    base,
    force: true,
  });
}

function checkPort(v: string): number {
  return portNumber("--redirect-port", v);
}

export interface AddProfileInput {
  name: string;
  issuer: string;
  /** Optional only for a private-key-jwt profile whose client id the IdP assigns later. */
  clientId?: string;
  clientSecret?: string;
  /** `--client-secret-cmd`, parsed: the client secret is what it prints, at every token request. */
  clientSecretCommand?: string[];
  grant?: Grant;
  scopes?: string[];
  resource?: string;
  audience?: string;
  mcpUrl?: string;
  redirectPort?: string;
  /** An exact loopback redirect URI registered at the IdP (`--redirect-uri`). */
  redirectUri?: string;
  /** Hand out the ID token instead of the access token (`--use-id-token`). */
  useIdToken?: boolean;
  /** Enterprise-managed authorization through this IdP profile (`--enterprise IDP_PROFILE`). */
  enterprise?: string;
  authMethod?: TokenAuthMethod;
  kind: string;
  /** Extra authorization-request parameters (already checked: src/oauth/authorize-params.ts). */
  authorizeParams?: Record<string, string>;
  /** Non-secret facts to keep (an IdP preset's id and fixed endpoints: src/presets/). */
  extra?: Record<string, unknown>;
  makeDefault?: boolean;
  force?: boolean;
  /** `profiles set`: the profile being edited; fields this form does not know (provider facts…) are kept. */
  base?: ProfileData;
  // ---- private_key_jwt and identity federation ----
  /** "private-key-jwt": authenticate with a key pair instead of a secret. */
  clientAuth?: "private-key-jwt";
  generateKey?: boolean;
  keyFile?: string;
  alg?: KeyAlg;
  keyAudience?: "issuer" | "token-endpoint";
  /** The assertion's kid header (--key-id KID), or false for none (--no-key-id); default: see core/keys.ts. */
  keyId?: string | false;
  assertionFrom?: string;
  federation?: Federation;
  subjectTokenType?: string;
}

/** What `profiles add` made, with the public JWK to register when a key was made or imported. */
export interface AddedProfile extends ProfileData {
  publicJwk?: Record<string, unknown>;
}

/** Checks the key/federation flags of `profiles add` and makes or imports the key (not yet stored). */
async function keyOrAssertion(o: AddProfileInput): Promise<{ key?: NewKey; assertion?: ProfileData["assertion"] }> {
  if (o.clientSecret && o.clientSecretCommand) throw new UsageError("pass the client secret one way: --client-secret-cmd, or --client-secret-stdin / --client-secret-env");
  const secret = o.clientSecret ?? (o.clientSecretCommand && "command");
  if (o.clientAuth !== "private-key-jwt") {
    if (o.generateKey || o.keyFile || o.alg || o.keyAudience) throw new UsageError("--generate-key, --key-file, --alg and --key-audience need --client-auth private-key-jwt");
    if (o.keyId !== undefined) throw new UsageError("--key-id and --no-key-id need --client-auth private-key-jwt");
  } else {
    if (secret) throw new UsageError("--client-auth private-key-jwt replaces the client secret: pass one or the other");
    if (o.assertionFrom) throw new UsageError("--client-auth private-key-jwt and --assertion-from exclude each other");
    if (Boolean(o.generateKey) === Boolean(o.keyFile)) throw new UsageError("--client-auth private-key-jwt needs --generate-key or --key-file PATH (one of them)");
  }
  if (o.assertionFrom && o.grant && o.grant !== "client_credentials") throw new UsageError("--assertion-from is for machine tokens: it needs --grant client_credentials (the default)");
  if (!o.assertionFrom && (o.federation || o.subjectTokenType)) throw new UsageError("--federation and --subject-token-type need --assertion-from");
  if (o.assertionFrom && secret && (o.federation ?? "client-assertion") === "client-assertion") {
    throw new UsageError("a client secret and --federation client-assertion exclude each other: the CI token is the client credential");
  }
  if (!o.clientId && o.clientAuth !== "private-key-jwt") throw new UsageError("--client-id is required (only a private-key-jwt profile may get it later)");
  const keyId = o.keyId === undefined ? undefined : o.keyId === false ? null : checkKeyId(o.keyId, "--key-id");
  return {
    key: o.clientAuth === "private-key-jwt" ? withKeyId(o.keyFile ? await importKeyFile(o.keyFile, o.alg) : await generateKey(o.alg), keyId) : undefined,
    assertion: o.assertionFrom ? assertionSetting(o.assertionFrom, o.federation, o.subjectTokenType) : undefined,
  };
}

/** `--enterprise IDP_PROFILE`: an existing profile that signs a person in at the enterprise IdP. */
export function checkEnterprise(ctx: Context, o: Pick<AddProfileInput, "name" | "enterprise" | "grant" | "assertionFrom" | "clientAuth" | "useIdToken">): void {
  const idp = profileOf(ctx.config(), o.enterprise!);
  if (o.enterprise === o.name) throw new UsageError("--enterprise names the IdP's own profile, not this one");
  if (!idp) throw new UsageError(`--enterprise ${o.enterprise}: no such profile`, { hint: `first: mcp-auth profiles add ${o.enterprise} --issuer IDP_URL --client-id ID --grant authorization_code` });
  const ci = ciIdentityProblem(o.enterprise!, idp);
  if (ci) throw new UsageError(`--enterprise ${o.enterprise}: ${ci.message}`, { hint: ci.hint });
  if (idp.grant === "client_credentials" || idp.enterprise) throw new UsageError(`--enterprise ${o.enterprise}: that profile must sign a person in at the IdP (authorization code or device code)`);
  if (!idp.scopes?.includes("openid")) throw new UsageError(`--enterprise ${o.enterprise}: that profile does not ask for the openid scope, so it would get no ID token to exchange`, { hint: `mcp-auth profiles set ${o.enterprise} --scope openid ${(idp.scopes ?? []).join(" ")}`.trim() });
  if (o.grant && o.grant !== "client_credentials") throw new UsageError("--enterprise gets tokens without a browser (an ID-JAG and the JWT-bearer grant): --grant does not apply");
  if (o.assertionFrom || o.clientAuth || o.useIdToken) throw new UsageError("--enterprise cannot be combined with --assertion-from, --client-auth or --use-id-token");
}

/** `profiles add`: validates what a person typed, then saves the profile and its secret. */
export async function addProfile(ctx: Context, o: AddProfileInput): Promise<AddedProfile> {
  checkProfileName(o.name);
  const { key, assertion } = await keyOrAssertion(o);
  checkUrl(o.issuer, "--issuer", ctx.allowHttp, "issuer");
  if (o.mcpUrl) checkUrl(o.mcpUrl, "--mcp-url", ctx.allowHttp, "resource");
  if (o.resource) checkResource(o.resource, "--resource");
  if (o.enterprise !== undefined) checkEnterprise(ctx, o);
  const grant: Grant = o.enterprise ? "client_credentials" : (o.grant ?? (o.clientSecret || o.clientSecretCommand || key || assertion ? "client_credentials" : "authorization_code"));
  const existing = profileOf(ctx.config(), o.name);
  const hadSecret = Boolean(existing?.secretStore || existing?.clientSecretCommand) && o.force; // kept by saveProfile
  if (o.clientSecretCommand) {
    // Stored only where it may later run, and only once it has printed a secret: a typo fails now, not in the MCP client.
    await checkCommandToStore(ctx, o.clientSecretCommand, `profile "${o.name}"`, o.clientId);
  }
  // A key or federated profile being edited (`profiles set`) keeps authenticating the way it did.
  if (grant === "client_credentials" && !o.enterprise && !o.base?.enterprise && !o.clientSecret && !o.clientSecretCommand && !hadSecret && !key && !assertion && !o.base?.key && !o.base?.assertion) {
    throw new UsageError("client credentials need a client secret", { hint: "pass --client-secret-stdin, --client-secret-env VAR or --client-secret-cmd 'COMMAND'" });
  }
  let redirectPort: number | undefined;
  if (o.redirectPort !== undefined) {
    redirectPort = portNumber("--redirect-port", String(o.redirectPort));
  }
  if (o.redirectUri !== undefined) {
    if (redirectPort !== undefined) throw new UsageError("--redirect-port and --redirect-uri exclude each other: the URI fixes the port");
    loopbackRedirect(o.redirectUri);
  }
  let scopes = splitScopes(o.scopes);
  if (o.useIdToken) {
    // Only a person's sign-in yields an ID token, and only when openid is asked for (OIDC Core §3.1.2.1).
    if (grant === "client_credentials") throw new UsageError("--use-id-token needs a person's sign-in (--grant authorization_code or device_code): client credentials yield no ID token");
    if (!scopes?.includes("openid")) scopes = ["openid", ...(scopes ?? [])];
  }
  const { secretStore: _kept, ...base } = o.base ?? ({} as Partial<ProfileData>);
  const data: ProfileData = {
    ...base,
    provider: o.kind,
    issuer: normalizeIssuer(o.issuer),
    clientId: o.clientId ?? "",
    grant,
    scopes,
    resource: o.resource,
    audience: o.audience,
    mcpUrl: o.mcpUrl,
    redirectPort,
    redirectUri: o.redirectUri,
    useIdToken: o.useIdToken || undefined,
    ...(o.enterprise && { enterprise: { idp: o.enterprise } }),
    // An enterprise profile's client without a secret is a public one at the MCP authorization server (ext-auth §5).
    tokenEndpointAuthMethod: key ? "private_key_jwt" : (o.authMethod ?? (o.enterprise && !o.clientSecret && !hadSecret ? "none" : undefined)),
    ...(assertion && { assertion }),
    ...(o.authorizeParams && Object.keys(o.authorizeParams).length && { authorizeParams: o.authorizeParams }),
    ...(o.extra && { extra: { ...base.extra, ...o.extra } }),
    ...(o.clientSecretCommand && { clientSecretCommand: o.clientSecretCommand }),
  };
  if (!o.authorizeParams || !Object.keys(o.authorizeParams).length) delete data.authorizeParams; // `--authorize-param ""` cleared them
  if (!key) return saveProfile(ctx, { name: o.name, data, clientSecret: o.clientSecret, force: o.force, makeDefault: o.makeDefault });
  // The private key goes to the secret store first; a refused save takes it out again.
  const ref = await storeKey(ctx, o.name, key);
  data.key = { ...ref, publicJwk: key.publicJwk, ...(o.keyAudience === "token-endpoint" && { audience: "token-endpoint" as const }) };
  const old = existing?.key;
  try {
    await saveProfile(ctx, { name: o.name, data, force: o.force, makeDefault: o.makeDefault });
  } catch (e) {
    await (await ctx.secretsOf(ref.store)).delete(privateKeyAccount(o.name, ref.kid)).catch(() => false);
    throw e;
  }
  if (old) await forgetKeys(ctx, o.name, [old, old.previous].filter((r) => r?.kid !== ref.kid));
  return { ...data, publicJwk: key.publicJwk };
}


/** Makes a profile the default. */
export async function useProfile(ctx: Context, name: string): Promise<void> {
  await ctx.updateConfig((cfg) => {
    if (!Object.hasOwn(cfg.profiles, name)) throw new UsageError(`no profile named "${name}"`);
    cfg.defaultProfile = name;
  });
}

/** A profile with `extra` scopes added to its own (step-up), not saved yet. */
export function withScopes(p: Profile, extra: string[]): Profile {
  const scopes = [...new Set([...(p.scopes ?? []), ...splitScopes(extra)!])];
  return { ...p, scopes };
}

/**
 * Records a profile's new scopes after a step-up succeeded. Its tokens were just obtained for these
 * scopes, so they stay: only the scope list changes.
 */
export async function saveScopes(ctx: Context, name: string, scopes: string[]): Promise<void> {
  await ctx.updateConfig((cfg) => {
    const p = profileOf(cfg, name);
    if (p) p.scopes = scopes;
  });
}

/**
 * Records the authorization parameters a login used (`login NAME --authorize-param K=V`) once it
 * worked; they are not part of the token's identity, so its tokens stay.
 */
export async function saveAuthorizeParams(ctx: Context, name: string, params: Record<string, string>): Promise<void> {
  await ctx.updateConfig((cfg) => {
    const p = profileOf(cfg, name);
    if (!p) return;
    if (Object.keys(params).length) p.authorizeParams = params;
    else delete p.authorizeParams;
  });
}

/** Records the redirect URI a login just succeeded with (`login NAME --redirect-uri`); its tokens stay. */
export async function saveRedirectUri(ctx: Context, name: string, uri: string): Promise<void> {
  await ctx.updateConfig((cfg) => {
    const p = profileOf(cfg, name);
    if (!p) return;
    p.redirectUri = uri;
    delete p.redirectPort; // the URI fixes the port
  });
}
