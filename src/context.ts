import { paths as resolvePaths, type Paths } from "./paths.js";
import { UsageError } from "./errors.js";
import { createFetch, type Fetch } from "./oauth/http.js";
import type { OAuthEnv } from "./oauth/client.js";
import { chooseStore, openStore, parseStoreKind, type SecretStore, type StoreKind } from "./store/secrets.js";
import { writeFileAtomic } from "./store/fsutil.js";
import { withLock } from "./store/lock.js";
import { readConfigSync, type Config } from "./target.js";

/**
 * The one object commands receive. Everything that touches the outside world (streams, env, clock,
 * HTTP, secret store, browser) hangs off it, so tests can run commands with their own.
 */
export interface IO {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Can we ask the user something (stdin and stderr are terminals)? */
  interactive: boolean;
  color: boolean;
}

export interface GlobalOptions {
  debug?: boolean;
  store?: string;
  timeout?: string;
  caFile?: string;
  insecure?: boolean;
  allowHttp?: boolean;
  nonInteractive?: boolean;
}

export interface Context {
  env: NodeJS.ProcessEnv;
  io: IO;
  paths: Paths;
  now(): number; // ms
  /** Progress and notices (stderr). */
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
  readonly nonInteractive: boolean;
  readonly allowHttp: boolean;
  fetch: Fetch;
  oauthEnv(): OAuthEnv;
  config(): Config;
  /**
   * Changes config.json safely: under a lock, on a fresh read (so parallel runs never lose each
   * other's edits), written atomically with the previous version kept as config.json.bak.
   */
  updateConfig<T>(change: (cfg: Config) => Promise<T> | T): Promise<T>;
  /** The store forced by --store / MCP_AUTH_STORE / settings, if any (no probing). */
  forcedStore(): string | undefined;
  /** The store new secrets are written to (keychain, else file). */
  secrets(): Promise<SecretStore>;
  /** The store of a given kind (to read a secret where it was written). */
  secretsOf(kind: StoreKind): Promise<SecretStore>;
}

export function createContext(g: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Context {
  const p = resolvePaths(env);
  const err = process.stderr;
  const color = env.NO_COLOR ? false : env.FORCE_COLOR ? env.FORCE_COLOR !== "0" : Boolean(err.isTTY);
  const io: IO = { out: process.stdout, err, interactive: Boolean(process.stdin.isTTY && err.isTTY), color };
  const [timeoutRaw, timeoutSource] = g.timeout !== undefined ? [g.timeout, "--timeout"] : env.MCP_AUTH_TIMEOUT !== undefined ? [env.MCP_AUTH_TIMEOUT, "MCP_AUTH_TIMEOUT"] : ["30", ""];
  const timeoutSec = Number(timeoutRaw);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) throw new UsageError(`${timeoutSource} must be a positive number of seconds, got "${timeoutRaw}"`);
  const paint = (code: number, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const debug = g.debug ? (m: string) => err.write(`${paint(2, "debug")} ${m}\n`) : undefined;
  if (g.insecure) err.write(`${paint(33, "warning:")} --insecure: TLS certificates are NOT verified; anyone on the path can read your tokens\n`);
  const fetchFn = createFetch({ timeoutMs: timeoutSec * 1000, debug, caFile: g.caFile, insecure: g.insecure, env });
  let cfg: Config | undefined;
  let store: Promise<SecretStore> | undefined;
  const byKind = new Map<StoreKind, Promise<SecretStore>>();
  const ctx: Context = {
    env,
    io,
    paths: p,
    now: () => Date.now(),
    info: (m) => err.write(`${m}\n`),
    warn: (m) => err.write(`${paint(33, "warning:")} ${m}\n`),
    debug: debug ?? (() => {}),
    nonInteractive: Boolean(g.nonInteractive) || !io.interactive,
    allowHttp: Boolean(g.allowHttp),
    fetch: fetchFn,
    oauthEnv: () => ({ fetch: fetchFn, discoveryDir: p.discovery, discoveryTtl: Number(env.MCP_AUTH_DISCOVERY_TTL ?? 3600), allowHttp: Boolean(g.allowHttp), now: ctx.now, timeoutMs: timeoutSec * 1000 }),
    config: () => (cfg ??= readConfigSync(p.config)),
    updateConfig: (change) =>
      withLock(p.locks, "config", async () => {
        const next = readConfigSync(p.config);
        const result = await change(next);
        writeFileAtomic(p.config, JSON.stringify(next, null, 2) + "\n", { mode: 0o600, backup: true });
        cfg = next;
        return result;
      }),
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
  };
  return ctx;
}
