import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileError } from "../src/errors.js";
import { paths as resolvePaths } from "../src/paths.js";
import { editSecretsFile, readSecretsFile } from "../src/store/secrets-file.js";
import { openStore } from "../src/store/secrets.js";

/**
 * The file secret store's file (src/store/secrets-file.ts), which the file store and the fresh-token
 * fast path both read and write: what a hand-edited or damaged file gives each of them.
 */
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function setUp(content?: string) {
  dir = mkdtempSync(join(tmpdir(), "mcp-auth-secrets-file-"));
  const p = resolvePaths({ MCP_AUTH_CONFIG_DIR: join(dir, "cfg") }, "linux");
  mkdirSync(p.dir, { mode: 0o700 });
  if (content !== undefined) writeFileSync(p.secretsFile, content, { mode: 0o600 });
  return p;
}

describe("the secrets file", () => {
  it.each([
    ["no file", undefined, {}],
    ["no secrets key", '{"version":1}', {}],
    ["a map", '{"version":1,"secrets":{"a":"x","b":"y"}}', { a: "x", b: "y" }],
  ])("%s", (_what, content, want) => {
    expect({ ...readSecretsFile(setUp(content)) }).toEqual(want);
  });

  it("an account is never looked up on Object.prototype", () => {
    const s = readSecretsFile(setUp('{"version":1,"secrets":{}}'));
    expect(s.constructor).toBeUndefined();
    expect(s.toString).toBeUndefined();
  });

  it("a file that does not parse is refused, with a hint, and left untouched", async () => {
    const p = setUp('{"version":1,"secrets":{');
    expect(() => readSecretsFile(p)).toThrow(FileError);
    expect(() => readSecretsFile(p)).toThrow(/cannot parse .*secrets\.json/);
    await expect(editSecretsFile(p, () => true)).rejects.toThrow(/cannot parse/);
    expect(readFileSync(p.secretsFile, "utf8")).toBe('{"version":1,"secrets":{');
  });

  it("a value that is not a string is no secret to the file store", async () => {
    const p = setUp('{"version":1,"secrets":{"n":42,"o":{"x":1},"s":"ok"}}');
    const store = await openStore("file", { paths: p, env: {}, notice: () => {} });
    expect(await store.get("n")).toBeNull();
    expect(await store.get("o")).toBeNull();
    expect(await store.get("s")).toBe("ok");
  });

  it("an edit keeps the other entries and writes only when something changed", async () => {
    const p = setUp('{"version":1,"secrets":{"keep":"k"}}');
    expect(await editSecretsFile(p, () => false)).toBe(false);
    expect(readFileSync(p.secretsFile, "utf8")).toBe('{"version":1,"secrets":{"keep":"k"}}');
    expect(await editSecretsFile(p, (s) => ((s.rt = "r"), true))).toBe(true);
    expect(JSON.parse(readFileSync(p.secretsFile, "utf8"))).toEqual({ version: 1, secrets: { keep: "k", rt: "r" } });
  });
});
