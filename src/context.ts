import { paths as resolvePaths, type Paths } from "./paths.js";
import { timeoutSeconds } from "./core/inputs.js";
import { createFetch, createRelay, relayFromFetch, withAddressPolicy, type Fetch, type Relay, type Resolver, type Timers } from "./oauth/http.js";
import type { OAuthEnv } from "./oauth/client.js";
import type { Plugins } from "./core/provider.js";
import { chooseStore, openStore, parseStoreKind, type SecretStore, type StoreKind } from "./store/secrets.js";
import { updateConfigFile } from "./store/config-file.js";
import { readConfigSync, type Config } from "./profile.js";
import { createTokenCache, type TokenCache } from "./store/cache.js";
import { createTerminal, type Terminal } from "./io/terminal.js";
import { systemBrowser, type Browser } from "./io/browser.js";
import { sanitize } from "./io/sanitize.js";

/**
 * The one object commands receive. Everything that touches the outside world (terminal, env, clock,
 * HTTP, browser, secret store, token cache) hangs off it, so tests build their own
 * (test/helpers/context.ts) and run commands in-process.
 */
export type IO = Terminal;

export interface GlobalOptions {
  debug?: boolean;
  store?: string;
  timeout?: string;
  caFile?: string;
  insecure?: boolean;
  allowHttp?: boolean;
  allowPrivateNetwork?: boolean;
  nonInteractive?: boolean;
  /** --config-dir: overrides MCP_AUTH_CONFIG_DIR. */
  configDir?: string;
}

export interface Clock {
  now(): number; // ms
}

/** The time that passes while waiting (lock retries, request time-outs): real, or one a test moves. */
export interface Waits extends Timers {
  now(): number; // ms
  sleep(ms: number): Promise<void>;
}

export interface Context {
  env: NodeJS.ProcessEnv;
  /** The terminal: streams, interactivity, colour, prompter, spinner. */
  io: Terminal;
  paths: Paths;
  clock: Clock;
  now(): number; // ms, = clock.now()
  browser: Browser;
  /** Progress and notices (stderr), sanitised. */
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
  readonly nonInteractive: boolean;
  readonly allowHttp: boolean;
  fetch: Fetch;
  /** Requests `mcp-auth proxy` and `mcp-auth serve` send to the profile's MCP server (src/oauth/http.ts createRelay). */
  relay: Relay;
  /**
   * The fetch for URLs a server sent (metadata, endpoints, issuers): each may lead no further into
   * the user's network than `userUrls`, the URLs the user gave (src/oauth/address-policy.ts).
   */
  fetchFrom(userUrls: readonly string[]): Fetch;
  /** `userUrls`: as for fetchFrom; every endpoint the metadata names is then held to them. */
  oauthEnv(userUrls?: readonly string[]): OAuthEnv;
  config(): Config;
  /**
   * Changes config.json safely: under a lock, on a fresh read (so parallel runs never lose each
   * other's edits), written atomically with the previous version backed up (src/store/config-file.ts).
   */
  updateConfig<T>(change: (cfg: Config) => Promise<T> | T): Promise<T>;
  /** The store forced by --store / MCP_AUTH_STORE / settings, if any (no probing). */
  forcedStore(): string | undefined;
  /** The store new secrets are written to (keychain, else file). */
  secrets(): Promise<SecretStore>;
  /** The store of a given kind (to read a secret where it was written). */
  secretsOf(kind: StoreKind): Promise<SecretStore>;
  /** The token cache (records, refresh/access tokens, locks). */
  tokens: TokenCache;
  /** The IdP providers and MCP client writers (src/plugins.ts): core reaches plug-ins only through these. */
  plugins: Plugins;
}

/** What a test (or another front end) may supply instead of the process's own. */
export interface ContextDeps {
  /** The plug-in registries (the wiring layer passes src/plugins.ts). */
  plugins: Plugins;
  env?: NodeJS.ProcessEnv;
  terminal?: Terminal;
  clock?: Clock;
  browser?: Browser;
  fetch?: Fetch;
  /** Name resolution for every request (tests map names to this machine's own addresses). */
  resolve?: Resolver;
  /** Default: real time. */
  waits?: Waits;
}

