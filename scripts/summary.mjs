// Prints vitest's JSON results as one plain closing line ("N passed, N failed, N skipped").
import { readFileSync } from "node:fs";

const r = JSON.parse(readFileSync(new URL("../.vitest/results.json", import.meta.url), "utf8"));
console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
process.exitCode = r.numFailedTests > 0 || !r.success ? 1 : 0;
