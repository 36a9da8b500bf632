import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileError } from "../src/errors.js";
import { planConfigUpdate, updateConfigFile } from "../src/store/config-file.js";
import { renderPlan } from "../src/store/plan.js";
import { CONFIG_VERSION, migrateConfig } from "../src/store/config-version.js";
import { paths } from "../src/paths.js";
import { parseConfig } from "../src/profile.js";
import { user, type Sandboxed } from "./helpers/cli.js";

/** config.json goes through plan → apply: backups, schema version, migration, refusal of newer files. */
let u: Sandboxed;
afterEach(() => u?.cleanup());

const ISSUER = "https://idp.example.invalid";
const add = (name: string, extra: string[] = []) => u.run(["profiles", "add", name, "--issuer", ISSUER, "--client-id", `c-${name}`, "--grant", "authorization_code", ...extra]);
const backups = (dir: string) => readdirSync(dir).filter((n) => /^config\.json\.\d{8}T\d{6}\.\d{3}Z(-\d+)?\.bak$/.test(n)).sort();

describe("config.json schema version", () => {
  it.each([
    { name: "no version (before versions existed)", data: {}, ok: true },
    { name: "version 0", data: { version: 0 }, ok: true },
    { name: "the current version", data: { version: 1 }, ok: true },
    { name: "a newer version", data: { version: 2 }, ok: false, why: /written by a newer mcp-auth \(config version 2; this one knows 1\); upgrade mcp-auth/ },
    { name: "a version that is a string", data: { version: "1" }, ok: false, why: /unknown "version" "1"/ },
    { name: "a fractional version", data: { version: 1.5 }, ok: false, why: /unknown "version" 1.5/ },
    { name: "a negative version", data: { version: -1 }, ok: false, why: /unknown "version" -1/ },
  ])("$name", ({ data, ok, why }) => {
    const run = () => parseConfig(JSON.stringify({ ...data, profiles: {} }), "/x/config.json");
    if (ok) {
      expect(run().version).toBe(CONFIG_VERSION);
      return;
    }
    expect(run).toThrow(FileError);
    expect(run).toThrow(why!);
    expect(() => migrateConfig(data, "/x/config.json")).toThrow(why!);
  });
});

describe("updating config.json (in process)", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("writes nothing, and keeps no backup, when the change changes nothing", async () => {
    dir = mkdtempSync(join(tmpdir(), "mcp-auth-cfg-"));
    const p = paths({ MCP_AUTH_CONFIG_DIR: dir });
    await updateConfigFile(p, (cfg) => void (cfg.defaultProfile = "a"));
    const before = statSync(p.config).mtimeMs;
    const { applied } = await updateConfigFile(p, () => {});
    expect(applied.map((a) => a.action)).toEqual(["unchanged"]);
    expect(statSync(p.config).mtimeMs).toBe(before);
    expect(backups(dir)).toEqual([]);
  });

  it("can be planned and shown as a diff without writing anything (--dry-run)", async () => {
    dir = mkdtempSync(join(tmpdir(), "mcp-auth-cfg-"));
    const p = paths({ MCP_AUTH_CONFIG_DIR: dir });
    writeFileSync(p.config, '{"profiles": {}}\n');
    const { plan, result } = await planConfigUpdate(p, (cfg) => ((cfg.defaultProfile = "x"), 42));
    expect(result).toBe(42);
    expect(readFileSync(p.config, "utf8")).toBe('{"profiles": {}}\n');
    expect(readdirSync(dir)).toEqual(["config.json"]);
    const diff = await renderPlan([plan]);
    expect(diff.split("\n")).toEqual(expect.arrayContaining(['-{"profiles": {}}', '+  "version": 1,', '+  "defaultProfile": "x"']));
  });

  it("never writes through a symlink planted at a backup name (the old config.json.bak route included)", async () => {
    dir = mkdtempSync(join(tmpdir(), "mcp-auth-cfg-"));
    const p = paths({ MCP_AUTH_CONFIG_DIR: dir });
    const victim = join(dir, "..", `${dir.split("/").pop()}-victim`);
    writeFileSync(victim, "precious");
    try {
      await updateConfigFile(p, (cfg) => void (cfg.defaultProfile = "a"));
      symlinkSync(victim, join(dir, "config.json.bak"));
      const at = Date.UTC(2026, 10, 29, 21, 0, 0);
      symlinkSync(victim, join(dir, `config.json.20261129T210000.000Z.bak`));
      const { applied } = await updateConfigFile(p, (cfg) => void (cfg.defaultProfile = "b"), { now: () => at });
      expect(readFileSync(victim, "utf8")).toBe("precious");
      expect(JSON.parse(readFileSync(applied[0]!.backup!, "utf8")).defaultProfile).toBe("a");
    } finally {
      rmSync(victim, { force: true });
    }
  });
});

