import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync, rmdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Context } from "../context.js";
import { FileError, McpAuthError, UsageError } from "../errors.js";
import { applyUndo, editJsonc, getAt, isObject, loadJsonc, parseJsonc, sameJson, undoOf, type JsonEdit, type JsonObject, type Undo } from "../store/jsonc.js";
import { loadToml, parseToml, removeTomlTable, renderTable, setTomlTable } from "../store/toml.js";
import { loadYaml, parseYaml, removeYamlEntry, renderYaml, setYamlEntry } from "../store/yaml.js";
import { PACKAGE_NAME } from "../io/invocation.js";
import { configUrl, joinFor, shQuote, SCOPES, STRATEGIES, writerIn, type ClaudeCli, type ClientWriter, type Entry, type EntrySpec, type Scope, type Strategy } from "./client.js";
import { applyPlan } from "../store/apply.js";
import { backupPolicy, realTarget } from "../store/backup.js";
export type { ClaudeCli } from "./client.js";
export { actionOf } from "../store/plan.js";
import { backupPath } from "../store/backup.js";
import { actionOf, planFile, planToJson, readForPlan, renderPlan, type FileChange, type PlanAction } from "../store/plan.js";
import { configDir } from "../paths.js";
import { selectProfile, type Profile } from "../profile.js";
import { headerSpecs, type HeaderSpec } from "../headers.js";
import { stdioServer } from "./argv.js";
import { assertCovers } from "./covers.js";
import { getToken, tokenState } from "./tokens.js";
import { targetFromProfile } from "./target.js";

/**
 * add-client / remove-client / clients: wire an MCP client to an mcp-auth profile. Every file change
 * goes through plan → apply (src/store/): atomic, mode kept, backed up, refused when the file changed
 * meanwhile. What we add is recorded in `<configDir>/clients.json` (the edit that undoes it, and
 * a hash of the file it applies to), so remove-client gives back the file byte for byte.
 */

/** How to start this mcp-auth with absolute paths (user/local-scope entries). */
export interface Launcher {
  node: string;
  script: string;
}

export interface AddClientRequest {
  client: string;
  profile?: string;
  name?: string;
  url?: string;
  scope?: string;
  strategy?: string;
  staticToken?: boolean;
  /** Extra headers: `--header 'Name: value'`, `--header-env Name=VAR`. */
  header?: string[];
  headerEnv?: string[];
  /** The entry is only shown (--print, --dry-run): a static token is not fetched, `<token>` stands in. */
  preview?: boolean;
  /** The entry becomes an install link, which is made to be passed around. */
  link?: boolean;
  /** `mcp-auth serve`'s loopback endpoint: a header entry with its URL and secret in place of the server and a token. */
  endpoint?: { url: string; secret: string };
  /** A stdio MCP server's command line, run by `mcp-auth exec` with the token in `envName`. */
  stdioCommand?: string;
  envName?: string;
  force?: boolean;
  cwd: string;
  platform: string;
  launcher: Launcher;
  /** Claude Code's CLI for user/local scope (null: edit ~/.claude.json ourselves). */
  claudeCli: ClaudeCli | null;
}

export interface PreparedAdd {
  writer: ClientWriter;
  spec: EntrySpec;
  entry: Entry;
  path: string;
  /** The client's file (first) and our record of the entry. */
  changes: FileChange[];
  /** An entry of that name exists and differs. */
  replaces: boolean;
  /** ... and is not mcp-auth's own entry for this profile (an older path, another strategy): it needs --force. */
  conflict: boolean;
  via: "file" | "claude-cli";
  warnings: string[];
  /** The static token's expiry (unix s). */
  expiresAt?: number;
  /** What clients.json will say about the entry, under which key. */
  record?: { key: string; rec: LedgerRecord };
}

const NAME_RE = /^[A-Za-z0-9_-]+$/;

/** The client's file parsed: JSONC, TOML (Codex) or YAML (Goose), whose edits go through toml.ts and yaml.ts instead. */
function parseConfig(w: ClientWriter, text: string, path: string): JsonObject {
  return w.format === "toml" ? parseToml(text, path) : w.format === "yaml" ? parseYaml(text, path) : parseJsonc(text, path);
}

async function loadFormats(w?: ClientWriter): Promise<void> {
  await loadJsonc();
  if (!w || w.format === "toml") await loadToml();
  if (!w || w.format === "yaml") await loadYaml();
}

/** A profile name as a server name clients accept (Claude Code refuses dots). */
export function serverName(profile: string): string {
  return profile.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "");
}

function pick<T extends string>(what: string, value: string | undefined, allowed: readonly T[], all: readonly string[], w: ClientWriter, fallback: T): T {
  if (value === undefined) return fallback;
  if (!all.includes(value)) throw new UsageError(`unknown ${what} "${value}"`, { hint: `choose one of: ${all.join(", ")}` });
  if (!allowed.includes(value as T)) throw new UsageError(`${w.title} has no ${what} "${value}"`, { hint: `${w.id} supports: ${allowed.join(", ")}` });
  return value as T;
}

