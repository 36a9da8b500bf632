import { isUtf8 } from "node:buffer";
import { spawn } from "node:child_process";
import { AuthError, FileError, UsageError } from "../errors.js";
import { envWithoutSecrets, oneLine, registerSecret, scrubSecrets } from "../io/sanitize.js";
import { commandSourceProblem } from "../store/trust.js";
import { timeoutSeconds } from "./inputs.js";

/**
 * `--client-secret-cmd 'op read op://vault/ci/secret'`: the client secret comes from a secret manager
 * each time a token is requested, and is never written anywhere (recipes: docs/secret-commands.md).
 * The command is split into an argument vector here and run without a shell: nothing in it is
 * expanded, so a value cannot inject a second command, and what runs is exactly what was stored.
 */

/** At most this much output is read: a client secret is short; anything larger is not one. */
export const SECRET_COMMAND_MAX_BYTES = 64 * 1024;
/** Default time a secret manager gets (a 1Password or Vault round trip, maybe a biometric unlock). */
export const SECRET_COMMAND_TIMEOUT_S = 30;
/**
 * How long output may still arrive once the command has exited. A helper it started may keep its
 * stdout open for good (`op` starts a background daemon, `lpass` an agent), so the pipes' end is not
 * waited for beyond this: what the command printed before it exited is in the pipe by then.
 */
const AFTER_EXIT_MS = 500;

const ONE_FIELD = "make it print the secret alone (one field, e.g. vault kv get -field=NAME, op read, --query … --output text)";

/** Characters a shell would give meaning to: refused unquoted, since no shell runs the command. */
const SHELL_ONLY = /[|&;<>()$`\n\r]/;

/**
 * Splits a command line as a POSIX shell splits words: blanks separate; '…' keeps everything
 * literally; "…" keeps everything but \" \\ \$ \`; a backslash outside quotes keeps the next character.
 * Pipes, redirections, `;`, `&`, `$VAR` and `…` would need a shell, so they are refused unquoted
 * with a hint (wrap them in a script of your own), never silently passed on as text.
 */
export function parseSecretCommand(text: string, flag = "--client-secret-cmd"): string[] {
  const argv: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === " " || c === "\t") {
      if (word !== null) argv.push(word);
      word = null;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new UsageError(`${flag}: unterminated ' quote`);
      word = (word ?? "") + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let w: string = word ?? "";
      for (i++; ; i++) {
        if (i >= text.length) throw new UsageError(`${flag}: unterminated " quote`);
        const d = text[i]!;
        if (d === '"') break;
        if (d === "\\" && i + 1 < text.length && '"\\$`'.includes(text[i + 1]!)) w += text[++i];
        else if (d === "$" || d === "`") throw shellOnly(flag, d);
        else w += d;
      }
      word = w;
    } else if (c === "\\") {
      if (i + 1 >= text.length) throw new UsageError(`${flag}: a trailing backslash escapes nothing`);
      word = (word ?? "") + text[++i];
    } else if (SHELL_ONLY.test(c)) {
      throw shellOnly(flag, c);
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== null) argv.push(word);
  if (!argv.length || !argv[0]) throw new UsageError(`${flag} needs a command, e.g. ${flag} 'op read op://vault/item/secret'`);
  return argv;
}

function shellOnly(flag: string, c: string): UsageError {
  const what = c === "\n" || c === "\r" ? "a line break" : `"${c}"`;
  return new UsageError(`${flag}: ${what} needs a shell, and the command runs without one`, {
    hint: "quote it if it is part of an argument, or put the pipeline in a script and name the script",
  });
}

/** A stored command as one line for messages: its words, quoted where needed. */
export function showCommand(argv: readonly string[]): string {
  return oneLine(argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" "));
}

export interface SecretCommandOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs?: number;
  maxBytes?: number;
  /** Who asked, for messages: `profile "ci"`. */
  owner: string;
}

/**
 * Runs a secret command and returns what it printed, trimmed. Fails (exit 4, with the command's own
 * first line of stderr, stripped and scrubbed of the secret) when it cannot start, exits non-zero, is
 * killed, runs past the timeout, prints nothing, prints more than one line or more than the cap.
 */
