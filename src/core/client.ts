import { headerArgs, type HeaderSpec } from "../headers.js";
import { existsSync, readdirSync, statSync } from "node:fs";
import { posix, win32 } from "node:path";
import { UsageError } from "../errors.js";
import { markControl } from "../io/sanitize.js";

/**
 * One writer per MCP client (src/clients/), all behind this interface (src/plugins.ts lists them). A writer
 * knows where its client keeps its config, under which key, and what an entry that gets its token from
 * mcp-auth looks like; the shared JSONC edit (src/store/jsonc.ts) and the plan → apply seam (src/store/) do the rest.
 * Facts: docs/clients.md.
 */
export const SCOPES = ["user", "project", "local"] as const;
export type Scope = (typeof SCOPES)[number];
export const STRATEGIES = ["helper", "proxy", "header", "native"] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** What an entry needs to know to call mcp-auth. */
export interface EntrySpec {
  name: string;
  url: string;
  profile: string;
  scope: Scope;
  strategy: Strategy;
  /** How to start mcp-auth: [absolute node, absolute script], or ["mcp-auth"] (from PATH) in a shared project file. */
  command: string[];
  /** Global flags carried by the entry (--config-dir, --store), since the client's environment may lack them. */
  globals: string[];
  /** header strategy: the environment variable (Cursor, Claude Code) or input id (VS Code) holding the token. */
  headerVar: string;
  /** header strategy with --static-token: the token itself. */
  staticToken?: string;
  /**
   * native strategy: the profile's public client, registered with the client's own redirect URI; the
   * client runs the login itself. `port`: the profile's --redirect-port, for clients with a loopback redirect.
   */
  native?: { clientId: string; scopes?: string[]; port?: number };
  /** Variables the entry sets itself (`env`), for a client that removes them from the environment it passes on. */
  env?: Record<string, string>;
  /** Extra headers (`add-client --header/--header-env`): passed on as flags to the proxy or the helper. */
  headers?: HeaderSpec[];
  /** A stdio MCP server run by `mcp-auth exec` (add-client --stdio-command) instead of the proxy. */
  stdio?: { argv: string[]; envName?: string };
}

export interface Entry {
  /** The server object, stored under its name. */
  server: Record<string, unknown>;
  /** VS Code: an `inputs` item the server refers to. */
  input?: { id: string; [k: string]: unknown };
  /** What the user must know or do next. */
  notes: string[];
}

export interface Platform {
  env: NodeJS.ProcessEnv;
  platform: string;
  cwd: string;
}

export interface ClientWriter {
  id: string;
  title: string;
  /** The config file's syntax (default JSONC); a TOML file is edited by src/store/toml.ts, a YAML one by src/store/yaml.ts. */
  format?: "jsonc" | "toml" | "yaml";
  scopes: readonly Scope[];
  defaultScope: Scope;
  strategies: readonly Strategy[];
  defaultStrategy: Strategy;
  /** A scope whose file other programs read too gets the strategy they can all use (Claude Code's project `.mcp.json`). */
  scopeDefaults?: Partial<Record<Scope, Strategy>>;
  /** Programs mcp-auth writes no entry for that read this scope's file too (the README's client table). */
  alsoReadBy?: Partial<Record<Scope, readonly string[]>>;
  configPath(env: NodeJS.ProcessEnv, platform: string, scope: Scope, cwd: string): string;
  /** Object keys leading to the servers object in that file. */
  serversPath(scope: Scope, cwd: string): string[];
  entry(spec: EntrySpec): Entry;
  /**
   * Is the client installed here? Judged from its executable on PATH or data only it writes, never
   * from the files and folders add-client creates (hasOwnData).
   */
  installed(p: Platform): boolean;
  /** An install link (Cursor deeplink, VS Code URL handler), if the client has one. */
  link?(name: string, entry: Entry): string;
  /** header strategy: the name of the variable (or input id) holding the token; default MCP_AUTH_TOKEN_<NAME>. */
  headerVar?(name: string): string;
  /**
   * Scopes whose file the client's own CLI writes when it is installed (the ClientCli the command
   * found), because the client rewrites that file itself; mcp-auth then edits it only as a fallback.
   */
  cliScopes?: readonly Scope[];
  /**
   * Does the client remove this variable from the environment of the stdio servers it starts? The
   * entry then carries the setting itself, as a flag or in its `env` (docs/clients.md, Gemini CLI).
   */
  dropsEnv?(name: string): boolean;
  /** The characters a server name may have in this client (default [A-Za-z0-9_-]). */
  nameChars?: RegExp;
}

/**
 * A client's own CLI (Claude Code's `claude mcp …`), used for the writer's cliScopes: the client
 * rewrites that file itself (sign-in state, per-project trust…), so its CLI is safer than editing it
 * behind its back (docs/clients.md, Claude Code).
 */
