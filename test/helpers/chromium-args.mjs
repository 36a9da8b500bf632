import { existsSync } from 'node:fs';

// Chromium's binary and flags for the tests' headless browser, shared by the run's one browser
// (test/global-setup.ts) and the one test/helpers/browser.mjs launches when there is none.
// --headless and --user-data-dir are added by playwright (headless: true; profile under TMPDIR).
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

// Chromium's headless shell (Debian's chromium-headless-shell, what Playwright itself runs for
// headless: the same engine without the desktop browser around it) when it is installed: a sign-in
// took about a third of the CPU that the full browser in headless mode took. Else the full browser.
export const CHROMIUM_EXECUTABLE = existsSync('/usr/bin/chromium-headless-shell') ? '/usr/bin/chromium-headless-shell' : '/usr/bin/chromium';
