import { createServer } from "node:net";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ExitCode, SilentError } from "../src/errors.js";
import { noBrowserReason } from "../src/io/browser.js";
import { readLine } from "../src/io/line-input.js";
import { saveProfile } from "../src/core/profiles.js";
import { login } from "../src/core/session.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * Sign-in where no browser can run: paste-back (`login --paste`), the device code offered instead of
 * a browser nobody would see, and no waiting on an authorization endpoint that is down. In-process,
 * against the sandbox's real oidc-provider; test/login-paste-e2e.test.ts signs in with Chromium.
 */
const sb = useSandbox();

let tc: TestContext | undefined;
afterEach(() => {
  tc?.cleanup();
  tc = undefined;
});

const PROFILE = (issuer: string, mcpUrl: string) => ["profiles", "add", "dev", "--issuer", issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--scope", "openid", "mcp:read", "--resource", mcpUrl];
const AUTH_URL = /(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/;

/** Waits until the CLI has printed the authorization URL, then pastes `line` (and Enter) into its terminal. */
async function pasteWhenAsked(t: TestContext, line: (auth: URL) => string, which: (auth: URL) => boolean = () => true): Promise<URL> {
  const printed = () => [...t.stderr().matchAll(new RegExp(AUTH_URL, "g"))].map((m) => new URL(m[1]!)).filter(which).at(-1);
  await vi.waitFor(() => expect(printed()).toBeDefined(), { timeout: 10_000, interval: 20 });
  const auth = printed()!;
  (t.ctx.io.in as PassThrough).write(`${line(auth)}\n`);
  return auth;
}

const lastLine = (s: string) => s.trim().split("\n").at(-1)!;
const CODE = "c0de-only-THIS-login-7f3a";
const callback = (a: URL, q: Record<string, string>) => `${a.searchParams.get("redirect_uri")}?${new URLSearchParams(q)}`;

describe("login --paste: what is pasted is checked as a loopback callback is", () => {
  // exit: the exit code; error: the one-line error; exchanged: the code reached the token endpoint
  // (a made-up code is refused there with invalid_grant, which proves the paste was accepted).
  const cases: Array<{ name: string; paste: (a: URL, issuer: string) => string; exit: number; error: RegExp; exchanged: boolean }> = [
    { name: "another login's state", paste: (a, iss) => callback(a, { code: CODE, state: "not-this-login", iss }), exit: 4, error: /^error: the pasted address carried the wrong state .*; refusing it/, exchanged: false },
    { name: "another issuer (RFC 9207 iss mismatch)", paste: (a) => callback(a, { code: CODE, state: a.searchParams.get("state")!, iss: "https://mix-up.invalid" }), exit: 4, error: /another issuer than the one being logged in to .*refusing it/, exchanged: false },
    { name: "no iss from a server that always sends it", paste: (a) => callback(a, { code: CODE, state: a.searchParams.get("state")! }), exit: 4, error: /lacked the issuer \(iss\)/, exchanged: false },
    { name: "error=access_denied with this login's state", paste: (a, iss) => callback(a, { error: "access_denied", error_description: "the user said no", state: a.searchParams.get("state")!, iss }), exit: 4, error: /^error: login refused by the server: access_denied: the user said no$/, exchanged: false },
    { name: "garbage", paste: () => "hello world, I did sign in", exit: 2, error: /^error: the pasted text is neither the address the browser was sent to nor a code/, exchanged: false },
    { name: "nothing", paste: () => "   ", exit: 2, error: /^error: nothing was pasted/, exchanged: false },
    { name: "oversized", paste: () => `http://127.0.0.1/callback?code=${"A".repeat(20_000)}`, exit: 2, error: /^error: the pasted text is longer than 16384 characters/, exchanged: false },
    { name: "the address without its query", paste: (a) => a.searchParams.get("redirect_uri")!, exit: 2, error: /^error: the pasted address has no code \(copy the whole address/, exchanged: false },
    { name: "the sign-in URL itself", paste: (a) => a.href, exit: 2, error: /^error: the pasted address has no code: it is the sign-in URL/, exchanged: false },
    { name: "the whole address", paste: (a, iss) => callback(a, { code: CODE, state: a.searchParams.get("state")!, iss }), exit: 4, error: /invalid_grant/, exchanged: true },
    { name: "the address without http:// (as some address bars copy it)", paste: (a, iss) => callback(a, { code: CODE, state: a.searchParams.get("state")!, iss }).replace(/^http:\/\//, ""), exit: 4, error: /invalid_grant/, exchanged: true },
    { name: "only the query string", paste: (a, iss) => new URLSearchParams({ code: CODE, state: a.searchParams.get("state")!, iss }).toString(), exit: 4, error: /invalid_grant/, exchanged: true },
    { name: "the bare code", paste: () => CODE, exit: 4, error: /invalid_grant/, exchanged: true },
    { name: "a bare code with a slash (Google's begin 4/)", paste: () => `4/${CODE}`, exit: 4, error: /invalid_grant/, exchanged: true },
    { name: "wrapped in quotes and a terminal's bracketed-paste markers", paste: (a, iss) => `\x1b[200~"${callback(a, { code: CODE, state: a.searchParams.get("state")!, iss })}"\x1b[201~`, exit: 4, error: /invalid_grant/, exchanged: true },
  ];
  it.each(cases)("$name", async (c) => {
    tc = createTestContext({ interactive: true });
    expect(await tc.run(PROFILE(sb.issuer, sb.mcpUrl))).toBe(0);
    sb.resetCounts();
    const done = tc.run(["login", "dev", "--paste"]);
    const auth = await pasteWhenAsked(tc, (a) => c.paste(a, sb.issuer));
    expect(await done).toBe(c.exit);
    expect(lastLine(tc.stderr())).toMatch(c.error);
    expect(sb.grants.authorization_code ?? 0).toBe(c.exchanged ? 1 : 0);
    expect(tc.stderr()).not.toContain(CODE); // the pasted code is never shown back
    expect(tc.browsed).toEqual([]); // paste-back opens nothing here
    // The redirect the IdP already allows for this native client: the loopback one, on no port.
    expect(auth.searchParams.get("redirect_uri")).toBe("http://127.0.0.1/callback");
    expect(auth.searchParams.get("code_challenge_method")).toBe("S256");
  });

  it("--debug traces the exchange without the pasted code", async () => {
    tc = createTestContext({ interactive: true, global: { debug: true } });
    expect(await tc.run(PROFILE(sb.issuer, sb.mcpUrl))).toBe(0);
    const done = tc.run(["login", "dev", "--paste", "--debug"]);
    await pasteWhenAsked(tc, (a) => callback(a, { code: CODE, state: a.searchParams.get("state")!, iss: sb.issuer }));
    expect(await done).toBe(4);
    expect(tc.stderr()).toMatch(/debug > POST http:\/\/127\.0\.0\.1:\d+\/token/);
    expect(tc.stderr()).not.toContain(CODE);
  });

  it("uses the profile's registered redirect port, and refuses flags that contradict it", async () => {
    tc = createTestContext({ interactive: true });
    expect(await tc.run([...PROFILE(sb.issuer, sb.mcpUrl), "--redirect-port", "8765"])).toBe(0);
    const done = tc.run(["login", "dev", "--paste"]);
    const auth = await pasteWhenAsked(tc, () => "");
    expect(await done).toBe(2);
    expect(auth.searchParams.get("redirect_uri")).toBe("http://127.0.0.1:8765/callback");
    const withPort = tc.run(["login", "dev", "--paste", "--port", "9876"]);
    const again = await pasteWhenAsked(tc, () => "", (a) => a.searchParams.get("redirect_uri")!.includes("9876"));
    expect(await withPort).toBe(2);
    expect(again.searchParams.get("redirect_uri")).toBe("http://127.0.0.1:9876/callback");
    for (const [flags, error] of [
      [["--device"], "pass only one of --paste and --device"],
      [["--browser-command", "true"], "--paste is for a browser on another machine"],
    ] as const) {
      expect(await tc.run(["login", "dev", "--paste", ...flags])).toBe(2);
      expect(lastLine(tc.stderr())).toContain(error);
    }
  });
});

/** A profile for the sandbox with fixed endpoints: a server without discovery, so without a device code either. */
async function noDeviceProfile(t: TestContext, authorizationEndpoint = `${sb.issuer}/auth`) {
  await saveProfile(t.ctx, {
    name: "dev",
    data: { provider: "oidc", issuer: sb.issuer, clientId: "sandbox-cli", grant: "authorization_code", scopes: ["openid"], tokenEndpointAuthMethod: "none", extra: { tokenEndpoint: `${sb.issuer}/token`, authorizationEndpoint } },
  });
}

describe("where no browser can run, login does not pretend to open one", () => {
  it("offers the device code when the server has one", async () => {
    tc = createTestContext({ interactive: true, noBrowser: "this is an SSH session" });
    expect(await tc.run(PROFILE(sb.issuer, sb.mcpUrl))).toBe(0);
    expect(await tc.run(["login", "dev", "--login-timeout", "1"])).toBe(4); // nobody approves
    expect(tc.stderr()).toContain("No browser can be opened here (this is an SSH session); signing in with a device code instead (--paste: paste back the address a browser elsewhere is sent to).");
    expect(tc.stderr()).toMatch(/enter the code: [A-Z]{4}-[A-Z]{4}/);
    expect(tc.browsed).toEqual([]);
  });

  it("falls back to paste-back when the server refuses this client the device code", async () => {
    const reg = await sb.registerClient({ application_type: "native", token_endpoint_auth_method: "none", grant_types: ["authorization_code"], response_types: ["code"], redirect_uris: ["http://127.0.0.1/callback"] });
    tc = createTestContext({ interactive: true, noBrowser: "DISPLAY and WAYLAND_DISPLAY are unset" });
    expect(await tc.run(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", reg.client_id, "--grant", "authorization_code", "--resource", sb.mcpUrl])).toBe(0);
    const done = tc.run(["login", "dev"]);
    await pasteWhenAsked(tc, (a) => callback(a, { code: CODE, state: "stale", iss: sb.issuer }));
    expect(await done).toBe(4);
    expect(tc.stderr()).toMatch(/The authorization server does not let this client use a device code \(device login refused: invalid_request: .*\); sign in by pasting back the address instead\./);
    expect(lastLine(tc.stderr())).toMatch(/the pasted address carried the wrong state/);
    expect(tc.browsed).toEqual([]);
  });

  it("goes straight to paste-back when the server has no device code, reading piped stdin too", async () => {
    tc = createTestContext({ stdin: `${CODE}\n`, noBrowser: "this is an SSH session" });
    await noDeviceProfile(tc);
    sb.resetCounts();
    expect(await tc.run(["login", "dev"])).toBe(4);
    expect(tc.stderr()).toContain("No browser can be opened here (this is an SSH session), and the authorization server offers no device code: sign in by pasting back the address.");
    expect(lastLine(tc.stderr())).toMatch(/invalid_grant/); // the code reached the token endpoint
    expect(sb.grants.authorization_code).toBe(1);
    expect(tc.browsed).toEqual([]);
  });

  it("with nobody to paste (stdin not the person's, as in the proxy) it prints the URL and opens nothing", async () => {
    tc = createTestContext({ noBrowser: "this is an SSH session" });
    await noDeviceProfile(tc);
    const profile = { name: "dev", ...tc.ctx.config().profiles!.dev! };
    await expect(login(tc.ctx, profile, { browser: true, timeoutSec: 0.2 })).rejects.toThrow(/login timed out/);
    expect(tc.stderr()).toContain("No browser can be opened here (this is an SSH session): open the URL below in a browser on this machine, or run mcp-auth login in a terminal to paste back the address.");
    expect(tc.stderr()).toContain("Open this URL in a browser on this machine to sign in:");
    expect(tc.browsed).toEqual([]);
  });

  it("--no-browser still waits on the loopback redirect (an SSH tunnel may carry it)", async () => {
    tc = createTestContext({ interactive: true, noBrowser: "this is an SSH session" });
    await noDeviceProfile(tc);
    expect(await tc.run(["login", "dev", "--no-browser", "--login-timeout", "0.2"])).toBe(4);
    expect(tc.stderr()).not.toContain("No browser can be opened here");
    expect(tc.stderr()).toMatch(/redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Fcallback/);
  });
});

describe("the authorization endpoint is checked before any waiting", () => {
  async function closedPort(): Promise<number> {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
    const port = (s.address() as { port: number }).port;
    await new Promise((r) => s.close(r));
    return port;
  }
  it.each([
    ["--no-browser", ["--no-browser"]],
    ["a browser", []],
    ["--paste", ["--paste"]],
  ])("down (connection refused): exit 3 at once, with %s", async (_name, flags) => {
    tc = createTestContext({ interactive: true });
    await noDeviceProfile(tc, `http://127.0.0.1:${await closedPort()}/auth`);
    expect(await tc.run(["login", "dev", ...flags])).toBe(3);
    expect(lastLine(tc.stderr())).toMatch(/^error: the authorization endpoint cannot be reached, so a browser could not sign in: cannot reach 127\.0\.0\.1:\d+: ECONNREFUSED/);
    expect(tc.stderr()).not.toContain("Waiting");
    expect(tc.browsed).toEqual([]);
  });

  it("behind a gateway that answers 502 (discovery cached from before): exit 3", async () => {
    tc = createTestContext({ interactive: true });
    expect(await tc.run(PROFILE(sb.issuer, sb.mcpUrl))).toBe(0);
    const first = tc.run(["login", "dev", "--paste"]); // caches the discovery document
    await pasteWhenAsked(tc, () => "");
    expect(await first).toBe(2);
    sb.breakIdp("html");
    expect(await tc.run(["login", "dev"])).toBe(3);
    expect(lastLine(tc.stderr())).toMatch(/^error: the authorization endpoint http:\/\/127\.0\.0\.1:\d+\/auth answered HTTP 502 \(its gateway cannot reach the IdP\)/);
    expect(tc.browsed).toEqual([]);
  });
});

describe("noBrowserReason: when the platform's opener would show nobody a browser", () => {
  it.each([
    ["linux", false, {}, "DISPLAY and WAYLAND_DISPLAY are unset"],
    ["linux", false, { DISPLAY: ":0" }, undefined],
    ["linux", false, { WAYLAND_DISPLAY: "wayland-0" }, undefined],
    ["linux", false, { DISPLAY: ":0", SSH_CONNECTION: "10.0.0.2 5555 10.0.0.1 22" }, "this is an SSH session"],
    ["linux", false, { DISPLAY: ":0", SSH_TTY: "/dev/pts/1" }, "this is an SSH session"],
    ["linux", true, {}, undefined], // WSL opens Windows' browser
    ["linux", false, { BROWSER: "w3m" }, undefined], // the user's own command
    ["darwin", false, {}, undefined],
    ["darwin", false, { SSH_CONNECTION: "10.0.0.2 5555 10.0.0.1 22" }, "this is an SSH session"],
    ["win32", false, {}, undefined],
    ["win32", false, { SSH_TTY: "windows-pty" }, "this is an SSH session"],
  ] as const)("%s wsl=%s %j → %s", (platform, wsl, env, reason) => {
    expect(noBrowserReason(env, platform, wsl)).toBe(reason);
  });
});

describe("readLine: a pasted line from a terminal, however long", () => {
  function tty() {
    const s = Object.assign(new PassThrough(), { isTTY: true, modes: [] as boolean[], setRawMode(raw: boolean) { s.modes.push(raw); return s; } });
    return s;
  }
  const err = () => Object.assign(new PassThrough(), { text: "" });

  it("reads past the 1024/4096-byte canonical-mode limits in raw mode, unechoed, and restores the mode", async () => {
    const s = tty();
    const e = err();
    const p = readLine(s, { max: 16384, err: e });
    const long = `http://127.0.0.1/callback?code=${"x".repeat(6000)}&state=s`;
    s.write(long.slice(0, 3000));
    s.write(`${long.slice(3000)}\r`);
    expect(await p).toBe(long);
    expect(s.modes).toEqual([true, false]);
    expect(String(e.read() ?? "")).toBe("\n"); // nothing of the line itself
  });

  it.each([
    ["bracketed paste markers and arrow keys dropped", "\x1b[200~abc\x1b[201~\x1b[D\r", "abc"],
    ["backspace", "abd\x7fc\r", "abc"],
    ["Ctrl-U clears the line", "wrong\x15abc\r", "abc"],
    ["Ctrl-D ends it", "abc\x04", "abc"],
  ])("%s", async (_n, typed, want) => {
    const s = tty();
    const p = readLine(s, { max: 100, err: err() });
    s.write(typed);
    expect(await p).toBe(want);
  });

  it("an oversized paste is read to its end and kept to max + 1 characters, so the caller refuses it", async () => {
    const s = tty();
    const p = readLine(s, { max: 10, err: err() });
    s.write(`${"y".repeat(50)}\r`);
    expect(await p).toBe("y".repeat(11));
  });

  it("Ctrl-C ends the run with exit 130, the terminal restored", async () => {
    const s = tty();
    const p = readLine(s, { max: 100, err: err() });
    s.write("abc\x03");
    const e = await p.then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(SilentError);
    expect((e as SilentError).exitCode).toBe(ExitCode.INTERRUPTED);
    expect(s.modes).toEqual([true, false]);
  });

  it("piped input: one line; input already read to its end gives an empty line", async () => {
    const s = new PassThrough();
    const p = readLine(s, { max: 100, err: err() });
    s.end("first\nsecond\n");
    expect(await p).toBe("first");
    const ended = new PassThrough();
    ended.end();
    ended.resume();
    await new Promise((r) => ended.on("end", r));
    expect(await readLine(ended, { max: 100, err: err() })).toBe("");
  });
});