export interface ClaudeCli {
  path: string;
  run(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** The writer with this id among `clients`; a usage error naming the supported ones otherwise. */
export function writerIn(clients: readonly ClientWriter[], id: string): ClientWriter {
  const w = clients.find((c) => c.id === id);
  if (!w) throw new UsageError(`unknown client "${id}"`, { hint: `supported: ${clients.map((c) => c.id).join(", ")}` });
  return w;
}

export function defineClientWriter(w: ClientWriter): ClientWriter {
  return w;
}

/** path.join for the target OS (tests compute Windows paths on Linux). */
export function joinFor(platform: string, ...parts: string[]): string {
  return platform === "win32" ? win32.join(...parts) : posix.join(...parts);
}

export function homeOf(env: NodeJS.ProcessEnv): string {
  return env.HOME || env.USERPROFILE || "";
}

/** The per-OS application data dir (macOS Application Support, Windows %APPDATA%, XDG elsewhere). */
export function appDataDir(env: NodeJS.ProcessEnv, platform: string): string {
  const home = homeOf(env);
  if (platform === "darwin") return joinFor(platform, home, "Library", "Application Support");
  if (platform === "win32") return env.APPDATA || joinFor(platform, home, "AppData", "Roaming");
  return env.XDG_CONFIG_HOME || joinFor(platform, home, ".config");
}

export function exists(p: string): boolean {
  return existsSync(p);
}

/**
 * Does `dir` hold something of the client's own, beyond the files mcp-auth writes there (`ours`)? A
 * client's folder that holds only the config add-client created says nothing about the client.
 */
export function hasOwnData(dir: string, ours: readonly string[]): boolean {
  try {
    return readdirSync(dir).some((n) => !ours.includes(n));
  } catch {
    return false;
  }
}

/** Is an executable named `cmd` on PATH? */
export function onPath(env: NodeJS.ProcessEnv, cmd: string, platform: string = process.platform): string | undefined {
  const sep = platform === "win32" ? ";" : ":";
  const exts = platform === "win32" ? ["", ".cmd", ".exe"] : [""];
  for (const dir of (env.PATH ?? env.Path ?? "").split(sep)) {
    if (!dir) continue;
    for (const ext of exts) {
      const p = joinFor(platform, dir, cmd + ext);
      try {
        if (statSync(p).isFile()) return p;
      } catch {
        /* not here */
      }
    }
  }
  return undefined;
}

/** A word for `sh -c`: bare when safe, else single-quoted. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The argv that runs `mcp-auth <globals> <args>`. */
export function mcpAuthArgv(spec: EntrySpec, args: string[]): string[] {
  return [...spec.command, ...spec.globals, ...args];
}

/**
 * The MCP URL as it is written into a client's config. Clients expand variables in their config files
 * (`${env:X}`, `${X}`, `$X`, depending on the client), so a URL carrying one would have the client fill
 * in, say, AWS_SECRET_ACCESS_KEY and send it to the server:
 * the canonical URL is written with `$`, `{` and `}` percent-encoded (the same URL to the server). A
 * quote, backslash or control character has no place in a URL and could end a string or a shell word:
 * such a URL is refused (exit 2).
 */
export function configUrl(raw: string): string {
  // eslint-disable-next-line no-control-regex
  if (/["'`\\\x00-\x1f\x7f-\x9f]/.test(raw)) {
    throw new UsageError(`refusing to write the MCP URL "${markControl(raw)}" into a client config: it contains a quote, backslash or control character`, {
      hint: "percent-encode them (%22 \", %27 ', %60 `, %5C \\) in --url, or in the profile: mcp-auth profiles set PROFILE --mcp-url URL",
    });
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`not a URL: "${raw}"`);
  }
  if (/[${}]/.test(url.host)) throw new UsageError(`refusing to write the MCP URL "${raw}" into a client config: its host name contains $, { or }`);
  return url.href.replace(/\$/g, "%24").replace(/\{/g, "%7B").replace(/\}/g, "%7D");
}

/**
 * A stdio entry running the proxy (src/commands/proxy.ts): `mcp-auth proxy --profile P --url URL`; or,
 * for a stdio server, `mcp-auth exec --profile P [--env-name VAR] -- CMD ARGS` (src/commands/exec.ts).
 */
export function proxyServer(spec: EntrySpec): { command: string; args: string[]; env?: Record<string, string> } {
  const argv = spec.stdio
    ? mcpAuthArgv(spec, ["exec", "--profile", spec.profile, ...(spec.stdio.envName ? ["--env-name", spec.stdio.envName] : []), "--", ...spec.stdio.argv])
    : mcpAuthArgv(spec, ["proxy", "--profile", spec.profile, "--url", spec.url, ...headerArgs(spec.headers ?? [])]);
  return { command: argv[0]!, args: argv.slice(1), ...(spec.env && Object.keys(spec.env).length && { env: spec.env }) };
}

/** The Authorization header value of the header strategy, with the client's own variable syntax. */
export function bearer(spec: EntrySpec, reference: string): string {
  return `Bearer ${spec.staticToken ?? reference}`;
}

/**
 * The header strategy of a client that expands an environment variable in its config file: the remote
 * entry (its URL under the client's own key) and, unless the token is static, where the variable must be set.
 */
export function envHeaderEntry(spec: EntrySpec, o: { urlKey: string; reference: string; title: string; where: string }): Entry {
  const notes = spec.staticToken
    ? []
    : [`${o.title} reads the token from $${spec.headerVar}: export ${spec.headerVar}="$(mcp-auth token --profile ${spec.profile})" ${o.where} (the token expires; the proxy strategy refreshes it for you).`];
  return { server: { [o.urlKey]: spec.url, headers: { Authorization: bearer(spec, o.reference) } }, notes };
}
