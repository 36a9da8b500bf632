import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applyAddClient, npxPackage, prepareAddClient } from "../src/core/clients.js";
import { paths } from "../src/paths.js";
import { writeCachedToken } from "../src/store/tokens.js";
import { readConfigSync, selectProfile } from "../src/profile.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * No token in what is meant to be shared or shown: `--static-token` is refused for a project file
 * (committed) and an install link (passed around); `--print` and `--dry-run` show `Bearer <token>`.
 * No path in npx's one-run cache (…/_npx/…) in a client's file: npm clears it.
 */
const TOKEN = "eyJ-static-token-that-must-not-leak";
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
  expect(await t.run(["profiles", "add", "dev.k8s", "--issuer", "https://idp.example.invalid", "--client-id", "cli", "--mcp-url", "https://mcp.example.invalid/mcp"])).toBe(0);
  // A valid cached token: without the refusals, add-client would fetch it and write or print it.
  const prof = selectProfile(readConfigSync(join(t.configDir, "config.json")), { profile: "dev.k8s" });
  const now = Math.floor(t.clock.now() / 1000);
  writeCachedToken(paths({}, undefined, t.configDir), { ...prof, profile: prof.name }, { version: 1, profile: prof.name, issuer: prof.issuer, clientId: prof.clientId, access_token: TOKEN, token_type: "Bearer", expires_at: now + 3600, obtained_at: now } as never);
});
afterEach(() => {
  process.chdir(startDir);
  t.cleanup();
});

const run = (argv: string[]) => t.capture(argv);

const HEADER = ["--strategy", "header", "--static-token"];

describe("--static-token is refused where the file or link is meant to be shared", () => {
  it.each([
    { client: "claude", file: ".mcp.json", alt: /the default strategy \(proxy\).*--strategy header without --static-token/ }, // the project default: every reader of .mcp.json runs it
    { client: "cursor", file: ".cursor/mcp.json", alt: /the default strategy \(proxy\).*--strategy header without --static-token/ },
    { client: "vscode", file: ".vscode/mcp.json", alt: /the default strategy \(proxy\)/ },
    { client: "gemini", file: ".gemini/settings.json", alt: /the default strategy \(proxy\)/ },
  ])("$client --scope project → exit 2, one line naming the alternative, nothing written", async ({ client, file, alt }) => {
    const r = await run(["add-client", client, "--scope", "project", ...HEADER]);
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(/--static-token is refused for project scope: the project file is meant to be shared/);
    expect(r.err).toMatch(alt);
    expect(r.out + r.err).not.toContain(TOKEN);
    expect(existsSync(join(proj, file))).toBe(false);
  });

  it.each(["cursor", "vscode"])("%s --link → exit 2, and no link carrying the token", async (client) => {
    const r = await run(["add-client", client, "--link", ...HEADER]);
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(/--static-token is refused for --link: an install link is meant to be shared; use the default strategy \(proxy\)/);
    expect(r.out).toBe("");
    expect(decodeURIComponent(r.out + r.err)).not.toContain(TOKEN);
  });
});

describe("--print and --dry-run never show the token", () => {
  it.each(["claude", "cursor", "vscode", "codex", "gemini", "windsurf"])("%s --print shows Bearer <token>", async (client) => {
    const r = await run(["add-client", client, "--print", ...HEADER]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("Bearer <token>");
    expect(r.out + r.err).not.toContain(TOKEN);
  });

  it.each(["claude", "cursor", "codex"])("%s --dry-run shows Bearer <token> in the diff, with --json too", async (client) => {
    for (const json of [[], ["--json"]]) {
      const r = await run(["add-client", client, "--dry-run", ...json, ...HEADER]);
      expect(r.code, r.err).toBe(0);
      if (!json.length) expect(r.out).toContain("Bearer <token>");
      expect(r.out + r.err).not.toContain(TOKEN);
    }
  });

  it("a real run still writes the token (user scope), privately", async () => {
    const r = await run(["add-client", "cursor", ...HEADER]);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(home, ".cursor", "mcp.json"), "utf8")).toContain(`Bearer ${TOKEN}`);
    expect(r.err).toContain("--static-token writes a bearer token");
  });
});

// ---- npx's cache ----

