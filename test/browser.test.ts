import { EventEmitter } from "node:events";
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { describe, expect, it } from "vitest";
import { splitWindowsCommandLine, systemBrowser, type OpenerDeps } from "../src/io/browser.js";

/**
 * The system browser opener, in process: an injected platform and a spawn that records what would
 * be started (no real Windows here). The rule under test: the URL is always one element of an
 * argument vector; no shell (cmd /c, PowerShell) ever sees it.
 */
interface Spawned {
  command: string;
  args: string[];
  options: SpawnOptions;
}

function recorder(fail: (command: string) => boolean = () => false) {
  const calls: Spawned[] = [];
  const spawn = (command: string, args: string[], options: SpawnOptions): ChildProcess => {
    calls.push({ command, args, options });
    const child = Object.assign(new EventEmitter(), { unref: () => {} });
    setImmediate(() => (fail(command) ? child.emit("error", Object.assign(new Error(`spawn ${command} ENOENT`), { code: "ENOENT" })) : child.emit("spawn")));
    return child as unknown as ChildProcess;
  };
  return { calls, spawn };
}

async function open(url: string, o: { platform: NodeJS.Platform; command?: string; env?: NodeJS.ProcessEnv; wsl?: boolean; fail?: (c: string) => boolean }) {
  const r = recorder(o.fail);
  const warnings: string[] = [];
  const deps: OpenerDeps = { platform: o.platform, spawn: r.spawn, wsl: o.wsl ?? false };
  await systemBrowser(o.env ?? {}, (m) => warnings.push(m), deps).open(url, { command: o.command });
  return { calls: r.calls, warnings };
}

// Every character cmd.exe acts on (%VAR% expansion, &, ^, quotes), in the path and the query.
const HOSTILE = 'https://idp.example.invalid/auth/%PATH%/a&b^c"d?next=%USERPROFILE%&x=1^&y="&calc.exe';
const SHELLS = /(^|[\\/])(cmd|powershell|pwsh)(\.exe)?$/i;

/** The URL went out once, whole, as one argv element, and no shell was started. */
function expectOneArgument(calls: Spawned[], url: string) {
  const href = new URL(url).href;
  for (const c of calls) {
    expect(c.command).not.toMatch(SHELLS);
    expect(c.options.shell ?? false).toBe(false);
    expect(c.options.windowsVerbatimArguments ?? false).toBe(false);
    expect(c.args.filter((a) => a === href)).toHaveLength(1);
    expect(c.args.filter((a) => a.includes("idp.example.invalid"))).toHaveLength(1);
  }
  return href;
}

describe("no shell on Windows", () => {
  it("the URL keeps %VAR%, & and ^ and has its quotes percent-encoded: nothing in it can end an argument", () => {
    const href = new URL(HOSTILE).href;
    expect(href).toContain("%PATH%");
    expect(href).toContain("%USERPROFILE%");
    expect(href).toMatch(/&.*\^/);
    expect(href).not.toContain('"');
  });

  it.each([
    {
      what: "--browser-command with a quoted program path and a flag",
      command: '"C:\\Program Files\\Mozilla Firefox\\firefox.exe" -private-window',
      program: "C:\\Program Files\\Mozilla Firefox\\firefox.exe",
      before: ["-private-window"],
    },
    { what: "--browser-command, a bare program", command: "chrome.exe", program: "chrome.exe", before: [] },
    { what: "a command with %VAR% in it is not expanded either", command: "C:\\Tools\\open-%USERNAME%.exe --new", program: "C:\\Tools\\open-%USERNAME%.exe", before: ["--new"] },
  ])("$what: the program is started directly, the URL its last argument", async ({ command, program, before }) => {
    const r = await open(HOSTILE, { platform: "win32", command });
    expect(r.warnings).toEqual([]);
    expect(r.calls).toHaveLength(1);
    const href = expectOneArgument(r.calls, HOSTILE);
    expect(r.calls[0]!.command).toBe(program);
    expect(r.calls[0]!.args).toEqual([...before, href]);
  });

  it("$BROWSER is treated the same way", async () => {
    const r = await open(HOSTILE, { platform: "win32", env: { BROWSER: "C:\\Browsers\\browser.exe" } });
    expect(r.calls.map((c) => c.command)).toEqual(["C:\\Browsers\\browser.exe"]);
    expectOneArgument(r.calls, HOSTILE);
  });

  it.each(["open-url.cmd", "C:\\scripts\\browser.BAT --flag"])("a batch file (%s) is refused: it would need cmd.exe", async (command) => {
    const r = await open(HOSTILE, { platform: "win32", command });
    expect(r.calls).toEqual([]);
    expect(r.warnings).toEqual([expect.stringMatching(/must be a program \(\.exe\); a \.cmd or \.bat file needs cmd\.exe/)]);
  });

  it("the default opener is url.dll's FileProtocolHandler, started by absolute path", async () => {
    const r = await open(HOSTILE, { platform: "win32", env: { SystemRoot: "C:\\WINDOWS" } });
    const href = expectOneArgument(r.calls, HOSTILE);
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]!.command).toMatch(/^C:\\WINDOWS[\\/]System32[\\/]rundll32\.exe$/);
    expect(r.calls[0]!.args).toEqual(["url.dll,FileProtocolHandler", href]);
  });

  it("WSL uses the same Windows opener through interop, and xdg-open when interop is off", async () => {
    const r = await open(HOSTILE, { platform: "linux", wsl: true, fail: (c) => c === "rundll32.exe" });
    const href = expectOneArgument(r.calls, HOSTILE);
    expect(r.calls.map((c) => [c.command, ...c.args])).toEqual([
      ["rundll32.exe", "url.dll,FileProtocolHandler", href],
      ["xdg-open", href],
    ]);
    expect(r.warnings).toEqual([]);
  });
});

