#!/usr/bin/env node
// Test-only "browser command" for `mcp-auth login --browser-command`.
//
//   node test/helpers/browser.mjs <authorization-url>
//
// Launches Debian's headless Chromium through playwright-core, opens the URL and
// behaves like a person on oidc-provider's devInteractions pages:
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
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS } from './chromium-args.mjs';

const t0 = Date.now();
const url = process.argv[process.argv.length - 1];
const LOGIN = process.env.BROWSER_LOGIN || 'alice';
const PASSWORD = process.env.BROWSER_PASSWORD || 'pass';
const ACTION = (process.env.BROWSER_ACTION || 'approve').toLowerCase();
const USER_CODE = process.env.BROWSER_USER_CODE || '';
const TIMEOUT_MS = Number(process.env.BROWSER_TIMEOUT_MS) > 0 ? Number(process.env.BROWSER_TIMEOUT_MS) : 30_000;
const SCREENSHOT = process.env.BROWSER_SCREENSHOT || '';
const DEBUG = /^(1|true|yes)$/i.test(process.env.BROWSER_DEBUG || '');
const EXECUTABLE = process.env.BROWSER_EXECUTABLE || '/usr/bin/chromium';
const PASTE = /^(1|true|yes)$/i.test(process.env.BROWSER_PASTE || '');
const SHARED_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.vitest', 'chromium.json');

const log = (msg) => process.stderr.write(`[browser] ${msg}\n`);
const debug = (msg) => { if (DEBUG) log(`+${Date.now() - t0}ms ${msg}`); };

if (process.argv.length < 3 || !/^https?:\/\//i.test(url)) {
  log('usage: node test/helpers/browser.mjs <http(s) authorization url>');
  process.exit(1);
}
if (!['approve', 'deny', 'deny-consent'].includes(ACTION)) {
  log(`BROWSER_ACTION must be approve, deny or deny-consent (got ${JSON.stringify(ACTION)})`);
  process.exit(1);
}

// Everything Chromium/playwright writes (profile dir, artifacts, Chromium's own temp
// files) goes below this directory, which we always delete.
const tempRoot = mkdtempSync(join(tmpdir(), 'mcp-auth-browser-'));
process.env.TMPDIR = tempRoot;

