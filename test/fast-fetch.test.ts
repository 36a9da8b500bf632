import { execFile, spawn } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { networkInterfaces } from "node:os";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { judgeEndpoint, tryFreshToken } from "../src/fast-fetch.js";
import * as fastCached from "../src/fast.js";
import { discoveryFile } from "../src/oauth/client.js";
import type { ResolvedAddress } from "../src/oauth/http.js";
import { BIN, ROOT } from "./helpers/cli.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * The fresh-token fast path (src/fast-fetch.ts): it serves a client-credentials miss and a refresh
 * against the real sandbox IdP with node:https alone, and steps aside (returns false, prints
 * nothing, changes nothing) for everything it does not handle, so the full CLI answers. "Served" is
 * its return value in-process, and the SERVED marker a preloaded probe reads across the process boundary.
 */
const sb = useSandbox();
let t: TestContext;
afterEach(() => t?.cleanup());

/** A test context on the real clock (the fast path reads Date.now(), so cached discovery must be fresh on it). */
function ctx(env: NodeJS.ProcessEnv = {}): TestContext {
  return createTestContext({ now: Date.now(), env });
}

async function m2m(c: TestContext, extra: string[] = []): Promise<void> {
  expect(await c.run(["profiles", "add", "m2m", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--resource", sb.mcpUrl, "--client-secret-env", "S", ...extra])).toBe(0);
}

/**
 * The cached token records, made to look expired (refresh tokens stay) both to the fast path, which
 * reads the real clock, and to the in-process CLI, whose clock stood still when the context was made.
 */
function expire(c: TestContext): void {
  const dir = join(c.configDir, "tokens");
  for (const f of readdirSync(dir)) {
    const rec = JSON.parse(readFileSync(join(dir, f), "utf8"));
    rec.expires_at = Math.floor(Math.min(Date.now(), c.clock.now()) / 1000) - 1;
    writeFileSync(join(dir, f), JSON.stringify(rec));
  }
}

/** Runs the fast path in-process: whether it served, and what it printed. */
async function fast(c: TestContext, argv: string[], env: NodeJS.ProcessEnv = {}, resolve?: (h: string) => Promise<ResolvedAddress[]>) {
  let out = "";
  const served = await tryFreshToken(argv, { ...c.env, ...env }, { out: (s) => void (out += s), resolve });
  return { served, out };
}

const secrets = (c: TestContext) => JSON.parse(readFileSync(join(c.configDir, "secrets.json"), "utf8")).secrets as Record<string, string>;

/** A browser login of profile "me" (sandbox-cli, refresh tokens rotate) through oidc-provider's own pages. */
async function withSession(): Promise<TestContext> {
  const c = createTestContext({
    now: Date.now(),
    onBrowse: (url) =>
      new Promise<void>((resolve, reject) => execFile(process.execPath, [join(ROOT, "scripts", "bench-browser.mjs"), url], (e) => (e ? reject(e) : resolve()))),
  });
  expect(await c.run(["profiles", "add", "me", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--scope", "openid mcp:read", "--resource", sb.mcpUrl])).toBe(0);
  expect(await c.run(["login", "me"]), c.stderr()).toBe(0);
  expect(secrets(c)["refresh-token:p-me"]).toBeTruthy();
  return c;
}

describe("a token from the IdP without the full CLI", () => {
  it("client credentials, cache miss: one token request, cached as the full path caches it", async () => {
    t = ctx({ S: "sandbox-secret" });
    await m2m(t);
    expect(await t.run(["token"])).toBe(0); // the full path: discovery cached, token cached
    const first = JSON.parse(readFileSync(join(t.configDir, "tokens", "p-m2m.json"), "utf8"));
    expire(t);
    sb.resetCounts();
    const r = await fast(t, ["token", "--format", "json"]);
    expect(r.served).toBe(true);
    expect(sb.counts).toMatchObject({ total: 1, token: 1, discovery: 0 });
    expect(sb.grants).toEqual({ client_credentials: 1 });
    const printed = JSON.parse(r.out);
    const rec = JSON.parse(readFileSync(join(t.configDir, "tokens", "p-m2m.json"), "utf8"));
    expect(printed.access_token).toBe(rec.access_token);
    expect(rec.access_token).not.toBe(first.access_token);
    expect(Object.keys(rec).sort()).toEqual(Object.keys(first).sort()); // the same record shape
    expect(rec.identity).toBe(first.identity);
    // the token is the sandbox's, for the MCP server
    expect(JSON.parse(Buffer.from(rec.access_token.split(".")[1], "base64url").toString())).toMatchObject({ iss: sb.issuer, aud: sb.mcpUrl, client_id: "sandbox-m2m" });
  });

  it("works on the call src/fast.ts parsed (lastCall, handed over by the launcher): the config is not read again", async () => {
    t = ctx({ S: "sandbox-secret" });
    await m2m(t);
    expect(await t.run(["token"])).toBe(0);
    expire(t);
    const env = { ...t.env };
    expect(fastCached.tryCachedToken(["token"], env, () => {})).toBe(false); // expired: a miss
    const call = fastCached.lastCall;
    expect(call).toMatchObject({ profile: { name: "m2m" } });
    rmSync(join(t.configDir, "config.json")); // were it read again, there would be no profile
    sb.resetCounts();
    let out = "";
    expect(await tryFreshToken(["token"], env, { call, out: (s) => void (out += s) })).toBe(true);
    expect(sb.grants).toEqual({ client_credentials: 1 });
    expect(out).toMatch(/^ey/);
    // Not a call for the fast paths (another command): lastCall is null, and nothing is asked.
    expect(fastCached.tryCachedToken(["status"], env, () => {})).toBe(false);
    expect(fastCached.lastCall).toBeNull();
    expect(await tryFreshToken(["token"], env, { call: null })).toBe(false);
    expect(sb.counts.total).toBe(1);
  });

  it("profile-less (--issuer, secret from the environment) is served too, under the same cache entry", async () => {
    t = ctx({ CI_SECRET: "sandbox-secret" });
    const args = ["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "CI_SECRET", "--resource", sb.mcpUrl];
    expect(await t.run(args)).toBe(0);
    const before = readdirSync(join(t.configDir, "tokens"));
    expire(t);
    sb.resetCounts();
    expect((await fast(t, args)).served).toBe(true);
    expect(sb.grants).toEqual({ client_credentials: 1 });
    expect(readdirSync(join(t.configDir, "tokens"))).toEqual(before);
    // another secret is another identity: no cache entry, no discovery problem, but its own request
    sb.resetCounts();
    expect((await fast(t, args, { CI_SECRET: "not-the-secret" })).served).toBe(false); // invalid_client: the full CLI says so
  });

  it("a refresh: the rotated refresh token is saved (secret first, then the record)", async () => {
    t = await withSession();
    const rt = secrets(t)["refresh-token:p-me"];
    expire(t);
    sb.resetCounts();
    const r = await fast(t, ["token", "--profile", "me"]);
    expect(r.served).toBe(true);
    expect(sb.grants).toEqual({ refresh_token: 1 });
    const rotated = secrets(t)["refresh-token:p-me"];
    expect(rotated).toBeTruthy();
    expect(rotated).not.toBe(rt);
    const rec = JSON.parse(readFileSync(join(t.configDir, "tokens", "p-me.json"), "utf8"));
    expect(rec).toMatchObject({ refresh_store: "file", access_token: r.out.trim() });
    // and the rotated one works for the full path
    expire(t);
    expect(await t.run(["token", "--profile", "me"])).toBe(0);
    expect(sb.grants).toEqual({ refresh_token: 2 });
  });

  it.each([["500"], ["html"], ["bad-json"]] as const)("a failed refresh (%s) keeps the refresh token and steps aside for the full CLI's error", async (mode) => {
    t = await withSession();
    const rt = secrets(t)["refresh-token:p-me"];
    const rec = readFileSync(join(t.configDir, "tokens", "p-me.json"), "utf8");
    expire(t);
    const expired = readFileSync(join(t.configDir, "tokens", "p-me.json"), "utf8");
    sb.breakIdp(mode);
    const r = await fast(t, ["token", "--profile", "me"]);
    expect(r).toEqual({ served: false, out: "" });
    expect(secrets(t)["refresh-token:p-me"]).toBe(rt);
    expect(readFileSync(join(t.configDir, "tokens", "p-me.json"), "utf8")).toBe(expired);
    expect(rec).not.toBe(expired);
    // the full CLI then reports it (exit 3, a network-side failure) and the refresh token still survives
    expect(await t.run(["token", "--profile", "me"])).toBe(3);
    expect(secrets(t)["refresh-token:p-me"]).toBe(rt);
  });

  it("a refresh that times out steps aside and keeps the refresh token", async () => {
    t = await withSession();
    const rt = secrets(t)["refresh-token:p-me"];
    expire(t);
    sb.breakIdp("stall");
    expect((await fast(t, ["token", "--profile", "me"], { MCP_AUTH_TIMEOUT: "0.3" })).served).toBe(false);
    expect(secrets(t)["refresh-token:p-me"]).toBe(rt);
  });

  it("parallel callers on an expired cache make one request between them (the cross-process lock)", async () => {
    t = ctx({ S: "sandbox-secret" });
    await m2m(t);
    expect(await t.run(["token"])).toBe(0);
    expire(t);
    sb.resetCounts();
    const results = await Promise.all(Array.from({ length: 6 }, () => fast(t, ["token"])));
    expect(results.every((r) => r.served)).toBe(true);
    expect(new Set(results.map((r) => r.out)).size).toBe(1);
    expect(sb.counts.token).toBe(1);
  });
});

describe("steps aside, printing nothing and asking nobody, for anything it does not handle", () => {
  type Case = [name: string, argv: string[], env: NodeJS.ProcessEnv, setup?: (c: TestContext) => void];
  const editProfile = (c: TestContext, change: (p: Record<string, unknown>) => void) => {
    const file = join(c.configDir, "config.json");
    const cfg = JSON.parse(readFileSync(file, "utf8"));
    change(cfg.profiles.m2m);
    writeFileSync(file, JSON.stringify(cfg));
  };
  const cases: Case[] = [
    ["an unknown flag", ["token", "--bogus"], {}],
    ["--insecure", ["--insecure", "token"], {}],
    ["--ca-file", ["--ca-file", "/etc/ssl/certs/ca-certificates.crt", "token"], {}],
    ["--timeout", ["--timeout", "5", "token"], {}],
    ["--debug", ["--debug", "token"], {}],
    ["--allow-private-network", ["--allow-private-network", "token"], {}],
    ["--force-refresh", ["token", "--force-refresh"], {}],
    ["--no-cache", ["token", "--no-cache"], {}],
    ["--exchange (token exchange)", ["token", "--exchange", "oci-upst"], {}],
    ["--min-ttl (the full CLI warns about short-lived tokens)", ["token", "--min-ttl", "30"], {}],
    ["an invalid MCP_AUTH_TIMEOUT", ["token"], { MCP_AUTH_TIMEOUT: "soon" }],
    ["the memory store", ["token"], { MCP_AUTH_STORE: "memory" }],
    ["access tokens kept in the keychain", ["token"], { MCP_AUTH_ACCESS_TOKEN_STORE: "keychain" }],
    ["a client secret in the keychain", ["token"], {}, (c) => editProfile(c, (p) => (p.secretStore = "keychain"))],
    ["private_key_jwt", ["token"], {}, (c) => editProfile(c, (p) => (p.tokenEndpointAuthMethod = "private_key_jwt"))],
    ["a personal API token", ["token"], {}, (c) => editProfile(c, (p) => (p.extra = { credential: "api-token" }))],
    ["fixed endpoints", ["token"], {}, (c) => editProfile(c, (p) => (p.extra = { tokenEndpoint: `${sb.issuer}/token` }))],
    ["a federated CI token", ["token"], {}, (c) => editProfile(c, (p) => (p.assertion = { from: "env:CI_TOKEN", federation: "client-assertion" }))],
    ["a browser-login profile without a refresh token", ["token"], {}, (c) => editProfile(c, (p) => (p.grant = "authorization_code"))],
    ["no cached discovery document", ["token"], {}, (c) => rmDiscovery(c)],
    ["a stale discovery document", ["token"], { MCP_AUTH_DISCOVERY_TTL: "0" }],
    ["a client secret missing from the store", ["token"], {}, (c) => writeFileSync(join(c.configDir, "secrets.json"), JSON.stringify({ version: 1, secrets: {} }), { mode: 0o600 })],
  ];
  const rmDiscovery = (c: TestContext) => {
    const dir = join(c.configDir, "cache", "discovery");
    for (const f of readdirSync(dir)) writeFileSync(join(dir, f), "{}", { mode: 0o600 });
  };

  it.each(cases)("%s", async (_name, argv, env, setup) => {
    t = ctx({ S: "sandbox-secret" });
    await m2m(t);
    expect(await t.run(["token"])).toBe(0);
    expire(t);
    setup?.(t);
    const files = snapshot(t);
    sb.resetCounts();
    expect(await fast(t, argv, env)).toEqual({ served: false, out: "" });
    expect(sb.counts.total).toBe(0);
    expect(snapshot(t)).toEqual(files);
  });

  it("a proxy is no obstacle for a loopback IdP (loopback never goes through one)", async () => {
    t = ctx({ S: "sandbox-secret" });
    await m2m(t);
    expect(await t.run(["token"])).toBe(0);
    expire(t);
    expect((await fast(t, ["token"], { HTTPS_PROXY: "http://proxy.fast.invalid:3128", HTTP_PROXY: "http://proxy.fast.invalid:3128" })).served).toBe(true);
  });
});

/** Every file of the config dir but the locks, with its content. */
function snapshot(c: TestContext): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== "locks") walk(p);
      } else out[p] = readFileSync(p, "utf8");
    }
  };
  walk(c.configDir);
  return out;
}

/** This machine's own non-loopback address, never a link-local one (as test/ssrf.test.ts). */
function ownAddress(): string | undefined {
  const all = Object.values(networkInterfaces()).flatMap((l) => l ?? []);
  const usable = all.filter((a) => !a.internal && a.family === "IPv4" && !a.address.startsWith("169.254."));
  return usable[0]?.address;
}
const OWN = ownAddress();

describe("the token endpoint the metadata names is held to the issuer's address class", () => {
  const opened: Server[] = [];
  afterEach(() => {
    for (const s of opened.splice(0)) s.close();
  });

  it.skipIf(!OWN)("a metadata token endpoint that resolves to loopback, for an issuer on this machine's network address, is never connected to", async () => {
    // A loopback server counting connections stands in for the internal service.
    let connections = 0;
    const server = createServer((_q, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: "x", token_type: "Bearer" })));
    server.on("connection", () => connections++);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    opened.push(server);
    const port = (server.address() as AddressInfo).port;
    const issuer = "https://idp.fast.invalid";
    t = ctx({ S: "s3cret-value" });
    const resolve = async (h: string): Promise<ResolvedAddress[]> => {
      if (h === "idp.fast.invalid") return [{ address: OWN!, family: 4 }];
      if (h === "internal.fast.invalid") return [{ address: "127.0.0.1", family: 4 }];
      throw Object.assign(new Error(`${h} unknown`), { code: "ENOTFOUND" });
    };
    const args = ["token", "--issuer", issuer, "--client-id", "c", "--client-secret-env", "S"];
    // The discovery document as the full path caches it, naming the internal endpoint (plain http is
    // not even possible here: checkMetadata refuses it for a non-loopback name, so https it is).
    const dir = join(t.configDir, "cache", "discovery");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const metadata = { issuer, token_endpoint: `https://internal.fast.invalid:${port}/token` };
    writeFileSync(discoveryFile(dir, issuer), JSON.stringify({ fetched_at: Date.now(), issuer, metadata }), { mode: 0o600 });
    await expect(judgeEndpoint(issuer, new URL(metadata.token_endpoint), resolve)).rejects.toThrow(/refused/);
    expect(await fast(t, args, {}, resolve)).toEqual({ served: false, out: "" });
    expect(connections).toBe(0);
  });

  it.each([
    ["link-local by name, whatever the issuer", "https://idp.fast.invalid", "https://meta.fast.invalid/token", { "idp.fast.invalid": "127.0.0.1", "meta.fast.invalid": "169.254.169.254" }, false],
    ["a link-local literal", "https://idp.fast.invalid", "https://169.254.169.254/token", { "idp.fast.invalid": "10.0.0.5" }, false],
    ["unspecified", "https://idp.fast.invalid", "https://zero.fast.invalid/token", { "idp.fast.invalid": "127.0.0.1", "zero.fast.invalid": "0.0.0.0" }, false],
    ["private, for a public issuer", "https://idp.fast.invalid", "https://tok.fast.invalid/token", { "idp.fast.invalid": "8.8.8.8", "tok.fast.invalid": "10.1.2.3" }, false],
    ["loopback, for a private issuer", "https://idp.fast.invalid", "https://tok.fast.invalid/token", { "idp.fast.invalid": "10.0.0.5", "tok.fast.invalid": "::1" }, false],
    ["IPv4-mapped loopback, for a public issuer", "https://idp.fast.invalid", "https://[::ffff:127.0.0.1]/token", { "idp.fast.invalid": "8.8.8.8" }, false],
    ["*.localhost, for a public issuer (never asks the resolver)", "https://idp.fast.invalid", "https://evil.localhost/token", { "idp.fast.invalid": "8.8.8.8" }, false],
    ["private, for a private issuer", "https://idp.fast.invalid", "https://tok.fast.invalid/token", { "idp.fast.invalid": "10.0.0.5", "tok.fast.invalid": "192.168.1.9" }, true],
    ["public, for a loopback issuer", "http://127.0.0.1:8080", "https://tok.fast.invalid/token", { "tok.fast.invalid": "8.8.4.4" }, true],
    ["the issuer's own literal address", "http://127.0.0.1:8080", "http://127.0.0.1:8080/token", {}, true],
  ] as const)("%s (decision only, nothing is connected to)", async (_name, issuer, endpoint, names, allowed) => {
    const asked: string[] = [];
    const resolve = async (h: string): Promise<ResolvedAddress[]> => {
      asked.push(h);
      const a = (names as Record<string, string>)[h];
      if (!a) throw Object.assign(new Error(`${h} unknown`), { code: "ENOTFOUND" });
      return [{ address: a, family: a.includes(":") ? 6 : 4 }];
    };
    const verdict = judgeEndpoint(issuer, new URL(endpoint), resolve);
    if (allowed) await expect(verdict).resolves.not.toHaveLength(0);
    else await expect(verdict).rejects.toThrow();
    expect(asked.some((h) => h.endsWith(".localhost"))).toBe(false);
  });
});

