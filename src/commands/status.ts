import type { Command } from "commander";
import type { Context } from "../context.js";
import { tokenState } from "../core/tokens.js";
import { targetFromProfile } from "../core/target.js";
import { relative, type Run } from "./shared.js";

/** Profiles and the state of their tokens; never a token or a secret. */
export async function runStatus(ctx: Context, o: { json?: boolean }): Promise<void> {
  const cfg = ctx.config();
  const now = ctx.now() / 1000;
  const rows = Object.entries(cfg.profiles).map(([name, p]) => {
    const rec = tokenState(ctx, targetFromProfile({ name, ...p }));
    const state = !rec ? "none" : rec.expires_at > now ? "valid" : rec.refresh_store ? "expired-refreshable" : "expired";
    return {
      profile: name,
      default: cfg.defaultProfile === name,
      provider: p.provider,
      grant: p.grant,
      issuer: p.issuer,
      mcp_url: p.mcpUrl ?? null,
      // The issuer is the authorization server; for a profile set up from an MCP URL it was discovered.
      authorization_server: p.extra?.discovered ? { issuer: p.issuer, discovered_from: p.extra.resourceMetadata ?? p.mcpUrl, registration: p.extra.registration ?? null } : null,
      token: state,
      expires_at: rec?.expires_at ?? null,
      scope: rec?.scope ?? null,
      refresh_token: rec?.refresh_store ? `stored (${rec.refresh_store})` : null,
      access_token_store: rec ? (rec.access_store ?? "file") : null,
      client_secret: p.secretStore ?? null,
    };
  });
  if (o.json) return void ctx.io.out.write(JSON.stringify(rows, null, 2) + "\n");
  if (!rows.length) {
    return void ctx.io.out.write("No profiles. Create one with: mcp-auth profiles add NAME --issuer URL --client-id ID  (or try: mcp-auth sandbox)\n");
  }
  for (const r of rows) {
    const when = r.expires_at ? ` (${r.token === "valid" ? "expires" : "expired"} ${relative(r.expires_at - now)}, ${new Date(r.expires_at * 1000).toISOString()})` : "";
    const lines = [`${r.profile}${r.default ? " (default)" : ""}  ${r.provider}  ${r.grant}  ${r.issuer}`, `  token: ${r.token}${when}`];
    if (r.mcp_url) lines.push(`  MCP server: ${r.mcp_url}${r.authorization_server ? ` (authorization server discovered from ${r.authorization_server.discovered_from})` : ""}`);
    if (r.scope) lines.push(`  scope: ${r.scope}`);
    if (r.refresh_token) lines.push(`  refresh token: ${r.refresh_token}`);
    if (r.client_secret) lines.push(`  client secret: stored (${r.client_secret})`);
    ctx.io.out.write(lines.join("\n") + "\n");
  }
}

export function registerStatus(program: Command, getCtx: () => Context, run: Run<{ json?: boolean }> = runStatus): void {
  program
    .command("status")
    .description("list profiles and the state of their tokens (never the tokens themselves)")
    .option("--json", "machine-readable output")
    .action((o: { json?: boolean }) => run(getCtx(), o));
}
