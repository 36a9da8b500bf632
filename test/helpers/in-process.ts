import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tryCachedToken } from "../../src/fast.js";
import { tryFreshToken } from "../../src/fast-fetch.js";
import { forgetTrustChecks } from "../../src/store/trust.js";
import type { RunResult, Sandboxed } from "./cli.js";
import { createTestContext } from "./context.js";

/**
 * `user()` without the process: the same throw-away HOME and config dir, and each run goes the way
 * bin/mcp-auth.js goes — the cached-token fast path, then the fresh-token fast path, then the full
 * command tree — in this process, on the real clock, with stdout, stderr and the exit code captured.
 * For the many flag/message/table cases; the launcher itself (exit codes of the real binary, a real
 * shell's eval, signals) keeps its end-to-end process tests.
 */
export interface InProcessOptions {
  /** What the browser does with a URL (createTestContext's onBrowse), e.g. devBrowser() following a login. */
  onBrowse?: (url: string) => Promise<void> | void;
}

export function inProcessUser(extraEnv: NodeJS.ProcessEnv = {}, o: InProcessOptions = {}): Sandboxed {
  const home = mkdtempSync(join(tmpdir(), "mcp-auth-home-"));
  const configDir = join(home, ".config", "mcp-auth");
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, MCP_AUTH_CONFIG_DIR: configDir, LANG: "C.UTF-8", NO_COLOR: "1", ...extraEnv };
  return {
    home,
    configDir,
    env,
    run: (args, opts = {}) => runInProcess(args, { ...env, ...opts.env }, opts.input, o),
    cleanup: () => rmSync(home, { recursive: true, force: true }),
  };
}

export async function runInProcess(args: string[], env: NodeJS.ProcessEnv, input?: string, o: InProcessOptions = {}): Promise<RunResult> {
  forgetTrustChecks(); // each run is a new process: a dir trusted before is checked again
  let fastOut = "";
  let fastErr = "";
  const out = (s: string) => void (fastOut += s);
  if (tryCachedToken(args, env, out)) return { code: 0, stdout: fastOut, stderr: "" };
  const served = await tryFreshToken(args, env, { out, info: (line) => void (fastErr += `${line}\n`) }).catch(() => false);
  if (served) return { code: 0, stdout: fastOut, stderr: fastErr };
  // The context's own HOME is replaced by the user's; its empty temp dir goes with cleanup().
  const t = createTestContext({ now: Date.now(), env: { ...env }, stdin: input, onBrowse: o.onBrowse, global: extraCa(env) });
  try {
    const code = await t.run(args);
    return { code, stdout: fastOut + t.stdout(), stderr: fastErr + t.stderr() };
  } finally {
    t.cleanup();
  }
}

/**
 * Node reads NODE_EXTRA_CA_CERTS once, when a process starts, so a test's own CA (a simulator's TLS
 * front) is not trusted by this process: in-process it is handed on as --ca-file, which adds it to
 * the same default roots.
 */
function extraCa(env: NodeJS.ProcessEnv): { caFile: string } | undefined {
  return env.NODE_EXTRA_CA_CERTS ? { caFile: env.NODE_EXTRA_CA_CERTS } : undefined;
}
