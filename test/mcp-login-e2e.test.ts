import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ROOT, user, type Sandboxed } from "./helpers/cli.js";
import { startKubernetesMcp, type KubernetesMcp } from "./helpers/k8s-mcp.js";
import { useSandbox } from "./helpers/sandbox.js";
import { startScopedMcp, type ScopedMcp } from "./helpers/scoped-mcp.js";

/**
 * Starting from nothing but an MCP server's URL, end to end through the CLI: the sandbox's real
 * OpenID provider (open DCR, resource indicators), real headless Chromium, the real
 * kubernetes-mcp-server, and an MCP server built with the official SDK that needs `resource` and
 * steps scopes up with 403 insufficient_scope.
 */
const BROWSER = `${process.execPath} ${join(ROOT, "test", "helpers", "browser.mjs")}`;
const hasChromium = existsSync("/usr/bin/chromium") || Boolean(process.env.CI);
const sb = useSandbox();
let u: Sandboxed;
afterEach(() => u?.cleanup());

const payload = (token: string) => JSON.parse(Buffer.from(token.trim().split(".")[1]!, "base64url").toString()) as Record<string, unknown>;

describe.skipIf(!hasChromium)("login <mcp-url> through headless Chromium", () => {
  it("discovery → DCR → PKCE → a token the server accepts; the profile is reused, the client too", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    sb.resetCounts();
    const r = await u.run(["login", sb.mcpUrl, "--browser-command", BROWSER]);
    expect(r.code, r.stderr).toBe(0);
    const name = `127.0.0.1-${new URL(sb.mcpUrl).port}`;
    expect(r.stderr).toContain(`saved as profile "${name}"`);
    expect(r.stderr).toContain("Login complete"); // the page Chromium landed on
    expect(sb.counts.registration).toBe(1);
    expect(sb.grants).toEqual({ authorization_code: 1 });

    const tok = await u.run(["token", "--profile", name]);
    expect(tok.code, tok.stderr).toBe(0);
    expect(payload(tok.stdout)).toMatchObject({ iss: sb.issuer, aud: sb.mcpUrl, sub: "alice" });

    // The server accepts it: every doctor check passes.
    const doc = await u.run(["doctor", "--profile", name, "--json"]);
    expect(doc.code, doc.stdout + doc.stderr).toBe(0);
    const checks = JSON.parse(doc.stdout).checks as Array<{ id: string; status: string }>;
    expect(checks.filter((c) => c.status === "fail")).toEqual([]);
    expect(checks.find((c) => c.id === "mcp.tools")?.status).toBe("pass");

    const status = JSON.parse((await u.run(["status", "--json"])).stdout)[0];
    expect(status).toMatchObject({ profile: name, mcp_url: sb.mcpUrl, authorization_server: { issuer: sb.issuer, registration: "dcr" }, token: "valid" });

    // Again: the profile and the registered client are reused.
    const again = await u.run(["login", sb.mcpUrl, "--browser-command", BROWSER]);
    expect(again.code, again.stderr).toBe(0);
    expect(sb.counts.registration).toBe(1);
    expect(sb.grants.authorization_code).toBe(2);
  });
});

describe("kubernetes-mcp-server (the kcp seed's server), which serves its IdP's metadata as its own", () => {
  let k8s: KubernetesMcp;
  beforeAll(async () => {
    k8s = await startKubernetesMcp({ issuer: sb.issuer, audience: "urn:kcp:mcp" });
  }, 60_000);
  afterAll(async () => k8s?.stop());

  it("profiles add --mcp-url: the real issuer is used after its own metadata confirmed it, with a note", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    const r = await u.run(["profiles", "add", "kcp", "--mcp-url", k8s.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`note: ${new URL(k8s.url).origin} serves the metadata of ${sb.issuer}`);
    const show = JSON.parse((await u.run(["profiles", "show", "kcp", "--json"])).stdout);
    expect(show).toMatchObject({ issuer: sb.issuer, mcpUrl: k8s.url, extra: { registration: "dcr", metadataProxiedBy: new URL(k8s.url).origin } });
  });
});

