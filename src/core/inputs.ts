import { UsageError } from "../errors.js";
import { oneLine } from "../io/sanitize.js";

/**
 * What a plug-in (an IdP provider today) needs from the user, described as data: the bootstrap
 * subcommand's flags and help, shell completion and (later) the init wizard's questions are all
 * generated from one list of InputSpecs, and `resolveInputs` turns raw flag values into a typed,
 * validated object. No commander here: the command layer maps specs to options.
 */
export type InputKind = "string" | "boolean" | "number" | "port" | "url" | "choice" | "list";

interface KindValue {
  string: string;
  boolean: boolean;
  number: number;
  port: number;
  url: string;
  choice: string;
  list: string[];
}

export type Answers = Record<string, unknown>;

export interface InputSpec<N extends string = string, K extends InputKind = InputKind> {
  /** camelCase key of the value in the resolved input. */
  name: N;
  /**
   * Commander-style flag: `--admin-user <name>`, `--trust-loopback`, `--mcp-host <host...>`. For a
   * secret, only the stem (`--admin-password`): the flags are `--admin-password-stdin` and
   * `--admin-password-env <VAR>`, never one that takes the value itself (argv is visible in `ps`).
   */
  flag: string;
  kind: K;
  /** One line of help. */
  description: string;
  /** The question the wizard asks (defaults to the description); may depend on earlier answers. */
  prompt?: string | ((answers: Answers) => string);
  /** A value, or a function of the answers before it in the list. */
  default?: unknown;
  required?: boolean;
  choices?: readonly string[];
  /** Read from stdin (piped or a hidden prompt) or from an environment variable, never from argv. */
  secret?: boolean;
  /** For a secret: the variable read when neither -stdin nor -env is given. */
  env?: string;
  /** An error text completing "<flag> …" (e.g. "must be positive"), or undefined when the value is fine. */
  validate?: (value: never, answers: Answers) => string | undefined;
  /** Ask (and require) this input only when this holds for the answers before it. */
  askIf?: (answers: Answers) => boolean;
  /** Left out of help and completion (expert switches such as --api-casing). */
  hidden?: boolean;
  /** Extra words for the usage error when a required value is missing. */
  missingHint?: string;
  /** A server's address: the wizard checks that it answers right after the question, and asks again if not. */
  reach?: boolean;
  /** The wizard asks only when this holds for the answers before it (the default stands otherwise; the flag still works). */
  askWhen?: (answers: Answers) => boolean;
  /** Plain words for a choice's values in the wizard's list (the flag still takes the value). */
  choiceNames?: Readonly<Record<string, string>>;
}

type ValueOf<S> = S extends { kind: "choice"; choices: readonly (infer C)[] } ? C : S extends { kind: infer K extends InputKind } ? KindValue[K] : never;
type AlwaysSet<S> = S extends { kind: "boolean" } ? true : S extends { askIf: unknown } ? false : S extends { default: unknown } ? true : S extends { required: true } ? true : false;

/** The typed object `resolveInputs` returns for a list of specs. */
export type InputValues<S extends readonly InputSpec[]> = {
  [P in S[number] as P["name"]]: AlwaysSet<P> extends true ? ValueOf<P> : ValueOf<P> | undefined;
};

/**
 * Declares one input, keeping its literal name, kind and choices for `InputValues` (annotate `validate`'s parameter).
 * @example
 * const validity = defineInput({
 *   name: "validity", flag: "--validity <seconds>", kind: "number", description: "access token lifetime", default: 3600,
 *   validate: (v: number) => (v > 0 ? undefined : `must be positive, got "${v}"`),
 * });
 */
export function defineInput<const S extends InputSpec>(spec: S): S {
  return spec;
}

/** Asks one question; used only when a person is there (the wizard, or a hidden password prompt). */
export interface Prompter {
  ask(spec: InputSpec, defaultValue: unknown, answers: Answers): Promise<unknown>;
}

