import type { Command } from "commander";
import type { Context } from "../context.js";
import { invocation } from "../io/invocation.js";
import { profilelessTokens } from "../core/session.js";
import { tokenState } from "../core/tokens.js";
import { targetFromProfile } from "../core/target.js";
import { oneLine } from "../io/sanitize.js";
import { profileFor, relative, type Run } from "./shared.js";

export interface StatusOptions {
  /** One profile only. */
  profile?: string;
  json?: boolean;
}

/** Profiles (and profile-less cached targets) and the state of their tokens; never a token or a secret. */
export async function runStatus(ctx: Context, o: StatusOptions): Promise<void> {
  const cfg = ctx.config();
  const now = ctx.now() / 1000;
  const only = o.profile ? profileFor(ctx, { profile: o.profile }).name : undefined;
  const state = (rec: { expires_at: number; refresh_store?: string } | null) => (!rec ? "none" : rec.expires_at > now ? "valid" : rec.refresh_store ? "expired-refreshable" : "expired");
  const rows = Object.entries(cfg.profiles)
    .filter(([name]) => only === undefined || name === only)
    .map(([name, p]) => {
      const rec = tokenState(ctx, targetFromProfile({ name, ...p }));
      return {
        profile: name as string | null,
        default: cfg.defaultProfile === name,
        provider: p.provider,
        grant: p.grant,
        issuer: p.issuer,
        mcp_url: p.mcpUrl ?? null,
        // The issuer is the authorization server; for a profile set up from an MCP URL it was discovered.
        authorization_server: p.extra?.discovered ? { issuer: p.issuer, discovered_from: String(p.extra.resourceMetadata ?? p.mcpUrl), registration: String(p.extra.registration ?? "") } : null,
        token: state(rec),
        expires_at: rec?.expires_at ?? null,
        scope: rec?.scope ?? null,
        refresh_token: rec?.refresh_store ? `stored (${rec.refresh_store})` : null,
        access_token_store: rec ? (rec.access_store ?? "file") : null,
        client_secret: p.secretStore ?? (p.clientSecretCommand ? "command" : null),
        client_id: undefined as string | undefined,
      };
    });
  // Tokens cached by `token --issuer … --client-id …` (CI), which have no profile to list them under.
  if (only === undefined) {
    for (const t of profilelessTokens(ctx)) {
      rows.push({
        profile: null,
        default: false,
        provider: "oidc",
        grant: "client_credentials",
        issuer: t.issuer,
        mcp_url: null,
        authorization_server: null,
        token: state(t),
        expires_at: t.expires_at,
        scope: t.scope ?? null,
        refresh_token: null,
        access_token_store: "file",
        client_secret: null,
        client_id: t.clientId,
      });
    }
  }
  if (o.json) return void ctx.io.out.write(JSON.stringify(rows.map(({ client_id, ...r }) => (client_id === undefined ? r : { ...r, client_id })), null, 2) + "\n");
  if (!rows.length) {
    const me = invocation(ctx.env);
    return ctx.io.print(`No profiles. Set one up with: ${me} init, or ${me} login <mcp-url>  (or try: ${me} sandbox --save)`);
  }
  // Values came from servers (a discovered issuer, granted scopes) or from config.json: one line each, no control sequences.
  const f = (v: unknown) => oneLine(String(v));
  for (const r of rows) {
    const when = r.expires_at ? ` (${r.token === "valid" ? "expires" : "expired"} ${relative(r.expires_at - now)}, ${new Date(r.expires_at * 1000).toISOString()})` : "";
    const head = r.profile === null ? `(no profile)  client ${f(r.client_id)}  ${f(r.grant)}  ${f(r.issuer)}` : `${r.profile}${r.default ? " (default)" : ""}  ${f(r.provider)}  ${f(r.grant)}  ${f(r.issuer)}`;
    const lines = [head, `  token: ${r.token}${when}`];
    if (r.mcp_url) lines.push(`  MCP server: ${f(r.mcp_url)}${r.authorization_server ? ` (authorization server discovered from ${f(r.authorization_server.discovered_from)})` : ""}`);
    if (r.scope) lines.push(`  scope: ${f(r.scope)}`);
    if (r.refresh_token) lines.push(`  refresh token: ${f(r.refresh_token)}`);
    if (r.client_secret) lines.push(r.client_secret === "command" ? "  client secret: from its command at each token request" : `  client secret: stored (${f(r.client_secret)})`);
    ctx.io.print(lines.join("\n"));
  }
}

export function registerStatus(program: Command, getCtx: () => Context, run: Run<StatusOptions> = runStatus): void {
  program
    .command("status [profile]")
    .description("list profiles (or one) and the state of their tokens, including profile-less cached tokens (never the tokens themselves)")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  mcp-auth status\n  mcp-auth status dev\n  mcp-auth status --json")
    .action((profile: string | undefined, o: { json?: boolean }) => run(getCtx(), { ...o, profile }));
}
