import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * remove-client takes out the entry add-client wrote, whatever happened in between: a re-add from
 * another install (the entry's command changed), other entries added and removed in any order, edits
 * by hand. It puts back the user's own entry only when add-client --force replaced one, and deletes the
 * files and folders add-client created once nothing else is in them, so a round trip leaves the home as
 * it was.
 */
const startDir = process.cwd();
let t: TestContext;
let home: string;
let proj: string;

beforeEach(async () => {
  t = createTestContext();
  home = t.env.HOME!;
  proj = join(home, "proj");
  mkdirSync(proj);
  process.chdir(proj);
  for (const [name, url] of [["dev.k8s", "https://mcp.example.invalid/mcp"], ["other", "https://other.example.invalid/mcp"]]) {
    expect(await t.run(["profiles", "add", name!, "--issuer", "https://idp.example.invalid", "--client-id", "cli", "--mcp-url", url!])).toBe(0);
  }
});
afterEach(() => {
  process.chdir(startDir);
  t.cleanup();
});

const run = (argv: string[]) => t.capture(argv);

async function ok(argv: string[]): Promise<string> {
  const r = await run(argv);
  expect(r.code, r.err).toBe(0);
  return r.err;
}

/** Every path under the home but mcp-auth's own config dir, with the bytes of each file. */
function tree(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (p === t.configDir || t.configDir.startsWith(p + "/")) {
        if (p !== t.configDir) walk(p);
        continue;
      }
      if (statSync(p).isDirectory()) {
        out[relative(home, p) + "/"] = "";
        walk(p);
      } else out[relative(home, p)] = readFileSync(p, "utf8");
    }
  };
  walk(home);
  return out;
}

// client, scope, the file add-client writes (relative to home), and the folders it may create.
const CLIENTS = [
  { client: "cursor", scope: "user", file: ".cursor/mcp.json" },
  { client: "vscode", scope: "user", file: ".config/Code/User/mcp.json" },
  { client: "codex", scope: "user", file: ".codex/config.toml" },
  { client: "gemini", scope: "user", file: ".gemini/settings.json" },
  { client: "gemini", scope: "project", file: "proj/.gemini/settings.json" },
  { client: "windsurf", scope: "user", file: ".codeium/windsurf/mcp_config.json" },
  { client: "claude-desktop", scope: "user", file: ".config/Claude/claude_desktop_config.json" },
  { client: "claude", scope: "project", file: "proj/.mcp.json" },
];

describe("add, re-add from another install, remove: the entry is gone", () => {
  it.each(CLIENTS)("$client $scope: no file before → the file and its folders are gone again", async ({ client, scope, file }) => {
    const before = tree();
    await ok(["add-client", client, "--scope", scope]);
    expect(existsSync(join(home, file))).toBe(true);
    // The same entry written by another install: here another store flag changes its command.
    const re = await run(["--store", "memory", "add-client", client, "--scope", scope]);
    expect(re.code, re.err).toBe(0);
    const err = await ok(["remove-client", client, "--scope", scope, "--name", "dev-k8s"]);
    expect(err).toContain('Removed "dev-k8s"');
    expect(tree()).toEqual(before);
    expect(existsSync(join(t.configDir, "clients.json"))).toBe(false);
  });

  it.each(CLIENTS)("$client $scope: a file of the user's → back byte for byte, without our entry", async ({ client, scope, file }) => {
    const path = join(home, file);
    mkdirSync(dirname(path), { recursive: true });
    const mine = file.endsWith(".toml") ? '# mine\nmodel = "o3"\n' : '{\n  // mine\n  "theme": "dark"\n}\n';
    writeFileSync(path, mine);
    await ok(["add-client", client, "--scope", scope]);
    await ok(["--store", "memory", "add-client", client, "--scope", scope]);
    if (scope !== "project") expect(readFileSync(path, "utf8")).toContain("memory"); // a shared file carries no store flag
    await ok(["remove-client", client, "--scope", scope, "--name", "dev-k8s"]);
    expect(readFileSync(path, "utf8")).toBe(mine);
  });
});

