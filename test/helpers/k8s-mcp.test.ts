import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mcpInitialize, startKubernetesMcp, type KubernetesMcp } from "./k8s-mcp.js";

const AUDIENCE = "https://k8s-mcp.test.invalid/mcp";

interface Idp {
  issuer: string;
  token(resource: string): Promise<string>;
  close(): Promise<void>;
}

/** Minimal oidc-provider: one client_credentials client, JWT access tokens whose aud = the requested resource. */
async function startIdp(): Promise<Idp> {
  // oidc-provider ships no type declarations.
  const { default: Provider } = (await import("oidc-provider" as string)) as {
    default: new (issuer: string, config: Record<string, unknown>) => { callback(): http.RequestListener };
  };
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: "m2m",
        client_secret: "m2m-secret",
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        scope: "read",
      },
    ],
    scopes: ["openid", "read"],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string) => oneOf ?? AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: "read",
          audience: resource,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
    ttl: { ClientCredentials: 600 },
  });
  server.on("request", provider.callback());
  return {
    issuer,
    async token(resource) {
      const res = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          authorization: `Basic ${Buffer.from("m2m:m2m-secret").toString("base64")}`,
        },
        body: new URLSearchParams({ grant_type: "client_credentials", scope: "read", resource }),
      });
      const json = (await res.json()) as { access_token?: string };
      if (!res.ok || !json.access_token) throw new Error(`token request failed: ${res.status} ${JSON.stringify(json)}`);
      return json.access_token;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("kubernetes-mcp-server (real binary) behind oidc-provider", () => {
  let idp: Idp;
  let mcp: KubernetesMcp;

  beforeAll(async () => {
    idp = await startIdp(); // must be up first: the server does OIDC discovery at startup
    mcp = await startKubernetesMcp({ issuer: idp.issuer, audience: AUDIENCE });
  }, 30_000);

  afterAll(async () => {
    await mcp?.stop();
    await idp?.close();
  });

  it("serves the MCP endpoint at /mcp on 127.0.0.1", () => {
    expect(mcp.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  });

  it("accepts a token with the configured audience (200)", async () => {
    const token = await idp.token(AUDIENCE);
    const res = await mcpInitialize(mcp.url, token);
    expect(res.status, mcp.logs()).toBe(200);
    expect(res.wwwAuthenticate).toBeNull();
    expect(res.body).toContain('"serverInfo"');
    expect(res.body).toContain("kubernetes-mcp-server");
  });

  it("rejects a token for another audience (401 invalid_token)", async () => {
    const token = await idp.token("https://other-resource.test.invalid/");
    const res = await mcpInitialize(mcp.url, token);
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
    expect(asMeta.issuer).toBe(idp.issuer);
  });
});
