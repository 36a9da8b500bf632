import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { claude } from "../src/clients/claude.js";
import { copilot } from "../src/clients/copilot.js";
import { opencode } from "../src/clients/opencode.js";
import { kiro } from "../src/clients/kiro.js";
import { qwen } from "../src/clients/qwen.js";
import { zed } from "../src/clients/zed.js";
import { describeEntry } from "../src/core/clients.js";
import { addRemoveRoundTrip } from "./helpers/golden.js";
import type { TestContext } from "./helpers/context.js";
import { enterProject, leaveProject } from "./helpers/project.js";
import { BIN } from "./helpers/cli.js";

/**
 * add-client / remove-client / clients for GitHub Copilot CLI (and the portable `.mcp.json` it shares
 * with Claude Code and VS Code), OpenCode, Qwen Code, Kiro and Zed: exact bytes per scope and strategy (goldens in
 * test/fixtures/clients/golden/), where each file is, and the shared project file.
 * Set UPDATE_GOLDENS=1 to rewrite the goldens (then read the diff).
 */
const FIX = join(__dirname, "fixtures", "clients");
const GOLDEN = join(FIX, "golden");
const WRITERS = { copilot, opencode, qwen, kiro, zed, claude } as const;
let t: TestContext;
let proj: string;
let home: string;

beforeEach(async () => void ({ t, home, proj } = await enterProject()));
afterEach(() => leaveProject(t));

function normalise(text: string): string {
  return text.split(BIN).join("<SCRIPT>").split(process.execPath).join("<NODE>").split(t.configDir).join("<CONFIG>").split(home).join("<HOME>");
}

function fileFor(client: keyof typeof WRITERS, scope: string): string {
  return WRITERS[client].configPath(t.env, "linux", scope as never, proj);
}

const run = (argv: string[]) => t.capture(argv);