describe("config.json end to end", () => {
  it("profiles add twice: the previous config.json is kept as a 0600 backup next to it", async () => {
    u = user();
    expect((await add("one")).code).toBe(0);
    const first = readFileSync(join(u.configDir, "config.json"), "utf8");
    expect(backups(u.configDir)).toEqual([]); // nothing to keep the first time
    const r = await u.run(["profiles", "add", "two", "--issuer", ISSUER, "--client-id", "c-two", "--client-secret-env", "S"], { env: { MCP_AUTH_STORE: "file", S: "s3cret-value-never-in-config" } });
    expect(r.code, r.stderr).toBe(0);
    const kept = backups(u.configDir);
    expect(kept).toHaveLength(1);
    const backup = join(u.configDir, kept[0]!);
    expect(readFileSync(backup, "utf8")).toBe(first);
    expect(statSync(backup).mode & 0o777).toBe(0o600);
    expect(statSync(join(u.configDir, "config.json")).mode & 0o777).toBe(0o600);
    expect(readdirSync(u.configDir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    expect(readFileSync(join(u.configDir, "config.json"), "utf8")).not.toContain("s3cret"); // so plans of it never hold one
  });

  it("a symlink planted where the old config.json.bak went is not followed", async () => {
    u = user();
    expect((await add("one")).code).toBe(0);
    const victim = join(u.home, "victim");
    writeFileSync(victim, "precious");
    symlinkSync(victim, join(u.configDir, "config.json.bak"));
    const r = await add("two");
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(victim, "utf8")).toBe("precious");
  });

  it("a config.json from a newer mcp-auth is refused (exit 5) for reading and writing, and left byte-identical", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    mkdirSync(u.configDir, { recursive: true, mode: 0o700 });
    const file = join(u.configDir, "config.json");
    const text = `{"version": 2, "profiles": {"p": {"provider": "oidc", "issuer": "${ISSUER}", "clientId": "c", "grant": "authorization_code", "futureField": [1]}}}`;
    writeFileSync(file, text, { mode: 0o600 });
    for (const args of [["profiles", "list"], ["profiles", "add", "q", "--issuer", ISSUER, "--client-id", "c", "--grant", "authorization_code"], ["profiles", "use", "p"], ["token", "--profile", "p"]]) {
      const r = await u.run(args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(5);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/^error: cannot use .*config\.json: written by a newer mcp-auth \(config version 2; this one knows 1\); upgrade mcp-auth/);
      expect(readFileSync(file, "utf8")).toBe(text);
    }
    expect(readdirSync(u.configDir).filter((n) => n !== "config.json" && n !== "locks")).toEqual([]); // no backup, no temp file
  });

  it("a config.json without a version is migrated on write, the previous file kept", async () => {
    u = user();
    mkdirSync(u.configDir, { recursive: true, mode: 0o700 });
    const file = join(u.configDir, "config.json");
    const old = `{"profiles": {"old": {"provider": "oidc", "issuer": "${ISSUER}", "clientId": "c-old", "grant": "authorization_code"}}}\n`;
    writeFileSync(file, old, { mode: 0o600 });
    const list = await u.run(["profiles", "list", "--quiet"]);
    expect(list.stdout).toBe("old\n");
    expect(readFileSync(file, "utf8")).toBe(old); // reading migrates in memory only
    const r = await add("new");
    expect(r.code, r.stderr).toBe(0);
    const now = JSON.parse(readFileSync(file, "utf8"));
    expect(now.version).toBe(1);
    expect(Object.keys(now.profiles)).toEqual(["old", "new"]);
    const kept = backups(u.configDir);
    expect(kept).toHaveLength(1);
    expect(readFileSync(join(u.configDir, kept[0]!), "utf8")).toBe(old);
  });
});
