import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "smol-toml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { codex } from "../src/clients/codex.js";
import { gemini } from "../src/clients/gemini.js";
import { renderTable } from "../src/store/toml.js";
import { windsurf } from "../src/clients/windsurf.js";
import { applyAddClient, applyRemoveClient, prepareAddClient, prepareRemoveClient } from "../src/core/clients.js";
import { actionOf } from "../src/store/plan.js";
import { addRemoveRoundTrip } from "./helpers/golden.js";
import type { TestContext } from "./helpers/context.js";
import { enterProject, leaveProject } from "./helpers/project.js";
import { BIN } from "./helpers/cli.js";
import { Random, rng } from "./helpers/random.js";

/**
 * add-client / remove-client / clients for Codex (TOML), Gemini CLI and Windsurf: exact bytes per client,
 * scope and strategy (goldens in test/fixtures/clients/golden/), refusals, and the listing.
 * Set UPDATE_GOLDENS=1 to rewrite the goldens (then read the diff).
 */
const FIX = join(__dirname, "fixtures", "clients");
const GOLDEN = join(FIX, "golden");
const WRITERS = { codex, gemini, windsurf } as const;
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

const GOLDENS: Array<{ id: string; client: keyof typeof WRITERS; scope: string; fixture: string | null; args?: string[] }> = [
  { id: "codex-user.toml", client: "codex", scope: "user", fixture: "codex-user.toml" },
  { id: "codex-user-header.toml", client: "codex", scope: "user", fixture: "codex-user.toml", args: ["--strategy", "header"] },
  { id: "codex-user-new.toml", client: "codex", scope: "user", fixture: null },
  { id: "codex-project-new.toml", client: "codex", scope: "project", fixture: null },
  { id: "gemini-user.json", client: "gemini", scope: "user", fixture: "gemini-user.json" },
  { id: "gemini-user-header.json", client: "gemini", scope: "user", fixture: "gemini-user.json", args: ["--strategy", "header"] },
  { id: "gemini-project.json", client: "gemini", scope: "project", fixture: "gemini-project.json" },
  { id: "gemini-project-new.json", client: "gemini", scope: "project", fixture: null },
  { id: "windsurf-user.json", client: "windsurf", scope: "user", fixture: "windsurf-user.json" },
  { id: "windsurf-user-header.json", client: "windsurf", scope: "user", fixture: "windsurf-user.json", args: ["--strategy", "header"] },
];

describe("add-client goldens: Codex, Gemini CLI, Windsurf", () => {
  it.each(GOLDENS)("$id", async (c) => {
    const { original, written } = await addRemoveRoundTrip({ run, client: c.client, scope: c.scope, args: c.args, file: fileFor(c.client, c.scope), fixture: c.fixture && join(FIX, c.fixture), golden: join(GOLDEN, c.id), normalise });
    if (original !== null) expect(written.startsWith(original.replace(/\r?\n$/, "")) || c.client !== "codex").toBe(true); // TOML: appended
  });
});

