#!/usr/bin/env node
// Test-only "browser command": before the real (headless Chromium) login, plays a web page that
// knows mcp-auth's loopback port and sends forged redirects to /callback.
//
//   node test/helpers/forging-browser.mjs <authorization-url>
//
// FORGE         comma-separated forgeries, sent in order:
//                 wrong-state      /callback?state=wrong&code=x
//                 wrong-iss-error  /callback?state=<the real state>&error=access_denied&iss=https://evil.mcp-auth.invalid
//                 no-iss-error     /callback?state=<the real state>&error=access_denied (no iss)
// FORGE_LOG     file that receives one line per forgery: "<name> <HTTP status>"
// FORGE_ONLY=1  stop after the forgeries (no real login)
// Everything else (BROWSER_*) goes to test/helpers/browser.mjs, which then does the real login.

import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const url = new URL(process.argv[process.argv.length - 1]);
const redirect = new URL(url.searchParams.get('redirect_uri'));
const state = url.searchParams.get('state');
const forgeries = {
  'wrong-state': { state: 'wrong', code: 'x' },
  'wrong-iss-error': { state, error: 'access_denied', error_description: 'forged', iss: 'https://evil.mcp-auth.invalid' },
  'no-iss-error': { state, error: 'access_denied', error_description: 'forged' },
};
for (const name of (process.env.FORGE || '').split(',').filter(Boolean)) {
  const target = new URL(redirect);
  for (const [k, v] of Object.entries(forgeries[name])) target.searchParams.set(k, v);
  let status;
  try {
    status = (await fetch(target)).status;
  } catch (e) {
    status = `error ${e.message}`;
  }
  if (process.env.FORGE_LOG) appendFileSync(process.env.FORGE_LOG, `${name} ${status}\n`);
}
if (process.env.FORGE_ONLY) process.exit(0);
const child = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'browser.mjs'), url.href], { stdio: 'inherit' });
child.on('exit', (code) => process.exit(code ?? 1));
