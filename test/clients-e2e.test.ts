import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandbox, type Sandbox } from "../src/sandbox/server.js";
import { BIN, ROOT, runProcess, user, type RunResult, type Sandboxed } from "./helpers/cli.js";
import { mcpInitialize, startKubernetesMcp, type KubernetesMcp } from "./helpers/k8s-mcp.js";
import { expireTokens } from "./helpers/sandbox.js";
import { gemini } from "../src/clients/gemini.js";

/**
 * add-client end to end: the real binary, the real Claude Code CLI (npm @anthropic-ai/claude-code) and
 * the real kubernetes-mcp-server behind the sandbox IdP; the headersHelper run the way Claude Code runs
 * it (sh -c, a minimal PATH, CLAUDE_CODE_MCP_SERVER_* set, credential-looking variables removed).
 * Then crash safety: a failing rename, or a kill in the middle of writing, leaves the original intact.
 */
const AUDIENCE = "urn:kcp:mcp";
const CLAUDE = join(ROOT, "node_modules", ".bin", "claude");
let sb: Sandbox;
let k8s: KubernetesMcp;
let u: Sandboxed;

beforeAll(async () => {
  sb = await startSandbox();
  k8s = await startKubernetesMcp({ issuer: sb.issuer, audience: AUDIENCE });
  u = user({ MCP_AUTH_STORE: "file", PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH}` });
  const r = await u.run(["profiles", "add", "k8s.dev", "--issuer", sb.issuer, "--client-id", sb.clients.m2m.clientId, "--client-secret-env", "SB_SECRET", "--grant", "client_credentials", "--resource", AUDIENCE, "--mcp-url", k8s.url], { env: { SB_SECRET: sb.clients.m2m.clientSecret } });
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await k8s?.stop();
  await sb?.close();
  u?.cleanup();
});

function runIn(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<RunResult> {
  return runProcess(cmd, args, env, undefined, timeoutMs, cwd);
}

/** The environment Claude Code gives a project helper: credential-looking variables removed (research §1.3). */
function strippedEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const words = ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "KEY", "AUTH", "COOKIE", "PAT", "DSN", "CREDENTIAL", "CREDENTIALS"];
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.split("_").some((p) => words.includes(p.toUpperCase()))));
}

/** Runs a headersHelper as Claude Code does; answering within Claude Code's 10 s limit is part of the check. */
async function runHelper(helper: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const r = await runIn(cwd, "/bin/sh", ["-c", helper], { ...env, CLAUDE_CODE_MCP_SERVER_NAME: "k8s-dev", CLAUDE_CODE_MCP_SERVER_URL: k8s.url }, 10_000);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, string>;
}

describe("add-client claude with the real Claude Code CLI", () => {
  it("user scope: claude mcp get shows the entry and claude mcp list connects through the headersHelper", async () => {
    const add = await u.run(["add-client", "claude", "--scope", "user", "--profile", "k8s.dev"]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toContain("through claude mcp add-json");
    const cfg = JSON.parse(readFileSync(join(u.home, ".claude.json"), "utf8"));
    const entry = cfg.mcpServers["k8s-dev"];
    expect(entry).toMatchObject({ type: "http", url: k8s.url });

    const get = await runIn(u.home, CLAUDE, ["mcp", "get", "k8s-dev"], u.env);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toContain(k8s.url);
    expect(get.stdout).toContain("User config");

    const list = await runIn(u.home, CLAUDE, ["mcp", "list"], u.env, 90_000);
    expect(list.stdout, list.stderr + k8s.logs()).toMatch(/k8s-dev: .*Connected/);
    expect(list.stdout).not.toMatch(/k8s-dev: .*Failed/);

    // Once more: nothing to do.
    const again = await u.run(["add-client", "claude", "--scope", "user", "--profile", "k8s.dev"]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("already configured");

    // The helper as Claude Code runs it, with a cold cache too: minimal PATH, no MCP_AUTH_* variables.
    const env = { PATH: "/usr/bin:/bin", HOME: u.home, LANG: "C.UTF-8" };
    for (const cold of [false, true]) {
      if (cold) expireTokens(u);
      const headers = await runHelper(entry.headersHelper, join(u.home, ".claude"), env);
      expect(Object.keys(headers)).toEqual(["Authorization"]);
      const res = await mcpInitialize(k8s.url, headers.Authorization!.replace(/^Bearer /, ""));
      expect(res.status, k8s.logs()).toBe(200);
    }

    const rm = await u.run(["remove-client", "claude", "--scope", "user", "--name", "k8s-dev"]);
    expect(rm.code, rm.stderr).toBe(0);
    const gone = await runIn(u.home, CLAUDE, ["mcp", "get", "k8s-dev"], u.env);
    expect(gone.code).not.toBe(0);
  }, 180_000);

  it("project scope: the committed helper runs mcp-auth from PATH, without MCP_AUTH_* in its environment", async () => {
    const proj = join(u.home, "repo");
    mkdirSync(proj);
    const add = await runIn(proj, process.execPath, [BIN, "add-client", "claude", "--scope", "project", "--profile", "k8s.dev", "--strategy", "helper"], u.env);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toContain("trust dialog");
    const text = readFileSync(join(proj, ".mcp.json"), "utf8");
    expect(text).not.toContain(u.home);
    const helper = JSON.parse(text).mcpServers["k8s-dev"].headersHelper as string;
    // `mcp-auth` installed on PATH, as the note asks.
    const bin = join(u.home, "bin");
    mkdirSync(bin);
    symlinkSync(BIN, join(bin, "mcp-auth"));
    const env = strippedEnv({ ...u.env, PATH: `${bin}:/usr/bin:/bin`, MCP_AUTH_TOKEN_X: "dropped" });
    expect(env.MCP_AUTH_CONFIG_DIR).toBeUndefined();
    expect(env.MCP_AUTH_STORE).toBeUndefined();
    expireTokens(u);
    const headers = await runHelper(helper, proj, env);
    expect((await mcpInitialize(k8s.url, headers.Authorization!.replace(/^Bearer /, ""))).status).toBe(200);
  }, 60_000);
});

describe("add-client claude --strategy native with the real Claude Code CLI", () => {
  it("claude mcp get shows Claude Code's own OAuth with the profile's client id and callback port; remove-client takes it out", async () => {
    const p = await u.run(["profiles", "add", "pub", "--issuer", sb.issuer, "--client-id", "pub-client", "--grant", "authorization_code", "--redirect-port", "8765", "--mcp-url", k8s.url]);
    expect(p.code, p.stderr).toBe(0);
    const add = await u.run(["add-client", "claude", "--scope", "user", "--profile", "pub", "--strategy", "native"]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toContain("http://localhost:8765/callback");
    const get = await runIn(u.home, CLAUDE, ["mcp", "get", "pub"], u.env);
    expect(get.stdout, get.stderr).toContain("OAuth: client_id configured, callback_port 8765");
    const rm = await u.run(["remove-client", "claude", "--scope", "user", "--name", "pub"]);
    expect(rm.code, rm.stderr).toBe(0);
    expect((await runIn(u.home, CLAUDE, ["mcp", "get", "pub"], u.env)).code).not.toBe(0);
  }, 120_000);
});

describe("add-client codex --scope project with the real Codex CLI (@openai/codex)", () => {
  it("Codex loads the project's .codex/config.toml only once the project is trusted, with our start-up time-out", async () => {
    const proj = join(u.home, "codex-proj");
    mkdirSync(proj);
    const add = await runIn(proj, process.execPath, [BIN, "add-client", "codex", "--scope", "project", "--profile", "k8s.dev"], u.env);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toContain("only once you trust the project");
    const codexHome = join(u.home, ".codex-test");
    mkdirSync(codexHome);
    const env = { ...u.env, CODEX_HOME: codexHome };
    const CODEX = join(ROOT, "node_modules", ".bin", "codex");
    const untrusted = await runIn(proj, CODEX, ["mcp", "list"], env);
    expect(untrusted.stdout, untrusted.stderr).not.toContain("k8s-dev");
    writeFileSync(join(codexHome, "config.toml"), `[projects.${JSON.stringify(proj)}]\ntrust_level = "trusted"\n`);
    const get = await runIn(proj, CODEX, ["mcp", "get", "k8s-dev"], env);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(/command: mcp-auth\n/);
    expect(get.stdout).toContain("startup_timeout_sec: 60");
    const rm = await runIn(proj, process.execPath, [BIN, "remove-client", "codex", "--scope", "project", "--name", "k8s-dev"], u.env);
    expect(rm.code, rm.stderr).toBe(0);
    expect(readdirSync(proj)).toEqual([]); // .codex/ was add-client's: gone again
  }, 120_000);
});

describe("the real Gemini CLI (@google/gemini-cli) and the environment of its stdio servers", () => {
  it("drops exactly the variables the gemini writer says it drops, and passes an entry's own env", async () => {
    const home = join(u.home, "gemini-home");
    const proj = join(home, "proj");
    mkdirSync(join(home, ".gemini"), { recursive: true });
    mkdirSync(proj);
    const dump = join(home, "dump.mjs");
    const out = join(home, "env.json");
    writeFileSync(dump, 'import { writeFileSync } from "node:fs";\nwriteFileSync(process.argv[2], JSON.stringify(process.env));\n');
    const server = { command: process.execPath, args: [dump, out], env: { MCP_AUTH_ACCESS_TOKEN_STORE: "keychain" } };
    writeFileSync(join(home, ".gemini", "settings.json"), JSON.stringify({ mcpServers: { dump: server } }));
    writeFileSync(join(home, ".gemini", "trustedFolders.json"), JSON.stringify({ [proj]: "TRUST_FOLDER" })); // stdio servers start only in trusted folders
    const names = ["MCP_AUTH_CONFIG_DIR", "MCP_AUTH_STORE", "MCP_AUTH_TIMEOUT", "MCP_AUTH_DISCOVERY_TTL", "NODE_EXTRA_CA_CERTS", "HTTPS_PROXY", "NO_PROXY", "LANG"];
    const env = { PATH: process.env.PATH, HOME: home, ...Object.fromEntries(names.map((n) => [n, n === "HTTPS_PROXY" ? "http://127.0.0.1:9" : "x"])) };
    const r = await runIn(proj, join(ROOT, "node_modules", ".bin", "gemini"), ["mcp", "list"], env, 90_000);
    expect(r.stdout + r.stderr).toContain("dump");
    const seen = JSON.parse(readFileSync(out, "utf8")) as Record<string, string>;
    for (const n of names) expect([n, n in seen]).toEqual([n, !gemini.dropsEnv!(n)]);
    expect(seen.MCP_AUTH_ACCESS_TOKEN_STORE).toBe("keychain"); // an entry's own env gets through
  }, 120_000);
});

describe("add-client: local scope and static tokens", () => {
  it("local scope goes through claude mcp add-json under projects[<cwd>]", async () => {
    const proj = join(u.home, "local-proj");
    mkdirSync(proj);
    const add = await runIn(proj, process.execPath, [BIN, "add-client", "claude", "--profile", "k8s.dev", "--name", "k8s-local"], u.env, 90_000);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toContain("local scope");
    const get = await runIn(proj, CLAUDE, ["mcp", "get", "k8s-local"], u.env);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toContain("Local config");
    const rm = await runIn(proj, process.execPath, [BIN, "remove-client", "claude", "--name", "k8s-local"], u.env, 90_000);
    expect(rm.code, rm.stderr).toBe(0);
  }, 120_000);

  it("--static-token writes the token itself, privately, and says when it expires", async () => {
    const proj = join(u.home, "static");
    mkdirSync(proj);
    // User scope: a project file is meant to be shared, so --static-token is refused there.
    const r = await runIn(proj, process.execPath, [BIN, "add-client", "cursor", "--scope", "user", "--name", "k8s-static", "--profile", "k8s.dev", "--strategy", "header", "--static-token"], u.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/writes a bearer token into .*stops working at \d{4}-\d\d-\d\dT/);
    const file = join(u.home, ".cursor", "mcp.json");
    const auth = JSON.parse(readFileSync(file, "utf8")).mcpServers["k8s-static"].headers.Authorization as string;
    expect(auth).toMatch(/^Bearer ey/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((await mcpInitialize(k8s.url, auth.slice(7))).status).toBe(200);
    expect((await runIn(proj, process.execPath, [BIN, "remove-client", "cursor", "--name", "k8s-static", "--force"], u.env)).code).toBe(0); // a static entry names no mcp-auth command
  });
});

describe("crash safety", () => {
  const PRELOAD = `
const fs = require("node:fs");
const { syncBuiltinESMExports } = require("node:module");
const target = process.env.CRASH_TARGET;
const rename = fs.renameSync, write = fs.writeSync;
fs.renameSync = (from, to) => {
  if (to === target) {
    if (process.env.CRASH_MODE === "kill-rename") process.kill(process.pid, "SIGKILL");
    if (process.env.CRASH_MODE === "fail-rename") throw Object.assign(new Error("EIO: i/o error, rename"), { code: "EIO" });
  }
  return rename(from, to);
};
fs.writeSync = (fd, buf, off, len, ...rest) => {
  if (process.env.CRASH_MODE === "kill-write" && fd > 2 && typeof buf !== "string" && len > 100) {
    write(fd, buf, off, Math.floor(len / 2));
    process.kill(process.pid, "SIGKILL");
  }
  return write(fd, buf, off, len, ...rest);
};
syncBuiltinESMExports();
`;

  it.each(["fail-rename", "kill-rename", "kill-write"])("%s leaves the original intact", async (mode) => {
    const preload = join(u.home, "crash.cjs");
    writeFileSync(preload, PRELOAD);
    const dir = join(u.home, ".cursor");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "mcp.json");
    copyFileSync(join(__dirname, "fixtures", "clients", "cursor-user.json"), file);
    const original = readFileSync(file, "utf8");
    const r = await runProcess(process.execPath, [BIN, "add-client", "cursor", "--profile", "k8s.dev"], { ...u.env, NODE_OPTIONS: `--require ${preload}`, CRASH_TARGET: file, CRASH_MODE: mode });
    if (mode === "fail-rename") {
      expect(r.code).toBe(5);
      expect(r.stderr).toContain("EIO");
      expect(readdirSync(dir)).toEqual(["mcp.json"]); // no temp file left behind
    } else {
      expect(r.code).toBeNull(); // killed
    }
    expect(readFileSync(file, "utf8")).toBe(original);
    // And a clean run afterwards works.
    const ok = await u.run(["add-client", "cursor", "--profile", "k8s.dev", "--force"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(file, "utf8")).toContain("k8s-dev");
    expect((await u.run(["remove-client", "cursor", "--name", "k8s-dev"])).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(original);
  });
});
