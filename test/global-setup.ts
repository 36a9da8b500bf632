import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBrowserDriver } from "./helpers/browser-driver.js";
import { isAlive } from "../src/store/lock.js";
import { CHROMIUM_ARGS, CHROMIUM_EXECUTABLE } from "./helpers/chromium-args.mjs";

const ROOT = join(__dirname, "..");
/** Where test/helpers/browser.mjs finds the run's shared Chromium and browser driver. */
const SHARED_CHROMIUM = join(ROOT, ".vitest", "chromium.json");

/**
 * Tests run the built CLI: build it first (esbuild, well under a second), so a test never runs stale
 * code. Then one headless Chromium for the whole run, in which every browser sign-in gets a context of
 * its own (test/helpers/browser.mjs): launching one per sign-in cost about 1.5 s each. The sign-ins'
 * page flows run here, in the browser driver (test/helpers/browser-driver.ts), on one connection:
 * loading playwright in each browser.mjs cost about 0.5 s of CPU more.
 */
export default async function setup(): Promise<() => Promise<void>> {
  // Some machines set NODE_EXTRA_CA_CERTS to the system bundle, which Node then parses at every start
  // (about 55 ms each, for hundreds of processes). The tests connect to loopback only, and a test that
  // needs a CA names its own.
  delete process.env.NODE_EXTRA_CA_CERTS;
  const tmp = memoryTmpdir();
  execFileSync(process.execPath, [join(ROOT, "scripts", "build.mjs")], { stdio: "inherit" });
  if (!existsSync(CHROMIUM_EXECUTABLE) || process.env.BROWSER_SHARED === "0") return async () => tmp?.remove();
  const { chromium } = await import("playwright-core");
  const server = await chromium.launchServer({
    executablePath: CHROMIUM_EXECUTABLE,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const wsEndpoint = server.wsEndpoint();
  const driver = await startBrowserDriver(chromium, wsEndpoint);
  mkdirSync(join(ROOT, ".vitest"), { recursive: true });
  writeFileSync(SHARED_CHROMIUM, JSON.stringify({ wsEndpoint, driver: driver.url, pid: process.pid }));
  return async () => {
    // Another run in this checkout may have replaced the file with its own browser: leave that one.
    try {
      if (JSON.parse(readFileSync(SHARED_CHROMIUM, "utf8")).wsEndpoint === wsEndpoint) rmSync(SHARED_CHROMIUM, { force: true });
    } catch {
      /* already gone */
    }
    await driver.close();
    await server.close();
    tmp?.remove();
  };
}

/**
 * The run's temporary files (every test's HOME, config dir and project: os.tmpdir()) in memory, where
 * the fsyncs that make mcp-auth's config and secret writes durable cost nothing: on this disk they
 * were most of the time of the config-file property tests (a 1,000-file run: 17–32 s → 6 s). One
 * directory per run, removed at its end, so nothing a test leaves behind stays in memory. Where
 * there is no memory file system (macOS), the system's own temp dir as before.
 */
function memoryTmpdir(): { remove(): void } | undefined {
  const SHM = "/dev/shm";
  try {
    const fs = statfsSync(SHM);
    // tmpfs, with room for the run (the packed tarball's installs, the real clients' own files).
    if (fs.type !== 0x01021994 || fs.bavail * fs.bsize < 2 * 1024 ** 3) return undefined;
  } catch {
    return undefined;
  }
  // A run that was killed left its directory: remove those whose run is gone.
  for (const name of readdirSync(SHM)) {
    const pid = /^mcp-auth-test-(\d+)-/.exec(name)?.[1];
    if (pid && !isAlive(Number(pid))) rmSync(join(SHM, name), { recursive: true, force: true });
  }
  const dir = mkdtempSync(join(SHM, `mcp-auth-test-${process.pid}-`));
  // As /tmp is: the tests that run the CLI as another account (uid 65534) make their homes in it too.
  chmodSync(dir, 0o1777);
  process.env.TMPDIR = dir;
  return { remove: () => rmSync(dir, { recursive: true, force: true }) };
}
