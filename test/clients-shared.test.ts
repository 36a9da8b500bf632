import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { paths } from "../src/paths.js";
import { writeCachedToken } from "../src/store/tokens.js";
import { readConfigSync, selectProfile } from "../src/target.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * No token in what is meant to be shared or shown: `--static-token` is refused for a project file
 * (committed) and an install link (passed around); `--print` and `--dry-run` show `Bearer <token>`.
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

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = t.stdout().length;
  const e = t.stderr().length;
  const code = await t.run(argv);
  return { code, out: t.stdout().slice(o), err: t.stderr().slice(e) };
}

const HEADER = ["--strategy", "header", "--static-token"];

describe("--static-token is refused where the file or link is meant to be shared", () => {
  it.each([
    { client: "claude", file: ".mcp.json", alt: /the default strategy \(helper\).*--strategy header without --static-token/ },
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
