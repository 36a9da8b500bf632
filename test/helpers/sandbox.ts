import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
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

/**
 * Saves a client-credentials profile for the sandbox's machine client in `u` (the secret through
 * stdin, as a user would), for `resource` and, unless null, the MCP server at `mcpUrl`.
 */
export async function addSandboxClient(u: Sandboxed, sb: Sandbox, o: { name?: string; resource?: string; mcpUrl?: string | null } = {}): Promise<void> {
  const resource = o.resource ?? sb.mcpUrl;
  const mcpUrl = o.mcpUrl === undefined ? sb.mcpUrl : o.mcpUrl;
  const args = ["profiles", "add", o.name ?? "sb", "--issuer", sb.issuer, "--client-id", sb.clients.m2m.clientId, "--grant", "client_credentials", "--client-secret-stdin", "--resource", resource, ...(mcpUrl ? ["--mcp-url", mcpUrl] : [])];
  const r = await u.run(args, { input: `${sb.clients.m2m.clientSecret}\n` });
  expect(r.code, r.stderr).toBe(0);
}
