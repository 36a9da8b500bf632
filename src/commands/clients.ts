import { existsSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { findClaudeCli } from "../clients/claude-cli.js";
import { CLIENTS } from "../plugins.js";
import { actionOf, applyAddClient, applyRemoveClient, entriesOfProfile, entrySnippet, listClients, planView, prepareAddClient, prepareRemoveClient, retargetEntries, type ClaudeCli, type Launcher } from "../core/clients.js";
import { oneLine } from "../io/sanitize.js";
import type { Run } from "./shared.js";

export interface AddClientOptions {
  client: string;
  profile?: string;
  name?: string;
  url?: string;
  scope?: string;
  strategy?: string;
  staticToken?: boolean;
  header?: string[];
  headerEnv?: string[];
  stdioCommand?: string;
  envName?: string;
  dryRun?: boolean;
  print?: boolean;
  link?: boolean;
  force?: boolean;
  json?: boolean;
}

export interface RemoveClientOptions {
  client: string;
  name: string;
  scope?: string;
  force?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

/** This mcp-auth as absolute paths: the node running it and its launcher script (bin/mcp-auth.js). */
export function selfLauncher(): Launcher {
  const argv1 = process.argv[1];
  if (argv1 && /^mcp-auth(\.js)?$/.test(basename(argv1))) return { node: process.execPath, script: realpathSync(argv1) };
  // In-process (tests): the package's bin, found above this module (src/commands/ or dist/).
  for (let d = dirname(fileURLToPath(import.meta.url)); dirname(d) !== d; d = dirname(d)) {
    const bin = join(d, "bin", "mcp-auth.js");
    if (existsSync(bin)) return { node: process.execPath, script: bin };
  }
  throw new Error("cannot find bin/mcp-auth.js");
}

function claudeCliFor(ctx: Context): ClaudeCli | null {
  return findClaudeCli(ctx.env, process.platform) ?? null;
}

async function showPlan(ctx: Context, changes: Parameters<typeof planView>[1], json: boolean | undefined): Promise<void> {
  ctx.io.out.write(await planView(ctx, changes, json));
}

export async function runAddClient(ctx: Context, o: AddClientOptions): Promise<void> {
  const claudeCli = claudeCliFor(ctx);
  const req = { ...o, preview: Boolean(o.print || o.dryRun), cwd: process.cwd(), platform: process.platform, launcher: selfLauncher(), claudeCli };
  const p = await prepareAddClient(ctx, req);
  const w = p.writer;
  for (const m of p.warnings) ctx.warn(m);
  if (p.spec.staticToken && !req.preview) ctx.warn(`--static-token writes a bearer token into ${p.path}; it stops working at ${p.expiresAt ? new Date(p.expiresAt * 1000).toISOString() : "its expiry"} and anyone who can read the file can use it until then`);
  if (o.print || o.link) {
    if (o.print) ctx.io.out.write(entrySnippet(p, req.cwd));
    if (o.link) {
      if (!w.link) throw new UsageError(`${w.title} has no install link`, { hint: `links exist for: ${CLIENTS.filter((c) => c.link).map((c) => c.id).join(", ")}` });
      ctx.io.out.write(w.link(p.spec.name, p.entry) + "\n");
    }
    return;
  }
  const shown = [p.changes[0]!];
  if (o.dryRun) {
    if (p.conflict && !o.force) ctx.warn(`${p.path} already has a different server named "${p.spec.name}": add-client would need --force`);
    if (p.via === "claude-cli" && actionOf(shown[0]!) !== "unchanged") ctx.info(`Would run: claude mcp add-json --scope ${p.spec.scope} ${p.spec.name} '…' (Claude Code then writes ${p.path} as shown)`);
    return showPlan(ctx, shown, o.json);
  }
  const done = await applyAddClient(ctx, p, req);
  const where = `${w.title} (${p.spec.scope} scope, ${p.path})`;
  if (o.json) {
    ctx.io.out.write(JSON.stringify({ client: w.id, scope: p.spec.scope, strategy: p.spec.strategy, name: p.spec.name, profile: p.spec.profile, url: p.spec.url, path: p.path, action: done.action, via: p.via, backup: done.backup, notes: p.entry.notes }, null, 2) + "\n");
  } else if (done.action === "unchanged") {
    ctx.info(`"${p.spec.name}" is already configured in ${where}.`);
  } else {
    ctx.info(`${p.conflict ? "Replaced" : p.replaces ? "Updated" : "Added"} "${p.spec.name}" in ${where}${p.via === "claude-cli" ? " through claude mcp add-json" : ""}.${done.backup ? ` Previous version: ${done.backup}` : ""}`);
  }
  if (!o.json) for (const n of p.entry.notes) ctx.info(n);
}

export async function runRemoveClient(ctx: Context, o: RemoveClientOptions): Promise<void> {
  const claudeCli = claudeCliFor(ctx);
  const req = { ...o, cwd: process.cwd(), platform: process.platform, claudeCli };
  const p = await prepareRemoveClient(ctx, req);
  if (o.dryRun) return showPlan(ctx, [p.changes[0]!], o.json);
  const done = p.found ? await applyRemoveClient(ctx, p, req) : { action: "unchanged" as const, backup: null };
  if (!p.found && p.changes[1]) await applyRemoveClient(ctx, p, req); // forget a stale record
  if (o.json) return void ctx.io.out.write(JSON.stringify({ client: p.writer.id, scope: p.scope, name: p.name, path: p.path, removed: p.found, exact: p.exact, restored: p.restored, action: done.action, backup: done.backup }, null, 2) + "\n");
  if (!p.found) return ctx.info(`No server "${p.name}" in ${p.writer.title} (${p.scope} scope, ${p.path}); nothing to remove.`);
  const how = p.exact ? "; the file is back as it was before add-client" : p.restored ? "; your own entry of that name, which it had replaced, is back" : "";
  const gone = done.action === "delete" ? " The file, which add-client had created, is deleted." : "";
  ctx.info(`Removed "${p.name}" from ${p.writer.title} (${p.scope} scope, ${p.path})${how}.${gone}${done.backup ? ` Previous version: ${done.backup}` : ""}`);
}

export async function runClients(ctx: Context, o: { json?: boolean }): Promise<void> {
  const rows = await listClients(ctx, { cwd: process.cwd(), platform: process.platform });
  if (o.json) return void ctx.io.out.write(JSON.stringify(rows, null, 2) + "\n");
  // Server names, URLs and profiles come from the config files, which a cloned project may have planted.
  for (const r of rows) {
    ctx.io.print(`${r.title} (${r.client}): ${r.installed ? "installed" : "not found"}`);
    for (const f of r.files) {
      if (!f.exists && !f.error) continue;
      ctx.io.print(`  ${f.scope}: ${oneLine(f.path)}${f.error ? `  (${oneLine(f.error)})` : ""}`);
      for (const s of f.servers) {
        const gone = s.profileMissing ? ` (no such profile: fix with mcp-auth add-client ${r.client} --scope ${f.scope} --profile P --name ${oneLine(s.name)} --force, or remove-client)` : "";
        ctx.io.print(`    ${oneLine(s.name)}${s.mcpAuth ? ` -> mcp-auth${s.profile ? ` profile ${oneLine(s.profile)}` : ""}` : ""}${s.url ? `  ${oneLine(s.url)}` : ""}${gone}`);
      }
    }
  }
}

/**
 * Before `profiles remove NAME`: the client entries that use the profile are listed and, with --yes or
 * when the person says so, removed as remove-client would; otherwise kept, and the message says so.
 */
export async function removeEntriesOfProfile(ctx: Context, profile: string, o: { yes?: boolean }): Promise<void> {
  if (!Object.hasOwn(ctx.config().profiles, profile)) return; // profiles remove reports it
  const where = { cwd: process.cwd(), platform: process.platform };
  const entries = await entriesOfProfile(ctx, profile, where);
  if (!entries.length) return;
  ctx.info(`Client entries that use profile "${profile}":`);
  for (const e of entries) ctx.info(`  ${e.title} (${e.scope} scope): ${oneLine(e.name)} in ${oneLine(e.path)}`);
  const remove = o.yes || (ctx.io.interactive && (await ctx.io.prompter.confirm(`Remove ${entries.length === 1 ? "it" : `these ${entries.length}`} too?`, { default: true })));
  if (!remove) {
    ctx.info(`Kept ${entries.length === 1 ? "it" : "them"} (pass --yes to remove them with the profile); without the profile ${entries.length === 1 ? "it fails" : "they fail"} to get a token. Remove one later with: mcp-auth remove-client CLIENT --scope SCOPE --name NAME`);
    return;
  }
  const claudeCli = claudeCliFor(ctx);
  for (const e of entries) {
    const req = { client: e.client, name: e.name, scope: e.scope, cwd: where.cwd, platform: where.platform, claudeCli };
    const p = await prepareRemoveClient(ctx, req);
    if (p.found) await applyRemoveClient(ctx, p, req);
    ctx.info(`Removed "${oneLine(e.name)}" from ${e.title} (${e.scope} scope).`);
  }
}

/** After `profiles rename FROM TO`: the client entries that used FROM use TO. */
export async function retargetEntriesOfProfile(ctx: Context, from: string, to: string): Promise<void> {
  const where = { cwd: process.cwd(), platform: process.platform };
  const entries = await entriesOfProfile(ctx, from, where);
  if (!entries.length) return;
  await retargetEntries(ctx, entries, from, to, { ...where, claudeCli: claudeCliFor(ctx) });
  for (const e of entries) ctx.info(`${e.title} (${e.scope} scope): "${oneLine(e.name)}" now uses profile "${to}".`);
}

export interface ClientsRuns {
  add: Run<AddClientOptions>;
  remove: Run<RemoveClientOptions>;
  list: Run<{ json?: boolean }>;
}

const RUNS: ClientsRuns = { add: runAddClient, remove: runRemoveClient, list: runClients };

export function registerClients(program: Command, getCtx: () => Context, runs: Partial<ClientsRuns> = {}): void {
  const r = { ...RUNS, ...runs };
  const ids = CLIENTS.map((c) => c.id).join(", ");
  program
    .command("add-client <client>")
    .description(`configure an MCP client to get its token from mcp-auth (${ids})`)
    .option("-p, --profile <name>", "the mcp-auth profile (default: the default profile)")
    .option("--name <server>", "server name in the client (default: the profile name)")
    .option("--url <url>", "the MCP server URL (default: the profile's --mcp-url; another URL must be under it or its resource)")
    .option("--scope <scope>", "user | project | local (default: the client's own default)")
    .option("--strategy <strategy>", "helper (Claude Code) | proxy (stdio bridge) | header | native (the client's own OAuth login, with the profile's public client)")
    .option("--static-token", "with --strategy header: write the current token itself (it expires)")
    .option("--header <header>", "helper/proxy: an extra header beside the token, 'Name: value' (repeatable; written into the entry)", (v: string, all: string[]) => [...all, v], [])
    .option("--header-env <Name=VAR>", "helper/proxy: an extra header whose value is read from $VAR at run time (repeatable; only the name is written)", (v: string, all: string[]) => [...all, v], [])
    .option("--stdio-command <command>", "a stdio MCP server that reads its token from the environment: the entry runs it under mcp-auth exec (split into words, no shell)")
    .option("--env-name <var>", "with --stdio-command: the variable the server reads its token from (default MCP_AUTH_TOKEN)")
    .option("--dry-run", "show the change as a diff, write nothing")
    .option("--print", "print the entry instead of writing it")
    .option("--link", "print the client's install link (Cursor, VS Code)")
    .option("--force", "replace a different entry of that name")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  mcp-auth add-client claude --profile dev --scope user\n  mcp-auth add-client cursor --profile dev --dry-run\n  mcp-auth add-client vscode --scope project --strategy header")
    .action((client: string, o: Omit<AddClientOptions, "client">) => r.add(getCtx(), { ...o, client }));
  program
    .command("remove-client <client>")
    .description("remove a server entry that add-client wrote (the file comes back byte for byte when untouched since)")
    .requiredOption("--name <server>", "server name in the client")
    .option("--scope <scope>", "user | project | local (default: the client's own default)")
    .option("--force", "remove it even if it does not use mcp-auth")
    .option("--dry-run", "show the change as a diff, write nothing")
    .option("--json", "machine-readable output")
    .action((client: string, o: Omit<RemoveClientOptions, "client">) => r.remove(getCtx(), { ...o, client }));
  program
    .command("clients")
    .description("list supported MCP clients, their config files, and which entries use which mcp-auth profile")
    .option("--json", "machine-readable output")
    .action((o: { json?: boolean }) => r.list(getCtx(), o));
}
