import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { McpAuthError } from "../errors.js";
import { onInterrupt } from "../interrupt.js";
import { randomHex } from "./atomic.js";
import { ensureDir, writeError } from "./fsutil.js";

/**
 * A cross-process lock per cache entry, so N parallel `mcp-auth token` calls on an expired cache make
 * one IdP request (and rotating refresh tokens are used exactly once). The lock file records its
 * holder, who touches it every few seconds while working (a browser login can take minutes).
 *
 * When is a lock abandoned?
 * - Holder on this host: only when its pid is gone. A live holder is never broken, however long it
 *   has been silent: a synchronous keychain call (a Secret Service unlock prompt) blocks its event
 *   loop and with it the heartbeat.
 * - Holder on another host (a shared config dir): when the lock (content and mtime) has not changed
 *   for `staleMs` measured on the waiter's own clock. The mtime is only compared with earlier
 *   observations of itself, never with our clock, so clock skew between hosts does not matter.
 * Breaking is atomic: the breaker renames the lock file to a name of its own and keeps it only if it
 * is still the content it judged abandoned; otherwise it puts it back. Two breakers cannot both win.
 */
export interface LockOptions {
  timeoutMs?: number;
  /** A lock on another host not touched for this long (on our clock) is abandoned. */
  staleMs?: number;
  /** Called once if we have to wait, with who holds the lock. */
  onWait?: (holder: string) => void;
  /** Our clock, in ms (tests). */
  now?: () => number;
  /** How we pause between attempts (tests pass one that moves their clock instead of waiting). */
  sleep?: (ms: number) => Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
  at: number;
}

const HEARTBEAT_MS = 5_000;
/** A lock file without a readable holder (being written right now, or left half-written by a crash). */
const UNREADABLE_STALE_MS = 2_000;

export async function withLock<T>(dir: string, name: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await acquire(dir, name, opts);
  try {
    return await fn();
  } finally {
    release();
  }
}

export async function acquire(dir: string, name: string, opts: LockOptions = {}): Promise<() => void> {
  ensureDir(dir, dirname(dir)); // locks live in <config dir>/locks: both must be ours
  const file = join(dir, `${name}.lock`);
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  const staleMs = opts.staleMs ?? 30_000;
  const deadline = now() + timeoutMs;
  const waitNoticeAt = now() + 2_000;
  const watch: Watch = {};
  let noticed = false;
  for (;;) {
    const me = JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() } satisfies Holder);
    let fd: number | undefined;
    try {
      fd = openSync(file, "wx", 0o600);
      writeSync(fd, me);
      closeSync(fd);
      fd = undefined;
      const heartbeat = setInterval(() => {
        try {
          const t = new Date();
          utimesSync(file, t, t);
        } catch {
          /* unwritable or gone: release() copes */
        }
      }, HEARTBEAT_MS);
      heartbeat.unref();
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        clearInterval(heartbeat);
        forget();
        // Only remove our own lock, never one taken after ours was judged abandoned.
        removeIf(file, me);
      };
      const forget = onInterrupt(release); // Ctrl-C in the middle (a browser login): no lock file left behind
      return release;
    } catch (e) {
      if (fd !== undefined) {
        // Created but could not write the holder (disk full): leave no empty lock behind.
        closeSync(fd);
        rmSync(file, { force: true });
      }
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw writeError(e, dir);
    }
    const holder = breakIfStale(file, staleMs, watch, now);
    if (now() > deadline) {
      throw new McpAuthError(`timed out waiting for another mcp-auth process${holder ? ` (${holder})` : ""} holding ${file}`, {
        hint: "if it is not running any more, delete that file",
      });
    }
    if (!noticed && holder && now() > waitNoticeAt) {
      noticed = true;
      opts.onWait?.(holder);
    }
    await sleep(20 + Math.random() * 40);
  }
}

/** Is process `pid` running (on this machine)? One we may not signal is. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** What a waiter has seen of a lock: the same content and mtime since `since` (the waiter's clock). */
export interface Watch {
  seen?: string;
  since?: number;
}

/**
 * Breaks the lock if abandoned (see the module comment); returns a description of a holder that is
 * still there. `watch` carries the waiter's earlier observations from one call to the next.
 */
export function breakIfStale(file: string, staleMs: number, watch: Watch = {}, now: () => number = Date.now, host: string = hostname()): string | undefined {
  let raw: string;
  let mtime: number;
  try {
    raw = readFileSync(file, "utf8");
    mtime = statSync(file).mtimeMs;
  } catch {
    return undefined; // released meanwhile
  }
  let holder: Holder | undefined;
  try {
    const h = JSON.parse(raw) as Holder;
    if (h && Number.isInteger(h.pid) && h.pid > 0 && typeof h.host === "string") holder = h;
  } catch {
    /* unreadable: judged by how long it stays so */
  }
  const t = now();
  const seen = `${mtime}\n${raw}`;
  if (watch.seen !== seen) {
    watch.seen = seen;
    watch.since = t;
  }
  const unchangedFor = t - watch.since!;
  const abandoned = !holder
    ? unchangedFor >= UNREADABLE_STALE_MS
    : holder.host === host
      ? !isAlive(holder.pid)
      : unchangedFor >= staleMs;
  if (!abandoned) return holder ? `pid ${holder.pid} on ${holder.host}` : undefined;
  removeIf(file, raw);
  return undefined;
}

/**
 * Removes `file` if (and only if) it still holds `expected`, atomically: the file is first renamed to
 * a name only we use, then checked; anything else is put back where it was (unless the name was
 * taken again meanwhile, when the newer lock wins). Returns whether we removed it.
 */
export function removeIf(file: string, expected: string): boolean {
  const mine = `${file}.${process.pid}-${randomHex(4)}.claim`;
  try {
    renameSync(file, mine);
  } catch {
    return false; // gone: released, or another breaker won
  }
  let content: string | undefined;
  try {
    content = readFileSync(mine, "utf8");
  } catch {
    /* unreadable: treat as not ours */
  }
  if (content !== expected) {
    try {
      linkSync(mine, file); // back in place, unless a newer lock holds the name already
    } catch {
      /* EEXIST: the newer lock stays */
    }
  }
  rmSync(mine, { force: true });
  return content === expected;
}
