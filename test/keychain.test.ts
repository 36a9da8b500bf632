import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type Server } from "node:net";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { configDirTag } from "../src/store/secrets.js";
import { useSandbox } from "./helpers/sandbox.js";
import { BIN, ROOT, runProcess, user, type Sandboxed } from "./helpers/cli.js";

/** The real Secret Service (gnome-keyring on a private D-Bus), and what happens without one. */
const WITH_KEYRING = join(ROOT, "test", "helpers", "with-keyring.sh");
const hasKeyring = (() => {
  try {
    execFileSync("sh", ["-c", "command -v gnome-keyring-daemon && command -v dbus-run-session && command -v secret-tool"], { stdio: "ignore" });
    return true;
  } catch {
    return Boolean(process.env.CI); // in CI a missing keyring is a failure, not a skip
  }
})();
const SECRET = "kc-s3cret-value-7d1f";
const require = createRequire(import.meta.url);

const sb = useSandbox({ clientSecret: SECRET });
let u: Sandboxed;
afterEach(() => u?.cleanup());

/** Every file mcp-auth wrote, as text. */
function allFiles(dir: string): string {
  if (!existsSync(dir)) return "";
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => readFileSync(join(d.parentPath ?? (d as unknown as { path: string }).path, d.name), "utf8"))
    .join("\n");
}

describe.skipIf(!hasKeyring)("with a real gnome-keyring", () => {
  it("keeps the client secret in the keyring, not in any file, and reads it back for tokens", async () => {
    u = user();
    const script = [
      `printf %s "$SECRET" | node ${BIN} profiles add kc --issuer ${sb.issuer} --client-id sandbox-m2m --client-secret-stdin --resource ${sb.mcpUrl}`,
      `node ${BIN} token --profile kc > "$HOME/token.txt"`,
      `echo "--search--"; secret-tool search --all service mcp-auth 2>&1`,
      // The account names the config dir (a hash of its real path): see "keychain entries belong to one config dir".
      `echo "--lookup--"; secret-tool lookup service mcp-auth username client-secret:kc@${configDirTag(u.configDir)}`,
      `echo; echo "--status--"; node ${BIN} status`,
    ].join(" && ");
    const r = await runProcess(WITH_KEYRING, ["sh", "-c", script], { ...u.env, SECRET }, undefined, 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain("no usable keychain");
    expect(r.stdout).toMatch(/attribute\.username = client-secret:kc/);
    expect(r.stdout).toContain(`--lookup--\n${SECRET}`);
    expect(r.stdout).toContain("client secret: stored (keychain)");
    expect(readFileSync(join(u.home, "token.txt"), "utf8")).toMatch(/^eyJ/);
    expect(allFiles(u.configDir)).not.toContain(SECRET);
    expect(existsSync(join(u.configDir, "secrets.json"))).toBe(false);

    // profiles remove takes the secret out of the keyring too
    const rm = await runProcess(WITH_KEYRING, ["sh", "-c", `node ${BIN} profiles remove kc && secret-tool search --all service mcp-auth 2>&1; true`], u.env);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).not.toContain("client-secret:kc");
  });

  it("with accessTokenStore=keychain the access token leaves the cache file too", async () => {
    u = user({ MCP_AUTH_ACCESS_TOKEN_STORE: "keychain" });
    const script = [
      `printf %s "$SECRET" | node ${BIN} profiles add kc --issuer ${sb.issuer} --client-id sandbox-m2m --client-secret-stdin`,
      `node ${BIN} token`,
      `node ${BIN} token`,
    ].join(" && ");
    const r = await runProcess(WITH_KEYRING, ["sh", "-c", script], { ...u.env, SECRET });
    expect(r.code, r.stderr).toBe(0);
    const [a, b] = r.stdout.trim().split("\n");
    expect(a).toMatch(/^eyJ/);
    expect(b).toBe(a);
    const rec = readFileSync(join(u.configDir, "tokens", "p-kc.json"), "utf8");
    expect(rec).not.toContain(a!);
    expect(JSON.parse(rec).access_store).toBe("keychain");
  });
});

/** Runs a shell script against one throw-away gnome-keyring; `$BIN` is the CLI, `$KEYRING` the keyring module. */
function inKeyring(script: string, env: NodeJS.ProcessEnv) {
  const keyring = require.resolve("@napi-rs/keyring");
  return runProcess(WITH_KEYRING, ["sh", "-c", script], { ...env, BIN, KEYRING: keyring, SECRET }, undefined, 60_000);
}

