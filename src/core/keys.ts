import { readFileSync } from "node:fs";
import type * as OC from "openid-client";
import type { Context } from "../context.js";
import { AuthError, FileError, UsageError } from "../errors.js";
import { registerSecret } from "../io/sanitize.js";
import { profileOf, type KeyAlg, type KeyRef, type ProfileKey } from "../profile.js";
import type { Target } from "./target.js";

/**
 * private_key_jwt (RFC 7523 §2.2 client authentication, OIDC Core §9): a key pair per profile. The
 * private JWK lives in the secret store only (account `private-key:PROFILE:KID`); the config holds
 * the kid, the algorithm and the public JWK. Every token request signs a fresh assertion through
 * openid-client's PrivateKeyJwt (unique jti, exp 60 s, aud = the issuer identifier, which is what
 * oidc-provider and Keycloak accept).
 *
 * The assertion's `kid` header is how the IdP picks the registered key, so it must be the name the IdP
 * knows the key by (docs/private-key-jwt.md): a generated key's RFC 7638 thumbprint (the kid printed
 * with it), an imported JWK's own kid, none for an imported PEM, or what `--key-id` says. The
 * thumbprint stays the key's name in the secret store whatever the header carries.
 */
type Jwk = Record<string, unknown> & { kty?: string; crv?: string; d?: string; n?: string };

export const privateKeyAccount = (profile: string, kid: string) => `private-key:${profile}:${kid}`;

let joseMod: typeof import("jose") | undefined;
const jose = async () => (joseMod ??= await import("jose"));

export interface NewKey {
  /** The RFC 7638 thumbprint: the key's name in the secret store and in messages. */
  kid: string;
  /** The assertion's `kid` header when it is not the thumbprint: another name, or null for none. */
  keyId?: string | null;
  alg: KeyAlg;
  privateJwk: Jwk;
  publicJwk: Record<string, unknown>;
}

/** The members a verifier needs, and nothing else (never d, p, q, dp, dq, qi); no kid member when `kid` is null. */
export function publicMembers(jwk: Jwk, kid: string | null, alg: KeyAlg): Record<string, unknown> {
  const pick = jwk.kty === "EC" ? ["kty", "crv", "x", "y"] : ["kty", "n", "e"];
  return { ...Object.fromEntries(pick.map((k) => [k, jwk[k]])), ...(kid !== null && { kid }), alg, use: "sig" };
}

/** The `kid` header of a key's assertions (undefined: none). */
export function assertionKid(ref: Pick<KeyRef, "kid" | "keyId">): string | undefined {
  return ref.keyId === undefined ? ref.kid : (ref.keyId ?? undefined);
}

/** A key id as the IdP gave it: printable, and short enough for a header and a message. */
export function checkKeyId(v: unknown, what: string): string {
  if (typeof v !== "string" || !/^[\x21-\x7e]{1,256}$/.test(v)) throw new UsageError(`${what} must be 1-256 visible characters (ASCII, no spaces)`);
  return v;
}

/** The key with another `kid` header (a string, or null for none); its public JWK says the same. */
export function withKeyId(k: NewKey, keyId: string | null | undefined): NewKey {
  if (keyId === undefined) return k;
  return { ...k, keyId: keyId === k.kid ? undefined : keyId, publicJwk: publicMembers(k.publicJwk as Jwk, keyId, k.alg) };
}

async function finish(privateJwk: Jwk, alg: KeyAlg): Promise<NewKey> {
  const j = await jose();
  const bare = publicMembers(privateJwk, null, alg);
  delete bare.alg;
  delete bare.use;
  // RFC 7638 thumbprint: stable, and names the key without revealing anything.
  const kid = await j.calculateJwkThumbprint(bare as never);
  return { kid, alg, privateJwk: { ...privateJwk, kid, alg }, publicJwk: publicMembers(privateJwk, kid, alg) };
}

export async function generateKey(alg: KeyAlg = "ES256"): Promise<NewKey> {
  const j = await jose();
  const { privateKey } = await j.generateKeyPair(alg, { extractable: true, ...(alg === "RS256" ? { modulusLength: 2048 } : {}) });
  return finish((await j.exportJWK(privateKey)) as Jwk, alg);
}

