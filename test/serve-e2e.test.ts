import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, user, type Sandboxed } from "./helpers/cli.js";
import { addSandboxClient, useSandbox } from "./helpers/sandbox.js";

/**
 * `mcp-auth serve` as a process: it prints the URL and header once on stdout, an MCP client given only
 * those reaches the sandbox's server through it, and a signal stops it with exit 0. The secret is on
 * stdout only, never on stderr (with --debug too).
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
