import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandbox } from "../src/sandbox/server.js";
import { BIN, ROOT, runProcess, user, type Sandboxed } from "./helpers/cli.js";
import { addSandboxClient, useSandbox } from "./helpers/sandbox.js";

/**
 * `mcp-auth serve` as a process: it prints the URL and header once on stdout, an MCP client given only
 * those reaches the sandbox's server through it, and a signal stops it with exit 0. The secret is on
 * stdout only, never on stderr (with --debug too). Then real MCP clients (Claude Code, Gemini CLI),
 * given only the entry `serve --client` wrote (a URL and a static header), connect to the sandbox's
 * server through it, in front of a server of either protocol era (a 2026-07-28-only one is bridged).
 */
const sb = useSandbox({ protocol: "legacy" });
let u: Sandboxed;

beforeAll(async () => {
  u = user({ MCP_AUTH_STORE: "file" });
  await addSandboxClient(u, sb);
}, 60_000);
afterAll(() => u?.cleanup());

describe("mcp-auth serve", () => {
  it("prints the URL and header once; a client with only those calls the server; SIGTERM → exit 0; the secret is never on stderr", async () => {
    const child = spawn(process.execPath, [BIN, "--debug", "serve", "--profile", "sb"], { env: u.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on("close", (c) => r(c)));
    await new Promise<void>((r) => child.stdout.on("data", (d) => ((out += d), out.includes("\n") && r())));
    const printed = JSON.parse(out) as { url: string; headers: { Authorization: string } };
    expect(printed.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(printed.headers.Authorization).toMatch(/^Bearer [A-Za-z0-9_-]{43}$/);
    const client = new Client({ name: "static-header-client", version: "0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(printed.url), { requestInit: { headers: printed.headers } }));
    const r = await client.callTool({ name: "whoami", arguments: {} });
    expect(JSON.parse((r.content as Array<{ text: string }>)[0]!.text)).toMatchObject({ client_id: "sandbox-m2m" });
    await client.close();
    child.kill("SIGTERM");
    expect(await exited, err).toBe(0);
    expect(out.trim().split("\n")).toHaveLength(1);
    expect(err).toContain(`serving profile "sb"`);
    expect(err).not.toContain(printed.headers.Authorization.slice(7));
  }, 30_000);

  it("a port already taken: exit 2 with a one-line error", async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
    const port = (taken.address() as { port: number }).port;
    const r = await u.run(["serve", "--profile", "sb", "--port", String(port)]);
    taken.close();
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
    expect(r.stdout).toBe("");
  }, 30_000);
});

describe("a static-header entry written by serve --client, used by a real MCP client", () => {
  const BINS = join(ROOT, "node_modules", ".bin");
  /** How each client lists its servers, connecting to each (docs/clients.md), and where serve --client wrote. */
  const CLIENTS = {
    claude: { argv: [join(BINS, "claude"), "mcp", "list"], env: {}, config: ".claude.json", servers: "mcpServers" },
    // The folder is trusted for the session (docs/cli/trusted-folders.md), else Gemini CLI disables every server.
    gemini: { argv: [process.execPath, join(BINS, "gemini"), "mcp", "list"], env: { GEMINI_CLI_TRUST_WORKSPACE: "true" }, config: join(".gemini", "settings.json"), servers: "mcpServers" },
  } as const;
  // One client per era of server: Claude Code bridged to a 2026-07-28-only server, Gemini CLI passed through to a legacy one.
  it.each([
    ["claude", "2026-07-28"],
    ["gemini", "legacy"],
  ] as const)("%s's server list connects through serve to a %s server", async (name, protocol) => {
    const c = CLIENTS[name];
    const server = await startSandbox({ protocol });
    const v = user({ MCP_AUTH_STORE: "file", NO_COLOR: "1", ...c.env });
    await addSandboxClient(v, server);
    const child = spawn(process.execPath, [BIN, "serve", "--profile", "sb", "--client", name, "--scope", "user", "--name", "served"], { env: v.env, stdio: ["ignore", "pipe", "pipe"] });
    try {
      let out = "";
      let err = "";
      child.stderr.on("data", (d) => (err += d));
      await new Promise<void>((r, j) => {
        child.stdout.on("data", (d) => ((out += d), out.includes("\n") && r()));
        child.on("close", (code) => j(new Error(`serve exited with ${code}: ${err}`)));
      });
      const printed = JSON.parse(out) as { url: string; headers: { Authorization: string } };
      // The entry holds the endpoint and its secret, not a token: only serve turns it into one the server takes.
      const entry = (JSON.parse(readFileSync(join(v.home, c.config), "utf8")) as Record<string, Record<string, { headers: Record<string, string> }>>)[c.servers]!.served!;
      expect(entry.headers).toEqual(printed.headers);
      expect(JSON.stringify(entry)).toContain(printed.url);
      const list = await runProcess(c.argv[0], c.argv.slice(1), v.env, undefined, 90_000, v.home);
      const line = (list.stdout + list.stderr).split("\n").find((l) => l.includes("served:")) ?? "";
      expect(line, list.stdout + list.stderr + err).toMatch(/- \S* ?Connected/);
      expect(err).not.toContain(printed.headers.Authorization.slice(7));
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("close", r)));
      v.cleanup();
      await server.close();
    }
  }, 120_000);
});
