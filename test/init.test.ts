import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLIENTS } from "../src/plugins.js";
import { afterEach, describe, expect, it } from "vitest";
import { BIN, type Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { useSandbox } from "./helpers/sandbox.js";
import { startThunder, type ThunderSim } from "./simulators/thunder.js";
import { until } from "./helpers/util.js";

/**
 * `mcp-auth init`: the wizard's questions answered by a script (in-process), then by a person on a
 * real pty (tmux), where the real binary runs.
 */
const sb = useSandbox();
let t: TestContext | undefined;
let u: Sandboxed | undefined;
let th: ThunderSim | undefined;

afterEach(async () => {
  t?.cleanup();
  u?.cleanup();
  await th?.close();
  t = u = th = undefined;
});

describe("init, answered by a script", () => {
  it("another OIDC server: the questions come from its inputs, then a token, the checks and the next commands", async () => {
    t = createTestContext({
      interactive: true,
      env: { PATH: "/nonexistent" },
      answers: ["oidc", sb.issuer, "sandbox-m2m", "client_credentials", "sandbox-secret", "mcp:read", sb.mcpUrl, "dev"],
    });
    const code = await t.run(["init", "--clients", "none"]);
    expect(code, t.stderr()).toBe(0);
    expect(t.asked).toEqual([
      "Which identity provider (IdP) do your MCP servers trust?",
      "Issuer URL:",
      "Client id:",
      "How are tokens obtained:",
      "client secret:",
      "Scopes (space-separated):",
      "MCP server URL (empty: none):",
      "Name of the profile to save:",
    ]);
    const err = t.stderr();
    expect(err).toContain(`Created profile "dev" (oidc, client_credentials, ${sb.issuer}, client secret in the file store).`);
    expect(err).toMatch(/✓ .*token/);
    // mcp-auth is not on PATH, and this checkout is the mcp-auth-cli package: `npx mcp-auth` runs it from here.
    expect(err).toContain("Next:\n  npx mcp-auth token --profile dev\n  npx mcp-auth status\n  npx mcp-auth doctor --profile dev");
    expect(err).toMatch(/✓ MCP server answers with the token: .*speaks/);
    expect(t.stdout()).toBe("");
    expect(t.ctx.config().profiles.dev).toMatchObject({ issuer: sb.issuer, clientId: "sandbox-m2m", grant: "client_credentials", scopes: ["mcp:read"], mcpUrl: sb.mcpUrl, resource: sb.mcpUrl });
  });

  it("I only have the MCP server URL: discovery and registration, then the sign-in offer, doctor and the summary", async () => {
    t = createTestContext({ interactive: true, env: { PATH: "/nonexistent", MCP_AUTH_STORE: "file" }, answers: ["mcp", sb.mcpUrl, ""] });
    const code = await t.run(["init", "--no-login", "--clients", "none"]);
    expect(code, t.stderr()).toBe(0);
    expect(t.asked).toEqual(["Which identity provider (IdP) do your MCP servers trust?", "MCP server URL:", "Name of the profile to save:"]);
    const name = `127.0.0.1-${new URL(sb.mcpUrl).port}`; // the default, as with --yes and `login URL`: the server's host
    expect(t.ctx.config().profiles[name]).toMatchObject({ issuer: sb.issuer, grant: "authorization_code", mcpUrl: sb.mcpUrl, resource: sb.mcpUrl, extra: { discovered: true, registration: "dcr" } });
    expect(t.stderr()).toContain(`Created profile "${name}" (oidc, authorization_code, ${sb.issuer})`);
    expect(t.stderr()).toContain(`npx mcp-auth login ${name}`);
  });

  it("--provider mcp --mcp-url … --yes: unattended, the profile named after the host", async () => {
    t = createTestContext({ env: { MCP_AUTH_STORE: "file" } });
    const code = await t.run(["init", "--provider", "mcp", "--mcp-url", sb.mcpUrl, "--yes"]);
    expect(code, t.stderr()).toBe(0);
    const name = `127.0.0.1-${new URL(sb.mcpUrl).port}`;
    expect(t.ctx.config().profiles[name]).toMatchObject({ issuer: sb.issuer, mcpUrl: sb.mcpUrl });
  });

  it("flags answer their questions: only the rest is asked", async () => {
    t = createTestContext({ interactive: true, answers: ["sandbox-secret", "mcp:read", ""] });
    const code = await t.run(["init", "--provider", "oidc", "--profile", "ci", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--grant", "client_credentials", "--clients", "none"]);
    expect(code, t.stderr()).toBe(0);
    expect(t.asked).toEqual(["client secret:", "Scopes (space-separated):", "MCP server URL (empty: none):"]);
    expect(t.ctx.config().profiles.ci?.mcpUrl).toBeUndefined();
  });

  it("a flag of another provider is refused before anything is asked", async () => {
    t = createTestContext({ interactive: true, answers: [] });
    expect(await t.run(["init", "--provider", "oidc", "--realm", "x"])).toBe(2);
    expect(t.stderr()).toContain("error: --realm does not apply to --provider oidc");
    expect(t.asked).toEqual([]);
  });

  it("without a terminal and without --yes: exit 2 with the flags that answer every question", async () => {
    t = createTestContext();
    expect(await t.run(["init", "--provider", "thunder"])).toBe(2);
    expect(t.stderr().trim()).toBe(
      "error: init asks questions and this is not an interactive terminal (answer them with flags: npx mcp-auth init --provider thunder --url http://thunder.openchoreo.localhost:8080 --admin-user admin --admin-password-env ADMIN_PASSWORD --grant client_credentials --name 'MCP client' --client-id mcp_client --validity 3600 --profile thunder --yes)",
    );
    expect(existsSync(join(t.configDir, "config.json"))).toBe(false);
  });

  it("--yes runs unattended against Thunder (the simulator)", async () => {
    th = await startThunder({});
    u = inProcessUser({ MCP_AUTH_STORE: "file", PW: "admin" });
    const r = await u.run(["init", "--provider", "thunder", "--url", th.url, "--admin-password-env", "PW", "--yes"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("Thunder: created");
    expect(r.stderr).toMatch(/✓ first token/);
    expect(r.stderr).toContain(`Created profile "thunder" (thunder, client_credentials, ${th.url}, client secret in the file store).`);
    expect((await u.run(["token", "--profile", "thunder"])).code).toBe(0);
  });

  it("--yes --clients claude configures Claude Code for the new profile", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file", S: "sandbox-secret", PATH: "/usr/bin:/bin" });
    const r = await u.run(["init", "--provider", "oidc", "--profile", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--grant", "client_credentials", "--client-secret-env", "S", "--scope", "mcp:read", "--mcp-url", sb.mcpUrl, "--clients", "claude", "--yes"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Claude Code: configured \(.*\.claude\.json\)/);
    const claude = JSON.parse(readFileSync(join(u.home, ".claude.json"), "utf8"));
    expect(JSON.stringify(claude)).toContain(sb.mcpUrl);
  });

  it("--yes --clients gemini,codex: every client add-client supports is accepted and configured", async () => {
    t = createTestContext({ env: { PATH: "/nonexistent" } });
    const args = ["init", "--provider", "oidc", "--profile", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--mcp-url", sb.mcpUrl];
    const code = await t.run([...args, "--clients", "gemini,codex", "--yes"]);
    expect(code, t.stderr()).toBe(0);
    const home = t.env.HOME!;
    expect(t.stderr()).toContain(`Gemini CLI: configured (${join(home, ".gemini", "settings.json")})`);
    expect(t.stderr()).toContain(`Codex: configured (${join(home, ".codex", "config.toml")})`);
    for (const f of [join(home, ".gemini", "settings.json"), join(home, ".codex", "config.toml")]) {
      const text = readFileSync(f, "utf8");
      expect(text).toContain(sb.mcpUrl);
      expect(text).toMatch(/"proxy", "--profile", "dev"|"proxy",\s*"--profile",\s*"dev"/);
    }
  });

  it("the wizard offers each installed client the registry has (Codex, Gemini CLI too)", async () => {
    t = createTestContext({ interactive: true, env: { PATH: "/nonexistent" }, answers: [(q) => !q.startsWith("Sign in"), (q) => !q.startsWith("Sign in"), (q) => !q.startsWith("Sign in")] });
    // Data only the clients write: a folder alone (or one holding only their MCP config) is no install.
    mkdirSync(join(t.env.HOME!, ".codex"));
    writeFileSync(join(t.env.HOME!, ".codex", "auth.json"), "{}");
    mkdirSync(join(t.env.HOME!, ".gemini"));
    writeFileSync(join(t.env.HOME!, ".gemini", "installation_id"), "x");
    const code = await t.run(["init", "--provider", "oidc", "--profile", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--grant", "authorization_code", "--scope", "openid", "--mcp-url", sb.mcpUrl]);
    expect(code, t.stderr()).toBe(0);
    expect(t.asked).toEqual(["Sign in now (opens your browser)?", "Configure Codex to use this profile?", "Configure Gemini CLI to use this profile?"]);
    expect(t.stderr()).toMatch(/Codex: configured[\s\S]*Gemini CLI: configured/);
  });

  it("--clients names the supported clients when one is unknown (exit 2)", async () => {
    t = createTestContext({ env: { PATH: "/nonexistent" } });
    expect(await t.run(["init", "--provider", "oidc", "--profile", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--mcp-url", sb.mcpUrl, "--clients", "notepad", "--yes"])).toBe(2);
    expect(t.stderr()).toContain(`--clients: unknown client "notepad" (one of: ${CLIENTS.map((c) => c.id).join(", ")}, or none)`);
    expect(CLIENTS.map((c) => c.id)).toContain("goose"); // every writer, not a list kept here
  });

  it("--yes with a required value missing names its flag", async () => {
    t = createTestContext();
    expect(await t.run(["init", "--provider", "keycloak", "--yes"])).toBe(2);
    expect(t.stderr().trim()).toMatch(/^error: --url is required/);
  });
});

/** A port nothing listens on (bound, then closed): a URL there is refused at once. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** What @inquirer/prompts throws when Ctrl-C is pressed at a question. */
const ctrlC = (): never => {
  throw Object.assign(new Error("User force closed the prompt with SIGINT"), { name: "ExitPromptError" });
};

describe("the wizard asks again instead of quitting", () => {
  it("a URL without scheme, an unreachable server, an empty answer, an empty secret, a bad name and No to replace: each asked again with the reason", async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    t = createTestContext({
      interactive: true,
      env: { PATH: "/nonexistent" },
      answers: [
        "oidc",
        sb.issuer.replace(/^http:\/\//, ""), // no scheme
        dead, // nothing listens there
        sb.issuer,
        "", // client id: required
        "sandbox-m2m",
        "client_credentials",
        "", // the secret: required
        "sandbox-secret",
        "mcp:read",
        "",
        "my profile", // a space
        "taken",
        false, // keep the existing "taken"
        "", // the default offered next: taken-2
      ],
    });
    await t.ctx.updateConfig((c) => void (c.profiles.taken = { provider: "oidc", issuer: "https://idp.example.invalid", clientId: "x", grant: "client_credentials" }));
    const code = await t.run(["init", "--clients", "none"]);
    expect(code, t.stderr()).toBe(0);
    const host = sb.issuer.replace(/^http:\/\//, "");
    expect(t.rejected).toEqual([
      `must be an http(s) URL, got "${host}" (did you mean http://${host}?)`,
      expect.stringMatching(new RegExp(`^cannot reach ${dead.replace("http://", "")}: ECONNREFUSED`)),
      "an answer is needed",
      "an answer is needed",
      'use letters, digits, ".", "_" or "-" (max 64), got "my profile"',
    ]);
    expect(t.asked.filter((q) => q === "Issuer URL:")).toHaveLength(3);
    expect(t.asked.slice(-4)).toEqual(["Name of the profile to save:", "Name of the profile to save:", 'Profile "taken" exists. Replace it?', "Name of the profile to save:"]);
    const profiles = JSON.parse(readFileSync(join(t.configDir, "config.json"), "utf8")).profiles;
    expect(profiles.taken.issuer).toBe("https://idp.example.invalid");
    expect(profiles["taken-2"]).toMatchObject({ issuer: sb.issuer, clientId: "sandbox-m2m" });
  });

  it("without a terminal the same mistakes exit 2 naming the flag, with the easy fix", async () => {
    t = createTestContext();
    expect(await t.run(["init", "--provider", "oidc", "--issuer", "idp.example.invalid", "--client-id", "c", "--yes"])).toBe(2);
    expect(t.stderr().trim()).toBe('error: --issuer must be an http(s) URL, got "idp.example.invalid" (did you mean https://idp.example.invalid?)');
  });

  it("Thunder: an unreachable URL is asked again at once; the loopback port is not asked for a machine-to-machine client, nor \"issue a new secret?\" before the client is known to exist", async () => {
    th = await startThunder({});
    // URL, admin user, password, grant, [port], application name, client id, lifetime, profile name.
    const answers = (grant: string) => [th!.url, "", "admin", grant, ...(grant === "authorization_code" ? ["", "MCP people", "", "", "people"] : ["", "", "", ""])];
    // Thunder's URL is checked right after its question: one where nothing answers is asked again.
    const dead = `http://127.0.0.1:${await closedPort()}`;
    t = createTestContext({ interactive: true, env: { PATH: "/nonexistent" }, answers: [dead, ...answers("client_credentials")] });
    expect(await t.run(["init", "--provider", "thunder", "--clients", "none"]), t.stderr()).toBe(0);
    expect(t.rejected).toEqual([expect.stringMatching(/^cannot reach 127\.0\.0\.1:\d+: ECONNREFUSED/)]);
    t.asked.shift();
    expect(t.asked).toEqual(["Thunder URL:", "Admin user:", 'Password of Thunder user "admin":', "Who will use the client:", "Application name:", "OAuth client id:", "Access token lifetime (seconds):", "Name of the profile to save:"]);
    t.cleanup();
    t = createTestContext({ interactive: true, env: { PATH: "/nonexistent" }, answers: [...answers("authorization_code"), false] });
    expect(await t.run(["init", "--provider", "thunder", "--clients", "none", "--no-login"]), t.stderr()).toBe(0);
    expect(t.asked).toContain("Loopback port for the login redirect:");
  });

  it("Thunder: a client that exists without a secret mcp-auth holds: asked then whether to issue a new one", async () => {
    th = await startThunder({});
    const first = createTestContext({ env: { PW: "admin" } });
    expect(await first.run(["init", "--provider", "thunder", "--url", th.url, "--admin-password-env", "PW", "--yes"]), first.stderr()).toBe(0);
    first.cleanup();
    // Another machine (another config dir): the application is there, its secret is not.
    t = createTestContext({ interactive: true, env: { PATH: "/nonexistent", PW: "admin" }, answers: ["", "client_credentials", "", "", "", "", true] });
    expect(await t.run(["init", "--provider", "thunder", "--url", th.url, "--admin-password-env", "PW", "--clients", "none"]), t.stderr()).toBe(0);
    expect(t.asked.at(-1)).toMatch(/^application "MCP client" already exists \(id .*\) and mcp-auth does not hold its client secret\. Issue it a new secret/);
    expect(t.stderr()).toContain("Thunder: rotated");
    expect(await t.run(["token", "--profile", "thunder"])).toBe(0);
  });
});

describe("Ctrl-C leaves nothing", () => {
  it("before the replacing profile was saved (at \"issue a new secret?\"): the profile it would replace keeps its cached token", async () => {
    th = await startThunder({});
    const first = createTestContext({ env: { PW: "admin" } });
    expect(await first.run(["init", "--provider", "thunder", "--url", th.url, "--admin-password-env", "PW", "--yes"]), first.stderr()).toBe(0);
    first.cleanup();
    t = createTestContext({ interactive: true, env: { PATH: "/nonexistent", PW: "admin", S: "sandbox-secret" }, answers: ["", "client_credentials", "", "", "", "", true, ctrlC] });
    expect(await t.run(["profiles", "add", "thunder", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "S", "--resource", sb.mcpUrl])).toBe(0);
    expect(await t.run(["token", "--profile", "thunder"])).toBe(0);
    const token = t.stdout();
    const before = readFileSync(join(t.configDir, "config.json"), "utf8");
    expect(await t.run(["init", "--provider", "thunder", "--url", th.url, "--admin-password-env", "PW", "--clients", "none"])).toBe(130);
    expect(t.asked.slice(-2)).toEqual(['Profile "thunder" exists. Replace it?', expect.stringMatching(/Issue it a new secret/)]);
    expect(readFileSync(join(t.configDir, "config.json"), "utf8")).toBe(before);
    expect(await t.run(["token", "--profile", "thunder"])).toBe(0);
    expect(t.stdout()).toBe(token + token); // the cached one
  });

  it("at \"Sign in now?\": the new profile and its secret are gone", async () => {
    t = createTestContext({ interactive: true, env: { PATH: "/nonexistent" }, answers: [ctrlC] });
    const code = await t.run(["init", "--provider", "oidc", "--profile", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--scope", "openid", "--mcp-url", sb.mcpUrl]);
    expect(code).toBe(130);
    expect(t.asked).toEqual(["Sign in now (opens your browser)?"]);
    expect(JSON.parse(readFileSync(join(t.configDir, "config.json"), "utf8")).profiles.dev).toBeUndefined();
  });

  it("after replacing a profile: the one it replaced comes back, with its secret", async () => {
    t = createTestContext({ interactive: true, env: { PATH: "/nonexistent", S: "sandbox-secret" }, answers: ["dev", true, ctrlC] });
    expect(await t.run(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "S", "--resource", sb.mcpUrl])).toBe(0);
    const before = JSON.parse(readFileSync(join(t.configDir, "config.json"), "utf8")).profiles.dev;
    const code = await t.run(["init", "--provider", "oidc", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--scope", "openid", "--mcp-url", sb.mcpUrl]);
    expect(code, t.stderr()).toBe(130);
    expect(t.asked).toEqual(["Name of the profile to save:", 'Profile "dev" exists. Replace it?', "Sign in now (opens your browser)?"]);
    expect(JSON.parse(readFileSync(join(t.configDir, "config.json"), "utf8")).profiles.dev).toEqual(before);
    expect(await t.run(["token", "--profile", "dev"]), t.stderr()).toBe(0); // its secret is back
  });
});

// ---- a person at a real terminal ----

function tmux(...args: string[]): string {
  return execFileSync("tmux", args, { encoding: "utf8" });
}


/** `init` on a real pty; the shell around it survives a Ctrl-C (its trap is reset for the child) to print the exit code. */
function wizard(name: string, env: Record<string, string>, args: string[] = []) {
  const vars = Object.entries({ TERM: "xterm-256color", PATH: "/usr/bin:/bin", ...env }).map(([k, v]) => `${k}=${v}`);
  tmux("new-session", "-d", "-s", name, "-c", env.HOME!, "-x", "200", "-y", "50", "sh", "-c", 'trap : INT; "$@"; echo "[exit $?]"; sleep 600', "sh", "env", "-i", ...vars, process.execPath, BIN, "init", ...args);
  return {
    screen: () => tmux("capture-pane", "-p", "-t", name, "-S", "-200"),
    keys: (...k: string[]) => tmux("send-keys", "-t", name, ...k),
    type: (text: string) => tmux("send-keys", "-t", name, "-l", text),
    kill: () => {
      try {
        tmux("kill-session", "-t", name);
      } catch {
        /* gone */
      }
    },
  };
}

describe("init on a real terminal (tmux)", () => {
  it("a person picks the IdP with the arrow keys, types the answers (the secret hidden) and gets a working profile", async () => {
    const home = mkdtempSync(join(tmpdir(), "mcp-auth-init-"));
    const cfg = join(home, "cfg");
    const w = wizard(`mcp-auth-init-${process.pid}`, { HOME: home, MCP_AUTH_CONFIG_DIR: cfg, MCP_AUTH_STORE: "file" }, ["--clients", "none"]);
    try {
      await until(w.screen, /Which identity provider/);
      // "Another OpenID Connect server" is the last but one choice: two steps up, wrapping around.
      w.keys("Up");
      await until(w.screen, /❯ I only have the MCP server URL/);
      w.keys("Up");
      await until(w.screen, /❯ Another OpenID Connect server/);
      w.keys("Enter");
      await until(w.screen, /Issuer URL/);
      w.type(sb.issuer);
      w.keys("Enter");
      await until(w.screen, /Client id/);
      w.type("sandbox-m2m");
      w.keys("Enter");
      // Plain words in the list; the flag keeps the grant's name.
      await until(w.screen, /How are tokens obtained[\s\S]*machine-to-machine \(client credentials/);
      // authorization_code (default), device_code, client_credentials: two steps down.
      w.keys("Down");
      w.keys("Down");
      w.keys("Enter");
      await until(w.screen, /client secret/);
      w.type("sandbox-secret");
      w.keys("Enter");
      await until(w.screen, /Scopes/);
      w.keys("C-u");
      w.type("mcp:read");
      w.keys("Enter");
      await until(w.screen, /MCP server URL/);
      w.type(sb.mcpUrl);
      w.keys("Enter");
      await until(w.screen, /Name of the profile to save/);
      w.type("dev");
      w.keys("Enter");
      const screen = await until(w.screen, /\[exit \d+\]/);
      expect(screen).toContain("[exit 0]");
      expect(screen).toContain('Created profile "dev"');
      expect(screen).not.toContain("sandbox-secret"); // typed, but shown as *
      expect(screen).toContain(`  node ${realpathSync(BIN)} token --profile dev\n`); // started outside any project, without mcp-auth on PATH
      const config = JSON.parse(readFileSync(join(cfg, "config.json"), "utf8"));
      expect(config.profiles.dev).toMatchObject({ clientId: "sandbox-m2m", grant: "client_credentials" });
    } finally {
      w.kill();
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("a wrong answer is shown its reason under the question and asked again, on the real prompt", async () => {
    const home = mkdtempSync(join(tmpdir(), "mcp-auth-init-"));
    const cfg = join(home, "cfg");
    const w = wizard(`mcp-auth-init-r-${process.pid}`, { HOME: home, MCP_AUTH_CONFIG_DIR: cfg, MCP_AUTH_STORE: "file" }, ["--provider", "mcp", "--clients", "none", "--no-login"]);
    try {
      await until(w.screen, /MCP server URL/);
      const bare = sb.mcpUrl.replace(/^http:\/\//, "");
      w.type(bare);
      w.keys("Enter");
      await until(w.screen, new RegExp(`did you mean http://${bare.replace(/[.]/g, "\\.")}\\?`));
      w.keys("C-u");
      w.type(sb.mcpUrl);
      w.keys("Enter");
      await until(w.screen, /Name of the profile to save/);
      w.keys("C-u");
      w.type("my profile");
      w.keys("Enter");
      await until(w.screen, /use letters, digits/);
      w.keys("C-u");
      w.type("mine");
      w.keys("Enter");
      const screen = await until(w.screen, /\[exit \d+\]/);
      expect(screen).toContain("[exit 0]");
      expect(JSON.parse(readFileSync(join(cfg, "config.json"), "utf8")).profiles.mine).toMatchObject({ mcpUrl: sb.mcpUrl });
    } finally {
      w.kill();
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("Ctrl-C during the sign-in (set up from an MCP URL) exits 130 and leaves no profile and no lock file", async () => {
    const home = mkdtempSync(join(tmpdir(), "mcp-auth-init-"));
    const cfg = join(home, "cfg");
    const w = wizard(`mcp-auth-init-s-${process.pid}`, { HOME: home, MCP_AUTH_CONFIG_DIR: cfg, MCP_AUTH_STORE: "file" }, ["--provider", "mcp", "--clients", "none"]);
    try {
      await until(w.screen, /MCP server URL/);
      w.type(sb.mcpUrl);
      w.keys("Enter");
      await until(w.screen, /Name of the profile to save/);
      w.keys("Enter");
      await until(w.screen, /Sign in now/);
      w.keys("Enter");
      // The sign-in waits for the browser: the authorization URL (at the sandbox's IdP) is on the screen.
      await until(w.screen, new RegExp(`${new URL(sb.issuer).host}/\\S*auth`));
      expect(readdirSync(join(cfg, "locks")).filter((f) => f.endsWith(".lock"))).not.toEqual([]);
      w.keys("C-c");
      const screen = await until(w.screen, /\[exit \d+\]/);
      expect(screen).toContain("[exit 130]");
      expect(screen).not.toMatch(/\n\s+at /);
      expect(JSON.parse(readFileSync(join(cfg, "config.json"), "utf8")).profiles).toEqual({});
      expect(readdirSync(join(cfg, "locks")).filter((f) => f.endsWith(".lock"))).toEqual([]);
    } finally {
      w.kill();
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("Ctrl-C at a question exits 130, with no stack trace and nothing written", async () => {
    const home = mkdtempSync(join(tmpdir(), "mcp-auth-init-"));
    const cfg = join(home, "cfg");
    const w = wizard(`mcp-auth-init-c-${process.pid}`, { HOME: home, MCP_AUTH_CONFIG_DIR: cfg, MCP_AUTH_STORE: "file" }, ["--provider", "oidc", "--profile", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--grant", "client_credentials"]);
    try {
      await until(w.screen, /client secret/);
      w.type("sandbox-se");
      w.keys("C-c");
      const screen = await until(w.screen, /\[exit \d+\]/);
      expect(screen).toContain("[exit 130]");
      expect(screen).not.toMatch(/\n\s+at /);
      expect(existsSync(join(cfg, "config.json"))).toBe(false);
      expect(existsSync(join(cfg, "secrets.json"))).toBe(false);
    } finally {
      w.kill();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
