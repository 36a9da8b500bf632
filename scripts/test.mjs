// `npm test`: the type check and the dependency rule run beside the test suite instead of before it
// (together they took 13 s of a run, and the suite leaves a core idle at times). The suite builds the
// CLI itself (test/global-setup.ts). Their output is printed after the suite's, only when they fail;
// the exit code is non-zero if any of the three failed.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
function run(cmd, args, quiet) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: quiet ? ["ignore", "pipe", "pipe"] : "inherit" });
    let out = "";
    if (quiet) for (const s of [child.stdout, child.stderr]) s.on("data", (d) => (out += d));
    child.on("close", (code) => resolve({ name: [cmd.split("/").pop(), ...args].join(" "), code, out }));
  });
}

const checks = [run(bin("tsc"), ["--noEmit"], true), run(bin("depcruise"), ["src", "--config", ".dependency-cruiser.cjs"], true)];
const suite = await run(bin("vitest"), ["run", "--reporter=default", "--reporter=json", "--outputFile.json=.vitest/results.json", ...process.argv.slice(2)], false);
let failed = suite.code !== 0;
for (const c of await Promise.all(checks)) {
  if (c.code === 0) continue;
  failed = true;
  console.error(`\n${c.name} failed (exit ${c.code}):\n${c.out}`);
}
try {
  const r = JSON.parse(readFileSync(new URL("../.vitest/results.json", import.meta.url), "utf8"));
  console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
  if (r.numFailedTests > 0 || !r.success) failed = true;
} catch {
  failed = true;
}
process.exitCode = failed ? 1 : 0;
