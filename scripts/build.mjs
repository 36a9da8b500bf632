// Bundles src/ with esbuild: dist/fast.cjs (the cached-token fast path, node built-ins only) and
// dist/cli.mjs (the full CLI; npm dependencies stay external and are loaded lazily).
import { readFileSync } from "node:fs";
import { build } from "esbuild";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

const common = { bundle: true, platform: "node", target: "node20", sourcemap: true, logLevel: "warning" };
await Promise.all([
  build({ ...common, entryPoints: ["src/fast.ts"], format: "cjs", outfile: "dist/fast.cjs" }),
  build({ ...common, entryPoints: ["src/cli.ts"], format: "esm", define: { __VERSION__: JSON.stringify(pkg.version) }, outfile: "dist/cli.mjs", packages: "external", splitting: false }),
]);
