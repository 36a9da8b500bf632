import type { Command } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { checkProfileName, removeProfile, saveProfile } from "../core/profiles.js";
import { readSecret } from "../io/secret-input.js";
import { checkResource, checkUrl } from "../oauth/client.js";
import { AUTH_METHODS, GRANTS, normalizeIssuer, splitScopes, type Grant, type ProfileData, type TokenAuthMethod } from "../target.js";
import { choice } from "./shared.js";

export function registerProfiles(program: Command, getCtx: () => Context): void {
  const profiles = program.command("profiles").description("manage saved profiles (issuer, client, grant, scopes)");

  profiles
    .command("add <name>")
    .description("save a profile; its client secret goes to the secret store")
    .requiredOption("--issuer <url>", "the authorization server's issuer URL")
    .requiredOption("--client-id <id>", "the OAuth client id")
    .option("--client-secret-stdin", "read the client secret from stdin (a hidden prompt on a terminal)")
    .option("--client-secret-env <VAR>", "read the client secret from $VAR now and store it")
    .addOption(choice("--grant <grant>", "how tokens are obtained", GRANTS))
    .option("--scope <scope...>", "scopes to request")
    .option("--resource <uri>", "RFC 8707 resource indicator (usually the MCP server URL)")
    .option("--audience <aud>", "audience parameter, for IdPs that use one")
    .option("--mcp-url <url>", "the MCP server this profile is for")
    .option("--redirect-port <port>", "fixed loopback port for browser logins")
    .addOption(choice("--auth-method <method>", "token endpoint client authentication", AUTH_METHODS))
    .option("--kind <provider>", "provider kind", "oidc")
    .option("--default", "make it the default profile")
    .option("--force", "replace an existing profile of that name")
    .action(async (name: string, o) => {
      const ctx = getCtx();
      checkProfileName(name);
      checkUrl(o.issuer, "--issuer", ctx.allowHttp, "issuer");
      if (o.mcpUrl) checkUrl(o.mcpUrl, "--mcp-url", ctx.allowHttp, "resource");
      if (o.resource) checkResource(o.resource, "--resource");
      const secret = await readSecret(ctx, { stdin: o.clientSecretStdin, env: o.clientSecretEnv }, "client secret", "client-secret");
      const grant: Grant = o.grant ?? (secret ? "client_credentials" : "authorization_code");
      const hadSecret = Boolean(ctx.config().profiles[name]?.secretStore) && o.force; // kept by saveProfile
      if (grant === "client_credentials" && !secret && !hadSecret) {
        throw new UsageError("client credentials need a client secret", { hint: "pass --client-secret-stdin or --client-secret-env VAR" });
      }
      let redirectPort: number | undefined;
      if (o.redirectPort !== undefined) {
        redirectPort = Number(o.redirectPort);
        if (!Number.isInteger(redirectPort) || redirectPort < 1 || redirectPort > 65535) throw new UsageError(`--redirect-port must be 1-65535, got "${o.redirectPort}"`);
      }
      const data: ProfileData = {
        provider: o.kind,
        issuer: normalizeIssuer(o.issuer),
        clientId: o.clientId,
        grant,
        scopes: splitScopes(o.scope),
        resource: o.resource,
        audience: o.audience,
        mcpUrl: o.mcpUrl,
        redirectPort,
        tokenEndpointAuthMethod: o.authMethod as TokenAuthMethod | undefined,
      };
      const saved = await saveProfile(ctx, { name, data, clientSecret: secret, force: o.force, makeDefault: o.default });
      ctx.info(`Saved profile "${name}" (${grant}${saved.secretStore ? `, client secret in the ${saved.secretStore} store` : ""}).`);
      ctx.info(grant === "client_credentials" ? `Try: mcp-auth token --profile ${name}` : `Next: mcp-auth login ${name}`);
    });

  profiles
    .command("list")
    .alias("ls")
    .description("list profiles")
    .option("--json", "machine-readable output")
    .option("-q, --quiet", "names only, one per line")
    .action((o) => {
      const ctx = getCtx();
      const cfg = ctx.config();
      if (o.quiet) return void ctx.io.out.write(Object.keys(cfg.profiles).map((n) => `${n}\n`).join(""));
      const rows = Object.entries(cfg.profiles).map(([name, p]) => ({ name, default: cfg.defaultProfile === name, provider: p.provider, grant: p.grant, issuer: p.issuer, clientId: p.clientId }));
      if (o.json) return void ctx.io.out.write(JSON.stringify(rows, null, 2) + "\n");
      if (!rows.length) return void ctx.io.out.write("No profiles. Create one with: mcp-auth profiles add NAME --issuer URL --client-id ID\n");
      const w = Math.max(...rows.map((r) => r.name.length)) + 2;
      for (const r of rows) ctx.io.out.write(`${(r.default ? "* " : "  ") + r.name.padEnd(w)}${r.provider.padEnd(10)}${r.grant.padEnd(20)}${r.issuer}\n`);
    });

  profiles
    .command("show <name>")
    .description("show a profile (never its secrets)")
    .option("--json", "machine-readable output")
    .action((name: string, o) => {
      const ctx = getCtx();
      const p = ctx.config().profiles[name];
      if (!p) throw new UsageError(`no profile named "${name}"`);
      const view = { name, ...p, clientSecret: p.secretStore ? `stored (${p.secretStore})` : "none" };
      delete (view as { secretStore?: unknown }).secretStore;
      if (o.json) return void ctx.io.out.write(JSON.stringify(view, null, 2) + "\n");
      for (const [k, v] of Object.entries(view)) if (v !== undefined) ctx.io.out.write(`${k}: ${Array.isArray(v) ? v.join(" ") : typeof v === "object" ? JSON.stringify(v) : v}\n`);
    });

  profiles
    .command("use <name>")
    .description("make a profile the default")
    .action(async (name: string) => {
      const ctx = getCtx();
      await ctx.updateConfig((cfg) => {
        if (!cfg.profiles[name]) throw new UsageError(`no profile named "${name}"`);
        cfg.defaultProfile = name;
      });
      ctx.info(`Default profile: ${name}`);
    });

  profiles
    .command("remove <name>")
    .alias("rm")
    .description("delete a profile, its client secret and its cached tokens")
    .action(async (name: string) => {
      const ctx = getCtx();
      await removeProfile(ctx, name);
      ctx.info(`Removed profile "${name}" and its secrets.`);
    });
}
