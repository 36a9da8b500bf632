import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createTestContext } from "./helpers/context.js";
import { BIN, ROOT, runProcess, user, type Sandboxed } from "./helpers/cli.js";
import { inProcessUser, runInProcess } from "./helpers/in-process.js";
import { fakeJwt, GOOD_TOKEN, useHostileIdp } from "./helpers/hostile-idp.js";
import { useSandbox } from "./helpers/sandbox.js";
import { configure, toTokenSet, type OAuthEnv } from "../src/oauth/client.js";
import { formatToken, githubEnvLine, shellQuote, type Format } from "../src/format.js";

/**
 * The OAuth protocol layer against servers that lie: tokens that are shell code, absurd lifetimes,
 * metadata pointing elsewhere, stalls, forged login redirects.
 */
const idp = useHostileIdp();
const sb = useSandbox();
const SECRET = "hostile-test-client-secret-7731";
let u: Sandboxed;
let tmp: string | undefined;
afterEach(() => {
  u?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
});

// Most cases run in-process (the launcher's fast paths, then the command tree); the ones about the
// real binary, a real shell's eval or $GITHUB_ENV written by the real process start it (ciProcess).
function ci(extra: NodeJS.ProcessEnv = {}): Sandboxed {
  return (u = inProcessUser({ MCP_AUTH_STORE: "file", MCP_AUTH_CLIENT_SECRET: SECRET, ...extra }));
}
function ciProcess(extra: NodeJS.ProcessEnv = {}): Sandboxed {
  return (u = user({ MCP_AUTH_STORE: "file", MCP_AUTH_CLIENT_SECRET: SECRET, ...extra }));
}
const adHoc = () => ["token", "--issuer", idp.issuer, "--client-id", "ci"];
const cachedFiles = (s: Sandboxed) => (existsSync(join(s.configDir, "tokens")) ? readdirSync(join(s.configDir, "tokens")) : []);
const discoveryFiles = (s: Sandboxed) => (existsSync(join(s.configDir, "discovery")) ? readdirSync(join(s.configDir, "discovery")) : []);
function cachedRecord(s: Sandboxed): { expires_at: number; access_token?: string } {
  const [f] = cachedFiles(s);
  return JSON.parse(readFileSync(join(s.configDir, "tokens", f!), "utf8"));
}

