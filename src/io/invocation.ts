import { accessSync, constants, readFileSync, realpathSync } from "node:fs";
import { basename, delimiter, dirname, join } from "node:path";

/** The npm package that ships the `mcp-auth` command (the name `mcp-auth` itself belongs to another project). */
export const PACKAGE_NAME = "mcp-auth-cli";

/**
 * How the user can run mcp-auth from where they are, for the commands we print: `mcp-auth` when it is on
 * PATH, `npx mcp-auth` inside a project that has it (or is it), else `node <its launcher>` (a clone or
 * an unpacked tarball, run from elsewhere), and `npx mcp-auth-cli` only when nothing else is known (the
 * launcher in npx's cache, which npm clears). Right after a local `npm install`, a bare `mcp-auth` is
 * "command not found".
 */
export function invocation(env: NodeJS.ProcessEnv, cwd: string = process.cwd(), script: string | undefined = runningLauncher()): string {
  const exe = process.platform === "win32" ? ["mcp-auth.cmd", "mcp-auth.exe", "mcp-auth"] : ["mcp-auth"];
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    // npx links the package into its cache (…/_npx/<hash>/node_modules/.bin) for that one run only.
    if (!dir || dir.split(/[\\/]/).includes("_npx")) continue;
    for (const name of exe) if (executable(join(dir, name))) return "mcp-auth";
  }
  for (let d = cwd; ; d = dirname(d)) {
    if (executable(join(d, "node_modules", ".bin", "mcp-auth")) || packageName(join(d, "package.json")) === PACKAGE_NAME) return "npx mcp-auth";
    if (dirname(d) === d) break;
  }
  if (script) return `node ${/^[\w@%+=:,./-]+$/.test(script) ? script : `'${script.replace(/'/g, `'\\''`)}'`}`;
  return `npx ${PACKAGE_NAME}`;
}

/** The launcher this process was started with (bin/mcp-auth.js), unless it lives in npx's cache for one run. */
function runningLauncher(): string | undefined {
  const a = process.argv[1];
  if (!a || !/^mcp-auth(\.js)?$/.test(basename(a))) return undefined;
  try {
    const real = realpathSync(a);
    return real.split(/[\\/]/).includes("_npx") ? undefined : real;
  } catch {
    return undefined;
  }
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function packageName(file: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { name?: string }).name;
  } catch {
    return undefined;
  }
}