let browser;
let page;
let cleanupPromise;
let signalExit; // exit code when a signal arrived
let callbackFailure; // set when the navigation to the loopback callback fails
let callbackUrl; // the callback address the browser was sent to (BROWSER_PASTE)
/** Close the browser and delete the temp dir; every caller awaits the same run. */
function cleanup() {
  cleanupPromise ??= (async () => {
    try {
      if (browser) await withTimeout(browser.close(), 5000, 'browser.close');
    } catch (e) {
      debug(`browser.close failed: ${e.message}`);
    }
    removeTemp();
  })();
  return cleanupPromise;
}
function removeTemp() {
  try {
    rmSync(tempRoot, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
  } catch (e) {
    log(`could not remove ${tempRoot}: ${e.message}`);
  }
}
// Last resort (e.g. process.exit elsewhere): playwright kills Chromium on 'exit' itself.
process.on('exit', removeTemp);
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(sig, () => {
    if (signalExit !== undefined) return;
    signalExit = code;
    log(`got ${sig}, closing browser`);
    cleanup().finally(() => process.exit(code));
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

function isLoopbackHost(hostname) {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}
function isCallback(href) {
  try {
    const u = new URL(href);
    return u.protocol === 'http:' && isLoopbackHost(u.hostname) && u.pathname.startsWith('/callback');
  } catch {
    return false;
  }
}

async function visibleText() {
  try {
    return (await page.locator('body').innerText({ timeout: 2000 })).trim();
  } catch {
    return '';
  }
}

async function screenshot() {
  if (!SCREENSHOT || !page) return;
  try {
    await page.screenshot({ path: SCREENSHOT, fullPage: true, timeout: 5000 });
    debug(`screenshot saved to ${SCREENSHOT}`);
  } catch (e) {
    log(`screenshot failed: ${e.message}`);
  }
}

/**
 * Click `locator` and wait until the main frame has committed a new document. (Not "until the
 * URL changes": the device flow's code-input form POSTs to /device and the confirm page comes
 * back at the same URL.)
 */
async function clickAndWait(locator, fromHref, what) {
  debug(`click ${what} on ${fromHref}`);
  const navigated = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame(), timeout: 0 });
  navigated.catch(() => {}); // avoid an unhandled rejection if the click fails or the browser closes
  await locator.click({ timeout: 0 });
  await navigated;
}

// Identify the current page. Order matters: the device confirm page also has forms.
async function classify() {
  const href = page.url();
  if (isCallback(href)) return 'callback';
  if (await page.locator('input[name="prompt"][value="login"]').count()) return 'login';
  if (await page.locator('input[name="prompt"][value="consent"]').count()) return 'consent';
  if (await page.locator('form[id="op.deviceInputForm"]').count()) return 'device-input';
  if (await page.locator('form[id="op.deviceConfirmForm"]').count()) return 'device-confirm';
  const title = await page.title().catch(() => '');
  if (/sign-in success/i.test(title)) return 'device-success';
  if (/oops! something went wrong/i.test(title)) return 'op-error';
  return 'unknown';
}

/**
 * The test run's shared Chromium (test/global-setup.ts starts one and names it in
 * .vitest/chromium.json), so a sign-in costs a new context instead of a new browser: about 1.5 s
 * and most of the CPU of each login. Each run still gets its own context (its own cookies and
 * storage), as a fresh profile would. Without one, or when it is gone, Chromium is launched here.
 */
async function sharedBrowser(chromium) {
  if (process.env.BROWSER_SHARED === '0' || process.env.BROWSER_EXECUTABLE) return undefined;
  let endpoint;
  try {
    endpoint = JSON.parse(readFileSync(SHARED_FILE, 'utf8')).wsEndpoint;
  } catch {
    return undefined;
  }
  try {
    const b = await chromium.connect(endpoint, { timeout: 5000 });
    debug(`connected to the shared Chromium ${b.version()}`);
    return b;
  } catch (e) {
    debug(`shared Chromium unavailable (${e.message.split('\n')[0]}); launching one`);
    return undefined;
  }
}

async function run() {
  const { chromium } = await import('playwright-core');
  browser = (await sharedBrowser(chromium)) ?? await chromium.launch({
    executablePath: EXECUTABLE,
    headless: true,
    args: CHROMIUM_ARGS,
    // our own handlers above close the browser and remove the temp dir
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    timeout: TIMEOUT_MS,
  });
  debug(`launched Chromium ${browser.version()}`);
  const context = await browser.newContext({ viewport: { width: 800, height: 700 } });
  // The machine's network is closed: drop everything that is not loopback (oidc-provider's
  // pages @import Google Fonts) so nothing waits on a dead connection.
  await context.route(
    (u) => !(u.protocol === 'data:' || isLoopbackHost(u.hostname)),
    (route) => route.abort('blockedbyclient'),
  );
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);

  // Record main-frame navigation failures to the callback (e.g. loopback server already gone).
  page.on('requestfailed', (req) => {
    if (req.isNavigationRequest() && req.frame() === page.mainFrame() && isCallback(req.url())) {
      callbackUrl = req.url();
      callbackFailure = `${req.failure()?.errorText ?? 'failed'} (${req.url()})`;
    }
  });

  debug(`goto ${url}`);
  try {
    await page.goto(url, { waitUntil: 'commit' });
  } catch (e) {
    // A direct redirect to a dead callback surfaces here; report it below.
    if (!callbackFailure) throw e;
  }
  if (PASTE && callbackUrl) return { kind: 'callback', href: callbackUrl };

  let denied = false;
  let steps = 0;
  for (;;) {
    if (++steps > 20) throw new Error(`too many steps; stuck at ${page.url()}`);
    await page.waitForLoadState('domcontentloaded');
    const href = page.url();
    const kind = await classify();
    debug(`page ${kind}: ${href}`);
    switch (kind) {
      case 'callback': {
        if (PASTE) return { kind, href };
        await page.waitForLoadState('load');
        if (callbackFailure) throw new Error(`callback request failed: ${callbackFailure}`);
        return { kind, href };
      }
      case 'device-success':
        return { kind, href };
      case 'login': {
        if (ACTION === 'deny' && !denied) {
          denied = true;
          await clickAndWait(page.getByRole('link', { name: /cancel/i }), href, '[ Cancel ] (login)');
          break;
        }
        await page.locator('input[name="login"]').fill(LOGIN);
        await page.locator('input[name="password"]').fill(PASSWORD);
        await clickAndWait(page.locator('form button[type="submit"]').first(), href, 'Sign-in');
        break;
      }
      case 'consent': {
        if ((ACTION === 'deny' || ACTION === 'deny-consent') && !denied) {
          denied = true;
          await clickAndWait(page.getByRole('link', { name: /cancel/i }), href, '[ Cancel ] (consent)');
          break;
        }
        await clickAndWait(page.locator('form button[type="submit"]').first(), href, 'Continue (consent)');
        break;
      }
      case 'device-input': {
        // after [ Abort ] oidc-provider shows the code-input page again ("interrupted"): done
        if (denied) return { kind: 'device-aborted', href };
        const input = page.locator('form[id="op.deviceInputForm"] input[name="user_code"]');
        if (!USER_CODE && !(await input.inputValue().catch(() => ''))) {
          throw new Error('device code input page shown but BROWSER_USER_CODE is not set');
        }
        if (USER_CODE) await input.fill(USER_CODE);
        await clickAndWait(page.locator('button[form="op.deviceInputForm"]').first(), href, 'Continue (user code)');
        break;
      }
      case 'device-confirm': {
        if (ACTION === 'deny' && !denied) {
          denied = true;
          await clickAndWait(page.locator('button[name="abort"]'), href, '[ Abort ] (device)');
          break;
        }
        await clickAndWait(page.locator('button[form="op.deviceConfirmForm"]:not([name="abort"])').first(), href, 'Continue (device)');
        break;
      }
      case 'op-error':
        if (denied && /access_denied/.test(await visibleText())) return { kind: 'device-aborted', href };
        throw new Error(`authorization server error page at ${href}:\n${await visibleText()}`);
      default: {
        if (PASTE && callbackUrl) return { kind: 'callback', href: callbackUrl };
        if (callbackFailure) throw new Error(`callback request failed: ${callbackFailure}`);
        throw new Error(`unexpected page at ${href} (title ${JSON.stringify(await page.title().catch(() => ''))}):\n${(await visibleText()).slice(0, 2000)}`);
      }
    }
  }
}

let exitCode = 1;
let deadline;
try {
  const result = await Promise.race([
    run(),
    new Promise((_, reject) => {
      deadline = setTimeout(
        () => reject(new Error(`timed out after ${TIMEOUT_MS} ms${page ? ` (last page: ${page.url()})` : ''}`)),
        TIMEOUT_MS,
      );
    }),
  ]);
  const text = await visibleText();
  await screenshot();
  log(`reached ${result.kind} page in ${Date.now() - t0} ms${PASTE ? '' : `: ${result.href}`}`);
  if (PASTE) process.stdout.write(`${result.href}\n`);
  process.stderr.write(`${text}\n`);
  exitCode = 0;
} catch (e) {
  if (signalExit === undefined) {
    // playwright appends a "=== logs ===" block to its messages; keep the first lines only
    const msg = String(e?.message ?? e).split('\n=====')[0];
    const reason = callbackFailure ? `callback request failed: ${callbackFailure}` : msg;
    log(`FAILED after ${Date.now() - t0} ms: ${reason}`);
    await screenshot();
  }
} finally {
  clearTimeout(deadline);
  await cleanup();
}
process.exit(signalExit ?? exitCode);