export async function prepareAddClient(ctx: Context, req: AddClientRequest): Promise<PreparedAdd> {
  const writer = writerIn(ctx.plugins.clients, req.client);
  const { scope, strategy } = chooseMode(writer, req);
  const profile = selectProfile(ctx.config(), { profile: req.profile }, ctx.env);
  const stdio = stdioServer(req.stdioCommand, req.envName);
  const { url, name } = stdio || req.endpoint ? { url: req.endpoint?.url ?? "", name: entryName(profile, req, writer) } : serverOf(profile, req, writer);
  const shared = scope === "project";
  const { globals, launch, warnings, env } = launchOf(ctx, req, shared, strategy, writer);
  const spec: EntrySpec = {
    name,
    url: stdio ? "" : configUrl(url),
    profile: profile.name,
    scope,
    strategy,
    command: launch.command,
    globals,
    ...(env && { env }),
    headerVar: writer.headerVar?.(name) ?? `MCP_AUTH_TOKEN_${name.toUpperCase().replace(/-/g, "_")}`,
    ...extraHeaders(req, strategy, warnings),
    ...(stdio && { stdio }),
  };
  if (strategy === "native") spec.native = nativeClientOf(profile, writer);
  let expiresAt: number | undefined;
  if (req.endpoint) {
    spec.staticToken = req.endpoint.secret;
  } else if (req.staticToken && req.preview) {
    spec.staticToken = "<token>"; // what is shown on screen (or in a terminal log) never holds the token
  } else if (req.staticToken) {
    const tok = await getToken(ctx, targetFromProfile(profile), { minTtl: 60 });
    spec.staticToken = tok.access_token;
    expiresAt = tok.expires_at;
  }
  const entry = writer.entry(spec);
  if (shared && strategy !== "header" && strategy !== "native") {
    entry.notes.unshift(`This project file is meant to be shared, so it runs \`mcp-auth\` from PATH rather than this machine's paths: everyone using it needs mcp-auth installed (npm install -g mcp-auth-cli), or can replace \`mcp-auth\` by \`npx -y ${npxPackage(req.launcher)}\` (slower to start).`);
  }
  if (strategy !== "header" && strategy !== "native" && profile.grant !== "client_credentials" && !tokenState(ctx, targetFromProfile(profile))) {
    entry.notes.push(`Log in once first: mcp-auth login ${profile.name} (${strategy === "helper" ? "the helper never opens a browser" : "then the client gets fresh tokens without asking"}).`);
  }

  await loadFormats(writer);
  const path = writer.configPath(ctx.env, req.platform, scope, req.cwd);
  if (!req.preview && !req.link && !writer.installed({ env: ctx.env, platform: req.platform, cwd: req.cwd })) {
    warnings.push(`${writer.title} does not look installed here (neither its command on PATH nor data of its own); writing ${path} anyway, for when it is`);
  }
  const recKey = ledgerKey(writer.id, scope, path, name);
  const prevRec = readLedger(ctx, readForPlan(ledgerPath(ctx)))[recKey];
  const planned = planEntry(writer, path, [...writer.serversPath(scope, req.cwd), name], entry, profile.name, prevRec, {
    description: `add server ${name} to ${writer.title} (${scope} scope)`,
    // A new shared project file gets the usual 0644; anything else new is private (0600), an existing file keeps its mode.
    ...(shared && !spec.staticToken && !existsSync(path) && { mode: 0o644 }),
  });
  const changes = [planned.change];
  let record: PreparedAdd["record"];
  if (actionOf(planned.change) !== "unchanged") {
    record = { key: recKey, rec: recordOf(planned.change, profile, prevRec, planned.existing(), missingDirs(path)) };
    const rec = record.rec;
    changes.push(planLedger(ctx, (l) => void (l[recKey] = rec)));
  }
  // serve's entry holds a secret that changes with every start: the record says whether it is this profile's.
  const conflict = planned.conflict() && !(req.endpoint && readLedger(ctx, readForPlan(ledgerPath(ctx)))[recKey]?.profile === profile.name);
  const viaCli = writer.cliScopes?.includes(scope) === true && req.claudeCli !== null && !spec.staticToken;
  return { writer, spec, entry, path, changes, replaces: planned.replaces(), conflict, via: viaCli ? "claude-cli" : "file", warnings, ...(expiresAt !== undefined && { expiresAt }), ...(record && { record }) };
}

/**
 * `--header`/`--header-env` for the entry: flags of the proxy or the helper, which send them beside the
 * token. The header strategy has the client send a fixed set of headers itself: not offered there.
 */
function extraHeaders(req: AddClientRequest, strategy: Strategy, warnings: string[]): { headers?: HeaderSpec[] } {
  const headers = headerSpecs(req.header, req.headerEnv);
  if (!headers.length) return {};
  if (strategy === "header") throw new UsageError("--header and --header-env apply to the helper and proxy strategies", { hint: "pass --strategy proxy (or helper, for Claude Code)" });
  for (const h of headers) {
    // A literal value is written into the client's file as it is: say so when it looks like a credential.
    if ("value" in h && /key|token|secret|passw|auth|session|cookie|signature/i.test(h.name)) {
      warnings.push(`--header ${h.name}: its value is written into the client's config file in clear; for a secret, pass --header-env ${h.name}=VAR (the variable's name is written, its value read when the client starts mcp-auth)`);
    }
  }
  return { headers };
}

/** Scope and strategy the writer supports; a static token never goes where it would be shared. */
function chooseMode(writer: ClientWriter, req: AddClientRequest): { scope: Scope; strategy: Strategy } {
  const scope = pick<Scope>("scope", req.scope, writer.scopes, SCOPES, writer, writer.defaultScope);
  const dflt = writer.scopeDefaults?.[scope] ?? writer.defaultStrategy;
  // A stdio server is started by the client: the stdio (proxy) kind of entry, with exec in place of the proxy.
  const strategy = pick<Strategy>("strategy", req.strategy, writer.strategies, STRATEGIES, writer, req.stdioCommand !== undefined ? "proxy" : req.endpoint ? "header" : dflt);
  if (req.endpoint && (strategy !== "header" || !writer.strategies.includes("header"))) throw new UsageError(`${writer.title} takes no URL with a static header (it has no strategy "header")`, { hint: "serve --client needs a client with the header strategy (see add-client --help)" });
  if (req.endpoint && (scope === "project" || req.link)) throw new UsageError("serve writes its secret into the entry: not into a project file, which is meant to be shared", { hint: "use --scope user or local" });
  if (req.stdioCommand !== undefined && strategy !== "proxy") throw new UsageError("--stdio-command writes a stdio entry: it goes with --strategy proxy only");
  if (req.stdioCommand !== undefined && req.url) throw new UsageError("--stdio-command and --url exclude each other: the stdio server calls its own API");
  if (req.staticToken && strategy !== "header") throw new UsageError("--static-token only applies with --strategy header");
  // A project file is committed and a link is passed around: a bearer token (or serve's secret) in either is a leaked one.
  if ((req.staticToken || req.endpoint) && (scope === "project" || req.link)) {
    const alt = dflt === "header" ? "--strategy header without --static-token" : `the default strategy (${dflt}), which gets fresh tokens, or --strategy header without --static-token`;
    throw new UsageError(`--static-token is refused for ${req.link ? "--link" : "project scope"}: ${req.link ? "an install link" : "the project file"} is meant to be shared; use ${alt}`);
  }
  return { scope, strategy };
}

