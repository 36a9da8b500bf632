import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { goose } from "../src/clients/goose.js";
import { addRemoveRoundTrip } from "./helpers/golden.js";
import type { TestContext } from "./helpers/context.js";
import { enterProject, leaveProject } from "./helpers/project.js";
import { BIN } from "./helpers/cli.js";

/**
 * add-client / remove-client / clients for Goose, whose config is YAML (src/store/yaml.ts): exact bytes
 * (goldens in test/fixtures/clients/golden/), every byte outside our entry kept, refusals, the file's
 * location and the installed rule. Goose is not on npm, so no real-client test; the facts are in
 * docs/clients.md, Goose. UPDATE_GOLDENS=1 rewrites the goldens (then read the diff).
 */
const FIX = join(__dirname, "fixtures", "clients");
const GOLDEN = join(FIX, "golden");
let t: TestContext;
let home: string;
let file: string;

beforeEach(async () => {
  let proj: string;
  ({ t, home, proj } = await enterProject());
  file = goose.configPath(t.env, "linux", "user", proj);
});
afterEach(() => leaveProject(t));

function normalise(text: string): string {
  return text.split(BIN).join("<SCRIPT>").split(process.execPath).join("<NODE>").split(t.configDir).join("<CONFIG>").split(home).join("<HOME>");
}

const run = (argv: string[]) => t.capture(argv);

