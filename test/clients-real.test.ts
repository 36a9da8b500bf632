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
 *  - Gemini CLI (@google/gemini-cli): `gemini mcp list` connects and prints Connected/Disconnected.
 *  - Codex (@openai/codex): a `codex exec` session against the scripted model (Responses wire format,
 *    set through Codex's own model_providers), calling the tool before and after the token expired.
 *  - Claude Code (@anthropic-ai/claude-code): `claude mcp list` runs the shared project `.mcp.json` entry.
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

// ---- a scripted model for the clients' own model-provider settings, on loopback ----

/** Chat Completions (Copilot CLI's BYOK "openai" provider) or Responses (Codex's model_providers). */
type Wire = "chat" | "responses";

interface Tool {
  name?: string;
  function?: { name?: string };
  /** Codex groups an MCP server's tools in one `namespace` tool named `mcp__<server>`. */
  type?: string;
  tools?: Tool[];
}

/** Every callable tool as [namespace, name]. */
function toolNames(tools: Tool[] | undefined): Array<[string | undefined, string]> {
  return (tools ?? []).flatMap((t): Array<[string | undefined, string]> => (t.type === "namespace" ? (t.tools ?? []).map((x) => [t.name, x.name ?? ""]) : [[undefined, t.name ?? t.function?.name ?? ""]]));
}

interface ModelRequest {
  tools?: Tool[];
  messages?: Array<{ role: string; content?: unknown; tool_call_id?: string }>;
  input?: Array<{ type?: string; role?: string; output?: unknown; call_id?: string }>;
}

function sse(wire: Wire, reply: { call?: { id: string; name: string; namespace?: string } } | { text: string }): string {
  if (wire === "chat") {
    const chunk = (choice: Record<string, unknown>) => `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 0, model: "scripted", choices: [{ index: 0, ...choice }] })}\n\n`;
    const delta = "text" in reply ? { role: "assistant", content: reply.text } : { role: "assistant", tool_calls: [{ index: 0, id: reply.call!.id, type: "function", function: { name: reply.call!.name, arguments: "{}" } }] };
    return chunk({ delta, finish_reason: null }) + chunk({ delta: {}, finish_reason: "text" in reply ? "stop" : "tool_calls" }) + "data: [DONE]\n\n";
  }
  const ev = (type: string, body: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...body })}\n\n`;
  const item = "text" in reply ? { type: "message", id: "m1", role: "assistant", content: [{ type: "output_text", text: reply.text, annotations: [] }] } : { type: "function_call", id: `fc_${reply.call!.id}`, call_id: reply.call!.id, name: reply.call!.name, ...(reply.call!.namespace && { namespace: reply.call!.namespace }), arguments: "{}" };
  const usage = { input_tokens: 1, input_tokens_details: null, output_tokens: 1, output_tokens_details: null, total_tokens: 2 };
  return ev("response.created", { response: { id: "r1" } }) + ev("response.output_item.done", { output_index: 0, item }) + ev("response.completed", { response: { id: "r1", usage } });
}

/**
 * Plays one session: call the MCP tool whose name ends in `tool`, run `between` (the token expires),
 * call it again, then finish. Requests without that tool (titles, summaries) get a short answer.
 */
async function scriptedModel(wire: Wire, tool: string, between: () => Promise<void>) {
  const seen: ModelRequest[] = [];
  const results: string[] = [];
  let waits = 0;
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", async () => {
      const j = JSON.parse(body || "{}") as ModelRequest;
      seen.push(j);
      const found = toolNames(j.tools).find(([, n]) => n.endsWith(tool));
      const name = found?.[1];
      const last = wire === "chat" ? j.messages?.at(-1) : j.input?.at(-1);
      const callId = (last as { tool_call_id?: string; call_id?: string } | undefined)?.[wire === "chat" ? "tool_call_id" : "call_id"] ?? "";
      const isResult = (wire === "chat" ? last?.role === "tool" : (last as { type?: string } | undefined)?.type === "function_call_output") && callId.startsWith("call_");
      const isUser = last?.role === "user" || callId.startsWith("wait_");
      if (name && isResult) {
        const out = wire === "chat" ? (last as { content?: unknown }).content : (last as { output?: unknown }).output;
        results.push(typeof out === "string" ? out : JSON.stringify(out));
      }
      let reply: Parameters<typeof sse>[1] = { text: "done" };
      if (!name && toolNames(j.tools).some(([, n]) => n === "list_mcp_resources") && waits++ < 10) {
        // Codex starts MCP servers in the background and may send the first turn before they are up;
        // its own list_mcp_resources tool waits for them, and the next turn carries their tools.
        reply = { call: { id: `wait_${waits}`, name: "list_mcp_resources" } };
      } else if (name && results.length < 2 && (isUser || isResult)) {
        if (results.length === 1) await between();
        reply = { call: { id: `call_${results.length + 1}`, name: name!, ...(found?.[0] && { namespace: found[0] }) } };
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(sse(wire, reply));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1`,
    /** The tool names the client offered the model, from every request. */
    tools: () => [...new Set(seen.flatMap((s) => toolNames(s.tools).map(([ns, n]) => (ns ? `${ns}.${n}` : n))))],
    results,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The newest expiry among the cached tokens (unix s). */
