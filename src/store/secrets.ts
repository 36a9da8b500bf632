import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, realpathSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { McpAuthError, UsageError } from "../errors.js";
import type { Paths } from "../paths.js";
import { ensureDir } from "./fsutil.js";
import { editSecretsFile, readSecretsFile } from "./secrets-file.js";

/**
 * Where long-lived secrets (client secrets, refresh tokens) live: the OS keychain when one is
 * usable, else a 0600 file in the config dir, or process memory when asked (`MCP_AUTH_STORE=memory`).
 */
export type StoreKind = "keychain" | "file" | "memory";
export const STORE_KINDS: readonly StoreKind[] = ["keychain", "file", "memory"];

export interface SecretStore {
  readonly kind: StoreKind;
  /** Human description for `status`, e.g. "keychain (Secret Service)". */
  readonly description: string;
  get(account: string): Promise<string | null>;
  set(account: string, value: string): Promise<void>;
  delete(account: string): Promise<boolean>;
}

export const SERVICE = "mcp-auth";

// ---------------------------------------------------------------------------------------------------
// keychain: @napi-rs/keyring (no install scripts; prebuilt for every platform). On Linux it is pinned
// to the Secret Service: its default would fall back to the kernel keyring, which forgets secrets at
// reboot and after three days.

type KeyringModule = typeof import("@napi-rs/keyring");
const ENTRY_OPTS = { linux: { store: "secret-service" } } as never;

/** What the keychain store needs of @napi-rs/keyring: one entry per (service, account). Tests pass a store with a size limit. */
export interface KeyringBackend {
  Entry: new (service: string, account: string, options?: never) => {
    getPassword(): string | null | undefined;
    setPassword(value: string): void;
    deletePassword(): boolean;
  };
}

/**
 * The keychain is one per user, but a config dir is one per setting-up: a per-job MCP_AUTH_CONFIG_DIR
 * must not see another dir's `client-secret:ci`. So each account name carries a short hash of the
 * config dir's real path (`client-secret:ci@3f2a9c1b0d4e`). Names without it, written by earlier
 * versions, are still read, and moved to the new name on first use (no new login needed).
 */
export function configDirTag(dir: string, platform: string = process.platform): string {
  let real = canonicalPath(resolve(dir));
  if (platform === "win32") real = real.toLowerCase(); // one dir, whatever the case it was typed in
  return createHash("sha256").update(real).digest("hex").slice(0, 12);
}

/** The real path of `p`, or of its nearest existing ancestor plus the rest (the dir may not exist yet). */
function canonicalPath(p: string): string {
  const rest: string[] = [];
  for (let cur = p; ; ) {
    try {
      return join(realpathSync.native(cur), ...rest.reverse());
    } catch {
      const up = dirname(cur);
      if (up === cur) return p;
      rest.push(basename(cur));
      cur = up;
    }
  }
}

const NO_ENTRY = /no (matching )?(entry|result)/i;

/**
 * The most one keychain entry holds, in UTF-16 code units. Windows Credential Manager refuses a blob
 * over 2,560 bytes (CRED_MAX_CREDENTIAL_BLOB_SIZE) and the keyring stores UTF-16 there, so 1,280
 * units; those are at most 3,840 bytes of UTF-8, under the 4 KB that macOS tools handle in one item.
 * Larger values (an Entra or Okta refresh token, an RSA private key) are split (docs/keychains.md).
 */
export const KEYCHAIN_ENTRY_UNITS = 1280;
/** The main entry of a split value holds `PREFIX<generation>:<chunks>:<sha256 prefix>`; its chunks are `<account>#<generation>.<i>`. */
const SPLIT = "mcp-auth-split:1:";
const SPLIT_RE = /^mcp-auth-split:1:([0-9a-f]{8}):([1-9][0-9]{0,3}):([0-9a-f]{16})$/;

function digest(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex").slice(0, 16);
}

