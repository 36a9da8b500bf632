import { closeSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { McpAuthError } from "../errors.js";
import { ensureDir } from "./fsutil.js";

/**
 * A cross-process lock per cache entry, so N parallel `mcp-auth token` calls on an expired cache make
 * one IdP request (and rotating refresh tokens are used exactly once). The lock file records its
 * holder; a holder that died (same host, pid gone) or a lock older than `staleMs` is broken, so a
 * crashed process never blocks others for good.
 */
export interface LockOptions {
  timeoutMs?: number;
  staleMs?: number;
}

interface Holder {
  pid: number;
  host: string;
  at: number;
}

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
  const staleMs = opts.staleMs ?? 15 * 60_000;
  const deadline = Date.now() + timeoutMs;
  const me: Holder = { pid: process.pid, host: hostname(), at: Date.now() };
  for (;;) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(file);
        } catch {
          /* already broken by someone who judged us stale */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    breakIfStale(file, staleMs);
    if (Date.now() > deadline) {
      throw new McpAuthError(`timed out waiting for another mcp-auth process (lock ${file})`, {
        hint: "if no other mcp-auth is running, delete that file",
      });
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

function breakIfStale(file: string, staleMs: number): void {
  let raw: string;
  try {
    raw = readFileSync(file, "utf8");
  } catch {
    return; // released meanwhile
  }
  let holder: Holder | undefined;
  try {
    holder = JSON.parse(raw) as Holder;
  } catch {
    // Half-written by a holder that is creating it right now, or garbage left by a crash: judge by age.
    try {
      if (Date.now() - statSync(file).mtimeMs < 2000) return;
    } catch {
      return;
    }
  }
  const dead = holder ? (holder.host === hostname() && !isAlive(holder.pid)) || Date.now() - holder.at > staleMs : true;
  if (!dead) return;
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
    return;
  }
  try {
    if (readFileSync(file, "utf8") === raw) unlinkSync(file);
  } catch {
    /* gone */
  } finally {
    rmdirSync(breaker);
  }
}
