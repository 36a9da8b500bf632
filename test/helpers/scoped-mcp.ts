import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * An MCP server built with @modelcontextprotocol/sdk, protected the way the MCP authorization spec
 * (2025-11-25) describes, with what the sandbox's own server does not do:
 *  - its endpoint has a path (`/tenant/mcp`) and its RFC 9728 metadata is published only
 *    path-suffixed (`/.well-known/oauth-protected-resource/tenant/mcp`), not named in its challenge;
 *  - it requires `resource`: a token must carry its own URL in `aud` (the sandbox IdP's default
 *    resource is another server's URL, so a token requested without `resource` is refused);
 *  - tool `write-note` needs scope `mcp:write`: without it, 403 with
 *    `WWW-Authenticate: Bearer error="insufficient_scope", scope="mcp:read mcp:write", resource_metadata=…`
 *    (the spec's step-up example); `read-note` needs only `mcp:read`.
 */
export interface ScopedMcp {
  url: string;
  metadataUrl: string;
  /** How many requests were refused, by status. */
  refused: Record<number, number>;
  close(): Promise<void>;
}

export async function startScopedMcp(o: {
  issuer: string;
  scopesSupported?: string[];
  /** The scope write-note needs (default mcp:write). */
  writeScope?: string;
  /** Refuse write-note whatever the token has (a server no step-up can satisfy). */
  neverSatisfied?: boolean;
}): Promise<ScopedMcp> {
  const need = o.writeScope ?? "mcp:write";
  const jose = await import("jose");
  const jwks = jose.createRemoteJWKSet(new URL(`${o.issuer}/jwks`));
  const { McpServer } = await import("@modelcontextprotocol/sdk/server/mcp.js");
  const { StreamableHTTPServerTransport } = await import("@modelcontextprotocol/sdk/server/streamableHttp.js");
  const refused: Record<number, number> = {};
  let url = "";
  let metadataUrl = "";

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => void handle(req, res, Buffer.concat(chunks).toString("utf8")));
  });
  const deny = (res: ServerResponse, status: number, params: string[]) => {
    refused[status] = (refused[status] ?? 0) + 1;
    // The 401s name no metadata URL (clients must find it path-suffixed); the 403 follows the spec's step-up example.
    const all = status === 403 ? [...params, `resource_metadata="${metadataUrl}"`] : params;
    res.writeHead(status, { "www-authenticate": `Bearer${all.length ? ` ${all.join(", ")}` : ""}`, "content-type": "application/json" });
    res.end(JSON.stringify({ error: status === 403 ? "insufficient_scope" : "invalid_token" }));
  };

  async function handle(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/.well-known/oauth-protected-resource/tenant/mcp") {
      res.writeHead(200, { "content-type": "application/json" });
      return void res.end(JSON.stringify({ resource: url, authorization_servers: [o.issuer], scopes_supported: o.scopesSupported ?? ["mcp:read"], bearer_methods_supported: ["header"] }));
    }
    if (path !== "/tenant/mcp") return void res.writeHead(404).end("Not found");
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    if (!m) return deny(res, 401, []);
    let scopes: string[];
    try {
      const { payload } = await jose.jwtVerify(m[1]!, jwks, { issuer: o.issuer, audience: url });
      scopes = String(payload.scope ?? "").split(" ");
    } catch (e) {
      return deny(res, 401, ['error="invalid_token"', `error_description="${(e as Error).message.replace(/"/g, "'")}"`]);
    }
    let msg: { method?: string; params?: { name?: string } } = {};
    try {
      msg = JSON.parse(body) as typeof msg;
    } catch {
      /* the transport answers malformed bodies itself */
    }
    if (msg.method === "tools/call" && msg.params?.name === "write-note" && (o.neverSatisfied || !scopes.includes(need))) {
      return deny(res, 403, ['error="insufficient_scope"', `scope="mcp:read ${need}"`, `error_description="write-note needs ${need}"`]);
    }
    const mcp = new McpServer({ name: "scoped-mcp", version: "1.0.0" });
    mcp.registerTool("read-note", { description: "Reads the note" }, async () => ({ content: [{ type: "text", text: `note (scopes: ${scopes.join(" ")})` }] }));
    mcp.registerTool("write-note", { description: "Writes the note (needs mcp:write)" }, async () => ({ content: [{ type: "text", text: `written (scopes: ${scopes.join(" ")})` }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
  }

  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  url = `${base}/tenant/mcp`;
  metadataUrl = `${base}/.well-known/oauth-protected-resource/tenant/mcp`;
  return {
    url,
    metadataUrl,
    refused,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
