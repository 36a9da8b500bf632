import { Option, type Command } from "commander";
import type { Context } from "../context.js";
import { McpAuthError, UsageError } from "../errors.js";
import { isInterrupt, onInterrupt } from "../interrupt.js";
import { isProfileName } from "../profile.js";
import { findClaudeCli } from "../clients/claude-cli.js";
import { applyAddClient, listClients, prepareAddClient } from "../core/clients.js";
import { CLIENTS, providers } from "../plugins.js";
import { doctor } from "../core/doctor.js";
import { PRESETS } from "../presets/index.js";
import {
  askable,
  defaultProfileName,
  equivalentCommand,
  freeProfileName,
  initChoice,
  initChoices,
  performInit,
  planInit,
  profileBefore,
  profileExists,
  resolveInit,
  undoInit,
  unreachable,
  type InitPlan,
} from "../core/init.js";
import { answerProblem, attributeOf, flagName, promptOf, secretFlags, type Answers, type InputSpec, type Prompter } from "../core/inputs.js";
import { checkProfileName } from "../core/profiles.js";
import { login } from "../core/session.js";
import { targetFromProfile } from "../core/target.js";
import { getToken } from "../core/tokens.js";
import { renderChecks } from "../io/checks.js";
import { invocation } from "../io/invocation.js";
import { readSecret } from "../io/secret-input.js";
import { actionWords, SECRET_NOT_HELD } from "../core/provider.js";
import { selfLauncher } from "./clients.js";
import { withSpinner, optionFlag } from "./shared.js";
import type { Check } from "../core/checks.js";

export interface InitOptions {
  provider?: string;
  profile?: string;
  yes?: boolean;
  /** --login / --no-login; undefined: ask (no with --yes). */
  login?: boolean;
  clients?: string;
}

/** Every provider's inputs as one set of flags (the first description of a shared flag wins; values are checked per provider). */
export function initInputSpecs(): InputSpec[] {
  const seen = new Set<string>();
  const specs: InputSpec[] = [];
  for (const c of initChoices(providers)) {
    for (const s of c.inputs) {
      if (seen.has(flagName(s))) continue;
      seen.add(flagName(s));
      specs.push(s);
    }
  }
  return specs;
}

/** The command each wizard choice stands for: bootstrap <idp>, profiles add (any OIDC server, a preset), login <mcp-url>. */
function commandOf(id: string): string {
  if (id === "oidc" || PRESETS.some((p) => p.id === id)) return id === "oidc" ? "profiles add" : `profiles add --preset ${id}`;
  return id === "mcp" ? "login <mcp-url>" : `bootstrap ${id}`;
}

function inputFlags(specs: InputSpec[]): Option[] {
  const users = (s: InputSpec) => initChoices(providers).filter((c) => c.inputs.some((x) => flagName(x) === flagName(s))).map((c) => c.id);
  const options: Option[] = [];
  for (const s of specs) {
    const ids = users(s);
    const who = ` [${ids.join(", ")}]`;
    // A flag several providers share means what each one's bootstrap says (Thunder's URL, Keycloak's…).
    // Each choice's own command: bootstrap <idp>, profiles add (any OIDC server), login <mcp-url> (only the MCP URL).
    const what = ids.length > 1 ? `as for ${[...new Set(ids.map(commandOf))].join(", ")} (see their --help)` : s.description;
    if (s.secret) {
      const f = secretFlags(s);
      const secret = ids.length > 1 ? "secret" : s.description;
      options.push(new Option(f.stdin, `read the ${secret} from stdin${who}`), new Option(`${f.env} <VAR>`, `read the ${secret} from $VAR${who}`));
      if (s.hidden) options.slice(-2).forEach((o) => o.hideHelp());
      continue;
    }
    const o = new Option(s.flag, ids.length > 1 ? what : `${s.description}${who}`); // no default here: it differs by provider and must not count as given
    if (s.hidden) o.hideHelp();
    options.push(o);
  }
  return options;
}