describe("two entries in one new file, removed in either order", () => {
  it.each(CLIENTS.flatMap((c) => [{ ...c, order: "first-added first" }, { ...c, order: "last-added first" }]))("$client $scope, $order: the file and folders go with the last", async ({ client, scope, order }) => {
    const before = tree();
    await ok(["add-client", client, "--scope", scope]);
    await ok(["add-client", client, "--scope", scope, "--profile", "other"]);
    const names = order === "first-added first" ? ["dev-k8s", "other"] : ["other", "dev-k8s"];
    await ok(["remove-client", client, "--scope", scope, "--name", names[0]!]);
    expect(tree()).not.toEqual(before);
    await ok(["remove-client", client, "--scope", scope, "--name", names[1]!]);
    expect(tree()).toEqual(before);
  });
});

describe("the user's own entry of that name", () => {
  it.each([
    { client: "cursor", file: ".cursor/mcp.json", mine: '{\n  "mcpServers": {\n    "dev-k8s": { "url": "https://mine.example.invalid/mcp" } // by hand\n  }\n}\n' },
    { client: "codex", file: ".codex/config.toml", mine: '[mcp_servers.dev-k8s]\nurl = "https://mine.example.invalid/mcp"\n' },
  ])("$client: replaced with --force, re-added, edited elsewhere: removal puts it back", async ({ client, file, mine }) => {
    const path = join(home, file);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, mine);
    await ok(["add-client", client, "--force"]);
    await ok(["--store", "memory", "add-client", client]);
    // An edit elsewhere: no exact restore any more, the entry still comes back.
    writeFileSync(path, (client === "codex" ? '# later\n' : "// later\n") + readFileSync(path, "utf8"));
    const err = await ok(["remove-client", client, "--name", "dev-k8s"]);
    expect(err).toContain("your own entry of that name");
    const text = readFileSync(path, "utf8");
    expect(text).toContain("https://mine.example.invalid/mcp");
    expect(text).not.toContain("proxy");
  });

  it("an entry of ours is never 'restored': re-add over it, then remove, and it is gone", async () => {
    const path = join(home, ".cursor", "mcp.json");
    await ok(["add-client", "cursor"]);
    writeFileSync(path, readFileSync(path, "utf8").replace("{", "{ // edited\n"));
    await ok(["--store", "memory", "add-client", "cursor"]);
    await ok(["remove-client", "cursor", "--name", "dev-k8s"]);
    expect(JSON.stringify(readFileSync(path, "utf8"))).not.toContain("dev.k8s");
  });
});

describe("clients says installed only from the client's own executable or data", () => {
  // client, its command, a file only the client writes (relative to home)
  const OWN = [
    { client: "claude", exe: "claude", data: ".claude/settings.json" },
    { client: "claude-desktop", exe: null, data: ".config/Claude/config.json" },
    { client: "cursor", exe: "cursor", data: ".cursor/argv.json" },
    { client: "vscode", exe: "code", data: ".config/Code/User/settings.json" },
    { client: "codex", exe: "codex", data: ".codex/auth.json" },
    { client: "gemini", exe: "gemini", data: ".gemini/installation_id" },
    { client: "windsurf", exe: "windsurf", data: ".codeium/windsurf/installation_id" },
  ];

  async function installed(client: string): Promise<boolean> {
    const r = await run(["clients", "--json"]);
    return (JSON.parse(r.out) as Array<{ client: string; installed: boolean }>).find((x) => x.client === client)!.installed;
  }

  it.each(OWN)("$client: not after add-client alone (which warns and still writes), yes with its data", async ({ client, data }) => {
    const scope = client === "claude" ? "user" : undefined;
    const add = await run(["add-client", client, ...(scope ? ["--scope", scope] : [])]);
    expect(add.code, add.err).toBe(0);
    expect(add.err).toContain("does not look installed here");
    expect(add.err).toContain("writing ");
    expect(await installed(client)).toBe(false);
    const own = join(home, data);
    mkdirSync(dirname(own), { recursive: true });
    writeFileSync(own, "{}");
    expect(await installed(client)).toBe(true);
    const again = await run(["add-client", client, ...(scope ? ["--scope", scope] : []), "--force"]);
    expect(again.err).not.toContain("does not look installed");
  });

  it.each(OWN.filter((c) => c.exe))("$client: yes with its command on PATH", async ({ client, exe }) => {
    const bin = join(home, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, exe!), "#!/bin/sh\n", { mode: 0o755 });
    t.env.PATH = bin;
    expect(await installed(client)).toBe(true);
  });
});
