import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, win32 } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { claude } from "../src/clients/claude.js";
import { claudeDesktop } from "../src/clients/claude-desktop.js";
import { cursor } from "../src/clients/cursor.js";
import { vscode } from "../src/clients/vscode.js";
import { shQuote } from "../src/core/client.js";
import { describeEntry, serverName } from "../src/core/clients.js";
import { tryCachedToken } from "../src/fast.js";
import { paths } from "../src/paths.js";
import { writeCachedToken } from "../src/store/tokens.js";
import { readConfigSync, selectProfile } from "../src/profile.js";
import { addRemoveRoundTrip } from "./helpers/golden.js";
import type { TestContext } from "./helpers/context.js";
import { enterProject, leaveProject } from "./helpers/project.js";
import { BIN } from "./helpers/cli.js";

/**
 * add-client / remove-client / clients in-process: the exact bytes written for each client and scope
 * (goldens in test/fixtures/clients/golden/, from real-looking configs next to them), and the refusals.
 * Set UPDATE_GOLDENS=1 to rewrite the goldens (then read the diff).
 */
const FIX = join(__dirname, "fixtures", "clients");
const GOLDEN = join(FIX, "golden");
let t: TestContext;
let proj: string;
let home: string;

// project scope is the current directory
beforeEach(async () => void ({ t, home, proj } = await enterProject()));
afterEach(() => leaveProject(t));

/** Machine-specific paths as placeholders, so goldens hold on any machine. */
function normalise(text: string): string {
  return text.split(BIN).join("<SCRIPT>").split(process.execPath).join("<NODE>").split(t.configDir).join("<CONFIG>").split(home).join("<HOME>");
}

function fileFor(client: string, scope: string): string {
  const w = { claude, "claude-desktop": claudeDesktop, cursor, vscode }[client]!;
  return w.configPath(t.env, "linux", scope as never, proj);
}

const run = (argv: string[]) => t.capture(argv);

const GOLDENS: Array<{ id: string; client: string; scope: string; fixture: string | null; args?: string[] }> = [
  { id: "claude-user", client: "claude", scope: "user", fixture: "claude-user.json" },
  { id: "claude-local", client: "claude", scope: "local", fixture: "claude-local.json" },
  { id: "claude-project", client: "claude", scope: "project", fixture: "claude-project.json", args: ["--strategy", "helper"] },
  { id: "claude-project-new", client: "claude", scope: "project", fixture: null, args: ["--strategy", "helper"] },
  { id: "claude-user-header", client: "claude", scope: "user", fixture: "claude-user.json", args: ["--strategy", "header"] },
  { id: "claude-user-proxy", client: "claude", scope: "user", fixture: null, args: ["--strategy", "proxy"] },
  { id: "claude-desktop-user", client: "claude-desktop", scope: "user", fixture: "claude-desktop-user.json" },
  { id: "cursor-user", client: "cursor", scope: "user", fixture: "cursor-user.json" },
  { id: "cursor-user-header", client: "cursor", scope: "user", fixture: "cursor-user.json", args: ["--strategy", "header"] },
  { id: "cursor-project", client: "cursor", scope: "project", fixture: "cursor-project.json" },
  { id: "vscode-user", client: "vscode", scope: "user", fixture: "vscode-user.json" },
  { id: "vscode-user-header", client: "vscode", scope: "user", fixture: "vscode-user.json", args: ["--strategy", "header"] },
  { id: "vscode-project", client: "vscode", scope: "project", fixture: "vscode-project.json" },
];

describe("add-client goldens: exact bytes per client and scope", () => {
  it.each(GOLDENS)("$id", async (c) => {
    await addRemoveRoundTrip({ run, client: c.client, scope: c.scope, args: c.args, file: fileFor(c.client, c.scope), fixture: c.fixture && join(FIX, c.fixture), golden: join(GOLDEN, `${c.id}.json`), normalise });
  });
});