describe("what the entries say", () => {
  it("no token lands in a file unless --static-token is chosen; each client gets its own reference syntax", async () => {
    for (const c of ["codex", "gemini", "windsurf"] as const) expect((await run(["add-client", c, "--strategy", "header"])).code).toBe(0);
    expect(readFileSync(fileFor("codex", "user"), "utf8")).toContain('bearer_token_env_var = "MCP_AUTH_TOKEN_DEV_K8S"');
    expect(JSON.parse(readFileSync(fileFor("gemini", "user"), "utf8")).mcpServers["dev-k8s"]).toEqual({ type: "http", url: "https://mcp.example.invalid/mcp", headers: { Authorization: "Bearer ${MCP_AUTH_TOKEN_DEV_K8S}" } });
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
    [["add-client", "codex", "--scope", "local"], /Codex has no scope "local"/],
    [["add-client", "windsurf", "--scope", "project"], /Windsurf has no scope "project"/],
    [["add-client", "gemini", "--strategy", "helper"], /Gemini CLI has no strategy "helper"/],
    [["add-client", "notepad"], /supported: claude, claude-desktop, cursor, vscode, codex, gemini, windsurf, copilot, opencode, qwen, kiro, zed/],
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

  it("codex: a header inside a multi-line string is text, not our table", async () => {
    const file = fileFor("codex", "user");
    const text = 'notes = """\n[mcp_servers.dev-k8s]\ncommand = "not a table"\n"""\nlist = [\n  "[mcp_servers.dev-k8s]",\n]\n';
    put(file, text);
    const r = await run(["add-client", "codex"]);
    expect(r.code, r.err).toBe(0);
    const after = readFileSync(file, "utf8");
    expect(after.startsWith(text + "\n[mcp_servers.dev-k8s]\n")).toBe(true);
    writeFileSync(file, "# edited\n" + after); // the ledger no longer matches: remove by line range
    expect((await run(["remove-client", "codex", "--name", "dev-k8s"])).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe("# edited\n" + text);
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
    expect(rows.map((x) => x.client)).toEqual(["claude", "claude-desktop", "cursor", "vscode", "codex", "gemini", "windsurf", "copilot", "opencode", "qwen", "kiro", "zed", "goose", "cline"]);
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

/**
 * Property test for the Codex writer: 400 generated config.toml files (comments, root keys, other tables,
 * dotted headers, arrays of tables, multi-line strings and arrays, other servers with sub-tables, CRLF,
 * a BOM, odd endings), half of them already holding an older mcp-auth table of ours somewhere.
 * add-client changes only our table (appended at the end, or replaced in place), a second add changes
 * nothing, remove-client gives the original bytes back; after an edit elsewhere it still takes out
 * only our table.
 */
const N = 400;

class Gen extends Random {
  comment(): string {
    return this.pick(["# note", "#", "# [mcp_servers.p] in a comment", "# é 漢字", "#\tmcp_servers"]);
  }
  gap(): string {
    return this.pick(["", "", "\n", `${this.comment()}\n`, "\n\n", `\n${this.comment()}\n`]);
  }
  value(): string {
    return this.pick([
      '"x"',
      "'literal \\ kept'",
      "42",
      "-1.5e3",
      "true",
      "1979-05-27T07:32:00Z",
      '["a", "b"]',
      "[\n  1,\n  2, # two\n]",
      '"""\nmulti\n[not.a.table]\n"""',
      "'''\nraw [x]\n'''",
      '"""\n[mcp_servers.p]\ncommand = \"fake\"\n"""',
      "'''\n[mcp_servers.p.env]'''",
      '{ a = 1, "b c" = "d" }',
      '"quote \\" and \\\\"',
    ]);
  }
  keyvals(prefix: string, n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += `${this.pick(["", "  "])}${prefix}${i}${this.pick([" = ", "=", "  =  "])}${this.value()}${this.chance(0.2) ? "  " + this.comment() : ""}\n` + (this.chance(0.2) ? this.gap() : "");
    return s;
  }
  table(i: number): string {
    const k = this.int(6);
    const head =
      k === 0 ? `[t${i}]` :
      k === 1 ? `[a${i}.b."c d"]` :
      k === 2 ? `[[profiles.list${i % 2}]]` :
      k === 3 ? `[mcp_servers.srv-${i}]` :
      k === 4 ? `[ mcp_servers . "srv ${i}" ]` :
      `[mcp_servers.srv-${i}.env]`;
    return `${head}${this.chance(0.2) ? "  " + this.comment() : ""}\n${this.keyvals(`k${i}_`, this.int(4))}`;
  }
  ours(): string {
    let s = `[mcp_servers.p]${this.chance(0.3) ? " # mcp-auth" : ""}\ncommand = "/old/node"\nargs = ["/old/bin/mcp-auth.js", "proxy", "--profile", "p", "--url", "https://old.example.invalid/mcp"]\n`;
    if (this.chance(0.4)) s += `${this.pick(["", "\n"])}[mcp_servers.p.env]\nDEBUG = "1"\n`;
    return s;
  }
  /** A file, and where our older table sits in it (if any). */
  file(): { text: string; ours?: { start: number; end: number } } {
    let text = this.gap() + this.keyvals("root", this.int(4));
    const n = this.int(6);
    const at = this.chance(0.5) ? this.int(n + 1) : -1;
    let ours: { start: number; end: number } | undefined;
    const dup = new Set<string>();
    for (let i = 0; i <= n; i++) {
      if (i === at) {
        text += this.gap();
        if (text && !text.endsWith("\n")) text += "\n";
        const start = text.length;
        text += this.ours();
        ours = { start, end: text.length };
      }
      if (i === n) break;
      const t = this.table(i);
      const h = t.split("\n")[0]!;
      if (dup.has(h)) continue;
      dup.add(h);
      text += this.gap() + t;
    }
    text += this.pick(["", "", "\n", "\n\n", "# end", "# end\n", "  "]);
    return { text, ...(ours && { ours }) };
  }
}

const strip = (s: string) => (s.startsWith("\uFEFF") ? s.slice(1) : s);
const doc = (s: string) => JSON.parse(JSON.stringify(parse(strip(s)))) as Record<string, Record<string, unknown>>;

describe("add-client / remove-client codex on generated TOML files", () => {
  it(`only our table changes, add is idempotent, remove restores the bytes (${N} files)`, async () => {
    expect(await t.run(["profiles", "add", "p", "--issuer", "https://idp.example.invalid", "--client-id", "c", "--mcp-url", "https://mcp.example.invalid/mcp"])).toBe(0);
    const g = new Gen(rng(20261129));
    const req = { client: "codex", profile: "p", cwd: proj, platform: "linux", launcher: { node: "/n", script: "/s/bin/mcp-auth.js" }, claudeCli: null };
    const rmReq = { client: "codex", name: "p", cwd: proj, platform: "linux", claudeCli: null };
    let replaced = 0;
    for (let i = 0; i < N; i++) {
      let { text: original, ours } = g.file();
      if (g.chance(0.3)) {
        const crlf = original.replace(/\n/g, "\r\n");
        if (ours) ours = { start: original.slice(0, ours.start).replace(/\n/g, "\r\n").length, end: original.slice(0, ours.end).replace(/\n/g, "\r\n").length };
        original = crlf;
      }
      if (g.chance(0.1)) {
        original = "\uFEFF" + original;
        if (ours) ours = { start: ours.start + 1, end: ours.end + 1 };
      }
      const ctxt = `case ${i}:\n${JSON.stringify(original)}`;
      expect(() => parse(strip(original)), ctxt).not.toThrow(); // the generator makes valid TOML
      const prep = await prepareAddClient(t.ctx, req);
      const file = prep.path;
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, original);

      const add = await prepareAddClient(t.ctx, req);
      await applyAddClient(t.ctx, add, req);
      const after = readFileSync(file, "utf8");
      const eol = strip(original).includes("\r\n") ? "\r\n" : "\n";
      const table = renderTable(["mcp_servers", "p"], add.entry.server, eol);
      if (!ours) {
        // Appended: the original is a prefix, followed by line ends and our table.
        expect(after.startsWith(original), ctxt).toBe(true);
        expect(after.slice(original.length).replace(/^[ \t]*(\r?\n)*/, ""), ctxt).toBe(table + eol);
      } else {
        replaced++;
        // Replaced in place: everything before and after our old table is the same.
        expect(after.slice(0, ours.start), ctxt).toBe(original.slice(0, ours.start));
        const tail = original.slice(ours.end);
        expect(after.endsWith(tail), ctxt).toBe(true);
        expect(after.slice(ours.start, after.length - tail.length).trimEnd(), ctxt).toBe(table);
      }
      const want = doc(original);
      want.mcp_servers = { ...want.mcp_servers, p: add.entry.server };
      expect(doc(after), ctxt).toEqual(want);

      expect(actionOf((await prepareAddClient(t.ctx, req)).changes[0]!), ctxt).toBe("unchanged");

      const rm = await prepareRemoveClient(t.ctx, rmReq);
      expect(rm.exact, ctxt).toBe(true);
      await applyRemoveClient(t.ctx, rm, { cwd: proj, claudeCli: null });
      expect(readFileSync(file, "utf8"), ctxt).toBe(original);

      // After an edit elsewhere the ledger no longer matches: our table alone is taken out.
      if (!ours) {
        await applyAddClient(t.ctx, await prepareAddClient(t.ctx, req), req);
        const edited = "# edited" + eol + readFileSync(file, "utf8").replace(/^\uFEFF/, "");
        writeFileSync(file, edited);
        const rm2 = await prepareRemoveClient(t.ctx, rmReq);
        expect(rm2.exact, ctxt).toBe(false);
        await applyRemoveClient(t.ctx, rm2, { cwd: proj, claudeCli: null });
        const back = readFileSync(file, "utf8");
        expect(back.trimEnd(), ctxt).toBe(("# edited" + eol + strip(original)).trimEnd());
      }
      rmSync(file);
    }
    expect(replaced).toBeGreaterThan(N / 4);
  }, 600_000);
});
