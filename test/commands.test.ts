import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, describe, expect, it } from "vitest";
import { registerProfiles, type ProfilesAddOptions } from "../src/commands/profiles.js";
import { registerToken, type TokenOptions } from "../src/commands/token.js";
import { registerLogout, type LogoutCommandOptions } from "../src/commands/logout.js";
import type { Context } from "../src/context.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * In-process tables: flags → options (the parse half of each command), and options + a real IdP →
 * output and exit code (the run half), through createTestContext(). The end-to-end files prove the
 * real binary; these cover the many small cases cheaply.
 */
const sb = useSandbox();
let t: TestContext;
afterEach(() => t?.cleanup());

/** Parses argv with a command's own flags and returns what its run function would receive. */
async function parse<O>(register: (p: Command, getCtx: () => Context, run: (ctx: Context, o: O) => void) => void, argv: string[]): Promise<O> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  let got: O | undefined;
  register(program, () => ({}) as Context, (_ctx, o) => void (got = o));
  await program.parseAsync(argv, { from: "user" });
  if (!got) throw new Error("the command did not run");
  return got;
}

describe("token: flags → options", () => {
  const cases: Array<[string[], Partial<TokenOptions>]> = [
    [["token"], { format: "raw", cache: true }], // --min-ttl and --env-name defaults are applied later (so a given one can be told apart)
    [["token", "-p", "dev", "-f", "json"], { profile: "dev", format: "json" }],
    [["token", "--format=headers-json", "--min-ttl", "0"], { format: "headers-json", minTtl: "0" }],
    [["token", "--no-cache", "--force-refresh"], { cache: false, forceRefresh: true }],
    [["token", "--issuer", "https://idp.mcp-auth.invalid", "--client-id", "ci", "--scope", "a", "b", "--resource", "https://mcp.mcp-auth.invalid/mcp"], { issuer: "https://idp.mcp-auth.invalid", clientId: "ci", scope: ["a", "b"], resource: "https://mcp.mcp-auth.invalid/mcp" }],
    [["token", "--provider", "thunder", "--format", "env", "--env-name", "K8S_TOKEN"], { provider: "thunder", format: "env", envName: "K8S_TOKEN" }],
  ];
  it.each(cases)("%j", async (argv, want) => {
    expect(await parse(registerToken, argv)).toMatchObject(want);
  });

  it("refuses an unknown format", async () => {
    await expect(parse(registerToken, ["token", "--format", "yaml"])).rejects.toThrow(/Allowed choices are raw, json/);
  });
});

describe("profiles add / logout: flags → options", () => {
  it.each<[string[], Partial<ProfilesAddOptions>]>([
    [["profiles", "add", "me", "--issuer", "https://idp.mcp-auth.invalid", "--client-id", "cli"], { name: "me", issuer: "https://idp.mcp-auth.invalid", clientId: "cli", kind: "oidc" }],
    [["profiles", "add", "ci", "--issuer", "https://i.invalid", "--client-id", "c", "--client-secret-env", "S", "--grant", "client_credentials", "--default"], { clientSecretEnv: "S", grant: "client_credentials", default: true }],
    [["profiles", "add", "x", "--issuer", "https://i.invalid", "--client-id", "c", "--scope", "openid", "mcp:read", "--redirect-port", "8765"], { scope: ["openid", "mcp:read"], redirectPort: "8765" }],
  ])("%j", async (argv, want) => {
    const got = await parse<ProfilesAddOptions>((p, g, run) => registerProfiles(p, g, { add: run }), argv);
    expect(got).toMatchObject(want);
  });

  it.each<[string[], Partial<LogoutCommandOptions>]>([
    [["logout"], {}],
    [["logout", "dev", "--revoke", "--force"], { profileArg: "dev", revoke: true, force: true }],
    [["logout", "--all"], { all: true }],
  ])("%j", async (argv, want) => {
    expect(await parse(registerLogout, argv)).toMatchObject(want);
  });
});

