import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FileError } from "../src/errors.js";
import { applyPlan } from "../src/store/apply.js";
import { backupPath, inProject, sanitize, stamp, type BackupPolicy } from "../src/store/backup.js";
import { actionOf, planFile, planToJson, readForPlan, renderPlan, type FileChange } from "../src/store/plan.js";

/** Plan → apply for every file mcp-auth edits: planning, rendering, and the guarantees of apply. */
let root: string;
let cfgDir: string;
let policy: BackupPolicy;
let clock: number;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "mcp-auth-plan-"));
  cfgDir = join(root, "config", "mcp-auth");
  mkdirSync(cfgDir, { recursive: true, mode: 0o700 });
  clock = Date.UTC(2026, 10, 29, 21, 0, 0);
  policy = { configDir: cfgDir, backupsDir: join(cfgDir, "backups"), now: () => (clock += 1000) };
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

function expectFileError(fn: () => unknown, pattern: RegExp) {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FileError);
  expect((err as FileError).exitCode).toBe(5);
  expect((err as FileError).message).toMatch(pattern);
}

/** Files in a dir other than the ones named, e.g. temp files left behind. */
function leftovers(dir: string, expected: string[]) {
  return readdirSync(dir).filter((n) => !expected.includes(n));
}

describe("planning", () => {
  it.each([
    { name: "absent, written", content: null, transform: () => "new\n", action: "create" },
    { name: "present, changed", content: "old\n", transform: (b: string | null) => b + "more\n", action: "update" },
    { name: "present, same bytes", content: "same\n", transform: (b: string | null) => b, action: "unchanged" },
    { name: "present, removed", content: "old\n", transform: () => null, action: "delete" },
    { name: "absent, removed", content: null, transform: () => null, action: "unchanged" },
  ] as const)("$name → $action", ({ content, transform, action }) => {
    const file = join(root, "f.json");
    if (content !== null) writeFileSync(file, content);
    const c = planFile(file, transform, { description: "test" });
    expect(c.before).toBe(content);
    expect(actionOf(c)).toBe(action);
    expect(readdirSync(root).sort()).toEqual(content === null ? ["config"] : ["config", "f.json"]); // planning writes nothing
  });

  it.each([
    { name: "a directory", make: (f: string) => mkdirSync(f), why: /not a regular file/ },
    { name: "a FIFO (would hang a plain read)", make: (f: string) => execFileSync("mkfifo", [f]), why: /not a regular file/ },
    { name: "a dangling symlink", make: (f: string) => symlinkSync(join(root, "missing"), f), why: /symbolic link to a missing file/ },
    { name: "bytes that are not UTF-8", make: (f: string) => writeFileSync(f, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), why: /not UTF-8/ },
    { name: "a path through a file", make: (f: string) => writeFileSync(f, "x"), sub: "child", why: /cannot read .*ENOTDIR/ },
  ])("refuses $name with exit 5", ({ make, why, sub }) => {
    const file = join(root, "f.json");
    make(file);
    expectFileError(() => planFile(sub ? join(file, sub) : file, () => "x"), why);
  });

  it("follows a symlink to a regular file", () => {
    writeFileSync(join(root, "real.json"), "{}\n");
    symlinkSync(join(root, "real.json"), join(root, "link.json"));
    expect(readForPlan(join(root, "link.json"))).toBe("{}\n");
  });
});