/** The wizard's questions, through ctx.io's prompter: secrets hidden, choices as a list, defaults shown, a wrong answer asked again with the reason. */
function wizardPrompter(ctx: Context): Prompter {
  const p = ctx.io.prompter;
  return {
    ask: async (spec, def, answers) => {
      if (!askable(spec, answers)) return undefined; // expert switches, optional extras and what does not apply stay flags
      const message = promptOf(spec, answers).replace(/[:?]?$/, spec.kind === "boolean" ? "?" : ":");
      if (spec.secret) {
        const f = secretFlags(spec);
        return p.password(message, { flagHint: `pass ${f.stdin} or ${f.env} VAR`, validate: (v) => (v ? true : "an answer is needed") });
      }
      const flagHint = `pass ${flagName(spec)}`;
      if (spec.kind === "boolean") return p.confirm(message, { default: def === true, flagHint });
      if (spec.kind === "choice" && spec.choices) {
        return p.select(message, spec.choices.map((c) => ({ value: c, name: spec.choiceNames?.[c] ?? c })), { default: def as string | undefined, flagHint });
      }
      const shown = def === undefined ? undefined : Array.isArray(def) ? def.join(" ") : String(def);
      // The flag's own checks, then (for a server's address) whether anything answers there.
      const validate = async (text: string) => {
        const problem = answerProblem(spec, text, answers);
        if (problem) return problem;
        if (spec.reach && text.trim()) return (await unreachable(ctx, text.trim())) ?? true;
        return true;
      };
      const v = (await p.input(message, { default: shown, flagHint, validate })).trim();
      if (!v) return undefined; // no default and nothing typed: an optional value stays unset
      return spec.kind === "list" ? v.split(/[\s,]+/).filter(Boolean) : v;
    },
  };
}

/** The profile's name: asked again when it is not a valid name, or names a profile the user keeps. */
async function askProfileName(ctx: Context, suggested: string): Promise<string> {
  const p = ctx.io.prompter;
  let def = suggested;
  for (;;) {
    const validate = (v: string) => (isProfileName(v.trim()) ? true : `use letters, digits, ".", "_" or "-" (max 64), got "${v.trim()}"`);
    const name = (await p.input("Name of the profile to save:", { default: def, flagHint: "pass --profile", validate })).trim() || def;
    if (!profileExists(ctx, name) || (await p.confirm(`Profile "${name}" exists. Replace it?`, { default: false, flagHint: "pass --profile" }))) return name;
    def = freeProfileName(ctx, name);
  }
}

export async function runInit(ctx: Context, o: InitOptions, raw: Answers): Promise<void> {
  if (!ctx.io.interactive && !o.yes) {
    throw new UsageError(`init asks questions and ${ctx.io.notInteractiveBecause ?? "this is not an interactive terminal"}`, {
      hint: `answer them with flags: ${await equivalentCommand(ctx, o.provider, raw, o.profile)}`,
    });
  }
  const ask = !o.yes;
  const p = ctx.io.prompter;
  const choices = initChoices(providers);
  let choiceId = o.provider;
  if (!choiceId) {
    if (!ask) throw new UsageError("--yes needs --provider", { hint: `one of: ${choices.map((c) => c.id).join(", ")}` });
    choiceId = await p.select(
      "Which identity provider (IdP) do your MCP servers trust?",
      choices.map((c) => ({ value: c.id, name: c.title, description: c.summary })),
      { flagHint: "pass --provider" },
    );
  }
  const choice = initChoice(providers, choiceId);
  const foreign = Object.keys(raw).filter((k) => !choice.inputs.some((s) => (s.secret ? [secretFlags(s).stdin, secretFlags(s).env] : [flagName(s)]).some((f) => attributeOf(f) === k)));
  if (foreign.length) throw new UsageError(`${foreign.map(optionFlag).join(", ")} do${foreign.length === 1 ? "es" : ""} not apply to --provider ${choice.id}`);
  if (o.profile !== undefined) checkProfileName(o.profile);

  // Every question is answered before anything is written; the name comes last, as its default may
  // depend on the answers (set up from an MCP URL, the profile is named after the server's host).
  const input = await resolveInit(ctx, choice, raw, {
    prompter: ask ? wizardPrompter(ctx) : undefined,
    readStdin: (spec) => readSecret(ctx, { stdin: true }, spec.description, flagName(spec).slice(2)).then((v) => v ?? ""),
  });
  const suggested = defaultProfileName(choice.id, input);
  const plan = planInit(choice, input, o.profile ?? (ask ? await askProfileName(ctx, suggested) : suggested));

  // From here on the run writes; a Ctrl-C (at a later question, or during the sign-in) puts back what was there.
  const before = await profileBefore(ctx, plan.profile);
  const undo = () => undoInit(ctx, before);
  const forget = onInterrupt(undo);
  try {
    await carryOut(ctx, o, ask, plan);
  } catch (e) {
    if (isInterrupt(e)) await undo();
    throw e;
  } finally {
    forget();
  }
}

