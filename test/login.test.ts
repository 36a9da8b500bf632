import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { expireTokens, useSandbox } from "./helpers/sandbox.js";
import { BIN, ROOT, user, type Sandboxed } from "./helpers/cli.js";
import { devBrowser } from "./helpers/dev-browser.js";
import { inProcessUser, runInProcess } from "./helpers/in-process.js";

/**
 * Browser and device logins, driven through real headless Chromium against the sandbox IdP, by the
 * real process. What happens to a session afterwards (refresh refused, IdP down, revocation) runs
 * in-process, the login following oidc-provider's pages (devBrowser).
 */
const BROWSER = `${process.execPath} ${join(ROOT, "test", "helpers", "browser.mjs")}`;
// In CI a missing browser is a failure, not a skip.
const hasChromium = existsSync("/usr/bin/chromium") || Boolean(process.env.CI);

const sb = useSandbox();
let u: Sandboxed;
afterEach(() => {
  u?.cleanup();
});

/** Written in-process either way: the profile is not what these tests are about. */
async function addUserProfile(s: Sandboxed, name = "dev", extra: string[] = []) {
  const r = await runInProcess(["profiles", "add", name, "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--scope", "openid", "mcp:read", "--resource", sb.mcpUrl, ...extra], s.env);
  expect(r.code, r.stderr).toBe(0);
}

function secrets(s: Sandboxed): Record<string, string> {
  return JSON.parse(readFileSync(join(s.configDir, "secrets.json"), "utf8")).secrets;
}
function refreshTokenOf(s: Sandboxed, profile = "dev"): string | undefined {
  return secrets(s)[`refresh-token:p-${profile}`];
}
function payload(token: string) {
  return JSON.parse(Buffer.from(token.trim().split(".")[1]!, "base64url").toString());
}

describe.skipIf(!hasChromium)("browser login (authorization code + PKCE, loopback redirect)", () => {
  it("logs in through Chromium, then serves, refreshes and rotates tokens without a browser", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    await addUserProfile(u);
    sb.resetCounts();
    const login = await u.run(["login", "dev", "--browser-command", BROWSER]);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toContain("Logged in: profile \"dev\"");
    expect(login.stderr).toContain("Login complete"); // the page Chromium landed on
    expect(login.stdout).toBe("");
    expect(sb.grants).toEqual({ authorization_code: 1 });

    const t1 = await u.run(["token", "--profile", "dev"]);
    expect(t1.code, t1.stderr).toBe(0);
    expect(payload(t1.stdout)).toMatchObject({ sub: "alice", aud: sb.mcpUrl, iss: sb.issuer });
    expect(sb.grants).toEqual({ authorization_code: 1 }); // from the cache

    const rt1 = refreshTokenOf(u)!;
    expect(rt1).toBeTruthy();
    expect(readFileSync(join(u.configDir, "tokens", "p-dev.json"), "utf8")).not.toContain(rt1);

    expireTokens(u);
    const t2 = await u.run(["token"]);
    expect(t2.code, t2.stderr).toBe(0);
    expect(t2.stdout).not.toBe(t1.stdout);
    expect(sb.grants.refresh_token).toBe(1);
    const rt2 = refreshTokenOf(u)!;
    expect(rt2).not.toBe(rt1); // rotated, and the new one was kept

    expireTokens(u);
    const t3 = await u.run(["token"]);
    expect(t3.code, t3.stderr).toBe(0); // only works if rt2 was persisted: rt1 is spent
    expect(sb.grants.refresh_token).toBe(2);

    // parallel callers on an expired cache spend the rotating refresh token exactly once
    expireTokens(u);
    const parallel = await Promise.all(Array.from({ length: 10 }, () => u.run(["token"])));
    for (const p of parallel) expect(p.code, p.stderr).toBe(0);
    expect(new Set(parallel.map((p) => p.stdout)).size).toBe(1);
    expect(sb.grants.refresh_token).toBe(3);

    const status = await u.run(["status", "--json"]);
    const row = JSON.parse(status.stdout)[0];
    expect(row).toMatchObject({ profile: "dev", token: "valid", refresh_token: "stored (file)" });
    expect(status.stdout).not.toContain(t3.stdout.trim());
  });

  it("a denied consent ends the login with exit 4", async () => {
    u = user({ MCP_AUTH_STORE: "file", BROWSER_ACTION: "deny" });
    await addUserProfile(u);
    const r = await u.run(["login", "--browser-command", BROWSER]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/login refused by the server: access_denied/);
  });

  it("device code login (for SSH/WSL) completes through the device pages", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    await addUserProfile(u);
    const r = await u.run(["login", "--device", "--browser-command", BROWSER]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/enter the code: [A-Z]{4}-[A-Z]{4}/);
    const t = await u.run(["token"]);
    expect(payload(t.stdout)).toMatchObject({ sub: "alice", aud: sb.mcpUrl });
  });
});

