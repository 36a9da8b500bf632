// Chromium's flags for the tests' headless browser, shared by the run's one browser
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