describe("renderPlan (--dry-run)", () => {
  const f = "/home/me/.cursor/mcp.json";
  it.each([
    { name: "create", c: { before: null, after: "a\nb\n" }, has: ["--- /dev/null", `+++ ${f}`, "@@ -0,0 +1,2 @@", "+a", "+b"] },
    { name: "update", c: { before: "a\nb\n", after: "a\nc\n" }, has: [`--- ${f}`, `+++ ${f}`, " a", "-b", "+c"] },
    { name: "delete", c: { before: "a\n", after: null }, has: [`--- ${f}`, "+++ /dev/null", "-a"] },
    { name: "control characters (shown escaped)", c: { before: "", after: "t\x1b]0;pwned\x07\x9b2J\n" }, has: ["+t\\x1b]0;pwned\\x07\\x9b2J"] },
    { name: "a sensitive file (content hidden)", c: { before: "K=old\n", after: "K=new\n", sensitive: true }, has: [`--- ${f}`, "# update: content not shown, it may hold secrets"], hasNot: ["K=old", "K=new"] },
  ])("$name", async ({ c, has, hasNot }) => {
    const out = await renderPlan([{ path: f, description: "d", ...c }]);
    for (const s of has) expect(out.split("\n")).toContain(s);
    for (const s of hasNot ?? []) expect(out).not.toContain(s);
    expect(out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
  });

  it("is empty when nothing changes, and one patch per changed file", async () => {
    expect(await renderPlan([{ path: f, before: "x", after: "x", description: "" }])).toBe("");
    const out = await renderPlan([
      { path: "/a", before: "1\n", after: "2\n", description: "" },
      { path: "/b", before: "1\n", after: "1\n", description: "" },
      { path: "/c", before: null, after: "3\n", description: "" },
    ]);
    expect(out.match(/^\+\+\+ .*$/gm)).toEqual(["+++ /a", "+++ /c"]);
    expect(out.startsWith("--- /a\n")).toBe(true); // no description, no comment line
  });

  it("says why above each patch, in a line patch(1) ignores", async () => {
    const out = await renderPlan([{ path: "/a", before: "1\n", after: "2\n", description: "add server k8s to Cursor" }]);
    expect(out.split("\n").slice(0, 3)).toEqual(["# add server k8s to Cursor", "--- /a", "+++ /a"]);
  });
});

describe("planToJson (--json)", () => {
  it("lists each file with its action and where its backup goes", () => {
    const inCfg = join(cfgDir, "config.json");
    const other = join(root, "home", ".claude.json");
    const changes: FileChange[] = [
      { path: inCfg, before: "{}", after: '{"a":1}', description: "update config" },
      { path: other, before: null, after: "{}", description: "create" },
      { path: other, before: "{}", after: null, description: "delete" },
      { path: other, before: "{}", after: "{}", description: "same" },
    ];
    const rows = planToJson(changes, (p) => backupPath(p, policy));
    expect(rows.map((r) => r.action)).toEqual(["update", "create", "delete", "unchanged"]);
    expect(rows[0]!.backup).toMatch(new RegExp(`^${cfgDir}/config\\.json\\.\\d{8}T\\d{6}\\.\\d{3}Z\\.bak$`));
    expect(rows[1]!.backup).toBeNull();
    expect(rows[2]!.backup).toMatch(new RegExp(`^${cfgDir}/backups/${sanitize(other).replace(/\./g, "\\.")}/\\d{8}T`));
    expect(rows[3]!.backup).toBeNull();
    expect(Object.keys(rows[0]!).sort()).toEqual(["action", "backup", "description", "path"]);
  });

  it("stamps sort in time order and carry no colon", () => {
    expect(stamp(Date.UTC(2026, 0, 2, 3, 4, 5, 6))).toBe("20260102T030405.006Z");
  });
});

describe("applyPlan", () => {
  const apply = (...changes: FileChange[]) => applyPlan(changes, policy);

  it("creates, updates and deletes atomically, leaving no temp file", () => {
    const dir = join(root, "proj");
    mkdirSync(dir);
    const a = join(dir, "a.json");
    const b = join(dir, "b.json");
    const gone = join(dir, "gone.json");
    writeFileSync(b, "old b\n");
    writeFileSync(gone, "bye\n");
    const res = apply(planFile(a, () => "new a\n"), planFile(b, () => "new b\n"), planFile(gone, () => null));
    expect(res.map((r) => r.action)).toEqual(["create", "update", "delete"]);
    expect(readFileSync(a, "utf8")).toBe("new a\n");
    expect(readFileSync(b, "utf8")).toBe("new b\n");
    expect(existsSync(gone)).toBe(false);
    expect(leftovers(dir, ["a.json", "b.json"])).toEqual([]);
    expect(statSync(a).mode & 0o777).toBe(0o600);
  });

  it("keeps the mode of an existing file, and uses the planned mode when one is given", () => {
    const f = join(root, "shared.json");
    writeFileSync(f, "1");
    chmodSync(f, 0o640);
    apply(planFile(f, () => "2"));
    expect(statSync(f).mode & 0o777).toBe(0o640);
    apply(planFile(f, () => "3", { mode: 0o600 }));
    expect(statSync(f).mode & 0o777).toBe(0o600);
  });

  it("keeps the owner of a file another user owns (as root)", () => {
    const f = join(cfgDir, "owned.json");
    writeFileSync(f, "1");
    chownSync(f, 65534, 65534);
    const [r] = apply(planFile(f, () => "2"));
    expect(statSync(f)).toMatchObject({ uid: 65534, gid: 65534 });
    expect(statSync(r!.backup!)).toMatchObject({ uid: 65534, gid: 65534 }); // next to it: the same owner
  });

  it("refuses, as a normal user, a file another user owns (a rename would take it over)", () => {
    const f = join(root, "theirs.json");
    writeFileSync(f, "1");
    const uid = process.getuid!();
    vi.spyOn(process, "getuid").mockReturnValue(uid === 0 ? 4242 : uid + 1);
    expectFileError(() => apply(planFile(f, () => "2")), /belongs to another user/);
    expect(readFileSync(f, "utf8")).toBe("1");
  });

  it("refuses a plan that changes one file twice, before writing anything", () => {
    const f = join(root, "f.json");
    writeFileSync(f, "1");
    expect(() => apply(planFile(f, () => "2"), planFile(f, () => "3"))).toThrow(/changes .*f\.json twice/);
    expect(readFileSync(f, "utf8")).toBe("1");
  });

  it("writes through a symlinked file: the link stays a link", () => {
    const real = join(root, "dotfiles", "claude.json");
    mkdirSync(join(root, "dotfiles"));
    writeFileSync(real, "1");
    const link = join(root, "claude.json");
    symlinkSync(real, link);
    apply(planFile(link, () => "2"));
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, "utf8")).toBe("2");
  });

  describe("a file changed since it was planned", () => {
    it("is refused with exit 5 and nothing is written (several files: all checked first)", () => {
      const a = join(root, "a.json");
      const b = join(root, "b.json");
      writeFileSync(a, "a1");
      writeFileSync(b, "b1");
      const c = join(root, "c.json");
      const plan = [planFile(a, () => "a2"), planFile(b, () => "b2"), planFile(c, () => "c2")];
      writeFileSync(b, "b1 edited by someone else");
      writeFileSync(c, "c created by someone else");
      expectFileError(() => applyPlan(plan, policy), /b\.json, .*c\.json changed since mcp-auth read them; nothing was written/);
      expect(readFileSync(a, "utf8")).toBe("a1");
      expect(readFileSync(b, "utf8")).toBe("b1 edited by someone else");
      expect(readFileSync(c, "utf8")).toBe("c created by someone else");
      expect(leftovers(root, ["a.json", "b.json", "c.json", "config"])).toEqual([]);
    });

    it("is refused when it changes between the first check and the rename", () => {
      const f = join(cfgDir, "config.json");
      writeFileSync(f, "1");
      const plan = planFile(f, () => "2");
      // The backup is taken between the checks; its clock read is our hook to change the file then.
      expectFileError(() => applyPlan([plan], { ...policy, now: () => (writeFileSync(f, "edited"), clock) }), /changed since/);
      expect(readFileSync(f, "utf8")).toBe("edited");
      expect(readdirSync(cfgDir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    });

    it("is refused when a planned new file appeared meanwhile", () => {
      const f = join(root, "new.json");
      const plan = planFile(f, () => "mine");
      writeFileSync(f, "theirs");
      expectFileError(() => apply(plan), /changed since/);
      expect(readFileSync(f, "utf8")).toBe("theirs");
    });
  });

  describe("backups", () => {
    const backupsOf = (file: string) => join(cfgDir, "backups", sanitize(file));

    it("in mcp-auth's config dir: next to the file, with its mode and previous content", () => {
      const f = join(cfgDir, "config.json");
      writeFileSync(f, "v1");
      chmodSync(f, 0o640);
      const [r] = apply(planFile(f, () => "v2"));
      expect(r!.backup).toMatch(new RegExp(`^${cfgDir}/config\\.json\\.\\d{8}T\\d{6}\\.\\d{3}Z\\.bak$`));
      expect(readFileSync(r!.backup!, "utf8")).toBe("v1");
      expect(statSync(r!.backup!).mode & 0o777).toBe(0o640);
      expect(existsSync(join(cfgDir, "backups"))).toBe(false);
    });

    it.each([
      { name: "a git work tree", setup: (d: string) => execFileSync("git", ["init", "-q", d]), file: "sub/mcp.json" },
      { name: "a git worktree or submodule (.git is a file)", setup: (d: string) => writeFileSync(join(d, ".git"), "gitdir: /elsewhere\n"), file: "mcp.json" },
      { name: "a .vscode folder", setup: () => {}, file: ".vscode/mcp.json" },
      { name: "another program's folder", setup: () => {}, file: ".cursor/mcp.json" },
    ])("inside $name: in mcp-auth's backups dir, never next to the file", ({ setup, file }) => {
      const proj = join(root, "proj");
      mkdirSync(proj);
      setup(proj);
      const f = join(proj, file);
      mkdirSync(join(f, ".."), { recursive: true });
      writeFileSync(f, "v1");
      chmodSync(f, 0o644);
      const [r] = apply(planFile(f, () => "v2"));
      expect(r!.backup!.startsWith(backupsOf(f) + "/")).toBe(true);
      expect(readFileSync(r!.backup!, "utf8")).toBe("v1");
      expect(statSync(r!.backup!).mode & 0o777).toBe(0o644);
      expect(leftovers(join(f, ".."), ["mcp.json", ".git", "sub"])).toEqual([]);
      expect(readFileSync(join(cfgDir, "backups", ".gitignore"), "utf8")).toMatch(/^\*$/m);
    });

    it("even mcp-auth's own files go to the backups dir when the config dir is inside a git work tree", () => {
      execFileSync("git", ["init", "-q", join(root, "config")]);
      const f = join(cfgDir, "config.json");
      writeFileSync(f, "v1");
      expect(inProject(f)).toBe(true);
      const [r] = apply(planFile(f, () => "v2"));
      expect(r!.backup!.startsWith(backupsOf(f) + "/")).toBe(true);
    });

    it.each([
      { name: "next to the file", dir: () => cfgDir, count: (f: string) => readdirSync(cfgDir).filter((n) => n.startsWith("config.json.") && n.endsWith(".bak")) },
      { name: "in the backups dir", dir: () => join(root, ".vscode"), count: (f: string) => readdirSync(backupsOf(f)) },
    ])("are pruned to the last 5 per file ($name)", ({ dir, count }) => {
      mkdirSync(dir(), { recursive: true });
      const f = join(dir(), "config.json");
      writeFileSync(f, "v0");
      for (let i = 1; i <= 8; i++) apply(planFile(f, () => `v${i}`));
      const kept = count(f).sort();
      expect(kept).toHaveLength(5);
      const base = dir() === cfgDir ? cfgDir : backupsOf(f);
      expect(kept.map((n) => readFileSync(join(base, n), "utf8"))).toEqual(["v3", "v4", "v5", "v6", "v7"]);
    });

    it.each([
      { name: "next to the file", file: () => join(cfgDir, "config.json") },
      { name: "in the backups dir", file: () => join(root, ".vscode", "mcp.json") },
    ])("never follow a symlink planted at the backup path ($name)", ({ file }) => {
      const f = file();
      mkdirSync(join(f, ".."), { recursive: true });
      writeFileSync(f, "previous");
      const victim = join(root, "victim");
      writeFileSync(victim, "precious");
      const at = clock + 1000; // the next clock reading is the backup's stamp
      const planted = backupPath(f, { ...policy, now: () => at });
      mkdirSync(join(planted, ".."), { recursive: true });
      symlinkSync(victim, planted);
      const [r] = apply(planFile(f, () => "next"));
      expect(readFileSync(victim, "utf8")).toBe("precious");
      expect(readlinkSync(planted)).toBe(victim);
      expect(lstatSync(r!.backup!).isFile()).toBe(true);
      expect(readFileSync(r!.backup!, "utf8")).toBe("previous");
      expect(readFileSync(f, "utf8")).toBe("next");
    });

    it("refuse a backups folder that is a symlink planted by someone else", () => {
      const f = join(root, ".vscode", "mcp.json");
      mkdirSync(join(f, ".."));
      writeFileSync(f, "v1");
      const elsewhere = join(root, "elsewhere");
      mkdirSync(elsewhere);
      mkdirSync(join(cfgDir, "backups"), { mode: 0o700 });
      symlinkSync(elsewhere, backupsOf(f));
      expectFileError(() => apply(planFile(f, () => "v2")), /refusing to keep backups in .*not a directory/);
      expect(readFileSync(f, "utf8")).toBe("v1");
      expect(readdirSync(elsewhere)).toEqual([]);
    });
  });
});