describe("a session after the login (in-process, through oidc-provider's pages)", () => {
  it("a refused refresh (invalid_grant) clears only that profile's tokens and says to log in", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file", MCP_AUTH_CLIENT_SECRET: "sandbox-secret" }, { onBrowse: devBrowser() });
    await addUserProfile(u);
    await addUserProfile(u, "other");
    expect((await u.run(["login", "dev"])).code).toBe(0);
    expect((await u.run(["login", "other"])).code).toBe(0);
    const s = JSON.parse(readFileSync(join(u.configDir, "secrets.json"), "utf8"));
    s.secrets["refresh-token:p-dev"] = "revoked-or-garbage";
    writeFileSync(join(u.configDir, "secrets.json"), JSON.stringify(s));
    expireTokens(u);
    const r = await u.run(["token", "--profile", "dev"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("run: npx mcp-auth login dev"); // from this checkout, mcp-auth not on PATH
    expect(refreshTokenOf(u, "dev")).toBeUndefined();
    expect(refreshTokenOf(u, "other")).toBeTruthy();
    expect(existsSync(join(u.configDir, "tokens", "p-dev.json"))).toBe(false);
    expect((await u.run(["token", "--profile", "other"])).code).toBe(0); // refreshes fine
  });

  it("a network failure during refresh keeps the refresh token (exit 3), and the next call succeeds", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" }, { onBrowse: devBrowser() });
    await addUserProfile(u);
    expect((await u.run(["login"])).code).toBe(0);
    const rt = refreshTokenOf(u);
    expireTokens(u);
    sb.breakIdp("500");
    const r = await u.run(["token"]);
    expect(r.code).toBe(3);
    expect(refreshTokenOf(u)).toBe(rt);
    sb.breakIdp(undefined);
    const again = await u.run(["token"]);
    expect(again.code, again.stderr).toBe(0);
  });

  it("logout --revoke revokes at the IdP and forgets the tokens; the profile stays", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" }, { onBrowse: devBrowser() });
    await addUserProfile(u);
    expect((await u.run(["login"])).code).toBe(0);
    const rt = refreshTokenOf(u)!;
    sb.resetCounts();
    const out = await u.run(["logout", "--revoke"]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain("Revoked");
    expect(sb.counts.revocation).toBeGreaterThanOrEqual(1);
    expect(refreshTokenOf(u)).toBeUndefined();
    // the IdP really forgot it: using it directly fails
    const res = await fetch(`${sb.issuer}/token`, { method: "POST", body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: rt, client_id: "sandbox-cli" }) });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toBe("invalid_grant");
    const t = await u.run(["token"]);
    expect(t.code).toBe(4);
    expect(t.stderr).toContain("run: npx mcp-auth login dev");
    expect((await u.run(["profiles", "list", "--json"])).stdout).toContain('"dev"');
  });

  it("a failed revocation keeps the tokens, so it can be retried", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" }, { onBrowse: devBrowser() });
    await addUserProfile(u);
    expect((await u.run(["login"])).code).toBe(0);
    const rt = refreshTokenOf(u);
    sb.breakIdp("500");
    const r = await u.run(["logout", "--revoke"]);
    expect(r.code).toBe(3);
    expect(refreshTokenOf(u)).toBe(rt);
    sb.breakIdp(undefined);
    expect((await u.run(["logout", "--revoke"])).code).toBe(0);
    expect(refreshTokenOf(u)).toBeUndefined();
  });
});

describe("login without a browser", () => {
  it("non-interactive token without a session: exit 4 and the command to run", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addUserProfile(u);
    const r = await u.run(["token"]);
    expect(r.code).toBe(4);
    expect(r.stderr.trim()).toBe('error: profile "dev" needs a login (browser) and this is not an interactive terminal (run: npx mcp-auth login dev)');
  });

  it("a device login nobody approves gives up after --login-timeout (exit 4)", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addUserProfile(u);
    const r = await u.run(["login", "--device", "--login-timeout", "2"], { timeoutMs: 30_000 });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("device login timed out after 2s without approval");
  });

  it("ignores a callback with the wrong state (400 page, keeps waiting) and times out cleanly", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    await addUserProfile(u);
    const child = spawn(process.execPath, [BIN, "login", "--no-browser", "--login-timeout", "3"], { env: u.env });
    let stderr = "";
    const url = await new Promise<URL>((resolve) => {
      child.stderr.on("data", (d) => {
        stderr += d;
        const m = /(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/.exec(stderr);
        if (m) resolve(new URL(m[1]!));
      });
    });
    const redirect = new URL(url.searchParams.get("redirect_uri")!);
    expect(redirect.hostname).toBe("127.0.0.1");
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    const page = await fetch(`${redirect.href}?code=stolen&state=forged`);
    expect(page.status).toBe(400);
    expect(await page.text()).toContain("Not this login"); // a web page cannot end the login
    const code = await new Promise<number | null>((r) => child.on("close", r));
    expect(code).toBe(4);
    expect(stderr).toContain("login timed out after 3s");
    expect(stderr).toContain("wrong state");

    const timeout = await runInProcess(["login", "--no-browser", "--login-timeout", "1"], u.env);
    expect(timeout.code).toBe(4);
    expect(timeout.stderr).toContain("login timed out after 1s");
  });
});
