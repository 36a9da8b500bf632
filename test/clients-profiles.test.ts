import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { retargetServer } from "../src/core/clients.js";
import { createTestContext, type TestContext, type TestContextOptions } from "./helpers/context.js";

/**
 * Profiles and client entries stay consistent: `profiles remove` offers to remove the entries using the
 * profile (--yes removes them; without a person to ask they are kept, and it says so), `profiles rename`
 * points them at the new name, and `clients` flags an entry whose profile is gone.
 */
const startDir = process.cwd();
let t: TestContext | undefined;
let home: string;
let proj: string;

async function setup(o: TestContextOptions = {}): Promise<TestContext> {
  const c = createTestContext(o);
  t = c;
  home = c.env.HOME!;
  proj = join(home, "proj");
  mkdirSync(proj);
  process.chdir(proj);
  expect(await c.run(["profiles", "add", "dev.k8s", "--issuer", "https://idp.example.invalid", "--client-id", "cli", "--mcp-url", "https://mcp.example.invalid/mcp"])).toBe(0);
  for (const argv of [["add-client", "cursor"], ["add-client", "codex"], ["add-client", "claude", "--scope", "project"], ["add-client", "vscode", "--strategy", "header"]]) {
    const r = await run(argv);
    expect(r.code, r.err).toBe(0);
  }
  return c;
}
afterEach(() => {
  process.chdir(startDir);
  t?.cleanup();
  t = undefined;
});

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = t!;
  const o = c.stdout().length;
  const e = c.stderr().length;
  const code = await c.run(argv);
  return { code, out: c.stdout().slice(o), err: c.stderr().slice(e) };
}

const FILES = () => ({ cursor: join(home, ".cursor", "mcp.json"), codex: join(home, ".codex", "config.toml"), claude: join(proj, ".mcp.json") });

describe("profiles remove", () => {
  it("--yes removes the entries that use the profile (files add-client created go too)", async () => {
    await setup();
    const r = await run(["profiles", "remove", "dev.k8s", "--yes"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("Client entries that use profile \"dev.k8s\":");
    expect(r.err).toContain('Removed "dev-k8s" from Cursor (user scope).');
    for (const f of Object.values(FILES())) expect(() => readFileSync(f)).toThrow();
    // The VS Code header entry names no profile; mcp-auth's record says it was added for this one.
    expect(() => readFileSync(join(home, ".config", "Code", "User", "mcp.json"))).toThrow();
  });

  it("without a person to ask and without --yes, the entries are kept and it says so", async () => {
    await setup();
    const r = await run(["profiles", "remove", "dev.k8s"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("Kept them (pass --yes");
    for (const f of Object.values(FILES())) expect(readFileSync(f, "utf8")).toContain("dev.k8s");
    const list = await run(["clients", "--json"]);
    const flagged = (JSON.parse(list.out) as Array<{ files: Array<{ servers: Array<{ profileMissing?: boolean }> }> }>).flatMap((c) => c.files.flatMap((f) => f.servers)).filter((s) => s.profileMissing);
    expect(flagged).toHaveLength(5); // the project .mcp.json is listed under both of its readers, Claude Code and Copilot CLI
    expect((await run(["clients"])).out).toContain("(no such profile: fix with mcp-auth add-client cursor --scope user");
  });

  it.each([true, false])("a person is asked; answering %s removes or keeps them", async (answer) => {
    await setup({ interactive: true, answers: [answer] });
    const r = await run(["profiles", "remove", "dev.k8s"]);
    expect(r.code, r.err).toBe(0);
    expect(t!.asked).toEqual(["Remove these 4 too?"]);
    expect(existsSync(FILES().codex)).toBe(!answer); // add-client created it: removing the entry deletes it
  });
});

describe("profiles rename", () => {
  it("points every entry at the new name; remove-client then still gives the files back", async () => {
    await setup();
    const r = await run(["profiles", "rename", "dev.k8s", "prod"]);
    expect(r.code, r.err).toBe(0);
    for (const f of Object.values(FILES())) {
      const text = readFileSync(f, "utf8");
      expect(text).not.toContain("dev.k8s");
      expect(text).toMatch(/"prod"|--profile prod /);
    }
    expect(r.err).toContain('Codex (user scope): "dev-k8s" now uses profile "prod".');
    const list = JSON.parse((await run(["clients", "--json"])).out) as Array<{ files: Array<{ servers: Array<{ profile?: string; profileMissing?: boolean }> }> }>;
    expect(list.flatMap((c) => c.files.flatMap((f) => f.servers)).filter((s) => s.profileMissing)).toEqual([]);
    expect((await run(["remove-client", "codex", "--name", "dev-k8s"])).code).toBe(0);
    expect(() => readFileSync(FILES().codex)).toThrow(); // the file add-client created is gone again
  });

  it.each([
    [{ command: "node", args: ["/x/mcp-auth.js", "proxy", "--profile", "a", "--url", "u"] }, { command: "node", args: ["/x/mcp-auth.js", "proxy", "--profile", "b c", "--url", "u"] }],
    [{ type: "http", url: "u", headersHelper: "mcp-auth token --profile a --format headers-json" }, { type: "http", url: "u", headersHelper: "mcp-auth token --profile 'b c' --format headers-json" }],
    [{ command: "node", args: ["proxy", "--profile", "other"] }, undefined],
    [{ url: "u", headers: { Authorization: "Bearer ${MCP_AUTH_TOKEN_A}" } }, undefined],
  ])("retargetServer(%j)", (server, want) => {
    expect(retargetServer(server, "a", "b c")).toEqual(want);
  });
});
