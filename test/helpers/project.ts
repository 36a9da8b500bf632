import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { createTestContext, type TestContext, type TestContextOptions } from "./context.js";

/** Where the tests started: leaveProject() goes back here. */
const startDir = process.cwd();

/** `profiles add` arguments of the profile most add-client tests use. */
export const DEV_K8S = ["dev.k8s", "--issuer", "https://idp.example.invalid", "--client-id", "cli", "--mcp-url", "https://mcp.example.invalid/mcp"];

/**
 * A test context whose working directory is a project folder in its own temporary HOME, where an
 * add-client for project scope writes, with each of `profiles` (the arguments of `profiles add`)
 * saved. Pair with leaveProject() in afterEach.
 */
export async function enterProject(profiles: string[][] = [DEV_K8S], o: TestContextOptions = {}): Promise<{ t: TestContext; home: string; proj: string }> {
  const t = createTestContext(o);
  const home = t.env.HOME!;
  const proj = join(home, "proj");
  mkdirSync(proj);
  process.chdir(proj);
  for (const args of profiles) expect(await t.run(["profiles", "add", ...args]), t.stderr()).toBe(0);
  return { t, home, proj };
}

export function leaveProject(t: TestContext | undefined): void {
  process.chdir(startDir);
  t?.cleanup();
}
