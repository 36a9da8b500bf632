import { closeSync, openSync, readFileSync } from "node:fs";
import { FileError } from "../errors.js";
import type { Paths } from "../paths.js";
import { writeFileAtomic } from "./fsutil.js";
import { withLock } from "./lock.js";
import { assertPrivateDir, assertTrustedFd } from "./trust.js";

/**
 * The file secret store's one file: a JSON map in a 0600 file inside the 0700 config dir, edited under
 * a lock. Its own module so that the fresh-token fast path (src/fast-fetch.ts) reads and writes it
 * exactly as the file store (src/store/secrets.ts) does, without loading the keychain code.
 */
type SecretsPaths = Pick<Paths, "dir" | "secretsFile" | "locks">;

/**
 * The secrets, read only from a file that is ours and private (fstat on the opened fd) in a dir that
 * is too; own properties only, so an account name is never looked up on Object.prototype. None when
 * there is no file. Values are as the file has them: a reader checks they are strings.
 */
export function readSecretsFile(p: SecretsPaths): Record<string, unknown> {
  assertPrivateDir(p.dir);
  let fd: number;
  try {
    fd = openSync(p.secretsFile, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return Object.create(null) as Record<string, unknown>;
    throw new FileError(`cannot read ${p.secretsFile}: ${(e as Error).message}`);
  }
  let text: string;
  try {
    assertTrustedFd(p.secretsFile, fd);
    text = readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
  try {
    const data = JSON.parse(text) as { secrets?: Record<string, unknown> };
    return Object.assign(Object.create(null) as Record<string, unknown>, data.secrets ?? {});
  } catch (e) {
    throw new FileError(`cannot parse ${p.secretsFile}: ${(e as Error).message}`, { hint: "fix or move the file; mcp-auth left it untouched" });
  }
}

/**
 * Changes the secrets under the store's lock, on a fresh read; `change` says whether it changed
 * anything. The write is atomic and durable: the file holds rotated refresh tokens, which exist
 * nowhere else.
 */
export function editSecretsFile(p: SecretsPaths, change: (s: Record<string, unknown>) => boolean): Promise<boolean> {
  return withLock(p.locks, "secrets", async () => {
    const s = readSecretsFile(p);
    const changed = change(s);
    if (changed) writeFileAtomic(p.secretsFile, JSON.stringify({ version: 1, secrets: s }, null, 2) + "\n", { mode: 0o600, root: p.dir, durable: true });
    return changed;
  });
}