describe("tokens that a shell or CI runner would interpret", () => {
  const marker = () => join((tmp ??= mkdtempSync(join(tmpdir(), "mcp-auth-marker-"))), "pwned");
  const hostile = (m: string) => [
    `abc;touch ${m}`,
    `abc$(touch ${m})`,
    `abc\`touch ${m}\``,
    `abc' ; touch ${m} ; '`,
    `abc\nNODE_OPTIONS=--require=/nonexistent\ntouch ${m}`,
    `abc def`,
  ];

  it("eval \"$(mcp-auth token --format env)\" runs nothing and the token is refused with exit 3", async () => {
    const m = marker();
    // End to end once: the real binary's output, eval'd by a real shell.
    ciProcess();
    idp.token = () => ({ body: { access_token: hostile(m)[1]!, token_type: "Bearer", expires_in: 300 } });
    const script = `out="$("$0" "$1" token --issuer "$2" --client-id ci --format env)"; rc=$?; eval "$out"; exit $rc`;
    const sh = await runProcess("/bin/sh", ["-c", script, process.execPath, BIN, idp.issuer], u.env);
    expect(existsSync(m), "ran code from the real binary's output").toBe(false);
    expect(sh.code, sh.stderr).toBe(3);
    expect(sh.stderr).toContain("malformed response");
    expect(sh.stderr).toContain("access_token");
    expect(sh.stderr).not.toContain("touch");
    expect(sh.stdout).toBe("");
    expect(cachedFiles(u)).toEqual([]);
    u.cleanup();
    // Every hostile token: the CLI in-process, its stdout eval'd by a real shell.
    for (const token of hostile(m)) {
      ci();
      idp.token = () => ({ body: { access_token: token, token_type: "Bearer", expires_in: 300 } });
      const r = await u.run([...adHoc(), "--format", "env"]);
      const evald = await runProcess("/bin/sh", ["-c", `eval "$1"`, "sh", r.stdout], { PATH: process.env.PATH });
      expect(existsSync(m), `ran code from ${JSON.stringify(token)}`).toBe(false);
      expect(evald.code).toBe(0);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain("malformed response");
      expect(r.stderr).toContain("access_token");
      expect(r.stderr).not.toContain("touch");
      expect(r.stdout).toBe("");
      expect(cachedFiles(u)).toEqual([]); // never cached either
      u.cleanup();
    }
  });

  it("--format github never writes a second variable to $GITHUB_ENV", async () => {
    const m = marker();
    // End to end once: $GITHUB_ENV as the real process leaves it.
    ciProcess();
    const realEnv = join(u.home, "github_env");
    writeFileSync(realEnv, "");
    idp.token = () => ({ body: { access_token: hostile(m)[4]!, token_type: "Bearer", expires_in: 300 } });
    const real = await u.run([...adHoc(), "--format", "github"], { env: { GITHUB_ENV: realEnv } });
    expect(real.code, real.stderr).toBe(3);
    expect(readFileSync(realEnv, "utf8")).toBe("");
    expect(real.stdout).toBe("");
    u.cleanup();
    for (const token of hostile(m)) {
      ci();
      const ghEnv = join(u.home, "github_env");
      writeFileSync(ghEnv, "");
      idp.token = () => ({ body: { access_token: token, token_type: "Bearer", expires_in: 300 } });
      const r = await u.run([...adHoc(), "--format", "github"], { env: { GITHUB_ENV: ghEnv } });
      expect(r.code, r.stderr).toBe(3);
      expect(readFileSync(ghEnv, "utf8")).toBe("");
      expect(r.stdout).toBe("");
      u.cleanup();
    }
  });

  // (an id_token that is not a JWT is already refused by openid-client; toTokenSet's table covers ours)
  it("refresh tokens with spaces or control characters are refused, naming the field", async () => {
    for (const [field, value] of [["refresh_token", "rt with space"], ["refresh_token", "rt\nNODE_OPTIONS=x"], ["refresh_token", "rt\u001b]0;x\u0007"]] as const) {
      ci();
      idp.token = () => ({ body: { access_token: GOOD_TOKEN, token_type: "Bearer", expires_in: 300, [field]: value } });
      const r = await u.run(adHoc());
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(field);
      expect(r.stderr).not.toContain(value);
      u.cleanup();
    }
  });

  it("a well-formed token is printed, quoted for the shell", async () => {
    ci();
    const token = "abc-._~+/DEF0123==";
    idp.token = () => ({ body: { access_token: token, token_type: "bearer", expires_in: 300 } });
    const r = await u.run([...adHoc(), "--format", "env"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`export MCP_AUTH_TOKEN='${token}'\n`);
    const sh = await runProcess("/bin/sh", ["-c", `eval "$("$0" "$1" token --issuer "$2" --client-id ci --format env)"; printf %s "$MCP_AUTH_TOKEN"`, process.execPath, BIN, idp.issuer], u.env);
    expect(sh.stdout).toBe(token); // also from the cached fast path
  });

  it("a tampered cached token is not served by the fast path (the full CLI gets a new one)", async () => {
    ci();
    expect((await u.run(adHoc())).code).toBe(0);
    const [f] = cachedFiles(u);
    const file = join(u.configDir, "tokens", f!);
    const rec = JSON.parse(readFileSync(file, "utf8"));
    rec.access_token = "x$(touch /nonexistent/pwned)";
    writeFileSync(file, JSON.stringify(rec), { mode: 0o600 });
    const r = await u.run([...adHoc(), "--format", "env"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`export MCP_AUTH_TOKEN='${GOOD_TOKEN}'\n`);
  });
});

describe("formatToken (defence in depth, also on the cached fast path)", () => {
  const opts = (env: NodeJS.ProcessEnv = {}) => ({ now: 1000, env });
  const odd = ["a;b", "a$(b)", "a`b`", "a'b", 'a"b', "a b", "a\nB=c", "a\rb", "a\u001b]0;x\u0007", "é", "", "a=b"];

  it.each(odd)("refuses %j in every format", (token) => {
    for (const f of ["raw", "json", "header", "headers-json", "env"] as Format[]) {
      expect(() => formatToken({ access_token: token, profile: null }, f, opts())).toThrow(/malformed/);
    }
  });

  it("refuses a token type other than Bearer", () => {
    expect(() => formatToken({ access_token: "abc", token_type: "DPoP", profile: null }, "header", opts())).toThrow(/DPoP/);
    expect(formatToken({ access_token: "abc", token_type: "bEaReR", profile: null }, "header", opts())).toBe("Authorization: Bearer abc\n");
  });

  it.each([
    ["abc", "'abc'"],
    ["a'b", "'a'\\''b'"],
    ["$(x)", "'$(x)'"],
    ["a\nb", "'a\nb'"],
  ])("shellQuote(%j) = %s", (input, quoted) => {
    expect(shellQuote(input)).toBe(quoted);
  });

  it("the shell-quoted value evaluates to itself in a real sh", async () => {
    for (const v of ["a'b", "$(touch /nonexistent/x)", "`id`", "a\nb;c", "\\'\""]) {
      const r = await runProcess("/bin/sh", ["-c", `eval "X=${shellQuote(v).replace(/[\\"$`]/g, "\\$&")}"; printf %s "$X"`], { PATH: process.env.PATH });
      expect(r.stdout).toBe(v);
    }
  });

  it("githubEnvLine refuses line breaks and a bad name", () => {
    expect(githubEnvLine("T", "abc")).toBe("T=abc\n");
    expect(() => githubEnvLine("T", "a\nB=c")).toThrow();
    expect(() => githubEnvLine("T", "a\rB=c")).toThrow();
    expect(() => githubEnvLine("T\nX", "a")).toThrow();
  });

  it("prints well-formed tokens in every format", () => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-auth-gh-"));
    const ghEnv = join(dir, "env");
    const t = { access_token: "eyJ.a-b_c.~+/==", token_type: "Bearer", expires_at: 1300, profile: null };
    expect(formatToken(t, "raw", opts())).toBe("eyJ.a-b_c.~+/==\n");
    expect(formatToken(t, "header", opts())).toBe("Authorization: Bearer eyJ.a-b_c.~+/==\n");
    expect(JSON.parse(formatToken(t, "headers-json", opts()))).toEqual({ Authorization: "Bearer eyJ.a-b_c.~+/==" });
    expect(formatToken(t, "env", opts())).toBe("export MCP_AUTH_TOKEN='eyJ.a-b_c.~+/=='\n");
    expect(formatToken(t, "github", opts({ GITHUB_ENV: ghEnv }))).toBe("::add-mask::eyJ.a-b_c.~+/==\n");
    expect(readFileSync(ghEnv, "utf8")).toBe("MCP_AUTH_TOKEN=eyJ.a-b_c.~+/==\n");
    rmSync(dir, { recursive: true });
  });
});

