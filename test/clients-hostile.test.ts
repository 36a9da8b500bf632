import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLIENTS } from "../src/plugins.js";
import type { ClientWriter, Scope, Strategy } from "../src/core/client.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * Client config files planted in a cloned project or pointed at something else, and URLs that would
 * make a client expand a variable, against every client writer: a duplicate key on the path we edit,
 * a symlink to /proc/self/pagemap, a FIFO, a file too big to be a config, and a URL with `${…}` or a quote.
 */
const startDir = process.cwd();
let t: TestContext;
let proj: string;

beforeEach(async () => {
  t = createTestContext();
  proj = join(t.env.HOME!, "proj");
  mkdirSync(proj);
  process.chdir(proj);
  expect(await t.run(["profiles", "add", "dev", "--issuer", "https://idp.example.invalid", "--client-id", "cli", "--mcp-url", "https://mcp.example.invalid/mcp"])).toBe(0);
});
afterEach(() => {
  process.chdir(startDir);
  t.cleanup();
});

const run = (argv: string[]) => t.capture(argv);

function put(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

const fileOf = (w: ClientWriter, scope: Scope) => w.configPath(t.env, "linux", scope, proj);

/** Every writer × scope × strategy it offers. */
const CASES = CLIENTS.flatMap((w) => w.scopes.flatMap((scope) => w.strategies.map((strategy) => ({ id: `${w.id} ${scope} ${strategy}`, w, scope, strategy: strategy as Strategy }))));
const JSON_FILES = CLIENTS.filter((w) => (w.format ?? "jsonc") === "jsonc").flatMap((w) => w.scopes.map((scope) => ({ id: `${w.id} ${scope}`, w, scope })));

/** The file parsed as its client parses it: JSON.parse (last duplicate wins), TOML or YAML. */
function asClientReads(w: ClientWriter, text: string): any {
  return w.format === "toml" ? parseToml(text) : w.format === "yaml" ? parseYaml(text) : JSON.parse(text);
}

function serversIn(w: ClientWriter, scope: Scope, text: string): Record<string, any> {
  let v = asClientReads(w, text);
  for (const k of w.serversPath(scope, proj)) v = v?.[k];
  return v;
}

describe("a duplicate key on the edited path is refused (exit 5), the file left untouched", () => {
  /** The servers object written twice along the path: `{"mcpServers": {...}, "mcpServers": {...}}`, nested as the writer needs. */
  function twice(w: ClientWriter, scope: Scope, level: number): string {
    const path = w.serversPath(scope, proj);
    const inner = (servers: string) => path.slice(level + 1).reduceRight((acc, k) => `{${JSON.stringify(k)}: ${acc}}`, servers);
    const dup = `${JSON.stringify(path[level])}: ${inner('{"planted": {"command": "evil"}}')}, ${JSON.stringify(path[level])}: ${inner("{}")}`;
    return path.slice(0, level).reduceRight((acc, k) => `{${JSON.stringify(k)}: ${acc}}`, `{${dup}}`) + "\n";
  }

  it.each(JSON_FILES)("$id: each key of the servers path twice", async ({ w, scope }) => {
    const file = fileOf(w, scope);
    const path = w.serversPath(scope, proj);
    for (let level = 0; level < path.length; level++) {
      const text = twice(w, scope, level);
      put(file, text);
      const r = await run(["add-client", w.id, "--scope", scope]);
      expect(r.code, r.err).toBe(5);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.err).toContain(`"${path.slice(0, level + 1).join(".")}" appears 2 times`);
      expect(readFileSync(file, "utf8")).toBe(text);
    }
  });

  it.each(JSON_FILES)("$id: our server name twice, for add-client and remove-client", async ({ w, scope }) => {
    const file = fileOf(w, scope);
    const path = w.serversPath(scope, proj);
    const entry = '{"command": "mcp-auth", "args": ["proxy", "--profile", "dev"]}';
    const text = path.reduceRight((acc, k) => `{${JSON.stringify(k)}: ${acc}}`, `{"dev": {"command": "evil"}, "dev": ${entry}}`) + "\n";
    put(file, text);
    for (const argv of [["add-client", w.id, "--scope", scope], ["remove-client", w.id, "--scope", scope, "--name", "dev"]]) {
      const r = await run(argv);
      expect(r.code, r.err).toBe(5);
      expect(r.err).toMatch(/"[^"]*dev" appears 2 times/);
      expect(readFileSync(file, "utf8")).toBe(text);
    }
  });

  it("codex: a TOML table defined twice is refused (exit 5), untouched", async () => {
    const w = CLIENTS.find((c) => c.id === "codex")!;
    const text = '[mcp_servers.dev]\ncommand = "mcp-auth"\n\n[mcp_servers.dev]\ncommand = "evil"\n';
    put(fileOf(w, "user"), text);
    const r = await run(["add-client", "codex"]);
    expect(r.code, r.err).toBe(5);
    expect(readFileSync(fileOf(w, "user"), "utf8")).toBe(text);
  });
});

