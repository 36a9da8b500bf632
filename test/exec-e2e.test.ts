import { spawn } from "node:child_process";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ROOT, user, type Sandboxed } from "./helpers/cli.js";
import { addSandboxClient, useSandbox } from "./helpers/sandbox.js";

/**
 * `mcp-auth exec` as an MCP client launches it: the official SDK's Client over stdio, in front of a real
 * stdio MCP server (test/fixtures/stdio/token-server.mjs) that calls the sandbox's MCP server with the
 * token exec put in its environment. Access tokens live 6 s here, so the token expires twice during one
 * session and exec restarts the server each time, without the client noticing.
 */
const SERVER = join(ROOT, "test", "fixtures", "stdio", "token-server.mjs");
const TTL = 6;
const sb = useSandbox({ tokenTtl: TTL, protocol: "legacy" });
let u: Sandboxed;

beforeAll(async () => {
  u = user({ MCP_AUTH_STORE: "file" });
  await addSandboxClient(u, sb);
}, 60_000);
afterAll(() => u?.cleanup());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("mcp-auth exec", () => {
  it("an SDK client's session outlives two token expiries: each call succeeds, served by a new process with a new token", async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, "exec", "--profile", "sb", "--", process.execPath, SERVER], env: { ...u.env, UPSTREAM_MCP_URL: sb.mcpUrl } as Record<string, string>, stderr: "pipe" });
    let stderr = "";
    transport.stderr?.on("data", (d) => (stderr += d));
    const client = new Client({ name: "e2e", version: "0" });
    await client.connect(transport);
    const pids = new Set<number>();
    const whoami = async () => {
      const r = await client.callTool({ name: "whoami", arguments: {} });
      expect(r.isError, JSON.stringify(r) + stderr).toBeFalsy();
      const w = JSON.parse((r.content as Array<{ text: string }>)[0]!.text) as { pid: number; initializations: number; upstream: { client_id: string } };
      expect(w, stderr).toMatchObject({ initializations: 1, upstream: { client_id: "sandbox-m2m" } });
      pids.add(w.pid);
    };
    // The real clock has to pass real expiries here (the IdP's tokens live TTL seconds).
    // The session runs past two whole token lifetimes.
    const began = Date.now();
    for (let i = 0; i < 120 && (pids.size < 3 || Date.now() - began < 2 * TTL * 1000 + 500); i++) {
      await whoami();
      await sleep(250);
    }
    expect(pids.size, stderr).toBeGreaterThanOrEqual(3);
    await client.close();
    expect(stderr).toBe("");
  }, 90_000);

  it.each([
    ["the server's exit code", ["-e", "process.stdin.resume(); process.stdin.on('end', () => process.exit(7))"], undefined, 7],
    ["128+15 when SIGTERM, passed on to the server, ended it", ["-e", "process.stdin.resume(); process.stdout.write('ready\\n')"], "SIGTERM", 143],
    ["the server's own choice when it handles the signal", ["-e", "process.stdin.resume(); process.on('SIGINT', () => process.exit(0)); process.stdout.write('ready\\n')"], "SIGINT", 0],
  ] as const)("exits with %s", async (_what, script, signal, code) => {
    const child = spawn(process.execPath, [BIN, "exec", "--profile", "sb", "--", process.execPath, ...script], { env: u.env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on("close", (c) => r(c)));
    if (signal) {
      await new Promise<void>((r) => child.stdout.on("data", (d) => ((out += d), out.includes("ready") && r())));
      child.kill(signal);
    } else child.stdin.end();
    expect(await exited, err).toBe(code);
  }, 30_000);

  it("exits as the server did, also when a helper the server started keeps its stdout open (a daemon, an agent)", async () => {
    // The server starts a detached helper that inherits its stdout and outlives it, as npx or a wrapper script's child may.
    const script = "const h = require('node:child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)'], { stdio: 'inherit', detached: true }); h.unref(); process.stdout.write('helper ' + h.pid + '\\n'); process.stdin.resume(); process.stdin.on('end', () => process.exit(5))";
    const child = spawn(process.execPath, [BIN, "exec", "--profile", "sb", "--", process.execPath, "-e", script], { env: u.env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    await new Promise<void>((r) => child.stdout.on("data", (d) => ((out += d), out.includes("\n") && r())));
    const helper = Number(/helper (\d+)/.exec(out)![1]);
    try {
      child.stdin.end();
      expect(await exited, err).toBe(5);
    } finally {
      process.kill(helper, "SIGKILL");
    }
  }, 30_000);

  it.each([
    ["a command that is not found: exit 127", ["/nonexistent/server"], 127, "cannot start /nonexistent/server"],
    ["no command: exit 2", [], 2, "error: missing required argument 'command'"],
    ["an --env-name that is no variable name: exit 2", ["--env-name", "A-B", "--", "cat"], 2, '--env-name "A-B" is not an environment variable name'],
  ])("%s", async (_what, args, code, message) => {
    const r = await u.run(["exec", "--profile", "sb", ...(args[0]?.startsWith("--") || !args.length ? args : ["--", ...args])]);
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe("");
  }, 30_000);
  it("the server's environment has the token and the user's variables, but not mcp-auth's own secrets", async () => {
    const script = "const e = process.env; process.stdout.write(JSON.stringify({ token: Boolean(e.MCP_AUTH_TOKEN), kept: e.KEPT_VAR ?? null, client: e.MCP_AUTH_CLIENT_SECRET ?? null, admin: e.MCP_AUTH_ADMIN_CLIENT_SECRET ?? null }) + '\\n')";
    const env = { KEPT_VAR: "kept", MCP_AUTH_CLIENT_SECRET: "client-secret-from-env", MCP_AUTH_ADMIN_CLIENT_SECRET: "admin-secret-from-env" };
    const r = await u.run(["exec", "--profile", "sb", "--", process.execPath, "-e", script], { env, input: "" });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ token: true, kept: "kept", client: null, admin: null });
  }, 30_000);
});
