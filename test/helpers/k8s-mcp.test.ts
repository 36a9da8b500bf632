import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandbox, type Sandbox } from "../../src/sandbox/server.js";
import { mcpInitialize, startKubernetesMcp, type KubernetesMcp } from "./k8s-mcp.js";

const AUDIENCE = "https://k8s-mcp.test.invalid/mcp";

/** A client_credentials token from the sandbox IdP whose `aud` is `resource`. */
async function token(sb: Sandbox, resource: string): Promise<string> {
  const { clientId, clientSecret } = sb.clients.m2m;
  const res = await fetch(`${sb.issuer}/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`,
    },
    body: new URLSearchParams({ grant_type: "client_credentials", scope: "mcp:read", resource }),
  });
  const json = (await res.json()) as { access_token?: string };
  if (!res.ok || !json.access_token) throw new Error(`token request failed: ${res.status} ${JSON.stringify(json)}`);
  return json.access_token;
}

describe("kubernetes-mcp-server (real binary) behind the sandbox IdP", () => {
  let sb: Sandbox;
  let mcp: KubernetesMcp;

  beforeAll(async () => {
    sb = await startSandbox(); // must be up first: the server does OIDC discovery at startup
    mcp = await startKubernetesMcp({ issuer: sb.issuer, audience: AUDIENCE });
  }, 30_000);

  afterAll(async () => {
    await mcp?.stop();
    await sb?.close();
  });

  it("serves the MCP endpoint at /mcp on 127.0.0.1", () => {
    expect(mcp.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  });

  it("accepts a token with the configured audience (200)", async () => {
    const t = await token(sb, AUDIENCE);
    expect(decodeJwt(t).aud).toBe(AUDIENCE);
    const res = await mcpInitialize(mcp.url, t);
    expect(res.status, mcp.logs()).toBe(200);
    expect(res.wwwAuthenticate).toBeNull();
    expect(res.body).toContain('"serverInfo"');
    expect(res.body).toContain("kubernetes-mcp-server");
  });

  it("rejects a token for another audience (401 invalid_token)", async () => {
    // a token from the same, trusted issuer: only the audience is wrong
    const t = await token(sb, "https://other-resource.test.invalid/");
    expect(decodeJwt(t).aud).toBe("https://other-resource.test.invalid/");
    const res = await mcpInitialize(mcp.url, t);
    expect(res.status).toBe(401);
    expect(res.wwwAuthenticate).toBe(
      `Bearer realm="Kubernetes MCP Server", audience="${AUDIENCE}", error="invalid_token"`,
    );
  });

  it("rejects a request without a token (401 missing_token)", async () => {
    const res = await mcpInitialize(mcp.url);
    expect(res.status).toBe(401);
    expect(res.wwwAuthenticate).toBe(
      `Bearer realm="Kubernetes MCP Server", audience="${AUDIENCE}", error="missing_token"`,
    );
  });

  it("publishes protected-resource metadata naming itself as the authorization server (it proxies the IdP's metadata)", async () => {
    const res = await fetch(new URL("/.well-known/oauth-protected-resource/mcp", mcp.url));
    expect(res.status).toBe(200);
    const meta = (await res.json()) as { resource?: string; authorization_servers?: string[] };
    // v0.0.66 (the pinned version): authorization_servers = the MCP server's own origin, which passes
    // /.well-known/oauth-authorization-server through from the IdP.
    expect(meta.authorization_servers).toEqual([new URL(mcp.url).origin]);
    const asMeta = (await (await fetch(new URL("/.well-known/oauth-authorization-server", mcp.url))).json()) as { issuer?: string };
    expect(asMeta.issuer).toBe(sb.issuer);
  });
});