export function runSecretCommand(argv: readonly string[], o: SecretCommandOptions): Promise<string> {
  const timeoutMs = o.timeoutMs ?? SECRET_COMMAND_TIMEOUT_S * 1000;
  const maxBytes = o.maxBytes ?? SECRET_COMMAND_MAX_BYTES;
  const shown = showCommand(argv);
  const fail = (why: string, hint?: string) => new AuthError(`the client secret command of ${o.owner} (${shown}) ${why}`, { hint: hint ?? "run it yourself to see what it needs (a sign-in, a session variable, a path)" });
  return new Promise((resolve, reject) => {
    const cannotStart = (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return fail(`could not start: ${oneLine(argv[0]!)} was not found`, "install it, or give its full path");
      if (e.code === "EACCES") return fail(`could not start: ${oneLine(argv[0]!)} is not executable`, "check the path and its mode");
      // Node runs a .cmd or .bat (az, gcloud, an npm-installed bw on Windows) only through a shell (CVE-2024-27980).
      if (e.code === "EINVAL") return fail(`could not start: ${oneLine(argv[0]!)} is a script Windows runs only through a shell`, 'name the program\'s .exe, or a shell explicitly: pwsh -NoProfile -Command "…" (docs/secret-commands.md)');
      return fail(`could not start: ${oneLine(e.message)}`);
    };
    let child: ReturnType<typeof spawn>;
    try {
      // stdin closed: there is nobody to answer a prompt (an MCP client's headersHelper has no terminal).
      child = spawn(argv[0]!, argv.slice(1), { env: envWithoutSecrets(o.env), stdio: ["ignore", "pipe", "pipe"], shell: false, windowsHide: true });
    } catch (e) {
      return reject(cannotStart(e as NodeJS.ErrnoException));
    }
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    let settled = false;
    let drained: NodeJS.Timeout | undefined;
    const finish = (e: Error | null, value?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drained);
      if (e) reject(e);
      else resolve(value!);
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(fail(`did not finish within ${timeoutMs / 1000}s`, "sign in to the secret manager first, or raise MCP_AUTH_SECRET_COMMAND_TIMEOUT (seconds)"));
    }, timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      outBytes += d.length;
      if (outBytes > maxBytes) {
        child.kill("SIGKILL");
        return finish(fail(`printed more than ${Math.round(maxBytes / 1024)} KiB`, ONE_FIELD));
      }
      out.push(d);
    });
    child.stderr!.on("data", (d: Buffer) => {
      if (err.length < 4096) err += d.toString("utf8");
    });
    child.on("error", (e: NodeJS.ErrnoException) => finish(cannotStart(e)));
    // Closing the pipes ourselves lets "close" below come, with what was read.
    child.on("exit", () => (drained = setTimeout(() => [child.stdout, child.stderr].forEach((s) => s!.destroy()), AFTER_EXIT_MS)));
    child.on("close", (code, signal) => {
      const bytes = Buffer.concat(out);
      const text = bytes.toString("utf8");
      // Whatever it printed may be (part of) the secret: never let it reach a message.
      registerSecret(text.trim());
      const firstLine = err.split(/\r?\n/).map((l) => l.trim()).find(Boolean);
      const said = firstLine ? `: ${oneLine(scrubSecrets(firstLine)).slice(0, 200)}` : "";
      if (signal) return finish(fail(`was killed by ${signal}${said}`));
      if (code !== 0) return finish(fail(`exited with status ${code}${said}`));
      const value = text.trim();
      if (!value) return finish(fail("printed nothing", "check the path of the secret it reads"));
      if (/[\r\n]/.test(value)) return finish(fail("printed more than one line", ONE_FIELD));
      // A secret is text: bytes that are not UTF-8 would be sent as U+FFFD, a colour code as part of it.
      if (!isUtf8(bytes)) return finish(fail("printed bytes that are not UTF-8 text", ONE_FIELD));
      if (/[\x00-\x1f\x7f]/.test(value)) return finish(fail("printed control characters (a NUL, a tab, a colour code) with the secret", ONE_FIELD));
      finish(null, value);
    });
  });
}

/** The configured timeout (MCP_AUTH_SECRET_COMMAND_TIMEOUT, seconds). */
export function secretCommandTimeoutMs(env: NodeJS.ProcessEnv): number {
  const raw = env.MCP_AUTH_SECRET_COMMAND_TIMEOUT;
  if (raw === undefined || raw === "") return SECRET_COMMAND_TIMEOUT_S * 1000;
  return timeoutSeconds("MCP_AUTH_SECRET_COMMAND_TIMEOUT", raw) * 1000;
}

/**
 * Refuses (exit 5) to store or run a command kept in a config.json that is not the user's own and
 * private: a command in a config file is code that runs as the user (src/store/trust.ts).
 */
export function assertCommandSource(paths: { dir: string; config: string }, owner: string, verb: "run" | "store"): void {
  const p = commandSourceProblem(paths.dir, paths.config);
  if (!p) return;
  throw new FileError(`refusing to ${verb} the client secret command of ${owner}: ${p.path} ${p.why}`, {
    hint: `a command in a config file runs as you, so mcp-auth keeps and runs one only in a config dir that is yours and private; ${p.fix}`,
    code: "EUNTRUSTED",
  });
}

/**
 * The client secret a profile's command prints, checked as above and registered so it is never
 * printed. Run anew for every token request (never kept, not even in memory between requests), so a
 * long-running proxy follows a rotated secret.
 */
export async function secretFromCommand(argv: readonly string[], o: SecretCommandOptions & { clientId?: string }): Promise<string> {
  const value = await runSecretCommand(argv, { ...o, timeoutMs: o.timeoutMs ?? secretCommandTimeoutMs(o.env) });
  registerSecret(value, { clientId: o.clientId });
  return value;
}

/**
 * A command given on the command line to be kept in a profile: refused where it could not run later,
 * and run once, so a typo fails now rather than inside an MCP client. Returns what it printed.
 */
export function checkCommandToStore(ctx: { paths: { dir: string; config: string }; env: NodeJS.ProcessEnv }, argv: readonly string[], owner: string, clientId?: string): Promise<string> {
  assertCommandSource(ctx.paths, owner, "store");
  return secretFromCommand(argv, { env: ctx.env, owner, clientId });
}