/** `secret-tool search` output → the account (username) of every mcp-auth entry. */
function accountsIn(out: string): string[] {
  return [...out.matchAll(/^attribute\.username = (.*)$/gm)].map((m) => m[1]!).sort();
}

describe.skipIf(!hasKeyring)("keychain entries belong to one config dir", () => {
  it("two config dirs with the same profile name keep separate secrets, and a copied config.json finds none", async () => {
    u = user();
    const [a, b, c] = ["a", "b", "c"].map((d) => join(u.home, d));
    const add = (dir: string, secret: string) =>
      `printf %s '${secret}' | MCP_AUTH_CONFIG_DIR=${dir} node "$BIN" profiles add kc --issuer ${sb.issuer} --client-id sandbox-m2m --client-secret-stdin`;
    const script = [
      add(a!, SECRET),
      add(b!, "another-dirs-secret"),
      // A per-job config dir holding a copy of a's config.json, but none of its secrets.
      `mkdir -m 700 ${c} && cp ${a}/config.json ${c}/config.json`,
      `{ echo "--a--"; MCP_AUTH_CONFIG_DIR=${a} node "$BIN" token --profile kc; }`,
      `{ echo "--c--"; MCP_AUTH_CONFIG_DIR=${c} node "$BIN" token --profile kc; echo "exit $?"; }`,
      `{ echo "--search--"; secret-tool search --all service mcp-auth 2>&1; }`,
    ].join(" && ");
    const r = await inKeyring(script, u.env);
    expect(r.code, r.stderr).toBe(0);
    // b's profile did not overwrite a's secret: a still gets a token with its own.
    expect(r.stdout).toMatch(/--a--\neyJ/);
    // c never sees a's secret: the IdP is asked without one and refuses (exit 4).
    expect(r.stdout).toMatch(/--c--\nexit [1-9]/);
    expect(r.stderr).not.toContain(SECRET);
    const accts = accountsIn(r.stdout);
    expect(accts).toHaveLength(2);
    for (const acct of accts) expect(acct).toMatch(/^client-secret:kc@[0-9a-f]{12}$/);
    expect(new Set(accts).size).toBe(2);
  });

  it("an entry written before entries were per config dir still works without a login, and is moved", async () => {
    u = user();
    const old = `node -e 'new (require(process.env.KEYRING).Entry)("mcp-auth", "client-secret:kc", {linux: {store: "secret-service"}}).setPassword(process.env.SECRET)'`;
    const script = [
      `printf %s "$SECRET" | node "$BIN" profiles add kc --issuer ${sb.issuer} --client-id sandbox-m2m --client-secret-stdin`,
      // What an older mcp-auth left behind: the secret under the bare account name, nothing else.
      `secret-tool clear service mcp-auth`,
      old,
      `{ echo "--before--"; secret-tool search --all service mcp-auth 2>&1; }`,
      `{ echo "--token--"; node "$BIN" token --profile kc; }`,
      `{ echo "--after--"; secret-tool search --all service mcp-auth 2>&1; }`,
      `{ echo "--again--"; node "$BIN" token --profile kc --min-ttl 100000; }`,
      `{ echo "--remove--"; node "$BIN" profiles remove kc && secret-tool search --all service mcp-auth 2>&1; true; }`,
    ].join(" && ");
    const r = await inKeyring(script, u.env);
    expect(r.code, r.stderr).toBe(0);
    const section = (name: string) => r.stdout.split(`--${name}--\n`)[1]!.split(/\n--\w+--\n/)[0]!;
    expect(accountsIn(section("before"))).toEqual(["client-secret:kc"]);
    expect(section("token")).toMatch(/^eyJ/);
    expect(accountsIn(section("after"))).toEqual([expect.stringMatching(/^client-secret:kc@[0-9a-f]{12}$/)]);
    expect(section("after")).toContain(`secret = ${SECRET}`);
    // The moved secret is read on the next (uncached) run too.
    expect(section("again")).toMatch(/^eyJ/);
    expect(accountsIn(section("remove"))).toEqual([]);
  });

  it("profiles remove also deletes an entry of the old form", async () => {
    u = user();
    const old = `node -e 'new (require(process.env.KEYRING).Entry)("mcp-auth", "client-secret:kc", {linux: {store: "secret-service"}}).setPassword("left-over")'`;
    const script = [
      `printf %s "$SECRET" | node "$BIN" profiles add kc --issuer ${sb.issuer} --client-id sandbox-m2m --client-secret-stdin`,
      old,
      `node "$BIN" profiles remove kc`,
      `{ echo "--search--"; secret-tool search --all service mcp-auth 2>&1; true; }`,
    ].join(" && ");
    const r = await inKeyring(script, u.env);
    expect(r.code, r.stderr).toBe(0);
    expect(accountsIn(r.stdout)).toEqual([]);
  });
});

