import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A composite action's steps run the way the GitHub Actions runner runs them, for tests without a
 * runner. What it follows, from actions/runner (src/Runner.Worker):
 * - `${{ inputs.NAME }}` in a step's `env` is the input given, else its `default`, else "" (an input is
 *   never an INPUT_* variable in a composite step: only what `env:` maps);
 * - `shell: bash` writes `run` to a file and runs `bash --noprofile --norc -eo pipefail FILE`
 *   (Handlers/ScriptHandlerHelpers.cs); the steps stop at the first that fails;
 * - every line a step prints, on stdout and on stderr (ScriptHandler.cs: both OutputManagers feed the one
 *   ActionCommandManager), is a workflow command when, after leading blanks, it starts with `::CMD` …`::`
 *   (ActionCommand.TryParseV2), or anywhere it holds `##[CMD …]` (the older TryParse). Command data is
 *   unescaped (%0D, %0A, %25). `::stop-commands::TOKEN` turns commands off until a line `::TOKEN::`;
 *   `::add-mask::VALUE` makes the log show *** for VALUE from then on.
 * The YAML read is the subset action.yml uses (a parser for it is not among the dependencies); anything
 * else in the file is an error here, so the emulation cannot silently drift from the file.
 */
export interface ActionStep {
  name: string;
  shell: string;
  env: Record<string, string>;
  run: string;
}

export interface ParsedAction {
  inputs: Record<string, { default?: string }>;
  steps: ActionStep[];
}

const unquote = (v: string) => v.trim().replace(/^"(.*)"$/, "$1");

export function parseAction(yml: string): ParsedAction {
  const lines = yml.split("\n");
  const inputs: ParsedAction["inputs"] = {};
  const steps: ActionStep[] = [];
  let section = "";
  let input: string | undefined;
  let step: ActionStep | undefined;
  let inEnv = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.trim() || /^\s*#/.test(line)) continue;
    const top = /^(\w[\w-]*):/.exec(line);
    if (top) {
      section = top[1]!;
      continue;
    }
    if (section === "inputs") {
      const name = /^ {2}([\w-]+):\s*$/.exec(line);
      if (name) inputs[(input = name[1]!)] = {};
      const def = /^ {4}default:\s*(.*)$/.exec(line);
      if (def && input) inputs[input]!.default = unquote(def[1]!);
      continue;
    }
    if (section !== "runs" || /^ {2}(using: composite|steps:)\s*$/.test(line)) continue;
    const item = /^ {4}- (\w+):\s*(.*)$/.exec(line);
    const key = item ?? /^ {6}(\w+):\s*(.*)$/.exec(line);
    if (item) steps.push((step = { name: "", shell: "", env: {}, run: "" }));
    if (key && step) {
      inEnv = false;
      const [, k, v] = key;
      if (k === "name") step.name = unquote(v!);
      else if (k === "shell") step.shell = v!.trim();
      else if (k === "id") continue;
      else if (k === "env" && !v) inEnv = true;
      else if (k === "run" && v === "|") {
        const body: string[] = [];
        while (i + 1 < lines.length && (/^ {8}/.test(lines[i + 1]!) || !lines[i + 1]!.trim())) body.push(lines[++i]!.slice(8));
        step.run = body.join("\n").trimEnd() + "\n";
      } else if (k === "run") step.run = `${v}\n`;
      else throw new Error(`action.yml: step key "${k}" is not understood by this emulation`);
      continue;
    }
    const envLine = /^ {8}([A-Z_][A-Z0-9_]*):\s*(.*)$/.exec(line);
    if (inEnv && step && envLine) {
      step.env[envLine[1]!] = envLine[2]!.trim();
      continue;
    }
    throw new Error(`action.yml line ${i + 1} is not understood by this emulation: ${line}`);
  }
  return { inputs, steps };
}

/** `${{ inputs.X }}` and friends in an env value; anything else is an error. */
function evaluate(value: string, inputs: Record<string, string>, action: ParsedAction): string {
  return value.replace(/\$\{\{\s*([^}]*?)\s*\}\}/g, (_m, expr: string) => {
    const name = /^inputs\.([\w-]+)$/.exec(expr)?.[1];
    if (!name) throw new Error(`expression \${{ ${expr} }} is not supported by this emulation`);
    if (!(name in action.inputs)) throw new Error(`action.yml has no input "${name}"`);
    return inputs[name] ?? action.inputs[name]!.default ?? "";
  });
}

export interface Command {
  name: string;
  properties: string;
  data: string;
}

