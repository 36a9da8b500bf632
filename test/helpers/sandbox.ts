import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import { startSandbox, type Sandbox, type SandboxOptions } from "../../src/sandbox/server.js";
import type { Sandboxed } from "./cli.js";

/**
 * The product's sandbox (a real oidc-provider + a protected MCP server) for one test file: started
 * before its tests, stopped after, repaired after each test that broke it on purpose. Its device flow
 * asks clients to poll every second (oidc-provider's silence means 5 s), so approved device logins
 * end promptly.
 */
export function useSandbox(opts: SandboxOptions = {}): Sandbox {
  let current: Sandbox | undefined;
  beforeAll(async () => {
    current = await startSandbox({ deviceInterval: 1, ...opts });
  });
  afterAll(async () => {
    await current?.close();
  });
  afterEach(() => current?.breakIdp(undefined));
  return new Proxy({} as Sandbox, {
    get(_target, prop) {
      if (!current) throw new Error("the sandbox is not started yet (use it inside a test)");
      const v = Reflect.get(current, prop);
      return typeof v === "function" ? v.bind(current) : v;
    },
  });
}

/** Makes every cached access token of this user look expired (refresh tokens stay), as of nowMs (the real clock by default). */
export function expireTokens(u: Sandboxed, nowMs = Date.now()): void {
  const dir = join(u.configDir, "tokens");
  for (const f of readdirSync(dir)) {
    const rec = JSON.parse(readFileSync(join(dir, f), "utf8"));
    rec.expires_at = Math.floor(nowMs / 1000) - 1;
    writeFileSync(join(dir, f), JSON.stringify(rec));
  }
}
