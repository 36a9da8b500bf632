import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { accounts } from "../store/tokens.js";
import { isProfileName, profileOf, type ProfileData } from "../target.js";
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
    if (p.secretStore) await (await ctx.secretsOf(p.secretStore)).delete(accounts.clientSecret(name));
    delete cfg.profiles[name];
    if (cfg.defaultProfile === name) delete cfg.defaultProfile;
  });
}
