import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { expireTokens, useSandbox } from "./helpers/sandbox.js";
import { BIN, runCli, runProcess, user, type Sandboxed } from "./helpers/cli.js";
import { inProcessUser, runInProcess } from "./helpers/in-process.js";
import { createTestContext } from "./helpers/context.js";

const sb = useSandbox();
let u: Sandboxed;

afterEach(() => {
  u?.cleanup();
});

// Most cases run in-process (inProcessUser: the launcher's fast paths, then the command tree). The real
// process stays where it is the point: the cached fast path of the binary, parallel processes on one
// lock or one config file, a closed pipe, $GITHUB_ENV written by the real process.
async function addM2m(s: Sandboxed, name = "m2m", extra: string[] = []) {
  const r = await runInProcess(["profiles", "add", name, "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-stdin", "--resource", sb.mcpUrl, ...extra], s.env, "sandbox-secret\n");
  expect(r.stderr).toContain(`Saved profile "${name}"`);
  expect(r.code).toBe(0);
}

/** Puts a lock file for profile "m2m" in place, as a holder would leave it; returns its path. */
function plantLock(s: { configDir: string }, holder: { pid: number; host: string }, ageMs = 0): string {
  mkdirSync(join(s.configDir, "locks"), { recursive: true });
  const lock = join(s.configDir, "locks", "p-m2m.lock");
  writeFileSync(lock, JSON.stringify({ ...holder, at: Date.now() - ageMs }));
  const touched = new Date(Date.now() - ageMs);
  utimesSync(lock, touched, touched);
  return lock;
}

function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
}

