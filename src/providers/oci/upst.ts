import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { join, resolve } from "node:path";
import { AuthError, type CacheIdentity, checkUrl, clientSecretOf, type Context, exchangeForUpst, FileError, fnv1a64, getToken, type GetTokenOptions, isBearer, normalizeIssuer, OCI_UPST, type Profile, registerSecret, type Target, targetFromProfile, tokenProblem, type TokenExchange, type TokenResult, UsageError, writeFileAtomic } from "../../sdk.js";

/**
 * `mcp-auth token --exchange oci-upst`: the token exchange of Oracle's MCP sample (docs/idp/oci.md §6:
 * once the user is signed in, their access token is exchanged for an OCI session token), done by
 * the CLI. The subject token is the profile's own access token, got as any token of the
 * profile is (cache, refresh, login, or client credentials); for the seed's identity propagation that
 * is a profile that logs a user in. The app must be listed in an identity propagation trust
 * (`bootstrap oci --token-exchange`).
 * The UPST is bound to an RSA-2048 key generated once per profile whose private half lives in the
 * secret store; the UPST itself is cached like any token, under its own cache entry, and exchanged
 * again when it is about to expire.
 */
export const EXCHANGES = ["oci-upst"] as const;
export type Exchange = (typeof EXCHANGES)[number];

/** Secret-store account of a profile's UPST key (PKCS#8 PEM). */
export const upstKeyAccount = (profile: string) => `oci-upst-key:${profile}`;

/**
 * The UPST's cache entry: not the profile's (that holds the subject token), and no profile name, so
 * it can never be mistaken for a profile's token; the fingerprint ties it to this profile.
 */
export function upstIdentity(t: Pick<Target, "issuer" | "clientId" | "profile">): CacheIdentity & { profile: null } {
  return { issuer: t.issuer, clientId: t.clientId, audience: OCI_UPST, profile: null, secretFingerprint: fnv1a64(`oci-upst:${t.profile}`) };
}

export interface UpstResult extends TokenResult {
  privateKeyPem: string;
  publicKey: KeyObject;
}

export async function getUpst(ctx: Context, p: Profile, o: GetTokenOptions): Promise<UpstResult> {
  if (p.provider !== "oci") {
    throw new UsageError(`--exchange oci-upst needs an OCI profile; profile "${p.name}" is of provider ${p.provider}`, { hint: "create one with: mcp-auth bootstrap oci --token-exchange" });
  }
  const t = targetFromProfile(p);
  const id = upstIdentity(t);
  const key = await sessionKey(ctx, p.name);
  const use = (r: TokenResult): UpstResult => ({ ...r, privateKeyPem: key.pem, publicKey: key.publicKey });
  // A new key makes any cached UPST (bound to the old one) useless.
  const fresh = !o.noCache && !key.created;
  if (fresh && !o.forceRefresh) {
    const hit = await cachedUpst(ctx, id, o.minTtl);
    if (hit) return use(hit);
  }
  const release = o.noCache ? () => {} : await ctx.tokens.lock(id, { onWait: (holder) => ctx.info(`Waiting for another mcp-auth (${holder}) that is exchanging this token…`) });
  try {
    if (fresh && !o.forceRefresh) {
      const hit = await cachedUpst(ctx, id, o.minTtl);
      if (hit) return use(hit);
    }
    const subject = await getToken(ctx, t, { minTtl: 60, noCache: o.noCache, login: o.login });
    const secret = await clientSecretOf(ctx, t);
    if (!secret) throw new UsageError(`profile "${p.name}" has no client secret, and the OCI token exchange authenticates the client`, { hint: "rerun mcp-auth bootstrap oci" });
    const tokenEndpoint = checkUrl(t.endpoints?.token_endpoint ?? `${normalizeIssuer(t.issuer)}/oauth2/v1/token`, "token endpoint", ctx.allowHttp).href;
    let upst;
    try {
      upst = await exchangeForUpst(ctx.fetch, { tokenEndpoint, clientId: t.clientId, clientSecret: secret, subjectToken: subject.access_token, publicKeyDer: key.publicKey.export({ format: "der", type: "spki" }) }, ctx.now());
    } catch (e) {
      // The seed exchanges a signed-in user's token; the trust `bootstrap oci --token-exchange` makes maps users (subjectType User).
      if (e instanceof AuthError && e.code === "invalid_grant" && t.grant === "client_credentials") {
        throw new AuthError(e.message, {
          code: e.code,
          cause: e,
          hint: `profile "${p.name}" gets its token by client credentials, so the subject is the app, not a user: exchange the token of a profile that logs a user in (mcp-auth profiles add NAME --kind oci --issuer ${t.issuer} --client-id ${t.clientId} --client-secret-stdin --grant authorization_code --redirect-port PORT, with http://127.0.0.1:PORT/callback registered on the app), or check the trust (mcp-auth bootstrap oci --token-exchange)`,
        });
      }
      throw e;
    }
    const got: TokenResult = { access_token: upst.token, token_type: "Bearer", expires_at: upst.expires_at, source: "grant" };
    if (!o.noCache) {
      try {
        await ctx.tokens.save(id, got);
      } catch (e) {
        if (!(e instanceof FileError)) throw e;
        ctx.warn(`the session token could not be cached: ${e.message}`);
      }
    }
    return use(got);
  } finally {
    release();
  }
}