/**
 * Reads a private key from a PEM (PKCS#8, SEC1 or PKCS#1) or JWK file; only P-256 and RSA ≥ 2048 bits.
 * A JWK's own kid is what the IdP was most likely given with it, so its assertions carry that kid; a
 * PEM key has no name, so its assertions carry none (`--key-id` gives one).
 */
export async function importKeyFile(path: string, alg?: KeyAlg): Promise<NewKey> {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new FileError(`cannot read --key-file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let jwk: Jwk;
  if (text.startsWith("{")) {
    try {
      jwk = JSON.parse(text) as Jwk;
    } catch {
      throw new UsageError(`--key-file ${path}: not valid JSON (expected a private JWK or a PEM key)`);
    }
  } else {
    const { createPrivateKey } = await import("node:crypto");
    try {
      jwk = createPrivateKey(text).export({ format: "jwk" }) as Jwk;
    } catch {
      throw new UsageError(`--key-file ${path}: not a private key (expected a PEM private key or a private JWK)`, { hint: "a public key or certificate cannot sign: give the private key" });
    }
  }
  if (typeof jwk.d !== "string") throw new UsageError(`--key-file ${path}: this is a public key; give the private key`);
  const inferred: KeyAlg | undefined = jwk.kty === "EC" && jwk.crv === "P-256" ? "ES256" : jwk.kty === "RSA" ? "RS256" : undefined;
  if (!inferred) throw new UsageError(`--key-file ${path}: unsupported key (${jwk.kty ?? "?"}${jwk.crv ? ` ${jwk.crv}` : ""}); use an EC P-256 (ES256) or RSA (RS256) key`);
  if (alg && alg !== inferred) throw new UsageError(`--alg ${alg} does not fit the key in ${path} (it is an ${inferred} key)`);
  if (inferred === "RS256" && Buffer.from(String(jwk.n), "base64url").length < 256) throw new UsageError(`--key-file ${path}: RSA keys must have at least 2048 bits`);
  const own = jwk.kid === undefined ? null : checkKeyId(jwk.kid, `--key-file ${path}: its "kid"`);
  const clean: Jwk = {};
  for (const k of ["kty", "crv", "x", "y", "d", "n", "e", "p", "q", "dp", "dq", "qi"]) if (jwk[k] !== undefined) clean[k] = jwk[k];
  return withKeyId(await finish(clean, inferred), own);
}

/** Stores the private half; returns what the config may hold. */
export async function storeKey(ctx: Pick<Context, "secrets">, profile: string, k: NewKey): Promise<KeyRef> {
  const store = await ctx.secrets();
  await store.set(privateKeyAccount(profile, k.kid), JSON.stringify(k.privateJwk));
  return { kid: k.kid, alg: k.alg, store: store.kind, ...(k.keyId !== undefined && { keyId: k.keyId }) };
}

async function loadKey(ctx: Context, profile: string, ref: KeyRef): Promise<OC.PrivateKey> {
  const text = await (await ctx.secretsOf(ref.store)).get(privateKeyAccount(profile, ref.kid));
  if (text === null) {
    throw new AuthError(`the private key ${ref.kid} of profile "${profile}" is missing from the ${ref.store} store`, {
      hint: `make a new one and register its public key at the IdP: mcp-auth profiles rotate-key ${profile}`,
    });
  }
  const jwk = JSON.parse(text) as Jwk;
  registerSecret(jwk.d);
  const key = (await (await jose()).importJWK(jwk as never, ref.alg)) as CryptoKey;
  return { key, kid: assertionKid(ref) };
}

/** The openid-client client authentication for a profile's key. */
export async function keyClientAuth(ctx: Context, t: Target, metadata: { token_endpoint?: string }): Promise<OC.ClientAuth | undefined> {
  if (!t.key || !t.profile) return undefined;
  const { PrivateKeyJwt, modifyAssertion } = await import("openid-client");
  const key = await loadKey(ctx, t.profile, t.key);
  const tokenEndpoint = metadata.token_endpoint;
  if (t.key.audience !== "token-endpoint" || !tokenEndpoint) return PrivateKeyJwt(key);
  return PrivateKeyJwt(key, { [modifyAssertion]: (_header: unknown, payload: Record<string, unknown>) => void (payload.aud = tokenEndpoint) } as never);
}

/**
 * Runs a token request with the profile's key. After `rotate-key` the new key is tried first; if the
 * IdP refuses it (invalid_client) the previous one still works until the new public key is
 * registered. The first token the new key earns retires the previous key (secret store and config).
 */
export async function withKeyRollover<T>(ctx: Context, t: Target, attempt: (t: Target) => Promise<T>): Promise<T> {
  const prev = t.key?.previous;
  if (!t.key || !prev || !t.profile) return attempt(t);
  let got: T;
  try {
    got = await attempt(t);
  } catch (e) {
    if (!(e instanceof AuthError) || e.code !== "invalid_client") throw e;
    ctx.warn(`the IdP refused the new key ${t.key.kid} of profile "${t.profile}"; using the previous key until the new public key is registered`);
    return attempt({ ...t, key: { ...t.key, ...prev, previous: undefined } });
  }
  await retirePreviousKey(ctx, t.profile, t.key.kid);
  return got;
}

async function retirePreviousKey(ctx: Context, profile: string, currentKid: string): Promise<void> {
  let old: KeyRef | undefined;
  await ctx.updateConfig((cfg) => {
    const p = profileOf(cfg, profile);
    if (!p?.key?.previous || p.key.kid !== currentKid) return;
    old = p.key.previous;
    delete p.key.previous;
  });
  if (!old) return;
  await (await ctx.secretsOf(old.store)).delete(privateKeyAccount(profile, old.kid)).catch(() => false);
  ctx.info(`The new key ${currentKid} of profile "${profile}" works; the previous key ${old.kid} was deleted.`);
}

/** `profiles rotate-key`: a new key becomes current; the last key that earned a token stays as previous. */
export async function rotateKey(ctx: Context, profile: string, alg?: KeyAlg): Promise<ProfileKey> {
  const p = profileOf(ctx.config(), profile);
  if (!p) throw new UsageError(`no profile named "${profile}"`);
  if (!p.key) throw new UsageError(`profile "${profile}" has no key to rotate`, { hint: `add one: mcp-auth profiles add ${profile} … --client-auth private-key-jwt --generate-key --force` });
  const k = await generateKey(alg ?? p.key.alg);
  const ref = await storeKey(ctx, profile, k);
  let unproven: KeyRef | undefined;
  const saved = await ctx.updateConfig((cfg) => {
    const cur = profileOf(cfg, profile)!;
    const old = cur.key!;
    // Rotating twice before the new key earned a token: the untried key goes, the proven one stays.
    const previous: KeyRef = old.previous ?? { kid: old.kid, alg: old.alg, store: old.store, ...(old.keyId !== undefined && { keyId: old.keyId }) };
    if (old.previous) unproven = { kid: old.kid, alg: old.alg, store: old.store };
    cur.key = { ...ref, publicJwk: k.publicJwk, previous, ...(old.audience && { audience: old.audience }) };
    return cur.key;
  });
  if (unproven) await (await ctx.secretsOf(unproven.store)).delete(privateKeyAccount(profile, unproven.kid)).catch(() => false);
  return saved;
}

/**
 * `profiles set --key-id KID | --no-key-id`: the kid header the current key's assertions carry (null:
 * none), and the public JWK shown for it, without touching the key itself.
 */
export function renameKey(key: ProfileKey, keyId: string | null): ProfileKey {
  const { keyId: _old, ...rest } = key;
  return { ...rest, ...(keyId !== key.kid && { keyId }), publicJwk: publicMembers(key.publicJwk as Jwk, keyId, key.alg) };
}

/** Removes these stored private keys of a profile from every store. */
export async function forgetKeys(ctx: Context, profile: string, refs: Array<KeyRef | undefined>): Promise<void> {
  for (const ref of refs) {
    if (!ref) continue;
    const report = await ctx.tokens.purgeAccount(privateKeyAccount(profile, ref.kid));
    for (const f of report.failed) ctx.warn(`could not check a secret store for the private key (${f})`);
  }
}