export function createContext(g: GlobalOptions, deps: ContextDeps): Context {
  const env = deps.env ?? process.env;
  const p = resolvePaths(env, undefined, g.configDir);
  const io = deps.terminal ?? createTerminal({ env, nonInteractive: g.nonInteractive });
  const clock = deps.clock ?? { now: () => Date.now() };
  const [timeoutRaw, timeoutSource] = g.timeout !== undefined ? [g.timeout, "--timeout"] : env.MCP_AUTH_TIMEOUT !== undefined ? [env.MCP_AUTH_TIMEOUT, "MCP_AUTH_TIMEOUT"] : ["30", ""];
  const timeoutSec = timeoutSeconds(timeoutSource, timeoutRaw);
  const debug = g.debug ? (m: string) => io.err.write(`${io.paint.dim("debug")} ${sanitize(m)}\n`) : undefined;
  if (g.insecure) io.warn("--insecure: TLS certificates are NOT verified; anyone on the path can read your tokens");
  const httpOptions = { timeoutMs: timeoutSec * 1000, debug, warn: (m: string) => io.warn(m), caFile: g.caFile, insecure: g.insecure, env, resolve: deps.resolve, timers: deps.waits };
  const fetchFn = deps.fetch ?? createFetch(httpOptions);
  // A test's own fetch carries the relayed requests too.
  const relay = deps.fetch ? relayFromFetch(deps.fetch) : createRelay(httpOptions);
  // One policy per set of URLs, so a long-running proxy that refreshes often reuses its connections.
  const policies = new Map<string, Fetch>();
  const fetchFrom = (userUrls: readonly string[]): Fetch => {
    const key = JSON.stringify(userUrls);
    let f = policies.get(key);
    if (!f) policies.set(key, (f = withAddressPolicy(fetchFn, { references: [...userUrls], allowPrivateNetwork: Boolean(g.allowPrivateNetwork) })));
    return f;
  };
  let cfg: Config | undefined;
  let store: Promise<SecretStore> | undefined;
  const byKind = new Map<StoreKind, Promise<SecretStore>>();
  const ctx: Context = {
    env,
    io,
    paths: p,
    clock,
    now: () => clock.now(),
    browser: deps.browser ?? systemBrowser(env, (m) => io.warn(m)),
    info: (m) => io.info(m),
    warn: (m) => io.warn(m),
    debug: debug ?? (() => {}),
    nonInteractive: !io.interactive,
    allowHttp: Boolean(g.allowHttp),
    fetch: fetchFn,
    relay,
    fetchFrom,
    oauthEnv: (userUrls) => ({ plugins: deps.plugins, fetch: userUrls?.length ? fetchFrom(userUrls) : fetchFn, discoveryDir: p.discovery, discoveryTtl: Number(env.MCP_AUTH_DISCOVERY_TTL ?? 3600), allowHttp: Boolean(g.allowHttp), now: ctx.now, timeoutMs: timeoutSec * 1000 }),
    config: () => (cfg ??= readConfigSync(p.config)),
    updateConfig: async (change) => {
      const done = await updateConfigFile(p, change, { now: ctx.now });
      cfg = done.config;
      return done.result;
    },
    forcedStore: () => g.store ?? env.MCP_AUTH_STORE ?? ctx.config().settings?.store,
    secrets: () => {
      const forced = parseStoreKind(ctx.forcedStore(), g.store ? "--store" : env.MCP_AUTH_STORE ? "MCP_AUTH_STORE" : "settings.store");
      return (store ??= chooseStore({ forced, paths: p, env, notice: (m) => ctx.warn(m) }).then((s) => {
        byKind.set(s.kind, Promise.resolve(s));
        return s;
      }));
    },
    secretsOf: (kind) => {
      let s = byKind.get(kind);
      if (!s) byKind.set(kind, (s = openStore(kind, { paths: p, env, notice: () => {} })));
      return s;
    },
    tokens: undefined as unknown as TokenCache,
    plugins: deps.plugins,
  };
  ctx.tokens = createTokenCache({
    paths: p,
    secrets: () => ctx.secrets(),
    secretsOf: (kind) => ctx.secretsOf(kind),
    memoryOnly: () => ctx.forcedStore() === "memory",
    accessTokensInKeychain: () => (env.MCP_AUTH_ACCESS_TOKEN_STORE ?? ctx.config().settings?.accessTokenStore) === "keychain",
    now: () => clock.now(),
    lockTiming: deps.waits && { now: () => deps.waits!.now(), sleep: (ms) => deps.waits!.sleep(ms) },
  });
  return ctx;
}
