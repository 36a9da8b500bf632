import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
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

interface Lock {
  packages: Record<string, { name?: string; version?: string; integrity?: string; resolved?: string; license?: string; dev?: boolean; optional?: boolean; dependencies?: Record<string, string> }>;
}

/**
 * A registry on 127.0.0.1 for the install test. npm follows a package's shrinkwrap only when the
 * registry's metadata says the version has one (`_hasShrinkwrap`, which registry.npmjs.org sets on
 * publish: github.com/npm/registry docs/responses/package-metadata.md), never for a tarball file. It
 * serves this package with `_hasShrinkwrap: true`, and for every dependency the shrinkwrap's versions
 * (their manifests as the lock records them; tarballs at registry.npmjs.org, so the npm cache answers)
 * plus a newer decoy within the usual ranges, tagged latest, whose tarball is a 404: an install that
 * resolved ranges instead of following the shrinkwrap would take a decoy, and fail.
 */
async function startRegistry(tgz: Buffer, shrinkwrap: Lock): Promise<{ url: string; decoysFetched: string[]; close(): void }> {
  const packuments = new Map<string, { name: string; "dist-tags": { latest: string }; versions: Record<string, unknown> }>();
  const decoysFetched: string[] = [];
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const own = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Record<string, unknown>;
  packuments.set(pkg.name, {
    name: pkg.name,
    "dist-tags": { latest: pkg.version },
    versions: { [pkg.version]: { ...own, _hasShrinkwrap: true, dist: { tarball: `${url}/${pkg.name}/-/${pkg.name}-${pkg.version}.tgz`, integrity: `sha512-${createHash("sha512").update(tgz).digest("base64")}` } } },
  });
  for (const [path, e] of Object.entries(shrinkwrap.packages)) {
    if (path === "") continue;
    const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    const { version, integrity, dev: _d, optional: _o, resolved: _r, license: _l, ...fields } = e;
    const file = `${name.split("/").at(-1)}-${version}.tgz`;
    const manifest = { name, version, ...fields, _hasShrinkwrap: false, dist: { tarball: `https://registry.npmjs.org/${name}/-/${file}`, integrity } };
    const [major, minor, patch] = version!.split(/[.-]/).map(Number);
    const decoy = `${major}.${minor}.${patch! + 1000}`;
    const p = packuments.get(name) ?? { name, "dist-tags": { latest: decoy }, versions: {} };
    p.versions[version!] = manifest;
    p.versions[decoy] = { ...manifest, version: decoy, dist: { tarball: `${url}/decoy/${name}/-/${decoy}.tgz`, integrity: `sha512-${createHash("sha512").update(decoy).digest("base64")}` } };
    packuments.set(name, p);
  }
  server.on("request", (req, res) => {
    const path = decodeURIComponent(req.url ?? "/");
    if (path.startsWith("/decoy/")) decoysFetched.push(path);
    const packument = packuments.get(path.slice(1));
    if (packument) return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(packument));
    if (path === `/${pkg.name}/-/${pkg.name}-${pkg.version}.tgz`) return void res.writeHead(200, { "content-type": "application/octet-stream" }).end(tgz);
    res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
  });
  return { url, decoysFetched, close: () => (server.closeAllConnections(), server.close()) };
}

/** Paths of installed packages under `dir` as a lock names them ("node_modules/a/node_modules/@s/b"). */
function packageDirs(dir: string, rel = ""): string[] {
  const nm = join(dir, "node_modules");
  if (!existsSync(nm)) return [];
  const out: string[] = [];
  for (const e of readdirSync(nm, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith(".")) continue;
    const names = e.name.startsWith("@") ? readdirSync(join(nm, e.name)).map((n) => `${e.name}/${n}`) : [e.name];
    for (const name of names) {
      const path = `${rel}node_modules/${name}`;
      out.push(path, ...packageDirs(join(nm, name), `${path}/`));
    }
  }
  return out;
}

const mb = (n: number) => (n < 1024 * 1024 ? `${Math.round(n / 1024)} kB` : `${(n / 1024 / 1024).toFixed(1)} MB`);

