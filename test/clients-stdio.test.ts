import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { splitCommand } from "../src/core/argv.js";
import { describeEntry } from "../src/core/clients.js";
import { parseToml, loadToml } from "../src/store/toml.js";
import { startSandbox, type Sandbox } from "../src/sandbox/server.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { ROOT, runProcess, user, type Sandboxed } from "./helpers/cli.js";
import { addSandboxClient } from "./helpers/sandbox.js";

/**
 * add-client --stdio-command: every client that takes a stdio entry gets one running the stdio server
 * under `mcp-auth exec` (the command line split into an argv, never through a shell). Then the real
 * Claude Code CLI starts such an entry (`claude mcp list` connects to it) with the SDK-built stdio
 * server of test/fixtures/stdio/, which calls the sandbox's MCP server with the token exec gave it.
 */
const CLIENTS = ["claude", "claude-desktop", "cursor", "vscode", "codex", "gemini", "windsurf"];
const startDir = process.cwd();
let t: TestContext;

beforeEach(async () => {
  t = createTestContext();
  const proj = join(t.env.HOME!, "proj");
  mkdirSync(proj);
  process.chdir(proj);
  expect(await t.run(["profiles", "add", "gh", "--issuer", "https://idp.example.invalid", "--client-id", "cli"])).toBe(0);
});
afterEach(() => {
  process.chdir(startDir);
  t.cleanup();
});

const run = (argv: string[]) => t.capture(argv);

/** The server object of a --print snippet (JSON, or Codex's TOML table). */
async function printed(client: string, out: string): Promise<{ command: string; args: string[] }> {
  if (client === "codex") {
    await loadToml();
    return (parseToml(out, "snippet") as { mcp_servers: Record<string, { command: string; args: string[] }> }).mcp_servers.gh!;
  }
  const doc = JSON.parse(out) as Record<string, Record<string, { command: string; args: string[] }>>;
  return Object.values(doc)[0]!.gh!;
}

describe("add-client --stdio-command", () => {
  it.each(CLIENTS)("%s: the entry runs mcp-auth exec with the server's argv after --, and needs no MCP URL", async (client) => {
    const r = await run(["add-client", client, "--profile", "gh", "--stdio-command", `npx -y @scope/server --title "a b" --q 'it''s' x\\ y`, "--env-name", "GITHUB_TOKEN", "--print"]);
    expect(r.code, r.err).toBe(0);
    const s = await printed(client, r.out);
    const argv = [s.command, ...s.args];
    const exec = argv.indexOf("exec");
    expect(argv.slice(exec)).toEqual(["exec", "--profile", "gh", "--env-name", "GITHUB_TOKEN", "--", "npx", "-y", "@scope/server", "--title", "a b", "--q", "its", "x y"]);
    expect(describeEntry(s)).toEqual({ ours: true, profile: "gh" });
  });

  it("the default variable is not spelled out; the entry is written, and remove-client gives the file back", async () => {
    const add = await run(["add-client", "cursor", "--profile", "gh", "--scope", "user", "--stdio-command", "my-server stdio"]);
    expect(add.code, add.err).toBe(0);
    const file = join(t.env.HOME!, ".cursor", "mcp.json");
    const entry = JSON.parse(readFileSync(file, "utf8")).mcpServers.gh;
    expect(entry.args.slice(entry.args.indexOf("exec"))).toEqual(["exec", "--profile", "gh", "--", "my-server", "stdio"]);
    const rm = await run(["remove-client", "cursor", "--name", "gh", "--scope", "user"]);
    expect(rm.code, rm.err).toBe(0);
  });

  it.each([
    [["--stdio-command", "srv", "--strategy", "header"], "--stdio-command writes a stdio entry: it goes with --strategy proxy only"],
    [["--stdio-command", "srv", "--url", "https://mcp.example.invalid/mcp"], "--stdio-command and --url exclude each other"],
    [["--env-name", "X"], "--env-name only applies with --stdio-command"],
    [["--stdio-command", "srv", "--env-name", "A-B"], '--env-name "A-B" is not an environment variable name'],
    [["--stdio-command", "srv | tee log"], '--stdio-command: "|" is shell syntax'],
    [["--stdio-command", "srv $HOME"], '--stdio-command: "$" is shell syntax'],
    [["--stdio-command", "srv 'open"], "--stdio-command: unterminated ' quote"],
    [["--stdio-command", "   "], "--stdio-command: no command given"],
  ])("%j is refused (exit 2, nothing written)", async (args, message) => {
    const r = await run(["add-client", "cursor", "--profile", "gh", ...args]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
  });
});

describe("splitCommand: a command line as an argv, without a shell", () => {
  it.each([
    ["node server.js", ["node", "server.js"]],
    ["  a   b\tc ", ["a", "b", "c"]],
    [`a "b c" 'd e'`, ["a", "b c", "d e"]],
    [`a "say \\"hi\\"" 'no \\ escape'`, ["a", 'say "hi"', "no \\ escape"]],
    [`a b\\ c`, ["a", "b c"]],
    [`a ''`, ["a", ""]],
    [`npx -y @org/pkg@1.2.3 --opt=x,y:z`, ["npx", "-y", "@org/pkg@1.2.3", "--opt=x,y:z"]],
    [`a 'x|y;$z'`, ["a", "x|y;$z"]],
    [`a b#c d~e`, ["a", "b#c", "d~e"]],
  ])("%s", (line, argv) => {
    expect(splitCommand(line)).toEqual(argv);
  });

  it.each(["a && b", "a; b", "a > f", "a `b`", 'a "$HOME"', "a *.js", "~/bin/srv", "a #comment", "(a)", "a\\", "a\nb", "a\r\nb"])("%j is refused", (line) => {
    expect(() => splitCommand(line)).toThrow(/--stdio-command: /);
  });
});

describe("a --stdio-command entry started by the real Claude Code CLI", () => {
  const CLAUDE = join(ROOT, "node_modules", ".bin", "claude");
  const SERVER = join(ROOT, "test", "fixtures", "stdio", "token-server.mjs");
  let sb: Sandbox;
  let u: Sandboxed;
  beforeAll(async () => {
    sb = await startSandbox({ protocol: "legacy" });
    // The server checks its token against the sandbox before it serves: a refused token fails the connection.
    u = user({ MCP_AUTH_STORE: "file", UPSTREAM_MCP_URL: sb.mcpUrl, CHECK_AT_START: "1" });
    await addSandboxClient(u, sb, { mcpUrl: null });
  }, 60_000);
  afterAll(async () => {
    u?.cleanup();
    await sb?.close();
  });

  it("claude mcp list connects: the server starts under exec and gets a token the sandbox accepts", async () => {
    const add = await u.run(["add-client", "claude", "--scope", "user", "--profile", "sb", "--name", "tokens", "--stdio-command", `${process.execPath} ${SERVER}`]);
    expect(add.code, add.stderr).toBe(0);
    const list = await runProcess(CLAUDE, ["mcp", "list"], u.env, undefined, 90_000, u.home);
    expect(list.stdout, list.stderr).toMatch(/tokens: .*Connected/);
  }, 120_000);
});
