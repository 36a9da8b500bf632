import { bearer, defineClientWriter, headerArgs, type EntrySpec, exists, homeOf, joinFor, mcpAuthArgv, onPath, proxyServer, shQuote } from "../sdk.js";

/**
 * Claude Code (docs/clients.md). Remote `http` entries take a `headersHelper`:
 * a shell command (run through /bin/sh, 10 s limit, fresh on every connection and after a 401/403)
 * printing `{"Authorization":"Bearer …"}`. Ours is `mcp-auth token --format headers-json`, answered from
 * the cache by the fast path. Scopes: project → ./.mcp.json; user → `mcpServers` at the top of
 * ~/.claude.json; local (Claude Code's default) → `projects[<cwd>].mcpServers` there.
 */
export function helperCommand(spec: EntrySpec): string {
  // Extra headers ride along as flags: the helper prints them beside Authorization, a --header-env value read when it runs.
  return mcpAuthArgv(spec, ["--non-interactive", "token", "--profile", spec.profile, "--format", "headers-json", ...headerArgs(spec.headers ?? [])]).map(shQuote).join(" ");
}

/** The callback port Claude Code uses when an entry names none (claude-code 2.1.197). */
const CLAUDE_CALLBACK_PORT = 3118;

export const claude = defineClientWriter({
  id: "claude",
  title: "Claude Code",
  scopes: ["local", "user", "project"],
  defaultScope: "local",
  // Claude Code rewrites ~/.claude.json itself: `claude mcp add-json` writes there when it is on PATH.
  cliScopes: ["local", "user"],
  strategies: ["helper", "header", "proxy", "native"],
  defaultStrategy: "helper",
  // GitHub Copilot CLI and VS Code read the project .mcp.json too and drop `headersHelper` (they would
  // connect without the token): there the default is the stdio proxy, which every reader runs.
  scopeDefaults: { project: "proxy" },
  configPath(env, platform, scope, cwd) {
    if (scope === "project") return joinFor(platform, cwd, ".mcp.json");
    // CLAUDE_CONFIG_DIR moves Claude Code's files; that .claude.json follows it is not documented (docs/clients.md).
    return joinFor(platform, env.CLAUDE_CONFIG_DIR || homeOf(env), ".claude.json");
  },
  serversPath(scope, cwd) {
    return scope === "local" ? ["projects", cwd, "mcpServers"] : ["mcpServers"];
  },
  entry(spec) {
    const notes: string[] = [];
    let server: Record<string, unknown>;
    if (spec.native) {
      // Claude Code's own OAuth with a pre-registered client: redirect http://localhost:<callbackPort>/callback (docs/clients.md).
      const port = spec.native.port ?? CLAUDE_CALLBACK_PORT;
      server = { type: "http", url: spec.url, oauth: { clientId: spec.native.clientId, callbackPort: port, ...(spec.native.scopes && { scopes: spec.native.scopes.join(" ") }) } };
      notes.push(`Claude Code logs in itself as client ${spec.native.clientId}: that client must be public and have http://localhost:${port}/callback as a redirect URI. Run /mcp in Claude Code to log in.`);
    } else if (spec.strategy === "proxy") {
      server = { type: "stdio", ...proxyServer(spec) };
    } else if (spec.strategy === "header") {
      server = { type: "http", url: spec.url, headers: { Authorization: bearer(spec, `\${${spec.headerVar}}`) } };
      if (!spec.staticToken) notes.push(`Claude Code reads the token from $${spec.headerVar}: start it with ${spec.headerVar}="$(mcp-auth token --profile ${spec.profile})" claude (the token expires; the helper strategy refreshes it for you)`);
    } else {
      server = { type: "http", url: spec.url, headersHelper: helperCommand(spec) };
    }
    if (spec.scope === "project" && spec.strategy === "proxy") {
      notes.push("Claude Code starts a project's servers after you trust the folder and approve them; GitHub Copilot CLI and VS Code run this same entry.");
    }
    if (spec.scope === "project" && spec.strategy === "helper") {
      notes.push("GitHub Copilot CLI and VS Code read .mcp.json too but ignore headersHelper: they connect to this entry without the token (the default project strategy, proxy, works in all of them).");
    }
    if ((spec.scope === "project" || spec.scope === "local") && spec.strategy === "helper") {
      notes.push("Claude Code runs a project or local headersHelper only after you accept the folder's trust dialog; until then it connects without the token.");
    }
    return { server, notes };
  },
  installed({ env, platform }) {
    // ~/.claude/ is Claude Code's own (settings, sessions); ~/.claude.json may be one add-client wrote.
    return Boolean(onPath(env, "claude", platform)) || exists(env.CLAUDE_CONFIG_DIR || joinFor(platform, homeOf(env), ".claude"));
  },
});