describe("the npm package, as installed", () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "mcp-auth-pack-"));
    // --ignore-scripts: the suite's global setup has built dist/ already (a rebuild here would rewrite it
    // under the feet of the tests running in parallel). So the pack hooks that make and remove the
    // shrinkwrap (package.json prepack/postpack) are run here by name.
    const npmEnv = { ...process.env, npm_config_loglevel: "error" };
    let pack;
    try {
      const prepack = await runProcess(npm, ["run", "prepack"], npmEnv, undefined, 60_000, ROOT);
      expect(prepack.code, prepack.stderr).toBe(0);
      pack = await runProcess(npm, ["pack", "--ignore-scripts", "--json", "--pack-destination", work], npmEnv, undefined, 120_000, ROOT);
    } finally {
      await runProcess(npm, ["run", "postpack"], npmEnv, undefined, 60_000, ROOT);
    }
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
      expect.arrayContaining(["README.md", "bin/mcp-auth.js", "completions/_mcp-auth", "completions/mcp-auth.bash", "completions/mcp-auth.fish", "dist/cli.mjs", "dist/fast.cjs", "npm-shrinkwrap.json", "package.json"]),
    );
    for (const f of files) expect(f, f).toMatch(/^(README\.md|LICENSE|package\.json|npm-shrinkwrap\.json|bin\/mcp-auth\.js|dist\/[\w.-]+\.(mjs|cjs)|completions\/[\w.-]+)$/);
    expect(files.join("\n")).not.toMatch(/test|simulator|\.ts$|\.map$/);
  });

  it("ships npm-shrinkwrap.json: the lock's production part, and nothing is left in the checkout", () => {
    const shipped = JSON.parse(readFileSync(join(prefix, "node_modules", pkg.name, "npm-shrinkwrap.json"), "utf8")) as Lock;
    const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as Lock;
    const production = Object.entries(lock.packages).filter(([path, e]) => path !== "" && !e.dev);
    expect(Object.keys(shipped.packages).sort()).toEqual(["", ...production.map(([path]) => path)].sort());
    for (const [path, e] of production) expect(shipped.packages[path], path).toMatchObject({ version: e.version, integrity: e.integrity });
    expect(Object.values(shipped.packages).some((e) => e.dev)).toBe(false);
    expect(shipped.packages[""]).toEqual(expect.objectContaining({ name: pkg.name, version: pkg.version, dependencies: pkg.dependencies }));
    expect(shipped.packages[""]).not.toHaveProperty("devDependencies");
    // A checkout's `npm ci` reads npm-shrinkwrap.json instead of package-lock.json whenever it is there.
    expect(existsSync(join(ROOT, "npm-shrinkwrap.json"))).toBe(false);
  });

  it("installed from a registry as the GitHub Action installs it, the tree is the shrinkwrap's, paths and versions", async () => {
    const shipped = JSON.parse(readFileSync(join(prefix, "node_modules", pkg.name, "npm-shrinkwrap.json"), "utf8")) as Lock;
    const reg = await startRegistry(readFileSync(tarball), shipped);
    const global = join(work, "global");
    try {
      const r = await runProcess(
        npm,
        // The action's command line (action.yml), pointed at this registry.
        ["install", "--global", "--prefix", global, "--ignore-scripts", "--no-fund", "--no-audit", "--prefer-offline", `--registry=${reg.url}/`, "--replace-registry-host=never", `${pkg.name}@${pkg.version}`],
        { ...process.env, npm_config_loglevel: "error", npm_config_update_notifier: "false" },
        undefined,
        300_000,
        work,
      );
      expect(r.code, r.stderr).toBe(0);
    } finally {
      reg.close();
    }
    // No decoy was ever fetched: each dependency is the shrinkwrap's version, though a newer one was on offer.
    expect(reg.decoysFetched).toEqual([]);
    // Where scripts/action.mjs looks for it (POSIX layout of a global prefix).
    const root = join(global, "lib", "node_modules", pkg.name);
    expect(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version).toBe(pkg.version);
    expect(existsSync(join(root, "bin", "mcp-auth.js"))).toBe(true);
    for (const [path, e] of Object.entries(shipped.packages)) {
      if (path === "") continue;
      const manifest = join(root, path, "package.json");
      if (e.optional && !existsSync(manifest)) continue; // for another platform
      expect(JSON.parse(readFileSync(manifest, "utf8")).version, path).toBe(e.version);
    }
    for (const path of packageDirs(root)) expect(shipped.packages, `${path} is not in the shrinkwrap`).toHaveProperty([path]);
  }, 300_000);

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
