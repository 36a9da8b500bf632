import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/**
 * Runs the built CLI as a user would: a separate process with its own HOME and config dir.
 * Always asynchronous, so servers living in the test process keep answering.
 */
export const ROOT = resolve(__dirname, "..", "..");
export const BIN = join(ROOT, "bin", "mcp-auth.js");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Sandboxed {
  home: string;
  configDir: string;
  env: NodeJS.ProcessEnv;
  run(args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult>;
  cleanup(): void;
}

/** A throw-away user: temp HOME + config dir, no D-Bus (so no keychain) unless the test adds one. */
export function user(extraEnv: NodeJS.ProcessEnv = {}): Sandboxed {
  const home = mkdtempSync(join(tmpdir(), "mcp-auth-home-"));
  const configDir = join(home, ".config", "mcp-auth");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    MCP_AUTH_CONFIG_DIR: configDir,
    LANG: "C.UTF-8",
    NO_COLOR: "1",
    ...extraEnv,
  };
  return {
    home,
    configDir,
    env,
    run: (args, opts = {}) => runCli(args, { ...env, ...opts.env }, opts.input, opts.timeoutMs),
    cleanup: () => rmSync(home, { recursive: true, force: true }),
  };
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 60_000): Promise<RunResult> {
  return runProcess(process.execPath, [BIN, ...args], env, input, timeoutMs);
}

export function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 60_000, cwd?: string): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`timed out after ${timeoutMs} ms: ${args.join(" ")}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
    // A child that exits without reading stdin (the cached fast path is that quick) is no failure.
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });
}
