import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createContext, type Context } from "../src/context.js";
import { bootstrap } from "../src/core/bootstrap.js";
import { McpAuthError } from "../src/errors.js";
import { defineProvider, type BootstrapResult, type BootstrapRun } from "../src/core/provider.js";
import type { ProfileData } from "../src/profile.js";
import { plugins } from "../src/plugins.js";

/**
 * The bootstrap use case in process, with a fake provider: core (not the provider) saves the
 * profile and its secret, and a secret staged before the IdP learns it survives every failure.
 */
let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function context(): Context {
  dir = mkdtempSync(join(tmpdir(), "mcp-auth-core-"));
  return createContext({ store: "file", nonInteractive: true }, { env: { MCP_AUTH_CONFIG_DIR: dir, HOME: dir, NO_COLOR: "1" }, plugins });
}
const secrets = () => JSON.parse(readFileSync(join(dir!, "secrets.json"), "utf8")).secrets as Record<string, string>;
const DATA: ProfileData = { provider: "fake", issuer: "https://idp.invalid", clientId: "c1", grant: "client_credentials", tokenEndpointAuthMethod: "client_secret_basic" };

function fake(run: (r: BootstrapRun) => Promise<BootstrapResult>) {
  return defineProvider({
    id: "fake",
    title: "Fake",
    summary: "test double",
    inputs: [] as const,
    matches: () => false,
    bootstrap: (_ctx, _input, r) => run(r),
    verify: async () => [{ ok: false, what: "verify", fix: "f" }],
  });
}

describe("core bootstrap", () => {
  it("saves the returned profile with its secret; the provider wrote nothing itself", async () => {
    const ctx = context();
    const out = await bootstrap(ctx, fake(async () => ({ action: "created", profile: DATA, clientSecret: "s1", facts: [], checks: [{ ok: true, what: "own" }] })), {}, { profile: "p", verify: false });
    expect(out.profile).toEqual({ name: "p", data: { ...DATA, secretStore: "file" } });
    expect(ctx.config().profiles.p).toMatchObject({ clientId: "c1", secretStore: "file" });
    expect(secrets()).toEqual({ "client-secret:p": "s1" });
    expect(out.checks).toEqual([{ ok: true, what: "own" }]); // --no-verify: no first token, no verify()
  });

  it("a staged secret is replaced by the profile's once saved", async () => {
    const ctx = context();
    const out = await bootstrap(
      ctx,
      fake(async (r) => {
        await r.vault.stage("new");
        expect(secrets()).toEqual({ "client-secret:p:rotating": "new" });
        return { action: "rotated", profile: DATA, clientSecret: "new", facts: [] };
      }),
      {},
      { profile: "p", verify: false },
    );
    expect(out.result.action).toBe("rotated");
    expect(secrets()).toEqual({ "client-secret:p": "new" });
  });

  it("if saving fails after the IdP took the new secret, the secret stays staged and the error says where", async () => {
    const ctx = context();
    const e = await bootstrap(
      ctx,
      fake(async (r) => {
        await r.vault.stage("live-secret");
        return { action: "rotated", profile: DATA, clientSecret: "live-secret", facts: [] };
      }),
      {},
      { profile: "not a valid name", verify: false },
    ).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(McpAuthError);
    expect((e as Error).message).toMatch(/invalid profile name .*; the new client secret is kept in the secret store as "client-secret:not a valid name:rotating"/);
    expect(secrets()).toEqual({ "client-secret:not a valid name:rotating": "live-secret" });
  });

  it("a secret the IdP never got is unstaged by the provider; nothing is saved", async () => {
    const ctx = context();
    const p = fake(async (r) => {
      await r.vault.stage("x");
      await r.vault.unstage();
      throw new McpAuthError("PUT failed");
    });
    await expect(bootstrap(ctx, p, {}, { profile: "p", verify: false })).rejects.toThrow("PUT failed");
    expect(secrets()).toEqual({});
    expect(ctx.config().profiles).toEqual({});
  });

  it("vault.holds: only the profile being written, only for its client id, only when the secret is really there", async () => {
    const ctx = context();
    const holds = (profile: string, clientId: string) => bootstrap(ctx, fake(async (r) => ({ action: "reused", facts: [["holds", String(await r.vault.holds(clientId))]] })), {}, { profile, verify: false }).then((o) => o.result.facts[0]![1]);
    expect(await holds("p", "c1")).toBe("false");
    await bootstrap(ctx, fake(async () => ({ action: "created", profile: DATA, clientSecret: "s", facts: [] })), {}, { profile: "p", verify: false });
    expect(await holds("p", "c1")).toBe("true");
    expect(await holds("p", "other")).toBe("false");
    expect(await holds("q", "c1")).toBe("false");
  });

  it("verify() runs after the provider's own checks unless --no-verify", async () => {
    const ctx = context();
    const p = fake(async () => ({ action: "configured", facts: [], checks: [{ ok: true, what: "own" }] }));
    expect((await bootstrap(ctx, p, {}, { profile: "p", verify: true })).checks.map((c) => c.what)).toEqual(["own", "verify"]);
    expect((await bootstrap(ctx, p, {}, { profile: "p", verify: false })).checks.map((c) => c.what)).toEqual(["own"]);
  });
});
