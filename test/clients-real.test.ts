import { createServer, type Server } from "node:http";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandbox, type Sandbox } from "../src/sandbox/server.js";
import { BIN, ROOT, runProcess, user, type RunResult, type Sandboxed } from "./helpers/cli.js";
import { startKubernetesMcp, type KubernetesMcp } from "./helpers/k8s-mcp.js";

/**
 * add-client against the real MCP clients installed from npm (devDependencies), run headless in a
 * throw-away HOME, talking to the real kubernetes-mcp-server behind the sandbox IdP, loopback only:
 *  - GitHub Copilot CLI (@github/copilot): `copilot mcp get` shows what it loaded; `copilot -p` runs a
 *    session against a scripted model on 127.0.0.1 (Copilot's documented BYOK provider variables,
 *    COPILOT_OFFLINE=true: no GitHub account, no network), so the session lists the server's tools and
 *    calls one, then again after the token really expired (tokens live TTL seconds here).
 *  - OpenCode (opencode-ai): `opencode mcp list` connects to every server and prints its status.
 * The scripted model stands in for the LLM only: the client, mcp-auth's proxy, the IdP and the MCP
 * server are all real. Facts about each client: docs/clients.md.
 */
const AUDIENCE = "urn:kcp:mcp";
const TTL = 6;
const BINS = join(ROOT, "node_modules", ".bin");
const COPILOT = join(BINS, "copilot");
const OPENCODE = join(BINS, "opencode");
// Copilot CLI unpacks its own release (~200 MB) under $XDG_CACHE_HOME/copilot/pkg/<version> on first
// start: kept across runs, outside the throw-away HOME (it holds nothing of the user's).
const COPILOT_CACHE = join(tmpdir(), "mcp-auth-test-copilot-cache");
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let sb: Sandbox;
let k8s: KubernetesMcp;
let u: Sandboxed;
/** A bin dir holding `mcp-auth`, for project entries, which run it from PATH. */
let bin: string;

beforeAll(async () => {
  sb = await startSandbox({ tokenTtl: TTL });
  k8s = await startKubernetesMcp({ issuer: sb.issuer, audience: AUDIENCE });
  u = user({ MCP_AUTH_STORE: "file" });
  bin = join(u.home, "bin");
  mkdirSync(bin);
  symlinkSync(BIN, join(bin, "mcp-auth"));
  u.env.PATH = `${bin}:/usr/bin:/bin`;
  const r = await u.run(["profiles", "add", "k8s.dev", "--issuer", sb.issuer, "--client-id", sb.clients.m2m.clientId, "--client-secret-env", "SB_SECRET", "--grant", "client_credentials", "--resource", AUDIENCE, "--mcp-url", k8s.url], { env: { SB_SECRET: sb.clients.m2m.clientSecret } });
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await k8s?.stop();
  await sb?.close();
  u?.cleanup();
});

