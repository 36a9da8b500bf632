// The page flow of test/helpers/browser.mjs: a person at oidc-provider's devInteractions pages, in a
// context of its own in a playwright Browser. browser.mjs (the process the CLI starts) runs it itself
// only when the test run's browser driver (test/helpers/browser-driver.ts) is not there; in a test run
// the driver runs it next to the shared Chromium, so a sign-in does not pay for loading playwright.
// browser.mjs's header describes the pages, options and output; this module imports nothing.

/** BROWSER_ACTION's values. */
export const ACTIONS = ['approve', 'deny', 'deny-consent'];

/**
 * Run one sign-in and return the exit code browser.mjs ends with (0 reached the callback or a device
 * end page, 1 anything else). `out.stderr`/`out.stdout` receive text as browser.mjs would write it.
 * Aborting `signal` closes the context at once and ends the flow without a FAILED line (the caller
 * reports the signal). The context is closed however the flow ends.
 *
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 * @param {import('./browser-flow.d.mts').FlowOptions} o
 * @param {import('./browser-flow.d.mts').FlowOutput} out
 * @param {AbortSignal} [signal]
 * @returns {Promise<number>}
 */
export async function runFlow(browser, url, o, out, signal) {
  const t0 = o.startedAt ?? Date.now();
  const login = o.login || 'alice';
  const password = o.password || 'pass';
  const action = o.action || 'approve';
  const userCode = o.userCode || '';
  const timeoutMs = o.timeoutMs > 0 ? o.timeoutMs : 30_000;
  const log = (msg) => out.stderr(`[browser] ${msg}\n`);
  const debug = (msg) => { if (o.debug) log(`+${Date.now() - t0}ms ${msg}`); };

  let context;
  let page;
  let callbackFailure; // set when the navigation to the loopback callback fails
  let callbackUrl; // the callback address the browser was sent to (paste)
  let closing;
  const closeContext = () => {
    closing ??= context
      ? withTimeout(context.close(), 5000, 'context.close').catch((e) => debug(`context.close failed: ${e.message}`))
      : undefined;
    return closing;
  };
  let abort;
  const aborted = new Promise((_, reject) => {
    abort = () => {
      reject(new Error('aborted'));
      void closeContext(); // interrupts whatever the page is waiting for
    };
  });
  aborted.catch(() => {});
  if (signal?.aborted) abort();
  else signal?.addEventListener('abort', abort, { once: true });

  async function visibleText() {
    try {
      return (await page.locator('body').innerText({ timeout: 2000 })).trim();
    } catch {
      return '';
    }
  }

  async function screenshot() {
    if (!o.screenshot || !page) return;
    try {
      await page.screenshot({ path: o.screenshot, fullPage: true, timeout: 5000 });
      debug(`screenshot saved to ${o.screenshot}`);
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

  async function run() {
    debug(`Chromium ${browser.version()}: new context`);
    context = await browser.newContext({ viewport: { width: 800, height: 700 } });
    if (ended) throw new Error('ended'); // aborted or timed out meanwhile: the finally below closes it
    // The machine's network is closed: drop everything that is not loopback (oidc-provider's
    // pages @import Google Fonts) so nothing waits on a dead connection.
    await context.route(
      (u) => !(u.protocol === 'data:' || isLoopbackHost(u.hostname)),
      (route) => route.abort('blockedbyclient'),
    );
    page = await context.newPage();
    page.setDefaultTimeout(timeoutMs);

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
    if (o.paste && callbackUrl) return { kind: 'callback', href: callbackUrl };

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
          if (o.paste) return { kind, href };
          await page.waitForLoadState('load');
          if (callbackFailure) throw new Error(`callback request failed: ${callbackFailure}`);
          return { kind, href };
        }
        case 'device-success':
          return { kind, href };
        case 'login': {
          if (action === 'deny' && !denied) {
            denied = true;
            await clickAndWait(page.getByRole('link', { name: /cancel/i }), href, '[ Cancel ] (login)');
            break;
          }
          await page.locator('input[name="login"]').fill(login);
          await page.locator('input[name="password"]').fill(password);
          await clickAndWait(page.locator('form button[type="submit"]').first(), href, 'Sign-in');
          break;
        }
        case 'consent': {
          if ((action === 'deny' || action === 'deny-consent') && !denied) {
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
          if (!userCode && !(await input.inputValue().catch(() => ''))) {
            throw new Error('device code input page shown but BROWSER_USER_CODE is not set');
          }
          if (userCode) await input.fill(userCode);
          await clickAndWait(page.locator('button[form="op.deviceInputForm"]').first(), href, 'Continue (user code)');
          break;
        }
        case 'device-confirm': {
          if (action === 'deny' && !denied) {
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
          if (o.paste && callbackUrl) return { kind: 'callback', href: callbackUrl };
          if (callbackFailure) throw new Error(`callback request failed: ${callbackFailure}`);
          throw new Error(`unexpected page at ${href} (title ${JSON.stringify(await page.title().catch(() => ''))}):\n${(await visibleText()).slice(0, 2000)}`);
        }
      }
    }
  }

  let deadline;
  let ended = false;
  const running = run();
  try {
    const result = await Promise.race([
      running,
      aborted,
      new Promise((_, reject) => {
        deadline = setTimeout(
          () => reject(new Error(`timed out after ${timeoutMs} ms${page ? ` (last page: ${page.url()})` : ''}`)),
          timeoutMs,
        );
      }),
    ]);
    const text = await visibleText();
    await screenshot();
    log(`reached ${result.kind} page in ${Date.now() - t0} ms${o.paste ? '' : `: ${result.href}`}`);
    // Pasted elsewhere: nothing on this machine answers the callback, as on a person's other machine.
    if (o.paste && callbackFailure) log(`the callback address did not load: ${callbackFailure}`);
    if (o.paste) out.stdout(`${result.href}\n`);
    out.stderr(`${text}\n`);
    return 0;
  } catch (e) {
    if (!signal?.aborted) {
      // playwright appends a "=== logs ===" block to its messages; keep the first lines only
      const msg = String(e?.message ?? e).split('\n=====')[0];
      const reason = callbackFailure ? `callback request failed: ${callbackFailure}` : msg;
      log(`FAILED after ${Date.now() - t0} ms: ${reason}`);
      await screenshot();
    }
    return 1;
  } finally {
    ended = true;
    clearTimeout(deadline);
    signal?.removeEventListener('abort', abort);
    // Closing the context ends whatever run() still waits for; a context that was still being
    // created is closed once run() has it.
    await closeContext();
    await withTimeout(running, 5000, 'the page flow').catch(() => {});
    await closeContext();
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function withTimeout(promise, ms, what) {
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
