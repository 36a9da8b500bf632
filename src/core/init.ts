import type { Context } from "../context.js";
import { NetworkError, UsageError } from "../errors.js";
import { GRANT_WORDS, GRANTS, profileOf, type ProfileData } from "../profile.js";
import { accounts } from "../store/tokens.js";
import { bootstrap, type BootstrapOutcome } from "./bootstrap.js";
import type { Plugins } from "./provider.js";
import { checkProfileName, addProfile, removeProfile, saveProfile } from "./profiles.js";
import { addPresetProfile, PRESETS, type PresetAnswers } from "../presets/index.js";
import { profileNameFor } from "./mcp-login.js";
import { attributeOf, defineInput, flagName, resolveInputs, secretFlags, type Answers, type InputSpec, type Prompter } from "./inputs.js";

/**
 * `mcp-auth init`: the guided path from nothing to a working profile. Every question is one of the
 * inputs a provider already declares (src/providers/*), so the wizard, the flags and `--yes` stay in
 * step with `bootstrap`; "another OpenID Connect server" is the `profiles add` form as inputs too.
 * Nothing is written before every question has been answered: Ctrl-C during the questions leaves
 * no trace, and each write after them (secret, then profile; each client file) is atomic. A Ctrl-C
 * after the profile is saved (at "Sign in now?", during the sign-in) puts back what was there before.
 */



/** Any standard OpenID Connect / OAuth server: what `profiles add` asks for. */
export const OIDC_INPUTS = [
  defineInput({ name: "issuer", flag: "--issuer <url>", kind: "url", description: "the authorization server's issuer URL", prompt: "Issuer URL", required: true, reach: true }),
  defineInput({ name: "clientId", flag: "--client-id <id>", kind: "string", description: "the OAuth client id", prompt: "Client id", required: true }),
  defineInput({
    name: "grant",
    flag: "--grant <grant>",
    kind: "choice",
    choices: GRANTS,
    description: "how tokens are obtained: authorization_code (people, browser), device_code, client_credentials (CI, services)",
    prompt: "How are tokens obtained",
    default: "authorization_code",
    choiceNames: GRANT_WORDS,
  }),
  defineInput({
    name: "clientSecret",
    flag: "--client-secret",
    kind: "string",
    secret: true,
    required: true,
    description: "client secret",
    askIf: (a) => a.grant === "client_credentials",
  }),
  defineInput({ name: "scope", flag: "--scope <scope...>", kind: "list", description: "scopes to request", prompt: "Scopes (space-separated)", default: ["openid"] }),
  defineInput({ name: "mcpUrl", flag: "--mcp-url <url>", kind: "url", description: "the MCP server URL (also the RFC 8707 resource)", prompt: "MCP server URL (empty: none)", reach: true }),
] as const;

/** "I only have the MCP server URL": everything else is discovered (core/mcp-login.ts). */
export const MCP_INPUTS = [
  defineInput({ name: "mcpUrl", flag: "--mcp-url <url>", kind: "url", description: "the MCP server URL", prompt: "MCP server URL", required: true, reach: true }),
  defineInput({ name: "clientId", flag: "--client-id <id>", kind: "string", description: "a client its admin registered (default: mcp-auth registers itself)" }),
] as const;

export interface InitChoice {
  id: string;
  title: string;
  summary: string;
  inputs: readonly InputSpec[];
}

/** The IdPs the wizard offers: every provider module, then any OIDC server. */
export function initChoices(providers: Plugins["providers"]): InitChoice[] {
  return [
    ...providers.map((p) => ({ id: p.id, title: p.title, summary: p.summary, inputs: p.inputs })),
    // The big IdPs where an app is registered by hand: what each needs is built in (docs/presets.md).
    ...PRESETS.map((p) => ({ id: p.id, title: p.title, summary: `preset: ${p.summary}`, inputs: p.inputs })),
    { id: "oidc", title: "Another OpenID Connect server", summary: "any standard OAuth 2 / OIDC server: issuer, client id, grant", inputs: OIDC_INPUTS },
    { id: "mcp", title: "I only have the MCP server URL", summary: "discover its authorization server and register mcp-auth (the MCP authorization spec)", inputs: MCP_INPUTS },
  ];
}

export function initChoice(providers: Plugins["providers"], id: string): InitChoice {
  const c = initChoices(providers).find((x) => x.id === id);
  if (!c) throw new UsageError(`--provider must be one of ${initChoices(providers).map((x) => x.id).join(", ")}, got "${id}"`);
  return c;
}

/**
 * The one rule for a new profile's name, for the wizard's default, `--yes` and the docs: set up from
 * an MCP URL, it is named after the server's host (as `login URL` names it); otherwise after the IdP.
 */
