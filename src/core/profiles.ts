import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { checkResource, checkUrl } from "../oauth/client.js";
import { accounts } from "../store/tokens.js";
import { isProfileName, normalizeIssuer, profileOf, splitScopes, type Grant, type Profile, type ProfileData, type TokenAuthMethod } from "../target.js";
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
    delete cfg.profiles[name];
    if (cfg.defaultProfile === name) delete cfg.defaultProfile;
  });
}

export interface AddProfileInput {
  name: string;
  issuer: string;
  clientId: string;
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
}

/** `profiles add`: validates what a person typed, then saves the profile and its secret. */
export async function addProfile(ctx: Context, o: AddProfileInput): Promise<ProfileData> {
  checkProfileName(o.name);
  checkUrl(o.issuer, "--issuer", ctx.allowHttp, "issuer");
  if (o.mcpUrl) checkUrl(o.mcpUrl, "--mcp-url", ctx.allowHttp, "resource");
  if (o.resource) checkResource(o.resource, "--resource");
  const grant: Grant = o.grant ?? (o.clientSecret ? "client_credentials" : "authorization_code");
  const existing = profileOf(ctx.config(), o.name);
  const hadSecret = Boolean(existing?.secretStore) && o.force; // kept by saveProfile
  if (grant === "client_credentials" && !o.clientSecret && !hadSecret) {
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
    clientId: o.clientId,
    grant,
    scopes: splitScopes(o.scopes),
    resource: o.resource,
    audience: o.audience,
    mcpUrl: o.mcpUrl,
    redirectPort,
    tokenEndpointAuthMethod: o.authMethod,
  };
  return saveProfile(ctx, { name: o.name, data, clientSecret: o.clientSecret, force: o.force, makeDefault: o.makeDefault });
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
