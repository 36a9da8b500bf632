import type { Context } from "../context.js";
import { saveProfile } from "./profiles.js";

/** The local playground: a real OpenID provider and a protected MCP server, optionally saved as two profiles. */
export interface SandboxOptions {
  port: number;
  mcpPort: number;
  tokenTtl: number;
  save?: boolean;
  /** The MCP server's era (src/sandbox/mcp.ts). */
  protocol?: "legacy" | "2026-07-28" | "both";
}

export async function startSandboxProfiles(ctx: Context, o: SandboxOptions) {
  const { startSandbox } = await import("../sandbox/server.js");
  const sb = await startSandbox({ port: o.port, mcpPort: o.mcpPort, tokenTtl: o.tokenTtl, protocol: o.protocol });
  if (o.save) {
    await saveProfile(ctx, {
      name: "sandbox",
      force: true,
      clientSecret: sb.clients.m2m.clientSecret,
      data: { provider: "oidc", issuer: sb.issuer, clientId: sb.clients.m2m.clientId, grant: "client_credentials", resource: sb.mcpUrl, mcpUrl: sb.mcpUrl },
    });
    await saveProfile(ctx, {
      name: "sandbox-login",
      force: true,
      data: { provider: "oidc", issuer: sb.issuer, clientId: sb.clients.cli.clientId, grant: "authorization_code", scopes: ["openid", "mcp:read"], resource: sb.mcpUrl, mcpUrl: sb.mcpUrl },
    });
  }
  return sb;
}