/**
 * native strategy: the client logs in with its own OAuth code, as the profile's client. Only a public
 * client fits: its id is all that goes into the file (a secret or key would be written there or need the
 * client's own secure input), and only a browser login (authorization code) is the client's to run.
 */
function nativeClientOf(profile: Profile, writer: ClientWriter): NonNullable<EntrySpec["native"]> {
  const confidential = profile.secretStore || profile.key || profile.assertion || (profile.tokenEndpointAuthMethod && profile.tokenEndpointAuthMethod !== "none");
  if (confidential) {
    throw new UsageError(`--strategy native writes only a client id into ${writer.title}'s config, and profile "${profile.name}" has a confidential client (a secret, key or federation)`, {
      hint: `register a public client (no secret) with ${writer.title}'s redirect URI and make a profile for it, or use --strategy ${writer.defaultStrategy}`,
    });
  }
  if (profile.grant !== "authorization_code") throw new UsageError(`--strategy native is for browser logins: profile "${profile.name}" uses ${profile.grant}`, { hint: `use --strategy ${writer.defaultStrategy}` });
  return { clientId: profile.clientId, ...(profile.scopes?.length && { scopes: profile.scopes }), ...(profile.redirectPort !== undefined && { port: profile.redirectPort }) };
}

/** The entry's name: --name as given, else derived from the profile's, without what the client refuses. */
function entryName(profile: Profile, req: AddClientRequest, writer: ClientWriter): string {
  const chars = writer.nameChars ?? NAME_RE;
  // A derived name drops what the client refuses (Gemini CLI: `_`, Goose: upper case; docs/clients.md); a --name given is checked as is.
  const derived = serverName(profile.name);
  const name = req.name ?? [derived, derived.replace(/_/g, "-"), derived.toLowerCase(), derived.toLowerCase().replace(/_/g, "-")].find((n) => chars.test(n)) ?? derived;
  if (!NAME_RE.test(name) || !chars.test(name)) {
    const allowed = `${chars.test("A") ? "" : "lower-case "}letters, digits${chars.test("a_b") ? ", - and _" : " and -"}`;
    const who = NAME_RE.test(name) ? `${writer.title} refuses` : "MCP clients refuse";
    throw new UsageError(req.name ? `--name "${req.name}" has characters ${who}` : `cannot derive a server name from profile "${profile.name}"`, { hint: `use ${allowed} (pass --name)` });
  }
  return name;
}

/** The MCP server the entry points at (the profile's own, or a --url it covers) and the entry's name. */
function serverOf(profile: Profile, req: AddClientRequest, writer: ClientWriter): { url: string; name: string } {
  const url = req.url ?? profile.mcpUrl;
  if (!url) throw new UsageError(`profile "${profile.name}" has no MCP server URL`, { hint: "pass --url URL (or save one with: mcp-auth profiles add … --mcp-url URL --force)" });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url is not a URL: "${url}"`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new UsageError(`--url must be http(s), got "${parsed.protocol}"`);
  // The entry makes the client send this profile's token to the URL: only to the profile's own server.
  assertCovers(profile, parsed);
  return { url, name: entryName(profile, req, writer) };
}

/**
 * Settings mcp-auth reads from its environment, and how an entry carries them when the client removes
 * the variable (Gemini CLI): a global flag, or else the entry's own `env`, which such a client passes on.
 */
const CARRIED_ENV: ReadonlyArray<{ name: string; flag?: string }> = [
  { name: "NODE_EXTRA_CA_CERTS", flag: "--ca-file" },
  { name: "MCP_AUTH_TIMEOUT", flag: "--timeout" },
  { name: "MCP_AUTH_ACCESS_TOKEN_STORE" },
  { name: "MCP_AUTH_DISCOVERY_TTL" },
];

/** How the entry starts mcp-auth, with the global flags (and variables) the client's environment may lack. */
function launchOf(ctx: Context, req: AddClientRequest, shared: boolean, strategy: Strategy, writer: ClientWriter) {
  const warnings: string[] = [];
  const globals: string[] = [];
  const env: Record<string, string> = {};
  const runsUs = strategy !== "header" && strategy !== "native";
  const dropped = !runsUs ? [] : CARRIED_ENV.filter((v) => ctx.env[v.name] && writer.dropsEnv?.(v.name));
  if (shared) {
    // A committed file names no machine's paths; the helper then finds the config where mcp-auth looks by default.
    if (runsUs && ctx.paths.dir !== configDir({ ...ctx.env, MCP_AUTH_CONFIG_DIR: "" }, req.platform)) {
      warnings.push(`the project entry runs mcp-auth with its default config dir, not ${ctx.paths.dir} (a shared file names no machine's paths, and Claude Code removes MCP_AUTH_* variables from project helpers)`);
    }
    if (dropped.length) warnings.push(`${writer.title} removes ${dropped.map((v) => v.name).join(", ")} from the servers it starts, and a shared file names no machine's settings: the project entry runs mcp-auth without them (a user-scope entry carries them)`);
  } else {
    globals.push("--config-dir", resolve(ctx.paths.dir)); // the client runs it from another directory
    const store = ctx.forcedStore();
    if (store && store !== ctx.config().settings?.store) globals.push("--store", store);
    for (const v of dropped) {
      const value = ctx.env[v.name]!;
      if (v.flag) globals.push(v.flag, v.flag === "--ca-file" ? resolve(value) : value);
      else env[v.name] = value;
    }
  }
  const launch = shared ? { command: ["mcp-auth"] } : entryCommand(req.launcher, ctx.env, req.platform);
  if (launch.note) warnings.push(launch.note);
  return { globals, launch, warnings, ...(Object.keys(env).length && { env }) };
}