export function defaultProfileName(choiceId: string, input: Answers): string {
  return choiceId === "mcp" && typeof input.mcpUrl === "string" && URL.canParse(input.mcpUrl) ? profileNameFor(input.mcpUrl) : choiceId;
}

/** The first of NAME, NAME-2, NAME-3… no profile has yet (the wizard's default after "keep the existing one"). */
export function freeProfileName(ctx: Context, name: string): string {
  if (!profileExists(ctx, name)) return name;
  for (let i = 2; ; i++) {
    const n = `${name.slice(0, 60)}-${i}`;
    if (!profileExists(ctx, n)) return n;
  }
}

/**
 * Why nothing can be set up at `url` yet (no server answers there: a wrong host, a closed port, an
 * untrusted certificate), or undefined when anything at all answers. The wizard asks this right after
 * the URL question, rather than failing with ENOTFOUND nine questions later.
 */
export async function unreachable(ctx: Context, url: string): Promise<string | undefined> {
  try {
    await ctx.fetch(url, { method: "GET", returnRedirects: true });
    return undefined;
  } catch (e) {
    if (!(e instanceof NetworkError)) throw e;
    if (/^the response from /.test(e.message)) return undefined; // it answered (too much, or cut off)
    return e.hint ? `${e.message} (${e.hint})` : e.message;
  }
}

/** What a profile of that name was before the wizard replaced it, to put it back on Ctrl-C. */
export interface ProfileBefore {
  name: string;
  data?: ProfileData;
  clientSecret?: string;
}

export async function profileBefore(ctx: Context, name: string): Promise<ProfileBefore> {
  const data = profileOf(ctx.config(), name);
  if (!data?.secretStore) return { name, data };
  const secret = await (await ctx.secretsOf(data.secretStore)).get(accounts.clientSecret(name)).catch(() => null);
  return { name, data, ...(secret ? { clientSecret: secret } : {}) };
}

/** Undoes a run the user interrupted: the new profile goes (secret, tokens and all), the one it replaced comes back. */
export async function undoInit(ctx: Context, before: ProfileBefore): Promise<void> {
  const now = profileOf(ctx.config(), before.name);
  if (!now) return;
  // Interrupted before anything was saved: the profile (and its cached tokens) stays as it was.
  if (before.data && JSON.stringify(now) === JSON.stringify(before.data)) return;
  if (!before.data) {
    await removeProfile(ctx, before.name);
    return;
  }
  const { secretStore: _kept, ...data } = before.data;
  await saveProfile(ctx, { name: before.name, data: before.clientSecret ? data : before.data, clientSecret: before.clientSecret, force: true });
}

/**
 * The inputs the wizard asks about: what is required, secrets, and what the provider wrote a question
 * (`prompt`) for. Expert switches (hidden) and the other optional inputs stay flags, as in `bootstrap`.
 */
export function askable(spec: InputSpec, answers: Answers = {}): boolean {
  if (spec.hidden) return false;
  if (spec.askWhen && !spec.askWhen(answers)) return false;
  return Boolean(spec.secret || spec.required || spec.prompt !== undefined);
}

/**
 * The command line that answers, with flags, every question the wizard would have asked (for a run
 * with nobody to ask). Defaults are filled in; a secret becomes `--X-env VAR`.
 */
export async function equivalentCommand(ctx: Context, choiceId: string | undefined, raw: Answers, profile: string | undefined): Promise<string> {
  const words = ["mcp-auth", "init"];
  if (!choiceId) return [...words, `--provider ${initChoices(ctx.plugins.providers).map((c) => c.id).join("|")}`, "…", "--yes"].join(" ");
  const choice = initChoice(ctx.plugins.providers, choiceId);
  words.push("--provider", choice.id);
  const given = (spec: InputSpec) => (spec.secret ? [secretFlags(spec).stdin, secretFlags(spec).env] : [flagName(spec)]).some((f) => raw[attributeOf(f)] !== undefined);
  for (const spec of choice.inputs) if (given(spec)) words.push(...echo(spec, raw));
  const asked: string[] = [];
  await resolveInputs(choice.inputs, raw, {
    env: ctx.env,
    askAll: true,
    readStdin: async () => "…",
    prompter: {
      ask: async (spec, def, answers) => {
        if (!askable(spec, answers)) return undefined;
        if (spec.secret) {
          asked.push(`${secretFlags(spec).env} ${spec.env ?? envVarOf(spec)}`);
          return "…";
        }
        if (spec.kind === "boolean") {
          if (def === true) asked.push(flagName(spec));
        } else if (def !== undefined) asked.push(`${flagName(spec)} ${shellWord(Array.isArray(def) ? def.join(" ") : String(def))}`);
        else if (spec.required) asked.push(`${flagName(spec)} ${placeholder(spec)}`);
        return def ?? (spec.kind === "url" ? "https://example.invalid" : spec.kind === "boolean" ? false : spec.required ? "…" : undefined);
      },
    },
  }).catch(() => undefined); // a value the flags got wrong is reported by the real run
  words.push(...asked, "--profile", profile ?? defaultProfileName(choice.id, raw), "--yes");
  return words.join(" ");
}

