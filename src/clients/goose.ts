import { defineClientWriter, exists, hasOwnData, homeOf, joinFor, onPath, proxyServer } from "../sdk.js";

/**
 * Goose (block/goose, CLI and Desktop share it; docs/clients.md, Goose). One user file, `config.yaml`
 * in Goose's config dir: `$GOOSE_PATH_ROOT/config` when that is set, `%APPDATA%\Block\goose\config` on
 * Windows, `$XDG_CONFIG_HOME/goose` (default `~/.config/goose`, macOS too) elsewhere. Servers are the
 * `extensions:` mapping, keyed by the lower-cased name, each tagged by `type`: `stdio` with `cmd`/`args`/
 * `envs`, `streamable_http` with `uri`/`headers`, where `${NAME}` is filled from the variables listed in
 * `env_keys` (looked up in Goose's environment or its secret store). `enabled` is required; `timeout`
 * (seconds, default 300) bounds each call.
 * The file is YAML: edited by src/store/yaml.ts (comments and layout kept).
 * Default: the stdio proxy (fresh tokens); `header` writes `${NAME}` plus `env_keys: [NAME]`.
 */
const GOOSE_TIMEOUT_SEC = 300;

/** etcetera's strategies, as Goose picks them (XDG on macOS too; an XDG variable counts only when absolute). */
function gooseDir(env: NodeJS.ProcessEnv, platform: string, kind: "config" | "data"): string {
  const root = env.GOOSE_PATH_ROOT;
  if (root && (platform === "win32" ? /^([A-Za-z]:[\\/]|\\\\)/.test(root) : root.startsWith("/"))) return joinFor(platform, root, kind);
  if (platform === "win32") return joinFor(platform, env.APPDATA || joinFor(platform, homeOf(env), "AppData", "Roaming"), "Block", "goose", kind);
  const xdg = kind === "config" ? env.XDG_CONFIG_HOME : env.XDG_DATA_HOME;
  const base = xdg?.startsWith("/") ? xdg : joinFor(platform, homeOf(env), ...(kind === "config" ? [".config"] : [".local", "share"]));
  return joinFor(platform, base, "goose");
}

export const goose = defineClientWriter({
  id: "goose",
  title: "Goose",
  format: "yaml",
  scopes: ["user"],
  defaultScope: "user",
  strategies: ["proxy", "header"],
  defaultStrategy: "proxy",
  // Goose keys an extension by its name lower-cased (name_to_key): an upper-case key would not be found again.
  nameChars: /^[a-z0-9_-]+$/,
  configPath(env, platform) {
    return joinFor(platform, gooseDir(env, platform, "config"), "config.yaml");
  },
  serversPath() {
    return ["extensions"];
  },
  entry(spec) {
    const base = { name: spec.name, enabled: true, timeout: GOOSE_TIMEOUT_SEC };
    if (spec.strategy === "header") {
      const server = { ...base, type: "streamable_http", uri: spec.url, headers: { Authorization: `Bearer ${spec.staticToken ?? `\${${spec.headerVar}}`}` }, ...(!spec.staticToken && { env_keys: [spec.headerVar] }) };
      const notes = spec.staticToken
        ? []
        : [`Goose reads the token from $${spec.headerVar}: export ${spec.headerVar}="$(mcp-auth token --profile ${spec.profile})" before starting goose (the token expires; the proxy strategy refreshes it for you).`];
      return { server, notes };
    }
    const { command, args, env } = proxyServer(spec);
    return { server: { ...base, type: "stdio", cmd: command, args, ...(env && { envs: env }) }, notes: ["Start a new Goose session to load the extension."] };
  },
  installed({ env, platform }) {
    // The executable, or Goose's data dir (sessions, logs), or anything of its own beside config.yaml.
    return Boolean(onPath(env, "goose", platform)) || exists(gooseDir(env, platform, "data")) || hasOwnData(gooseDir(env, platform, "config"), ["config.yaml"]);
  },
});
