import { closeSync, constants, fchmodSync, fchownSync, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Who a written file must belong to (the file it replaces, when we are root and it is not ours). */
export interface Owner {
  uid: number;
  gid: number;
  /** Only the group, as a non-root member of it: skipped if not permitted. */
  bestEffort?: boolean;
}

const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/**
 * Writes `data` to a fresh, randomly named temp file in `dir` and returns its path. O_EXCL|O_NOFOLLOW:
 * a symlink or file planted at that name makes it fail rather than write through it. The mode is set
 * with fchmod (the umask does not apply) and the owner with fchown. The bytes are fsynced unless
 * `sync` is false (what can simply be fetched again, a cached access token), so a rename of this file
 * is a complete, durable replacement. Every writer of the store and of config files goes through here.
 */
export function writeTemp(dir: string, base: string, data: string | Buffer, mode: number, o: { owner?: Owner; sync?: boolean } = {}): string {
  const tmp = join(dir, `.${base.slice(0, 100)}.${randomHex(6)}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW, mode & 0o777);
  try {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    if (o.owner) {
      try {
        fchownSync(fd, o.owner.uid, o.owner.gid);
      } catch (e) {
        if (!o.owner.bestEffort) throw e;
      }
    }
    fchmodSync(fd, mode & 0o777); // after chown, which may clear bits
    if (o.sync !== false) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  return tmp;
}

/**
 * Random hex for names only this process uses (temp files, lock claims). node:crypto is loaded on the
 * first call, not on import: the token fast path (src/fast-fetch.ts) writes only once the IdP has
 * answered, and loads it while it waits for that answer rather than before its request.
 */
export function randomHex(bytes: number): string {
  return process.getBuiltinModule("node:crypto").randomBytes(bytes).toString("hex");
}

/** Makes a rename or unlink in `dir` durable; best effort (Windows cannot open a directory). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY);
    fsyncSync(fd);
  } catch {
    /* not supported here */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The owner to give a replacement of a file owned by (uid, gid), where it differs from what a new file
 * gets: root gives the file back to its owner; anyone else can only keep its group, if a member.
 */
export function ownerToKeep(st: { uid: number; gid: number }): Owner | undefined {
  const uid = process.getuid?.();
  if (uid === undefined) return undefined; // Windows
  if (st.uid === uid && st.gid === process.getgid?.()) return undefined;
  return uid === 0 ? { uid: st.uid, gid: st.gid } : { uid, gid: st.gid, bestEffort: true };
}
