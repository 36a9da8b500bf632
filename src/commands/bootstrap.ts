import { Option, type Command } from "commander";
import type { Context } from "../context.js";
import { invocation } from "../io/invocation.js";
import { SilentError } from "../errors.js";
import { bootstrap, type BootstrapOutcome, type Provider } from "../core/bootstrap.js";
import { providers } from "../plugins.js";
import { allPassed } from "../core/checks.js";
import { actionWords } from "../core/provider.js";
import { attributeOf, flagName, promptOf, resolveInputs, secretFlags, type Answers, type InputSpec, type Prompter } from "../core/inputs.js";
import { checkProfileName } from "../core/profiles.js";
import { checksJson, renderChecks } from "../io/checks.js";
import { readSecret } from "../io/secret-input.js";
import { oneLine } from "../io/sanitize.js";
import { withSpinner } from "./shared.js";

/** `mcp-auth bootstrap <id>` for every provider, its flags generated from the provider's inputs. */
export function registerBootstrap(program: Command, getCtx: () => Context): void {
  const group = program
    .command("bootstrap")
    .description("create (or reuse) the OAuth client in your IdP and save a profile for it");
  for (const p of providers) {
    const cmd = group
      .command(p.id)
      .description(p.summary)
      .option("--profile <name>", "name of the profile to save", p.id)
      .option("--show-secret", "also print the client secret on stdout (it is stored either way)")
      .option("--no-verify", "skip the first token and the checks")
      .option("--json", "print the result as JSON on stdout");
    for (const o of inputOptions(p.inputs)) cmd.addOption(o);
    cmd.action(async (o: { profile: string; showSecret?: boolean; verify: boolean; json?: boolean }) => {
      const ctx = getCtx();
      checkProfileName(o.profile);
      const input = await resolveInputs(p.inputs, givenFlags(cmd, p.inputs), {
        env: ctx.env,
        readStdin: (spec) => readSecret(ctx, { stdin: true }, spec.description, flagName(spec).slice(2)).then((v) => v ?? ""),
        prompter: ctx.nonInteractive ? undefined : secretPrompter(ctx),
      });
      const outcome = await bootstrap(ctx, p, input, { profile: o.profile, verify: o.verify !== false, step: (what, fn) => withSpinner(ctx, `${what}…`, fn, { quiet: o.json }) });
      render(ctx, p, outcome, o);
      if (!allPassed(outcome.checks)) throw new SilentError(1);
    });
  }
}

/** Commander options for a list of inputs: a secret becomes `--X-stdin` and `--X-env <VAR>`, never a flag that takes it. */
export function inputOptions(specs: readonly InputSpec[]): Option[] {
  const options: Option[] = [];
  for (const s of specs) {
    if (s.secret) {
      const f = secretFlags(s);
      options.push(new Option(f.stdin, `read the ${s.description} from stdin`));
      options.push(new Option(`${f.env} <VAR>`, `read the ${s.description} from $VAR${s.env ? ` (default ${s.env})` : ""}`));
      if (s.hidden) options.slice(-2).forEach((o) => o.hideHelp());
      continue;
    }
    const o = new Option(s.flag, s.description);
    if (s.choices) o.choices(s.choices);
    // Shown in help only: resolveInputs applies defaults, so a value the user did not type stays distinguishable.
    if (s.default !== undefined && typeof s.default !== "function") o.default(s.default);
    if (s.hidden) o.hideHelp();
    options.push(o);
  }
  return options;
}

/** The values the user typed (not commander's defaults), by attribute name, for resolveInputs. */
export function givenFlags(cmd: Command, specs: readonly InputSpec[]): Answers {
  const raw: Answers = {};
  const keys = specs.flatMap((s) => (s.secret ? [secretFlags(s).stdin, secretFlags(s).env] : [flagName(s)]).map(attributeOf));
  for (const k of keys) if (cmd.getOptionValueSource(k) === "cli") raw[k] = cmd.getOptionValue(k);
  return raw;
}

/** On a terminal, only secrets are asked for today (a hidden prompt), as before the wizard. */
function secretPrompter(ctx: Context): Prompter {
  return { ask: async (spec, _default, answers) => (spec.secret ? readSecret(ctx, { stdin: true }, promptOf(spec, answers), flagName(spec).slice(2)) : undefined) };
}

function render(ctx: Context, p: Provider, { result, profile, checks }: BootstrapOutcome, o: { showSecret?: boolean; json?: boolean }): void {
  const lines = [`${p.title}: ${actionWords(result.action)}${profile ? ` — profile "${profile.name}"` : ""}`];
  // Facts, checks and notes quote what the IdP sent: a line break in it must not start a line of its
  // own (on a CI runner, a line such as `::stop-commands::` is a workflow command).
  for (const [k, v] of result.facts) lines.push(`  ${k}: ${oneLine(v)}`);
  const shown = checks.map((c) => ({ ...c, what: oneLine(c.what), ...(c.detail !== undefined ? { detail: oneLine(c.detail) } : {}), ...(c.fix !== undefined ? { fix: oneLine(c.fix) } : {}) }));
  lines.push(...renderChecks(shown, { indent: "  ", color: ctx.io.color }));
  if (result.notes?.length) lines.push("", ...result.notes.map(oneLine));
  if (profile?.data.grant === "client_credentials" || (profile && result.login && checks.some((c) => c.what.startsWith("first token")))) lines.push(`Get a token: mcp-auth token --profile ${profile.name}`);
  else if (profile) lines.push(`Next: ${invocation(ctx.env)} login ${profile.name}`);
  ctx.info(lines.join("\n"));
  if (o.json) {
    ctx.io.out.write(
      JSON.stringify({ provider: p.id, profile: profile?.name ?? null, action: result.action, facts: Object.fromEntries(result.facts), checks: checksJson(checks), ...result.json }) + "\n",
    );
  }
  if (o.showSecret && result.clientSecret) ctx.io.out.write(`${result.clientSecret}\n`);
  if (result.stdout) ctx.io.out.write(result.stdout);
}
