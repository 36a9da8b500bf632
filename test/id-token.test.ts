import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bearerOf } from "../src/core/tokens.js";
import { tryCachedToken } from "../src/fast.js";
import { tryFreshToken } from "../src/fast-fetch.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { devBrowser } from "./helpers/dev-browser.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * `--use-id-token`: the ID token as the bearer (servers behind AWS Cognito / AgentCore), against the
 * real oidc-provider. Access tokens live 2 minutes there, ID tokens an hour (oidc-provider's default),
 * so which expiry drives the cache shows.
 */
const sb = useSandbox({ tokenTtl: 120 });
let tc: TestContext | undefined;
afterEach(() => tc?.cleanup());

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.trim().split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
const profileOf = (c: TestContext, name: string) => JSON.parse(readFileSync(join(c.configDir, "config.json"), "utf8")).profiles[name];

function jwt(payload: Record<string, unknown>): string {
  return `e30.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.c2ln`;
}

describe("bearerOf: which token a target hands out", () => {
  const ts = { access_token: "at", token_type: "Bearer", expires_at: 100, refresh_token: "rt" };
  it("without useIdToken: the access token, untouched", () => {
    expect(bearerOf({ profile: "p" }, { ...ts, id_token: jwt({ exp: 5000 }) })).toMatchObject({ access_token: "at", expires_at: 100 });
  });
  it("with useIdToken: the ID token until its own exp; the refresh token stays", () => {
    const id = jwt({ exp: 5000 });
    expect(bearerOf({ profile: "p", useIdToken: true }, { ...ts, id_token: id })).toMatchObject({ access_token: id, expires_at: 5000, refresh_token: "rt" });
  });
  it.each([
    [undefined, "the IdP returned no ID token"],
    [jwt({ sub: "x" }), "the ID token has no exp claim"],
    ["not-a-jwt", "the ID token has no exp claim"],
  ])("id_token %j: an error naming the openid scope", (id, why) => {
    expect(() => bearerOf({ profile: "p", useIdToken: true }, { ...ts, id_token: id })).toThrow(why);
    expect(() => bearerOf({ profile: "p", useIdToken: true }, { ...ts, id_token: id })).toThrow(/--use-id-token/);
  });
});

describe("profiles add/set --use-id-token", () => {
  const add = ["profiles", "add", "p", "--issuer", "https://idp.invalid", "--client-id", "c"];
  it.each([
    [["--grant", "authorization_code", "--scope", "mcp:read"], ["openid", "mcp:read"]],
    [["--grant", "authorization_code", "--scope", "openid", "email"], ["openid", "email"]],
    [["--grant", "device_code"], ["openid"]],
  ])("%j: stored, and openid is asked for (%j)", async (flags, scopes) => {
    tc = createTestContext();
    expect(await tc.run([...add, ...flags, "--use-id-token"]), tc.stderr()).toBe(0);
    expect(profileOf(tc, "p")).toMatchObject({ useIdToken: true, scopes });
  });

  it("client credentials yield no ID token: exit 2 (profiles add, and token --use-id-token)", async () => {
    tc = createTestContext({ env: { S: "x" } });
    expect(await tc.run([...add, "--client-secret-env", "S", "--use-id-token"])).toBe(2);
    expect(tc.stderr()).toContain("--use-id-token needs a person's sign-in");
    expect(await tc.run([...add, "--client-secret-env", "S"])).toBe(0);
    expect(await tc.run(["token", "--profile", "p", "--use-id-token"])).toBe(2);
  });

  it("profiles set --use-id-token / --no-use-id-token", async () => {
    tc = createTestContext();
    expect(await tc.run([...add, "--grant", "authorization_code"])).toBe(0);
    expect(await tc.run(["profiles", "set", "p", "--use-id-token"]), tc.stderr()).toBe(0);
    expect(profileOf(tc, "p")).toMatchObject({ useIdToken: true, scopes: ["openid"] });
    expect(await tc.run(["profiles", "set", "p", "--no-use-id-token"]), tc.stderr()).toBe(0);
    expect(profileOf(tc, "p").useIdToken).toBeUndefined();
  });
});

describe("the ID token as the bearer, from oidc-provider", () => {
  async function signedIn(extra: string[]): Promise<TestContext> {
    const c = createTestContext({ now: Date.now(), onBrowse: devBrowser() });
    expect(await c.run(["profiles", "add", "me", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--scope", "openid mcp:read", "--resource", sb.mcpUrl, ...extra])).toBe(0);
    expect(await c.run(["login", "me"]), c.stderr()).toBe(0);
    return c;
  }
  const printed = async (c: TestContext, argv: string[]) => {
    const before = c.stdout().length;
    expect(await c.run(argv), c.stderr()).toBe(0);
    return c.stdout().slice(before);
  };

  it("token hands out the ID token; its own exp, not the access token's, drives the refresh", async () => {
    sb.resetCounts();
    tc = await signedIn(["--use-id-token"]);
    const first = JSON.parse(await printed(tc, ["token", "--format", "json"]));
    const c = claims(first.access_token);
    expect(c).toMatchObject({ iss: sb.issuer, aud: "sandbox-cli", sub: "alice" }); // an ID token: audience is the client
    expect(first.expires_at).toBe(c.exp);
    expect((c.exp as number) - (c.iat as number)).toBeGreaterThan(120); // outlives the access token
    // Past the access token's 2 minutes: the ID token is still good, nothing is asked.
    tc.clock.advance(10 * 60_000);
    expect(JSON.parse(await printed(tc, ["token", "--format", "json"])).access_token).toBe(first.access_token);
    expect(sb.grants.refresh_token).toBeUndefined();
    // Past the ID token's exp: one refresh, a new ID token.
    tc.clock.advance(((c.exp as number) - (c.iat as number)) * 1000);
    const next = JSON.parse(await printed(tc, ["token", "--format", "json"]));
    expect(sb.grants.refresh_token).toBe(1);
    // (within the same second oidc-provider signs the same claims, so the new token may equal the old one)
    expect(claims(next.access_token)).toMatchObject({ aud: "sandbox-cli", sub: "alice" });
  });

  it("the fast paths: the cached ID token is served from the cache; a miss goes to the full CLI", async () => {
    tc = await signedIn(["--use-id-token"]);
    const full = (await printed(tc, ["token"])).trim();
    let out = "";
    expect(tryCachedToken(["token", "--profile", "me"], tc.env, (s) => void (out += s))).toBe(true);
    expect(out.trim()).toBe(full);
    expect(claims(out).aud).toBe("sandbox-cli");
    // The fresh-token path never refreshes such a profile (it would cache the access token).
    sb.resetCounts();
    expect(await tryFreshToken(["token", "--profile", "me", "--force-refresh"], tc.env, { out: () => undefined })).toBe(false);
    expect(await tryFreshToken(["token", "--profile", "me"], { ...tc.env, MCP_AUTH_TIMEOUT: "5" }, { out: () => undefined })).toBe(false);
    expect(sb.counts.token).toBe(0);
  });

  it("token --use-id-token on an ordinary profile prints the ID token once; plain token the access token again", async () => {
    tc = await signedIn([]);
    const at = (await printed(tc, ["token"])).trim();
    expect(claims(at).aud).toBe(sb.mcpUrl);
    let out = "";
    expect(tryCachedToken(["token", "--use-id-token"], tc.env, (s) => void (out += s))).toBe(false); // a flag the fast path leaves to the CLI
    const before = tc.stderr().length;
    const code = await tc.run(["token", "--use-id-token"]);
    expect(code, tc.stderr().slice(before)).toBe(0);
    const id = tc.stdout().split("\n").filter(Boolean).at(-1)!;
    expect(claims(id)).toMatchObject({ aud: "sandbox-cli", sub: "alice" });
    expect(claims((await printed(tc, ["token"])).trim()).aud).toBe(sb.mcpUrl);
  });
});
