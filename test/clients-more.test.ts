import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { codex } from "../src/clients/codex.js";
import { gemini } from "../src/clients/gemini.js";
import { windsurf } from "../src/clients/windsurf.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { BIN } from "./helpers/cli.js";

/**
 * add-client / remove-client / clients for Codex (TOML), Gemini CLI and Windsurf: exact bytes per client,
 * scope and strategy (goldens in test/fixtures/clients/golden/), refusals, and the listing.
 * Set UPDATE_GOLDENS=1 to rewrite the goldens (then read the diff).
 */
const FIX = join(__dirname, "fixtures", "clients");
const GOLDEN = join(FIX, "golden");
const startDir = process.cwd();
const WRITERS = { codex, gemini, windsurf } as const;
let t: TestContext;
let proj: string;
let home: string;

beforeEach(async () => {
  t = createTestContext();
  home = t.env.HOME!;
  proj = join(home, "proj");
  mkdirSync(proj);
  process.chdir(proj);
  expect(await t.run(["profiles", "add", "dev.k8s", "--issuer", "https://idp.example.invalid", "--client-id", "cli", "--mcp-url", "https://mcp.example.invalid/mcp"])).toBe(0);
});
afterEach(() => {
  process.chdir(startDir);
  t.cleanup();
});

function normalise(text: string): string {
  return text.split(BIN).join("<SCRIPT>").split(process.execPath).join("<NODE>").split(t.configDir).join("<CONFIG>").split(home).join("<HOME>");
}

function fileFor(client: keyof typeof WRITERS, scope: string): string {
  return WRITERS[client].configPath(t.env, "linux", scope as never, proj);
}

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = t.stdout().length;
  const e = t.stderr().length;
  const code = await t.run(argv);
  return { code, out: t.stdout().slice(o), err: t.stderr().slice(e) };
}

function put(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

const GOLDENS: Array<{ id: string; client: keyof typeof WRITERS; scope: string; fixture: string | null; args?: string[] }> = [
  { id: "codex-user.toml", client: "codex", scope: "user", fixture: "codex-user.toml" },
  { id: "codex-user-header.toml", client: "codex", scope: "user", fixture: "codex-user.toml", args: ["--strategy", "header"] },
  { id: "codex-user-new.toml", client: "codex", scope: "user", fixture: null },
  { id: "gemini-user.json", client: "gemini", scope: "user", fixture: "gemini-user.json" },
  { id: "gemini-user-header.json", client: "gemini", scope: "user", fixture: "gemini-user.json", args: ["--strategy", "header"] },
  { id: "gemini-project.json", client: "gemini", scope: "project", fixture: "gemini-project.json" },
  { id: "gemini-project-new.json", client: "gemini", scope: "project", fixture: null },
  { id: "windsurf-user.json", client: "windsurf", scope: "user", fixture: "windsurf-user.json" },
  { id: "windsurf-user-header.json", client: "windsurf", scope: "user", fixture: "windsurf-user.json", args: ["--strategy", "header"] },
];

describe("add-client goldens: Codex, Gemini CLI, Windsurf", () => {
  it.each(GOLDENS)("$id", async (c) => {
    const file = fileFor(c.client, c.scope);
    const original = c.fixture ? readFileSync(join(FIX, c.fixture), "utf8") : null;
    if (original !== null) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, original, { mode: 0o640 });
    }
    const add = await run(["add-client", c.client, "--profile", "dev.k8s", "--scope", c.scope, ...(c.args ?? [])]);
    expect(add.code, add.err).toBe(0);
    const written = readFileSync(file, "utf8");
    const golden = join(GOLDEN, c.id);
    if (process.env.UPDATE_GOLDENS) writeFileSync(golden, normalise(written));
    expect(normalise(written)).toBe(readFileSync(golden, "utf8"));
    expect(statSync(file).mode & 0o777).toBe(original === null ? (c.scope === "project" ? 0o644 : 0o600) : 0o640);
    if (original !== null) expect(written.startsWith(original.replace(/\r?\n$/, "")) || c.client !== "codex").toBe(true); // TOML: appended

    const again = await run(["add-client", c.client, "--profile", "dev.k8s", "--scope", c.scope, ...(c.args ?? [])]);
    expect(again.code).toBe(0);
    expect(again.err).toContain("already configured");
    expect(readFileSync(file, "utf8")).toBe(written);

    const rm = await run(["remove-client", c.client, "--name", "dev-k8s", "--scope", c.scope]);
    expect(rm.code, rm.err).toBe(0);
    if (original === null) expect(existsSync(file)).toBe(false);
    else expect(readFileSync(file, "utf8")).toBe(original);
  });
});