describe("client credentials", () => {
  it("costs 2 requests cold, 1 warm, 0 cached — and the token is a real JWT for the MCP server", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    sb.resetCounts();
    const cold = await u.run(["token"]);
    expect(cold.code).toBe(0);
    expect(sb.counts.total).toBe(2); // discovery + token
    const token = cold.stdout.trim();
    expect(cold.stdout).toBe(`${token}\n`);
    expect(jwtPayload(token)).toMatchObject({ iss: sb.issuer, aud: sb.mcpUrl, client_id: "sandbox-m2m" });

    sb.resetCounts();
    const cached = await u.run(["token", "--profile", "m2m"]);
    expect(cached.stdout.trim()).toBe(token);
    expect(sb.counts.total).toBe(0);

    expireTokens(u);
    sb.resetCounts();
    const warm = await u.run(["token"]);
    expect(warm.code).toBe(0);
    expect(warm.stdout.trim()).not.toBe(token);
    expect(sb.counts.total).toBe(1); // discovery came from the cache
    expect(sb.grants).toEqual({ client_credentials: 1 });
  });

  it("prints every format", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    const raw = (await u.run(["token"])).stdout.trim();
    const json = JSON.parse((await u.run(["token", "--format", "json"])).stdout);
    expect(json).toMatchObject({ access_token: raw, token_type: "Bearer", profile: "m2m" });
    expect(json.expires_at - Math.floor(Date.now() / 1000)).toBeGreaterThan(3500);
    expect(json.expires_in).toBeGreaterThan(3500);
    expect((await u.run(["token", "-f", "header"])).stdout).toBe(`Authorization: Bearer ${raw}\n`);
    expect(JSON.parse((await u.run(["token", "--format=headers-json"])).stdout)).toEqual({ Authorization: `Bearer ${raw}` });
    expect((await u.run(["token", "--format", "env", "--env-name", "K8S_TOKEN"])).stdout).toBe(`export K8S_TOKEN='${raw}'\n`);
    const ghEnv = join(u.home, "github_env");
    writeFileSync(ghEnv, "EXISTING=1\n");
    const gh = await runCli(["token", "--format", "github"], { ...u.env, GITHUB_ENV: ghEnv }); // the real process
    expect(gh.stdout).toBe(`::add-mask::${raw}\n`);
    expect(readFileSync(ghEnv, "utf8")).toBe(`EXISTING=1\nMCP_AUTH_TOKEN=${raw}\n`);
    const bad = await u.run(["token", "--format", "yaml"]);
    expect(bad.code).toBe(2);
  });

  it("works without any profile (CI mode) and caches unless --no-cache", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file", CI_SECRET: "sandbox-secret" });
    const args = ["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "CI_SECRET", "--resource", sb.mcpUrl];
    sb.resetCounts();
    const first = await u.run(args);
    expect(first.code).toBe(0);
    expect(jwtPayload(first.stdout.trim()).aud).toBe(sb.mcpUrl);
    const second = await u.run(args);
    expect(second.stdout).toBe(first.stdout);
    expect(sb.counts.token).toBe(1);
    const nocache = await u.run([...args, "--no-cache"]);
    expect(nocache.stdout).not.toBe(first.stdout);
    expect(sb.counts.token).toBe(2);
    // MCP_AUTH_CLIENT_SECRET is the default variable
    const viaDefault = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--resource", sb.mcpUrl, "--no-cache"], { env: { MCP_AUTH_CLIENT_SECRET: "sandbox-secret" } });
    expect(viaDefault.code).toBe(0);
    const missing = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/MCP_AUTH_CLIENT_SECRET is not set/);
    // the cached token is for that secret only: no secret, or another one, never gets it
    const unset = await u.run(args, { env: { CI_SECRET: "" } });
    expect(unset.code).toBe(2);
    const wrong = await u.run(args, { env: { CI_SECRET: "not-the-secret" } });
    expect(wrong.code).toBe(4);
  });

  it("refuses a wrong secret with exit 4 and one line, no stack", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file", BAD: "nope" });
    const r = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "BAD"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error: token request to .* refused: invalid_client/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).not.toContain("nope");
  });

  it("20 parallel calls on an expired cache make exactly one token request, and all succeed", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    await u.run(["token"]);
    expireTokens(u);
    sb.resetCounts();
    const results = await Promise.all(Array.from({ length: 20 }, () => u.run(["token"])));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(new Set(results.map((r) => r.stdout)).size).toBe(1);
    expect(sb.counts.token).toBe(1);
  });

  it("callers waiting together, asking for more life than a token has, still make one request", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    // Hold the lock (as a live process on this host) while they all start, so they really wait together.
    const lock = plantLock(u, { pid: process.pid, host: hostname() });
    sb.resetCounts();
    let waiting = 0;
    const children = Array.from({ length: 8 }, () => {
      const c = spawn(process.execPath, [BIN, "token", "--min-ttl", "7200"], { env: u.env });
      let stderr = "";
      c.stderr.on("data", (d) => {
        stderr += d;
        if (/Waiting for another mcp-auth/.test(String(d))) waiting++;
      });
      return new Promise<{ code: number | null; stderr: string }>((resolve) => c.on("close", (code) => resolve({ code, stderr })));
    });
    // each says so once it has waited 2 s for the lock
    while (waiting < 8) await new Promise((r) => setTimeout(r, 50));
    expect(sb.counts.token).toBe(0);
    rmSync(lock);
    for (const r of await Promise.all(children)) expect(r.code, r.stderr).toBe(0);
    expect(sb.counts.token).toBe(1);
  });

  it("a lock abandoned on another host (a killed CI container) is broken once it goes stale", async () => {
    // In-process, on a clock the waiter moves: the 30 s pass without real waiting.
    const t = createTestContext({ virtualTime: true, now: Date.now(), stdin: "sandbox-secret\n" });
    try {
      expect(await t.run(["profiles", "add", "m2m", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-stdin", "--resource", sb.mcpUrl])).toBe(0);
      expect(t.stderr()).toContain('Saved profile "m2m"');
      // Its old mtime proves nothing (the other host's clock may be off): the waiter watches it stay
      // unchanged for 30 s of its own time.
      plantLock(t, { pid: 1, host: "ci-runner-gone" }, 120_000);
      const started = t.clock.now();
      expect(await t.run(["token"]), t.stderr()).toBe(0);
      expect(t.clock.now() - started).toBeGreaterThanOrEqual(30_000); // not broken before it went stale
    } finally {
      t.cleanup();
    }
  });

  it("a lock left by a crashed process does not block anyone", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    await u.run(["token"]);
    expireTokens(u);
    // pid 2^22+1 cannot exist on Linux (pid_max is at most 2^22)
    plantLock(u, { pid: 4194305, host: hostname() });
    const r = await u.run(["token"], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(0);
  });

  it("--force-refresh gets a new token; --min-ttl decides what counts as fresh", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    const a = await u.run(["token"]);
    sb.resetCounts();
    const b = await u.run(["token", "--force-refresh"]);
    expect(b.stdout).not.toBe(a.stdout);
    expect(sb.counts.token).toBe(1);
    const c = await u.run(["token", "--min-ttl", "7200"]); // longer than the token's life: must fetch
    expect(c.stdout).not.toBe(b.stdout);
    expect(sb.counts.token).toBe(2);
  });

  it("keeps the cache private: 0600 files in a 0700 directory, no secret in the config", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    await u.run(["token"]);
    expect(statSync(u.configDir).mode & 0o777).toBe(0o700);
    for (const f of [join(u.configDir, "config.json"), join(u.configDir, "secrets.json"), ...readdirSync(join(u.configDir, "tokens")).map((f) => join(u.configDir, "tokens", f))]) {
      expect(statSync(f).mode & 0o777, f).toBe(0o600);
    }
    expect(readFileSync(join(u.configDir, "config.json"), "utf8")).not.toContain("sandbox-secret");
  });
});