describe("a config path that leads to a kernel file, a FIFO or a huge file", () => {
  const plant: Record<string, (file: string) => void> = {
    "a symlink to /proc/self/pagemap": (file) => symlinkSync("/proc/self/pagemap", file),
    "a symlink to a symlink to /proc/self/pagemap": (file) => {
      symlinkSync("/proc/self/pagemap", `${file}.hop`);
      symlinkSync(`${file}.hop`, file);
    },
    "a symlink to /sys/kernel/notes": (file) => symlinkSync("/sys/kernel/notes", file),
    "a FIFO": (file) => execFileSync("mkfifo", [file]),
    "a 5 MB file": (file) => writeFileSync(file, `{"mcpServers": {}, "pad": "${"x".repeat(5 * 1024 * 1024)}"}`),
  };
  const WHY: Record<string, RegExp> = {
    "a symlink to /proc/self/pagemap": /leads to \/proc\/\S+\/pagemap, a kernel file/,
    "a symlink to a symlink to /proc/self/pagemap": /leads to \/proc\/\S+\/pagemap, a kernel file/,
    "a symlink to /sys/kernel/notes": /leads to \/sys\/kernel\/notes, a kernel file/,
    "a FIFO": /not a regular file/,
    "a 5 MB file": /larger than 4 MB/,
  };
  const TABLE = Object.keys(plant).flatMap((what) => CLIENTS.flatMap((w) => w.scopes.map((scope) => ({ id: `${what}: ${w.id} ${scope}`, what, w, scope }))));

  it.each(TABLE)("$id → add-client and remove-client exit 5, clients reports it and goes on", async ({ what, w, scope }) => {
    const file = fileOf(w, scope);
    mkdirSync(dirname(file), { recursive: true });
    rmSync(file, { force: true });
    plant[what]!(file);
    for (const argv of [["add-client", w.id, "--scope", scope], ["remove-client", w.id, "--scope", scope, "--name", "dev"]]) {
      const r = await run(argv);
      expect(r.code, r.err).toBe(5);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.err).toMatch(WHY[what]!);
    }
    const list = await run(["clients", "--json"]);
    expect(list.code, list.err).toBe(0);
    const row = (JSON.parse(list.out) as Array<{ client: string; files: Array<{ scope: string; error?: string }> }>).find((c) => c.client === w.id)!;
    expect(row.files.find((f) => f.scope === scope)!.error).toMatch(WHY[what]!);
  });
});

describe("URLs written into client configs cannot make the client expand a variable", () => {
  const EXPANDING = "https://mcp.example.invalid/mcp/${HOME}?k=${env:AWS_SECRET_ACCESS_KEY}&j=$AWS_SECRET_ACCESS_KEY&v={x}";
  const WRITTEN = "https://mcp.example.invalid/mcp/%24%7BHOME%7D?k=%24%7Benv:AWS_SECRET_ACCESS_KEY%7D&j=%24AWS_SECRET_ACCESS_KEY&v=%7Bx%7D";

  it.each(CASES)("$id: $, { and } are percent-encoded in what the client reads", async ({ w, scope, strategy }) => {
    const file = fileOf(w, scope);
    const r = await run(["add-client", w.id, "--scope", scope, "--strategy", strategy, "--url", EXPANDING]);
    expect(r.code, r.err).toBe(0);
    const text = readFileSync(file, "utf8");
    expect(text).not.toMatch(/\$\{?(env:)?(AWS|HOME)/);
    const server = serversIn(w, scope, text).dev;
    const argv = server.args ?? server.command; // OpenCode: one argv array
    const url = server.url ?? server.httpUrl ?? server.serverUrl ?? server.uri ?? argv[argv.indexOf("--url") + 1]; // Goose: uri
    expect(url).toBe(WRITTEN);
    // the server gets the same URL: percent-decoding gives the characters back
    expect(decodeURIComponent(new URL(url).search)).toBe(decodeURIComponent(new URL(EXPANDING.replace(/\$/g, "%24").replace(/\{/g, "%7B").replace(/\}/g, "%7D")).search));
  });

  it.each(CASES)("$id: a profile URL that would expand is encoded the same way (--print)", async ({ w, scope, strategy }) => {
    expect(await t.run(["profiles", "set", "dev", "--mcp-url", EXPANDING])).toBe(0);
    const r = await run(["add-client", w.id, "--scope", scope, "--strategy", strategy, "--print"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).not.toMatch(/\$\{?(env:)?(AWS|HOME)/);
    expect(r.out).toContain(WRITTEN);
  });

  it.each(
    CLIENTS.flatMap((w) =>
      [
        ['a double quote', 'https://mcp.example.invalid/mcp?x="a'],
        ["a single quote", "https://mcp.example.invalid/mcp?x='a"],
        ["a backtick", "https://mcp.example.invalid/mcp?x=`id`"],
        ["a backslash", "https://mcp.example.invalid/mcp\\x"],
        ["an escape character", "https://mcp.example.invalid/mcp?x=\u001b]0;t\u0007"],
        ["a C1 control", "https://mcp.example.invalid/mcp?x=\u009b"],
        ["a tab", "https://mcp.example.invalid/m\tcp"],
      ].map(([what, url]) => ({ id: `${w.id}: ${what}`, w, url: url! })),
    ),
  )("$id → exit 2, one line, nothing written", async ({ w, url }) => {
    const file = fileOf(w, w.defaultScope);
    const r = await run(["add-client", w.id, "--url", url]);
    expect(r.code, r.err).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toContain("quote, backslash or control character");
    expect(r.err).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(existsSync(file)).toBe(false);
  });
});
