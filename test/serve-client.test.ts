import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runServeCommand, type ServeCommandOptions } from "../src/commands/serve.js";
import { startSandbox, type Sandbox } from "../src/sandbox/server.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * `serve --client C`: the endpoint's URL and secret written into the MCP client's config through
 * add-client's plan → apply, replaced on every start (a new port and secret) without --force, never
 * into a shared project file. In-process, against the sandbox IdP (serve checks for a token at start).
 */
let sb: Sandbox;
let t: TestContext;
const startDir = process.cwd();

beforeAll(async () => {
  sb = await startSandbox({ protocol: "legacy" });
}, 60_000);
afterAll(() => sb?.close());
beforeEach(async () => {
  t = createTestContext({ env: { SB_SECRET: "sandbox-secret" } });
  const proj = join(t.env.HOME!, "proj");
  mkdirSync(proj);
  process.chdir(proj);
  const code = await t.run(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--grant", "client_credentials", "--client-secret-env", "SB_SECRET", "--resource", sb.mcpUrl, "--mcp-url", sb.mcpUrl]);
  expect(code, t.stderr()).toBe(0);
});
afterEach(() => {
  process.chdir(startDir);
  t.cleanup();
});

/** One serve run that stops as soon as it is up; what it printed on stdout. */
async function serveOnce(o: Partial<ServeCommandOptions>): Promise<{ url: string; headers: { Authorization: string } }> {
  const before = t.stdout().length;
  await runServeCommand(t.ctx, { profile: "dev", ...o }, (stop) => stop());
  return JSON.parse(t.stdout().slice(before));
}

const cursorFile = () => join(t.env.HOME!, ".cursor", "mcp.json");

describe("serve --client", () => {
  it("writes the URL and the secret printed; the next start replaces them without --force", async () => {
    const a = await serveOnce({ client: "cursor", scope: "user" });
    expect(JSON.parse(readFileSync(cursorFile(), "utf8")).mcpServers.dev).toEqual({ url: a.url, headers: { Authorization: a.headers.Authorization } });
    const b = await serveOnce({ client: "cursor", scope: "user" });
    expect(b.headers.Authorization).not.toBe(a.headers.Authorization);
    expect(JSON.parse(readFileSync(cursorFile(), "utf8")).mcpServers.dev).toEqual({ url: b.url, headers: { Authorization: b.headers.Authorization } });
    // The secret is on stdout and in the client's file, nowhere on stderr.
    expect(t.stderr()).toContain('wrote the endpoint and its secret into Cursor (user scope');
    expect(t.stderr()).not.toContain(b.headers.Authorization.slice(7));
  });

  it("another entry of that name is left alone (exit 5 through main)", async () => {
    mkdirSync(join(t.env.HOME!, ".cursor"));
    const mine = '{ "mcpServers": { "dev": { "url": "https://elsewhere.invalid/mcp" } } }\n';
    writeFileSync(cursorFile(), mine);
    const err = await serveOnce({ client: "cursor", scope: "user" }).catch((e: unknown) => e);
    expect((err as { exitCode?: number }).exitCode).toBe(5);
    expect(readFileSync(cursorFile(), "utf8")).toBe(mine);
  });

  it.each([
    [{ client: "cursor", scope: "project" }, "serve writes its secret into the entry: not into a project file"],
    [{ client: "claude-desktop" }, "Claude Desktop takes no URL with a static header"],
    [{ scope: "user" }, "--scope only applies with --client"],
  ])("%j is refused (exit 2)", async (o, message) => {
    const err = await serveOnce(o).catch((e: unknown) => e);
    expect((err as { exitCode?: number }).exitCode).toBe(2);
    expect((err as Error).message).toContain(message);
  });
});