describe("profiles", () => {
  it("adds, lists, shows (without secrets), selects by provider, and removes with its secrets", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file", SECRET_VAR: "sandbox-secret" });
    await addM2m(u, "one");
    const two = await u.run(["profiles", "add", "two", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "SECRET_VAR", "--kind", "thunder"]);
    expect(two.code).toBe(0);
    const list = await u.run(["profiles", "list", "--json"]);
    expect(JSON.parse(list.stdout).map((p: { name: string }) => p.name)).toEqual(["one", "two"]);
    const show = await u.run(["profiles", "show", "two"]);
    expect(show.stdout).toContain("clientSecret: stored (file)");
    expect(show.stdout).not.toContain("sandbox-secret");
    const byProvider = await u.run(["token", "--provider", "thunder", "--format", "json"]);
    expect(JSON.parse(byProvider.stdout).profile).toBe("two");
    const ambiguous = await u.run(["token", "--provider", "oidc"]);
    expect(ambiguous.code).toBe(0); // only "one" is oidc
    const none = await u.run(["token", "--provider", "keycloak"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("no keycloak profile");
    const envProfile = await u.run(["token", "--format", "json"], { env: { MCP_AUTH_PROFILE: "two" } });
    expect(JSON.parse(envProfile.stdout).profile).toBe("two");
    const dup = await u.run(["profiles", "add", "two", "--issuer", sb.issuer, "--client-id", "x", "--client-secret-env", "SECRET_VAR"]);
    expect(dup.code).toBe(2);
    const rm = await u.run(["profiles", "remove", "two"]);
    expect(rm.code).toBe(0);
    const secrets = readFileSync(join(u.configDir, "secrets.json"), "utf8");
    expect(secrets).not.toContain("client-secret:two");
    expect(secrets).toContain("client-secret:one");
    const missing = await u.run(["token", "--profile", "two"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no profile named "two"');
  });

  it("never accepts a secret on the command line and rejects bad input with exit 2", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const r = await u.run(["profiles", "add", "x", "--issuer", sb.issuer, "--client-id", "c", "--client-secret", "s3cret"]);
    expect(r.code).toBe(2);
    const http = await u.run(["profiles", "add", "x", "--issuer", "http://idp.example.com", "--client-id", "c", "--grant", "authorization_code"]);
    expect(http.code).toBe(2);
    expect(http.stderr).toContain("refusing plain http://");
    const name = await u.run(["profiles", "add", "../x", "--issuer", sb.issuer, "--client-id", "c", "--grant", "authorization_code"]);
    expect(name.code).toBe(2);
    const noSecret = await u.run(["profiles", "add", "x", "--issuer", sb.issuer, "--client-id", "c", "--grant", "client_credentials"]);
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toContain("need a client secret");
  });

  it("parallel profile edits never lose each other's changes", async () => {
    u = user({ MCP_AUTH_STORE: "file", SECRET_VAR: "sandbox-secret" });
    const adds = await Promise.all(
      Array.from({ length: 8 }, (_, i) => u.run(["profiles", "add", `p${i}`, "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "SECRET_VAR"])),
    );
    for (const a of adds) expect(a.code, a.stderr).toBe(0);
    const names = (await u.run(["profiles", "list", "--quiet"])).stdout.trim().split("\n").sort();
    expect(names).toEqual(["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"]);
  });

  it("refuses a config whose profile lacks required fields (exit 5), and closed pipes are fine", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    mkdirSync(u.configDir, { recursive: true });
    writeFileSync(join(u.configDir, "config.json"), JSON.stringify({ profiles: { a: { issuer: "https://x", clientId: "c" } } }));
    const r = await u.run(["profiles", "list"]);
    expect(r.code).toBe(5);
    expect(r.stderr.trim()).toBe(`error: cannot use ${join(u.configDir, "config.json")}: profile "a" has no "provider" (fix or move the file; mcp-auth left it untouched)`);
    const piped = await runProcess("bash", ["-o", "pipefail", "-c", `"${process.execPath}" "${BIN}" --help | true`], u.env);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe("");
  });

  it("refuses an unparsable config with exit 5 and leaves it untouched", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    mkdirSync(u.configDir, { recursive: true });
    const file = join(u.configDir, "config.json");
    writeFileSync(file, "{ this is not json");
    const r = await u.run(["profiles", "add", "x", "--issuer", sb.issuer, "--client-id", "c", "--grant", "authorization_code"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/cannot parse .*config\.json/);
    expect(readFileSync(file, "utf8")).toBe("{ this is not json");
    const t = await u.run(["token"]);
    expect(t.code).toBe(5);
  });
});
