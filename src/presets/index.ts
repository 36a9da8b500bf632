import type { Context } from "../context.js";
import { McpAuthError, UsageError } from "../errors.js";
import type { Grant, ProfileData } from "../profile.js";
import { auth0 } from "./auth0.js";
import { entra } from "./entra.js";
import { github } from "./github.js";
import { google } from "./google.js";
import { okta } from "./okta.js";
import type { Preset, PresetAnswers, PresetFinding } from "./preset.js";

export type { Preset, PresetAnswers, PresetFinding } from "./preset.js";

/** The IdP presets (`profiles add NAME --preset ID`, `init`); facts and sources in docs/presets.md. */
export const PRESETS: readonly Preset[] = [entra, google, okta, auth0, github];
export const PRESET_IDS = PRESETS.map((p) => p.id);

export function presetById(id: string): Preset {
  const p = PRESETS.find((x) => x.id === id);
  if (!p) throw new UsageError(`unknown preset "${id}"`, { hint: `one of: ${PRESET_IDS.join(", ")}` });
  return p;
}

/** The preset a profile was made with, or the one whose IdP its issuer is at (a profile made by `login URL`). */
export function presetOf(t: { preset?: string; issuer: string }): Preset | undefined {
  if (t.preset) return PRESETS.find((p) => p.id === t.preset);
  return PRESETS.find((p) => p.matches(t.issuer.replace(/\/+$/, "")) || p.matches(t.issuer));
}

/** The preset's fix for an error its IdP sent (AADSTS9010010 → drop resource, …), if it knows one. */
export function presetFix(t: { preset?: string; issuer: string; profile: string | null }, e: unknown): string | undefined {
  const p = presetOf(t);
  if (!p) return undefined;
  let text = "";
  for (let c = e as { message?: string; code?: string; cause?: unknown } | undefined, i = 0; c && i < 4; c = c.cause as typeof c, i++) text += ` ${c.message ?? ""} ${c.code ?? ""}`;
  const found = p.fixes.find((f) => f.match.test(text));
  return found ? `${p.title}: ${found.fix(t.profile ?? "NAME")}` : undefined;
}

/** An error with the preset's fix as its hint (the IdP's words stay the message). */
export function withPresetHint(t: { preset?: string; issuer: string; profile: string | null }, e: unknown): unknown {
  const fix = presetFix(t, e);
  if (!fix || !(e instanceof McpAuthError)) return e;
  (e as { hint?: string }).hint = fix;
  return e;
}

/** Doctor's findings for a profile at a preset's IdP (no request made). */
export function presetFindings(t: { preset?: string; issuer: string; profile: string | null; grant: Grant; scopes?: string[]; resource?: string; audience?: string; authorizeParams?: Record<string, string> }, hasRefreshToken: boolean | undefined): { preset: Preset; findings: PresetFinding[] } | undefined {
  const preset = presetOf(t);
  if (!preset?.check) return undefined;
  return { preset, findings: preset.check({ name: t.profile, issuer: t.issuer, grant: t.grant, scopes: t.scopes, resource: t.resource, audience: t.audience, authorizeParams: t.authorizeParams }, hasRefreshToken) };
}

export interface PresetProfileInput {
  name: string;
  preset: string;
  answers: Omit<PresetAnswers, "hasSecret">;
  clientSecret?: string;
  redirectPort?: string;
  force?: boolean;
  makeDefault?: boolean;
}

export interface PresetProfileResult {
  preset: Preset;
  data: ProfileData;
  notes: string[];
  setup: string[];
}

/**
 * `profiles add NAME --preset ID …` and `init`: the preset computes the profile from the answers, and
 * it is saved like any other (secret to the secret store). No request is made.
 */
export async function addPresetProfile(ctx: Context, input: PresetProfileInput): Promise<PresetProfileResult> {
  const preset = presetById(input.preset);
  const answers: PresetAnswers = { ...input.answers, hasSecret: Boolean(input.clientSecret) };
  if (!answers.clientId) throw new UsageError(`--preset ${preset.id} needs --client-id ID`, { hint: `there is no dynamic registration at ${preset.title}; see: mcp-auth profiles add --help, and docs/presets.md` });
  const plan = preset.plan(answers);
  if (!preset.grants.includes(plan.grant)) throw new UsageError(`--preset ${preset.id} supports --grant ${preset.grants.join(", ")}`);
  const need = preset.secret(plan.grant);
  if (need === "required" && !input.clientSecret) {
    throw new UsageError(`${preset.title} with ${plan.grant} needs the client secret`, { hint: "pass --client-secret-env VAR or --client-secret-stdin" });
  }
  if (need === "refused" && input.clientSecret) throw new UsageError(`${preset.title} with ${plan.grant} takes no client secret`);
  const { addProfile } = await import("../core/profiles.js");
  const data = await addProfile(ctx, {
    name: input.name,
    issuer: plan.issuer,
    clientId: answers.clientId,
    clientSecret: input.clientSecret,
    grant: plan.grant,
    scopes: plan.scopes,
    resource: plan.resource,
    audience: plan.audience,
    mcpUrl: answers.mcpUrl,
    redirectPort: input.redirectPort,
    authMethod: plan.authMethod,
    kind: "oidc",
    authorizeParams: plan.authorizeParams,
    extra: plan.extra,
    force: input.force,
    makeDefault: input.makeDefault,
  });
  return { preset, data, notes: plan.notes, setup: preset.setup(answers) };
}

/** Puts the preset's token-endpoint fix (if it has one) into an openid-client Configuration. */
export async function presetTokenFetch(config: import("openid-client").Configuration, t: { preset?: string; issuer: string }): Promise<void> {
  const p = presetOf(t);
  const endpoint = config.serverMetadata().token_endpoint;
  if (!p?.tokenFetch || !endpoint) return;
  const { openid } = await import("../oauth/client.js");
  const c = await openid();
  const inner = config[c.customFetch] as unknown as import("../oauth/http.js").Fetch;
  config[c.customFetch] = p.tokenFetch(inner, endpoint) as never;
}