describe("through bin/mcp-auth.js", () => {
  /** Runs the built CLI with a preloaded probe that reports what the fast path served. */
  function run(c: TestContext, args: string[]): Promise<{ code: number | null; stdout: string; served: string }> {
    const probe = join(c.env.HOME!, "probe.cjs");
    const report = join(c.env.HOME!, "served");
    writeFileSync(probe, `process.on("exit", () => require("fs").writeFileSync(${JSON.stringify(report)}, String(globalThis[Symbol.for("mcp-auth.fast-fetch.served")])));`);
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ["--require", probe, BIN, ...args], { env: { PATH: process.env.PATH, ...c.env } });
      let stdout = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.on("close", (code) => resolve({ code, stdout, served: readFileSync(report, "utf8") }));
    });
  }

  it("serves a refresh in the launcher, before the full CLI loads; the next call is answered from the cache", async () => {
    t = await withSession();
    expire(t);
    sb.resetCounts();
    const refresh = await run(t, ["token", "--profile", "me"]);
    expect(refresh).toMatchObject({ code: 0, served: "refresh" });
    expect(sb.grants).toEqual({ refresh_token: 1 });
    const cached = await run(t, ["token", "--profile", "me"]);
    expect(cached).toMatchObject({ code: 0, served: "undefined", stdout: refresh.stdout }); // dist/fast.cjs
    expect(sb.counts.total).toBe(1);
  });

  it("serves a client-credentials miss in the launcher", async () => {
    t = ctx({ S: "sandbox-secret" });
    await m2m(t);
    expect(await t.run(["token"])).toBe(0);
    expire(t);
    sb.resetCounts();
    expect(await run(t, ["token"])).toMatchObject({ code: 0, served: "grant" });
    expect(sb.grants).toEqual({ client_credentials: 1 });
  });

  it("loading the bundles costs no node:crypto: it is loaded once the request is out, for the writes after the answer", async () => {
    // A script, not `node -e`, which loads node:crypto itself before running anything.
    const probe = join(ctx().env.HOME!, "modules.cjs");
    writeFileSync(probe, `require(${JSON.stringify(join(ROOT, "dist", "fast.cjs"))}); require(${JSON.stringify(join(ROOT, "dist", "fast-fetch.cjs"))}); process.stdout.write(JSON.stringify(process.moduleLoadList));`);
    const loaded = await new Promise<string[]>((resolve, reject) => execFile(process.execPath, [probe], (e, out) => (e ? reject(e) : resolve(JSON.parse(out) as string[]))));
    expect(loaded).toContain("NativeModule net"); // the probe sees what the bundles load
    expect(loaded.filter((m) => /crypto/.test(m))).toEqual([]);
  });
});
