import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { expireTokens, useSandbox } from "./helpers/sandbox.js";
import { BIN, runProcess, user, type RunResult, type Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";

/**
 * Files and directories mcp-auth trusts. We run as root, which ignores mode bits, so "another
 * account" is uid 65534 (chown), and a read-only config dir is a read-only bind mount in a private
 * mount namespace (unshare -m) around the CLI process. The checks run in-process (inProcessUser goes
 * the launcher's way: both fast paths, then the full CLI); another uid (setpriv) and the read-only
 * mount (unshare) need the real process.
 */
const sb = useSandbox();
let u: Sandboxed;
afterEach(() => u?.cleanup());

const OTHER = 65534;

async function addM2m(s: Sandboxed, name = "m2m") {
  const r = await s.run(["profiles", "add", name, "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-stdin", "--resource", sb.mcpUrl], { input: "sandbox-secret\n" });
  expect(r.code, r.stderr).toBe(0);
}

/** One line on stderr, exit 5. ("--timeout 30" below only makes the fast path hand over to the full CLI.) */
function refused(r: RunResult, why: RegExp) {
  expect(r.code, r.stderr).toBe(5);
  expect(r.stdout).toBe("");
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr).toMatch(why);
}

function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => join(e.parentPath ?? e.path, e.name)).sort();
}

describe("a config dir that is not private is refused (exit 5, with the fix)", () => {
  it("a pre-existing 0777 config dir", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    mkdirSync(u.configDir, { recursive: true });
    chmodSync(u.configDir, 0o777);
    const add = await u.run(["profiles", "add", "m2m", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-stdin"], { input: "sandbox-secret\n" });
    refused(add, new RegExp(`refusing to use ${u.configDir}: it is writable by group and others \\(mode 0777\\).*chmod 700 ${u.configDir}`));
    expect(readdirSync(u.configDir)).toEqual([]);
    // and a cached token in such a dir is not served either
    chmodSync(u.configDir, 0o700);
    await addM2m(u);
    expect((await u.run(["token"])).code).toBe(0);
    chmodSync(u.configDir, 0o770);
    refused(await u.run(["token"]), /refusing to use .*: it is writable by group \(mode 0770\).*chmod 700/);
    refused(await u.run(["token", "--timeout", "30"]), /writable by group/);
  });

  it("as an ordinary user (uid 65534, for whom modes count): a private dir works, a shared one is refused", async () => {
    u = user();
    chownSync(u.home, OTHER, OTHER);
    const asOther = (args: string[]) =>
      runProcess("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, BIN, ...args], u.env);
    const add = ["profiles", "add", "x", "--issuer", "https://idp.invalid", "--client-id", "c", "--grant", "authorization_code"];
    expect((await asOther(add)).code).toBe(0);
    expect(statSync(u.configDir).uid).toBe(OTHER);
    chmodSync(u.configDir, 0o777);
    refused(await asOther([...add, "--force"]), new RegExp(`refusing to use ${u.configDir}: it is writable by group and others.*chmod 700`));
    refused(await asOther(["profiles", "list"]), /writable by group and others/);
  });

  it("tokens/ owned by another uid", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    expect((await u.run(["token"])).code).toBe(0);
    chownSync(join(u.configDir, "tokens"), OTHER, OTHER);
    for (const args of [["token"], ["token", "--timeout", "30"], ["token", "--force-refresh"]]) {
      refused(await u.run(args), new RegExp(`refusing to use ${join(u.configDir, "tokens")}: it is owned by uid ${OTHER}, not by you \\(uid 0\\).*chown`));
    }
  });

  it("a token file planted by another uid is not served, on the fast path or the full CLI", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    expect((await u.run(["token"])).code).toBe(0);
    const file = join(u.configDir, "tokens", "p-m2m.json");
    const rec = JSON.parse(readFileSync(file, "utf8"));
    // a well-formed record for this very target, only written by someone else
    writeFileSync(file, JSON.stringify({ ...rec, access_token: "planted-token", expires_at: Math.floor(Date.now() / 1000) + 86_400 }));
    chownSync(file, OTHER, OTHER);
    for (const args of [["token"], ["token", "--timeout", "30"], ["token", "--format", "json"]]) {
      const r = await u.run(args);
      refused(r, new RegExp(`refusing to use ${file}: it is owned by uid ${OTHER}`));
      expect(r.stdout + r.stderr).not.toContain("planted-token");
    }
    // ours but writable by others: same
    chownSync(file, 0, 0);
    chmodSync(file, 0o666);
    refused(await u.run(["token"]), /writable by group and others \(mode 0666\).*chmod 600/);
  });

  it("a symlink in place of a token file is not followed", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    expect((await u.run(["token"])).code).toBe(0);
    const file = join(u.configDir, "tokens", "p-m2m.json");
    const elsewhere = join(u.home, "elsewhere.json");
    const rec = JSON.parse(readFileSync(file, "utf8"));
    writeFileSync(elsewhere, JSON.stringify({ ...rec, access_token: "planted-token" }), { mode: 0o600 });
    const { rmSync } = await import("node:fs");
    rmSync(file);
    symlinkSync(elsewhere, file);
    for (const args of [["token"], ["token", "--timeout", "30"]]) {
      const r = await u.run(args);
      refused(r, /it is a symlink/);
      expect(r.stdout).not.toContain("planted-token");
    }
  });

  it("config.json and secrets.json owned by another uid are not trusted", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    expect((await u.run(["token"])).code).toBe(0);
    expireTokens(u);
    chownSync(join(u.configDir, "secrets.json"), OTHER, OTHER);
    refused(await u.run(["token"]), new RegExp(`refusing to use ${join(u.configDir, "secrets.json")}: it is owned by uid ${OTHER}`));
    chownSync(join(u.configDir, "secrets.json"), 0, 0);
    chmodSync(join(u.configDir, "config.json"), 0o622);
    refused(await u.run(["token"]), new RegExp(`refusing to use ${join(u.configDir, "config.json")}: it is writable by group and others.*chmod 600`));
    refused(await u.run(["profiles", "list"]), /config\.json: it is writable/);
  });

  it("a symlink planted at config.json.bak is replaced, and the file it points to stays untouched", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const victim = join(u.home, "unrelated.txt");
    writeFileSync(victim, "precious\n", { mode: 0o644 });
    mkdirSync(u.configDir, { recursive: true, mode: 0o700 });
    symlinkSync(victim, join(u.configDir, "config.json.bak"));
    await addM2m(u, "one");
    await addM2m(u, "two");
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    // Backups are stamped (config.json.<time>.bak): the planted name is left alone, never written through.
    const baks = readdirSync(u.configDir).filter((f) => /^config\.json\..+\.bak$/.test(f));
    expect(baks).toHaveLength(1);
    const bak = join(u.configDir, baks[0]!);
    expect(JSON.parse(readFileSync(bak, "utf8")).profiles).toHaveProperty("one");
    expect(statSync(bak).mode & 0o777).toBe(0o600);
  });
});

