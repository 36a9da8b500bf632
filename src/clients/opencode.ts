import { defineClientWriter, exists, homeOf, joinFor, mcpAuthArgv, onPath } from "../sdk.js";

/**
 * OpenCode (docs/clients.md, OpenCode). Servers live under `mcp` in `opencode.json`/`opencode.jsonc`:
 * user in `$XDG_CONFIG_HOME/opencode` (`~/.config/opencode` on every OS), project at the project root
 * or in `.opencode/`. A local entry is `{ "type": "local", "command": [argv…] }`; a remote one
 * `{ "type": "remote", "url", "headers" }`, where `{env:NAME}` anywhere in the file is replaced by
 * the variable when OpenCode loads it. Default: the stdio proxy; `header` writes `{env:NAME}` and
 * turns OpenCode's own OAuth detection off (`oauth: false`), since mcp-auth supplies the token.
 */
function configDir(env: NodeJS.ProcessEnv, platform: string): string {
  return joinFor(platform, env.XDG_CONFIG_HOME || joinFor(platform, homeOf(env), ".config"), "opencode");
}

/** The file `opencode mcp add` edits in a directory: an existing opencode.json or .jsonc, else opencode.json. */
function fileIn(platform: string, dirs: string[]): string {
  const candidates = dirs.flatMap((d) => [joinFor(platform, d, "opencode.json"), joinFor(platform, d, "opencode.jsonc")]);
  return candidates.find((f) => exists(f)) ?? candidates[0]!;
}

export const opencode = defineClientWriter({
  id: "opencode",
  title: "OpenCode",
  scopes: ["user", "project"],
  defaultScope: "user",
  strategies: ["proxy", "header"],
  defaultStrategy: "proxy",
  configPath(env, platform, scope, cwd) {
    return scope === "project" ? fileIn(platform, [cwd, joinFor(platform, cwd, ".opencode")]) : fileIn(platform, [configDir(env, platform)]);
  },
  serversPath() {
    return ["mcp"];
  },
  entry(spec) {
    if (spec.strategy === "header") {
      const notes = spec.staticToken
        ? []
        : [`OpenCode reads the token from $${spec.headerVar}: export ${spec.headerVar}="$(mcp-auth token --profile ${spec.profile})" before starting opencode (the token expires; the proxy strategy refreshes it for you).`];
      return { server: { type: "remote", url: spec.url, headers: { Authorization: `Bearer ${spec.staticToken ?? `{env:${spec.headerVar}}`}` }, oauth: false }, notes };
    }
    return { server: { type: "local", command: mcpAuthArgv(spec, ["proxy", "--profile", spec.profile, "--url", spec.url]) }, notes: ["Start a new OpenCode session to load the server."] };
  },
  installed({ env, platform }) {
    // The executable, or the data directory OpenCode itself keeps (XDG data, `~/.local/share/opencode`).
    return Boolean(onPath(env, "opencode", platform)) || exists(joinFor(platform, env.XDG_DATA_HOME || joinFor(platform, homeOf(env), ".local", "share"), "opencode"));
  },
});