describe("toTokenSet", () => {
  const now = 1_700_000_000_000;
  const nowS = now / 1000;
  const res = (o: Record<string, unknown>) => ({ access_token: "abc", token_type: "bearer", ...o }) as never;

  it.each([
    ["a sane expires_in", { expires_in: 3600 }, nowS + 3600],
    ["an absurd expires_in (capped at 24 h)", { expires_in: 1e15 }, nowS + 86400],
    ["no expires_in (5 min)", {}, nowS + 300],
    ["a negative expires_in (unknown)", { expires_in: -5 }, nowS + 300],
    ["NaN (unknown)", { expires_in: NaN }, nowS + 300],
    ["a JWT whose exp is sooner", { access_token: fakeJwt({ exp: nowS + 600 }), expires_in: 1e15 }, nowS + 600],
    ["a JWT exp beyond 24 h, no expires_in", { access_token: fakeJwt({ exp: nowS + 7 * 86400 }) }, nowS + 7 * 86400],
    ["a JWT without exp", { access_token: fakeJwt({ sub: "x" }), expires_in: 1e9 }, nowS + 86400],
  ])("%s", (_name, o, expiresAt) => {
    expect(toTokenSet(res(o), now).expires_at).toBe(expiresAt);
  });

  it.each([
    [{ access_token: "a".repeat(64 * 1024 + 1) }, /access_token.*64 KB/],
    [{ access_token: "a b" }, /access_token/],
    [{ token_type: "dpop" }, /DPoP/],
    [{ token_type: "mac" }, /"mac"/],
    [{ refresh_token: "r\u0000" }, /refresh_token/],
    [{ id_token: "x".repeat(64 * 1024 + 1) }, /id_token/],
  ])("refuses %#", (o, msg) => {
    expect(() => toTokenSet(res(o), now)).toThrow(msg);
  });
});

