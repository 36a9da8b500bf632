import fs, { mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { writeFileAtomic } from "../src/store/fsutil.js";
import { openStore } from "../src/store/secrets.js";
import { paths as resolvePaths } from "../src/paths.js";

/**
 * A rotated refresh token exists nowhere but in secrets.json: its write reaches the disk (the temp
 * file, then the directory holding the rename) before mcp-auth goes on. A cached access token can be
 * fetched again and is not synced. Seen through node:fs's own fsyncSync, wrapped for the test.
 */
const real = fs.fsyncSync;
afterEach(() => {
  fs.fsyncSync = real;
  syncBuiltinESMExports();
});

function watchSyncs(): string[] {
  const synced: string[] = [];
  fs.fsyncSync = (fd: number) => {
    synced.push(readlinkSync(`/proc/self/fd/${fd}`));
    return real(fd);
  };
  syncBuiltinESMExports();
  return synced;
}

describe.skipIf(process.platform !== "linux")("durable atomic writes", () => {
  it.each([
    [true, ["tmp", "dir"]],
    [false, []],
  ])("durable %s: syncs %j", (durable, want) => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-auth-durable-"));
    try {
      const file = join(dir, "secrets.json");
      writeFileAtomic(file, "old\n", { mode: 0o600 });
      const synced = watchSyncs();
      writeFileAtomic(file, "new\n", { mode: 0o600, durable });
      expect(readFileSync(file, "utf8")).toBe("new\n");
      expect(synced.map((p) => (p === dir ? "dir" : p.startsWith(join(dir, ".")) && p.endsWith(".tmp") ? "tmp" : p))).toEqual(want);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the file secret store's every change is durable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-auth-durable-"));
    try {
      const paths = resolvePaths({ HOME: dir, MCP_AUTH_CONFIG_DIR: join(dir, "cfg") });
      const store = await openStore("file", { paths, env: {}, notice: () => {} });
      await store.set("refresh:dev", "first");
      const synced = watchSyncs();
      await store.set("refresh:dev", "rotated");
      expect(await store.get("refresh:dev")).toBe("rotated");
      expect(synced).toContain(paths.dir);
      expect(synced.some((p) => p.startsWith(join(paths.dir, ".")) && p.endsWith(".tmp"))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
