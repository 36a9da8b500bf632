import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ROOT, runProcess } from "./helpers/cli.js";

/**
 * The artifact, not the checkout: `npm pack`, then an install of the tarball into an empty prefix the
 * way a user gets it (`--omit=dev`: no devDependencies), then mcp-auth run from there. Needs the npm
 * registry (or a warm npm cache: --prefer-offline) for the dependencies.
 */
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { name: string; version: string; engines: { node: string }; dependencies: Record<string, string>; devDependencies: Record<string, string> };
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

let work: string;
let tarball: string;
let prefix: string;
let packed: { size: number; unpackedSize: number; files: { path: string }[] };

function du(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += du(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

const mb = (n: number) => (n < 1024 * 1024 ? `${Math.round(n / 1024)} kB` : `${(n / 1024 / 1024).toFixed(1)} MB`);

describe("the npm package, as installed", () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "mcp-auth-pack-"));
    // --ignore-scripts: the suite's global setup has built dist/ already (a rebuild here would rewrite it
    // under the feet of the tests running in parallel).
    const pack = await runProcess(npm, ["pack", "--ignore-scripts", "--json", "--pack-destination", work], { ...process.env, npm_config_loglevel: "error" }, undefined, 120_000, ROOT);
    expect(pack.code, pack.stderr).toBe(0);
    packed = JSON.parse(pack.stdout)[0];
    tarball = join(work, `${pkg.name}-${pkg.version}.tgz`);
    prefix = join(work, "prefix");
    const install = await runProcess(
      npm,
      ["install", "--prefix", prefix, "--omit=dev", "--prefer-offline", "--no-audit", "--no-fund", "--no-save", tarball],
      { ...process.env, npm_config_loglevel: "error", npm_config_update_notifier: "false" },
      undefined,
      300_000,
      work,
    );
    expect(install.code, install.stderr).toBe(0);
    const installed = du(join(prefix, "node_modules"));
    // The figures the README's Development section quotes.
    console.info(`${pkg.name}: tarball ${mb(statSync(tarball).size)} (${packed.files.length} files, ${mb(packed.unpackedSize)} unpacked); installed with dependencies ${mb(installed)}`);
  }, 420_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("holds the launcher, the bundles, completions and the README, and no tests, simulators or sources", () => {
    const files = packed.files.map((f) => f.path).sort();
    expect(files).toEqual(
      expect.arrayContaining(["README.md", "bin/mcp-auth.js", "completions/_mcp-auth", "completions/mcp-auth.bash", "completions/mcp-auth.fish", "dist/cli.mjs", "dist/fast.cjs", "package.json"]),
    );
    for (const f of files) expect(f, f).toMatch(/^(README\.md|LICENSE|package\.json|bin\/mcp-auth\.js|dist\/[\w.-]+\.(mjs|cjs)|completions\/[\w.-]+)$/);
    expect(files.join("\n")).not.toMatch(/test|simulator|\.ts$|\.map$/);
  });

  it("every package the built CLI imports is a dependency, not a devDependency", () => {
    const code = readFileSync(join(ROOT, "dist", "cli.mjs"), "utf8") + readFileSync(join(ROOT, "dist", "fast.cjs"), "utf8");
    const specifiers = new Set([...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(?:\/[\w.-]+)*)["']/g)].map((m) => m[1]!));
    const packages = [...specifiers].filter((s) => !s.startsWith("node:") && !builtinModules.includes(s.split("/")[0]!)).map((s) => (s.startsWith("@") ? s.split("/").slice(0, 2).join("/") : s.split("/")[0]!));
    expect(packages).toContain("oidc-provider"); // the sandbox's IdP: needed at run time
    for (const p of new Set(packages)) {
      expect(pkg.dependencies, `${p} is imported by dist/ but is not a dependency`).toHaveProperty([p]);
    }
  });

  it("mcp-auth --help runs from the installed prefix", async () => {
    const r = await runProcess(join(prefix, "node_modules", ".bin", "mcp-auth"), ["--help"], { PATH: process.env.PATH, HOME: work, NO_COLOR: "1" }, undefined, 60_000, work);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: mcp-auth /);
    expect(r.stdout).toContain("sandbox");
  });

  it("mcp-auth sandbox, then mcp-auth token --profile sandbox, from the installed prefix", async () => {
    const bin = join(prefix, "node_modules", ".bin");
    const env = { PATH: `${bin}:${process.env.PATH}`, HOME: work, MCP_AUTH_CONFIG_DIR: join(work, "config"), MCP_AUTH_STORE: "file", NO_COLOR: "1" };
    const sandbox = spawn(join(bin, "mcp-auth"), ["sandbox", "--save"], { env, cwd: work, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    sandbox.stderr.on("data", (d) => (err += d));
    try {
      for (let i = 0; i < 600 && !err.includes("mcp-auth status"); i++) await new Promise((r) => setTimeout(r, 100));
      // mcp-auth is on PATH here: the printed commands are the bare ones.
      expect(err).toContain("  mcp-auth token --profile sandbox\n");
      const token = await runProcess(join(bin, "mcp-auth"), ["token", "--profile", "sandbox"], env, undefined, 60_000, work);
      expect(token.code, token.stderr).toBe(0);
      expect(token.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    } finally {
      sandbox.kill("SIGTERM");
      await new Promise((r) => sandbox.once("close", r));
    }
  });
});

describe("the launcher's Node version floor", () => {
  /** Runs bin/mcp-auth.js as if on another Node: one line and exit 1 below the floor, the CLI at or above it. */
  function launchOn(version: string): { stderr: string; exit?: number; loadedCli: boolean } {
    const got = { stderr: "", exit: undefined as number | undefined, loadedCli: false };
    const exit = new Error("exit");
    const source = readFileSync(BIN, "utf8").replace(/^#!.*\n/, "");
    try {
      runInNewContext(source, {
        process: {
          versions: { node: version },
          version: `v${version}`,
          argv: ["node", BIN, "token"],
          env: {},
          stderr: { write: (s: string) => void (got.stderr += s) },
          exit: (code: number) => {
            got.exit = code;
            throw exit;
          },
        },
        require: () => ({ tryCachedToken: () => ((got.loadedCli = true), true) }),
      });
    } catch (e) {
      if (e !== exit) throw e;
    }
    return got;
  }

  it.each(["18.20.4", "20.12.0", "20.17.0", "20.18.0"])("Node %s gets one clear line", (v) => {
    const r = launchOn(v);
    expect(r.exit).toBe(1);
    expect(r.stderr).toBe(`mcp-auth: Node.js >= 20.18.1 is required (this is v${v})\n`);
    expect(r.loadedCli).toBe(false);
  });

  it.each(["20.18.1", "20.20.2", "22.0.0", "24.1.0"])("Node %s runs", (v) => {
    const r = launchOn(v);
    expect(r.stderr).toBe("");
    expect(r.loadedCli).toBe(true);
  });

  it("the floor is the one package.json's engines states", () => {
    expect(pkg.engines.node).toBe(">=20.18.1");
    expect(readFileSync(BIN, "utf8")).toContain("Node.js >= 20.18.1 is required");
  });
});
