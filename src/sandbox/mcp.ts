import type { IncomingMessage, Server, ServerResponse } from "node:http";

/** Which MCP era the sandbox's server speaks (docs/mcp-2026-07-28.md). */
export type SandboxProtocol = "legacy" | "2026-07-28" | "both";

/**
 * The sandbox's MCP server: streamable HTTP at /mcp (stateless), guarded by bearer JWTs from the
 * sandbox IdP. `legacy` is the 2025-11-25 server of @modelcontextprotocol/sdk 1.x; `2026-07-28` the
 * official 2.x SDK (@modelcontextprotocol/server) with 2025-era requests rejected; `both` the 2.x SDK
 * serving both eras (its stateless legacy fallback). It behaves like a real protected MCP server: RFC 9728 metadata at
 * /.well-known/oauth-protected-resource[/mcp], and 401 + WWW-Authenticate with `resource_metadata`.
 */
/** Requests the sandbox served, by kind (tests read them to count IdP round trips). */
export interface Counts {
  total: number;
  discovery: number;
  token: number;
  device: number;
  revocation: number;
  registration: number;
  mcp: number;
}

export function mountMcp(server: Server, o: { issuer: string; mcpUrl: string; counts: Counts; protocol?: SandboxProtocol }): void {
  const origin = new URL(o.mcpUrl).origin;
  const metadataUrl = `${origin}/.well-known/oauth-protected-resource/mcp`;
  const metadata = JSON.stringify({
    resource: o.mcpUrl,
    authorization_servers: [o.issuer],
    bearer_methods_supported: ["header"],
    scopes_supported: ["mcp:read", "mcp:write"],
    resource_name: "mcp-auth sandbox MCP server",
  });
  let jwks: ReturnType<typeof import("jose").createRemoteJWKSet> | undefined;
  const protocol = o.protocol ?? "both";
  let modern: import("@modelcontextprotocol/server").McpHttpHandler | undefined;

  server.on("request", async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/.well-known/oauth-protected-resource" || path === "/.well-known/oauth-protected-resource/mcp") {
      return void res.writeHead(200, { "content-type": "application/json" }).end(metadata);
    }
    if (path !== "/mcp") return void res.writeHead(404, { "content-type": "text/plain" }).end("Not found");
    o.counts.mcp++;
    const jose = await import("jose");
    jwks ??= jose.createRemoteJWKSet(new URL(`${o.issuer}/jwks`));
    const auth = req.headers.authorization ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    const deny = (error?: string, description?: string) => {
      const params = [`resource_metadata="${metadataUrl}"`];
      if (error) params.unshift(`error="${error}"`, `error_description="${description}"`);
      res.writeHead(401, { "www-authenticate": `Bearer ${params.join(", ")}`, "content-type": "application/json" });
      res.end(JSON.stringify({ error: error ?? "unauthorized", error_description: description ?? "a bearer token is required" }));
    };
    if (!m) return deny();
    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jose.jwtVerify(m[1]!, jwks, { issuer: o.issuer, audience: o.mcpUrl }));
    } catch (e) {
      return deny("invalid_token", ((e as Error).message || "invalid token").replace(/"/g, "'"));
    }
    if (protocol !== "legacy") {
      const sdk = await import("@modelcontextprotocol/server");
      // The handler calls the factory per request; the request's own claims reach it through authInfo.
      modern ??= sdk.createMcpHandler(
        (ctx) => {
          const mcp = new sdk.McpServer({ name: "mcp-auth-sandbox", version: "1.0.0" });
          const c = (ctx.authInfo?.extra?.claims ?? {}) as Record<string, unknown>;
          mcp.registerTool("whoami", { description: "Who the bearer token says you are" }, async () => ({
            content: [{ type: "text" as const, text: JSON.stringify({ sub: c.sub, client_id: c.client_id, scope: c.scope, aud: c.aud }) }],
          }));
          return mcp;
        },
        { legacy: protocol === "both" ? "stateless" : "reject" },
      );
      const body = await readBody(req);
      if (body === undefined) return void res.writeHead(413, { "content-type": "text/plain" }).end("Request body too large");
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) headers.append(k, x);
      const request = new Request(o.mcpUrl, { method: req.method, headers, ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: new Uint8Array(body) }) });
      const scopes = typeof claims.scope === "string" ? claims.scope.split(" ") : [];
      const answer = await modern.fetch(request, { authInfo: { token: m[1]!, clientId: String(claims.client_id ?? ""), scopes, extra: { claims } } });
      const out: Record<string, string> = {};
      answer.headers.forEach((v, k) => (out[k] = v));
      res.writeHead(answer.status, out);
      if (answer.body) for await (const chunk of answer.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
      return void res.end();
    }
    const { McpServer } = await import("@modelcontextprotocol/sdk/server/mcp.js");
    const { StreamableHTTPServerTransport } = await import("@modelcontextprotocol/sdk/server/streamableHttp.js");
    const mcp = new McpServer({ name: "mcp-auth-sandbox", version: "1.0.0" });
    mcp.registerTool("whoami", { description: "Who the bearer token says you are" }, async () => ({
      content: [{ type: "text", text: JSON.stringify({ sub: claims.sub, client_id: claims.client_id, scope: claims.scope, aud: claims.aud }) }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
}

/** A request body of at most 1 MB (undefined past that). */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > 1024 * 1024) return undefined;
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}
