import { execFileSync } from "node:child_process";
import { join } from "node:path";

/** Tests run the built CLI: build it first (esbuild, well under a second), so a test never runs stale code. */
export default function setup(): void {
  execFileSync(process.execPath, [join(__dirname, "..", "scripts", "build.mjs")], { stdio: "inherit" });
}
