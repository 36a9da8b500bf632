import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { acquire, breakIfStale, removeIf, type Watch } from "../src/store/lock.js";
import { createTestContext } from "./helpers/context.js";
import { expireTokens, useSandbox } from "./helpers/sandbox.js";
import { user, type Sandboxed } from "./helpers/cli.js";

// pid 2^22+1 cannot exist on Linux (pid_max is at most 2^22)
const DEAD_PID = 4194305;

describe("breaking a lock (in-process, with our own clock)", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mcp-auth-lock-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function plant(name: string, holder: object, mtimeMs: number): string {
    const file = join(dir, `${name}.lock`);
    writeFileSync(file, JSON.stringify(holder));
    utimesSync(file, new Date(mtimeMs), new Date(mtimeMs));
    return file;
  }

  it.each([
    ["an hour behind ours", -3_600_000],
    ["an hour ahead of ours", +3_600_000],
    ["the same as ours", 0],
  ])("another host whose clock is %s: stale only after staleMs of our time without a change", (_label, skew) => {
    let now = 1_000_000_000;
    const clock = () => now;
    const file = plant(`skew${skew}`, { pid: 1, host: "elsewhere", at: now + skew }, now + skew);
    const watch: Watch = {};
    expect(breakIfStale(file, 30_000, watch, clock)).toBe("pid 1 on elsewhere");
    // the holder keeps touching it (by its own clock): never stale, however long we wait
    for (let i = 1; i <= 20; i++) {
      now += 5_000;
      utimesSync(file, new Date(now + skew), new Date(now + skew));
      expect(breakIfStale(file, 30_000, watch, clock)).toBe("pid 1 on elsewhere");
    }
    expect(existsSync(file)).toBe(true);
    // then it stops: broken once 30 s of our time have passed without a change, not before
    now += 29_999;
    expect(breakIfStale(file, 30_000, watch, clock)).toBe("pid 1 on elsewhere");
    now += 1;
    expect(breakIfStale(file, 30_000, watch, clock)).toBeUndefined();
    expect(existsSync(file)).toBe(false);
  });

  it("a lock of a live process on this host is never broken, however old and silent", () => {
    let now = Date.now();
    const file = plant("alive", { pid: process.pid, host: hostname(), at: 0 }, 0);
    const watch: Watch = {};
    for (let i = 0; i < 10; i++, now += 3_600_000) expect(breakIfStale(file, 30_000, watch, () => now)).toBe(`pid ${process.pid} on ${hostname()}`);
    expect(existsSync(file)).toBe(true);
  });

  it("a lock of a dead process on this host is broken at once; an unreadable one after 2 s unchanged", () => {
    let now = Date.now();
    const dead = plant("dead", { pid: DEAD_PID, host: hostname(), at: now }, now);
    expect(breakIfStale(dead, 30_000, {}, () => now)).toBeUndefined();
    expect(existsSync(dead)).toBe(false);
    const half = join(dir, "half.lock");
    writeFileSync(half, "");
    const watch: Watch = {};
    expect(breakIfStale(half, 30_000, watch, () => now)).toBeUndefined();
    expect(existsSync(half)).toBe(true);
    now += 2_000;
    breakIfStale(half, 30_000, watch, () => now);
    expect(existsSync(half)).toBe(false);
    // pid 0 or -1 would signal a process group or everyone: garbage, not a holder
    const weird = plant("weird", { pid: -1, host: hostname(), at: now }, now);
    expect(breakIfStale(weird, 30_000, {}, () => now)).toBeUndefined();
    expect(existsSync(weird)).toBe(true);
  });

  it("removeIf takes only the content it judged stale, and puts anything else back", () => {
    const file = join(dir, "claim.lock");
    writeFileSync(file, "new holder");
    expect(removeIf(file, "old holder")).toBe(false);
    expect(readFileSync(file, "utf8")).toBe("new holder");
    expect(removeIf(file, "new holder")).toBe(true);
    expect(existsSync(file)).toBe(false);
    expect(removeIf(file, "new holder")).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes(".claim"))).toEqual([]);
  });
});

describe("waiting for a lock's holder", () => {
  const sb = useSandbox();
  let u: Sandboxed;
  afterEach(() => u?.cleanup());

  async function addM2m(s: Sandboxed) {
    const r = await s.run(["profiles", "add", "m2m", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-stdin", "--resource", sb.mcpUrl], { input: "sandbox-secret\n" });
    expect(r.code, r.stderr).toBe(0);
  }

  it("8 processes racing to break the same stale lock: one wins, the others wait for it (one IdP request)", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    await addM2m(u);
    expect((await u.run(["token"])).code).toBe(0);
    expireTokens(u);
    mkdirSync(join(u.configDir, "locks"), { recursive: true });
    writeFileSync(join(u.configDir, "locks", "p-m2m.lock"), JSON.stringify({ pid: DEAD_PID, host: hostname(), at: Date.now() }));
    sb.resetCounts();
    const results = await Promise.all(Array.from({ length: 8 }, () => u.run(["token"])));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(new Set(results.map((r) => r.stdout)).size).toBe(1);
    expect(sb.counts.token).toBe(1);
    expect(readdirSync(join(u.configDir, "locks"))).toEqual([]);
  });

  // In-process on a clock the waiter moves: a holder on this host that stays silent for 40 s
  // (a synchronous keychain prompt blocks its event loop, so no heartbeat), longer than any stale
  // limit, is waited for, never broken; the waiter goes on once the holder lets go.
  it("a holder whose event loop is blocked for 40 s is not broken by a waiter on this host", async () => {
    const t = createTestContext({ virtualTime: true, now: Date.now(), stdin: "sandbox-secret\n" });
    try {
      expect(await t.run(["profiles", "add", "m2m", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-stdin", "--resource", sb.mcpUrl]), t.stderr()).toBe(0);
      expect(await t.run(["token"])).toBe(0);
      expireTokens({ configDir: t.configDir } as Sandboxed, t.clock.now());
      const events: string[] = [];
      // The holder: a live process on this host (this one), through the real module.
      const lockFile = join(t.configDir, "locks", "p-m2m.lock");
      const release = await acquire(join(t.configDir, "locks"), "p-m2m");
      const held = readFileSync(lockFile, "utf8");
      let atRelease = "";
      t.waits.setTimeout(() => {
        atRelease = readFileSync(lockFile, "utf8");
        release();
        events.push("holder released");
      }, 40_000);
      sb.resetCounts();
      const code = await t.run(["token"]);
      events.push("waiter done");
      expect(atRelease).toBe(held); // still the holder's own lock after 40 s of silence
      expect(code, t.stderr()).toBe(0);
      expect(t.stderr()).toMatch(/Waiting for another mcp-auth \(pid \d+ on /);
      expect(events).toEqual(["holder released", "waiter done"]);
      expect(sb.counts.token).toBe(1);
    } finally {
      t.cleanup();
    }
  });
});