/** `value` in pieces of at most `units` UTF-16 code units, never cutting a surrogate pair in two. */
export function splitValue(value: string, units: number = KEYCHAIN_ENTRY_UNITS): string[] {
  const parts: string[] = [];
  for (let i = 0; i < value.length; ) {
    let end = Math.min(i + units, value.length);
    const last = value.charCodeAt(end - 1);
    if (end < value.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    parts.push(value.slice(i, end));
    i = end;
  }
  return parts;
}

class KeychainStore implements SecretStore {
  readonly kind = "keychain" as const;
  readonly description: string;
  private readonly tag: string;
  constructor(
    private readonly mod: KeyringBackend,
    configDir: string,
  ) {
    this.description =
      process.platform === "darwin" ? "keychain (macOS Keychain)" : process.platform === "win32" ? "keychain (Credential Manager)" : "keychain (Secret Service)";
    this.tag = configDirTag(configDir);
  }
  private entry(name: string) {
    return new this.mod.Entry(SERVICE, name, ENTRY_OPTS);
  }
  private read(name: string): string | null {
    try {
      return this.entry(name).getPassword() ?? null;
    } catch (e) {
      if (NO_ENTRY.test(String((e as Error).message))) return null;
      throw keychainError("read", e);
    }
  }
  private write(name: string, value: string): void {
    try {
      this.entry(name).setPassword(value);
    } catch (e) {
      throw keychainError("write", e);
    }
  }
  private remove(name: string): boolean {
    try {
      return this.entry(name).deletePassword();
    } catch (e) {
      if (NO_ENTRY.test(String((e as Error).message))) return false;
      throw keychainError("delete from", e);
    }
  }
  private own(account: string): string {
    return `${account}@${this.tag}`;
  }
  /** The chunk names a main entry's text points at (none when it holds the value itself). */
  private chunksOf(name: string, text: string | null): string[] {
    const m = text === null ? null : SPLIT_RE.exec(text);
    return m ? Array.from({ length: Number(m[2]) }, (_, i) => `${name}#${m[1]}.${i}`) : [];
  }
  /** A main entry's value: itself, or its chunks joined; null when a chunk is missing or does not match (never a truncated secret). */
  private join(name: string, text: string): string | null {
    if (!text.startsWith(SPLIT)) return text;
    const m = SPLIT_RE.exec(text);
    if (!m) return null;
    let value = "";
    for (const chunk of this.chunksOf(name, text)) {
      const part = this.read(chunk);
      if (part === null) return null;
      value += part;
    }
    return digest(value) === m[3] ? value : null;
  }
  async get(account: string) {
    const own = this.own(account);
    const text = this.read(own);
    if (text !== null) return this.join(own, text);
    // An entry from before names carried the config dir: move it here, so the next read is one call.
    const legacy = this.read(account);
    if (legacy === null) return null;
    try {
      await this.set(account, legacy);
      this.remove(account);
    } catch {
      /* the old entry stays and still works; the move is tried again next time */
    }
    return legacy;
  }
  /**
   * A value too large for one entry is written as chunks under a new generation first, then the main
   * entry is switched to point at them, then the previous generation's chunks are deleted: a failure
   * at any step leaves the old value readable, and a rewrite with fewer chunks leaves none behind.
   */
  async set(account: string, value: string) {
    const own = this.own(account);
    const stale = this.chunksOf(own, this.read(own));
    // A value that merely looks like a pointer is split too, so a main entry that looks like one always is one.
    if (value.length <= KEYCHAIN_ENTRY_UNITS && !value.startsWith(SPLIT)) {
      this.write(own, value);
    } else {
      let generation: string;
      do generation = randomBytes(4).toString("hex");
      while (stale.some((name) => name.includes(`#${generation}.`)));
      const parts = splitValue(value);
      const written: string[] = [];
      try {
        parts.forEach((part, i) => {
          const name = `${own}#${generation}.${i}`;
          this.write(name, part);
          written.push(name);
        });
        this.write(own, `${SPLIT}${generation}:${parts.length}:${digest(value)}`);
      } catch (e) {
        for (const name of written) this.tryRemove(name);
        throw e;
      }
    }
    for (const name of stale) this.tryRemove(name);
  }
  private tryRemove(name: string): void {
    try {
      this.remove(name);
    } catch {
      /* an orphaned chunk is unreadable without its main entry; the next rewrite or delete retries */
    }
  }
  async delete(account: string) {
    const own = this.own(account);
    for (const chunk of this.chunksOf(own, this.read(own))) this.remove(chunk);
    const removed = this.remove(own);
    const legacy = this.remove(account);
    return removed || legacy;
  }
}

/** The keychain store over a given keyring backend (the real module, or a test's). */
export function keychainStore(mod: KeyringBackend, configDir: string): SecretStore {
  return new KeychainStore(mod, configDir);
}

function keychainError(verb: string, e: unknown) {
  return new McpAuthError(`cannot ${verb} the keychain: ${(e as Error).message}`, {
    cause: e,
    hint: "unlock it, or use MCP_AUTH_STORE=file",
  });
}

const PROBE_TIMEOUT_MS = 2000;

/**
 * Is a keychain usable right now? On Linux a D-Bus that accepts and never answers would hang the
 * process for good (not even process.exit returns), so the first call runs in a child process with
 * a hard timeout; only after it answered do we call the keychain in-process.
 */
export async function probeKeychain(env: NodeJS.ProcessEnv): Promise<{ ok: true; mod: KeyringModule } | { ok: false; reason: string }> {
  const require = createRequire(import.meta.url);
  let modPath: string;
  try {
    modPath = require.resolve("@napi-rs/keyring");
  } catch {
    return { ok: false, reason: "the keyring module is not installed" };
  }
  if (process.platform === "linux") {
    if (!env.DBUS_SESSION_BUS_ADDRESS) return { ok: false, reason: "no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set)" };
    const script =
      `const {Entry}=require(${JSON.stringify(modPath)});` +
      `try{new Entry(${JSON.stringify(SERVICE)},'__probe__',{linux:{store:'secret-service'}}).getPassword();}` +
      `catch(e){if(!/no (matching )?(entry|result)/i.test(e.message)){process.stderr.write(e.message);process.exit(1);}}`;
    const res = await runProbe(script, env);
    if (!res.ok) return res;
  }
  try {
    return { ok: true, mod: require(modPath) as KeyringModule };
  } catch (e) {
    return { ok: false, reason: `the keyring module failed to load: ${(e as Error).message}` };
  }
}

function runProbe(script: string, env: NodeJS.ProcessEnv): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["-e", script], { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve({ ok: false, reason: `the Secret Service did not answer within ${PROBE_TIMEOUT_MS / 1000}s` });
    }, PROBE_TIMEOUT_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: e.message });
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? { ok: true } : { ok: false, reason: err.trim().split("\n")[0] || `probe exited with ${code}` });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// file: one JSON map in a 0600 file inside the 0700 config dir, edited under a lock (./secrets-file.ts).