describe("what the entries say", () => {
  it("no token lands in a file unless --static-token is chosen; each client gets its own reference syntax", async () => {
    for (const c of ["codex", "gemini", "windsurf"] as const) expect((await run(["add-client", c, "--strategy", "header"])).code).toBe(0);
    expect(readFileSync(fileFor("codex", "user"), "utf8")).toContain('bearer_token_env_var = "MCP_AUTH_TOKEN_DEV_K8S"');
    expect(JSON.parse(readFileSync(fileFor("gemini", "user"), "utf8")).mcpServers["dev-k8s"]).toEqual({ httpUrl: "https://mcp.example.invalid/mcp", headers: { Authorization: "Bearer ${MCP_AUTH_TOKEN_DEV_K8S}" } });
    expect(JSON.parse(readFileSync(fileFor("windsurf", "user"), "utf8")).mcpServers["dev-k8s"]).toEqual({ serverUrl: "https://mcp.example.invalid/mcp", headers: { Authorization: "Bearer ${env:MCP_AUTH_TOKEN_DEV_K8S}" } });
  });

  it("Codex header strategy tells how to export the variable with mcp-auth token --format env", async () => {
    const r = await run(["add-client", "codex", "--strategy", "header"]);
    expect(r.err).toContain("mcp-auth token --profile dev.k8s --format env --env-name MCP_AUTH_TOKEN_DEV_K8S");
  });

  it("a user-scope proxy entry runs this node and script with absolute paths", async () => {
    const r = await run(["add-client", "codex", "--print"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`command = ${JSON.stringify(process.execPath)}`);
    expect(r.out).toContain(`"proxy", "--profile", "dev.k8s", "--url", "https://mcp.example.invalid/mcp"`);
    expect(existsSync(fileFor("codex", "user"))).toBe(false);
  });

  it.each([
    [["add-client", "codex", "--scope", "project"], /Codex has no scope "project"/],
    [["add-client", "windsurf", "--scope", "project"], /Windsurf has no scope "project"/],
    [["add-client", "gemini", "--strategy", "helper"], /Gemini CLI has no strategy "helper"/],
    [["add-client", "zed"], /supported: claude, claude-desktop, cursor, vscode, codex, gemini, windsurf/],
  ])("%j → exit 2", async (argv, msg) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });
});

