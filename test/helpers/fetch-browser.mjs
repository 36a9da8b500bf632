#!/usr/bin/env node
// Test-only "browser command" for servers whose authorization endpoint approves at once (a signed-in
// user, as the OctoPerf simulator plays it): follows the redirects to the loopback callback and prints
// the final page's status to stderr. Exit 0 when the callback answered 200.
const url = process.argv[process.argv.length - 1];
try {
  const res = await fetch(url, { redirect: "follow" });
  const text = await res.text();
  process.stderr.write(`[fetch-browser] ${res.status} ${text.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim().slice(0, 200)}\n`);
  process.exit(res.status === 200 ? 0 : 1);
} catch (e) {
  process.stderr.write(`[fetch-browser] FAILED: ${e.message}\n`);
  process.exit(1);
}
