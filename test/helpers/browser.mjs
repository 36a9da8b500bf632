#!/usr/bin/env node
// Test-only "browser command" for `mcp-auth login --browser-command`.
//
//   node test/helpers/browser.mjs <authorization-url>
//
// Opens the URL in headless Chromium (Debian's, through playwright-core) and behaves like a
// person on oidc-provider's devInteractions pages (the page flow is test/helpers/browser-flow.mjs):
//   login page   -> fills login/password, clicks "Sign-in"
//   consent page -> clicks "Continue"
// until the browser lands on http://127.0.0.1:<port>/callback... (or localhost / [::1]).
// It then waits for that page to load, prints its visible text to stderr and exits 0.
// It also drives oidc-provider's device-flow pages (user-code input -> confirm -> login ->
// consent -> "Sign-in Success"), given verification_uri_complete, or verification_uri plus
// BROWSER_USER_CODE; that run ends on the success page instead of a callback.
//
// Environment:
//   BROWSER_LOGIN        login name (default 'alice'); becomes the `sub`
//   BROWSER_PASSWORD     password (default 'pass'; devInteractions accepts anything)
//   BROWSER_ACTION       'approve' (default)
//                        'deny'         click [ Cancel ] on the first login/consent page
//                                       ([ Abort ] on the device confirm page)
//                        'deny-consent' log in, then click [ Cancel ] on the consent page
//                        The redirect then carries error=access_denied (the device flow ends
//                        on its "request was interrupted" page; the poller gets access_denied).
//   BROWSER_USER_CODE    device flow: user code to type when the code-input page is shown
//   BROWSER_TIMEOUT_MS   overall deadline in ms (default 30000)
//   BROWSER_SCREENSHOT   path: save a full-page PNG of the final page (also on failure, if possible)
//   BROWSER_DEBUG=1      log every step (with ms since start) to stderr
//   BROWSER_EXECUTABLE   Chromium binary (default /usr/bin/chromium)
//   BROWSER_SHARED=0     always launch a Chromium of its own, even when the test run shares one
//   BROWSER_PASTE=1      a browser on another machine (`mcp-auth login --paste`): the callback is
//                        expected not to load; print the address the browser was sent to on
//                        stdout (what the person copies from the address bar) and exit 0
//
// stdout stays empty (but for BROWSER_PASTE). stderr gets "[browser] reached <kind> page in N ms: <url>" followed by the
// final page's visible text (or "[browser] FAILED after N ms: <reason>").
// Exit codes: 0 reached the callback (any result, including error=access_denied) or a device
// end page; 1 timeout / error / unexpected page / callback unreachable / bad usage;
// 130/143/129 after SIGINT/SIGTERM/SIGHUP.
// Always closes the browser (or, connected to the run's shared one, its own context) and removes its temporary directory (which holds the
// Chromium --user-data-dir: TMPDIR is pointed at it before launch).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ACTIONS, runFlow } from './browser-flow.mjs';
import { CHROMIUM_ARGS } from './chromium-args.mjs';

const t0 = Date.now();
const url = process.argv[process.argv.length - 1];
const ACTION = (process.env.BROWSER_ACTION || 'approve').toLowerCase();
const TIMEOUT_MS = Number(process.env.BROWSER_TIMEOUT_MS) > 0 ? Number(process.env.BROWSER_TIMEOUT_MS) : 30_000;
const DEBUG = /^(1|true|yes)$/i.test(process.env.BROWSER_DEBUG || '');
const EXECUTABLE = process.env.BROWSER_EXECUTABLE || '/usr/bin/chromium';
const SHARED = process.env.BROWSER_SHARED !== '0' && !process.env.BROWSER_EXECUTABLE;
const SHARED_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.vitest', 'chromium.json');
/** The flow's settings (browser-flow.d.mts), wherever it runs. */
const options = {
  login: process.env.BROWSER_LOGIN || 'alice',
  password: process.env.BROWSER_PASSWORD || 'pass',
  action: ACTION,
  userCode: process.env.BROWSER_USER_CODE || '',
  timeoutMs: TIMEOUT_MS,
  screenshot: process.env.BROWSER_SCREENSHOT ? resolve(process.env.BROWSER_SCREENSHOT) : '',
  debug: DEBUG,
  paste: /^(1|true|yes)$/i.test(process.env.BROWSER_PASTE || ''),
  startedAt: t0,
};
const output = { stderr: (text) => process.stderr.write(text), stdout: (text) => process.stdout.write(text) };