/**
 * The edit of the client's config file that puts `entry` at `entryPath`: nothing when it is there
 * already; a VS Code input added beside it. Whether it replaces another entry is known once planned.
 */
function planEntry(writer: ClientWriter, path: string, entryPath: string[], entry: Entry, profileName: string, rec: LedgerRecord | undefined, o: { description: string; mode?: number }) {
  let conflict = false;
  let replaces = false;
  let existing: unknown;
  const change = planFile(
    path,
    (before) => {
      const root = before === null ? {} : parseConfig(writer, before, path);
      existing = getAt(root, entryPath);
      const edits: JsonEdit[] = [];
      if (existing === undefined || !sameJson(existing, entry.server)) {
        replaces = existing !== undefined;
        const d = describeEntry(existing, rec);
        conflict = replaces && !(d.ours && d.profile === profileName);
        edits.push({ path: entryPath, value: entry.server });
      }
      if (entry.input) {
        const inputs = getAt(root, ["inputs"]);
        const list = Array.isArray(inputs) ? inputs : [];
        const i = list.findIndex((x) => isObject(x) && x.id === entry.input!.id);
        if (i < 0) edits.push({ append: ["inputs"], value: entry.input });
        else if (!sameJson(list[i], entry.input)) throw new FileError(`${path} already has an input "${entry.input.id}" that mcp-auth did not write`, { hint: "remove it, or pass another --name" });
      }
      if (writer.format === "toml") return edits.length ? setTomlTable(before, entryPath, entry.server, path) : before;
      if (writer.format === "yaml") return edits.length ? setYamlEntry(before, entryPath, entry.server, path) : before;
      return edits.length ? editJsonc(before, edits, path) : before;
    },
    o,
  );
  return { change, replaces: () => replaces, conflict: () => conflict, existing: () => existing };
}

// ---- how the entry starts mcp-auth ----

/** npm's one-run cache (…/_npx/<hash>/node_modules/…), which npm clears at will. */
function inNpxCache(path: string): boolean {
  return path.split(/[\\/]/).includes("_npx");
}

/**
 * The package spec for `npx -y`, pinned to releases npm calls compatible with this one (a caret range):
 * the major for 1.x and later, but `0.MINOR` for 0.x (^0.3.1 is >=0.3.1 <0.4.0) and the exact version
 * for 0.0.x or a pre-release. The version comes from the package.json next to the launcher's bin/.
 */
export function npxPackage(l: Launcher): string {
  let version: string | undefined;
  try {
    const pkg = JSON.parse(readFileSync(join(dirname(dirname(l.script)), "package.json"), "utf8")) as { name?: string; version?: string };
    if (pkg.name === PACKAGE_NAME && typeof pkg.version === "string") version = pkg.version;
  } catch {
    /* no package.json there: the latest release */
  }
  const m = version?.match(/^(\d+)\.(\d+)\.(\d+)$/);
  if (!m) return version ? `${PACKAGE_NAME}@${version}` : PACKAGE_NAME;
  const range = m[1] !== "0" ? m[1] : m[2] !== "0" ? `0.${m[2]}` : version;
  return `${PACKAGE_NAME}@${range}`;
}

/**
 * The argv a user- or local-scope entry runs: this node and script by absolute path, unless the script
 * sits in npx's cache (`npx mcp-auth-cli init`). Then the installed mcp-auth on PATH (npx's own PATH
 * dirs do not count), else `npx -y mcp-auth-cli@<range>`; the note says which was written.
 */
export function entryCommand(l: Launcher, env: NodeJS.ProcessEnv, platform: string): { command: string[]; note?: string } {
  if (!inNpxCache(l.script)) return { command: [l.node, l.script] };
  const installed = installedCommand(l, env, platform);
  if (installed) return { command: installed, note: `this mcp-auth runs from npx's cache, which npm clears; the entry runs the installed one instead: ${installed.join(" ")}` };
  const pkg = npxPackage(l);
  return {
    command: ["npx", "-y", pkg],
    note: `this mcp-auth runs from npx's cache, which npm clears, and none is installed on PATH: the entry runs npx -y ${pkg}, which adds npm's start-up (a registry check, seconds) to every start; npm install -g ${PACKAGE_NAME} and run this again for a faster one`,
  };
}

function installedCommand(l: Launcher, env: NodeJS.ProcessEnv, platform: string): string[] | undefined {
  const names = platform === "win32" ? ["mcp-auth.cmd", "mcp-auth.exe", "mcp-auth"] : ["mcp-auth"];
  for (const dir of (env.PATH ?? env.Path ?? "").split(platform === "win32" ? ";" : ":")) {
    if (!dir || inNpxCache(dir)) continue;
    for (const name of names) {
      const file = joinFor(platform, dir, name);
      let real: string;
      try {
        if (!statSync(file).isFile()) continue;
        real = realpathSync(file);
      } catch {
        continue;
      }
      if (inNpxCache(real)) continue;
      // npm links bin/mcp-auth.js (POSIX) or writes a .cmd shim next to node_modules (Windows): run the script with this node, as for any other entry.
      if (basename(real) === "mcp-auth.js") return [l.node, real];
      const shimmed = joinFor(platform, dir, "node_modules", PACKAGE_NAME, "bin", "mcp-auth.js");
      if (existsSync(shimmed)) return [l.node, shimmed];
      return [file];
    }
  }
  return undefined;
}

