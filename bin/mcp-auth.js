#!/usr/bin/env node
"use strict";
// Launcher. CommonJS on purpose: a cached `mcp-auth token` is answered by dist/fast.cjs, and one that
// needs a single request to the IdP by dist/fast-fetch.cjs, before the full CLI (an ES module graph)
// is loaded, so they cost little more than starting Node.
const [major, minor, patch] = process.versions.node.split(".").map(Number);
if (major < 20 || (major === 20 && (minor < 18 || (minor === 18 && patch < 1)))) {
  process.stderr.write(`mcp-auth: Node.js >= 20.18.1 is required (this is ${process.version})\n`);
  process.exit(1);
}
let fast;
try {
  fast = require("../dist/fast.cjs");
} catch {
  process.stderr.write("mcp-auth: not built yet; run `npm install` (or `npm run build`) in the mcp-auth folder\n");
  process.exit(1);
}
// A token served by a fast path is already written (synchronously, fs.writeSync): exit at once rather
// than let Node tear the heap down and wait for the IdP to close its connection; stderr, if a notice
// went there, is flushed first.
let noticed = false;
const served = () => (noticed ? process.stderr.write("", () => process.exit(0)) : process.exit(0));
if (fast.tryCachedToken(process.argv.slice(2), process.env)) served();
else {
  // A miss that needs one request to the IdP (client credentials, a refresh) is tried with node:https
  // alone (dist/fast-fetch.cjs), on the call dist/fast.cjs parsed (no second read of the config);
  // anything unusual, and any error, goes to the full CLI, which reports it. Not a call for the fast
  // paths at all (another command): straight to the full CLI.
  const call = fast.lastCall;
  let fresh;
  try {
    fresh = call ? require("../dist/fast-fetch.cjs") : undefined;
  } catch {
    fresh = undefined;
  }
  const info = (line) => ((noticed = true), process.stderr.write(`${line}\n`));
  Promise.resolve(fresh ? fresh.tryFreshToken(process.argv.slice(2), process.env, { info, call }) : false)
    .catch(() => false)
    .then((ok) => (ok ? served() : runCli()));
}

function runCli() {
  // A reader that closed the pipe (`mcp-auth status | head -1`) is not an error.
  process.stdout.on("error", (e) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  // Exit once the command has settled, whatever handles remain (a proxy that keeps undici busy, a
  // stray socket): flush stdout/stderr first, as process.exit() would not wait for a pending write.
  import("../dist/cli.mjs")
    .then((cli) => cli.run(process.argv.slice(2)))
    .then(() => {
      const code = process.exitCode ?? 0;
      let pending = 2;
      const done = () => --pending === 0 && process.exit(code);
      process.stdout.write("", done);
      process.stderr.write("", done);
    });
}
