import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { release } from "node:os";
import { join } from "node:path";
import { envWithoutSecrets, markControl } from "./sanitize.js";

/** How a URL reaches a browser. Tests use one that records the URL and follows the login itself. */
export interface Browser {
  /** `command` (--browser-command) wins over $BROWSER, which wins over the platform opener. */
  open(url: string, o?: { command?: string }): Promise<void>;
  /** Why no browser can be opened here (then a login offers the device code or paste-back); undefined: one can. */
  unavailable?(): string | undefined;
}

/**
 * Why the platform's opener would show nothing to the person at the keyboard: an SSH session (the
 * browser would open on the remote machine, if anywhere), or Linux without a display. macOS and
 * Windows always have one; WSL opens Windows' browser. A $BROWSER command is the user's to judge.
 */
export function noBrowserReason(env: NodeJS.ProcessEnv, platform: NodeJS.Platform, wsl: boolean): string | undefined {
  if (env.BROWSER) return undefined;
  if (env.SSH_CONNECTION || env.SSH_TTY) return "this is an SSH session";
  if (platform === "linux" && !wsl && !env.DISPLAY && !env.WAYLAND_DISPLAY) return "DISPLAY and WAYLAND_DISPLAY are unset";
  return undefined;
}

/** What the real opener needs from the machine; tests pass a platform and a spawn that records. */
export interface OpenerDeps {
  platform?: NodeJS.Platform;
  spawn?: (command: string, args: string[], options: SpawnOptions) => ChildProcess;
  /** Linux inside WSL: the browser is Windows' default one. */
  wsl?: boolean;
}

/**
 * The real browser. The URL always travels as one element of an argument vector, never through a
 * shell that could read it: on Windows no `cmd /c` (where `%VAR%`, `&` and `^` act) and no PowerShell
 * string (where `$(…)` runs; the `open` package builds one). The opener runs with an environment
 * stripped of mcp-auth's secret-bearing variables (MCP_AUTH_CLIENT_SECRET, --client-secret-env /
 * --admin-password-env variables…): a browser or a wrapper script has no business seeing them. Its
 * output goes to stderr, never stdout.
 */
export function systemBrowser(env: NodeJS.ProcessEnv, warn: (m: string) => void, deps: OpenerDeps = {}): Browser {
  const platform = deps.platform ?? process.platform;
  const spawn = deps.spawn ?? nodeSpawn;
  const wsl = deps.wsl ?? (platform === "linux" && (Boolean(env.WSL_DISTRO_NAME) || /microsoft/i.test(release())));
  const failed = () => warn("could not open a browser; open the URL above yourself");

  /** Starts one program; resolves false when it could not be started at all. */
  function run(argv: readonly string[], o: { stderr: boolean; name: string }): Promise<boolean> {
    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(argv[0]!, argv.slice(1), {
          stdio: ["ignore", "ignore", o.stderr ? "inherit" : "ignore"],
          env: envWithoutSecrets(env),
          detached: !o.stderr,
          windowsHide: true,
        });
      } catch {
        return resolve(false); // e.g. EINVAL: Node refuses to start a .cmd/.bat without a shell
      }
      child.on("error", () => resolve(false));
      child.on("spawn", () => resolve(true));
      child.on("exit", (code) => {
        if (code) warn(`${o.name} exited with ${code}`);
      });
      child.unref();
    });
  }

  return {
    unavailable: () => noBrowserReason(env, platform, wsl),
    async open(url, o = {}) {
      // Only a web address is handed on: a file path or another scheme would be run by the opener.
      const href = URL.canParse(url) ? new URL(url) : undefined;
      if (!href || (href.protocol !== "https:" && href.protocol !== "http:")) {
        warn(`not opening "${markControl(url.slice(0, 200))}" in a browser: not an http(s) URL`);
        return;
      }
      const target = href.href;
      const command = o.command ?? env.BROWSER;
      if (command) {
        if (platform !== "win32") {
          // sh parses the user's own command; the URL is "$1", which sh never expands further.
          if (!(await run(["/bin/sh", "-c", `${command} "$1"`, "sh", target], { stderr: true, name: "the browser command" }))) warn("could not run the browser command");
          return;
        }
        const argv = splitWindowsCommandLine(command);
        if (!argv.length) return failed();
        if (/\.(cmd|bat)$/i.test(argv[0]!)) {
          warn(`not running "${markControl(argv[0]!)}": on Windows the browser command must be a program (.exe); a .cmd or .bat file needs cmd.exe, which would expand %VARIABLES% in the URL`);
          return;
        }
        if (!(await run([...argv, target], { stderr: true, name: "the browser command" }))) warn(`could not run the browser command "${markControl(argv[0]!)}"`);
        return;
      }
      for (const argv of defaultOpeners(platform, wsl, env, target)) {
        if (await run(argv, { stderr: false, name: "the browser opener" })) return;
      }
      failed();
    },
  };
}

/**
 * The platform's own URL openers, tried in order, each as an argument vector. Windows:
 * url.dll's FileProtocolHandler (what "Open link" uses), by absolute path so a rundll32.exe in the
 * current directory is never the one started. WSL: the same through Windows interop, else xdg-open.
 */
export function defaultOpeners(platform: NodeJS.Platform, wsl: boolean, env: NodeJS.ProcessEnv, url: string): string[][] {
  if (platform === "darwin") return [["open", url]];
  if (platform === "win32") return [[join(env.SystemRoot || "C:\\Windows", "System32", "rundll32.exe"), "url.dll,FileProtocolHandler", url]];
  if (wsl) {
    return [
      ["rundll32.exe", "url.dll,FileProtocolHandler", url],
      ["xdg-open", url],
    ];
  }
  return [["xdg-open", url]];
}

/**
 * A Windows command line → argv, as the Microsoft C runtime splits it (CommandLineToArgvW): blanks
 * separate arguments outside double quotes; 2n backslashes before a quote become n and the quote
 * toggles quoting; 2n+1 become n and a literal quote; `""` inside quotes is a literal quote; other
 * backslashes are literal. So `"C:\Program Files\Firefox\firefox.exe" -private-window` is two arguments.
 */
export function splitWindowsCommandLine(line: string): string[] {
  const args: string[] = [];
  let cur = "";
  let inArg = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "\\") {
      let n = 0;
      while (line[i] === "\\") (n++, i++);
      if (line[i] === '"') {
        cur += "\\".repeat(Math.floor(n / 2));
        if (n % 2) cur += '"';
        else if (quoted && line[i + 1] === '"') (cur += '"'), i++;
        else quoted = !quoted;
      } else {
        cur += "\\".repeat(n);
        i--;
      }
      inArg = true;
    } else if (c === '"') {
      if (quoted && line[i + 1] === '"') (cur += '"'), i++;
      else quoted = !quoted;
      inArg = true;
    } else if ((c === " " || c === "\t") && !quoted) {
      if (inArg) args.push(cur);
      cur = "";
      inArg = false;
    } else {
      cur += c;
      inArg = true;
    }
  }
  if (inArg) args.push(cur);
  return args;
}
