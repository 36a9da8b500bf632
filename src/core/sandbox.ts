import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { profileOf } from "../profile.js";
import { saveProfile } from "./profiles.js";

/** The local playground: a real OpenID provider and a protected MCP server, optionally saved as two profiles. */
export interface SandboxOptions {
  /** 0: the port saved with the sandbox's profiles, if free, else any free port. */
  port: number;
  mcpPort: number;
  tokenTtl: number;
  save?: boolean;
  /** The MCP server's era (src/sandbox/mcp.ts). */
  protocol?: "legacy" | "2026-07-28" | "both";
}

/** The profiles `sandbox --save` writes (and the printed `profiles add` commands name). */
export const SANDBOX_PROFILES = ["sandbox", "sandbox-login"] as const;

/**
 * The ports the sandbox's saved profiles point at: a restarted sandbox listens there again, so the
 * profiles, the MCP client entries made from them (`claude mcp list`) and their cached tokens keep
 * working (the sandbox signs with oidc-provider's fixed development keys).
 */
export function savedSandboxPorts(ctx: Context): { port?: number; mcpPort?: number } {
  const cfg = ctx.config();
  const portOf = (url: string | undefined) => {
    if (!url || !URL.canParse(url)) return undefined;
    const u = new URL(url);
    return u.hostname === "127.0.0.1" && u.port ? Number(u.port) : undefined;
  };
  for (const name of SANDBOX_PROFILES) {
    const p = profileOf(cfg, name);
    const port = portOf(p?.issuer);
    if (port) return { port, mcpPort: portOf(p?.mcpUrl) };
  }
  return {};
}

export async function startSandboxProfiles(ctx: Context, o: SandboxOptions) {
  const { startSandbox } = await import("../sandbox/server.js");
  const start = (port: number, mcpPort: number) => startSandbox({ port, mcpPort, tokenTtl: o.tokenTtl, protocol: o.protocol });
  const saved = o.port || o.mcpPort ? {} : savedSandboxPorts(ctx);
  let sb: Awaited<ReturnType<typeof startSandbox>>;
  if (saved.port) {
    sb = await start(saved.port, saved.mcpPort ?? 0).catch((e: unknown) => {
      if (!(e instanceof UsageError)) throw e;
      // Taken (another sandbox, or anything else): a free port, and the profiles follow it when saved.
      ctx.warn(`the port saved with profile "sandbox" is in use (${e.message}); starting on free ports${o.save ? "" : ": the saved sandbox profiles (and MCP client entries made from them) point at the old ones until you restart with --save"}`);
      return start(0, 0);
    });
  } else {
    sb = await start(o.port, o.mcpPort);
  }
  // Unchanged profiles are left as they are: replacing one would drop its cached tokens (and a login's refresh token).
  const unchanged = (name: string, clientId: string) => {
    const p = profileOf(ctx.config(), name);
    return p?.issuer === sb.issuer && p.mcpUrl === sb.mcpUrl && p.resource === sb.mcpUrl && p.clientId === clientId && (name !== "sandbox" || Boolean(p.secretStore));
  };
  if (o.save && !(unchanged("sandbox", sb.clients.m2m.clientId) && unchanged("sandbox-login", sb.clients.cli.clientId))) {
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