describe("file safety", () => {
  it.each([
    ["codex", 'model = "o3"\n[mcp_servers.x\ncommand = "y"\n'],
    ["codex", 'a = 1\na = 2\n'],
    ["gemini", '{ "mcpServers": { '],
    ["windsurf", '{ "mcpServers": [] }'],
  ] as const)("%s: a file that does not parse (or has no servers object) is refused with exit 5, untouched", async (client, text) => {
    const file = fileFor(client, "user");
    put(file, text);
    const r = await run(["add-client", client]);
    expect(r.code).toBe(5);
    expect(readFileSync(file, "utf8")).toBe(text);
    if (client === "codex") expect(r.err).toMatch(/cannot parse .*config\.toml/);
  });

  it("codex: an entry of ours written inline or as dotted keys is refused (exit 5), not re-serialised", async () => {
    const file = fileFor("codex", "user");
    for (const text of ['[mcp_servers]\ndev-k8s = { command = "x" }\n', 'mcp_servers.dev-k8s.command = "x"\n', 'mcp_servers = { other = { command = "x" } }\n']) {
      put(file, text);
      const r = await run(["add-client", "codex", "--force"]);
      expect(r.code, text).toBe(5);
      expect(readFileSync(file, "utf8")).toBe(text);
    }
  });

  it("codex: a different table of that name needs --force; remove-client then gives it back byte for byte", async () => {
    const file = fileFor("codex", "user");
    const mine = 'model = "o3"\r\n\r\n[mcp_servers.dev-k8s]  # mine\r\nurl = "https://mine.example.invalid/mcp"\r\n\r\n[mcp_servers.dev-k8s.http_headers]\r\nX-Team = "core"\r\n\r\n# next\r\n[tui]\r\nnotifications = true\r\n';
    put(file, mine);
    const r = await run(["add-client", "codex"]);
    expect(r.code).toBe(5);
    expect(r.err).toContain("--force");
    expect(readFileSync(file, "utf8")).toBe(mine);
    const forced = await run(["add-client", "codex", "--force"]);
    expect(forced.code, forced.err).toBe(0);
    const after = readFileSync(file, "utf8");
    expect(after).not.toContain("mine.example");
    expect(after).not.toContain("X-Team");
    expect(after).toContain("\r\n# next\r\n[tui]\r\nnotifications = true\r\n");
    expect(after.replace(/\r\n/g, "")).not.toContain("\n");
    expect((await run(["remove-client", "codex", "--name", "dev-k8s"])).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(mine);
  });

  it("codex: after an edit elsewhere, remove-client takes out exactly our table and keeps the rest", async () => {
    const file = fileFor("codex", "user");
    put(file, readFileSync(join(FIX, "codex-user.toml"), "utf8"));
    expect((await run(["add-client", "codex"])).code).toBe(0);
    writeFileSync(file, readFileSync(file, "utf8").replace('model = "gpt-5.1"', 'model = "gpt-5.2"'));
    const r = await run(["remove-client", "codex", "--name", "dev-k8s"]);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(readFileSync(join(FIX, "codex-user.toml"), "utf8").replace('model = "gpt-5.1"', 'model = "gpt-5.2"'));
  });

  it("codex: remove-client refuses a table that is not mcp-auth's unless --force", async () => {
    const file = fileFor("codex", "user");
    put(file, readFileSync(join(FIX, "codex-user.toml"), "utf8"));
    const r = await run(["remove-client", "codex", "--name", "figma"]);
    expect(r.code).toBe(5);
    expect(r.err).toContain("does not use mcp-auth");
    expect((await run(["remove-client", "codex", "--name", "docs", "--force"])).code).toBe(0);
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain("docs-server");
    expect(text).not.toContain("LOG =");
    expect(text).toContain("# Figma, remote\n[mcp_servers.figma]");
  });
});

describe("clients", () => {
  it("lists Codex, Gemini CLI and Windsurf with their entries", async () => {
    put(fileFor("codex", "user"), readFileSync(join(FIX, "codex-user.toml"), "utf8"));
    expect((await run(["add-client", "codex"])).code).toBe(0);
    expect((await run(["add-client", "gemini", "--strategy", "header"])).code).toBe(0);
    expect((await run(["add-client", "windsurf"])).code).toBe(0);
    const r = await run(["clients", "--json"]);
    expect(r.code, r.err).toBe(0);
    const rows = JSON.parse(r.out) as Array<{ client: string; files: Array<{ scope: string; servers: Array<{ name: string; mcpAuth: boolean; profile?: string; url?: string }> }> }>;
    expect(rows.map((x) => x.client)).toEqual(["claude", "claude-desktop", "cursor", "vscode", "codex", "gemini", "windsurf"]);
    const byId = Object.fromEntries(rows.map((x) => [x.client, x]));
    expect(byId.codex!.files[0]!.servers).toEqual([
      { name: "docs", mcpAuth: false },
      { name: "figma", mcpAuth: false, url: "https://mcp.figma.com/mcp" },
      { name: "dev-k8s", mcpAuth: true, profile: "dev.k8s" },
    ]);
    expect(byId.gemini!.files.find((f) => f.scope === "user")!.servers).toEqual([{ name: "dev-k8s", mcpAuth: true, profile: "dev.k8s", url: "https://mcp.example.invalid/mcp" }]);
    expect(byId.windsurf!.files[0]!.servers).toEqual([{ name: "dev-k8s", mcpAuth: true, profile: "dev.k8s" }]);
  });

  it("a Codex file that does not parse is reported, not fatal", async () => {
    put(fileFor("codex", "user"), "[oops\n");
    const r = await run(["clients", "--json"]);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out) as Array<{ client: string; files: Array<{ error?: string }> }>;
    expect(rows.find((x) => x.client === "codex")!.files[0]!.error).toMatch(/cannot parse/);
  });
});

describe("config paths", () => {
  it.each([
    [codex, "linux", "user", { HOME: "/home/ana" }, "/home/ana/.codex/config.toml"],
    [codex, "linux", "user", { HOME: "/home/ana", CODEX_HOME: "/srv/codex" }, "/srv/codex/config.toml"],
    [codex, "win32", "user", { USERPROFILE: "C:\\Users\\ana" }, "C:\\Users\\ana\\.codex\\config.toml"],
    [gemini, "linux", "user", { HOME: "/home/ana" }, "/home/ana/.gemini/settings.json"],
    [gemini, "linux", "project", { HOME: "/home/ana" }, "/p/.gemini/settings.json"],
    [gemini, "win32", "user", { USERPROFILE: "C:\\Users\\ana" }, "C:\\Users\\ana\\.gemini\\settings.json"],
    [windsurf, "darwin", "user", { HOME: "/Users/ana" }, "/Users/ana/.codeium/windsurf/mcp_config.json"],
    [windsurf, "win32", "user", { USERPROFILE: "C:\\Users\\ana" }, "C:\\Users\\ana\\.codeium\\windsurf\\mcp_config.json"],
  ] as const)("%#: %s on %s", (w, platform, scope, env, want) => {
    expect(w.configPath(env, platform, scope, "/p")).toBe(want);
  });
});
