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
//   BROWSER_EXECUTABLE   Chromium binary (default: chromium-headless-shell if installed, else /usr/bin/chromium)
//   BROWSER_SHARED=0     always launch a Chromium of its own, even when the test run shares one
//   BROWSER_PASTE=1      a browser on another machine (`mcp-auth login --paste`): the callback is
//                        expected not to load; print the address the browser was sent to on
//                        stdout (what the person copies from the address bar) and exit 0;
//                        stderr says "[browser] the callback address did not load: <net error>"
//
// stdout stays empty (but for BROWSER_PASTE). stderr gets "[browser] reached <kind> page in N ms: <url>" followed by the
// final page's visible text (or "[browser] FAILED after N ms: <reason>").
// Exit codes: 0 reached the callback (any result, including error=access_denied) or a device
// end page; 1 timeout / error / unexpected page / callback unreachable / bad usage;
// 130/143/129 after SIGINT/SIGTERM/SIGHUP.
//
// Where the flow runs: in a test run, test/global-setup.ts starts one Chromium and a browser driver
// (test/helpers/browser-driver.ts) beside it, both named in .vitest/chromium.json. This process then
// only sends the URL and settings to the driver over loopback HTTP and writes out what comes back,
// so a sign-in does not load playwright; the driver runs the flow in a context of its own and
// closes it at the end, or as soon as this process goes away (killed included). Without a
// reachable driver, with BROWSER_SHARED=0 or BROWSER_EXECUTABLE, it runs the flow itself: connected
// to the run's shared Chromium (a context of its own), else with a Chromium it launches. Then it
// always closes its context or browser and removes its temporary directory (which holds the
// Chromium --user-data-dir: TMPDIR is pointed at it before launch).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ACTIONS, runFlow, withTimeout } from './browser-flow.mjs';
import { CHROMIUM_ARGS, CHROMIUM_EXECUTABLE } from './chromium-args.mjs';

const t0 = Date.now();
const url = process.argv[process.argv.length - 1];
const ACTION = (process.env.BROWSER_ACTION || 'approve').toLowerCase();
const TIMEOUT_MS = Number(process.env.BROWSER_TIMEOUT_MS) > 0 ? Number(process.env.BROWSER_TIMEOUT_MS) : 30_000;
const DEBUG = /^(1|true|yes)$/i.test(process.env.BROWSER_DEBUG || '');
const EXECUTABLE = process.env.BROWSER_EXECUTABLE || CHROMIUM_EXECUTABLE;
const SHARED = process.env.BROWSER_SHARED !== '0' && !process.env.BROWSER_EXECUTABLE;
const SHARED_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.vitest', 'chromium.json');
/** The flow's settings (browser-flow.d.mts), wherever it runs. */
const options = {
  login: process.env.BROWSER_LOGIN || 'alice',
  password: process.env.BROWSER_PASSWORD || 'pass',
  action: ACTION,
  userCode: process.env.BROWSER_USER_CODE || '',
  timeoutMs: TIMEOUT_MS,
  // the driver has another working directory
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
let onSignal = () => process.exit(signalExit); // what a signal must stop; set by the paths below
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(sig, () => {
    if (signalExit !== undefined) return;
    signalExit = code;
    log(`got ${sig}, closing browser`);
    onSignal();
  });
}

/** .vitest/chromium.json: the run's shared Chromium ({wsEndpoint}) and browser driver ({driver}). */
function sharedRun() {
  if (!SHARED) return {};
  try {
    const { wsEndpoint, driver } = JSON.parse(readFileSync(SHARED_FILE, 'utf8'));
    return { wsEndpoint, driver };
  } catch {
    return {};
  }
}

/**
 * The flow run by the test run's browser driver: POST /flow, then its NDJSON answer ({stderr},
 * {stdout} lines, then {exit}) written out as it comes. Resolves the exit code, or undefined when
 * the driver did not take the request (gone, or something else answers there): then nothing ran,
 * and the caller runs the flow itself. Closing the connection (a signal) makes the driver abort
 * the flow and close its context.
 */
function viaDriver(driverUrl) {
  return new Promise((done) => {
    let req;
    try {
      req = http.request(new URL('/flow', driverUrl), { method: 'POST', headers: { 'content-type': 'application/json' } });
    } catch (e) {
      debug(`browser driver ${driverUrl} unusable (${e.message}); running the flow here`);
      return done(undefined);
    }
    let taken = false;
    let exit;
    let settled = false;
    const finish = (code) => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      done(code);
    };
    const lost = (why) => {
      if (settled || signalExit !== undefined) return;
      log(`FAILED after ${Date.now() - t0} ms: ${why}`);
      req.destroy();
      finish(1);
    };
    // The flow keeps its own deadline; this one only ends a wait on a driver that went silent.
    const guard = setTimeout(() => lost(`no answer from the browser driver after ${Date.now() - t0} ms`), TIMEOUT_MS + 30_000);
    onSignal = () => {
      req.destroy();
      process.exit(signalExit);
    };
    req.on('error', (e) => {
      if (taken) return lost(`lost the browser driver (${e.message})`);
      if (settled || signalExit !== undefined) return;
      debug(`browser driver ${driverUrl} unreachable (${e.message}); running the flow here`);
      onSignal = () => process.exit(signalExit);
      finish(undefined);
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200 || !/^application\/x-ndjson\b/.test(res.headers['content-type'] ?? '')) {
        debug(`browser driver ${driverUrl} answered ${res.statusCode}; running the flow here`);
        res.resume();
        onSignal = () => process.exit(signalExit);
        return finish(undefined);
      }
      taken = true;
      debug(`flow running in the browser driver ${driverUrl}`);
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk) => {
        buf += chunk;
        for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) {
          let line;
          try {
            line = JSON.parse(buf.slice(0, i));
          } catch {
            return lost('the browser driver sent a line that is not JSON');
          }
          if (typeof line.stderr === 'string') process.stderr.write(line.stderr);
          if (typeof line.stdout === 'string') process.stdout.write(line.stdout);
          if (typeof line.exit === 'number') exit = line.exit;
        }
      });
      res.on('error', () => {}); // 'close' below reports it
      res.on('close', () => (exit === undefined ? lost('the browser driver closed the connection before the flow ended') : finish(exit)));
    });
    req.end(JSON.stringify({ url, options }));
  });
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

const { wsEndpoint, driver } = sharedRun();
const code = (driver ? await viaDriver(driver) : undefined) ?? await runHere(wsEndpoint);
process.exit(code);