async function carryOut(ctx: Context, o: InitOptions, ask: boolean, plan: InitPlan): Promise<void> {
  const p = ctx.io.prompter;
  const choice = plan.choice;
  const step = <T>(what: string, fn: () => Promise<T>) => withSpinner(ctx, `${what}…`, fn, { done: () => what });
  const result = await performInit(ctx, plan, step).catch(async (e: unknown) => {
    // "Issue a new secret?" is asked only once the client is known to exist without a secret we hold.
    const rotatable = choice.inputs.some((s) => s.name === "rotateSecret");
    if (!(ask && rotatable && e instanceof McpAuthError && e.code === SECRET_NOT_HELD)) throw e;
    if (!(await p.confirm(`${e.message}. Issue it a new secret (whatever uses the old one stops working)?`, { default: false, flagHint: "pass --rotate-secret" }))) throw e;
    return performInit(ctx, { ...plan, input: { ...plan.input, rotateSecret: true } }, step);
  });
  const lines: string[] = [];
  if (result.bootstrap) {
    const r = result.bootstrap.result;
    lines.push(`${choice.title}: ${actionWords(r.action)}`, ...r.facts.map(([k, v]) => `  ${k}: ${v}`), ...renderChecks(result.bootstrap.checks, { indent: "  ", color: ctx.io.color }));
    if (r.notes?.length) lines.push(...r.notes);
  }
  if (result.open) lines.push(`${result.open} answered without asking for a token: it needs no authentication, so there is nothing to set up.`);
  for (const n of result.notes ?? []) lines.push(`note: ${n}`);
  if (!result.profile) {
    ctx.info(lines.join("\n"));
    return;
  }
  const { name, data } = result.profile;
  const target = targetFromProfile({ name, ...data });
  let haveToken = Boolean(result.bootstrap?.checks.some((c) => c.what.startsWith("first token") && c.ok));
  if (!haveToken && data.grant === "client_credentials") {
    await step("Getting a first token", () => getToken(ctx, target, { minTtl: 0, forceRefresh: true }));
    haveToken = true;
  } else if (!haveToken) {
    const signIn = o.login ?? (ask ? await p.confirm("Sign in now (opens your browser)?", { default: true, flagHint: "pass --login or --no-login" }) : false);
    if (signIn) {
      await login(ctx, { name, ...data }, { browser: true, timeoutSec: 300, device: data.grant === "device_code" });
      haveToken = true;
    }
  }
  let checks: Check[] = [];
  if (data.mcpUrl && haveToken) checks = await step(`Checking ${data.mcpUrl}`, () => doctor(ctx, { mcpUrl: data.mcpUrl, target }));
  const me = invocation(ctx.env); // the form that runs from here (`npx mcp-auth` when not on PATH)
  const configured = await configureClients(ctx, o, ask, name, data.mcpUrl, me);

  lines.push(`Created profile "${name}" (${data.provider}, ${data.grant}, ${data.issuer}${data.secretStore ? `, client secret in the ${data.secretStore} store` : ""}).`);
  if (checks.length) lines.push(...renderChecks(checks, { indent: "  ", color: ctx.io.color }));
  for (const c of configured) lines.push(`  ${c}`);
  const next = [...(haveToken ? [] : [`${me} login ${name}`]), `${me} token --profile ${name}`, `${me} status`, `${me} doctor --profile ${name}`].slice(0, 3);
  lines.push("Next:", ...next.map((n) => `  ${n}`));
  ctx.info(lines.join("\n"));
}