function put(text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

const fixture = () => readFileSync(join(FIX, "goose-user.yaml"), "utf8");

/** The file's text without the lines of the `dev-k8s:` entry (its key line and everything indented under it). */
function withoutOurs(text: string): string {
  const lines = text.split(/(?<=\n)/);
  const i = lines.findIndex((l) => /^ {2}dev-k8s:/.test(l));
  if (i < 0) return text;
  let j = i + 1;
  while (j < lines.length && /^ {4,}/.test(lines[j]!)) j++;
  return [...lines.slice(0, i), ...lines.slice(j)].join("");
}

describe("add-client goldens: Goose", () => {
  it.each([
    { id: "goose-user.yaml", fixture: "goose-user.yaml" as string | null, args: [] as string[] },
    { id: "goose-user-header.yaml", fixture: "goose-user.yaml", args: ["--strategy", "header"] },
    { id: "goose-user-new.yaml", fixture: null, args: [] },
  ])("$id", async (c) => {
    const { original, written } = await addRemoveRoundTrip({ run, client: "goose", scope: "user", args: c.args, file, fixture: c.fixture && join(FIX, c.fixture), golden: join(GOLDEN, c.id), normalise });
    // Every byte outside our entry is the user's, as it was (comments, quoting, serde_yaml's sequence indentation).
    if (original !== null) expect(withoutOurs(written)).toBe(original);
  });
});

describe("what the entries say", () => {
  it("proxy: a stdio extension running this node and script, enabled, with Goose's time-out", async () => {
    put(fixture());
    expect((await run(["add-client", "goose"])).code).toBe(0);
    const ext = parse(readFileSync(file, "utf8")).extensions["dev-k8s"];
    expect(ext).toEqual({
      name: "dev-k8s",
      enabled: true,
      timeout: 300,
      type: "stdio",
      cmd: process.execPath,
      args: [BIN, "--config-dir", t.configDir, "--store", "file", "proxy", "--profile", "dev.k8s", "--url", "https://mcp.example.invalid/mcp"],
    });
  });

  it("header: streamable_http with ${NAME} filled from env_keys, and no token in the file", async () => {
    const r = await run(["add-client", "goose", "--strategy", "header"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('export MCP_AUTH_TOKEN_DEV_K8S="$(mcp-auth token --profile dev.k8s)"');
    expect(parse(readFileSync(file, "utf8")).extensions["dev-k8s"]).toEqual({
      name: "dev-k8s",
      enabled: true,
      timeout: 300,
      type: "streamable_http",
      uri: "https://mcp.example.invalid/mcp",
      headers: { Authorization: "Bearer ${MCP_AUTH_TOKEN_DEV_K8S}" },
      env_keys: ["MCP_AUTH_TOKEN_DEV_K8S"],
    });
  });

  it("--print shows the YAML entry and writes nothing", async () => {
    const r = await run(["add-client", "goose", "--print"]);
    expect(r.code, r.err).toBe(0);
    expect(parse(r.out).extensions["dev-k8s"].cmd).toBe(process.execPath);
    expect(() => readFileSync(file)).toThrow();
  });

  it.each([
    ["Dev.K8s", [], "dev-k8s"],
    ["Team_A", [], "team_a"],
  ])("profile %s gets the lower-case name Goose keys extensions by (%j → %s)", async (profile, args, name) => {
    expect(await t.run(["profiles", "add", profile, "--issuer", "https://idp.example.invalid", "--client-id", "cli", "--mcp-url", "https://mcp.example.invalid/mcp"])).toBe(0);
    const r = await run(["add-client", "goose", "--profile", profile, ...args]);
    expect(r.code, r.err).toBe(0);
    expect(Object.keys(parse(readFileSync(file, "utf8")).extensions)).toEqual([name]);
  });

  it.each([
    [["add-client", "goose", "--name", "DevK8s"], /--name "DevK8s" has characters Goose refuses[\s\S]*lower-case letters/],
    [["add-client", "goose", "--scope", "project"], /Goose has no scope "project"/],
    [["add-client", "goose", "--strategy", "native"], /Goose has no strategy "native"/],
  ])("%j → exit 2", async (argv, msg) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });

  it("clients lists the extension as mcp-auth's, with its profile; remote entries show their uri", async () => {
    put(fixture().replace("extensions:\n", "extensions:\n  remote:\n    enabled: true\n    name: remote\n    type: streamable_http\n    uri: https://remote.example.invalid/mcp\n"));
    expect((await run(["add-client", "goose"])).code).toBe(0);
    const rows = JSON.parse((await run(["clients", "--json"])).out) as Array<{ client: string; files: Array<{ servers: Array<{ name: string; mcpAuth: boolean; profile?: string; url?: string }> }> }>;
    const servers = rows.find((r) => r.client === "goose")!.files[0]!.servers;
    expect(servers.find((s) => s.name === "dev-k8s")).toMatchObject({ mcpAuth: true, profile: "dev.k8s" });
    expect(servers.find((s) => s.name === "remote")).toMatchObject({ mcpAuth: false, url: "https://remote.example.invalid/mcp" });
    expect(servers.find((s) => s.name === "github")).toMatchObject({ mcpAuth: false });
  });
});

describe("file safety", () => {
  it.each([
    ["a flow sequence left open", "extensions:\n  a: [1\n"],
    ["a duplicate key", "GOOSE_MODEL: a\nGOOSE_MODEL: b\n"],
    ["a tab for indentation", "extensions:\n\tdev: 1\n"],
    ["a top level that is a list", "- extensions\n"],
    ["a top level that is a scalar", "just text\n"],
    ["an alias bomb", `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n`],
    ["extensions that is a string", "extensions: none\n"],
    ["extensions that is a list", "extensions:\n- developer\n"],
  ])("%s: refused with exit 5, the file untouched", async (_what, text) => {
    put(text);
    const r = await run(["add-client", "goose"]);
    expect(r.code, r.err).toBe(5);
    expect(r.err).toMatch(/config\.yaml/);
    expect(readFileSync(file, "utf8")).toBe(text);
  });

  it.each([
    ["extensions twice", "extensions:\n  planted:\n    cmd: evil\nextensions: {}\n", ["add-client", "goose"]],
    ["our name twice (add)", "extensions:\n  dev-k8s:\n    cmd: evil\n  dev-k8s:\n    cmd: mcp-auth\n    args: [proxy, --profile, dev.k8s]\n", ["add-client", "goose"]],
    ["our name twice (remove)", "extensions:\n  dev-k8s:\n    cmd: evil\n  dev-k8s:\n    cmd: mcp-auth\n    args: [proxy, --profile, dev.k8s]\n", ["remove-client", "goose", "--name", "dev-k8s"]],
  ])("%s: refused with exit 5 in one line, untouched", async (_what, text, argv) => {
    put(text);
    const r = await run(argv);
    expect(r.code, r.err).toBe(5);
    expect(r.err).toMatch(/cannot parse .*config\.yaml: Map keys must be unique/);
    expect(readFileSync(file, "utf8")).toBe(text);
  });

  it("the same name, not ours, needs --force; remove-client gives it back byte for byte", async () => {
    const mine = fixture().replace("  todo:\n", "  dev-k8s:   # mine\n    cmd: my-server\n    args: []\n    enabled: true\n    name: dev-k8s\n    type: stdio\n  todo:\n");
    put(mine);
    const r = await run(["add-client", "goose"]);
    expect(r.code).toBe(5);
    expect(r.err).toContain("--force");
    expect(readFileSync(file, "utf8")).toBe(mine);
    expect((await run(["add-client", "goose", "--force"])).code).toBe(0);
    const after = readFileSync(file, "utf8");
    expect(after).not.toContain("my-server");
    expect(withoutOurs(after)).toBe(withoutOurs(mine));
    expect((await run(["remove-client", "goose", "--name", "dev-k8s"])).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(mine);
  });

  it("after an edit elsewhere, remove-client takes out exactly our entry; comments, CRLF and a BOM stay", async () => {
    const crlf = "\uFEFF" + fixture().replace(/\n/g, "\r\n");
    put(crlf);
    expect((await run(["add-client", "goose"])).code).toBe(0);
    const added = readFileSync(file, "utf8");
    expect(added.startsWith("\uFEFF")).toBe(true);
    expect(added.replace(/\r\n/g, "")).not.toContain("\n");
    writeFileSync(file, added.replace("GOOSE_MODE: smart_approve", "GOOSE_MODE: auto"));
    const r = await run(["remove-client", "goose", "--name", "dev-k8s"]);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(crlf.replace("GOOSE_MODE: smart_approve", "GOOSE_MODE: auto"));
  });

  it.each([
    ["an empty mapping, as Goose writes it", "GOOSE_PROVIDER: openai\nextensions: {}\n"],
    ["a flow mapping", "extensions: {developer: {enabled: true, name: developer, type: builtin}}\nGOOSE_MODE: auto\n"],
    ["a null value with a comment", "extensions: # none yet\nGOOSE_MODE: auto\n"],
    ["only comments", "# nothing configured yet\n"],
  ])("%s: our entry is added, everything else keeps its meaning and comments", async (_what, text) => {
    put(text);
    const r = await run(["add-client", "goose"]);
    expect(r.code, r.err).toBe(0);
    const after = readFileSync(file, "utf8");
    const before = parse(text) ?? {};
    const got = parse(after);
    expect(got.extensions["dev-k8s"].type).toBe("stdio");
    delete got.extensions["dev-k8s"];
    expect({ ...got, extensions: got.extensions ?? {} }).toEqual({ ...before, extensions: before.extensions ?? {} });
    for (const c of text.match(/#[^\n]*/g) ?? []) expect(after).toContain(c);
  });

  it("a file only add-client wrote goes with the last entry; one the user had keeps `extensions: {}`", async () => {
    expect((await run(["add-client", "goose"])).code).toBe(0);
    writeFileSync(file, readFileSync(file, "utf8") + "GOOSE_MODE: auto\n");
    expect((await run(["remove-client", "goose", "--name", "dev-k8s"])).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe("extensions: {}\nGOOSE_MODE: auto\n");
  });

  it("hostile values elsewhere in the file are kept as they are, and printed sanitised", async () => {
    const hostile = fixture().replace("  todo:\n", '  "evil\\e[31m":\n    cmd: "rm -rf ~ \\u0007"\n    args: ["$(id)", "`id`"]\n    enabled: true\n    name: "evil\\e[31m"\n    type: stdio\n  todo:\n');
    put(hostile);
    expect((await run(["add-client", "goose"])).code).toBe(0);
    expect(withoutOurs(readFileSync(file, "utf8"))).toBe(hostile);
    const list = await run(["clients"]);
    expect(list.out).not.toContain("\u001b[31m");
    expect(list.out).not.toContain("\u0007");
  });

  it("profiles rename points our extension at the new profile in place; remove-client still finds it", async () => {
    put(fixture());
    expect((await run(["add-client", "goose"])).code).toBe(0);
    const r = await run(["profiles", "rename", "dev.k8s", "prod"]);
    expect(r.code, r.err).toBe(0);
    const after = readFileSync(file, "utf8");
    expect(withoutOurs(after)).toBe(fixture());
    expect(parse(after).extensions["dev-k8s"].args).toContain("prod");
    expect((await run(["remove-client", "goose", "--name", "dev-k8s"])).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(fixture());
  });

  it("the backup holds the previous version; the file keeps its mode", async () => {
    put(fixture());
    chmodSync(file, 0o640);
    const r = await run(["add-client", "goose"]);
    expect(r.code).toBe(0);
    const backup = /Previous version: (\S+)/.exec(r.err)?.[1];
    expect(backup && readFileSync(backup, "utf8")).toBe(fixture());
  });
});

describe("where the file is, and whether Goose is installed", () => {
  it.each([
    ["linux", { HOME: "/h" }, "/h/.config/goose/config.yaml"],
    ["darwin", { HOME: "/Users/u" }, "/Users/u/.config/goose/config.yaml"],
    ["linux", { HOME: "/h", XDG_CONFIG_HOME: "/x" }, "/x/goose/config.yaml"],
    ["linux", { HOME: "/h", XDG_CONFIG_HOME: "rel" }, "/h/.config/goose/config.yaml"],
    ["linux", { HOME: "/h", GOOSE_PATH_ROOT: "/g" }, "/g/config/config.yaml"],
    ["linux", { HOME: "/h", GOOSE_PATH_ROOT: "g" }, "/h/.config/goose/config.yaml"],
    ["win32", { USERPROFILE: "C:\\Users\\u", APPDATA: "C:\\Users\\u\\AppData\\Roaming" }, "C:\\Users\\u\\AppData\\Roaming\\Block\\goose\\config\\config.yaml"],
  ] as const)("%s %j → %s", (platform, env, want) => {
    expect(goose.configPath(env, platform, "user", "/proj")).toBe(want);
  });

  it("installed: goose on PATH, or Goose's data dir, never the config.yaml mcp-auth wrote", async () => {
    const p = (env: NodeJS.ProcessEnv) => goose.installed({ env: { HOME: home, PATH: "", ...env }, platform: "linux", cwd: home });
    expect(p({})).toBe(false);
    expect((await run(["add-client", "goose"])).code).toBe(0);
    expect(p({})).toBe(false);
    mkdirSync(join(home, ".local", "share", "goose", "sessions"), { recursive: true });
    expect(p({})).toBe(true);
    const bin = join(home, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "goose"), "#!/bin/sh\n", { mode: 0o755 });
    expect(p({ XDG_DATA_HOME: join(home, "elsewhere"), PATH: bin })).toBe(true);
    expect(p({ XDG_DATA_HOME: join(home, "elsewhere") })).toBe(false);
  });
});
