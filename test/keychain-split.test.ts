import { afterEach, describe, expect, it } from "vitest";
import { addProfile, removeProfile } from "../src/core/profiles.js";
import { storedTokens } from "../src/core/tokens.js";
import { targetFromProfile } from "../src/core/target.js";
import { accounts } from "../src/store/tokens.js";
import { configDirTag, KEYCHAIN_ENTRY_UNITS, keychainStore, splitValue, type KeyringBackend } from "../src/store/secrets.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * Values larger than one keychain entry, against keyring backends that enforce each OS's per-entry
 * limit as the real ones do (docs/keychains.md): Windows Credential Manager refuses a blob over
 * CRED_MAX_CREDENTIAL_BLOB_SIZE (2,560 bytes of UTF-16, checked by the keyring crate before it writes:
 * "Attribute 'password encoded as UTF-16' is longer than platform limit of 2560 chars"), and macOS
 * tools cap one item at 4 KB. The real Secret Service is covered in test/keychain.test.ts.
 */
interface Limit {
  os: string;
  refuse(value: string): string | undefined;
}
const LIMITS: Limit[] = [
  { os: "Windows Credential Manager", refuse: (v) => (v.length * 2 > 2560 ? "Attribute 'password encoded as UTF-16' is longer than platform limit of 2560 chars" : undefined) },
  { os: "macOS Keychain (4 KB)", refuse: (v) => (Buffer.byteLength(v, "utf8") > 4096 ? "The specified item is too large (4 KB)" : undefined) },
];

/** An in-memory keyring with the OS's per-entry limit; `failAfter` makes the n-th next write fail (a locked keychain). */
function limitedKeyring(limit: Limit) {
  const entries = new Map<string, string>();
  const state = { failAfter: Infinity, writes: 0 };
  class Entry {
    private readonly key: string;
    constructor(service: string, account: string) {
      this.key = `${service}/${account}`;
    }
    getPassword() {
      return entries.get(this.key) ?? null;
    }
    setPassword(value: string) {
      const why = limit.refuse(value);
      if (why) throw new Error(why);
      if (state.writes++ >= state.failAfter) throw new Error("User interaction is not allowed.");
      entries.set(this.key, value);
    }
    deletePassword() {
      return entries.delete(this.key);
    }
  }
  return { backend: { Entry } as KeyringBackend, entries, state };
}

const ascii = (n: number, seed = "r") => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * 7 + seed.charCodeAt(0)) % 26))).join("");
const VALUES: Array<[string, string]> = [
  ["an empty value", ""],
  ["a short client secret", "s3cret-value"],
  ["exactly one entry's worth", ascii(KEYCHAIN_ENTRY_UNITS)],
  ["one unit over", ascii(KEYCHAIN_ENTRY_UNITS + 1)],
  ["an Entra-sized refresh token (6 KB)", ascii(6000)],
  ["an RSA-4096 private JWK (~3.2 KB)", JSON.stringify({ kty: "RSA", n: ascii(683, "n"), e: "AQAB", d: ascii(683, "d"), p: ascii(342, "p"), q: ascii(342, "q"), dp: ascii(342), dq: ascii(342), qi: ascii(342) })],
  ["accented text (2 bytes of UTF-8 a unit)", "é".repeat(3000)],
  ["emoji (surrogate pairs, 4 bytes of UTF-8 each)", "🔑".repeat(1500)],
  ["a short value that looks like a split pointer", "mcp-auth-split:1:00000000:2:0000000000000000"],
];

let t: TestContext | undefined;
afterEach(() => t?.cleanup());

