import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Counts } from "./server.js";

/**
 * The sandbox's MCP server: streamable HTTP at /mcp (stateless), guarded by bearer JWTs from the
 * sandbox IdP. It behaves like a real protected MCP server: RFC 9728 metadata at
 * /.well-known/oauth-protected-resource[/mcp], and 401 + WWW-Authenticate with `resource_metadata`.
 */
export function mountMcp(server: Server, o: { issuer: string; mcpUrl: string; counts: Counts }): void {
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