/** Lays out a package as npm does: <root>/node_modules/mcp-auth-cli/{package.json,bin/mcp-auth.js} and a .bin link. */
function layPackage(root: string, version: string): { script: string; bin: string } {
  const pkg = join(root, "node_modules", "mcp-auth-cli");
  mkdirSync(join(pkg, "bin"), { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "mcp-auth-cli", version }));
  writeFileSync(join(pkg, "bin", "mcp-auth.js"), "#!/usr/bin/env node\n", { mode: 0o755 });
  const bin = join(root, "node_modules", ".bin");
  mkdirSync(bin, { recursive: true });
  symlinkSync(join(pkg, "bin", "mcp-auth.js"), join(bin, "mcp-auth"));
  return { script: join(pkg, "bin", "mcp-auth.js"), bin };
}

describe("an mcp-auth run from npx's cache writes a command that outlives the cache", () => {
  let npx: { script: string; bin: string };
  beforeEach(() => {
    npx = layPackage(join(home, ".npm", "_npx", "ec115687ce5a860b"), "0.1.0");
  });
  const req = (client: string, extra: object = {}) => ({ client, profile: "dev.k8s", cwd: proj, platform: "linux", launcher: { node: process.execPath, script: npx.script }, claudeCli: null, ...extra });

  it.each(["claude", "claude-desktop", "cursor", "vscode", "codex", "gemini", "windsurf"])("%s, nothing installed: npx -y mcp-auth-cli@0.1, with a note on the start-up cost", async (client) => {
    t.env.PATH = `${npx.bin}:/nonexistent`; // npx puts its cache's .bin first on PATH for that run
    const p = await prepareAddClient(t.ctx, req(client));
    const text = JSON.stringify(p.entry.server);
    expect(text).not.toContain("_npx");
    expect(text).toContain("mcp-auth-cli@0.1");
    expect(p.spec.command).toEqual(["npx", "-y", "mcp-auth-cli@0.1"]);
    expect(p.warnings.join("\n")).toMatch(/none is installed on PATH: the entry runs npx -y mcp-auth-cli@0\.1, which adds npm's start-up/);
  });

  it("an installed mcp-auth on PATH is written instead (its script, run by this node), and the note says so", async () => {
    const global = layPackage(join(home, "global", "lib"), "0.1.0");
    t.env.PATH = `${npx.bin}:${global.bin}`;
    const p = await prepareAddClient(t.ctx, req("cursor"));
    expect(p.spec.command).toEqual([process.execPath, realpathSync(global.script)]);
    expect(p.warnings.join("\n")).toContain(`the entry runs the installed one instead: ${process.execPath} ${realpathSync(global.script)}`);
    await applyAddClient(t.ctx, p, req("cursor"));
    const written = readFileSync(join(home, ".cursor", "mcp.json"), "utf8");
    expect(written).not.toContain("_npx");
    expect(written).toContain(realpathSync(global.script));
  });

  it("a PATH dir inside npx's cache is not an installed mcp-auth", async () => {
    const other = layPackage(join(home, ".npm", "_npx", "0123456789abcdef"), "0.1.0");
    t.env.PATH = `${npx.bin}:${other.bin}`;
    expect((await prepareAddClient(t.ctx, req("codex"))).spec.command).toEqual(["npx", "-y", "mcp-auth-cli@0.1"]);
  });

  it("init through npx (the same request) writes no _npx path either", async () => {
    t.env.PATH = npx.bin;
    const r = req("gemini");
    const p = await prepareAddClient(t.ctx, r);
    await applyAddClient(t.ctx, p, r);
    expect(readFileSync(p.path, "utf8")).not.toContain("_npx");
  });

  it("outside npx's cache the entry runs this node and script, as before", async () => {
    mkdirSync(join(home, ".cursor"), { recursive: true });
    writeFileSync(join(home, ".cursor", "argv.json"), "{}"); // Cursor's own: installed, so no warning about that
    const p = await prepareAddClient(t.ctx, { ...req("cursor"), launcher: { node: process.execPath, script: join(home, "global", "bin", "mcp-auth.js") } });
    expect(p.spec.command).toEqual([process.execPath, join(home, "global", "bin", "mcp-auth.js")]);
    expect(p.warnings).toEqual([]);
  });

  it.each([
    ["1.4.2", "mcp-auth-cli@1"],
    ["12.0.0", "mcp-auth-cli@12"],
    ["0.3.1", "mcp-auth-cli@0.3"],
    ["0.0.4", "mcp-auth-cli@0.0.4"],
    ["2.0.0-beta.1", "mcp-auth-cli@2.0.0-beta.1"],
  ])("version %s → npx -y %s (what npm's caret range calls compatible)", (version, spec) => {
    const root = join(home, "v", version);
    const { script } = layPackage(root, version);
    expect(npxPackage({ node: process.execPath, script })).toBe(spec);
  });
});