describe.each(LIMITS)("keychain values over one entry: $os", (limit) => {
  const DIR = "/tmp/mcp-auth-split-test";
  const main = `mcp-auth/client-secret:ci@${configDirTag(DIR)}`;

  it("the test keyring really enforces the limit (a whole 6 KB value in one entry is refused)", () => {
    const { backend } = limitedKeyring(limit);
    expect(() => new backend.Entry("mcp-auth", "x").setPassword(ascii(6000))).toThrow(/limit|too large/);
  });

  it.each(VALUES)("%s is stored within the limit and read back whole", async (_, value) => {
    const kr = limitedKeyring(limit);
    const store = keychainStore(kr.backend, DIR);
    await store.set("client-secret:ci", value);
    expect(await store.get("client-secret:ci")).toBe(value);
    const chunks = [...kr.entries.keys()].filter((k) => k.startsWith(`${main}#`));
    const needed = value.length > KEYCHAIN_ENTRY_UNITS || value.startsWith("mcp-auth-split:") ? splitValue(value).length : 0;
    expect(chunks).toHaveLength(needed);
    for (const v of kr.entries.values()) expect(limit.refuse(v)).toBeUndefined();
  });

  it("a rewrite with fewer chunks deletes the stale ones, and a short value leaves no chunk", async () => {
    const kr = limitedKeyring(limit);
    const store = keychainStore(kr.backend, DIR);
    await store.set("client-secret:ci", ascii(6000));
    expect(kr.entries.size).toBe(1 + Math.ceil(6000 / KEYCHAIN_ENTRY_UNITS));
    await store.set("client-secret:ci", ascii(2000, "b"));
    expect(kr.entries.size).toBe(1 + 2);
    expect(await store.get("client-secret:ci")).toBe(ascii(2000, "b"));
    await store.set("client-secret:ci", "short");
    expect([...kr.entries.keys()]).toEqual([main]);
    expect(await store.get("client-secret:ci")).toBe("short");
  });

  it("a missing chunk reads as absent, not as a truncated secret", async () => {
    const kr = limitedKeyring(limit);
    const store = keychainStore(kr.backend, DIR);
    await store.set("client-secret:ci", ascii(6000));
    const chunk = [...kr.entries.keys()].find((k) => k.endsWith(".2"))!;
    kr.entries.delete(chunk);
    expect(await store.get("client-secret:ci")).toBeNull();
  });

  it("a chunk from another write (changed behind our back) reads as absent", async () => {
    const kr = limitedKeyring(limit);
    const store = keychainStore(kr.backend, DIR);
    await store.set("client-secret:ci", ascii(6000));
    const chunk = [...kr.entries.keys()].find((k) => k.endsWith(".1"))!;
    kr.entries.set(chunk, ascii(KEYCHAIN_ENTRY_UNITS, "z"));
    expect(await store.get("client-secret:ci")).toBeNull();
  });

  it("delete removes the main entry and every chunk", async () => {
    const kr = limitedKeyring(limit);
    const store = keychainStore(kr.backend, DIR);
    await store.set("client-secret:ci", ascii(6000));
    await store.set("client-secret:other", "kept");
    expect(await store.delete("client-secret:ci")).toBe(true);
    expect([...kr.entries.keys()]).toEqual([`mcp-auth/client-secret:other@${configDirTag(DIR)}`]);
    expect(await store.get("client-secret:ci")).toBeNull();
    expect(await store.delete("client-secret:ci")).toBe(false);
  });

  it("a write that fails half-way keeps the previous value and leaves none of the new chunks", async () => {
    const kr = limitedKeyring(limit);
    const store = keychainStore(kr.backend, DIR);
    await store.set("client-secret:ci", ascii(3000));
    const before = new Map(kr.entries);
    kr.state.failAfter = kr.state.writes + 2; // two chunks of the new value, then the keychain refuses
    await expect(store.set("client-secret:ci", ascii(6000, "n"))).rejects.toThrow(/cannot write the keychain/);
    expect(kr.entries).toEqual(before);
    expect(await store.get("client-secret:ci")).toBe(ascii(3000));
  });

  it("a large entry an older version wrote under the bare account name is read and moved into chunks", async () => {
    const kr = limitedKeyring(limit);
    kr.entries.set("mcp-auth/client-secret:ci", ascii(5000));
    const store = keychainStore(kr.backend, DIR);
    expect(await store.get("client-secret:ci")).toBe(ascii(5000));
    expect(kr.entries.has("mcp-auth/client-secret:ci")).toBe(false);
    expect(kr.entries.get(main)).toMatch(/^mcp-auth-split:1:/);
    expect(await store.get("client-secret:ci")).toBe(ascii(5000));
  });
});

describe("a profile and its tokens in a size-limited keychain", () => {
  it.each(LIMITS)("$os: a 6 KB refresh token and a 3 KB client secret are saved, read back and removed with the profile", async (limit) => {
    t = createTestContext();
    const kr = limitedKeyring(limit);
    const store = keychainStore(kr.backend, t.configDir);
    // The keychain is the store here, as ctx.secrets() picks it on a desktop.
    t.ctx.secrets = async () => store;
    t.ctx.secretsOf = async () => store;
    const secret = ascii(3000, "s");
    await addProfile(t.ctx, { name: "entra", issuer: "https://login.example.invalid/tenant/v2.0", clientId: "app", clientSecret: secret, kind: "oidc" });
    expect(t.ctx.config().profiles.entra?.secretStore).toBe("keychain");
    expect(await store.get(accounts.clientSecret("entra"))).toBe(secret);

    const target = targetFromProfile({ name: "entra", ...t.ctx.config().profiles.entra! });
    const refresh = ascii(6000, "t");
    await t.ctx.tokens.save(target, { access_token: "at-1", token_type: "Bearer", expires_at: t.clock.now() / 1000 + 3600, refresh_token: refresh });
    expect((await storedTokens(t.ctx, target)).refreshToken).toBe(refresh);
    for (const v of kr.entries.values()) expect(limit.refuse(v)).toBeUndefined();
    expect(kr.entries.size).toBeGreaterThan(2);

    await removeProfile(t.ctx, "entra");
    expect([...kr.entries.keys()]).toEqual([]);
  });
});
