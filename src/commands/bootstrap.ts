import type { Command } from "commander";
import type { Context } from "../context.js";
import { SilentError } from "../errors.js";
import { getToken } from "../core/tokens.js";
import { targetFromProfile } from "../core/target.js";
import { peekClaims } from "../providers/http.js";
import { providers } from "../providers/index.js";
import type { Check } from "../providers/types.js";
import { relative } from "./shared.js";
import { profileOf } from "../target.js";

export function registerBootstrap(program: Command, getCtx: () => Context): void {
  const bootstrap = program
    .command("bootstrap")
    .description("create (or reuse) the OAuth client in your IdP and save a profile for it");
  for (const p of providers) {
    const cmd = bootstrap
      .command(p.id)
      .description(p.summary)
      .option("--profile <name>", "name of the profile to save", p.id)
      .option("--show-secret", "also print the client secret on stdout (it is stored either way)")
      .option("--no-verify", "skip the first token and the checks")
      .option("--json", "print the result as JSON on stdout");
    p.declare(cmd);
    cmd.action(async (o) => {
      const ctx = getCtx();
      const result = await p.bootstrap(ctx, o);
      const profile = result.profile ? profileOf(ctx.config(), result.profile) : undefined;
      const checks: Check[] = [];
      let token: string | undefined;
      if (o.verify !== false && result.profile && profile?.grant === "client_credentials") {
        const t = await getToken(ctx, targetFromProfile({ name: result.profile, ...profile }), { minTtl: 0, forceRefresh: true });
        token = t.access_token;
        const aud = peekClaims(t.access_token).aud;
        checks.push({ ok: true, what: "first token", detail: `${aud ? `aud ${JSON.stringify(aud)}, ` : ""}expires ${relative(t.expires_at - ctx.now() / 1000)}` });
      }
      checks.push(...(result.checks ?? []));
      if (o.verify !== false && p.verify) checks.push(...(await p.verify(ctx, o, result, token)));

      const lines = [`${p.title}: ${result.action}${result.profile ? ` — profile "${result.profile}"` : ""}`];
      for (const [k, v] of result.facts) lines.push(`  ${k}: ${v}`);
      for (const c of checks) {
        lines.push(`  ${c.ok ? "✓" : "✗"} ${c.what}${c.detail ? `: ${c.detail}` : ""}`);
        if (!c.ok && c.fix) lines.push(`      fix: ${c.fix}`);
      }
      if (result.notes?.length) lines.push("", ...result.notes);
      if (profile?.grant === "client_credentials") lines.push(`Get a token: mcp-auth token --profile ${result.profile}`);
      else if (profile) lines.push(`Next: mcp-auth login ${result.profile}`);
      ctx.info(lines.join("\n"));
      if (o.json) {
        ctx.io.out.write(
          JSON.stringify({ provider: p.id, profile: result.profile ?? null, action: result.action, facts: Object.fromEntries(result.facts), checks, ...result.json }) + "\n",
        );
      }
      if (o.showSecret && result.clientSecret) ctx.io.out.write(`${result.clientSecret}\n`);
      if (result.stdout) ctx.io.out.write(result.stdout);
      if (checks.some((c) => !c.ok)) throw new SilentError(1);
    });
  }
}