describe("absurd sizes and lifetimes from the token endpoint", () => {
  it("a token longer than 64 KB is refused, not cached (exit 3)", async () => {
    ci();
    idp.token = () => ({ body: { access_token: "A".repeat(70 * 1024), token_type: "Bearer", expires_in: 300 } });
    const r = await u.run(adHoc());
    expect(r.code, r.stderr.slice(0, 500)).toBe(3);
    expect(r.stderr).toContain("64 KB");
    expect(r.stderr.length).toBeLessThan(2000);
    expect(cachedFiles(u)).toEqual([]);
  });

  it("expires_in: 1e15 is cached for at most 24 h; a JWT is cached until its exp", async () => {
    ci();
    idp.token = () => ({ body: { access_token: GOOD_TOKEN, token_type: "Bearer", expires_in: 1e15 } });
    expect((await u.run(adHoc())).code).toBe(0);
    expect(cachedRecord(u).expires_at).toBeLessThanOrEqual(Date.now() / 1000 + 86400 + 1);
    u.cleanup();

    ci();
    const exp = Math.floor(Date.now() / 1000) + 600;
    idp.token = () => ({ body: { access_token: fakeJwt({ exp }), token_type: "Bearer", expires_in: 1e15 } });
    expect((await u.run(adHoc())).code).toBe(0);
    expect(cachedRecord(u).expires_at).toBe(exp);
  });

  it("a negative expires_in is a malformed response (exit 3), not a token cached forever", async () => {
    ci();
    idp.token = () => ({ body: { access_token: GOOD_TOKEN, token_type: "Bearer", expires_in: -5 } });
    const r = await u.run(adHoc());
    expect(r.code, r.stderr).toBe(3);
    expect(cachedFiles(u)).toEqual([]);
  });
});

describe("metadata that cannot be used", () => {
  it("no token_endpoint: exit 3, nothing cached, and the fixed server works on the next run", async () => {
    ci();
    idp.metadata.token_endpoint = undefined;
    const r = await u.run(adHoc());
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("token_endpoint");
    expect(discoveryFiles(u)).toEqual([]);
    idp.metadata.token_endpoint = `${idp.issuer}/token`;
    const fixed = await u.run(adHoc());
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toBe(`${GOOD_TOKEN}\n`);
  });

  it.each(["not a url", "ftp://127.0.0.1/token", "https://u:p@127.0.0.1/token", "https://127.0.0.1/token#x"])("token_endpoint %j: exit 3", async (te) => {
    ci();
    idp.metadata.token_endpoint = te;
    const r = await u.run(adHoc());
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("token_endpoint");
    expect(discoveryFiles(u)).toEqual([]);
  });

  it("a DPoP token type is refused with exit 3, naming it", async () => {
    ci();
    idp.token = () => ({ body: { access_token: GOOD_TOKEN, token_type: "DPoP", expires_in: 300 } });
    const r = await u.run([...adHoc(), "--format", "header"]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("DPoP");
    expect(r.stdout).toBe("");
    expect(cachedFiles(u)).toEqual([]);
  });

  it("an unknown token type is refused with exit 3, naming it", async () => {
    ci();
    idp.token = () => ({ body: { access_token: GOOD_TOKEN, token_type: "MAC", expires_in: 300 } });
    const r = await u.run(adHoc());
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/token type "mac"/i);
  });
});

describe("device login answers", () => {
  it.each([
    [{ verification_uri: "javascript:alert(1)" }, "verification_uri"],
    [{ verification_uri_complete: "https://idp.example.com/a\u001b]0;owned\u0007" }, "verification_uri_complete"],
    [{ user_code: "AB\u001b[2JCD" }, "user_code"],
  ])("a hostile %j is refused (exit 3) before it is shown", async (o, field) => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    idp.metadata.device_authorization_endpoint = `${idp.issuer}/device`;
    const good = idp.device() as Record<string, unknown>;
    idp.device = () => ({ ...good, ...o });
    expect((await u.run(["profiles", "add", "d", "--issuer", idp.issuer, "--client-id", "c", "--grant", "device_code"])).code).toBe(0);
    const r = await u.run(["login", "d", "--device", "--login-timeout", "5"]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(field);
    expect(r.stderr).not.toContain("\u001b");
    expect(r.stderr).not.toContain("javascript:");
  });
});