/** The entry as the client's file would hold it (for --print): JSON, or a TOML table for Codex. */
export function entrySnippet(p: PreparedAdd, cwd: string): string {
  const servers = p.writer.serversPath(p.spec.scope, cwd);
  if (p.writer.format === "toml") return renderTable([...servers, p.spec.name], p.entry.server, "\n") + "\n";
  if (p.writer.format === "yaml") return `${servers.at(-1)!}:\n` + renderYaml(p.spec.name, p.entry.server, "  ", "\n") + "\n";
  const doc: Record<string, unknown> = { [servers.at(-1)!]: { [p.spec.name]: p.entry.server } };
  if (p.entry.input) doc.inputs = [p.entry.input];
  return JSON.stringify(doc, null, 2) + "\n";
}

export interface AddOutcome {
  action: PlanAction;
  backup: string | null;
}

export async function applyAddClient(ctx: Context, p: PreparedAdd, req: Pick<AddClientRequest, "force" | "cwd" | "claudeCli">): Promise<AddOutcome> {
  if (p.conflict && !req.force) {
    throw new FileError(`${p.path} already has a different server named "${p.spec.name}"`, { hint: "pass --force to replace it, or --name to choose another name; mcp-auth left it untouched" });
  }
  const change = p.changes[0]!;
  const action = actionOf(change);
  if (action === "unchanged") return { action, backup: null };
  if (p.via === "claude-cli" && req.claudeCli) {
    const cli = req.claudeCli;
    if (p.replaces) await claudeRun(cli, ["mcp", "remove", "--scope", p.spec.scope, p.spec.name], req.cwd);
    await claudeRun(cli, ["mcp", "add-json", "--scope", p.spec.scope, p.spec.name, JSON.stringify(p.entry.server)], req.cwd);
    const now = readForPlan(p.path);
    const written = now === null ? undefined : getAt(parseJsonc(now, p.path), [...p.writer.serversPath(p.spec.scope, req.cwd), p.spec.name]);
    if (!sameJson(written, p.entry.server)) throw new McpAuthError(`claude mcp add-json ran, but ${p.path} does not hold the entry mcp-auth expected`);
    if (p.record && now !== null) {
      // Claude Code wrote the file: no byte-exact undo, removal goes through claude mcp remove.
      const { undo: _undo, ...rest } = p.record.rec;
      const rec: LedgerRecord = { ...rest, hash: sha256(now) };
      applyPlan([planLedger(ctx, (l) => void (l[p.record!.key] = rec))], backupPolicy(ctx.paths, ctx.now));
    }
    return { action, backup: null };
  }
  const applied = applyPlan(p.changes, backupPolicy(ctx.paths, ctx.now));
  return { action, backup: applied[0]!.backup };
}

async function claudeRun(cli: ClaudeCli, args: string[], cwd: string): Promise<void> {
  const r = await cli.run(args, cwd);
  if (r.code !== 0) throw new McpAuthError(`claude ${args.slice(0, 2).join(" ")} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split("\n")[0] ?? ""}`);
}

// ---- the record of what we added ----

/**
 * What remove-client needs to take our entry out again, whatever happened to the file in between: the
 * edit that gives back the bytes the file had before our first add (while the file is exactly as we
 * left it), the user's own entry we replaced (put back on removal), and what we created (the file and
 * its folders, deleted again once they hold nothing else).
 */
interface LedgerRecord {
  profile: string;
  /** sha256 of the file right after our last edit. */
  hash: string;
  /**
   * The edit that turns the file, as hashed, back into the file before our first add; null: the file
   * did not exist then (delete it). Absent: the file changed between two adds, so removal is by structure only.
   */
  undo?: Undo | null;
  /** The real path of the file (several records may share one). */
  file?: string;
  /** The file did not exist before add-client (delete it when nothing else is left in it). */
  created?: boolean;
  /** Folders add-client created for the file, deepest first (removed when empty). */
  dirs?: string[];
  /** The entry of that name that was there before and was not mcp-auth's (restored on removal). */
  replaced?: unknown;
}
type Ledger = Record<string, LedgerRecord>;

function ledgerPath(ctx: Context): string {
  return join(ctx.paths.dir, "clients.json");
}