describe("an SDK-built MCP server: path-suffixed metadata, resource required, step-up on 403 insufficient_scope", () => {
  let scoped: ScopedMcp;
  beforeAll(async () => {
    scoped = await startScopedMcp({ issuer: sb.issuer });
  });
  afterAll(async () => scoped?.close());

  const lines = (...msgs: unknown[]) => msgs.map((m) => JSON.stringify(m)).join("\n") + "\n";
  const session = lines(
    { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "0" } } },
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "read-note", arguments: {} } },
    { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "write-note", arguments: {} } },
  );
  const answers = (stdout: string) => Object.fromEntries(stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: number }).map((m) => [m.id, m])) as Record<number, { result?: { content: Array<{ text: string }> }; error?: { message: string } }>;

  it("proxy: the 403 gets one step-up (challenged scopes added), the call succeeds, the profile keeps the scope", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    const add = await u.run(["profiles", "add", "cc", "--mcp-url", scoped.url, "--grant", "client_credentials", "--client-id", "sandbox-m2m", "--client-secret-stdin"], { input: "sandbox-secret" });
    expect(add.code, add.stderr).toBe(0);
    const show = JSON.parse((await u.run(["profiles", "show", "cc", "--json"])).stdout);
    expect(show).toMatchObject({ issuer: sb.issuer, resource: scoped.url, scopes: ["mcp:read"], extra: { resourceMetadata: scoped.metadataUrl } });

    const r = await u.run(["proxy", "--profile", "cc"], { input: session });
    expect(r.code, r.stderr).toBe(0);
    const a = answers(r.stdout);
    expect(a[2]!.result!.content[0]!.text).toBe("note (scopes: mcp:read)");
    expect(a[3]!.result!.content[0]!.text).toBe("written (scopes: mcp:read mcp:write)");
    expect(r.stderr).toContain("needs scope mcp:read mcp:write: getting a token that has it (step-up 1 of 2)");
    expect(scoped.refused[403]).toBe(1);
    const after = JSON.parse((await u.run(["profiles", "show", "cc", "--json"])).stdout);
    expect(after.scopes).toEqual(["mcp:read", "mcp:write"]);
    // The next session has the scope from the start: no more 403s.
    const r2 = await u.run(["proxy", "--profile", "cc"], { input: session });
    expect(answers(r2.stdout)[3]!.result!.content[0]!.text).toBe("written (scopes: mcp:read mcp:write)");
    expect(scoped.refused[403]).toBe(1);
  });

  it("a step-up the IdP cannot grant: the call fails with the IdP's reason, the profile is unchanged", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    const sc = await startScopedMcp({ issuer: sb.issuer, writeScope: "mcp:admin" }); // not a scope the sandbox grants
    try {
      const add = await u.run(["profiles", "add", "cc", "--mcp-url", sc.url, "--grant", "client_credentials", "--client-id", "sandbox-m2m", "--client-secret-stdin"], { input: "sandbox-secret" });
      expect(add.code, add.stderr).toBe(0);
      const r = await u.run(["proxy", "--profile", "cc"], { input: session });
      const a = answers(r.stdout);
      expect(a[2]!.result).toBeDefined();
      expect(a[3]!.error!.message).toContain("the IdP did not grant mcp:admin to cc's client (granted: mcp:read)");
      expect(JSON.parse((await u.run(["profiles", "show", "cc", "--json"])).stdout).scopes).toEqual(["mcp:read"]);
    } finally {
      await sc.close();
    }
  });

  it("a server no step-up satisfies: at most two step-ups, then its 403 is passed on", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    const sc = await startScopedMcp({ issuer: sb.issuer, neverSatisfied: true });
    try {
      const add = await u.run(["profiles", "add", "cc", "--mcp-url", sc.url, "--grant", "client_credentials", "--client-id", "sandbox-m2m", "--client-secret-stdin"], { input: "sandbox-secret" });
      expect(add.code, add.stderr).toBe(0);
      const write = (id: number) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "write-note", arguments: {} } });
      const r = await u.run(["proxy", "--profile", "cc"], { input: session + lines(write(4), write(5)) });
      const a = answers(r.stdout);
      for (const id of [3, 4, 5]) expect(a[id]!.error, JSON.stringify(a[id])).toBeDefined();
      expect(r.stderr.match(/getting a token that has it \(step-up \d of 2\)/g)).toEqual(["getting a token that has it (step-up 1 of 2)", "getting a token that has it (step-up 2 of 2)"]);
      expect(r.stderr.match(/after 2 step-ups; passing its refusal on/g)).toHaveLength(1);
      expect(sc.refused[403]).toBeGreaterThanOrEqual(5); // each call refused, retried after each step-up
    } finally {
      await sc.close();
    }
  });

  it("--no-resource: the token carries the IdP's default audience and this server refuses it", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    const add = await u.run(["profiles", "add", "nr", "--mcp-url", scoped.url, "--grant", "client_credentials", "--client-id", "sandbox-m2m", "--client-secret-stdin", "--no-resource"], { input: "sandbox-secret" });
    expect(add.code, add.stderr).toBe(0);
    const tok = await u.run(["token", "--profile", "nr"]);
    expect(payload(tok.stdout).aud).toBe(sb.mcpUrl); // the sandbox's default resource, not this server
    const doc = await u.run(["doctor", "--profile", "nr", "--json"]);
    expect(doc.code).toBe(1);
    const aud = (JSON.parse(doc.stdout).checks as Array<{ id: string; status: string; detail: string }>).find((c) => c.id === "token.audience")!;
    expect(aud.status).toBe("fail");
    expect(aud.detail).toContain(`the token's aud is ${sb.mcpUrl}, the server expects ${scoped.url}`);
  });
});