function runIn(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<RunResult> {
  return runProcess(cmd, args, env, undefined, timeoutMs, cwd);
}

function project(name: string): string {
  const dir = mkdtempSync(join(u.home, `${name}-`));
  return dir;
}

// ---- a scripted model for Copilot CLI's BYOK provider (OpenAI chat completions, streamed) ----

interface ChatRequest {
  tools?: Array<{ function?: { name?: string } }>;
  messages: Array<{ role: string; content?: unknown; tool_call_id?: string }>;
  stream?: boolean;
}

/**
 * Plays one session: call the MCP tool whose name ends in `tool`, run `between` (the token expires),
 * call it again, then finish. Requests without that tool (titles, summaries) get a short answer.
 */
async function scriptedModel(tool: string, between: () => Promise<void>) {
  const seen: ChatRequest[] = [];
  const results: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", async () => {
      const j = JSON.parse(body || "{}") as ChatRequest;
      seen.push(j);
      const name = j.tools?.map((t) => t.function?.name ?? "").find((n) => n.endsWith(tool));
      const last = j.messages?.at(-1);
      let delta: Record<string, unknown>;
      let finish = "stop";
      if (name && last?.role === "tool") results.push(typeof last.content === "string" ? last.content : JSON.stringify(last.content));
      if (name && results.length < 2 && (last?.role === "user" || last?.role === "tool")) {
        if (results.length === 1) await between();
        delta = { role: "assistant", tool_calls: [{ index: 0, id: `call_${results.length + 1}`, type: "function", function: { name, arguments: "{}" } }] };
        finish = "tool_calls";
      } else {
        delta = { role: "assistant", content: "done" };
      }
      const chunk = (choice: Record<string, unknown>) => `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 0, model: "scripted", choices: [{ index: 0, ...choice }] })}\n\n`;
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(chunk({ delta, finish_reason: null }) + chunk({ delta: {}, finish_reason: finish }) + "data: [DONE]\n\n");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1`,
    /** The tool names the client offered the model, from every request. */
    tools: () => [...new Set(seen.flatMap((s) => s.tools?.map((t) => t.function?.name ?? "") ?? []))],
    results,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The newest expiry among the cached tokens (unix s). */
function cachedExpiry(): number {
  const dir = join(u.configDir, "tokens");
  return Math.max(0, ...readdirSync(dir).map((f) => (JSON.parse(readFileSync(join(dir, f), "utf8")) as { expires_at?: number }).expires_at ?? 0));
}

/** Waits until the token the proxy holds has really expired: the MCP server would refuse it now. */
async function tokenExpires(): Promise<void> {
  const wait = cachedExpiry() * 1000 - Date.now() + 1000;
  if (wait > 0) await sleep(wait);
}

function copilotEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...u.env, HOME: home, XDG_CACHE_HOME: COPILOT_CACHE, COPILOT_AUTO_UPDATE: "false", NO_COLOR: "1", ...extra };
}

/** `copilot -p` against the scripted model: the session's tools, and what each tool call returned. */
async function copilotSession(cwd: string, env: NodeJS.ProcessEnv, args: string[] = []) {
  const model = await scriptedModel("configuration_view", tokenExpires);
  try {
    const before = sb.grants.client_credentials ?? 0;
    const r = await runIn(cwd, COPILOT, ["-p", "Show the Kubernetes configuration.", "--allow-all-tools", "--no-color", ...args], {
      ...env,
      COPILOT_OFFLINE: "true",
      COPILOT_PROVIDER_BASE_URL: model.url,
      COPILOT_PROVIDER_TYPE: "openai",
      COPILOT_MODEL: "scripted",
    }, 180_000);
    return { r, tools: model.tools(), results: [...model.results], grants: (sb.grants.client_credentials ?? 0) - before };
  } finally {
    await model.close();
  }
}

describe("GitHub Copilot CLI (npm @github/copilot)", () => {
  it("user scope: Copilot loads the entry, a session calls the tool, and again after the token expired", async () => {
    const home = u.home;
    const add = await u.run(["add-client", "copilot", "--profile", "k8s.dev"]);
    expect(add.code, add.stderr).toBe(0);
    const file = join(home, ".copilot", "mcp-config.json");
    expect(JSON.parse(readFileSync(file, "utf8")).mcpServers["k8s-dev"]).toMatchObject({ type: "stdio", command: process.execPath });

    const get = await runIn(home, COPILOT, ["mcp", "get", "k8s-dev", "--json"], copilotEnv(home));
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)["k8s-dev"]).toMatchObject({ type: "stdio", source: "user", command: process.execPath });

    const s = await copilotSession(home, copilotEnv(home));
    expect(s.r.code, s.r.stdout + s.r.stderr + k8s.logs()).toBe(0);
    expect(s.tools.filter((t) => t.includes("configuration_view"))).toHaveLength(1); // connected: its tools reach the model
    expect(s.results).toHaveLength(2);
    for (const res of s.results) expect(res).toContain("dummy"); // the server's kubeconfig, both times
    expect(s.grants).toBeGreaterThanOrEqual(2); // a first token, and a new one after it expired mid-session

    expect((await u.run(["remove-client", "copilot", "--name", "k8s-dev"])).code).toBe(0);
    const gone = await runIn(home, COPILOT, ["mcp", "get", "k8s-dev"], copilotEnv(home));
    expect(gone.code).not.toBe(0);
  }, 240_000);

  it("$COPILOT_HOME moves the file, and Copilot CLI reads it there", async () => {
    const ch = join(u.home, "copilot-home");
    const add = await u.run(["add-client", "copilot", "--profile", "k8s.dev", "--name", "k8s-moved"], { env: { COPILOT_HOME: ch } });
    expect(add.code, add.stderr).toBe(0);
    const get = await runIn(u.home, COPILOT, ["mcp", "get", "k8s-moved", "--json"], copilotEnv(u.home, { COPILOT_HOME: ch }));
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)["k8s-moved"]).toMatchObject({ type: "stdio", source: "user", command: process.execPath });
    expect(readFileSync(join(ch, "mcp-config.json"), "utf8")).toContain("k8s-moved");
    expect((await u.run(["remove-client", "copilot", "--name", "k8s-moved"], { env: { COPILOT_HOME: ch } })).code).toBe(0);
  }, 60_000);

  it("project .mcp.json written for Claude Code: Copilot drops headersHelper (no token), runs the default proxy entry", async () => {
    const proj = project("shared");
    const env = copilotEnv(u.home);
    // Both of Claude Code's project entries: the default (proxy) and, by request, the helper.
    for (const extra of [[], ["--strategy", "helper", "--name", "k8s-helper"]]) {
      const r = await runIn(proj, process.execPath, [BIN, "add-client", "claude", "--scope", "project", "--profile", "k8s.dev", ...extra], u.env);
      expect(r.code, r.stderr).toBe(0);
    }
    const onDisk = JSON.parse(readFileSync(join(proj, ".mcp.json"), "utf8")).mcpServers;
    expect(onDisk["k8s-helper"].headersHelper).toContain("mcp-auth");
    // Copilot loads a workspace's servers once the folder is trusted.
    mkdirSync(join(u.home, ".copilot"), { recursive: true });
    writeFileSync(join(u.home, ".copilot", "config.json"), JSON.stringify({ trustedFolders: [proj] }));

    const list = await runIn(proj, COPILOT, ["mcp", "list", "--json"], env);
    expect(list.code, list.stderr).toBe(0);
    const loaded = JSON.parse(list.stdout).mcpServers;
    expect(loaded["k8s-dev"]).toMatchObject({ type: "stdio", command: "mcp-auth", source: "workspace" });
    expect(loaded["k8s-helper"]).toMatchObject({ type: "http", url: k8s.url, source: "workspace" });
    expect(loaded["k8s-helper"].headersHelper).toBeUndefined(); // what Copilot does with it: nothing

    const s = await copilotSession(proj, env);
    expect(s.r.code, s.r.stdout + s.r.stderr).toBe(0);
    const offered = s.tools.filter((t) => t.includes("configuration_view"));
    expect(offered, JSON.stringify(s.tools)).toHaveLength(1); // the proxy entry's; the helper entry could not connect
    expect(offered[0]).toMatch(/k8s-dev/);
    expect(s.results).toHaveLength(2);
    for (const res of s.results) expect(res).toContain("dummy");
    rmSync(join(u.home, ".copilot", "config.json"));
  }, 240_000);
});

describe("OpenCode (npm opencode-ai)", () => {
  function opencodeEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const h = u.home;
    return { ...u.env, XDG_CONFIG_HOME: join(h, ".config"), XDG_DATA_HOME: join(h, ".local", "share"), XDG_CACHE_HOME: join(h, ".cache"), XDG_STATE_HOME: join(h, ".local", "state"), OPENCODE_DISABLE_AUTOUPDATE: "1", ...extra };
  }
  const status = (out: string, name: string) => out.split("\n").find((l) => l.includes(name)) ?? "";

  it("user scope: opencode mcp list connects through the proxy, and again once the token expired", async () => {
    const add = await u.run(["add-client", "opencode", "--profile", "k8s.dev"], { env: opencodeEnv() });
    expect(add.code, add.stderr).toBe(0);
    const proj = project("oc");
    for (const round of [1, 2]) {
      if (round === 2) await tokenExpires();
      const before = sb.grants.client_credentials ?? 0;
      const list = await runIn(proj, OPENCODE, ["mcp", "list"], opencodeEnv());
      expect(status(list.stdout + list.stderr, "k8s-dev"), list.stdout + list.stderr).toMatch(/connected/i);
      expect(status(list.stdout + list.stderr, "k8s-dev")).not.toMatch(/failed|disconnected/i);
      if (round === 2) expect(sb.grants.client_credentials ?? 0).toBeGreaterThan(before);
    }
    expect((await u.run(["remove-client", "opencode", "--name", "k8s-dev"], { env: opencodeEnv() })).code).toBe(0);
  }, 120_000);

  it("--strategy header: OpenCode expands {env:NAME} into the Authorization header it sends", async () => {
    // Tokens live TTL seconds here, less than OpenCode takes to start: a loopback server records the
    // header instead (the proxy strategy above is the one that outlives a token).
    const seen: string[] = [];
    const rec = createServer((req, res) => {
      seen.push(req.headers.authorization ?? "");
      res.writeHead(401, { "www-authenticate": 'Bearer error="invalid_token"' }).end();
    });
    await new Promise<void>((r) => rec.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(rec.address() as { port: number }).port}/mcp`;
    try {
      const p = await u.run(["profiles", "add", "rec", "--issuer", sb.issuer, "--client-id", sb.clients.m2m.clientId, "--client-secret-env", "SB_SECRET", "--grant", "client_credentials", "--mcp-url", url], { env: { SB_SECRET: sb.clients.m2m.clientSecret } });
      expect(p.code, p.stderr).toBe(0);
      const add = await u.run(["add-client", "opencode", "--profile", "rec", "--strategy", "header"], { env: opencodeEnv() });
      expect(add.code, add.stderr).toBe(0);
      const list = await runIn(project("oc-hdr"), OPENCODE, ["mcp", "list"], opencodeEnv({ MCP_AUTH_TOKEN_REC: "tok-from-env" }));
      expect(seen.length, list.stdout + list.stderr).toBeGreaterThan(0);
      expect(new Set(seen)).toEqual(new Set(["Bearer tok-from-env"]));
      expect(status(list.stdout + list.stderr, "rec")).toMatch(/failed/); // the recorder refused it, and OpenCode says so
      expect((await u.run(["remove-client", "opencode", "--name", "rec"], { env: opencodeEnv() })).code).toBe(0);
    } finally {
      rec.close();
    }
  }, 120_000);

  it("project scope: opencode.json at the project root runs mcp-auth from PATH", async () => {
    const proj = project("oc-proj");
    const add = await runIn(proj, process.execPath, [BIN, "add-client", "opencode", "--scope", "project", "--profile", "k8s.dev"], opencodeEnv());
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(proj, "opencode.json"), "utf8")).mcp["k8s-dev"].command[0]).toBe("mcp-auth");
    const list = await runIn(proj, OPENCODE, ["mcp", "list"], opencodeEnv());
    expect(status(list.stdout + list.stderr, "k8s-dev"), list.stdout + list.stderr).toMatch(/connected/i);
  }, 120_000);
});