const log = (msg) => process.stderr.write(`[browser] ${msg}\n`);
const debug = (msg) => { if (DEBUG) log(`+${Date.now() - t0}ms ${msg}`); };

if (process.argv.length < 3 || !/^https?:\/\//i.test(url)) {
  log('usage: node test/helpers/browser.mjs <http(s) authorization url>');
  process.exit(1);
}
if (!ACTIONS.includes(ACTION)) {
  log(`BROWSER_ACTION must be approve, deny or deny-consent (got ${JSON.stringify(ACTION)})`);
  process.exit(1);
}

let signalExit; // exit code when a signal arrived
let onSignal = () => process.exit(signalExit); // what a signal must stop; set by runHere
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(sig, () => {
    if (signalExit !== undefined) return;
    signalExit = code;
    log(`got ${sig}, closing browser`);
    onSignal();
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** .vitest/chromium.json: the run's shared Chromium ({wsEndpoint}). */
function sharedRun() {
  if (!SHARED) return {};
  try {
    const { wsEndpoint } = JSON.parse(readFileSync(SHARED_FILE, 'utf8'));
    return { wsEndpoint };
  } catch {
    return {};
  }
}

/** The flow run here: on the shared Chromium if it answers at `wsEndpoint`, else on one launched now. */
async function runHere(wsEndpoint) {
  // Everything Chromium/playwright writes (profile dir, artifacts, Chromium's own temp
  // files) goes below this directory, which we always delete.
  const tempRoot = mkdtempSync(join(tmpdir(), 'mcp-auth-browser-'));
  process.env.TMPDIR = tempRoot;
  const removeTemp = () => {
    try {
      rmSync(tempRoot, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
    } catch (e) {
      log(`could not remove ${tempRoot}: ${e.message}`);
    }
  };
  // Last resort (e.g. process.exit elsewhere): playwright kills Chromium on 'exit' itself.
  process.on('exit', removeTemp);

  let browser;
  let cleanupPromise;
  /** Close the browser (disconnect, for the shared one) and delete the temp dir; every caller awaits the same run. */
  const cleanup = () => {
    cleanupPromise ??= (async () => {
      try {
        if (browser) await withTimeout(browser.close(), 5000, 'browser.close');
      } catch (e) {
        debug(`browser.close failed: ${e.message}`);
      }
      removeTemp();
    })();
    return cleanupPromise;
  };
  const ac = new AbortController();
  onSignal = () => {
    ac.abort();
    cleanup().finally(() => process.exit(signalExit));
  };

  let exitCode = 1;
  try {
    const { chromium } = await import('playwright-core');
    browser = (await sharedBrowser(chromium, wsEndpoint)) ?? await chromium.launch({
      executablePath: EXECUTABLE,
      headless: true,
      args: CHROMIUM_ARGS,
      // our own handlers above close the browser and remove the temp dir
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      timeout: TIMEOUT_MS,
    }).then((b) => {
      debug(`launched Chromium ${b.version()}`);
      return b;
    });
    if (signalExit === undefined) exitCode = await runFlow(browser, url, options, output, ac.signal);
  } catch (e) {
    // playwright appends a "=== logs ===" block to its messages; keep the first lines only
    if (signalExit === undefined) log(`FAILED after ${Date.now() - t0} ms: ${String(e?.message ?? e).split('\n=====')[0]}`);
  } finally {
    await cleanup();
  }
  return signalExit ?? exitCode;
}

/**
 * The test run's shared Chromium (test/global-setup.ts starts one and names it in
 * .vitest/chromium.json), so a sign-in costs a new context instead of a new browser: about 1.5 s
 * and most of the CPU of each login. Each run still gets its own context (its own cookies and
 * storage), as a fresh profile would. Without one, or when it is gone, Chromium is launched here.
 */
async function sharedBrowser(chromium, endpoint) {
  if (!endpoint) return undefined;
  try {
    const b = await chromium.connect(endpoint, { timeout: 5000 });
    debug(`connected to the shared Chromium ${b.version()}`);
    return b;
  } catch (e) {
    debug(`shared Chromium unavailable (${e.message.split('\n')[0]}); launching one`);
    return undefined;
  }
}

process.exit(await runHere(sharedRun().wsEndpoint));
