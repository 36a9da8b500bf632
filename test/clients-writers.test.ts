import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { gemini } from "../src/clients/gemini.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * What each writer puts in an entry so that it keeps working in its client: the settings Gemini CLI
 * removes from a stdio server's environment, Gemini's server names, Codex's project file and start-up
 * time-out (facts: docs/clients.md).
 */
const startDir = process.cwd();
let t: TestContext | undefined;
let proj: string;

async function setup(env: NodeJS.ProcessEnv = {}, profile = "dev.k8s"): Promise<TestContext> {
  const c = createTestContext({ env });
  t = c;
  proj = join(c.env.HOME!, "proj");
  mkdirSync(proj);
  process.chdir(proj);
  expect(await c.run(["profiles", "add", profile, "--issuer", "https://idp.example.invalid", "--client-id", "cli", "--mcp-url", "https://mcp.example.invalid/mcp"])).toBe(0);
  return c;
}
afterEach(() => {
  process.chdir(startDir);
  t?.cleanup();
  t = undefined;
});

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = t!;
  const o = c.stdout().length;
  const e = c.stderr().length;
  const code = await c.run(argv);
  return { code, out: c.stdout().slice(o), err: c.stderr().slice(e) };
}

const CORP = { NODE_EXTRA_CA_CERTS: "/etc/corp/ca.pem", MCP_AUTH_TIMEOUT: "90", MCP_AUTH_ACCESS_TOKEN_STORE: "keychain", MCP_AUTH_STORE: "file" };

describe("Gemini CLI removes AUTH/CERT/KEY/TOKEN… variables: the entry carries what mcp-auth needs", () => {
  it.each([
    // Names Gemini CLI 0.61.0 drops and keeps (packages/core/src/services/environmentSanitization.ts, docs/clients.md).
    ["MCP_AUTH_CONFIG_DIR", true],
    ["MCP_AUTH_STORE", true],
    ["NODE_EXTRA_CA_CERTS", true],
    ["MCP_AUTH_TIMEOUT", true],
    ["GITHUB_TOKEN", true],
    ["HTTPS_PROXY", false],
    ["NO_PROXY", false],
    ["GEMINI_CLI_API_KEY", false],
  ] as const)("%s dropped: %s", (name, dropped) => {
    expect(gemini.dropsEnv!(name)).toBe(dropped);
  });

  it("a user entry carries --config-dir, --store, --ca-file, --timeout as flags and the rest in env", async () => {
    const c = await setup(CORP);
    const r = await run(["add-client", "gemini", "--print"]);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(r.out).mcpServers["dev-k8s"];
    const args = s.args as string[];
    const flag = (f: string) => args[args.indexOf(f) + 1];
    expect(args.indexOf("proxy")).toBeGreaterThan(args.indexOf("--timeout"));
    expect([flag("--config-dir"), flag("--store"), flag("--ca-file"), flag("--timeout")]).toEqual([c.configDir, "file", "/etc/corp/ca.pem", "90"]);
    expect(s.env).toEqual({ MCP_AUTH_ACCESS_TOKEN_STORE: "keychain" });
  });

  it("a client that passes its environment on gets no extra flags", async () => {
    await setup(CORP);
    const r = await run(["add-client", "cursor", "--print"]);
    const s = JSON.parse(r.out).mcpServers["dev-k8s"];
    expect(s.args).not.toContain("--ca-file");
    expect(s.env).toBeUndefined();
  });

  it("a project entry names no machine's settings and says what Gemini CLI will not pass on", async () => {
    await setup(CORP);
    const r = await run(["add-client", "gemini", "--scope", "project"]);
    expect(r.code, r.err).toBe(0);
    const text = readFileSync(join(proj, ".gemini", "settings.json"), "utf8");
    expect(text).not.toContain("/etc/corp");
    expect(text).not.toContain('"env"');
    expect(r.err).toContain("Gemini CLI removes NODE_EXTRA_CA_CERTS, MCP_AUTH_TIMEOUT, MCP_AUTH_ACCESS_TOKEN_STORE");
  });

  it("the header strategy writes url + type http, not the deprecated httpUrl", async () => {
    await setup();
    const r = await run(["add-client", "gemini", "--strategy", "header", "--print"]);
    expect(JSON.parse(r.out).mcpServers["dev-k8s"]).toEqual({ type: "http", url: "https://mcp.example.invalid/mcp", headers: { Authorization: "Bearer ${MCP_AUTH_TOKEN_DEV_K8S}" } });
  });
});