async function cachedUpst(ctx: Context, id: CacheIdentity, minTtl: number): Promise<TokenResult | null> {
  const rec = ctx.tokens.record(id);
  if (!rec || rec.expires_at - ctx.now() / 1000 < minTtl) return null;
  let token: string | undefined;
  try {
    token = await ctx.tokens.accessToken(id, rec);
  } catch (e) {
    ctx.debug(`cached session token unavailable: ${(e as Error).message}`);
  }
  if (!token || tokenProblem("access_token", token) || !isBearer(rec.token_type)) return null;
  return { access_token: token, token_type: "Bearer", expires_at: rec.expires_at, source: "cache" };
}

/** The profile's UPST key pair: read from the secret store, or generated (RSA-2048, §6) and stored there first. */
async function sessionKey(ctx: Context, profile: string): Promise<{ pem: string; publicKey: KeyObject; created: boolean }> {
  const store = await ctx.secrets();
  const account = upstKeyAccount(profile);
  const stored = await store.get(account);
  if (stored) {
    registerSecret(stored);
    try {
      const priv = createPrivateKey(stored);
      if (priv.asymmetricKeyType === "rsa") return { pem: stored, publicKey: createPublicKey(priv), created: false };
    } catch {
      /* unusable: replaced below */
    }
    ctx.warn(`the stored session key of profile "${profile}" is not an RSA private key; generating a new one`);
  }
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ format: "pem", type: "pkcs8" }) as string;
  registerSecret(pem);
  await store.set(account, pem);
  return { pem, publicKey, created: true };
}

/** The OCI API key fingerprint of a public key: MD5 of its DER SubjectPublicKeyInfo, colon-separated (as `oci setup config` prints it). */
export function ociFingerprint(publicKey: KeyObject): string {
  return createHash("md5").update(publicKey.export({ format: "der", type: "spki" })).digest("hex").replace(/(..)(?!$)/g, "$1:");
}

export interface SessionFiles {
  dir: string;
  token: string;
  key: string;
  publicKey: string;
  fingerprint: string;
}

/**
 * Writes the files the OCI CLI's `security_token` authentication reads, named as `oci session
 * authenticate` names them in ~/.oci/sessions/<profile>/: `token` (the UPST) and `oci_api_key.pem`
 * (its private key), plus `oci_api_key_public.pem`. Each is replaced atomically, mode 0600, in a 0700
 * directory that must be the user's own and not writable by others (exit 5 otherwise). No backups:
 * they would only keep stale keys around.
 */
export function writeSessionDir(dir: string, r: UpstResult): SessionFiles {
  const abs = resolve(dir);
  const files: SessionFiles = { dir: abs, token: join(abs, "token"), key: join(abs, "oci_api_key.pem"), publicKey: join(abs, "oci_api_key_public.pem"), fingerprint: ociFingerprint(r.publicKey) };
  // The key before the token: a reader that sees the new token always finds its key.
  writeFileAtomic(files.key, r.privateKeyPem, { mode: 0o600 });
  writeFileAtomic(files.publicKey, r.publicKey.export({ format: "pem", type: "spki" }) as string, { mode: 0o600 });
  writeFileAtomic(files.token, r.access_token, { mode: 0o600 }); // as `oci session authenticate` writes it: no newline
  return files;
}

/** `--exchange oci-upst`, as the OCI provider declares it (src/commands/token.ts runs it). */
export const ociUpst: TokenExchange<UpstResult> = {
  id: "oci-upst",
  title: "an OCI session token",
  bearer: false,
  get: getUpst,
  writeSessionDir(dir, r, profile) {
    const f = writeSessionDir(dir, r);
    return `Wrote ${f.token} and ${f.key} (0600). For the OCI CLI, add to ~/.oci/config:\n  [${profile}]\n  fingerprint=${f.fingerprint}\n  key_file=${f.key}\n  security_token_file=${f.token}\n  tenancy=<tenancy OCID>\n  region=<region>\nthen: oci --auth security_token --profile ${profile} …`;
  },
};

/** A profile's UPST goes on logout (its key stays: it is the profile's); both go with the profile. */
export function forgetUpst(p: { name: string; issuer: string; clientId: string }): { tokens: CacheIdentity[]; accounts: string[] } {
  return { tokens: [upstIdentity({ issuer: p.issuer, clientId: p.clientId, profile: p.name })], accounts: [upstKeyAccount(p.name)] };
}