class FileStore implements SecretStore {
  readonly kind = "file" as const;
  readonly description: string;
  constructor(private readonly p: Paths) {
    this.description = `file (${p.secretsFile})`;
  }
  async get(account: string) {
    const v = readSecretsFile(this.p)[account];
    return typeof v === "string" ? v : null;
  }
  async set(account: string, value: string) {
    await editSecretsFile(this.p, (s) => {
      s[account] = value;
      return true;
    });
  }
  async delete(account: string) {
    return editSecretsFile(this.p, (s) => {
      if (!Object.hasOwn(s, account)) return false;
      delete s[account];
      return true;
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// memory: nothing outlives the process (CI steps that must leave no trace).

const memory = new Map<string, string>();
/** For tests, where one process runs many commands: empty the memory store. */
export function resetMemoryStore(): void {
  memory.clear();
}
class MemoryStore implements SecretStore {
  readonly kind = "memory" as const;
  readonly description = "memory (nothing persisted)";
  async get(account: string) {
    return memory.get(account) ?? null;
  }
  async set(account: string, value: string) {
    memory.set(account, value);
  }
  async delete(account: string) {
    return memory.delete(account);
  }
}

// ---------------------------------------------------------------------------------------------------

export interface StoreChoice {
  /** --store, else MCP_AUTH_STORE, else the config setting (parsed); undefined = automatic. */
  forced?: StoreKind;
  paths: Paths;
  env: NodeJS.ProcessEnv;
  /** Called once per config dir when we fall back to the file store. */
  notice: (message: string) => void;
}

export function parseStoreKind(value: string | undefined, source: string): StoreKind | undefined {
  if (value === undefined || value === "" || value === "auto") return undefined;
  if ((STORE_KINDS as readonly string[]).includes(value)) return value as StoreKind;
  throw new UsageError(`${source} must be one of keychain, file, memory (got "${value}")`);
}

/** Opens the store for `kind` without any fallback (used to read a secret where it was written). */
export async function openStore(kind: StoreKind, c: StoreChoice): Promise<SecretStore> {
  if (kind === "memory") return new MemoryStore();
  if (kind === "file") return new FileStore(c.paths);
  const probe = await probeKeychain(c.env);
  if (!probe.ok) throw new McpAuthError(`the keychain is not usable: ${probe.reason}`, { hint: "use --store file (or MCP_AUTH_STORE=file)" });
  return new KeychainStore(probe.mod, c.paths.dir);
}

/** The store new secrets go to: the forced one, else the keychain, else the file (announced once). */
export async function chooseStore(c: StoreChoice): Promise<SecretStore> {
  if (c.forced) return openStore(c.forced, c);
  const probe = await probeKeychain(c.env);
  if (probe.ok) return new KeychainStore(probe.mod, c.paths.dir);
  const marker = join(c.paths.dir, ".file-store-notice");
  if (!existsSync(marker)) {
    c.notice(`no usable keychain (${probe.reason}); keeping secrets in ${c.paths.secretsFile} (mode 0600).`);
    try {
      ensureDir(c.paths.dir);
      writeFileSync(marker, "", { mode: 0o600 });
    } catch {
      /* best effort */
    }
  }
  return new FileStore(c.paths);
}