describe("every platform", () => {
  it.each([
    { platform: "darwin" as const, argv: (u: string) => ["open", u] },
    { platform: "linux" as const, argv: (u: string) => ["xdg-open", u] },
    { platform: "freebsd" as const, argv: (u: string) => ["xdg-open", u] },
  ])("$platform: the default opener gets the URL as its argument", async ({ platform, argv }) => {
    const r = await open(HOSTILE, { platform });
    const href = expectOneArgument(r.calls, HOSTILE);
    expect(r.calls.map((c) => [c.command, ...c.args])).toEqual([argv(href)]);
  });

  it("POSIX: the user's command is shell syntax, and the URL is \"$1\" to it, never part of the script", async () => {
    const r = await open(HOSTILE, { platform: "linux", command: "firefox --new-window" });
    const href = expectOneArgument(r.calls, HOSTILE);
    expect(r.calls.map((c) => [c.command, ...c.args])).toEqual([["/bin/sh", "-c", 'firefox --new-window "$1"', "sh", href]]);
  });

  it.each(["file:///C:/Windows/System32/calc.exe", "C:\\Windows\\System32\\calc.exe", "javascript:alert(1)", "ms-settings:", "not a url"])(
    "%s is not a web address: nothing is started",
    async (url) => {
      for (const platform of ["win32", "linux", "darwin"] as const) {
        const r = await open(url, { platform });
        expect(r.calls).toEqual([]);
        expect(r.warnings).toEqual([expect.stringMatching(/^not opening ".*" in a browser: not an http\(s\) URL$/)]);
      }
    },
  );

  it("no opener at all: one warning, and the URL stays printed for the user", async () => {
    const r = await open("https://idp.example.invalid/auth", { platform: "linux", fail: () => true });
    expect(r.warnings).toEqual(["could not open a browser; open the URL above yourself"]);
  });

  it("the opener's environment holds none of mcp-auth's secrets", async () => {
    const env = { PATH: "/usr/bin", MCP_AUTH_CLIENT_SECRET: "s3cret-value", MCP_AUTH_ADMIN_PASSWORD: "pw-value" };
    for (const o of [{ platform: "win32" as const }, { platform: "linux" as const, command: "firefox" }]) {
      const r = await open("https://idp.example.invalid/auth", { ...o, env });
      expect(r.calls[0]!.options.env).toEqual({ PATH: "/usr/bin" });
    }
  });
});

describe("splitWindowsCommandLine (the Microsoft C runtime's rules)", () => {
  it.each([
    ["firefox.exe", ["firefox.exe"]],
    ['"C:\\Program Files\\App\\app.exe" --a "b c"', ["C:\\Program Files\\App\\app.exe", "--a", "b c"]],
    ["  a\t b  ", ["a", "b"]],
    ['a\\\\"b c" d', ["a\\b c", "d"]],
    ['a\\"b', ['a"b']],
    ["C:\\dir\\x.exe", ["C:\\dir\\x.exe"]],
    ['"say ""hi"""', ['say "hi"']],
    ['""', [""]],
    ["", []],
  ])("%j", (line, argv) => {
    expect(splitWindowsCommandLine(line)).toEqual(argv);
  });
});