describe("Gemini CLI (npm @google/gemini-cli)", () => {
  const GEMINI = join(BINS, "gemini");
  // The folder is trusted for the session (docs/cli/trusted-folders.md), else Gemini CLI disables every server.
  const geminiEnv = () => ({ ...u.env, GEMINI_CLI_TRUST_WORKSPACE: "true", NO_COLOR: "1" });
  const status = (out: string, name: string) => out.split("\n").find((l) => l.includes(`${name}:`)) ?? "";

  it("user scope: gemini mcp list connects through the proxy, and again once the token expired", async () => {
    const add = await u.run(["add-client", "gemini", "--profile", "k8s.dev"]);
    expect(add.code, add.stderr).toBe(0);
    const proj = project("gm");
    for (const round of [1, 2]) {
      if (round === 2) await tokenExpires();
      const before = sb.grants.client_credentials ?? 0;
      const list = await runIn(proj, process.execPath, [GEMINI, "mcp", "list"], geminiEnv());
      const out = list.stdout + list.stderr;
      expect(status(out, "k8s-dev"), out).toMatch(/- Connected/);
      if (round === 2) expect(sb.grants.client_credentials ?? 0).toBeGreaterThan(before);
    }
    expect((await u.run(["remove-client", "gemini", "--name", "k8s-dev"])).code).toBe(0);
  }, 120_000);
});
