import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { checkResource, checkUrl } from "../oauth/client.js";
import { accounts } from "../store/tokens.js";
import { isProfileName, normalizeIssuer, profileOf, splitScopes, type Federation, type Grant, type KeyAlg, type ProfileData, type TokenAuthMethod } from "../target.js";
import { assertionSetting } from "./federation.js";
import { forgetKeys, generateKey, importKeyFile, privateKeyAccount, storeKey, type NewKey } from "./keys.js";
import { forgetTokens } from "./tokens.js";
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
    if (input.clientSecret) {
      const store = await ctx.secrets();
      await store.set(accounts.clientSecret(input.name), input.clientSecret);
      data.secretStore = store.kind;
      if (existing?.secretStore && existing.secretStore !== store.kind) {
        await (await ctx.secretsOf(existing.secretStore)).delete(accounts.clientSecret(input.name)).catch(() => false);
      }
    } else if (existing?.secretStore && data.tokenEndpointAuthMethod !== "none") {
      data.secretStore = existing.secretStore; // keep the stored secret when only other fields change
    }
    if (existing) {
      // The target may have changed (issuer, scopes…): old tokens must not be served for it.
      await forgetTokens(ctx, targetFromProfile({ name: input.name, ...existing }));
    }
    cfg.profiles[input.name] = data;
    if (input.makeDefault || Object.keys(cfg.profiles).length === 1) cfg.defaultProfile = input.name;
    return data;
  });
}


/** Deletes a profile, its client secret and its cached tokens. */
export async function removeProfile(ctx: Context, name: string): Promise<void> {
  await ctx.updateConfig(async (cfg) => {
    const p = profileOf(cfg, name);
    if (!p) throw new UsageError(`no profile named "${name}"`);
    await forgetTokens(ctx, targetFromProfile({ name, ...p }));
    // Every store, whatever the profile says: a secret written elsewhere by an older run must go too.
    const report = await ctx.tokens.purgeAccount(accounts.clientSecret(name));
    for (const f of report.failed) ctx.warn(`could not check a secret store for the client secret (${f})`);
    await forgetKeys(ctx, name, [p.key, p.key?.previous]);
    delete cfg.profiles[name];
    if (cfg.defaultProfile === name) delete cfg.defaultProfile;
  });
}

export interface AddProfileInput {
  name: string;
  issuer: string;
  /** Optional only for a private-key-jwt profile whose client id the IdP assigns later. */
  clientId?: string;
  clientSecret?: string;
  grant?: Grant;
  scopes?: string[];
  resource?: string;
  audience?: string;
  mcpUrl?: string;
  redirectPort?: string;
  authMethod?: TokenAuthMethod;
  kind: string;
  makeDefault?: boolean;
  force?: boolean;
  // ---- private_key_jwt and identity federation ----
  /** "private-key-jwt": authenticate with a key pair instead of a secret. */
  clientAuth?: "private-key-jwt";
  generateKey?: boolean;
  keyFile?: string;
  alg?: KeyAlg;
  keyAudience?: "issuer" | "token-endpoint";
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
  if (o.clientAuth !== "private-key-jwt") {
    if (o.generateKey || o.keyFile || o.alg || o.keyAudience) throw new UsageError("--generate-key, --key-file, --alg and --key-audience need --client-auth private-key-jwt");
  } else {
    if (o.clientSecret) throw new UsageError("--client-auth private-key-jwt replaces the client secret: pass one or the other");
    if (o.assertionFrom) throw new UsageError("--client-auth private-key-jwt and --assertion-from exclude each other");
    if (Boolean(o.generateKey) === Boolean(o.keyFile)) throw new UsageError("--client-auth private-key-jwt needs --generate-key or --key-file PATH (one of them)");
  }
  if (o.assertionFrom && o.grant && o.grant !== "client_credentials") throw new UsageError("--assertion-from is for machine tokens: it needs --grant client_credentials (the default)");
  if (!o.assertionFrom && (o.federation || o.subjectTokenType)) throw new UsageError("--federation and --subject-token-type need --assertion-from");
  if (o.assertionFrom && o.clientSecret && (o.federation ?? "client-assertion") === "client-assertion") {
    throw new UsageError("a client secret and --federation client-assertion exclude each other: the CI token is the client credential");
  }
  if (!o.clientId && o.clientAuth !== "private-key-jwt") throw new UsageError("--client-id is required (only a private-key-jwt profile may get it later)");
  return {
    key: o.clientAuth === "private-key-jwt" ? (o.keyFile ? await importKeyFile(o.keyFile, o.alg) : await generateKey(o.alg)) : undefined,
    assertion: o.assertionFrom ? assertionSetting(o.assertionFrom, o.federation, o.subjectTokenType) : undefined,
  };
}

/** `profiles add`: validates what a person typed, then saves the profile and its secret. */
export async function addProfile(ctx: Context, o: AddProfileInput): Promise<AddedProfile> {
  checkProfileName(o.name);
  const { key, assertion } = await keyOrAssertion(o);
  checkUrl(o.issuer, "--issuer", ctx.allowHttp, "issuer");
  if (o.mcpUrl) checkUrl(o.mcpUrl, "--mcp-url", ctx.allowHttp, "resource");
  if (o.resource) checkResource(o.resource, "--resource");
  const grant: Grant = o.grant ?? (o.clientSecret || key || assertion ? "client_credentials" : "authorization_code");
  const existing = profileOf(ctx.config(), o.name);
  const hadSecret = Boolean(existing?.secretStore) && o.force; // kept by saveProfile
  if (grant === "client_credentials" && !o.clientSecret && !hadSecret && !key && !assertion) {
    throw new UsageError("client credentials need a client secret", { hint: "pass --client-secret-stdin or --client-secret-env VAR" });
  }
  let redirectPort: number | undefined;
  if (o.redirectPort !== undefined) {
    redirectPort = Number(o.redirectPort);
    if (!Number.isInteger(redirectPort) || redirectPort < 1 || redirectPort > 65535) throw new UsageError(`--redirect-port must be 1-65535, got "${o.redirectPort}"`);
  }
  const data: ProfileData = {
    provider: o.kind,
    issuer: normalizeIssuer(o.issuer),
    clientId: o.clientId ?? "",
    grant,
    scopes: splitScopes(o.scopes),
    resource: o.resource,
    audience: o.audience,
    mcpUrl: o.mcpUrl,
    redirectPort,
    tokenEndpointAuthMethod: key ? "private_key_jwt" : o.authMethod,
    ...(assertion && { assertion }),
  };
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

/**
 * `profiles set NAME --client-id ID`: completes a key profile once the IdP has assigned the client id
 * (only the client id; cached tokens of the old target are dropped).
 */
export async function setClientId(ctx: Context, name: string, clientId: string): Promise<void> {
  if (!clientId) throw new UsageError("--client-id must not be empty");
  await ctx.updateConfig(async (cfg) => {
    const p = profileOf(cfg, name);
    if (!p) throw new UsageError(`no profile named "${name}"`);
    await forgetTokens(ctx, targetFromProfile({ name, ...p }));
    p.clientId = clientId;
  });
}

/** Makes a profile the default. */
export async function useProfile(ctx: Context, name: string): Promise<void> {
  await ctx.updateConfig((cfg) => {
    if (!Object.hasOwn(cfg.profiles, name)) throw new UsageError(`no profile named "${name}"`);
    cfg.defaultProfile = name;
  });
}