describe("profiles: runs", () => {
  const issuer = () => sb.issuer;
  const cases: Array<{ name: string; argv: () => string[]; stdin?: string; code: number; err?: RegExp; out?: RegExp }> = [
    { name: "bad name", argv: () => ["profiles", "add", "../x", "--issuer", issuer(), "--client-id", "c"], code: 2, err: /invalid profile name "\.\.\/x"/ },
    { name: "plain http to a remote host", argv: () => ["profiles", "add", "x", "--issuer", "http://idp.mcp-auth.invalid", "--client-id", "c"], code: 2, err: /refusing plain http:\/\/ for --issuer/ },
    { name: "client credentials without a secret", argv: () => ["profiles", "add", "x", "--issuer", issuer(), "--client-id", "c", "--grant", "client_credentials"], code: 2, err: /client credentials need a client secret/ },
    { name: "empty stdin", argv: () => ["profiles", "add", "x", "--issuer", issuer(), "--client-id", "c", "--client-secret-stdin"], stdin: "", code: 2, err: /nothing was read from standard input/ },
    { name: "both secret sources", argv: () => ["profiles", "add", "x", "--issuer", issuer(), "--client-id", "c", "--client-secret-stdin", "--client-secret-env", "S"], code: 2, err: /pass only one of/ },
    { name: "missing --issuer", argv: () => ["profiles", "add", "x", "--client-id", "c"], code: 2, err: /pass --issuer URL and --client-id ID, or --mcp-url URL to discover them/ },
    { name: "show unknown", argv: () => ["profiles", "show", "nope"], code: 2, err: /no profile named "nope"/ },
    { name: "use unknown", argv: () => ["profiles", "use", "nope"], code: 2, err: /no profile named "nope"/ },
    { name: "remove unknown", argv: () => ["profiles", "remove", "nope"], code: 2, err: /no profile named "nope"/ },
    { name: "empty list", argv: () => ["profiles", "list"], code: 0, out: /^No profiles\./ },
    { name: "a mistyped --flag=value never echoes the value", argv: () => ["token", "--client-secret=Hunter2-secret"], code: 2, err: /unknown option '--client-secret=…'/ },
  ];
  it.each(cases)("$name", async (c) => {
    t = createTestContext({ stdin: c.stdin });
    expect(await t.run(c.argv())).toBe(c.code);
    if (c.err) expect(t.stderr()).toMatch(c.err);
    if (c.out) expect(t.stdout()).toMatch(c.out);
    expect(t.stderr()).not.toContain("Hunter2");
    expect(t.stderr().trim().split("\n").length).toBeLessThanOrEqual(2);
  });

  it("add, show, list, use, remove: the secret goes to the store and never to output", async () => {
    t = createTestContext({ stdin: "sandbox-secret\n" });
    expect(await t.run(["profiles", "add", "m2m", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-stdin", "--resource", sb.mcpUrl])).toBe(0);
    expect(t.stderr()).toContain('Saved profile "m2m" (client_credentials, client secret in the file store).');
    expect(await t.run(["profiles", "add", "me", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--scope", "openid"])).toBe(0);
    expect(await t.run(["profiles", "add", "me", "--issuer", sb.issuer, "--client-id", "sandbox-cli"])).toBe(2);
    expect(t.stderr()).toContain('profile "me" already exists (pass --force to replace it)');
    expect(await t.run(["profiles", "show", "m2m", "--json"])).toBe(0);
    expect(JSON.parse(t.stdout())).toMatchObject({ name: "m2m", clientId: "sandbox-m2m", clientSecret: "stored (file)", grant: "client_credentials" });
    expect(await t.run(["profiles", "use", "me"])).toBe(0);
    expect(JSON.parse(readFileSync(join(t.configDir, "config.json"), "utf8")).defaultProfile).toBe("me");
    const secrets = join(t.configDir, "secrets.json");
    expect(readFileSync(secrets, "utf8")).toContain("client-secret:m2m");
    expect(await t.run(["profiles", "remove", "m2m"])).toBe(0);
    expect(readFileSync(secrets, "utf8")).not.toContain("client-secret:m2m");
    expect(t.stdout() + t.stderr()).not.toContain("sandbox-secret");
  });
});

describe("token: runs", () => {
  const cases: Array<{ name: string; argv: () => string[]; env?: NodeJS.ProcessEnv; code: number; err?: RegExp; out?: RegExp }> = [
    { name: "no profile", argv: () => ["token"], code: 2, err: /no profile configured/ },
    { name: "--issuer without --client-id", argv: () => ["token", "--issuer", sb.issuer], code: 2, err: /--issuer needs --client-id/ },
    { name: "--client-id without --issuer", argv: () => ["token", "--client-id", "x"], code: 2, err: /--client-id only applies with --issuer/ },
    { name: "no secret in the environment", argv: () => ["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m"], code: 2, err: /no client secret: \$MCP_AUTH_CLIENT_SECRET is not set/ },
    { name: "bad --min-ttl", argv: () => ["token", "--min-ttl", "soon"], code: 2, err: /--min-ttl must be a number of seconds/ },
    { name: "github format outside GitHub", argv: () => ["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--format", "github"], env: { MCP_AUTH_CLIENT_SECRET: "sandbox-secret" }, code: 2, err: /--format github needs \$GITHUB_ENV/ },
    { name: "wrong secret", argv: () => ["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m"], env: { MCP_AUTH_CLIENT_SECRET: "wrong-secret-value" }, code: 4, err: /invalid_client/ },
    { name: "profile-less client credentials", argv: () => ["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--resource", sb.mcpUrl, "--format", "json"], env: { MCP_AUTH_CLIENT_SECRET: "sandbox-secret" }, code: 0, out: /^\{"access_token":"eyJ[^"]+","token_type":"Bearer","expires_at":\d+,"expires_in":\d+/ },
  ];
  it.each(cases)("$name", async (c) => {
    t = createTestContext({ env: c.env });
    expect(await t.run(c.argv())).toBe(c.code);
    if (c.err) expect(t.stderr()).toMatch(c.err);
    if (c.out) expect(t.stdout()).toMatch(c.out);
    else expect(t.stdout()).toBe("");
    for (const s of ["sandbox-secret", "wrong-secret-value"]) expect(t.stderr()).not.toContain(s);
  });

  it("a browser profile without a person: exit 4 and the login hint, nothing opened", async () => {
    t = createTestContext();
    await t.run(["profiles", "add", "me", "--issuer", sb.issuer, "--client-id", "sandbox-cli"]);
    expect(await t.run(["token", "-p", "me"])).toBe(4);
    expect(t.stderr()).toMatch(/profile "me" needs a login \(browser\) and this is not an interactive terminal \(run: npx mcp-auth login me\)/);
    expect(t.browsed).toEqual([]);
  });

  it("a cached token is served from the cache on the next run, until the clock passes --min-ttl", async () => {
    t = createTestContext({ stdin: "sandbox-secret" });
    await t.run(["profiles", "add", "m2m", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-stdin", "--resource", sb.mcpUrl]);
    sb.resetCounts();
    expect(await t.run(["token"])).toBe(0);
    const first = t.stdout();
    expect(await t.run(["token"])).toBe(0);
    expect(t.stdout()).toBe(first + first);
    expect(sb.counts.total).toBe(2); // discovery + one token
    t.clock.advance(3570_000); // the sandbox's tokens live an hour: 30 s left, under --min-ttl 60
    expect(await t.run(["token"])).toBe(0);
    expect(sb.counts.total).toBe(3);
    expect(existsSync(join(t.configDir, "tokens", "p-m2m.json"))).toBe(true);
  });
});
