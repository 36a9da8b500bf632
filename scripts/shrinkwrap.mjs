// npm-shrinkwrap.json for the published package (npm runs this as `prepack`; `--remove` is `postpack`).
//
// A shrinkwrap inside a package pins its whole dependency tree, exact versions and integrity hashes, for
// everyone who installs it (`npm install -g mcp-auth-cli@X`, the GitHub Action) — package-lock.json is
// never published. It is made from package-lock.json, not by `npm shrinkwrap` (which renames the lock
// away), and kept out of the repository: when both files sit in a checkout npm reads the shrinkwrap
// only, so a committed one would have to carry the devDependencies `npm ci` needs. What is packed holds
// what an install of the package uses: the production part of the lock.
import { readFileSync, rmSync, writeFileSync } from "node:fs";

const root = new URL("../", import.meta.url);
const target = new URL("npm-shrinkwrap.json", root);

if (process.argv.includes("--remove")) {
  rmSync(target, { force: true });
  process.exit(0);
}

// npm 12 (npm-packlist 11) leaves npm-shrinkwrap.json out of every package, `files` or not: a release
// packed with it would silently ship unpinned.
const npmMajor = Number(/^npm\/(\d+)\./.exec(process.env.npm_config_user_agent ?? "")?.[1]);
if (npmMajor >= 12) {
  process.stderr.write(`shrinkwrap: npm ${npmMajor} does not pack npm-shrinkwrap.json; pack and publish with npm 11\n`);
  process.exit(1);
}

const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
const lock = JSON.parse(readFileSync(new URL("package-lock.json", root), "utf8"));
const stale = (why) => {
  process.stderr.write(`shrinkwrap: package-lock.json ${why}; run npm install first\n`);
  process.exit(1);
};
if (!(lock.lockfileVersion >= 2) || !lock.packages) stale("has no `packages` section (lockfileVersion 2 or 3 needed)");
if (lock.name !== pkg.name || lock.version !== pkg.version) stale(`is for ${lock.name}@${lock.version}, not ${pkg.name}@${pkg.version}`);
const same = (a = {}, b = {}) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
if (!same(lock.packages[""]?.dependencies, pkg.dependencies)) stale("lists other dependencies than package.json");

const packages = {};
for (const [path, entry] of Object.entries(lock.packages)) {
  if (path === "") {
    const { devDependencies: _dev, ...rootEntry } = entry;
    packages[path] = rootEntry;
  } else if (entry.link || !path.startsWith("node_modules/")) {
    stale(`holds ${path}, which is not a registry package`);
  } else if (!entry.dev) {
    // devOptional: needed only as an optional dependency of production code, so optional once published.
    const { devOptional, ...rest } = entry;
    packages[path] = devOptional ? { ...rest, optional: true } : rest;
  }
}
writeFileSync(target, JSON.stringify({ ...lock, packages }, null, 2) + "\n");