describe("profile names in a hand-written config.json", () => {
  const bad = ["../../x", "../../../../tmp/mcp-auth-planted", "__proto__", "a/b", ".hidden", "a".repeat(65)];
  const profile = (issuer: string) => ({ provider: "oidc", issuer, clientId: "sandbox-m2m", grant: "client_credentials", secretStore: "file" });

  it.each(bad)("%j → exit 5 naming it, nothing written anywhere", async (name) => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    mkdirSync(u.configDir, { recursive: true, mode: 0o700 });
    // JSON text, so that "__proto__" really is a key of the file
    writeFileSync(join(u.configDir, "config.json"), `{"version":1,"defaultProfile":${JSON.stringify(name)},"profiles":{${JSON.stringify(name)}:${JSON.stringify(profile(sb.issuer))}}}`, { mode: 0o600 });
    const before = listTree(u.home);
    for (const args of [["token"], ["token", "--profile", name], ["profiles", "remove", name], ["logout", "--all"], ["status"]]) {
      const r = await u.run(args);
      refused(r, new RegExp(`config\\.json: invalid profile name ${JSON.stringify(name).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
    }
    expect(listTree(u.home)).toEqual(before);
    expect(existsSync("/tmp/mcp-auth-planted.json")).toBe(false);
  });

  it("constructor, toString are ordinary profile names; __proto__ is no profile", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    for (const name of ["constructor", "toString", "hasOwnProperty"]) {
      const r = await u.run(["profiles", "add", name, "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-stdin", "--resource", sb.mcpUrl], { input: "sandbox-secret\n" });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`Saved profile "${name}"`);
      const t = await u.run(["token", "--profile", name]);
      expect(t.code, t.stderr).toBe(0);
    }
    const again = await u.run(["profiles", "add", "constructor", "--issuer", sb.issuer, "--client-id", "x", "--client-secret-stdin"], { input: "s\n" });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/profile "constructor" already exists/);
    for (const name of ["__proto__", "valueOf"]) {
      const r = await u.run(["token", "--profile", name]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`no profile named "${name}"`));
    }
    const rm = await u.run(["profiles", "remove", "toString"]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(existsSync(join(u.configDir, "tokens", "p-toString.json"))).toBe(false);
  });
});

describe("a config dir that cannot be written", () => {
  /** Runs the CLI with the config dir mounted read-only in a private mount namespace. */
  function runReadOnly(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const script = `mount --bind -o ro "$DIR" "$DIR" && exec "$NODE" "$BIN" "$@"`;
    return runProcess("unshare", ["-m", "sh", "-c", script, "sh", ...args], { ...u.env, ...env, DIR: u.configDir, NODE: process.execPath, BIN });
  }

  it("a valid cached token is still served (fast path and full CLI); a new client-credentials token is returned uncached, with a warning; writes that cannot be skipped exit 5", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    const token = (await u.run(["token"])).stdout;
    expect(token).toMatch(/^\S+\n$/);
    for (const args of [["token"], ["token", "--timeout", "30"], ["token", "--format", "json"]]) {
      const r = await runReadOnly(args);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(token.trim());
    }
    expireTokens(u);
    const r = await runReadOnly(["token"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^eyJ\S+\n$/);
    expect(r.stdout).not.toBe(token);
    expect(r.stderr).toMatch(new RegExp(`^warning: cannot write in ${u.configDir}/(locks|tokens): the file system is read-only.*; getting a token without caching it\n$`));
    // Profile-less CI calls work the same way.
    const rt = await runReadOnly(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m"], { MCP_AUTH_CLIENT_SECRET: "sandbox-secret" });
    expect(rt.code, rt.stderr).toBe(0);
    const add = await runReadOnly(["profiles", "add", "other", "--issuer", sb.issuer, "--client-id", "c", "--grant", "authorization_code"]);
    refused(add, /cannot write in .*: the file system is read-only/);
  });
});