function put(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

const GOLDENS: Array<{ id: string; client: "copilot" | "opencode" | "qwen" | "kiro" | "zed"; scope: string; fixture: string | null; args?: string[]; /** Where the fixture goes when it is not the default file (the writer edits the one that exists). */ file?: () => string }> = [
  { id: "copilot-user.json", client: "copilot", scope: "user", fixture: "copilot-user.json" },
  { id: "copilot-user-new.json", client: "copilot", scope: "user", fixture: null },
  { id: "copilot-project.json", client: "copilot", scope: "project", fixture: "claude-project.json" },
  { id: "copilot-project-new.json", client: "copilot", scope: "project", fixture: null },
  { id: "opencode-user.jsonc", client: "opencode", scope: "user", fixture: "opencode-user.jsonc", file: () => join(home, ".config", "opencode", "opencode.jsonc") },
  { id: "opencode-user-header.jsonc", client: "opencode", scope: "user", fixture: "opencode-user.jsonc", args: ["--strategy", "header"], file: () => join(home, ".config", "opencode", "opencode.jsonc") },
  { id: "opencode-user-new.json", client: "opencode", scope: "user", fixture: null },
  { id: "opencode-project.json", client: "opencode", scope: "project", fixture: "opencode-project.json" },
  { id: "qwen-user.json", client: "qwen", scope: "user", fixture: "qwen-user.json" },
  { id: "qwen-user-header.json", client: "qwen", scope: "user", fixture: "qwen-user.json", args: ["--strategy", "header"] },
  { id: "qwen-project-new.json", client: "qwen", scope: "project", fixture: null },
  { id: "kiro-user.json", client: "kiro", scope: "user", fixture: "kiro-user.json" },
  { id: "kiro-user-header.json", client: "kiro", scope: "user", fixture: "kiro-user.json", args: ["--strategy", "header"] },
  { id: "kiro-project-new.json", client: "kiro", scope: "project", fixture: null },
  { id: "zed-user.json", client: "zed", scope: "user", fixture: "zed-user.json" },
  { id: "zed-user-new.json", client: "zed", scope: "user", fixture: null },
];

describe("add-client goldens: GitHub Copilot CLI, OpenCode, Qwen Code, Kiro, Zed", () => {
  it.each(GOLDENS)("$id", async (c) => {
    const file = c.file?.() ?? fileFor(c.client, c.scope);
    await addRemoveRoundTrip({ run, client: c.client, scope: c.scope, args: c.args, file, fixture: c.fixture && join(FIX, c.fixture), golden: join(GOLDEN, c.id), normalise });
  });
});

describe("config paths", () => {
  it.each([
    [copilot, "linux", "user", { HOME: "/home/ana" }, "/home/ana/.copilot/mcp-config.json"],
    [copilot, "linux", "user", { HOME: "/home/ana", COPILOT_HOME: "/srv/copilot" }, "/srv/copilot/mcp-config.json"],
    [copilot, "win32", "user", { USERPROFILE: "C:\\Users\\ana" }, "C:\\Users\\ana\\.copilot\\mcp-config.json"],
    [copilot, "linux", "project", { HOME: "/home/ana" }, "/p/.mcp.json"],
    [opencode, "linux", "user", { HOME: "/home/ana" }, "/home/ana/.config/opencode/opencode.json"],
    [opencode, "linux", "user", { HOME: "/home/ana", XDG_CONFIG_HOME: "/x" }, "/x/opencode/opencode.json"],
    [opencode, "darwin", "user", { HOME: "/Users/ana" }, "/Users/ana/.config/opencode/opencode.json"],
    [opencode, "win32", "user", { USERPROFILE: "C:\\Users\\ana" }, "C:\\Users\\ana\\.config\\opencode\\opencode.json"],
    [opencode, "linux", "project", { HOME: "/home/ana" }, "/p/opencode.json"],
    [qwen, "linux", "user", { HOME: "/home/ana" }, "/home/ana/.qwen/settings.json"],
    [qwen, "win32", "user", { USERPROFILE: "C:\\Users\\ana" }, "C:\\Users\\ana\\.qwen\\settings.json"],
    [qwen, "linux", "project", { HOME: "/home/ana" }, "/p/.qwen/settings.json"],
    [kiro, "linux", "user", { HOME: "/home/ana" }, "/home/ana/.kiro/settings/mcp.json"],
    [kiro, "win32", "user", { USERPROFILE: "C:\\Users\\ana" }, "C:\\Users\\ana\\.kiro\\settings\\mcp.json"],
    [kiro, "linux", "project", { HOME: "/home/ana" }, "/p/.kiro/settings/mcp.json"],
    [zed, "linux", "user", { HOME: "/home/ana" }, "/home/ana/.config/zed/settings.json"],
    [zed, "linux", "user", { HOME: "/home/ana", XDG_CONFIG_HOME: "/x" }, "/x/zed/settings.json"],
    [zed, "darwin", "user", { HOME: "/Users/ana", XDG_CONFIG_HOME: "/x" }, "/Users/ana/.config/zed/settings.json"],
    [zed, "win32", "user", { USERPROFILE: "C:\\Users\\ana", APPDATA: "C:\\Users\\ana\\AppData\\Roaming" }, "C:\\Users\\ana\\AppData\\Roaming\\Zed\\settings.json"],
  ] as const)("%#: %s on %s", (w, platform, scope, env, want) => {
    expect(w.configPath(env, platform, scope, "/p")).toBe(want);
  });

  it.each([
    ["opencode.jsonc", "opencode.jsonc"],
    [".opencode/opencode.json", ".opencode/opencode.json"],
    [".opencode/opencode.jsonc", ".opencode/opencode.jsonc"],
    ["opencode.json + .opencode/opencode.jsonc", "opencode.json"],
  ])("opencode project: with %s there, the entry goes to %s (the file `opencode mcp add` edits)", (have, want) => {
    for (const f of have.split(" + ")) put(join(proj, f), "{}");
    expect(opencode.configPath(t.env, "linux", "project", proj)).toBe(join(proj, want));
  });
});

describe("what the entries say", () => {
  it("OpenCode: a local entry is one argv array; header writes {env:NAME} and turns OpenCode's own OAuth off", async () => {
    const p = await run(["add-client", "opencode", "--print"]);
    expect(p.code, p.err).toBe(0);
    expect(JSON.parse(p.out).mcp["dev-k8s"]).toEqual({ type: "local", command: [process.execPath, BIN, "--config-dir", t.configDir, "--store", "file", "proxy", "--profile", "dev.k8s", "--url", "https://mcp.example.invalid/mcp"] });
    const h = await run(["add-client", "opencode", "--strategy", "header"]);
    expect(h.code, h.err).toBe(0);
    expect(JSON.parse(readFileSync(fileFor("opencode", "user"), "utf8")).mcp["dev-k8s"]).toEqual({ type: "remote", url: "https://mcp.example.invalid/mcp", headers: { Authorization: "Bearer {env:MCP_AUTH_TOKEN_DEV_K8S}" }, oauth: false });
    expect(h.err).toContain('export MCP_AUTH_TOKEN_DEV_K8S="$(mcp-auth token --profile dev.k8s)"');
  });

  it("both OpenCode shapes are recognised as mcp-auth's, and listed", async () => {
    expect(describeEntry({ type: "local", command: ["/n", "/s/bin/mcp-auth.js", "proxy", "--profile", "p", "--url", "u"] })).toEqual({ ours: true, profile: "p" });
    expect(describeEntry({ type: "local", command: ["npx", "-y", "@modelcontextprotocol/server-everything"] })).toEqual({ ours: false });
    expect(describeEntry({ type: "remote", url: "u", headers: { Authorization: "Bearer {env:MCP_AUTH_TOKEN_X}" } })).toEqual({ ours: true });
    expect(describeEntry({ type: "remote", url: "u", headers: { Authorization: "Bearer {env:GITHUB_PAT}" } })).toEqual({ ours: false });
    expect((await run(["add-client", "opencode"])).code).toBe(0);
    expect((await run(["add-client", "copilot"])).code).toBe(0);
    const rows = JSON.parse((await run(["clients", "--json"])).out) as Array<{ client: string; files: Array<{ scope: string; servers: unknown[] }> }>;
    const by = Object.fromEntries(rows.map((r) => [r.client, r]));
    expect(by.opencode!.files.find((f) => f.scope === "user")!.servers).toEqual([{ name: "dev-k8s", mcpAuth: true, profile: "dev.k8s" }]);
    expect(by.copilot!.files.find((f) => f.scope === "user")!.servers).toEqual([{ name: "dev-k8s", mcpAuth: true, profile: "dev.k8s" }]);
  });

  it("installed comes from the client's own executable or data, never from the file mcp-auth wrote", async () => {
    for (const c of ["copilot", "opencode", "qwen", "kiro", "zed"]) expect((await run(["add-client", c])).code).toBe(0);
    const list = async () => Object.fromEntries((JSON.parse((await run(["clients", "--json"])).out) as Array<{ client: string; installed: boolean }>).map((r) => [r.client, r.installed]));
    expect(await list()).toMatchObject({ copilot: false, opencode: false, qwen: false, kiro: false, zed: false });
    put(join(home, ".copilot", "config.json"), "{}"); // Copilot CLI's own settings
    put(join(home, ".local", "share", "opencode", "storage", "x"), ""); // OpenCode's data dir
    expect(await list()).toMatchObject({ copilot: true, opencode: true, qwen: false, kiro: false });
  });

  it("Copilot CLI offers the proxy only: it has no helper and no documented variable expansion in headers", async () => {
    const r = await run(["add-client", "copilot", "--strategy", "header"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('GitHub Copilot CLI has no strategy "header"');
  });
});

describe("the project .mcp.json that Claude Code, Copilot CLI and VS Code all read", () => {
  it("claude --scope project writes the stdio proxy by default: an entry every reader of the file can run", async () => {
    const r = await run(["add-client", "claude", "--scope", "project"]);
    expect(r.code, r.err).toBe(0);
    const entry = JSON.parse(readFileSync(join(proj, ".mcp.json"), "utf8")).mcpServers["dev-k8s"];
    expect(entry).toEqual({ type: "stdio", command: "mcp-auth", args: ["proxy", "--profile", "dev.k8s", "--url", "https://mcp.example.invalid/mcp"] });
    expect(entry.headersHelper).toBeUndefined();
    expect(r.err).toContain("GitHub Copilot CLI and VS Code run this same entry");
  });

  it("copilot --scope project writes the very same entry: adding both leaves one entry, already configured", async () => {
    expect((await run(["add-client", "claude", "--scope", "project"])).code).toBe(0);
    const before = readFileSync(join(proj, ".mcp.json"), "utf8");
    const r = await run(["add-client", "copilot", "--scope", "project"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("already configured");
    expect(readFileSync(join(proj, ".mcp.json"), "utf8")).toBe(before);
    expect(fileFor("copilot", "project")).toBe(fileFor("claude", "project"));
  });

  it("--strategy helper is still there for Claude Code alone, and says which readers ignore it", async () => {
    const r = await run(["add-client", "claude", "--scope", "project", "--strategy", "helper"]);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(readFileSync(join(proj, ".mcp.json"), "utf8")).mcpServers["dev-k8s"].headersHelper).toBe("mcp-auth --non-interactive token --profile dev.k8s --format headers-json");
    expect(r.err).toContain("GitHub Copilot CLI and VS Code read .mcp.json too but ignore headersHelper");
    const user = await run(["add-client", "claude", "--scope", "user", "--print"]);
    expect(user.err).not.toContain("ignore headersHelper");
  });

  it("VS Code: a project entry points at the portable .mcp.json, a header entry says Copilot sessions will not get it", async () => {
    const p = await run(["add-client", "vscode", "--scope", "project"]);
    expect(p.code, p.err).toBe(0);
    expect(p.err).toContain("its Copilot agent sessions read the portable .mcp.json, which add-client copilot --scope project writes");
    const h = await run(["add-client", "vscode", "--strategy", "header"]);
    expect(h.code, h.err).toBe(0);
    expect(h.err).toContain("does not forward a server that needs ${input:…} to Copilot agent sessions");
  });

  it("--static-token for that file names the project default (proxy) as the alternative", async () => {
    const r = await run(["add-client", "claude", "--scope", "project", "--strategy", "header", "--static-token"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/use the default strategy \(proxy\)/);
    expect(existsSync(join(proj, ".mcp.json"))).toBe(false);
  });
});