describe("endpoints from metadata each follow the https/loopback rule", () => {
  it("logout --revoke never sends the client secret to a plain-http revocation endpoint elsewhere", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file", S: SECRET, MCP_AUTH_DISCOVERY_TTL: "0" });
    expect((await u.run(["profiles", "add", "p", "--issuer", idp.issuer, "--client-id", "ci", "--client-secret-env", "S"])).code).toBe(0);
    idp.token = () => ({ body: { access_token: GOOD_TOKEN, token_type: "Bearer", expires_in: 300, refresh_token: "rt-0123" } });
    expect((await u.run(["token"])).code).toBe(0);
    idp.metadata.revocation_endpoint = "http://revoke.mcp-auth.invalid/revoke";
    const r = await u.run(["logout", "--revoke", "--debug"]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("revocation_endpoint");
    expect(r.stderr).not.toMatch(/> POST http:\/\/revoke\.mcp-auth\.invalid/);
    expect(r.stderr).not.toContain("cannot reach");
    expect(r.stderr).not.toContain(SECRET);
    expect(cachedFiles(u)).toHaveLength(1); // kept: nothing was revoked
  });

  it.each(["revocation_endpoint", "device_authorization_endpoint", "authorization_endpoint", "jwks_uri", "registration_endpoint", "introspection_endpoint", "userinfo_endpoint"])(
    "a plain-http %s elsewhere is refused (exit 3) unless --allow-http",
    async (field) => {
      ci();
      idp.metadata[field] = `http://elsewhere.mcp-auth.invalid/${field}`;
      const r = await u.run(adHoc());
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(field);
      expect(r.stderr).toContain("--allow-http");
      expect(discoveryFiles(u)).toEqual([]);
      const allowed = await u.run([...adHoc(), "--allow-http"]);
      expect(allowed.code, allowed.stderr).toBe(0);
    },
  );
});