function echo(spec: InputSpec, raw: Answers): string[] {
  if (spec.secret) {
    const f = secretFlags(spec);
    return raw[attributeOf(f.stdin)] ? [f.stdin] : [f.env, String(raw[attributeOf(f.env)])];
  }
  const v = raw[attributeOf(flagName(spec))];
  if (v === true) return [flagName(spec)];
  return [flagName(spec), ...(Array.isArray(v) ? v.map((x) => shellWord(String(x))) : [shellWord(String(v))])];
}

function placeholder(spec: InputSpec): string {
  return spec.flag.match(/<([^>]+)>/)?.[1]?.replace(/\.\.\.$/, "").toUpperCase() ?? "VALUE";
}

function envVarOf(spec: InputSpec): string {
  return flagName(spec).replace(/^--/, "").replace(/-/g, "_").toUpperCase();
}

function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface InitPlan {
  choice: InitChoice;
  /** The resolved inputs of that choice. */
  input: Answers;
  profile: string;
}

export interface InitResult {
  profile?: { name: string; data: ProfileData };
  /** The MCP server answered without a token: nothing to set up. */
  open?: string;
  /** Notes from discovery (proxied metadata, …). */
  notes?: string[];
  /** The provider's outcome (facts, checks, notes), when a provider ran. */
  bootstrap?: BootstrapOutcome;
}

/** Resolves the answers (asking through `prompter` when given); writes nothing. The profile's name comes after. */
export async function resolveInit(ctx: Context, choice: InitChoice, raw: Answers, o: { prompter?: Prompter; readStdin?: (spec: InputSpec) => Promise<string> }): Promise<Answers> {
  return (await resolveInputs(choice.inputs, raw, { env: ctx.env, prompter: o.prompter, askAll: Boolean(o.prompter), readStdin: o.readStdin })) as Answers;
}

/** The answers and the profile's name as a plan; writes nothing. */
export function planInit(choice: InitChoice, input: Answers, profile: string): InitPlan {
  checkProfileName(profile);
  return { choice, input, profile };
}

/** Carries the plan out: the provider's bootstrap (or the OIDC profile), with the first token and checks. */
export async function performInit(ctx: Context, plan: InitPlan, step: <T>(what: string, fn: () => Promise<T>) => Promise<T>): Promise<InitResult> {
  if (plan.choice.id === "mcp") {
    const a = plan.input as { mcpUrl: string; clientId?: string };
    const { setupMcpProfile } = await import("./mcp-login.js");
    const r = await step(`Discovering ${a.mcpUrl}'s authorization server and registering`, () => setupMcpProfile(ctx, { mcpUrl: a.mcpUrl, clientId: a.clientId, name: plan.profile, force: true }));
    if (r.kind === "open") return { open: r.mcpUrl };
    return { profile: { name: r.profile.name, data: r.profile }, notes: r.discovery?.notes };
  }
  const preset = PRESETS.find((p) => p.id === plan.choice.id);
  if (preset) {
    const { clientSecret, ...answers } = plan.input as Omit<PresetAnswers, "hasSecret"> & { clientSecret?: string };
    const r = await addPresetProfile(ctx, { name: plan.profile, preset: preset.id, answers, clientSecret, force: true });
    return { profile: { name: plan.profile, data: r.data }, notes: [...r.notes, `at ${preset.title} (${preset.docs}): ${r.setup.join(" ")}`] };
  }
  if (plan.choice.id !== "oidc") {
    const provider = ctx.plugins.providers.find((p) => p.id === plan.choice.id)!;
    const outcome = await bootstrap(ctx, provider, plan.input as never, { profile: plan.profile, verify: true, step });
    return { profile: outcome.profile, bootstrap: outcome };
  }
  const a = plan.input as { issuer: string; clientId: string; grant: (typeof GRANTS)[number]; clientSecret?: string; scope?: string[]; mcpUrl?: string };
  const data = await addProfile(ctx, {
    name: plan.profile,
    issuer: a.issuer,
    clientId: a.clientId,
    clientSecret: a.clientSecret,
    grant: a.grant,
    scopes: a.scope,
    resource: a.mcpUrl,
    mcpUrl: a.mcpUrl,
    kind: "oidc",
    force: true,
  });
  return { profile: { name: plan.profile, data } };
}

/** A profile of that name exists already (the wizard asks before replacing it). */
export function profileExists(ctx: Context, name: string): boolean {
  return profileOf(ctx.config(), name) !== undefined;
}