export interface ResolveOptions {
  env: NodeJS.ProcessEnv;
  /** Reads a secret from stdin: `--X-stdin` was given. */
  readStdin?: (spec: InputSpec) => Promise<string>;
  /** Present only when interactive. */
  prompter?: Prompter;
  /** Ask the prompter for every missing input, not just secrets (the wizard). */
  askAll?: boolean;
}

/** `--admin-user <name>` → `--admin-user`. */
export function flagName(spec: Pick<InputSpec, "flag">): string {
  return spec.flag.split(/[ ,]/)[0]!;
}

/** The key commander stores a flag's value under: `--admin-user` → `adminUser`. */
export function attributeOf(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The flags of a secret input: `--X-stdin` and `--X-env <VAR>`. */
export function secretFlags(spec: Pick<InputSpec, "flag">): { stdin: string; env: string } {
  const stem = flagName(spec);
  return { stdin: `${stem}-stdin`, env: `${stem}-env` };
}

export function defaultOf(spec: InputSpec, answers: Answers): unknown {
  return typeof spec.default === "function" ? (spec.default as (a: Answers) => unknown)(answers) : spec.default;
}

/** The question for the wizard or the hidden prompt. */
export function promptOf(spec: InputSpec, answers: Answers): string {
  return typeof spec.prompt === "function" ? spec.prompt(answers) : (spec.prompt ?? spec.description);
}

/**
 * @example
 * const input = await resolveInputs(thunder.inputs, { adminPasswordEnv: "PW", grant: "authorization_code" }, { env: { PW: "s3cret" } });
 * input.clientId; // "mcp_cli": a default computed from the grant
 *
 * Raw flag values (as commander stores them, by attribute name; only what the user gave) → the
 * typed input. In spec order, so defaults and `askIf` see the answers before them. Every failure
 * is a one-line UsageError (exit 2).
 */
export async function resolveInputs<const S extends readonly InputSpec[]>(specs: S, raw: Answers, o: ResolveOptions): Promise<InputValues<S>> {
  const answers: Answers = {};
  const given = (k: string) => Object.hasOwn(raw, k) && raw[k] !== undefined;
  for (const spec of specs) {
    const flag = flagName(spec);
    const active = !spec.askIf || spec.askIf(answers);
    let value: unknown;
    if (spec.secret) {
      const f = secretFlags(spec);
      const [stdin, env] = [attributeOf(f.stdin), attributeOf(f.env)];
      if (given(stdin) && given(env)) throw new UsageError(`pass only one of ${f.stdin} and ${f.env}`);
      if (!active) continue; // e.g. a password when a service account signs in: not read at all
      const variable = given(env) ? String(raw[env]) : undefined;
      if (variable !== undefined) {
        value = o.env[variable];
        if (!value) throw new UsageError(`$${variable} is empty or not set (it should hold the ${spec.description})`);
      } else if (raw[stdin] === true) {
        if (!o.readStdin) throw new UsageError(`${f.stdin}: standard input cannot be read here`);
        value = await o.readStdin(spec);
        if (!value) throw new UsageError(`${f.stdin}: nothing was read from standard input`);
      } else if (spec.env && o.env[spec.env]) {
        value = o.env[spec.env];
      } else if (spec.required && o.prompter) {
        value = await o.prompter.ask(spec, undefined, answers);
        if (!value) throw new UsageError(`no ${spec.description} entered`);
      }
    } else {
      const key = attributeOf(flag);
      if (!active) continue; // not asked, and a flag given anyway is ignored, as commander always did
      value = given(key) ? parse(spec, raw[key]) : undefined;
      if (value === undefined && o.askAll && o.prompter) value = parse(spec, await o.prompter.ask(spec, defaultOf(spec, answers), answers));
      if (value === undefined) value = defaultOf(spec, answers);
      if (value === undefined && spec.kind === "boolean") value = false;
    }
    if (value === undefined) {
      if (spec.required) {
        if (!spec.secret) throw new UsageError(`${flag} is required (${spec.description})`, spec.missingHint ? { hint: spec.missingHint.trim() } : {});
        const f = secretFlags(spec);
        throw new UsageError(`the ${spec.description} is needed`, { hint: `pass ${f.stdin} or ${f.env} VAR${spec.missingHint ?? ""}` });
      }
      continue;
    }
    const problem = spec.validate?.(value as never, answers);
    if (problem) throw new UsageError(`${flag} ${problem}`);
    answers[spec.name] = value;
  }
  return answers as InputValues<S>;
}

/**
 * Why a typed answer does not fit (the wizard shows it and asks again), or undefined when it does. The
 * same checks as for the flag, worded without it. Empty text means "take the default".
 */
export function answerProblem(spec: InputSpec, text: string, answers: Answers): string | undefined {
  const t = text.trim();
  if (!t) return spec.required && defaultOf(spec, answers) === undefined ? "an answer is needed" : undefined;
  try {
    const value = parse(spec, t); // before validate?.(…): an absent validate would skip its argument
    return spec.validate?.(value as never, answers);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const flag = flagName(spec);
    const what = e.message.startsWith(`${flag} `) ? e.message.slice(flag.length + 1) : e.message;
    return e.hint ? `${what} (${e.hint})` : what;
  }
}

/** `idp.example.com` → `https://idp.example.com` (http:// for a loopback host): what a URL without its scheme meant. */
export function withScheme(text: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return undefined;
  const host = text.split(/[/:?#]/)[0]!.toLowerCase();
  const scheme = host === "localhost" || host.endsWith(".localhost") || /^127\./.test(host) || text.startsWith("[::1]") ? "http" : "https";
  return URL.canParse(`${scheme}://${text}`) ? `${scheme}://${text}` : undefined;
}

/** One raw value (a string from argv or a prompt) → the spec's type. */
function parse(spec: InputSpec, v: unknown): unknown {
  if (v === undefined) return undefined;
  const flag = flagName(spec);
  const text = String(v);
  switch (spec.kind) {
    case "boolean":
      return v === true || v === "true";
    case "list": {
      const list = (Array.isArray(v) ? v : [v]).map(String).filter(Boolean);
      return list.length ? list : undefined;
    }
    case "number": {
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n)) throw new UsageError(`${flag} must be a number, got "${text}"`);
      return n;
    }
    case "port":
      return portNumber(flag, text);
    case "choice":
      if (!spec.choices?.includes(text)) throw new UsageError(`${flag} must be ${orList(spec.choices ?? [])}, got "${text}"`);
      return text;
    case "url":
      if (!URL.canParse(text) || !/^https?:$/.test(new URL(text).protocol)) {
        const meant = withScheme(text);
        throw new UsageError(`${flag} must be an http(s) URL, got "${text}"`, meant ? { hint: `did you mean ${meant}?` } : {});
      }
      return text;
    default:
      return text;
  }
}

function orList(xs: readonly string[]): string {
  return xs.length < 2 ? (xs[0] ?? "") : `${xs.slice(0, -1).join(", ")} or ${xs[xs.length - 1]}`;
}

/** A TCP port given on the command line: digits only, 1-65535 (0, "any free port", where `allowZero`). */
export function portNumber(flag: string, text: string, o: { allowZero?: boolean } = {}): number {
  const n = Number(text);
  const min = o.allowZero ? 0 : 1;
  if (!/^\d+$/.test(text) || n < min || n > 65535) throw new UsageError(`${flag} must be ${min}-65535, got "${text}"`);
  return n;
}

/** The longest timeout taken: a day. Node's timers take at most 2^31 ms (24.8 days) and fire at once past that. */
export const MAX_TIMEOUT_S = 86_400;

/** A timeout in seconds from a flag or a variable (`source` names it): positive, at most MAX_TIMEOUT_S. */
export function timeoutSeconds(source: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0 || n > MAX_TIMEOUT_S) {
    throw new UsageError(`${source} must be a positive number of seconds, at most ${MAX_TIMEOUT_S} (a day), got "${oneLine(text).slice(0, 40)}"`);
  }
  return n;
}
