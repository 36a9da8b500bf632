import { execFileSync, spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BIN, ROOT, user, type Sandboxed } from "./helpers/cli.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * `login --paste` as a person does it: the CLI prints the URL, Chromium signs in against the
 * sandbox's real oidc-provider as a browser on another machine would (test/helpers/browser.mjs with
 * BROWSER_PASTE prints the address it was sent to, which nothing answers), and that address is
 * pasted into the CLI: through a pipe, and into a real terminal (tmux) where the line is longer
 * than a terminal's canonical-mode limit.
 */
const BROWSER = join(ROOT, "test", "helpers", "browser.mjs");
const hasChromium = existsSync("/usr/bin/chromium") || Boolean(process.env.CI);
const AUTH_URL = /(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/;
const PROFILE = (issuer: string, mcpUrl: string) => ["profiles", "add", "dev", "--issuer", issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--scope", "openid", "mcp:read", "--resource", mcpUrl];
const sb = useSandbox();

let u: Sandboxed | undefined;
afterEach(() => {
  u?.cleanup();
  u = undefined;
});

/** Chromium signs in with `url` and lands on a callback nobody answers: the address a person copies. */
async function browseElsewhere(url: string, env: NodeJS.ProcessEnv): Promise<{ landed: URL; log: string }> {
  const browser = spawn(process.execPath, [BROWSER, url], { env: { ...env, BROWSER_PASTE: "1" } });
  let landed = "";
  let log = "";
  browser.stdout.on("data", (d) => (landed += d));
  browser.stderr.on("data", (d) => (log += d));
  expect(await new Promise((r) => browser.on("close", r)), log).toBe(0);
  return { landed: new URL(landed.trim()), log };
}

const payload = (token: string) => JSON.parse(Buffer.from(token.trim().split(".")[1]!, "base64url").toString());

describe.skipIf(!hasChromium)("login --paste end to end: Chromium signs in elsewhere, the address is pasted into the CLI", () => {
  /** Runs the CLI, opens the printed URL in Chromium, pastes where it landed into the CLI's stdin. */
  async function pasteLogin(args: string[]) {
    const child = spawn(process.execPath, [BIN, ...args], { env: u!.env });
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout.on("data", (d) => (stdout += d));
    const closed = new Promise<number | null>((r) => child.on("close", r));
    await vi.waitFor(() => expect(stderr).toMatch(AUTH_URL), { timeout: 20_000, interval: 50 });
    const { landed, log } = await browseElsewhere(AUTH_URL.exec(stderr)![1]!, u!.env);
    child.stdin.end(`${landed.href}\n`);
    return { code: await closed, stderr, stdout, landed, browserLog: log };
  }

  it("login PROFILE --paste: a working token, the address checked and exchanged once", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    expect((await u.run(PROFILE(sb.issuer, sb.mcpUrl))).code).toBe(0);
    sb.resetCounts();
    const r = await pasteLogin(["login", "dev", "--paste"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.browserLog).toContain("the callback address did not load: net::ERR_CONNECTION_REFUSED"); // nothing answers the redirect on the browser's machine
    expect(`${r.landed.origin}${r.landed.pathname}`).toBe("http://127.0.0.1/callback");
    expect(r.landed.searchParams.get("iss")).toBe(sb.issuer);
    expect(r.stderr).toContain('Logged in: profile "dev"');
    expect(r.stderr).not.toContain(r.landed.searchParams.get("code")!);
    expect(r.stdout).toBe("");
    expect(sb.grants).toEqual({ authorization_code: 1 });
    const t = await u.run(["token", "--profile", "dev"]);
    expect(t.code, t.stderr).toBe(0);
    expect(payload(t.stdout)).toMatchObject({ sub: "alice", aud: sb.mcpUrl, iss: sb.issuer });
  });

  it("login <mcp-url> on a machine without a display: the registered client has no device code, so paste-back", async () => {
    u = user({ MCP_AUTH_STORE: "file" }); // no DISPLAY, no $BROWSER: nothing to open a browser with
    const r = await pasteLogin(["login", sb.mcpUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("No browser can be opened here (DISPLAY and WAYLAND_DISPLAY are unset)");
    expect(r.stderr).toContain("sign in by pasting back the address instead");
    expect(r.stderr).toMatch(/Logged in to http:\/\/127\.0\.0\.1:\d+\/mcp through/);
    // The redirect registered for this client, on its port: servers compare it exactly.
    expect(r.landed.port).not.toBe("");
    const t = await u.run(["token", "--profile", `127.0.0.1-${new URL(sb.mcpUrl).port}`]);
    expect(t.code, t.stderr).toBe(0);
  });

  it("in a real terminal, a pasted address longer than the terminal's line limit (4096) arrives whole", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    expect((await u.run(PROFILE(sb.issuer, sb.mcpUrl))).code).toBe(0);
    const name = `paste-${process.pid}-${Date.now()}`;
    const tmux = (...args: string[]) => execFileSync("tmux", args, { encoding: "utf8" });
    const vars = Object.entries({ TERM: "xterm-256color", ...u.env }).map(([k, v]) => `${k}=${v}`);
    tmux("new-session", "-d", "-s", name, "-x", "200", "-y", "50", "sh", "-c", '"$@"; echo "[exit $?]"; sleep 600', "sh", "env", "-i", ...vars, process.execPath, BIN, "login", "dev", "--paste");
    try {
      const screen = () => tmux("capture-pane", "-p", "-J", "-S", "-", "-t", name);
      await vi.waitFor(() => expect(screen()).toContain("press Enter:"), { timeout: 20_000, interval: 100 });
      const { landed } = await browseElsewhere(AUTH_URL.exec(screen())![1]!, u.env);
      // Padding first: a canonical-mode terminal would cut the line before code, state and iss.
      const long = `${landed.origin}${landed.pathname}?session_padding=${"p".repeat(6000)}&${landed.searchParams}`;
      const buffer = join(u.home, "paste.txt");
      writeFileSync(buffer, long);
      tmux("load-buffer", "-b", name, buffer);
      tmux("paste-buffer", "-d", "-b", name, "-t", name);
      tmux("send-keys", "-t", name, "Enter");
      await vi.waitFor(() => expect(screen()).toMatch(/\[exit \d+\]/), { timeout: 20_000, interval: 100 });
      const shown = screen();
      expect(shown, shown).toContain('Logged in: profile "dev"');
      expect(shown).toContain("[exit 0]");
      expect(shown).not.toContain("ppppp"); // the pasted line is not echoed
    } finally {
      try {
        tmux("kill-session", "-t", name);
      } catch {
        /* already gone */
      }
    }
  });
});
