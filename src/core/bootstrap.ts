import type { Context } from "../context.js";
import { McpAuthError } from "../errors.js";
import type { BootstrapResult, Provider, SecretVault } from "./provider.js";
import { accounts } from "../store/tokens.js";
import { applyPlan } from "../store/apply.js";
import { backupPolicy } from "../store/backup.js";
import { generateKey, storeKey } from "./keys.js";
import type { ProfileData } from "../profile.js";
import { relativeTime, type Check } from "./checks.js";
import { peekClaims } from "./decode.js";
import { planMcpProfile } from "./mcp-login.js";
import type { InputSpec, InputValues } from "./inputs.js";
import { saveProfile } from "./profiles.js";
import { targetFromProfile } from "./target.js";
export type { Provider } from "./provider.js";
import { getToken } from "./tokens.js";
import { login } from "./session.js";

/**
 * The bootstrap use case: the provider creates (or reuses) the client in its IdP and returns what
 * it made; this saves the profile with its secret, gets a first token for client-credentials
 * profiles and runs the provider's verify(). The command only renders the outcome.
 */
export interface BootstrapOptions {
  /** Name of the profile to save. */
  profile: string;
  /** False: no first token and no probes. */
  verify: boolean;
  /** Runs each network step (the command shows a spinner); default: just runs it. */
  step?: <T>(what: string, fn: () => Promise<T>) => Promise<T>;
}

export interface BootstrapOutcome {
  result: BootstrapResult;
  /** The saved profile's name and data, when the provider made a client for mcp-auth. */
  profile?: { name: string; data: ProfileData };
  /** Every check, in order: first token, the provider's own, then verify's. */
  checks: Check[];
}

export async function bootstrap<S extends readonly InputSpec[]>(ctx: Context, provider: Provider<S>, input: InputValues<S>, o: BootstrapOptions): Promise<BootstrapOutcome> {
  const vault = secretVault(ctx, o.profile);
  const step = o.step ?? (<T>(_what: string, fn: () => Promise<T>) => fn());
  const result = await step(`${provider.title}: creating or reusing the client`, () => provider.bootstrap(ctx, input, { profile: o.profile, verify: o.verify, vault, planMcp: (i) => planMcpProfile(ctx, i), writeFiles: (changes) => applyPlan(changes, backupPolicy(ctx.paths, ctx.now)) }));
  // Providers never print: what they warn about is shown here, before anything else happens.
  for (const w of result.warnings ?? []) ctx.warn(w);

  let saved: BootstrapOutcome["profile"];
  if (result.profile) {
    try {
      const data = await saveProfile(ctx, { name: o.profile, data: result.profile, clientSecret: result.clientSecret, force: true });
      saved = { name: o.profile, data };
    } catch (e) {
      if (vault.staged && e instanceof McpAuthError) {
        throw new McpAuthError(`${e.message}; the new client secret is kept in the secret store as "${vault.account}"`, { cause: e, hint: e.hint });
      }
      throw e;
    }
    // The profile now holds the secret: the staged copy has done its job.
    await vault.unstage();
  }

  const checks: Check[] = [];
  let token: string | undefined;
  if (o.verify && saved && result.login && saved.data.grant !== "client_credentials") {
    const t = (await login(ctx, { name: saved.name, ...saved.data }, result.login)).token;
    token = t.access_token;
    checks.push({ ok: true, what: "first token (signed in)", detail: `expires ${relativeTime(t.expires_at - ctx.now() / 1000)}` });
  } else if (o.verify && saved?.data.grant === "client_credentials") {
    const target = targetFromProfile({ name: saved.name, ...saved.data });
    const t = await step("Getting a first token", () => getToken(ctx, target, { minTtl: 0, forceRefresh: true }));
    token = t.access_token;
    const aud = peekClaims(t.access_token).aud;
    checks.push({ ok: true, what: "first token", detail: `${aud ? `aud ${JSON.stringify(aud)}, ` : ""}expires ${relativeTime(t.expires_at - ctx.now() / 1000)}` });
  }
  checks.push(...(result.checks ?? []));
  const verify = provider.verify;
  if (o.verify && verify) checks.push(...(await step("Checking the setup", () => verify(ctx, input, result, token))));
  return { result, profile: saved, checks };
}

/** The provider's narrow view of the secret store: a pending account for a secret in flight, and "do we hold one?". */
function secretVault(ctx: Context, profile: string): SecretVault & { readonly staged: boolean; readonly account: string } {
  const account = `${accounts.clientSecret(profile)}:rotating`;
  let staged = false;
  const saved = () => (Object.hasOwn(ctx.config().profiles, profile) ? ctx.config().profiles[profile] : undefined);
  return {
    account,
    get staged() {
      return staged;
    },
    async stage(secret) {
      await (await ctx.secrets()).set(account, secret);
      staged = true;
    },
    async unstage() {
      if (!staged) return;
      await (await ctx.secrets()).delete(account);
      staged = false;
    },
    async signingKey(clientId) {
      const existing = saved();
      if (existing?.key && existing.clientId === clientId) return existing.key;
      const k = await generateKey("ES256");
      return { ...(await storeKey(ctx, profile, k)), publicJwk: k.publicJwk };
    },
    async holds(clientId) {
      const p = saved();
      if (!p?.secretStore || p.clientId !== clientId) return false;
      try {
        return Boolean(await (await ctx.secretsOf(p.secretStore)).get(accounts.clientSecret(profile)));
      } catch {
        return false;
      }
    },
  };
}
