import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { targetFromProfile } from "../src/core/target.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { runCli } from "./helpers/cli.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * Sessions end when the user says so: logout and profiles remove find a profile's refresh token
 * whatever state its cache record is in, and a failed revocation never silently keeps or drops tokens.
 */
const sb = useSandbox();
let t: TestContext;
afterEach(() => t?.cleanup());

const RT = "rt-planted-refresh-token-1234";

/** A browser profile "me" with a refresh token in the file store, as a login leaves it. */
async function withSession(issuer = sb.issuer): Promise<TestContext> {
  const c = createTestContext();
  expect(await c.run(["profiles", "add", "me", "--issuer", issuer, "--client-id", "sandbox-cli", "--allow-http"])).toBe(0);
  const p = c.ctx.config().profiles.me!;
  await c.ctx.tokens.save(targetFromProfile({ name: "me", ...p }), {
    access_token: "at-planted-access-token",
    token_type: "Bearer",
    expires_at: Math.floor(Date.now() / 1000) + 3600,
    refresh_token: RT,
  });
  return c;
}

const secretsOf = (c: TestContext) => readFileSync(join(c.configDir, "secrets.json"), "utf8");
const cli = (c: TestContext, args: string[]) => runCli(args, { PATH: process.env.PATH, HOME: c.env.HOME, MCP_AUTH_CONFIG_DIR: c.configDir, MCP_AUTH_STORE: "file", NO_COLOR: "1" });

describe("logout and profiles remove find the refresh token whatever the cache record says", () => {
  const damage: Array<[string, (file: string) => void]> = [
    ["record missing", (f) => rmSync(f)],
    ["record corrupt", (f) => writeFileSync(f, "{not json")],
    ["record for another target", (f) => writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, "utf8")), identity: '["https://other.mcp-auth.invalid"]' }))],
    ["record without refresh_store", (f) => writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, "utf8")), refresh_store: undefined }))],
  ];

  it.each(damage)("logout: %s", async (_name, spoil) => {
    t = await withSession();
    expect(secretsOf(t)).toContain("refresh-token:p-me");
    spoil(join(t.configDir, "tokens", "p-me.json"));
    const r = await cli(t, ["logout", "me"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Logged out of "me".');
    expect(secretsOf(t)).not.toContain("refresh-token:p-me");
    expect(secretsOf(t)).not.toContain(RT);
    const status = JSON.parse((await cli(t, ["status", "--json"])).stdout);
    expect(status[0]).toMatchObject({ profile: "me", token: "none", refresh_token: null });
  });

  it.each(damage)("profiles remove: %s", async (_name, spoil) => {
    t = await withSession();
    spoil(join(t.configDir, "tokens", "p-me.json"));
    const r = await cli(t, ["profiles", "remove", "me"]);
    expect(r.code, r.stderr).toBe(0);
    expect(secretsOf(t)).not.toContain("refresh-token:p-me");
    expect(existsSync(join(t.configDir, "tokens", "p-me.json"))).toBe(false);
  });
});

describe("logout --revoke when the IdP cannot revoke", () => {
  async function deadIssuer(): Promise<string> {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const port = (s.address() as AddressInfo).port;
    await new Promise((r) => s.close(r));
    return `http://127.0.0.1:${port}`;
  }

  it("without a terminal and without --force: exit 3, the tokens stay, and the way out is named", async () => {
    t = await withSession(await deadIssuer());
    const r = await cli(t, ["logout", "me", "--revoke"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('NOT revoked: the refresh token of "me"');
    expect(r.stderr).toContain('Kept the tokens of "me" on this machine.');
    expect(r.stderr).toMatch(/pass --force to forget them here without revoking/);
    expect(secretsOf(t)).toContain(RT);
  });

  it("with --force: forgotten here, and it says nothing was revoked", async () => {
    t = await withSession(await deadIssuer());
    const r = await cli(t, ["logout", "me", "--revoke", "--force"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('NOT revoked: the refresh token of "me"');
    expect(r.stderr).toContain('Logged out of "me" (forgotten here without revoking).');
    expect(secretsOf(t)).not.toContain(RT);
  });

  it("a 5xx from the revocation endpoint counts as not revoked", async () => {
    t = await withSession();
    // Discovery works (and is cached), then the IdP starts failing.
    const warm = await cli(t, ["token", "-p", "me"]); // fills the discovery cache; the planted token is still valid
    expect(warm.code, warm.stderr).toBe(0);
    sb.breakIdp("500");
    const r = await cli(t, ["logout", "me", "--revoke"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/NOT revoked: the refresh token of "me" \(.*HTTP 500/);
    expect(secretsOf(t)).toContain(RT);
  });

  it.each([
    [true, 0, false],
    [false, 3, true],
  ])("on a terminal the user is asked (answer %s → exit %i, tokens kept: %s)", async (answer, code, kept) => {
    t = await withSession(await deadIssuer());
    // Same config dir as the session, a person at the keyboard.
    const person = createTestContext({ interactive: true, answers: [answer], env: { MCP_AUTH_CONFIG_DIR: t.configDir } });
    try {
      expect(await person.run(["logout", "me", "--revoke"])).toBe(code);
      expect(person.asked).toHaveLength(1);
      expect(person.asked[0]).toMatch(/^Revocation failed \(.*\)\. Forget the tokens of "me" on this machine anyway\?$/);
      expect(secretsOf(t).includes(RT)).toBe(kept);
    } finally {
      person.cleanup();
    }
  });

  it("when it works, says what was revoked", async () => {
    t = await withSession();
    sb.resetCounts();
    const r = await cli(t, ["logout", "me", "--revoke"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Revoked at the IdP: the refresh token and the access token of "me".');
    expect(sb.counts.revocation).toBe(2);
    expect(secretsOf(t)).not.toContain(RT);
  });
});
