import { closeSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, unlinkSync, utimesSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { McpAuthError } from "../errors.js";
import { ensureDir } from "./fsutil.js";

/**
 * A cross-process lock per cache entry, so N parallel `mcp-auth token` calls on an expired cache make
 * one IdP request (and rotating refresh tokens are used exactly once). The lock file records its
 * holder, who touches it every few seconds while working (a browser login can take minutes). A lock
 * is broken when its holder died (same host, pid gone) or stopped touching it (any host: a CI
 * container that was killed), so a crashed process never blocks others for long.
 */
export interface LockOptions {
  timeoutMs?: number;
  /** A lock not touched for this long is abandoned. */
  staleMs?: number;
  /** Called once if we have to wait, with who holds the lock. */
  onWait?: (holder: string) => void;
}

interface Holder {
  pid: number;
  host: string;
  at: number;
}

const HEARTBEAT_MS = 5_000;

export async function withLock<T>(dir: string, name: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await acquire(dir, name, opts);
  try {
    return await fn();
  } finally {
    release();
  }
}

export async function acquire(dir: string, name: string, opts: LockOptions = {}): Promise<() => void> {
  ensureDir(dir);
  const file = join(dir, `${name}.lock`);
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  const staleMs = opts.staleMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const waitNoticeAt = Date.now() + 2_000;
  let noticed = false;
  for (;;) {
    const me = JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() } satisfies Holder);
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, me);
      closeSync(fd);
      const heartbeat = setInterval(() => {
        try {
          const now = new Date();
          utimesSync(file, now, now);
        } catch {
          /* broken by someone who judged us stale; release() will notice */
        }
      }, HEARTBEAT_MS);
      heartbeat.unref();
      let released = false;
      return () => {
        if (released) return;
        released = true;
        clearInterval(heartbeat);
        try {
          // Only remove our own lock, never one a waiter took after judging us stale.
          if (readFileSync(file, "utf8") === me) unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const holder = breakIfStale(file, staleMs);
    if (Date.now() > deadline) {
      throw new McpAuthError(`timed out waiting for another mcp-auth process${holder ? ` (${holder})` : ""} holding ${file}`, {
        hint: "if it is not running any more, delete that file",
      });
    }
    if (!noticed && holder && Date.now() > waitNoticeAt) {
      noticed = true;
      opts.onWait?.(holder);
    }
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 40));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Breaks the lock if abandoned; returns a description of a live holder. */
function breakIfStale(file: string, staleMs: number): string | undefined {
  let raw: string;
  let touched: number;
  try {
    raw = readFileSync(file, "utf8");
    touched = statSync(file).mtimeMs;
  } catch {
    return undefined; // released meanwhile
  }
  let holder: Holder | undefined;
  try {
    holder = JSON.parse(raw) as Holder;
  } catch {
    // Half-written by a holder creating it right now, or garbage left by a crash: judge by age.
  }
  const age = Date.now() - touched;
  const dead = (holder && holder.host === hostname() && !isAlive(holder.pid)) || age > staleMs || (!holder && age > 2_000);
  if (!dead) return holder ? `pid ${holder.pid} on ${holder.host}` : undefined;
  // Only one process may break a given stale lock: the breaker directory is the tie-breaker, and the
  // content is re-checked under it so we never delete a lock that a live process just took.
  const breaker = `${file}.break`;
  try {
    mkdirSync(breaker);
  } catch {
    try {
      if (Date.now() - statSync(breaker).mtimeMs > 5000) rmdirSync(breaker);
    } catch {
      /* gone */
    }
    return undefined;
  }
  try {
    if (readFileSync(file, "utf8") === raw) unlinkSync(file);
  } catch {
    /* gone */
  } finally {
    rmdirSync(breaker);
  }
  return undefined;
}