function ledgerKey(client: string, scope: Scope, path: string, name: string): string {
  return `${client} ${scope} ${realTarget(path)} ${name}`;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The folders that writing `path` creates, deepest first. */
function missingDirs(path: string): string[] {
  const out: string[] = [];
  for (let d = dirname(resolve(path)); dirname(d) !== d && !existsSync(d); d = dirname(d)) out.push(d);
  return out;
}

/**
 * The record after an add. A re-add over our own entry keeps what the first add knew: the bytes from
 * before it (composed with this edit while the file is exactly as we left it), the user's entry we
 * replaced, and what we created. So removal always takes our entry out, never an older version of it back.
 */
function recordOf(change: FileChange, profile: Profile, prev: LedgerRecord | undefined, existing: unknown, dirs: string[]): LedgerRecord {
  const after = change.after ?? "";
  const userEntry = existing !== undefined && !describeEntry(existing, prev).ours ? existing : undefined;
  const rec: LedgerRecord = { profile: profile.name, hash: sha256(after), file: realTarget(change.path) };
  if (!prev) {
    rec.undo = change.before === null ? null : undoOf(change.before, after);
    if (change.before === null) rec.created = true;
    if (dirs.length) rec.dirs = dirs;
    if (userEntry !== undefined) rec.replaced = userEntry;
    return rec;
  }
  // A record from before `created` existed: its undo null meant the file was new.
  const created = prev.created ?? prev.undo === null;
  if (created) rec.created = true;
  if (prev.dirs?.length) rec.dirs = prev.dirs;
  const replaced = userEntry ?? prev.replaced;
  if (replaced !== undefined) rec.replaced = replaced;
  if (change.before !== null && prev.undo !== undefined && sha256(change.before) === prev.hash) {
    const original = prev.undo === null ? null : applyUndo(change.before, prev.undo);
    rec.undo = original === null ? null : undoOf(original, after);
  }
  return rec;
}

function readLedger(ctx: Context, text: string | null): Ledger {
  if (!text) return {};
  try {
    const v = JSON.parse(text) as { entries?: Ledger };
    return isObject(v.entries) ? v.entries : {};
  } catch {
    throw new FileError(`cannot parse ${ledgerPath(ctx)}`, { hint: "move it away; it only helps remove-client restore files exactly" });
  }
}

function planLedger(ctx: Context, change: (l: Ledger) => void): FileChange {
  return planFile(
    ledgerPath(ctx),
    (before) => {
      const l = readLedger(ctx, before);
      change(l);
      // The last record gone, the file goes too: a round trip leaves mcp-auth's dir as it was.
      if (!Object.keys(l).length) return null;
      return JSON.stringify({ version: 1, entries: l }, null, 2) + "\n";
    },
    { description: "record the entry so remove-client can undo it exactly", mode: 0o600, sensitive: true },
  );
}

// ---- remove ----

export interface RemoveClientRequest {
  client: string;
  name: string;
  scope?: string;
  force?: boolean;
  cwd: string;
  platform: string;
  claudeCli: ClaudeCli | null;
}

export interface PreparedRemove {
  writer: ClientWriter;
  scope: Scope;
  path: string;
  name: string;
  changes: FileChange[];
  /** false: there is no such entry. */
  found: boolean;
  /** The file comes back exactly as it was before add-client. */
  exact: boolean;
  /** The user's own entry of that name, which add-client --force replaced, is put back. */
  restored: boolean;
  /** Folders add-client created, removed once the file is deleted and they are empty. */
  dirs: string[];
  via: "file" | "claude-cli";
}

export async function prepareRemoveClient(ctx: Context, req: RemoveClientRequest): Promise<PreparedRemove> {
  const writer = writerIn(ctx.plugins.clients, req.client);
  const scope = pick<Scope>("scope", req.scope, writer.scopes, SCOPES, writer, writer.defaultScope);
  if (!NAME_RE.test(req.name)) throw new UsageError(`--name "${req.name}" is not a server name`);
  await loadFormats(writer);
  const path = writer.configPath(ctx.env, req.platform, scope, req.cwd);
  const entryPath = [...writer.serversPath(scope, req.cwd), req.name];
  const key = ledgerKey(writer.id, scope, path, req.name);
  const ledger = readLedger(ctx, readForPlan(ledgerPath(ctx)));
  const rec = ledger[key];
  let found = false;
  let exact = false;
  let restored = false;
  const change = planFile(
    path,
    (before) => {
      if (before === null) return null;
      const root = parseConfig(writer, before, path);
      const existing = getAt(root, entryPath);
      if (existing === undefined) return before;
      found = true;
      if (!describeEntry(existing, rec).ours && !req.force) {
        throw new FileError(`the server "${req.name}" in ${path} does not use mcp-auth`, { hint: "pass --force to remove it anyway; mcp-auth left it untouched" });
      }
      if (rec && rec.undo !== undefined && sha256(before) === rec.hash) {
        exact = true;
        restored = rec.replaced !== undefined;
        return rec.undo ? applyUndo(before, rec.undo) : null;
      }
      const after = removeEntry(writer, root, before, entryPath, existing, rec?.replaced, path);
      restored = rec?.replaced !== undefined;
      // A file add-client created goes when nothing but empty containers is left in it.
      return rec?.created && isEmptyDoc(parseConfig(writer, after, path)) && !/#|\/\/|\/\*/.test(after) ? null : after;
    },
    { description: `remove server ${req.name} from ${writer.title} (${scope} scope)` },
  );
  const changes = [change];
  if (rec) {
    changes.push(
      planLedger(ctx, (l) => {
        delete l[key];
        // Other entries of ours in the same file inherit what this add created, so the last removal deletes it.
        if (!rec.created && !rec.dirs?.length) return;
        const heir = Object.values(l).find((r) => r.file !== undefined && r.file === rec.file);
        if (!heir) return;
        if (rec.created) heir.created = true;
        if (rec.dirs?.length) heir.dirs = [...new Set([...(heir.dirs ?? []), ...rec.dirs])].sort((a, b) => b.length - a.length);
      }),
    );
  }
  const heirs = rec ? Object.entries(ledger).some(([k, r]) => k !== key && r.file !== undefined && r.file === rec.file) : false;
  const dirs = !heirs && change.after === null ? (rec?.dirs ?? []) : [];
  const via = writer.cliScopes?.includes(scope) === true && req.claudeCli !== null && found && !exact ? "claude-cli" : "file";
  return { writer, scope, path, name: req.name, changes, found, exact, restored, dirs, via };
}

/** `before` without our entry (and our VS Code input, unless another server uses it), or with the user's own entry put back. */
function removeEntry(writer: ClientWriter, root: JsonObject, before: string, entryPath: string[], existing: unknown, replaced: unknown, path: string): string {
  if (writer.format === "toml") {
    return replaced !== undefined && isObject(replaced) ? setTomlTable(before, entryPath, replaced, path) : removeTomlTable(before, entryPath, path);
  }
  if (writer.format === "yaml") {
    return replaced !== undefined && isObject(replaced) ? setYamlEntry(before, entryPath, replaced, path) : removeYamlEntry(before, entryPath, path);
  }
  const edits: JsonEdit[] = [{ path: entryPath, value: replaced }];
  const id = /\$\{input:(mcp-auth-[A-Za-z0-9_-]+)\}/.exec(JSON.stringify(existing))?.[1];
  const inputs = getAt(root, ["inputs"]);
  if (id && Array.isArray(inputs)) {
    const servers = getAt(root, entryPath.slice(0, -1));
    const others = isObject(servers) ? Object.entries(servers).filter(([n]) => n !== entryPath.at(-1)) : [];
    const i = inputs.findIndex((x) => isObject(x) && x.id === id);
    if (i >= 0 && !JSON.stringify([others, replaced ?? null]).includes(`\${input:${id}}`)) edits.push({ remove: ["inputs", i] });
  }
  return editJsonc(before, edits, path);
}

/** Nothing but empty objects and lists (what add-client's own file holds once our entry is out). */
function isEmptyDoc(v: unknown): boolean {
  if (Array.isArray(v)) return v.length === 0;
  return isObject(v) && Object.values(v).every(isEmptyDoc);
}

export async function applyRemoveClient(ctx: Context, p: PreparedRemove, req: Pick<RemoveClientRequest, "cwd" | "claudeCli">): Promise<AddOutcome> {
  const action = actionOf(p.changes[0]!);
  if (p.via === "claude-cli" && req.claudeCli) {
    await claudeRun(req.claudeCli, ["mcp", "remove", "--scope", p.scope, p.name], req.cwd);
    if (p.restored) {
      const after = p.changes[0]!.after;
      const back = after === null ? undefined : getAt(parseJsonc(after, p.path), [...p.writer.serversPath(p.scope, req.cwd), p.name]);
      if (back !== undefined) await claudeRun(req.claudeCli, ["mcp", "add-json", "--scope", p.scope, p.name, JSON.stringify(back)], req.cwd);
    }
    if (p.changes[1]) applyPlan([p.changes[1]], backupPolicy(ctx.paths, ctx.now));
    return { action, backup: null };
  }
  const applied = applyPlan(p.changes, backupPolicy(ctx.paths, ctx.now));
  removeEmptyDirs(p.dirs);
  return { action, backup: applied[0]!.backup };
}

/** The folders add-client created, deepest first, each only if it is empty now (rmdir refuses otherwise). */
function removeEmptyDirs(dirs: readonly string[]): void {
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") return; // not empty: its parents are not either
    }
  }
}