describe.skipIf(!hasKeyring)("values larger than one keychain entry (the real Secret Service)", () => {
  it("an RSA private key is split into entries, signs token requests, and goes with the profile", async () => {
    u = user();
    const add = await inKeyring(`node "$BIN" profiles add big --issuer ${sb.issuer} --resource ${sb.mcpUrl} --client-auth private-key-jwt --generate-key --alg RS256 --json`, u.env);
    expect(add.code, add.stderr).toBe(0);
    const { jwk } = JSON.parse(add.stdout) as { jwk: Record<string, unknown> };
    const { client_id } = await sb.registerClient({ token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [jwk] }, grant_types: ["client_credentials"], response_types: [], redirect_uris: [], scope: "mcp:read mcp:write" });
    const script = [
      `node "$BIN" profiles set big --client-id ${client_id}`,
      `{ echo "--search--"; secret-tool search --all service mcp-auth 2>&1; }`,
      `{ echo "--token--"; node "$BIN" token --profile big --no-cache; }`,
      `{ echo "--remove--"; node "$BIN" profiles remove big && secret-tool search --all service mcp-auth 2>&1; true; }`,
    ].join(" && ");
    const r = await inKeyring(script, u.env);
    expect(r.code, r.stderr).toBe(0);
    const section = (name: string) => r.stdout.split(`--${name}--\n`)[1]!.split(/\n--\w+--\n/)[0]!;
    // A 2048-bit private JWK is ~1.7 KB: more than one Windows entry holds, so it is a pointer and two chunks.
    const key = accountsIn(section("search")).filter((a) => a.startsWith("private-key:big:"));
    expect(key).toHaveLength(3);
    expect(key.filter((a) => /#[0-9a-f]{8}\.\d$/.test(a))).toHaveLength(2);
    expect(section("token")).toMatch(/^eyJ/);
    expect(accountsIn(section("remove"))).toEqual([]);
  });
});

describe("without a usable keychain", () => {
  it("falls back to a 0600 file and says so once", async () => {
    u = user({ SECRET });
    const add = await u.run(["profiles", "add", "f", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "SECRET"]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toMatch(/no usable keychain \(no D-Bus session.*\); keeping secrets in .*secrets\.json \(mode 0600\)/);
    expect(statSync(join(u.configDir, "secrets.json")).mode & 0o777).toBe(0o600);
    const again = await u.run(["profiles", "add", "g", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "SECRET"]);
    expect(again.stderr).not.toContain("no usable keychain");
    expect((await u.run(["token", "-p", "g"])).code).toBe(0);
  });

  it("MCP_AUTH_STORE=file is quiet; MCP_AUTH_STORE=keychain fails clearly; a bad value is a usage error", async () => {
    u = user({ SECRET, MCP_AUTH_STORE: "file" });
    const add = await u.run(["profiles", "add", "f", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "SECRET"]);
    expect(add.stderr).not.toContain("keychain");
    expect(readFileSync(join(u.configDir, "secrets.json"), "utf8")).toContain(SECRET);
    const forced = await u.run(["profiles", "add", "k", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "SECRET"], { env: { MCP_AUTH_STORE: "keychain" } });
    expect(forced.code).toBe(1);
    expect(forced.stderr.trim()).toMatch(/^error: the keychain is not usable: no D-Bus session/);
    const bad = await u.run(["profiles", "add", "k", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "SECRET"], { env: { MCP_AUTH_STORE: "vault" } });
    expect(bad.code).toBe(2);
  });

  it("a D-Bus that accepts and never answers costs a bounded wait, then the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-auth-bus-"));
    const sock = join(dir, "bus.sock");
    const hung: Server = createServer(() => {
      /* accept, never answer */
    });
    await new Promise<void>((r) => hung.listen(sock, () => r()));
    try {
      u = user({ SECRET, DBUS_SESSION_BUS_ADDRESS: `unix:path=${sock}` });
      const started = Date.now();
      const add = await u.run(["profiles", "add", "h", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "SECRET"], { timeoutMs: 20_000 });
      expect(add.code, add.stderr).toBe(0);
      expect(add.stderr).toMatch(/no usable keychain \(the Secret Service did not answer within 2s\)/);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      hung.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
