import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseSecretCommand, runSecretCommand } from "../src/core/secret-command.js";
import { tryFreshToken } from "../src/fast-fetch.js";
import { scrubSecrets } from "../src/io/sanitize.js";
import { commandSourceProblem } from "../src/store/trust.js";
import { ROOT, user } from "./helpers/cli.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * `--client-secret-cmd`: the client secret comes from a secret manager's CLI at each token request
 * (src/core/secret-command.ts). A real helper process (test/fixtures/secret-command/helper.mjs) stands
 * in for op / vault / bw / aws; the IdP is the real sandbox (oidc-provider).
 */
const HELPER = join(ROOT, "test", "fixtures", "secret-command", "helper.mjs");
const NODE = process.execPath;
/** What the helper prints by default (it gets no secret from mcp-auth: variables holding a known secret are kept from commands). */
const SECRET = "helper-s3cret-0f9e";
const sb = useSandbox({ clientSecret: SECRET });
let t: TestContext | undefined;
afterEach(() => t?.cleanup());

describe("parsing a command into an argument vector (no shell)", () => {
  it.each<[string, string[]]>([
    ["op read op://vault/ci/secret", ["op", "read", "op://vault/ci/secret"]],
    ["op read --no-newline 'op://Private/MCP CI/credential'", ["op", "read", "--no-newline", "op://Private/MCP CI/credential"]],
    ["vault kv get -mount=secret -field=client_secret mcp/ci", ["vault", "kv", "get", "-mount=secret", "-field=client_secret", "mcp/ci"]],
    ["bw get password 'MCP CI client'", ["bw", "get", "password", "MCP CI client"]],
    ["aws secretsmanager get-secret-value --secret-id mcp/ci --query SecretString --output text", ["aws", "secretsmanager", "get-secret-value", "--secret-id", "mcp/ci", "--query", "SecretString", "--output", "text"]],
    ["  a   b\tc  ", ["a", "b", "c"]],
    [`"a b" 'c d' e\\ f`, ["a b", "c d", "e f"]],
    [`'$HOME' "\\$x" 'it''s'`, ["$HOME", "$x", "its"]],
    [`say "a \\"quoted\\" word"`, ["say", 'a "quoted" word']],
    [`x ''`, ["x", ""]],
  ])("%s", (text, argv) => {
    expect(parseSecretCommand(text)).toEqual(argv);
  });

  it.each<[string, RegExp]>([
    ["op read op://v/i/s | head -1", /"\|" needs a shell/],
    ["vault kv get x; rm -rf ~", /";" needs a shell/],
    ["get && other", /"&" needs a shell/],
    ["get > /tmp/out", /">" needs a shell/],
    ["echo $SECRET", /"\$" needs a shell/],
    ['echo "$SECRET"', /"\$" needs a shell/],
    ["echo `id`", /"`" needs a shell/],
    ["echo $(id)", /"\$" needs a shell/],
    ["a\nb", /a line break needs a shell/],
    ["'unterminated", /unterminated ' quote/],
    ['"unterminated', /unterminated " quote/],
    ["trailing\\", /trailing backslash/],
    ["", /needs a command/],
    ["   ", /needs a command/],
    ["'' arg", /needs a command/],
  ])("refuses %j", (text, message) => {
    expect(() => parseSecretCommand(text)).toThrow(message);
  });
});

describe("where a stored command may run from (src/store/trust.ts)", () => {
  /** A config dir and config.json with these modes; `link` makes config.json a symlink to a file with that mode elsewhere. */
  function layout(dirMode: number, fileMode: number | null, link = false) {
    const root = mkdtempSync(join(tmpdir(), "mcp-auth-trust-"));
    const dir = join(root, "config");
    mkdirSync(dir, { mode: 0o700 });
    const file = join(dir, "config.json");
    if (fileMode !== null) {
      const real = link ? join(root, "dotfiles-config.json") : file;
      writeFileSync(real, "{}");
      chmodSync(real, fileMode);
      if (link) symlinkSync(real, file);
    }
    chmodSync(dir, dirMode);
    return { dir, file, done: () => rmSync(root, { recursive: true, force: true }) };
  }
  it.each<[string, number, number | null, boolean, RegExp | undefined]>([
    ["0700 dir, 0600 file (as mcp-auth makes them)", 0o700, 0o600, false, undefined],
    ["0700 dir, no config.json yet", 0o700, null, false, undefined],
    ["a symlinked config.json pointing at a 0600 file", 0o700, 0o600, true, undefined],
    ["a dir open to group (0750)", 0o750, 0o600, false, /config it is open to group \(mode 0750\)/],
    ["a dir open to others (0705)", 0o705, 0o600, false, /config it is open to others \(mode 0705\)/],
    ["a cloned repository's dir (0755)", 0o755, 0o644, false, /config it is open to group and others \(mode 0755\)/],
    ["a file readable by group (0640)", 0o700, 0o640, false, /config\.json it is open to group \(mode 0640\)/],
    ["a symlinked config.json pointing at a 0644 file", 0o700, 0o644, true, /config\.json it is open to group and others \(mode 0644\)/],
  ])("%s", (_, dirMode, fileMode, link, refused) => {
    const l = layout(dirMode, fileMode, link);
    try {
      const p = commandSourceProblem(l.dir, l.file);
      if (!refused) expect(p).toBeUndefined();
      else expect(`${p?.path} ${p?.why}`).toMatch(refused);
    } finally {
      l.done();
    }
  });
});

describe("running a secret command", () => {
  const run = (args: string[], o: { timeoutMs?: number; maxBytes?: number; env?: NodeJS.ProcessEnv } = {}) =>
    runSecretCommand([NODE, HELPER, ...args], { env: { PATH: process.env.PATH, ...o.env }, owner: 'profile "ci"', timeoutMs: o.timeoutMs, maxBytes: o.maxBytes });

  it.each<[string, string[], string]>([
    ["success (a trailing newline)", ["ok"], SECRET],
    ["a CRLF line end", ["crlf"], SECRET],
    ["blanks and blank lines around it", ["padded"], SECRET],
    ["no newline at all", ["bare"], SECRET],
    ["an argument a shell would have expanded, passed as it is", ["arg", "$(touch /tmp/pwned) `id` $HOME"], "$(touch /tmp/pwned) `id` $HOME"],
  ])("%s", async (_, args, expected) => {
    expect(await run(args)).toBe(expected);
  });

  it.each<[string, string[], { timeoutMs?: number; maxBytes?: number }, RegExp]>([
    ["a non-zero exit, with its first line of stderr", ["fail"], {}, /exited with status 2: \[ERROR\] permission denied reading \[redacted\] at secret\/data\/ci$/],
    ["a timeout", ["hang"], { timeoutMs: 400 }, /did not finish within 0\.4s/],
    ["empty output", ["empty"], {}, /printed nothing/],
    ["oversized output", ["big"], { maxBytes: 64 * 1024 }, /printed more than 64 KiB/],
    ["more than one line (a table, not a field)", ["table"], {}, /printed more than one line/],
    ["killed by a signal", ["killed"], {}, /was killed by SIGTERM/],
    ["a NUL with the value", ["nul"], {}, /printed control characters/],
    ["a colour code around the value", ["color"], {}, /printed control characters/],
    ["bytes that are not UTF-8", ["latin1"], {}, /printed bytes that are not UTF-8 text/],
  ])("%s fails with exit 4 and never shows the secret", async (_, args, o, message) => {
    const e = (await run(args, o).catch((x: unknown) => x)) as Error & { exitCode: number; hint?: string };
    expect(e).toBeInstanceOf(Error);
    expect(e.exitCode).toBe(4);
    expect(e.message).toMatch(/^the client secret command of profile "ci" \(.*helper\.mjs .*\) /);
    expect(e.message).toMatch(message);
    expect(scrubSecrets(e.message)).not.toContain(SECRET);
    expect(e.message.split("\n")).toHaveLength(1);
    expect(e.hint).toBeTruthy();
  });

  it("a command that exited leaving a helper that holds its stdout (op's daemon, lpass's agent) is done when it exits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-auth-daemon-"));
    const pidFile = join(dir, "pid");
    try {
      expect(await run(["daemon"], { timeoutMs: 15_000, env: { HELPER_DAEMON_PID: pidFile } })).toBe(SECRET);
    } finally {
      if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it.each([
    ["a name not on PATH", ["mcp-auth-no-such-secret-cli", "read", "x"]],
    ["a path that does not exist", ["/nonexistent/bin/op", "read", "x"]],
  ])("a missing executable (%s) says so", async (_, argv) => {
    const e = (await runSecretCommand(argv, { env: { PATH: process.env.PATH }, owner: 'profile "ci"' }).catch((x: unknown) => x)) as Error & { exitCode: number; hint?: string };
    expect(e.exitCode).toBe(4);
    expect(e.message).toMatch(/could not start: .* was not found$/);
    expect(e.hint).toMatch(/install it, or give its full path/);
  });

  it("gets the environment without mcp-auth's own secrets (a secret manager's variables pass)", async () => {
    expect(await run(["env"], { env: { MCP_AUTH_CLIENT_SECRET: "not-for-children", VAULT_ADDR: "https://vault.example.invalid" } })).toBe("absent:https://vault.example.invalid");
  });
});

describe("profiles with --client-secret-cmd, against the real IdP", () => {
  const cmd = (mode = "ok") => `${NODE} ${HELPER} ${mode}`;
  const make = (env: NodeJS.ProcessEnv = {}) => (t = createTestContext({ now: Date.now(), env: { PATH: process.env.PATH, ...env } }));
  const add = (c: TestContext, extra: string[]) => c.run(["profiles", "add", "ci", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--resource", sb.mcpUrl, ...extra]);
  const allFiles = (dir: string) =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => readFileSync(join(d.parentPath, d.name), "utf8"))
      .join("\n");
  const config = (c: TestContext) => JSON.parse(readFileSync(join(c.configDir, "config.json"), "utf8"));

  it("stores the command, not the secret, runs it for each token request, and never writes what it printed", async () => {
    const c = make();
    c.env.HELPER_MARK = join(c.configDir, "..", "runs.txt");
    expect(await add(c, ["--client-secret-cmd", cmd()]), c.stderr()).toBe(0);
    expect(c.stderr()).toContain('Saved profile "ci" (client_credentials, client secret from its command at each token request)');
    expect(config(c).profiles.ci.clientSecretCommand).toEqual([NODE, HELPER, "ok"]);
    expect(config(c).profiles.ci.secretStore).toBeUndefined();
    sb.resetCounts();
    expect(await c.run(["token", "--profile", "ci", "--no-cache"]), c.stderr()).toBe(0);
    expect(c.stdout()).toMatch(/^eyJ/);
    expect(sb.grants.client_credentials).toBe(1);
    expect(await c.run(["token", "--profile", "ci"])).toBe(0);
    // Run once to check it at `profiles add`, once per token request; the cached token needed none.
    expect(readFileSync(c.env.HELPER_MARK!, "utf8")).toBe("ok\nok\nok\n");
    expect(allFiles(c.configDir)).not.toContain(SECRET);
    expect(existsSync(join(c.configDir, "secrets.json"))).toBe(false);
    expect(await c.run(["profiles", "show", "ci"])).toBe(0);
    expect(c.stdout()).toContain(`clientSecret: from command: ${NODE} ${HELPER} ok`);
    expect(await c.run(["status", "ci"])).toBe(0);
    expect(c.stdout()).toContain("client secret: from its command at each token request");
  });

  it("a command that fails at `profiles add` saves nothing (exit 4)", async () => {
    const c = make();
    expect(await add(c, ["--client-secret-cmd", cmd("fail")])).toBe(4);
    expect(c.stderr()).toMatch(/error: the client secret command of profile "ci" .* exited with status 2: \[ERROR\] permission denied reading \[redacted\]/);
    expect(c.stderr()).not.toContain(SECRET);
    expect(existsSync(join(c.configDir, "config.json"))).toBe(false);
  });

  it.each([
    [["--client-secret-cmd", "op read x | head"], /"\|" needs a shell/],
    [["--client-secret-cmd", "x", "--client-secret-env", "S"], /pass only one of --client-secret-cmd/],
    [["--client-secret-cmd", "x", "--client-auth", "private-key-jwt", "--generate-key"], /replaces the client secret/],
  ])("usage errors (exit 2): %j", async (extra, message) => {
    const c = make({ S: "x" });
    expect(await add(c, extra)).toBe(2);
    expect(c.stderr()).toMatch(message);
  });

  it("a config dir open to others is refused before the command is stored, and a stored command is not run from a config.json open to others", async () => {
    const c = make();
    c.env.HELPER_MARK = join(c.configDir, "..", "runs.txt");
    expect(await c.run(["profiles", "add", "other", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code"])).toBe(0);
    chmodSync(c.configDir, 0o755); // as a cloned repository checks a directory out
    expect(await add(c, ["--client-secret-cmd", cmd()])).toBe(5);
    expect(c.stderr()).toContain(`error: refusing to store the client secret command of profile "ci": ${c.configDir} it is open to group and others (mode 0755)`);
    expect(c.stderr()).toContain(`a command in a config file runs as you`);
    expect(c.stderr()).toContain(`chmod 700 ${c.configDir}`);
    expect(existsSync(c.env.HELPER_MARK)).toBe(false);

    chmodSync(c.configDir, 0o700);
    expect(await add(c, ["--client-secret-cmd", cmd()])).toBe(0);
    chmodSync(join(c.configDir, "config.json"), 0o644);
    const runsBefore = readFileSync(c.env.HELPER_MARK, "utf8");
    expect(await c.run(["token", "--profile", "ci", "--no-cache"])).toBe(5);
    expect(c.stderr()).toContain(`error: refusing to run the client secret command of profile "ci": ${join(c.configDir, "config.json")} it is open to group and others (mode 0644)`);
    expect(readFileSync(c.env.HELPER_MARK, "utf8")).toBe(runsBefore);
  });

  it("profiles set switches between a stored secret and a command, leaving nothing of the other behind", async () => {
    const c = make({ S: SECRET });
    expect(await add(c, ["--client-secret-env", "S"])).toBe(0);
    expect(JSON.parse(readFileSync(join(c.configDir, "secrets.json"), "utf8")).secrets["client-secret:ci"]).toBe(SECRET);
    expect(await c.run(["profiles", "set", "ci", "--client-secret-cmd", cmd()]), c.stderr()).toBe(0);
    expect(config(c).profiles.ci).toMatchObject({ clientSecretCommand: [NODE, HELPER, "ok"] });
    expect(config(c).profiles.ci.secretStore).toBeUndefined();
    expect(JSON.parse(readFileSync(join(c.configDir, "secrets.json"), "utf8")).secrets["client-secret:ci"]).toBeUndefined();
    // Other edits keep the command.
    expect(await c.run(["profiles", "set", "ci", "--scope", "mcp:read"])).toBe(0);
    expect(config(c).profiles.ci.clientSecretCommand).toEqual([NODE, HELPER, "ok"]);
    expect(await c.run(["token", "--profile", "ci", "--no-cache"]), c.stderr()).toBe(0);
    expect(await c.run(["profiles", "set", "ci", "--client-secret-env", "S"])).toBe(0);
    expect(config(c).profiles.ci.clientSecretCommand).toBeUndefined();
    expect(config(c).profiles.ci.secretStore).toBe("file");
  });

  it("an unparsable stored command (not a list of strings) is refused with the file left untouched (exit 5)", async () => {
    const c = make();
    expect(await add(c, ["--client-secret-cmd", cmd()])).toBe(0);
    const file = join(c.configDir, "config.json");
    const text = readFileSync(file, "utf8").replace(/"clientSecretCommand": \[[^\]]*\]/, '"clientSecretCommand": "op read x"');
    (await import("node:fs")).writeFileSync(file, text, { mode: 0o600 });
    expect(await c.run(["token", "--profile", "ci"])).toBe(5);
    expect(c.stderr()).toMatch(/"clientSecretCommand" must be a non-empty list of strings/);
    expect(readFileSync(file, "utf8")).toBe(text);
  });

  it("the fresh-token fast path steps aside for a command profile (no request without the secret), and the full CLI gets the token", async () => {
    const c = make();
    expect(await add(c, ["--client-secret-cmd", cmd()])).toBe(0);
    expect(await c.run(["token", "--profile", "ci"]), c.stderr()).toBe(0); // discovery now cached for the fast path
    // The cached token made to look expired: the fast path would have to ask the IdP.
    const rec = join(c.configDir, "tokens", "p-ci.json");
    const expired = { ...JSON.parse(readFileSync(rec, "utf8")), expires_at: Math.floor(Date.now() / 1000) - 1 };
    (await import("node:fs")).writeFileSync(rec, JSON.stringify(expired), { mode: 0o600 });
    sb.resetCounts();
    let out = "";
    const served = await tryFreshToken(["token", "--profile", "ci"], c.env, { out: (s) => void (out += s) });
    expect(served).toBe(false);
    expect(out).toBe("");
    expect(sb.counts.total).toBe(0);
    expect(await c.run(["token", "--profile", "ci"]), c.stderr()).toBe(0);
    expect(sb.grants.client_credentials).toBe(1);
  });

  it("profile-less: token --issuer … --client-secret-cmd gets a token; a cached one is served only to a command that printed the same secret", async () => {
    const c = make();
    c.env.HELPER_MARK = join(c.configDir, "..", "runs.txt");
    const token = (mode: string) => c.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--resource", sb.mcpUrl, "--client-secret-cmd", cmd(mode)]);
    sb.resetCounts();
    expect(await token("ok"), c.stderr()).toBe(0);
    expect(c.stdout()).toMatch(/^eyJ/);
    expect(await token("ok")).toBe(0); // from the cache: the IdP is not asked again
    expect(sb.grants.client_credentials).toBe(1);
    expect(readFileSync(c.env.HELPER_MARK, "utf8")).toBe("ok\nok\n");
    // Another secret for the same client: not the cached token; the IdP is asked and refuses it.
    expect(await token("other")).toBe(4);
    expect(sb.grants.client_credentials).toBe(2);
    expect(allFiles(c.configDir)).not.toContain(SECRET);
  });

  it.each([
    [["token", "--client-secret-cmd", "x"], /--client-secret-cmd only applies with --issuer/],
    [["token", "--issuer", "https://idp.example.invalid", "--client-id", "c", "--client-secret-cmd", "x", "--client-secret-env", "S"], /pass only one of --client-secret-cmd and --client-secret-env/],
    [["token", "--issuer", "https://idp.example.invalid", "--client-id", "c", "--client-secret-cmd", "a | b"], /"\|" needs a shell/],
  ])("profile-less usage errors (exit 2): %j", async (argv, message) => {
    const c = make({ S: "x" });
    expect(await c.run(argv)).toBe(2);
    expect(c.stderr()).toMatch(message);
  });

  it("a profile set up from the MCP server's URL (discovery) keeps the command too", async () => {
    const c = make();
    expect(await c.run(["profiles", "add", "srv", "--mcp-url", sb.mcpUrl, "--client-id", "sandbox-m2m", "--grant", "client_credentials", "--client-secret-cmd", cmd()]), c.stderr()).toBe(0);
    const p = config(c).profiles.srv;
    expect(p.clientSecretCommand).toEqual([NODE, HELPER, "ok"]);
    expect(p.secretStore).toBeUndefined();
    expect(await c.run(["token", "--profile", "srv"]), c.stderr()).toBe(0);
    expect(c.stdout()).toMatch(/^eyJ/);
    expect(allFiles(c.configDir)).not.toContain(SECRET);
  });

  it("login URL: the command is checked before anything is registered or saved", async () => {
    const c = make();
    sb.resetCounts();
    expect(await c.run(["login", sb.mcpUrl, "--client-id", "sandbox-m2m", "--client-secret-cmd", cmd("empty"), "--no-browser"])).toBe(4);
    expect(c.stderr()).toMatch(/error: the client secret command of the profile for http:\/\/127\.0\.0\.1:\d+\/mcp \(.*\) printed nothing/);
    expect(existsSync(join(c.configDir, "config.json"))).toBe(false);
    expect(sb.counts.total).toBe(0);
    expect(await c.run(["login", "--client-secret-cmd", cmd()])).toBe(2);
    expect(c.stderr()).toContain("--client-secret-cmd only applies to a login with an MCP server URL");
  });

  it("the published launcher (bin/mcp-auth.js): a cached token needs no command; a new one is got by the full CLI, which runs it", async () => {
    const u = user({ MCP_AUTH_STORE: "file" });
    try {
      const mark = join(u.home, "runs.txt");
      const env = { HELPER_MARK: mark };
      expect((await u.run(["profiles", "add", "ci", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-cmd", cmd()], { env })).code).toBe(0);
      const first = await u.run(["token", "--profile", "ci"], { env });
      expect(first.code, first.stderr).toBe(0);
      const cached = await u.run(["token", "--profile", "ci"], { env });
      expect(cached.stdout).toBe(first.stdout); // the fast path's answer: no command run
      expect(readFileSync(mark, "utf8")).toBe("ok\nok\n");
      // Expired: the fresh-token fast path would ask the IdP; it steps aside, and the full CLI runs the command.
      const rec = join(u.configDir, "tokens", "p-ci.json");
      writeFileSync(rec, JSON.stringify({ ...JSON.parse(readFileSync(rec, "utf8")), expires_at: Math.floor(Date.now() / 1000) - 1 }), { mode: 0o600 });
      sb.resetCounts();
      const renewed = await u.run(["token", "--profile", "ci"], { env });
      expect(renewed.code, renewed.stderr).toBe(0);
      expect(renewed.stdout).not.toBe(first.stdout);
      expect(sb.grants.client_credentials).toBe(1);
      expect(readFileSync(mark, "utf8")).toBe("ok\nok\nok\n");
    } finally {
      u.cleanup();
    }
  });
});
