// Bundles src/ with esbuild: dist/fast.cjs (the cached-token fast path, node built-ins only),
// dist/fast-fetch.cjs (a fresh token with node:https alone, loaded only when the cache misses; npm
// packages stay external there, so a lazy import in a shared module can never pull one in) and dist/cli.mjs (the full CLI; npm dependencies stay external and are loaded lazily), then
// completions/ from the built program.
import { readFileSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

const common = { bundle: true, platform: "node", target: "node20", sourcemap: true, logLevel: "warning" };
await Promise.all([
  build({ ...common, entryPoints: ["src/fast.ts"], format: "cjs", outfile: "dist/fast.cjs" }),
  build({ ...common, entryPoints: ["src/fast-fetch.ts"], format: "cjs", outfile: "dist/fast-fetch.cjs", packages: "external" }),
  build({ ...common, entryPoints: ["src/cli.ts"], format: "esm", define: { __VERSION__: JSON.stringify(pkg.version) }, outfile: "dist/cli.mjs", packages: "external", splitting: false }),
]);

// V8 keeps a script's source in memory, one byte per character only if every character is Latin-1:
// a "…" in one of the comments esbuild keeps (its output is otherwise ASCII) doubles what the long-lived
// proxy and serve hold for dist/cli.mjs (~0.8 → ~1.5 MB). One "?" per UTF-16 unit keeps the source map's columns.
const cli = new URL("../dist/cli.mjs", import.meta.url);
writeFileSync(cli, readFileSync(cli, "utf8").replace(/[^\x00-\x7f]/g, "?"));

// Shell completions ship as files too, generated from the same program so they never drift.
const { completionFor } = await import(`../dist/cli.mjs?${Date.now()}`);
const { mkdirSync } = await import("node:fs");
mkdirSync(new URL("../completions/", import.meta.url), { recursive: true });
for (const [shell, file] of [["bash", "mcp-auth.bash"], ["zsh", "_mcp-auth"], ["fish", "mcp-auth.fish"]]) {
  writeFileSync(new URL(`../completions/${file}`, import.meta.url), completionFor(shell));
}