// ---- list ----

/**
 * Does a server entry get its token from mcp-auth, and for which profile? A native entry (the client's
 * own OAuth with the profile's client id) runs nothing of ours: it is ours when our record of it says so.
 */
export function describeEntry(server: unknown, rec?: { profile: string }): { ours: boolean; profile?: string } {
  if (!isObject(server)) return { ours: false };
  if (rec && isNativeEntry(server)) return { ours: true, profile: rec.profile };
  const words: string[] = [];
  if (typeof server.headersHelper === "string") words.push(...shellWords(server.headersHelper));
  if (typeof server.command === "string") words.push(server.command);
  if (typeof server.cmd === "string") words.push(server.cmd); // Goose
  if (Array.isArray(server.command)) words.push(...server.command.filter((a): a is string => typeof a === "string")); // OpenCode: one argv array
  if (Array.isArray(server.args)) words.push(...server.args.filter((a): a is string => typeof a === "string"));
  const runsUs = words.some((w) => /(^|[\\/])mcp-auth(\.js|\.cmd)?$/.test(w) || /^mcp-auth-cli(@|$)/.test(w)) && (words.includes("token") || words.includes("proxy") || words.includes("exec"));
  const i = words.indexOf("--profile");
  if (runsUs) return { ours: true, ...(i >= 0 && words[i + 1] && { profile: words[i + 1] }) };
  if (typeof server.bearer_token_env_var === "string" && server.bearer_token_env_var.startsWith("MCP_AUTH_TOKEN_")) return { ours: true }; // Codex
  const auth = isObject(server.headers) ? server.headers.Authorization : undefined;
  return { ours: typeof auth === "string" && /(\$\{(env:|input:)?|\{env:)(MCP_AUTH_TOKEN_|mcp-auth-)/.test(auth) }; // OpenCode: {env:NAME}
}

/** An entry that logs in with the client's own OAuth and a fixed client id (Claude Code/Gemini CLI `oauth`, Cursor `auth`). */
function isNativeEntry(server: JsonObject): boolean {
  return (isObject(server.oauth) && typeof server.oauth.clientId === "string") || (isObject(server.auth) && typeof server.auth.CLIENT_ID === "string");
}

/** Splits what shQuote joined (single quotes and bare words). */
function shellWords(cmd: string): string[] {
  const out: string[] = [];
  const re = /'((?:[^']|'\\'')*)'|(\S+)/g;
  for (let m; (m = re.exec(cmd)); ) out.push(m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]!);
  return out;
}

export interface ClientListing {
  client: string;
  title: string;
  installed: boolean;
  files: Array<{
    scope: Scope;
    path: string;
    exists: boolean;
    error?: string;
    servers: Array<{ name: string; mcpAuth: boolean; profile?: string; url?: string; /** The entry's profile is not in mcp-auth's config (removed or renamed since). */ profileMissing?: boolean }>;
  }>;
}

