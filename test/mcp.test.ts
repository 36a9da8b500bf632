import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandbox, type Sandbox } from "../src/sandbox/server.js";
import { user, type Sandboxed } from "./helpers/cli.js";
import { mcpInitialize, startKubernetesMcp, type KubernetesMcp } from "./helpers/k8s-mcp.js";

/** Tokens from `mcp-auth token` against real MCP servers that validate them. */
const KCP_AUDIENCE = "urn:kcp:mcp";
let sb: Sandbox;
let k8s: KubernetesMcp;
let u: Sandboxed;

beforeAll(async () => {
  sb = await startSandbox();
  // kubernetes-mcp-server as in the kcp guide: require_oauth, authorization_url = issuer, oauth_audience.
  k8s = await startKubernetesMcp({ issuer: sb.issuer, audience: KCP_AUDIENCE });
  u = user({ MCP_AUTH_STORE: "file", MCP_AUTH_CLIENT_SECRET: "sandbox-secret" });
});
afterAll(async () => {
  await k8s?.stop();
  await sb?.close();
  u?.cleanup();
});

async function token(resource: string): Promise<string> {
  const r = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--resource", resource]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe("kubernetes-mcp-server (require_oauth)", () => {
  it("accepts a token for its audience: initialize answers 200", async () => {
    const res = await mcpInitialize(k8s.url, await token(KCP_AUDIENCE));
    expect(res.status, k8s.logs()).toBe(200);
    expect(res.body).toContain('"serverInfo"');
  });

  it("rejects a token for another audience with 401 invalid_token", async () => {
    const res = await mcpInitialize(k8s.url, await token(sb.mcpUrl));
    expect(res.status).toBe(401);
    expect(res.wwwAuthenticate).toContain('error="invalid_token"');
  });

  it("headers-json output is what a headersHelper hands to the client", async () => {
    const r = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--resource", KCP_AUDIENCE, "--format", "headers-json"]);
    const headers = JSON.parse(r.stdout) as { Authorization: string };
    const res = await fetch(k8s.url, {
      method: "POST",
      headers: { ...headers, Accept: "application/json, text/event-stream", "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "0" } } }),
    });
    expect(res.status).toBe(200);
  });
});

describe("the sandbox MCP server", () => {
  it("publishes RFC 9728 metadata and answers 401 with resource_metadata without a token", async () => {
    const res = await mcpInitialize(sb.mcpUrl);
    expect(res.status).toBe(401);
    expect(res.wwwAuthenticate).toMatch(/resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/);
    const meta = await (await fetch(new URL("/.well-known/oauth-protected-resource/mcp", sb.mcpUrl))).json();
    expect(meta).toMatchObject({ resource: sb.mcpUrl, authorization_servers: [sb.issuer] });
  });

  it("serves an MCP client that carries mcp-auth's token, and refuses a wrong-audience one", async () => {
    const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
    const { StreamableHTTPClientTransport } = await import("@modelcontextprotocol/sdk/client/streamableHttp.js");
    const tok = await token(sb.mcpUrl);
    const client = new Client({ name: "test", version: "0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(sb.mcpUrl), { requestInit: { headers: { Authorization: `Bearer ${tok}` } } }));
    const result = await client.callTool({ name: "whoami", arguments: {} });
    const who = JSON.parse((result.content as Array<{ text: string }>)[0]!.text);
    expect(who).toMatchObject({ client_id: "sandbox-m2m", aud: sb.mcpUrl });
    await client.close();
    const wrong = await mcpInitialize(sb.mcpUrl, await token(KCP_AUDIENCE));
    expect(wrong.status).toBe(401);
    expect(wrong.wwwAuthenticate).toContain('error="invalid_token"');
  });
});
