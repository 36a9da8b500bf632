import { execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { errorLabel } from "../src/cli.js";
import { FileError } from "../src/errors.js";
import { startSandboxProfiles } from "../src/core/sandbox.js";
import { invocation } from "../src/io/invocation.js";
import { createTerminal, pausingSpinners } from "../src/io/terminal.js";
import { BIN, ROOT, user, type Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { useSandbox } from "./helpers/sandbox.js";
import { until } from "./helpers/util.js";

/**
 * The first-time user's path: each rough edge reproduced as a newcomer met it. The CLI runs in-process
 * (inProcessUser) except where the terminal is the point (tmux, --non-interactive): there it is the
 * process a person starts.
 */
const sb = useSandbox();
let u: Sandboxed | undefined;
let t: TestContext | undefined;
const servers: Server[] = [];

afterEach(async () => {
  u?.cleanup();
  t?.cleanup();
  u = t = undefined;
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; port: number }> {
  const s = createServer(handler!);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port };
}

async function addM2m(s: Sandboxed, name = "m2m", extra: string[] = []) {
  const r = await s.run(["profiles", "add", name, "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-stdin", "--resource", sb.mcpUrl, ...extra], { input: "sandbox-secret\n" });
  expect(r.code, r.stderr).toBe(0);
}

// ---- a real terminal, through tmux ----

function tmux(...args: string[]): string {
  return execFileSync("tmux", args, { encoding: "utf8" });
}

/** Runs the CLI on a real pty (a detached tmux session) with exactly this environment. */
function inTerminal(name: string, env: NodeJS.ProcessEnv, args: string[]): { screen(): string; kill(): void } {
  const vars = Object.entries({ TERM: "xterm-256color", ...env }).map(([k, v]) => `${k}=${v}`);
  // The pane outlives the command (so its last screen can be read): a shell waits after it.
  tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "20", "sh", "-c", '"$@"; echo "[exit $?]"; sleep 600', "sh", "env", "-i", ...vars, process.execPath, BIN, ...args);
  return {
    screen: () => tmux("capture-pane", "-p", "-t", name),
    kill: () => {
      try {
        tmux("kill-session", "-t", name);
      } catch {
        /* already gone */
      }
    },
  };
}


describe("progress on slow steps", () => {
  it("a token fetch from a hung IdP shows a spinner on a terminal, and nothing of it when piped", async () => {
    // An IdP that accepts the connection and never answers.
    const hung = await serve(() => {});
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const add = await u.run(["profiles", "add", "slow", "--issuer", hung.url, "--client-id", "c", "--client-secret-stdin"], { input: "s\n" });
    expect(add.code).toBe(0);

    const term = inTerminal(`mcp-auth-spin-${process.pid}`, { HOME: u.home, MCP_AUTH_CONFIG_DIR: u.configDir, MCP_AUTH_STORE: "file", PATH: process.env.PATH }, ["token", "--profile", "slow"]);
    try {
      const screen = await until(term.screen, /Getting a token from/);
      expect(screen).toContain(`Getting a token from ${hung.url}`);
    } finally {
      term.kill();
    }

    const piped = await u.run(["token", "--profile", "slow", "--timeout", "1"]);
    expect(piped.code).toBe(3);
    expect(piped.stderr).not.toContain("Getting a token");
    expect(piped.stdout).toBe("");
  });

  it.each([
    ["bootstrap", (url: string) => ["bootstrap", "thunder", "--url", url, "--admin-password-env", "PW"], /Thunder: creating or reusing the client…/],
    ["doctor", (url: string) => ["doctor", "--url", `${url}/mcp`], /Checking http:\/\/127\.0\.0\.1:\d+\/mcp…/],
  ] as const)("%s against a hung server shows a spinner on a terminal", async (name, argv, pattern) => {
    const hung = await serve(() => {});
    const home = mkdtempSync(join(tmpdir(), "mcp-auth-spin-"));
    const term = inTerminal(`mcp-auth-spin-${name}-${process.pid}`, { HOME: home, MCP_AUTH_CONFIG_DIR: join(home, "cfg"), MCP_AUTH_STORE: "file", PW: "x", PATH: process.env.PATH }, [...argv(hung.url)]);
    try {
      await until(term.screen, pattern);
    } finally {
      term.kill();
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("a browser login says it is waiting, with the URL; its timeout does not suggest the --no-browser just given", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    expect((await u.run(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code"])).code).toBe(0);
    const r = await u.run(["login", "dev", "--no-browser", "--login-timeout", "1"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/Open this URL in a browser on this machine to sign in:\n {2}http:\/\/127\.0\.0\.1:\d+\/auth\?/);
    expect(r.stderr).toMatch(/Waiting for the browser to complete the sign-in \(up to 1 s; Ctrl-C to cancel\)…/);
    const last = r.stderr.trim().split("\n").at(-1)!;
    expect(last).toMatch(/^error: login timed out after 1s waiting for the browser/);
    expect(last).not.toContain("--no-browser");
    expect(last).toContain("--device");
  });
});

describe("a question asked while a spinner runs", () => {
  it("the spinner stops drawing while the prompt is open, and goes on after (OpenProject asking its mode mid-step)", async () => {
    const events: string[] = [];
    const spinner = { succeed() {}, fail() {}, stop() {}, pause: () => events.push("pause"), resume: () => events.push("resume") };
    const asking = { password: async () => "", confirm: async () => (events.push("asked"), true), input: async () => "", select: async () => "" as never };
    const p = pausingSpinners(asking, new Set([spinner]));
    expect(await p.confirm("Go on?")).toBe(true);
    expect(events).toEqual(["pause", "asked", "resume"]);
    events.length = 0;
    const failing = { ...asking, input: async () => (events.push("asked"), Promise.reject(Object.assign(new Error("x"), { name: "ExitPromptError" }))) };
    await expect(pausingSpinners(failing, new Set([spinner])).input("Name:")).rejects.toThrow("x");
    expect(events).toEqual(["pause", "asked", "resume"]);
  });
});

describe("a question asked while a spinner runs, on a real terminal (tmux)", () => {
  it("OpenProject asks its mode during \"creating or reusing the client\": the spinner's line is gone while the question is open", async () => {
    const { startOpenProject } = await import("./simulators/openproject.js");
    const op = await startOpenProject();
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const term = inTerminal(`mcp-auth-op-${process.pid}`, { HOME: u.home, MCP_AUTH_CONFIG_DIR: u.configDir, MCP_AUTH_STORE: "file", PATH: process.env.PATH }, ["bootstrap", "openproject", "--url", op.url]);
    try {
      await until(term.screen, /How should mcp-auth set up OpenProject\?/);
      // A running spinner redraws its line under the prompt every 80 ms: move through the list (each
      // move redraws the prompt) and the spinner's line would be there by the end; paused, it never is.
      const name = `mcp-auth-op-${process.pid}`;
      for (const [key, mark] of [["Down", /❯ Guided/], ["Down", /❯ Use my personal/], ["Up", /❯ Guided/]] as const) {
        tmux("send-keys", "-t", name, key);
        await until(term.screen, mark);
        expect(term.screen()).not.toContain("creating or reusing the client");
      }
      tmux("send-keys", "-t", name, "Enter"); // Guided
      await until(term.screen, /\[exit \d+\]/);
      const all = tmux("capture-pane", "-p", "-t", name, "-S", "-200"); // with what scrolled off
      expect(all).toContain("OpenProject: nothing set up yet");
      expect(all).not.toMatch(/OpenProject: configured/);
      expect(all).toContain("[exit 0]");
    } finally {
      term.kill();
      await op.close();
    }
  });
});

describe("messages that misled", () => {
  it('"valid for 60 min", not "valid in 60 min"', async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    const r = await u.run(["login", "m2m"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/got a token, valid for 60 min\./);
  });

  it("--non-interactive on a real terminal names the flag, not the terminal", async () => {
    const tty = (s: NodeJS.WritableStream) => Object.assign(s, { isTTY: true });
    const term = createTerminal({ env: {}, nonInteractive: true, stdin: Object.assign(new PassThrough(), { isTTY: true }), stderr: tty(new PassThrough()), stdout: tty(new PassThrough()) });
    await expect(term.prompter.input("Issuer URL:")).rejects.toThrow('cannot ask "Issuer URL": --non-interactive was given');
    u = user({ MCP_AUTH_STORE: "file" }); // the real process: its own terminal decides what --non-interactive says
    expect((await u.run(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code"])).code).toBe(0);
    const r = await u.run(["--non-interactive", "token", "--profile", "dev"]);
    expect(r.code).toBe(4);
    expect(r.stderr.trim()).toBe('error: profile "dev" needs a login (browser) and --non-interactive was given (run: npx mcp-auth login dev)'); // run from this checkout, mcp-auth not on PATH
  });

  it("bootstrap thunder --url <not a Thunder> says so", async () => {
    const notThunder = await serve((_req, res) => res.writeHead(404, { "content-type": "text/html" }).end("<h1>Not Found</h1>"));
    u = inProcessUser({ MCP_AUTH_STORE: "file", PW: "x" });
    const r = await u.run(["bootstrap", "thunder", "--url", notThunder.url, "--admin-password-env", "PW"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`error: ${notThunder.url} is not a Thunder server (GET /oauth2/authorize answered 404 with text/html) (check --url: it is Thunder's public URL, e.g. http://thunder.openchoreo.localhost:8080)`);
  });

  it("a sandbox port clash is one line, not a raw EADDRINUSE", async () => {
    const taken = await serve(() => {});
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const r = await u.run(["sandbox", "--port", String(taken.port)]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`error: port ${taken.port} on 127.0.0.1 is already in use (another sandbox?) (stop it, pick another with --port N, or leave --port out for a free port)`);
    expect(r.stderr).not.toContain("EADDRINUSE");
  });

  it("errors start with error:, red only on a colour terminal", () => {
    const tty = Object.assign(new PassThrough(), { isTTY: true });
    expect(errorLabel(tty, {})).toBe("\x1b[31merror:\x1b[0m");
    expect(errorLabel(tty, { NO_COLOR: "1" })).toBe("error:");
    expect(errorLabel(new PassThrough(), {})).toBe("error:");
  });

  it("on a real colour terminal the error: label is red", async () => {
    const home = mkdtempSync(join(tmpdir(), "mcp-auth-red-"));
    const name = `mcp-auth-red-${process.pid}`;
    const term = inTerminal(name, { HOME: home, MCP_AUTH_CONFIG_DIR: join(home, "cfg"), PATH: process.env.PATH }, ["profiles", "show", "nope"]);
    try {
      await until(term.screen, /no profile named/);
      const colored = tmux("capture-pane", "-p", "-e", "-t", name);
      expect(colored).toMatch(/\x1b\[31merror:\x1b\[(0|39)m no profile named "nope"/);
    } finally {
      term.kill();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("typo suggestions come from the command itself", () => {
  it.each([
    [["status", "--profile", "dev"], null, /unknown option '--profile'/],
    [["token", "--profil", "dev"], "--profile", /unknown option '--profil'/],
    [["profiles", "renam", "a", "b"], "rename", /unknown command 'renam'/],
    [["status", "--jsn"], "--json", /unknown option '--jsn'/],
  ] as const)("%j", async (argv, suggestion, message) => {
    t = createTestContext();
    expect(await t.run([...argv])).toBe(2);
    expect(t.stderr()).toMatch(message);
    if (suggestion) expect(t.stderr()).toContain(`(Did you mean ${suggestion}?)`);
    else expect(t.stderr()).not.toContain("Did you mean");
    expect(t.stderr().trim().split("\n")).toHaveLength(1);
  });
});

describe("options that did nothing", () => {
  it("profiles add --kind thundr is refused", async () => {
    t = createTestContext();
    expect(await t.run(["profiles", "add", "x", "--issuer", "https://idp.mcp-auth.invalid", "--client-id", "c", "--kind", "thundr"])).toBe(2);
    expect(t.stderr()).toMatch(/argument 'thundr' is invalid\. Allowed choices are oidc, thunder, keycloak/);
    expect(t.ctx.config().profiles).toEqual({});
  });

  it("token --env-name without --format env warns once, cached or not", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    for (let i = 0; i < 2; i++) {
      const r = await u.run(["token", "--env-name", "X"]);
      expect(r.code).toBe(0);
      expect(r.stderr.trim()).toBe("warning: --env-name only applies with --format env or github; ignored with --format raw");
    }
    expect((await u.run(["token", "--format", "env", "--env-name", "X"])).stderr).toBe("");
  });

  it("a --min-ttl longer than the IdP's tokens warns that every call asks the IdP", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    const r = await u.run(["token", "--min-ttl", "7200"]);
    expect(r.code).toBe(0);
    expect(r.stderr.trim()).toBe(`warning: --min-ttl 7200 is longer than the tokens ${sb.issuer} issues (60 min): every call will ask the IdP`);
    const ok = await u.run(["token", "--min-ttl", "600"]);
    expect(ok.stderr).toBe("");
  });
});

describe("removing the default profile", () => {
  it("the one profile left becomes the default", async () => {
    t = createTestContext();
    expect(await t.run(["profiles", "add", "a", "--issuer", "https://a.mcp-auth.invalid", "--client-id", "c"])).toBe(0);
    expect(await t.run(["profiles", "add", "b", "--issuer", "https://b.mcp-auth.invalid", "--client-id", "c"])).toBe(0);
    expect(await t.run(["profiles", "remove", "a"])).toBe(0);
    expect(t.stderr()).toContain('Removed profile "a" and its secrets. "b" is now the default profile.');
    const fresh = createTestContext({ env: { MCP_AUTH_CONFIG_DIR: t.configDir } });
    try {
      expect(fresh.ctx.config().defaultProfile).toBe("b");
    } finally {
      fresh.cleanup();
    }
  });

  it("with several left, the message names profiles use", async () => {
    t = createTestContext();
    for (const n of ["a", "b", "c"]) expect(await t.run(["profiles", "add", n, "--issuer", `https://${n}.mcp-auth.invalid`, "--client-id", "c"])).toBe(0);
    expect(await t.run(["profiles", "remove", "a"])).toBe(0);
    expect(t.stderr()).toContain('Removed profile "a" and its secrets. There is no default profile now; pick one with: mcp-auth profiles use NAME (b, c)');
    // Removing a profile that is not the default says nothing more.
    expect(await t.run(["profiles", "use", "b"])).toBe(0);
    expect(await t.run(["profiles", "remove", "c"])).toBe(0);
    expect(t.stderr()).toMatch(/Removed profile "c" and its secrets\.\n/);
  });
});

describe("everyday profile commands", () => {
  it("profiles show without a name shows the default", async () => {
    t = createTestContext();
    expect(await t.run(["profiles", "add", "a", "--issuer", "https://a.mcp-auth.invalid", "--client-id", "ca"])).toBe(0);
    expect(await t.run(["profiles", "add", "b", "--issuer", "https://b.mcp-auth.invalid", "--client-id", "cb", "--default"])).toBe(0);
    expect(await t.run(["profiles", "show", "--json"])).toBe(0);
    expect(JSON.parse(t.stdout())).toMatchObject({ name: "b", clientId: "cb" });
  });

  it("profiles rename moves the secret, the cached token and the default", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    const first = await u.run(["token"]);
    expect(first.code).toBe(0);
    sb.resetCounts();
    const r = await u.run(["profiles", "rename", "m2m", "ci"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Renamed profile "m2m" to "ci"');
    // Served from the moved cache entry: the IdP is not asked.
    const again = await u.run(["token"]);
    expect(again.stdout).toBe(first.stdout);
    expect(sb.counts.total).toBe(0);
    expect(readdirSync(join(u.configDir, "tokens"))).toEqual(["p-ci.json"]);
    const show = await u.run(["profiles", "show", "--json"]);
    expect(JSON.parse(show.stdout)).toMatchObject({ name: "ci", clientSecret: "stored (file)" });
    // The secret moved too: a fresh token under the new name needs it.
    expect((await u.run(["token", "--force-refresh"])).code).toBe(0);
    const secrets = readdirSync(u.configDir).filter((f) => f.startsWith("secrets")).map((f) => readFileSync(join(u!.configDir, f), "utf8")).join("");
    expect(secrets).not.toContain("client-secret:m2m");
  });

  it("profiles rename is atomic with the config: when config.json cannot be written, the copies are dropped and the old profile works", async () => {
    t = createTestContext();
    const { ctx } = t;
    const secretCtx = createTestContext({ stdin: "s3cret", env: { MCP_AUTH_CONFIG_DIR: t.configDir } });
    try {
      expect(await secretCtx.run(["profiles", "add", "a", "--issuer", "https://a.mcp-auth.invalid", "--client-id", "c", "--client-secret-stdin"])).toBe(0);
    } finally {
      secretCtx.cleanup();
    }
    const target = { profile: "a", issuer: "https://a.mcp-auth.invalid", clientId: "c" };
    await ctx.tokens.save(target, { access_token: "at-1", token_type: "Bearer", expires_at: ctx.now() / 1000 + 3600, refresh_token: "rt-1" });
    const real = ctx.updateConfig;
    ctx.updateConfig = async (change) => {
      await real(async (cfg) => {
        await change(cfg);
        throw new FileError("cannot write config.json: no space left on device");
      });
      throw new Error("unreachable");
    };
    const { renameProfile } = await import("../src/core/profiles.js");
    await expect(renameProfile(ctx, "a", "b")).rejects.toThrow("no space left on device");
    ctx.updateConfig = real;
    const store = await ctx.secrets();
    expect(await store.get("client-secret:b")).toBeNull();
    expect(await store.get("client-secret:a")).toBe("s3cret");
    expect(await ctx.tokens.refreshToken({ ...target, profile: "b" })).toBeUndefined();
    expect(await ctx.tokens.refreshToken(target)).toBe("rt-1");
    expect(Object.keys(ctx.config().profiles)).toEqual(["a"]);
  });

  it("profiles rename refuses to overwrite a profile", async () => {
    t = createTestContext();
    for (const n of ["a", "b"]) expect(await t.run(["profiles", "add", n, "--issuer", `https://${n}.mcp-auth.invalid`, "--client-id", "c"])).toBe(0);
    expect(await t.run(["profiles", "rename", "a", "b"])).toBe(2);
    expect(t.stderr()).toContain('error: profile "b" already exists');
    expect(Object.keys(t.ctx.config().profiles)).toEqual(["a", "b"]);
  });

  it("profiles set edits a profile without re-entering its secret", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    expect((await u.run(["token"])).code).toBe(0);
    const r = await u.run(["profiles", "set", "m2m", "--scope", "mcp:read"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Updated profile "m2m" (--scope); its cached tokens were cleared.');
    const show = JSON.parse((await u.run(["profiles", "show", "m2m", "--json"])).stdout);
    expect(show).toMatchObject({ scopes: ["mcp:read"], resource: sb.mcpUrl, clientSecret: "stored (file)" });
    sb.resetCounts();
    const tok = await u.run(["token"]);
    expect(tok.code, tok.stderr).toBe(0);
    expect(sb.counts.total).toBeGreaterThan(0); // a new token for the new scope, with the kept secret
    expect((await u.run(["profiles", "set", "m2m", "--resource", ""])).code).toBe(0);
    expect(JSON.parse((await u.run(["profiles", "show", "m2m", "--json"])).stdout).resource).toBeUndefined();
    const nothing = await u.run(["profiles", "set", "m2m"]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/^error: nothing to change/);
  });

  it("status PROFILE shows one profile; status lists profile-less cached tokens too", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    await addM2m(u, "other");
    const ci = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m"], { env: { MCP_AUTH_CLIENT_SECRET: "sandbox-secret" } });
    expect(ci.code, ci.stderr).toBe(0);
    const one = await u.run(["status", "other", "--json"]);
    expect(JSON.parse(one.stdout).map((r: { profile: string }) => r.profile)).toEqual(["other"]);
    const all = await u.run(["status"]);
    expect(all.stdout).toMatch(new RegExp(`^\\(no profile\\)  client sandbox-m2m  client_credentials  ${sb.issuer.replace(/\./g, "\\.")}\\n  token: valid`, "m"));
    expect(all.stdout).not.toContain(ci.stdout.trim());
    const json = JSON.parse((await u.run(["status", "--json"])).stdout);
    expect(json.at(-1)).toMatchObject({ profile: null, client_id: "sandbox-m2m", token: "valid" });
    const none = await u.run(["status", "nope"]);
    expect(none.code).toBe(2);
  });
});

describe("the sandbox prints commands that run from where the user is", () => {
  it.each([
    ["on PATH", true, false, "mcp-auth"],
    ["installed in the project", false, true, "npx mcp-auth"],
    ["neither, started from a clone's (or an unpacked tarball's) launcher", false, false, "node /opt/mcp-auth/bin/mcp-auth.js", "/opt/mcp-auth/bin/mcp-auth.js"],
    ["neither, its launcher in a path with a space", false, false, "node '/opt/my tools/bin/mcp-auth.js'", "/opt/my tools/bin/mcp-auth.js"],
    ["neither, and no launcher of its own (npx's cache)", false, false, "npx mcp-auth-cli"],
  ])("%s", (_what, onPath, inProject, want, script?: string) => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-auth-inv-"));
    try {
      const bin = join(dir, "bin");
      const project = join(dir, "project", "sub");
      mkdirSync(bin);
      mkdirSync(project, { recursive: true });
      if (onPath) writeFileSync(join(bin, "mcp-auth"), "#!/bin/sh\n", { mode: 0o755 });
      if (inProject) {
        mkdirSync(join(dir, "project", "node_modules", ".bin"), { recursive: true });
        writeFileSync(join(dir, "project", "node_modules", ".bin", "mcp-auth"), "#!/bin/sh\n");
        chmodSync(join(dir, "project", "node_modules", ".bin", "mcp-auth"), 0o755);
      }
      expect(invocation({ PATH: bin }, project, script)).toBe(want);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the running sandbox, started from a fresh directory without mcp-auth on PATH, prints `node <its launcher> …` (the package is not on the registry yet)", async () => {
    const home = mkdtempSync(join(tmpdir(), "mcp-auth-sbx-"));
    const child = spawn(process.execPath, [BIN, "sandbox", "--save"], {
      cwd: home,
      env: { HOME: home, MCP_AUTH_CONFIG_DIR: join(home, "cfg"), MCP_AUTH_STORE: "file", PATH: "/usr/bin:/bin", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    try {
      await until(() => err, / status\n/);
      expect(err).toContain(`  node ${realpathSync(BIN)} token --profile sandbox\n`);
      expect(err).not.toMatch(/^ {2}mcp-auth /m);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("close", r));
      rmSync(home, { recursive: true, force: true });
    }
  });
});

// Keep the checkout's ROOT import meaningful for readers: the project's own name resolves `npx mcp-auth`.
it("inside this checkout, `npx mcp-auth` is the form printed (package name mcp-auth-cli)", () => {
  expect(invocation({ PATH: "" }, ROOT)).toBe("npx mcp-auth");
});

it("the bin directory npx puts on PATH for one run (its _npx cache) does not count as mcp-auth on PATH", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-auth-inv-"));
  try {
    const bin = join(dir, ".npm", "_npx", "ec115687ce5a860b", "node_modules", ".bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "mcp-auth"), "#!/bin/sh\n", { mode: 0o755 });
    expect(invocation({ PATH: bin }, ROOT)).toBe("npx mcp-auth");
    expect(invocation({ PATH: bin }, dir, undefined)).toBe("npx mcp-auth-cli");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});


describe("error hints point at the easy fix, in the form that runs from here", () => {
  it.each([
    ["mcp-auth not on PATH, inside this checkout", "/nonexistent", "npx mcp-auth"],
    ["mcp-auth on PATH", "ON_PATH", "mcp-auth"],
  ])("no profile yet (%s): init, or login with the MCP URL", async (_what, path, me) => {
    const bin = mkdtempSync(join(tmpdir(), "mcp-auth-bin-"));
    writeFileSync(join(bin, "mcp-auth"), "#!/bin/sh\n", { mode: 0o755 });
    t = createTestContext({ env: { PATH: path === "ON_PATH" ? bin : path } });
    try {
      expect(await t.run(["token"])).toBe(2);
      expect(t.stderr().trim()).toBe(`error: no profile configured (set one up with: ${me} init, or ${me} login <mcp-url>; or pass --issuer and --client-id)`);
      expect(await t.run(["profiles", "list"])).toBe(0);
      expect(await t.run(["status"])).toBe(0);
      expect(t.stdout()).toBe(`No profiles. Set one up with: ${me} init, or ${me} login <mcp-url>\nNo profiles. Set one up with: ${me} init, or ${me} login <mcp-url>  (or try: ${me} sandbox --save)\n`);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("a \"run:\" hint names the command as it runs from here", async () => {
    t = createTestContext({ env: { PATH: "/nonexistent" } });
    expect(await t.run(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--resource", sb.mcpUrl])).toBe(0);
    expect(await t.run(["token", "--profile", "dev"])).toBe(4);
    expect(t.stderr()).toContain("(run: npx mcp-auth login dev)");
  });

  it("invalid_client on a client-credentials profile: store the new secret with profiles set", async () => {
    t = createTestContext({ env: { PATH: "/nonexistent", S: "not-the-secret" } });
    expect(await t.run(["profiles", "add", "m2m", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "S", "--resource", sb.mcpUrl])).toBe(0);
    expect(await t.run(["token", "--profile", "m2m"])).toBe(4);
    expect(t.stderr()).toContain("Try: npx mcp-auth token --profile m2m\n");
    expect(t.stderr().trim().split("\n").at(-1)).toMatch(/^error: token request to \S+ refused: invalid_client.*\(if the client secret changed, store the new one: npx mcp-auth profiles set m2m --client-secret-stdin\)$/);
  });

  it.each([
    ["an MCP URL without its scheme", (mcp: string) => mcp.replace(/^http:\/\//, ""), (mcp: string) => `for the server at that address, give its URL with the scheme: npx mcp-auth login ${mcp}`],
    ["a host name without its scheme", () => "mcp.example.invalid", () => "for the server at that address, give its URL with the scheme: npx mcp-auth login https://mcp.example.invalid"],
  ])("login with %s: the URL with its scheme", async (_what, arg, hint) => {
    t = createTestContext({ env: { PATH: "/nonexistent" } });
    expect(await t.run(["login", arg(sb.mcpUrl), "--no-browser"])).toBe(2);
    expect(t.stderr()).toContain(`(${hint(sb.mcpUrl)})`);
  });

  it("a login URL missing its path: the 404 it got, and where MCP usually lives", async () => {
    t = createTestContext({ env: { PATH: "/nonexistent" } });
    expect(await t.run(["login", new URL(sb.mcpUrl).origin, "--no-browser"])).toBe(3);
    expect(t.stderr()).toMatch(/answered 404 .*often \/mcp/);
  });
});

describe("the sandbox keeps its ports", () => {
  it("restarted, it listens where its saved profiles point: their cached token still works against it", async () => {
    t = createTestContext();
    const o = { port: 0, mcpPort: 0, tokenTtl: 3600, save: true };
    const first = await startSandboxProfiles(t.ctx, o);
    let again: Awaited<ReturnType<typeof startSandboxProfiles>> | undefined;
    try {
      expect(await t.run(["token", "--profile", "sandbox"]), t.stderr()).toBe(0);
      const token = t.stdout();
      await first.close();
      again = await startSandboxProfiles(t.ctx, o);
      expect([again.issuer, again.mcpUrl]).toEqual([first.issuer, first.mcpUrl]);
      expect(await t.run(["token", "--profile", "sandbox"])).toBe(0);
      expect(t.stdout()).toBe(token + token); // the cached one: --save left the unchanged profile (and its cache) alone
      expect(await t.run(["doctor", "--profile", "sandbox"]), t.stderr()).toBe(0); // and the restarted server takes it
    } finally {
      await first.close().catch(() => {});
      await again?.close();
    }
  });

  it("a saved port that is taken: free ports, a warning, and --save moves the profiles with it", async () => {
    t = createTestContext();
    const first = await startSandboxProfiles(t.ctx, { port: 0, mcpPort: 0, tokenTtl: 3600, save: true });
    let moved: Awaited<ReturnType<typeof startSandboxProfiles>> | undefined;
    try {
      moved = await startSandboxProfiles(t.ctx, { port: 0, mcpPort: 0, tokenTtl: 3600, save: true }); // the first still holds them
      expect(moved.issuer).not.toBe(first.issuer);
      expect(t.stderr()).toContain(`warning: the port saved with profile "sandbox" is in use (port ${new URL(first.issuer).port} on 127.0.0.1 is already in use`);
      const saved = JSON.parse(readFileSync(join(t.configDir, "config.json"), "utf8")).profiles;
      expect([saved.sandbox.issuer, saved["sandbox-login"].mcpUrl]).toEqual([moved.issuer, moved.mcpUrl]);
    } finally {
      await first.close();
      await moved?.close();
    }
  });
});

describe("doctor on a real terminal", () => {
  it("inside tmux it knows it is on a terminal: a profile without a token needs a login, not \"a terminal\"", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    expect((await u.run(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--mcp-url", sb.mcpUrl])).code).toBe(0);
    const term = inTerminal(`mcp-auth-doctor-${process.pid}`, { HOME: u.home, MCP_AUTH_CONFIG_DIR: u.configDir, MCP_AUTH_STORE: "file", NO_COLOR: "1" }, ["doctor", "--profile", "dev"]);
    try {
      const screen = (await until(term.screen, /\[exit \d+\]/)).replace(/\s*\n\s*/g, " ");
      expect(screen).toContain('profile "dev" has no token yet: it needs a login (browser)');
      expect(screen).not.toContain("not an interactive terminal");
    } finally {
      term.kill();
    }
  });

  it.each([
    ["a person at a terminal", true, 'profile "dev" has no token yet: it needs a login (browser)'],
    ["piped", false, 'profile "dev" needs a login (browser) and this is not an interactive terminal'],
  ])("%s: the reason a token is missing", async (_what, interactive, reason) => {
    t = createTestContext({ interactive, answers: [] });
    expect(await t.run(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--mcp-url", sb.mcpUrl])).toBe(0);
    await t.run(["doctor", "--profile", "dev"]);
    expect(t.stdout() + t.stderr()).toContain(reason);
  });
});
