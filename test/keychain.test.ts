import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
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
      `echo "--lookup--"; secret-tool lookup service mcp-auth username client-secret:kc`,
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