describe("Gemini CLI server names have no _ (its policy parser splits mcp_<server>_<tool> at the first _)", () => {
  it("a name derived from a profile with _ uses - instead", async () => {
    await setup({}, "dev_k8s");
    const r = await run(["add-client", "gemini", "--print"]);
    expect(Object.keys(JSON.parse(r.out).mcpServers)).toEqual(["dev-k8s"]);
    const c = await run(["add-client", "cursor", "--print"]);
    expect(Object.keys(JSON.parse(c.out).mcpServers)).toEqual(["dev_k8s"]); // other clients keep it
  });

  it("--name with _ is refused for Gemini CLI (exit 2), one line", async () => {
    await setup();
    const r = await run(["add-client", "gemini", "--name", "my_k8s", "--print"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--name "my_k8s" has characters Gemini CLI refuses');
    expect(r.err).toContain("letters, digits and -");
  });
});

describe("Codex project scope", () => {
  it("writes .codex/config.toml with mcp-auth from PATH, a start-up time-out, and says the project must be trusted", async () => {
    const c = await setup();
    const r = await run(["add-client", "codex", "--scope", "project"]);
    expect(r.code, r.err).toBe(0);
    const text = readFileSync(join(proj, ".codex", "config.toml"), "utf8");
    expect(text).toContain('command = "mcp-auth"');
    expect(text).toContain("startup_timeout_sec = 60");
    expect(text).not.toContain(c.configDir);
    expect(r.err).toContain("only once you trust the project");
  });

  it("a user entry has the start-up time-out too (Codex's default of 10 s is short for a first token)", async () => {
    await setup();
    const r = await run(["add-client", "codex", "--print"]);
    expect(r.out).toContain("startup_timeout_sec = 60");
  });

  it("--static-token is refused for the shared project file", async () => {
    await setup();
    const r = await run(["add-client", "codex", "--scope", "project", "--strategy", "header", "--static-token"]);
    expect(r.code).toBe(2);
  });
});

describe("--strategy native: the client's own OAuth login with the profile's public client", () => {
  async function nativeSetup(extra: string[] = []): Promise<TestContext> {
    const c = await setup();
    const r = await c.run(["profiles", "add", "pub", "--issuer", "https://idp.example.invalid", "--client-id", "pub-client", "--grant", "authorization_code", "--scope", "openid mcp:read", "--redirect-port", "8765", "--mcp-url", "https://mcp.example.invalid/mcp", ...extra]);
    expect(r, c.stderr()).toBe(0);
    return c;
  }

  it.each([
    ["claude", { type: "http", url: "https://mcp.example.invalid/mcp", oauth: { clientId: "pub-client", callbackPort: 8765, scopes: "openid mcp:read" } }, "http://localhost:8765/callback"],
    ["gemini", { type: "http", url: "https://mcp.example.invalid/mcp", oauth: { enabled: true, clientId: "pub-client", redirectUri: "http://localhost:8765/oauth/callback", scopes: ["openid", "mcp:read"] } }, "http://localhost:8765/oauth/callback"],
    ["cursor", { url: "https://mcp.example.invalid/mcp", auth: { CLIENT_ID: "pub-client", scopes: ["openid", "mcp:read"] } }, "http://localhost:8787/callback"],
  ] as const)("%s writes only its own OAuth fields and names the redirect URI to register", async (client, want, redirect) => {
    await nativeSetup();
    const r = await run(["add-client", client, "--profile", "pub", "--strategy", "native", "--scope", client === "claude" ? "user" : "user"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(redirect);
    const list = JSON.parse((await run(["clients", "--json"])).out) as Array<{ client: string; files: Array<{ scope: string; servers: Array<{ name: string; mcpAuth: boolean; profile?: string }> }> }>;
    expect(list.find((x) => x.client === client)!.files.find((f) => f.scope === "user")!.servers).toContainEqual(expect.objectContaining({ name: "pub", mcpAuth: true, profile: "pub" }));
    const p = await run(["add-client", client, "--profile", "pub", "--strategy", "native", "--scope", "user", "--print"]);
    expect(JSON.parse(p.out).mcpServers.pub).toEqual(want);
    expect(p.out).not.toContain("mcp-auth");
    // Ours by the record: re-adding changes nothing, remove-client needs no --force.
    expect((await run(["add-client", client, "--profile", "pub", "--strategy", "native", "--scope", "user"])).err).toContain("already configured");
    const rm = await run(["remove-client", client, "--scope", "user", "--name", "pub"]);
    expect(rm.code, rm.err).toBe(0);
  });

  it.each([
    [["--grant", "authorization_code", "--client-secret-env", "PUB_SECRET"], /confidential client/],
    [["--grant", "device_code"], /is for browser logins: profile "conf" uses device_code/],
  ])("a profile %j is refused (exit 2), one line", async (extra, msg) => {
    const c = await setup({ PUB_SECRET: "s3cret" });
    expect(await c.run(["profiles", "add", "conf", "--issuer", "https://idp.example.invalid", "--client-id", "conf-client", "--mcp-url", "https://mcp.example.invalid/mcp", ...extra]), c.stderr()).toBe(0);
    const r = await run(["add-client", "claude", "--profile", "conf", "--strategy", "native", "--scope", "user", "--print"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err).not.toContain("s3cret");
  });

  it("clients whose OAuth fields are not verified have no native strategy", async () => {
    await nativeSetup();
    for (const c of ["vscode", "codex", "windsurf", "claude-desktop"]) {
      const r = await run(["add-client", c, "--profile", "pub", "--strategy", "native", "--print"]);
      expect(r.code).toBe(2);
      expect(r.err).toContain('has no strategy "native"');
    }
  });
});