function cachedExpiry(): number {
  const dir = join(u.configDir, "tokens");
  return Math.max(0, ...readdirSync(dir).map((f) => (JSON.parse(readFileSync(join(dir, f), "utf8")) as { expires_at?: number }).expires_at ?? 0));
}

/**
 * Waits until the token the proxy holds has really expired: the MCP server would refuse it now. A real
 * client's clock cannot be injected, so the sandbox's tokens live only TTL seconds (as in proxy.test.ts).
 */
async function tokenExpires(): Promise<void> {
  const wait = cachedExpiry() * 1000 - Date.now() + 1000;
  if (wait > 0) await sleep(wait);
}

function copilotEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...u.env, HOME: home, XDG_CACHE_HOME: COPILOT_CACHE, COPILOT_AUTO_UPDATE: "false", NO_COLOR: "1", ...extra };
}

/** `copilot -p` against the scripted model: the session's tools, and what each tool call returned. */
async function copilotSession(cwd: string, env: NodeJS.ProcessEnv, args: string[] = []) {
  const model = await scriptedModel("chat", "configuration_view", tokenExpires);
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

describe("Codex (npm @openai/codex)", () => {
  const CODEX = join(BINS, "codex");
  const codexEnv = () => ({ ...u.env, CODEX_HOME: join(u.home, ".codex"), NO_COLOR: "1" });

  it("user scope: a codex exec session calls the tool through the proxy, and again after the token expired", async () => {
    const add = await u.run(["add-client", "codex", "--profile", "k8s.dev"], { env: codexEnv() });
    expect(add.code, add.stderr).toBe(0);
    const model = await scriptedModel("responses", "configuration_view", tokenExpires);
    try {
      const before = sb.grants.client_credentials ?? 0;
      // Codex's own model-provider settings (docs/config.md, model_providers), pointed at the scripted model.
      const provider = `model_providers.scripted={ name = "scripted", base_url = "${model.url}", wire_api = "responses" }`;
      const r = await runIn(project("cx"), CODEX, ["exec", "--skip-git-repo-check", "-c", 'model_provider="scripted"', "-c", provider, "-c", 'model="scripted"', "-c", 'approval_policy="never"', "Show the Kubernetes configuration."], codexEnv(), 180_000);
      expect(model.tools().filter((t) => t.includes("configuration_view")), r.stdout + r.stderr + JSON.stringify(model.tools())).toHaveLength(1);
      expect(model.results).toHaveLength(2);
      for (const res of model.results) expect(res).toContain("dummy");
      expect((sb.grants.client_credentials ?? 0) - before).toBeGreaterThanOrEqual(2);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      await model.close();
    }
    expect((await u.run(["remove-client", "codex", "--name", "k8s-dev"], { env: codexEnv() })).code).toBe(0);
  }, 240_000);
});

describe("Claude Code (npm @anthropic-ai/claude-code) and the shared project .mcp.json", () => {
  it("the default project entry (the proxy) connects in claude mcp list too", async () => {
    const proj = project("cl");
    const add = await runIn(proj, process.execPath, [BIN, "add-client", "claude", "--scope", "project", "--profile", "k8s.dev"], u.env);
    expect(add.code, add.stderr).toBe(0);
    // Claude Code runs a project's servers once the folder is trusted and they are approved: what
    // accepting its trust dialog and approving the server record in ~/.claude.json.
    const cfg = join(u.home, ".claude.json");
    let prev: { projects?: Record<string, unknown> } = {};
    try {
      prev = JSON.parse(readFileSync(cfg, "utf8"));
    } catch {
      /* none yet */
    }
    writeFileSync(cfg, JSON.stringify({ ...prev, projects: { ...prev.projects, [proj]: { hasTrustDialogAccepted: true, enabledMcpjsonServers: ["k8s-dev"] } } }));
    const list = await runIn(proj, join(BINS, "claude"), ["mcp", "list"], u.env);
    expect(list.stdout, list.stderr + k8s.logs()).toMatch(/k8s-dev: mcp-auth proxy .*Connected/);
  }, 120_000);
});