describe("issuer and MCP server URLs", () => {
  const PW = "s3cr3t-pw-9917";
  it.each([`http://admin:${PW}@127.0.0.1:9/`, `https://admin:${PW}@idp.mcp-auth.invalid/`, `https://idp.mcp-auth.invalid/?x=${PW}`, `https://idp.mcp-auth.invalid/#${PW}`, `http://admin:${PW}@bad host/`])(
    "profiles add --issuer %s: exit 2, the password never echoed",
    async (issuer) => {
      u = inProcessUser({ MCP_AUTH_STORE: "file" });
      const r = await u.run(["profiles", "add", "p", "--issuer", issuer, "--client-id", "c"]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain("issuer");
      expect(r.stderr).not.toContain(PW);
      expect(existsSync(join(u.configDir, "config.json"))).toBe(false);
    },
  );

  it("token --issuer with userinfo: exit 2, nothing sent, the password never echoed", async () => {
    ci();
    const r = await u.run(["token", "--issuer", `http://admin:${PW}@${idp.issuer.slice("http://".length)}`, "--client-id", "ci"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).not.toContain(PW);
    expect(idp.requests).toEqual([]);
  });

  it("MCP server URLs: userinfo and fragments refused, a query accepted", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const add = (...extra: string[]) => u.run(["profiles", "add", "p", "--issuer", idp.issuer, "--client-id", "c", "--force", ...extra]);
    for (const bad of [["--mcp-url", `https://u:${PW}@mcp.example.com/mcp`], ["--mcp-url", "https://mcp.example.com/mcp#frag"], ["--resource", `https://u:${PW}@mcp.example.com/`], ["--resource", "https://mcp.example.com/#f"]]) {
      const r = await add(...bad);
      expect(r.code, `${bad.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).not.toContain(PW);
    }
    expect((await add("--mcp-url", "https://mcp.example.com/mcp?tenant=a", "--resource", "https://mcp.example.com/mcp?tenant=a")).code).toBe(0);
    expect((await add("--resource", "urn:example:mcp")).code).toBe(0);
  });
});

describe("--timeout reaches openid-client", () => {
  const env = (timeoutMs: number): OAuthEnv => ({ fetch, discoveryDir: "/nonexistent", discoveryTtl: 0, allowHttp: false, now: Date.now, timeoutMs, plugins: { providers: [] } });

  it("the openid-client configuration gets our timeout, not its own 30 s", async () => {
    const md = { issuer: "https://idp.example.com", token_endpoint: "https://idp.example.com/token" };
    expect((await configure(md, { clientId: "c" }, env(40_000))).timeout).toBe(40);
    expect((await configure(md, { clientId: "c" }, env(2_500))).timeout).toBe(2.5);
  });

  it("a stalled token endpoint gives the accurate timed-out message and exit 3", async () => {
    ci();
    idp.token = () => ({ body: { access_token: GOOD_TOKEN, token_type: "Bearer" }, delayMs: 5000 });
    const r = await u.run([...adHoc(), "--timeout", "1"]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("timed out after 1s");
    expect(r.stderr).not.toContain("cannot reach");
  });

  // The one test that proves a limit above openid-client's own 30 s holds through the whole token
  // path. In-process, on a clock the test moves: openid-client's limit (an AbortSignal.timeout) and
  // ours both run on it, and the stall ends when the clock has moved 32 s.
  it("--timeout 40 outlasts a 32 s stall", async () => {
    const t = createTestContext({ virtualTime: true, env: { MCP_AUTH_CLIENT_SECRET: SECRET } });
    const onClock = vi.spyOn(AbortSignal, "timeout").mockImplementation((ms) => {
      const c = new AbortController();
      t.waits.setTimeout(() => c.abort(new DOMException("timed out", "TimeoutError")), ms);
      return c.signal;
    });
    try {
      let asked!: () => void;
      const received = new Promise<void>((r) => (asked = r));
      let answer!: () => void;
      const stall = new Promise<void>((r) => (answer = r));
      idp.token = () => {
        asked();
        return { body: { access_token: GOOD_TOKEN, token_type: "Bearer", expires_in: 300 }, until: stall };
      };
      const run = t.run([...adHoc(), "--timeout", "40"]);
      await received;
      t.clock.advance(32_000); // past openid-client's own 30 s, short of the 40 asked for
      answer();
      expect(await run, t.stderr()).toBe(0);
      expect(t.stdout()).toBe(`${GOOD_TOKEN}\n`);
    } finally {
      onClock.mockRestore();
      t.cleanup();
    }
  });
});

// In CI a missing browser is a failure, not a skip.
const hasChromium = existsSync("/usr/bin/chromium") || Boolean(process.env.CI);
describe.skipIf(!hasChromium)("the loopback redirect ignores redirects that are not this login's", () => {
  const FORGING = `${process.execPath} ${join(ROOT, "test", "helpers", "forging-browser.mjs")}`;
  async function loginWith(forge: string) {
    u = user({ MCP_AUTH_STORE: "file" });
    // The profile is written in-process; the login is the real process with the real browser command.
    const add = await runInProcess(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--scope", "openid", "mcp:read", "--resource", sb.mcpUrl], u.env);
    expect(add.code, add.stderr).toBe(0);
    const log = join(u.home, "forge.log");
    const r = await u.run(["login", "dev", "--browser-command", FORGING], { env: { FORGE: forge, FORGE_LOG: log } });
    return { ...r, forged: readFileSync(log, "utf8") };
  }

  it("a callback with a wrong state gets 400 and the real login still completes", async () => {
    const r = await loginWith("wrong-state");
    expect(r.forged).toBe("wrong-state 400\n");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("Login complete");
  });

  it("an error callback with the right state but another issuer is ignored, not reported as refused", async () => {
    const r = await loginWith("wrong-iss-error,no-iss-error");
    // The sandbox advertises authorization_response_iss_parameter_supported, so a missing iss is as bad.
    expect(r.forged).toBe("wrong-iss-error 400\nno-iss-error 400\n");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain("refused by the server");
  });

  it("a forged redirect alone leaves the login waiting, and the timeout says what was ignored", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    await runInProcess(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code"], u.env);
    const r = await u.run(["login", "dev", "--browser-command", FORGING, "--login-timeout", "3"], { env: { FORGE: "wrong-iss-error", FORGE_ONLY: "1" } });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain("timed out");
    expect(r.stderr).toMatch(/ignored 1 redirect.*issuer/);
    expect(r.stderr).not.toContain("refused by the server");
  });
});