/** Offers each installed MCP client the registry has (src/plugins.ts), as add-client does; `--clients` answers for all. */
async function configureClients(ctx: Context, o: InitOptions, ask: boolean, profile: string, mcpUrl: string | undefined, me: string): Promise<string[]> {
  const known = ctx.plugins.clients.map((c) => c.id);
  const wanted = o.clients?.split(",").map((s) => s.trim()).filter((s) => s && s !== "none");
  for (const id of wanted ?? []) if (!known.includes(id)) throw new UsageError(`--clients: unknown client "${id}"`, { hint: `one of: ${known.join(", ")}, or none` });
  if (!mcpUrl) return wanted?.length ? ["MCP clients: not configured (the profile has no MCP server URL; add one with: ${me} profiles set ${profile} --mcp-url URL)"] : [];
  const installed = (await listClients(ctx, { cwd: process.cwd(), platform: process.platform })).filter((c) => c.installed);
  const done: string[] = [];
  const ids = wanted ?? (ask ? [] : undefined);
  if (ids === undefined) return done; // --yes without --clients: no client file is touched
  if (!wanted) {
    for (const c of installed) if (await ctx.io.prompter.confirm(`Configure ${c.title} to use this profile?`, { default: true, flagHint: "pass --clients" })) ids.push(c.client);
  }
  for (const id of ids) {
    try {
      const req = { client: id, profile, cwd: process.cwd(), platform: process.platform, launcher: selfLauncher(), claudeCli: findClaudeCli(ctx.env, process.platform) ?? null };
      const prepared = await prepareAddClient(ctx, req);
      for (const m of prepared.warnings) ctx.warn(m); // e.g. run through npx: which command the entry got instead
      const r = await applyAddClient(ctx, prepared, req);
      done.push(`${prepared.writer.title}: ${r.action === "unchanged" ? "already configured" : "configured"} (${prepared.path})`);
    } catch (e) {
      ctx.warn(`${id} was not configured: ${(e as Error).message}`);
    }
  }
  return done;
}

export function registerInit(program: Command, getCtx: () => Context): void {
  const specs = initInputSpecs();
  const cmd = program
    .command("init")
    .description("set up step by step: pick your IdP, create the client, get a first token, check it, configure MCP clients")
    .option("--provider <id>", `the IdP: ${initChoices(providers).map((c) => c.id).join(", ")}`)
    .option("--profile <name>", "name of the profile to save (default: the MCP server's host for --provider mcp, else the provider id)")
    .option("-y, --yes", "unattended: take the default for every question not answered by a flag")
    .option("--login", "sign in with the browser at the end (people's profiles)")
    .option("--no-login", "do not sign in at the end")
    .option("--clients <ids>", `MCP clients to configure, comma-separated (${CLIENTS.map((c) => c.id).join(", ")}) or none; default: ask for each one installed (none with --yes)`);
  for (const o of inputFlags(specs)) cmd.addOption(o);
  cmd.addHelpText(
    "after",
    "\nWithout a terminal and without --yes, init exits 2 and prints the flags that answer its questions.\n\nExamples:\n  mcp-auth init\n  mcp-auth init --provider thunder --admin-password-env THUNDER_ADMIN_PASSWORD --yes\n  mcp-auth init --provider oidc --issuer https://idp.example.com --client-id ci --grant client_credentials --client-secret-env SECRET --mcp-url https://mcp.example.com/mcp --yes",
  );
  cmd.action(async (o: InitOptions) => {
    const raw: Answers = {};
    for (const s of specs) {
      for (const f of s.secret ? [secretFlags(s).stdin, secretFlags(s).env] : [flagName(s)]) {
        const k = attributeOf(f);
        if (cmd.getOptionValueSource(k) === "cli") raw[k] = cmd.getOptionValue(k);
      }
    }
    await runInit(getCtx(), o, raw);
  });
}
