import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cline } from "../src/clients/cline.js";
import { addRemoveRoundTrip } from "./helpers/golden.js";
import type { TestContext } from "./helpers/context.js";
import { enterProject, leaveProject } from "./helpers/project.js";
import { BIN } from "./helpers/cli.js";

/**
 * add-client / remove-client for Cline: exact bytes (goldens in test/fixtures/clients/golden/), the file's
 * location (Cline's data dir, not VS Code's extension storage any more), refusals and the installed
 * rule. Facts: docs/clients.md, Cline. UPDATE_GOLDENS=1 rewrites the goldens (then read the diff).
 */
const FIX = join(__dirname, "fixtures", "clients");
const GOLDEN = join(FIX, "golden");
let t: TestContext;
let home: string;
let file: string;

beforeEach(async () => {
  let proj: string;
  ({ t, home, proj } = await enterProject());
  file = cline.configPath(t.env, "linux", "user", proj);
});
afterEach(() => leaveProject(t));

function normalise(text: string): string {
  return text.split(BIN).join("<SCRIPT>").split(process.execPath).join("<NODE>").split(t.configDir).join("<CONFIG>").split(home).join("<HOME>");
}

const run = (argv: string[]) => t.capture(argv);

describe("add-client goldens: Cline", () => {
  it.each([
    { id: "cline-user.json", fixture: "cline-user.json" as string | null },
    { id: "cline-user-new.json", fixture: null },
  ])("$id", async (c) => {
    await addRemoveRoundTrip({ run, client: "cline", scope: "user", file, fixture: c.fixture && join(FIX, c.fixture), golden: join(GOLDEN, c.id), normalise });
  });

  it("the entry is Cline's stdio shape with a 60 s time-out; the folders add-client created go with it", async () => {
    const r = await run(["add-client", "cline"]);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(readFileSync(file, "utf8")).mcpServers["dev-k8s"]).toEqual({
      type: "stdio",
      command: process.execPath,
      args: [BIN, "--config-dir", t.configDir, "--store", "file", "proxy", "--profile", "dev.k8s", "--url", "https://mcp.example.invalid/mcp"],
      timeout: 60,
    });
    expect((await run(["remove-client", "cline", "--name", "dev-k8s"])).code).toBe(0);
    expect(existsSync(join(home, ".cline"))).toBe(false);
  });

  it.each([
    [["add-client", "cline", "--strategy", "header"], /Cline has no strategy "header"/],
    [["add-client", "cline", "--scope", "project"], /Cline has no scope "project"/],
  ])("%j → exit 2", async (argv, msg) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });

  it.each(['{ "mcpServers": { ', '{ "mcpServers": [] }'])("%s: refused with exit 5, untouched", async (text) => {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    const r = await run(["add-client", "cline"]);
    expect(r.code).toBe(5);
    expect(readFileSync(file, "utf8")).toBe(text);
  });
});

describe("where the file is, and whether Cline is installed", () => {
  it.each([
    ["linux", { HOME: "/h" }, "/h/.cline/data/settings/cline_mcp_settings.json"],
    ["darwin", { HOME: "/Users/u" }, "/Users/u/.cline/data/settings/cline_mcp_settings.json"],
    ["win32", { USERPROFILE: "C:\\Users\\u" }, "C:\\Users\\u\\.cline\\data\\settings\\cline_mcp_settings.json"],
    ["linux", { HOME: "/h", CLINE_DIR: "/c" }, "/c/data/settings/cline_mcp_settings.json"],
    ["linux", { HOME: "/h", CLINE_DIR: "/c", CLINE_DATA_DIR: "/d" }, "/d/settings/cline_mcp_settings.json"],
    ["linux", { HOME: "/h", CLINE_DATA_DIR: "/d", CLINE_MCP_SETTINGS_PATH: "/m/mcp.json" }, "/m/mcp.json"],
  ] as const)("%s %j → %s", (platform, env, want) => {
    expect(cline.configPath(env, platform, "user", "/proj")).toBe(want);
  });

  it("installed: cline on PATH, or Cline's own data, never the file mcp-auth wrote", async () => {
    const p = (env: NodeJS.ProcessEnv = {}) => cline.installed({ env: { HOME: home, PATH: "", ...env }, platform: "linux", cwd: home });
    expect(p()).toBe(false);
    expect((await run(["add-client", "cline"])).code).toBe(0);
    expect(p()).toBe(false);
    mkdirSync(join(home, ".cline", "data", "sessions"), { recursive: true });
    expect(p()).toBe(true);
    const bin = join(home, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "cline"), "#!/bin/sh\n", { mode: 0o755 });
    expect(p({ CLINE_DIR: join(home, "elsewhere"), PATH: bin })).toBe(true);
    expect(p({ CLINE_DIR: join(home, "elsewhere") })).toBe(false);
  });
});