describe("add-client: what the entries say", () => {
  it("a user-scope helper carries absolute node, script and config dir, and asks for no prompt", async () => {
    const r = await run(["add-client", "claude", "--profile", "dev.k8s", "--scope", "user", "--print"]);
    expect(r.code).toBe(0);
    const helper = JSON.parse(r.out).mcpServers["dev-k8s"].headersHelper as string;
    expect(helper).toBe([process.execPath, BIN, "--config-dir", t.configDir, "--store", "file", "--non-interactive", "token", "--profile", "dev.k8s", "--format", "headers-json"].map(shQuote).join(" "));
    expect(existsSync(join(home, ".claude.json"))).toBe(false); // --print writes nothing
  });

  it("a project-scope entry names no machine path and says why", async () => {
    const r = await run(["add-client", "claude", "--scope", "project", "--strategy", "helper"]);
    expect(r.code, r.err).toBe(0);
    const text = readFileSync(join(proj, ".mcp.json"), "utf8");
    expect(text).not.toContain(home);
    expect(text).not.toContain(process.execPath);
    expect(JSON.parse(text).mcpServers["dev-k8s"].headersHelper).toBe("mcp-auth --non-interactive token --profile dev.k8s --format headers-json");
    expect(r.err).toContain("npm install -g mcp-auth-cli");
    expect(r.err).toContain("trust dialog");
    expect(r.err).toContain("default config dir"); // this test's config dir is not the default one
  });

  it("--name defaults to the profile name reduced to [A-Za-z0-9_-]; a bad --name is refused", async () => {
    expect(serverName("dev.k8s")).toBe("dev-k8s");
    expect(serverName("..a b..c..")).toBe("a-b-c");
    const r = await run(["add-client", "cursor", "--name", "a.b", "--print"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("--name");
  });

  it("--url overrides the profile's within its server (another server is refused); without either it is a usage error", async () => {
    const r = await run(["add-client", "cursor", "--url", "https://mcp.example.invalid/mcp/v2", "--print"]);
    expect(JSON.parse(r.out).mcpServers["dev-k8s"].args).toContain("https://mcp.example.invalid/mcp/v2");
    const other = await run(["add-client", "cursor", "--url", "https://other.example.invalid/mcp", "--print"]);
    expect(other.code).toBe(2);
    expect(other.err).toContain('profile "dev.k8s" is for https://mcp.example.invalid/mcp, not https://other.example.invalid/mcp');
    expect(await t.run(["profiles", "add", "bare", "--issuer", "https://idp.example.invalid", "--client-id", "c"])).toBe(0);
    const bare = await run(["add-client", "cursor", "--profile", "bare", "--print"]);
    expect(bare.code).toBe(2);
    expect(bare.err).toContain("--url");
  });

  it.each([
    [["add-client", "notepad"], /unknown client "notepad" \(supported: claude, claude-desktop, cursor, vscode, codex, gemini, windsurf, copilot, opencode, qwen, kiro, zed, goose, cline\)/],
    [["add-client", "claude-desktop", "--scope", "project"], /Claude Desktop has no scope "project"/],
    [["add-client", "cursor", "--strategy", "helper"], /Cursor has no strategy "helper"/],
    [["add-client", "cursor", "--scope", "global"], /unknown scope "global"/],
    [["add-client", "claude", "--static-token"], /--static-token only applies with --strategy header/],
    [["add-client", "claude", "--link"], /Claude Code has no install link/],
    [["remove-client", "notepad", "--name", "x"], /unknown client/],
  ])("%j → exit 2", async (argv, msg) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });

  it("--link prints Cursor's deeplink and VS Code's install URL", async () => {
    const c = await run(["add-client", "cursor", "--link"]);
    const u = new URL(c.out.trim());
    expect(u.protocol).toBe("cursor:");
    expect(u.searchParams.get("name")).toBe("dev-k8s");
    expect(JSON.parse(Buffer.from(u.searchParams.get("config")!, "base64").toString())).toMatchObject({ type: "stdio", command: process.execPath });
    const v = await run(["add-client", "vscode", "--link"]);
    expect(v.out.startsWith("vscode:mcp/install?")).toBe(true);
    expect(JSON.parse(decodeURIComponent(v.out.trim().slice("vscode:mcp/install?".length)))).toMatchObject({ name: "dev-k8s", type: "stdio" });
  });

  it("no token lands in a file unless --static-token is chosen", async () => {
    for (const c of ["claude", "cursor", "vscode"]) {
      const r = await run(["add-client", c, "--strategy", "header", "--scope", c === "claude" ? "user" : "user"]);
      expect(r.code, r.err).toBe(0);
    }
    for (const c of ["claude", "cursor", "vscode"]) {
      const text = readFileSync(fileFor(c, "user"), "utf8");
      expect(text).toMatch(/Bearer \$\{(env:|input:)?(MCP_AUTH_TOKEN_DEV_K8S|mcp-auth-dev-k8s)\}/);
    }
  });
});

describe("add-client: file safety", () => {
  it("a file that does not parse is refused with exit 5 and left untouched", async () => {
    const file = join(home, ".cursor", "mcp.json");
    mkdirSync(dirname(file));
    writeFileSync(file, '{ "mcpServers": { "x": { "url": "https://a" } } ');
    const r = await run(["add-client", "cursor"]);
    expect(r.code).toBe(5);
    expect(r.err).toMatch(/cannot parse .*mcp\.json/);
    expect(readFileSync(file, "utf8")).toBe('{ "mcpServers": { "x": { "url": "https://a" } } ');
  });

  it("a servers key that is not an object is refused (exit 5)", async () => {
    const file = join(proj, ".mcp.json");
    writeFileSync(file, '{ "mcpServers": [] }\n');
    expect((await run(["add-client", "claude", "--scope", "project"])).code).toBe(5);
    expect(readFileSync(file, "utf8")).toBe('{ "mcpServers": [] }\n');
  });

  it("a different entry of that name needs --force; remove-client then gives the old one back", async () => {
    const file = join(home, ".cursor", "mcp.json");
    mkdirSync(dirname(file));
    const mine = '{\n  "mcpServers": {\n    "dev-k8s": { "url": "https://mine.example.invalid/mcp" } // hand-written\n  }\n}\n';
    writeFileSync(file, mine);
    const r = await run(["add-client", "cursor"]);
    expect(r.code).toBe(5);
    expect(r.err).toContain("--force");
    expect(readFileSync(file, "utf8")).toBe(mine);
    const dry = await run(["add-client", "cursor", "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('-    "dev-k8s": { "url": "https://mine.example.invalid/mcp" } // hand-written');
    expect(readFileSync(file, "utf8")).toBe(mine);
    const forced = await run(["add-client", "cursor", "--force"]);
    expect(forced.code, forced.err).toBe(0);
    expect(forced.err).toContain("Replaced");
    expect(readFileSync(file, "utf8")).toContain('"proxy"');
    expect((await run(["remove-client", "cursor", "--name", "dev-k8s"])).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(mine);
  });

  it("--dry-run shows a unified diff and writes nothing; --json lists the actions", async () => {
    const r = await run(["add-client", "vscode", "--scope", "project", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("# add server dev-k8s to VS Code (project scope)");
    expect(r.out).toContain("+++ " + join(proj, ".vscode", "mcp.json"));
    expect(existsSync(join(proj, ".vscode"))).toBe(false);
    const j = await run(["add-client", "vscode", "--scope", "project", "--dry-run", "--json"]);
    expect(JSON.parse(j.out)).toEqual([{ path: join(proj, ".vscode", "mcp.json"), action: "create", backup: null, description: "add server dev-k8s to VS Code (project scope)" }]);
  });

  it("remove-client refuses an entry that is not mcp-auth's unless --force; a missing one is fine", async () => {
    const file = join(proj, ".mcp.json");
    writeFileSync(file, readFileSync(join(FIX, "claude-project.json")));
    const r = await run(["remove-client", "claude", "--scope", "project", "--name", "sentry"]);
    expect(r.code).toBe(5);
    expect(r.err).toContain("does not use mcp-auth");
    expect((await run(["remove-client", "claude", "--scope", "project", "--name", "nope"])).code).toBe(0);
    expect((await run(["remove-client", "claude", "--scope", "project", "--name", "sentry", "--force"])).code).toBe(0);
    expect(JSON.parse(readFileSync(file, "utf8")).mcpServers).toEqual({});
  });

  it("an entry edited by hand elsewhere in the file is still removed, the rest kept", async () => {
    const file = join(home, ".cursor", "mcp.json");
    mkdirSync(dirname(file));
    copyFileSync(join(FIX, "cursor-user.json"), file);
    expect((await run(["add-client", "cursor"])).code).toBe(0);
    writeFileSync(file, readFileSync(file, "utf8").replace("// pinned later", "// pinned soon"));
    const r = await run(["remove-client", "cursor", "--name", "dev-k8s"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).not.toContain("back as it was");
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain("dev-k8s");
    expect(text).toContain("// pinned soon");
    expect(text).toContain("/* remote, OAuth */");
  });
});

describe("add-client over its own older entry", () => {
  it("updates mcp-auth's entry for the same profile without --force (a moved node or script)", async () => {
    const file = join(proj, ".mcp.json");
    const old = '{\n  "mcpServers": {\n    "dev-k8s": { "type": "http", "url": "https://mcp.example.invalid/mcp", "headersHelper": "/old/node /old/bin/mcp-auth.js token --profile dev.k8s --format headers-json" }\n  }\n}\n';
    writeFileSync(file, old);
    const r = await run(["add-client", "claude", "--scope", "project", "--strategy", "helper"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('Updated "dev-k8s"');
    expect(readFileSync(file, "utf8")).toContain('"headersHelper": "mcp-auth --non-interactive token');
    // Another profile's entry of that name is not ours to replace.
    writeFileSync(file, old.replace("--profile dev.k8s", "--profile prod"));
    expect((await run(["add-client", "claude", "--scope", "project", "--strategy", "helper"])).code).toBe(5);
  });
});

describe("remove-client after the file changed", () => {
  it("removes the VS Code input with the server, unless another server still uses it", async () => {
    expect((await run(["add-client", "vscode", "--strategy", "header"])).code).toBe(0);
    const file = fileFor("vscode", "user");
    const withOther = readFileSync(file, "utf8").replace('"servers": {', '"servers": {\n    "other": { "type": "http", "url": "https://o.invalid", "headers": { "Authorization": "Bearer ${input:mcp-auth-dev-k8s}" } },');
    writeFileSync(file, withOther);
    expect((await run(["remove-client", "vscode", "--name", "dev-k8s"])).code).toBe(0);
    expect(JSON.parse(readFileSync(file, "utf8")).inputs).toHaveLength(1); // still used by "other"
    writeFileSync(file, readFileSync(file, "utf8").replace(/\n    "other": [^\n]*/, ""));
    expect((await run(["add-client", "vscode", "--strategy", "header"])).code).toBe(0);
    writeFileSync(file, readFileSync(file, "utf8") + "\n");
    expect((await run(["remove-client", "vscode", "--name", "dev-k8s"])).code).toBe(0);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ servers: {}, inputs: [] });
  });

  it("says to log in first when the profile has no tokens yet", async () => {
    const r = await run(["add-client", "cursor", "--dry-run"]);
    expect(r.code).toBe(0);
    const a = await run(["add-client", "cursor"]);
    expect(a.err).toContain("Log in once first: mcp-auth login dev.k8s");
  });
});

describe("clients", () => {
  it("lists clients, their files, and which entries use which profile", async () => {
    copyFileSync(join(FIX, "claude-project.json"), join(proj, ".mcp.json"));
    expect((await run(["add-client", "claude", "--scope", "project", "--strategy", "helper"])).code).toBe(0);
    expect((await run(["add-client", "vscode", "--strategy", "header"])).code).toBe(0);
    const r = await run(["clients", "--json"]);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out) as Array<{ client: string; installed: boolean; files: Array<{ scope: string; servers: Array<{ name: string; mcpAuth: boolean; profile?: string }> }> }>;
    expect(rows.map((x) => x.client)).toEqual(["claude", "claude-desktop", "cursor", "vscode", "codex", "gemini", "windsurf", "copilot", "opencode", "qwen", "kiro", "zed", "goose", "cline"]);
    const cl = rows[0]!.files.find((f) => f.scope === "project")!;
    expect(cl.servers).toEqual([
      { name: "sentry", mcpAuth: false, url: "https://mcp.sentry.dev/mcp" },
      { name: "dev-k8s", mcpAuth: true, profile: "dev.k8s", url: "https://mcp.example.invalid/mcp" },
    ]);
    const vs = rows[3]!.files.find((f) => f.scope === "user")!;
    expect(vs.servers[0]).toMatchObject({ name: "dev-k8s", mcpAuth: true, profile: "dev.k8s" });
    const text = await run(["clients"]);
    expect(text.out).toContain("dev-k8s -> mcp-auth profile dev.k8s");
  });

  it("recognises mcp-auth entries by what they run", () => {
    expect(describeEntry({ type: "http", url: "u", headersHelper: "'/opt/my node/node' /x/bin/mcp-auth.js token --profile 'a b'" })).toEqual({ ours: true, profile: "a b" });
    expect(describeEntry({ command: "npx", args: ["--yes", "mcp-auth-cli@0", "proxy", "--profile", "p", "--url", "u"] })).toEqual({ ours: true, profile: "p" });
    expect(describeEntry({ command: "npx", args: ["mcp-remote", "u"] })).toEqual({ ours: false });
    expect(describeEntry({ url: "u", headers: { Authorization: "Bearer ${GITHUB_PAT}" } })).toEqual({ ours: false });
  });
});

describe("config paths per OS", () => {
  const env = { HOME: "/home/ana", APPDATA: "C:\\Users\\ana\\AppData\\Roaming", USERPROFILE: "C:\\Users\\ana", LOCALAPPDATA: join(tmpdir(), "no-such-localappdata") };
  it.each([
    [claudeDesktop, "darwin", "user", "/home/ana/Library/Application Support/Claude/claude_desktop_config.json"],
    [claudeDesktop, "win32", "user", "C:\\Users\\ana\\AppData\\Roaming\\Claude\\claude_desktop_config.json"],
    [claudeDesktop, "linux", "user", "/home/ana/.config/Claude/claude_desktop_config.json"],
    [vscode, "darwin", "user", "/home/ana/Library/Application Support/Code/User/mcp.json"],
    [vscode, "win32", "user", "C:\\Users\\ana\\AppData\\Roaming\\Code\\User\\mcp.json"],
    [vscode, "linux", "user", "/home/ana/.config/Code/User/mcp.json"],
    [vscode, "linux", "project", "/p/.vscode/mcp.json"],
    [cursor, "linux", "user", "/home/ana/.cursor/mcp.json"],
    [cursor, "linux", "project", "/p/.cursor/mcp.json"],
    [claude, "linux", "user", "/home/ana/.claude.json"],
    [claude, "linux", "local", "/home/ana/.claude.json"],
    [claude, "linux", "project", "/p/.mcp.json"],
  ] as const)("%#: %s on %s", (w, platform, scope, want) => {
    const e = platform === "win32" ? { ...env, HOME: "" } : env;
    expect(w.configPath(e, platform, scope, "/p")).toBe(want);
  });

  it("XDG_CONFIG_HOME moves the Linux paths", () => {
    expect(claudeDesktop.configPath({ HOME: "/h", XDG_CONFIG_HOME: "/x" }, "linux", "user", "/p")).toBe("/x/Claude/claude_desktop_config.json");
  });

  it("a Microsoft Store install of Claude Desktop is found in its package folder", () => {
    const local = mkdtempSync(join(tmpdir(), "localappdata-"));
    mkdirSync(join(local, "Packages", "Claude_pzs8sxrjxfjjc"), { recursive: true });
    try {
      expect(claudeDesktop.configPath({ ...env, HOME: "", LOCALAPPDATA: local }, "win32", "user", "/p")).toBe(win32.join(local, "Packages", "Claude_pzs8sxrjxfjjc", "LocalCache", "Roaming", "Claude", "claude_desktop_config.json"));
    } finally {
      rmSync(local, { recursive: true });
    }
  });

  it("local scope lives under projects[<cwd>] in ~/.claude.json", () => {
    expect(claude.serversPath("local", "/p")).toEqual(["projects", "/p", "mcpServers"]);
    expect(claude.serversPath("user", "/p")).toEqual(["mcpServers"]);
    expect(vscode.serversPath("user", "/p")).toEqual(["servers"]);
  });
});

describe("fast path: the helper's global flags", () => {
  it("accepts --config-dir, --store and --non-interactive before `token`", () => {
    const dir = join(home, "elsewhere");
    mkdirSync(join(dir, "tokens"), { recursive: true });
    // No cache here: the fast path declines (returns false) instead of misreading the flags.
    expect(tryCachedToken(["--config-dir", dir, "--store", "file", "--non-interactive", "token", "--profile", "p", "--format", "headers-json"], {}, () => {})).toBe(false);
    expect(tryCachedToken(["--store", "memory", "token"], {}, () => {})).toBe(false);
    expect(tryCachedToken(["--bogus", "token"], {}, () => {})).toBe(false);
  });

  it("answers a helper from the cache in the dir --config-dir names, with no MCP_AUTH_* in the env", () => {
    const prof = selectProfile(readConfigSync(join(t.configDir, "config.json")), { profile: "dev.k8s" });
    const rec = { version: 1, profile: prof.name, issuer: prof.issuer, clientId: prof.clientId, access_token: "cached-tok", token_type: "Bearer", expires_at: Math.floor(Date.now() / 1000) + 3600 };
    writeCachedToken(paths({}, undefined, t.configDir), { ...prof, profile: prof.name }, rec as never);
    const argv = ["--config-dir", t.configDir, "--non-interactive", "token", "--profile", "dev.k8s", "--format", "headers-json"];
    let out = "";
    expect(tryCachedToken(argv, { HOME: join(home, "elsewhere") }, (s) => void (out += s))).toBe(true);
    expect(JSON.parse(out)).toEqual({ Authorization: "Bearer cached-tok" });
    expect(tryCachedToken(argv.slice(2), { HOME: join(home, "elsewhere") }, () => {})).toBe(false); // default dir: no cache there
  });
});