export interface StepRun {
  name: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ActionRun {
  steps: StepRun[];
  /** The exit code of the last step run (the first that failed, or the last). */
  code: number | null;
  /** Workflow commands the runner acted on, in order. */
  commands: Command[];
  /** The log as the runner shows it: command lines consumed, masked values as ***. */
  log: string[];
  masks: string[];
}

const REGISTERED = new Set(["add-mask", "stop-commands", "error", "warning", "notice", "debug", "group", "endgroup", "echo", "set-output", "save-state", "add-matcher", "remove-matcher", "set-env", "add-path", "set-secret", "internal-set-repo-path"]);
const unescapeData = (s: string) => s.replace(/%0D/g, "\r").replace(/%0A/g, "\n").replace(/%25/g, "%");

/** The runner's command processing over one step's output lines (shared state across steps, as in a job). */
export class CommandProcessor {
  commands: Command[] = [];
  log: string[] = [];
  masks: string[] = [];
  private stopToken: string | undefined;

  line(raw: string): void {
    const line = raw.replace(/\r$/, "");
    const trimmed = line.trimStart();
    if (this.stopToken !== undefined) {
      if (trimmed === `::${this.stopToken}::`) this.stopToken = undefined;
      else this.log.push(this.masked(line));
      return;
    }
    const cmd = parseV2(trimmed) ?? parseV1(line);
    if (!cmd || !REGISTERED.has(cmd.name)) return void this.log.push(this.masked(line));
    this.commands.push(cmd);
    if (cmd.name === "add-mask" && cmd.data.trim()) this.masks.push(cmd.data);
    if (cmd.name === "stop-commands") this.stopToken = cmd.data;
  }

  private masked(line: string): string {
    for (const m of [...this.masks].sort((a, b) => b.length - a.length)) line = line.split(m).join("***");
    return line;
  }
}

function parseV2(line: string): Command | undefined {
  if (!line.startsWith("::")) return undefined;
  const end = line.indexOf("::", 2);
  if (end < 0) return undefined;
  const info = line.slice(2, end);
  const space = info.indexOf(" ");
  return { name: space < 0 ? info : info.slice(0, space), properties: space < 0 ? "" : info.slice(space + 1), data: unescapeData(line.slice(end + 2)) };
}

function parseV1(line: string): Command | undefined {
  const start = line.indexOf("##[");
  if (start < 0) return undefined;
  const close = line.indexOf("]", start);
  if (close < 0) return undefined;
  const info = line.slice(start + 3, close);
  const space = info.indexOf(" ");
  return { name: space < 0 ? info : info.slice(0, space), properties: space < 0 ? "" : info.slice(space + 1), data: unescapeData(line.slice(close + 1)) };
}

/**
 * Runs the composite action in `actionPath` (whose action.yml is read) with `inputs`, in an environment
 * built from `env` plus GITHUB_ACTION_PATH. Steps run one after the other, each as the runner runs it.
 */
export async function runCompositeAction(o: { actionPath: string; inputs: Record<string, string>; env: NodeJS.ProcessEnv; cwd: string; timeoutMs?: number }): Promise<ActionRun> {
  const action = parseAction(readFileSync(join(o.actionPath, "action.yml"), "utf8"));
  const processor = new CommandProcessor();
  const steps: StepRun[] = [];
  const scripts = mkdtempSync(join(tmpdir(), "runner-steps-"));
  try {
    for (const [n, step] of action.steps.entries()) {
      if (step.shell !== "bash") throw new Error(`step "${step.name}": shell ${step.shell} is not emulated`);
      const file = join(scripts, `step-${n}.sh`);
      writeFileSync(file, step.run);
      const stepEnv = Object.fromEntries(Object.entries(step.env).map(([k, v]) => [k, evaluate(v, o.inputs, action)]));
      const r = await run("bash", ["--noprofile", "--norc", "-eo", "pipefail", file], { ...o.env, GITHUB_ACTION_PATH: o.actionPath, ...stepEnv }, o.cwd, o.timeoutMs ?? 60_000);
      steps.push({ name: step.name, ...r });
      for (const stream of [r.stdout, r.stderr]) for (const l of stream.split("\n").slice(0, stream.endsWith("\n") ? -1 : undefined)) processor.line(l);
      if (r.code !== 0) break;
    }
  } finally {
    rmSync(scripts, { recursive: true, force: true });
  }
  return { steps, code: steps.at(-1)?.code ?? null, commands: processor.commands, log: processor.log, masks: processor.masks };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`step timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