export async function listClients(ctx: Context, o: { cwd: string; platform: string }): Promise<ClientListing[]> {
  await loadFormats();
  const profiles = ctx.config().profiles;
  const ledger = (() => {
    try {
      return readLedger(ctx, readForPlan(ledgerPath(ctx)));
    } catch {
      return {};
    }
  })();
  return ctx.plugins.clients.map((w) => {
    const files: ClientListing["files"] = [];
    for (const scope of w.scopes) {
      const path = w.configPath(ctx.env, o.platform, scope, o.cwd);
      const file: ClientListing["files"][number] = { scope, path, exists: false, servers: [] };
      files.push(file);
      try {
        const text = readForPlan(path);
        if (text === null) continue;
        file.exists = true;
        const servers = getAt(parseConfig(w, text, path), w.serversPath(scope, o.cwd));
        if (!isObject(servers)) continue;
        for (const [name, s] of Object.entries(servers)) {
          const rec = ledger[ledgerKey(w.id, scope, path, name)];
          const d = describeEntry(s, rec);
          const profile = d.profile ?? rec?.profile;
          const u = isObject(s) ? (s.url ?? s.httpUrl ?? s.serverUrl ?? s.uri) : undefined; // Gemini CLI: httpUrl; Windsurf: serverUrl; Goose: uri
          const url = typeof u === "string" ? u : undefined;
          const missing = Boolean(profile && d.ours && !Object.hasOwn(profiles, profile));
          file.servers.push({ name, mcpAuth: d.ours, ...(profile && d.ours && { profile }), ...(url && { url }), ...(missing && { profileMissing: true }) });
        }
      } catch (e) {
        file.error = (e as Error).message;
      }
    }
    return { client: w.id, title: w.title, installed: w.installed({ env: ctx.env, platform: o.platform, cwd: o.cwd }), files };
  });
}

// ---- entries of a profile (profiles remove / rename) ----

export interface ProfileEntry {
  client: string;
  title: string;
  scope: Scope;
  path: string;
  name: string;
}

/** The client entries (every client's files for this folder) that get their token from `profile`. */
export async function entriesOfProfile(ctx: Context, profile: string, o: { cwd: string; platform: string }): Promise<ProfileEntry[]> {
  const out: ProfileEntry[] = [];
  // A shared file (the project .mcp.json of Claude Code and Copilot CLI) is listed under each reader: its entry counts once.
  const seen = new Set<string>();
  for (const c of await listClients(ctx, o)) {
    for (const f of c.files)
      for (const s of f.servers) {
        if (!s.mcpAuth || s.profile !== profile || seen.has(`${f.path}\0${s.name}`)) continue;
        seen.add(`${f.path}\0${s.name}`);
        out.push({ client: c.client, title: c.title, scope: f.scope, path: f.path, name: s.name });
      }
  }
  return out;
}

/**
 * The entry with `--profile from` changed to `--profile to` (proxy args, or the words of a helper
 * command), or undefined when it does not name `from`.
 */
export function retargetServer(server: unknown, from: string, to: string): Record<string, unknown> | undefined {
  if (!isObject(server)) return undefined;
  const swap = (words: string[]) => {
    const i = words.indexOf("--profile");
    if (i < 0 || words[i + 1] !== from) return undefined;
    return [...words.slice(0, i + 1), to, ...words.slice(i + 2)];
  };
  if (typeof server.headersHelper === "string") {
    const words = swap(shellWords(server.headersHelper));
    return words && { ...server, headersHelper: words.map(shQuote).join(" ") };
  }
  if (Array.isArray(server.args) && server.args.every((a) => typeof a === "string")) {
    const args = swap(server.args as string[]);
    return args && { ...server, args };
  }
  return undefined;
}

/**
 * `profiles rename`: each entry of `from` names `to` instead, edited in place like add-client's edits
 * (the record in clients.json follows, so remove-client still undoes exactly).
 */
export async function retargetEntries(ctx: Context, entries: ProfileEntry[], from: string, to: string, o: { cwd: string; platform: string; claudeCli: ClaudeCli | null }): Promise<void> {
  await loadFormats();
  for (const e of entries) {
    const writer = writerIn(ctx.plugins.clients, e.client);
    const entryPath = [...writer.serversPath(e.scope, o.cwd), e.name];
    let next: Record<string, unknown> | undefined;
    const change = planFile(
      e.path,
      (before) => {
        if (before === null) return null;
        next = retargetServer(getAt(parseConfig(writer, before, e.path), entryPath), from, to);
        if (!next) return before;
        if (writer.format === "toml") return setTomlTable(before, entryPath, next, e.path);
        if (writer.format === "yaml") return setYamlEntry(before, entryPath, next, e.path);
        return editJsonc(before, [{ path: entryPath, value: next }], e.path);
      },
      { description: `point server ${e.name} in ${writer.title} (${e.scope} scope) at profile ${to}` },
    );
    const key = ledgerKey(writer.id, e.scope, e.path, e.name);
    const prev = readLedger(ctx, readForPlan(ledgerPath(ctx)))[key];
    if (!next || actionOf(change) === "unchanged") {
      // An entry that names no profile (a header entry) is the profile's only in our record: the record follows.
      if (prev?.profile === from) applyPlan([planLedger(ctx, (l) => void (l[key] = { ...prev, profile: to }))], backupPolicy(ctx.paths, ctx.now));
      continue;
    }
    const changes = [change];
    if (prev) {
      const rec = recordOf(change, { name: to } as Profile, prev, undefined, []);
      changes.push(planLedger(ctx, (l) => void (l[key] = rec)));
    }
    if (writer.cliScopes?.includes(e.scope) && o.claudeCli) {
      await claudeRun(o.claudeCli, ["mcp", "remove", "--scope", e.scope, e.name], o.cwd);
      await claudeRun(o.claudeCli, ["mcp", "add-json", "--scope", e.scope, e.name, JSON.stringify(next)], o.cwd);
      if (changes[1]) applyPlan([changes[1]], backupPolicy(ctx.paths, ctx.now));
      continue;
    }
    applyPlan(changes, backupPolicy(ctx.paths, ctx.now));
  }
}

/** A plan for --dry-run: a unified diff, or with --json the list of actions. */
export async function planView(ctx: Context, changes: FileChange[], json: boolean | undefined): Promise<string> {
  if (!json) return renderPlan(changes);
  const policy = backupPolicy(ctx.paths, ctx.now);
  return JSON.stringify(planToJson(changes, (p) => backupPath(p, policy)), null, 2) + "\n";
}
