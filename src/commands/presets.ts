import { Option } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { readSecret } from "../io/secret-input.js";
import { parseAuthorizeParams } from "../oauth/authorize-params.js";
import { addPresetProfile, PRESET_IDS, PRESETS } from "../presets/index.js";
import type { Grant } from "../profile.js";
import { optionFlag } from "./shared.js";
import { invocation } from "../io/invocation.js";

/** The flags `--preset` adds to `profiles add` (facts per IdP: docs/presets.md). */
export function presetOptions(): Option[] {
  return [
    new Option("--preset <idp>", `what a big IdP needs, built in (no network): ${PRESETS.map((p) => p.id).join(", ")}`).choices(PRESET_IDS),
    new Option("--tenant <id>", "with --preset entra: the Directory (tenant) ID"),
    new Option("--domain <host>", "with --preset okta|auth0|github: the IdP's host (github: a GitHub Enterprise Server)"),
    new Option("--auth-server <id>", "with --preset okta: the custom authorization server (default), or org"),
    new Option("--authority <url>", "with --preset entra: a national cloud's login host (default https://login.microsoftonline.com)"),
  ];
}

/** `--authorize-param KEY=VALUE`, repeatable. */
export function authorizeParamOption(what = "an extra authorization-request parameter (repeatable), e.g. access_type=offline"): Option {
  return new Option("--authorize-param <key=value>", what).argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
}

/** The parsed `--authorize-param` values: undefined when not given, {} for a lone `--authorize-param ""` (clear). */
export function authorizeParamsOf(values: string[] | undefined): Record<string, string> | undefined {
  if (values === undefined) return undefined;
  if (values.length === 1 && values[0] === "") return {};
  return parseAuthorizeParams(values);
}

export interface PresetAddOptions {
  name: string;
  preset?: string;
  tenant?: string;
  domain?: string;
  authServer?: string;
  authority?: string;
  issuer?: string;
  clientId?: string;
  clientSecretStdin?: boolean;
  clientSecretEnv?: string;
  grant?: Grant;
  scope?: string[];
  resource?: string | false;
  audience?: string;
  mcpUrl?: string;
  authorizeParam?: string[];
  redirectPort?: string;
  default?: boolean;
  force?: boolean;
  json?: boolean;
}

/** Flags of `profiles add` that a preset decides itself. */
const NOT_WITH_PRESET = ["clientMetadataUrl", "allowMissingPkceMetadata", "authMethod", "clientAuth", "generateKey", "keyFile", "alg", "keyAudience", "keyId", "assertionFrom", "federation", "subjectTokenType"] as const;
/** Flags that only mean something with --preset. */
export const PRESET_ONLY = ["tenant", "domain", "authServer", "authority"] as const;

/** `profiles add NAME --preset ID …`: the preset computes the profile; nothing is sent anywhere. */
export async function runPresetAdd(ctx: Context, o: PresetAddOptions & Record<string, unknown>): Promise<void> {
  for (const k of NOT_WITH_PRESET) if (o[k] !== undefined) throw new UsageError(`${optionFlag(k)} cannot be combined with --preset`);
  if (o.kind !== undefined && o.kind !== "oidc") throw new UsageError("--kind cannot be combined with --preset");
  if (o.resource === false) throw new UsageError("--no-resource only applies when the authorization server is discovered; a preset decides about resource itself");
  if (o.issuer !== undefined && o.preset !== "google") throw new UsageError(`--preset ${o.preset} builds the issuer itself; --issuer does not apply`, { hint: o.preset === "entra" ? "pass --tenant (and --authority for a national cloud)" : "pass --domain" });
  const secret = await readSecret(ctx, { stdin: o.clientSecretStdin, env: o.clientSecretEnv }, "client secret", "client-secret");
  const r = await addPresetProfile(ctx, {
    name: o.name,
    preset: o.preset!,
    answers: {
      clientId: o.clientId,
      tenant: o.tenant,
      domain: o.domain,
      authServer: o.authServer,
      authority: o.authority,
      issuer: o.issuer,
      audience: o.audience,
      scope: o.scope,
      grant: o.grant,
      mcpUrl: o.mcpUrl,
      resource: typeof o.resource === "string" ? o.resource : undefined,
      authorizeParams: authorizeParamsOf(o.authorizeParam),
    },
    clientSecret: secret,
    redirectPort: o.redirectPort,
    force: o.force,
    makeDefault: o.default,
  });
  if (o.json) ctx.io.out.write(JSON.stringify({ profile: o.name, preset: r.preset.id, issuer: r.data.issuer, grant: r.data.grant, scopes: r.data.scopes ?? [], setup: r.setup }) + "\n");
  ctx.info(`Saved profile "${o.name}" (${r.preset.title} preset: ${r.data.grant}, issuer ${r.data.issuer}${r.data.secretStore ? `, client secret in the ${r.data.secretStore} store` : ""}).`);
  for (const n of r.notes) ctx.info(`  ${n}`);
  ctx.info(`At ${r.preset.title} (once; details: ${r.preset.docs}):`);
  r.setup.forEach((s, i) => ctx.info(`  ${i + 1}. ${s}`));
  ctx.info(r.data.grant === "client_credentials" ? `Try: ${invocation(ctx.env)} token --profile ${o.name}` : `Next: ${invocation(ctx.env)} login ${o.name}`);
}
