/**
 * The fresh-token fast path, bundled on its own as dist/fast-fetch.cjs and loaded by bin/mcp-auth.js
 * only when the cache could not answer (src/fast.ts). It gets a client-credentials token, or
 * refreshes one, with node:https / node:http alone, doing what the full path does (src/core/tokens.ts):
 * the same lock, discovery metadata only from the full path's cache, the same checks on every URL,
 * the token endpoint's addresses judged against the issuer's (src/oauth/address-policy.ts) and the
 * connection pinned to them, no redirect followed, the body capped, the response checked as
 * openid-client checks it and then by toTokenSet, the secrets read from and written to the file
 * store. Anything else — another store, a key, a proxy, a flag it does not know, any error or
 * doubt, before or after the request — and it returns false: the full CLI then runs and says what
 * went wrong. It never prints an error itself.
 */
import { existsSync } from "node:fs";
import type { IncomingHttpHeaders } from "node:http";
import { isIP, type LookupFunction } from "node:net";
import { join } from "node:path";
import { parseTokenCall, writeOut, type TokenCall } from "./fast.js";
import { MAX_TIMEOUT_S } from "./core/inputs.js";
import { formatToken, isBearer, tokenProblem } from "./format.js";
import { classifyAddress, judge, reachOf, resolveByName, type Reach } from "./oauth/address-policy.js";
import { checkMetadata, checkResource, checkUrl, discoveryFile, toTokenSet, type ServerMetadata, type TokenSet } from "./oauth/client.js";
import { isLoopbackHost, MAX_BODY_BYTES, type ResolvedAddress, type Resolver } from "./oauth/http.js";
import { acquire } from "./store/lock.js";
import { editSecretsFile, readSecretsFile } from "./store/secrets-file.js";
import { accounts, readCachedToken, writeCachedToken, type CachedToken } from "./store/tokens.js";
import { readPrivateFile } from "./store/trust.js";
import { stripControl } from "./io/sanitize.js";
import { cacheKey, normalizeIssuer, type CacheIdentity, type TokenAuthMethod } from "./profile.js";

export interface FreshOptions {
  out?: (s: string) => void;
  /** Notices on stderr (waiting for another process's lock), as the full CLI words them. */
  info?: (line: string) => void;
  /** Name resolution. Only a caller in the same process can pass one (tests); default dns.lookup. */
  resolve?: Resolver;
  /** parseTokenCall() of the same argv and env, done already by src/fast.ts (its lastCall); parsed here when absent. */
  call?: TokenCall | null;
}

/** What the fast path did, for tests: a global only code in this process can read. */
export const SERVED = Symbol.for("mcp-auth.fast-fetch.served");

type Kind = "grant" | "refresh";

interface Plan {
  call: TokenCall;
  id: CacheIdentity;
  issuer: string;
  clientId: string;
  grant: string;
  scopes?: string[];
  resource?: string;
  audience?: string;
  authMethod?: TokenAuthMethod;
  /** Where the client secret is: none, a value (profile-less), or the file store. */
  secret: { from: "none" } | { from: "value"; value: string } | { from: "file"; account: string };
  metadata: ServerMetadata;
  tokenEndpoint: URL;
  timeoutMs: number;
  /** Where new secrets (a refresh token) would be written: only the file store is ours to write. */
  newSecrets: "file" | undefined;
}

/**
 * Gets and prints a fresh token, or returns false (nothing printed, nothing changed unless a token
 * was got and cached) so that the full CLI runs.
 */
export async function tryFreshToken(argv: string[], env: NodeJS.ProcessEnv, o: FreshOptions = {}): Promise<boolean> {
  let text: { text: string; kind: Kind | "cache" } | null;
  try {
    const plan = prepare(o.call !== undefined ? o.call : parseTokenCall(argv, env), env);
    if (!plan) return false;
    text = await fetchUnderLock(plan, env, o);
  } catch {
    return false;
  }
  if (!text) return false;
  writeOut(text.text, o.out);
  (globalThis as Record<symbol, unknown>)[SERVED] = text.kind;
  return true;
}

const PROXY_VARS = ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"];

/** Everything decided before any lock or request: null when this call is not one for the fast path. */
function prepare(call: TokenCall | null, env: NodeJS.ProcessEnv): Plan | null {
  // --min-ttl on a miss: the full CLI warns when the IdP's tokens live shorter than asked.
  if (!call || call.minTtlGiven) return null;
  const timeoutRaw = env.MCP_AUTH_TIMEOUT ?? "30";
  const timeoutSec = Number(timeoutRaw);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0 || timeoutSec > MAX_TIMEOUT_S) return null; // the full CLI says why
  const settings = call.config.settings;
  if ((env.MCP_AUTH_ACCESS_TOKEN_STORE ?? settings?.accessTokenStore) === "keychain") return null;

  let plan: Omit<Plan, "metadata" | "tokenEndpoint" | "timeoutMs" | "newSecrets">;
  const p = call.profile;
  if (p) {
    // A signing key, a federated CI token, a personal API token, fixed endpoints: the full CLI's.
    // An ID token as the bearer (src/core/tokens.ts bearerOf) is the full CLI's too.
    if (p.useIdToken || p.enterprise || p.key || p.assertion || p.tokenEndpointAuthMethod === "private_key_jwt" || p.extra?.credential === "api-token" || typeof p.extra?.tokenEndpoint === "string") return null;
    // A secret from a command: the full CLI checks where the command came from and runs it (src/core/secret-command.ts).
    // Never sent without it: this path would otherwise ask with no secret at all.
    if (p.clientSecretCommand !== undefined) return null;
    if (p.secretStore && p.secretStore !== "file") return null; // the keychain: see README "Performance"
    plan = {
      call,
      id: call.id,
      issuer: p.issuer,
      clientId: p.clientId,
      grant: p.grant,
      scopes: p.scopes,
      resource: p.resource,
      audience: p.audience,
      authMethod: p.tokenEndpointAuthMethod,
      secret: p.secretStore ? { from: "file", account: accounts.clientSecret(p.name) } : { from: "none" },
    };
  } else {
    const id = call.id;
    plan = { call, id, issuer: normalizeIssuer(id.issuer), clientId: id.clientId, grant: "client_credentials", scopes: id.scopes, resource: id.resource, audience: id.audience, secret: { from: "value", value: call.secret! } };
  }
  if (!plan.clientId) return null;
  checkUrl(plan.issuer, "the issuer", false, "issuer");
  if (plan.resource) checkResource(plan.resource, "the resource");

  const metadata = cachedMetadata(call, plan.issuer, env);
  if (!metadata) return null;
  checkMetadata(metadata, false);
  const tokenEndpoint = new URL(metadata.token_endpoint as string);
  // Loopback never goes through a proxy; anything else with a proxy set is the full CLI's.
  if (PROXY_VARS.some((v) => env[v]) && !isLoopbackHost(tokenEndpoint.hostname)) return null;

  // The store new secrets go to, as ctx.secrets() would choose it, without probing a keychain.
  const forced = call.storeFlag ?? env.MCP_AUTH_STORE ?? settings?.store;
  let newSecrets: "file" | undefined;
  if (forced === "file") newSecrets = "file";
  else if (forced === undefined || forced === "" || forced === "auto") {
    // No D-Bus session on Linux: no keychain, so the file store (announced once, by the full CLI).
    if (process.platform === "linux" && !env.DBUS_SESSION_BUS_ADDRESS && existsSync(join(call.paths.dir, ".file-store-notice"))) newSecrets = "file";
  } else if (forced !== "keychain") return null; // an invalid setting: the full CLI names it
  return { ...plan, metadata, tokenEndpoint, timeoutMs: timeoutSec * 1000, newSecrets };
}

/** The issuer's metadata as the full path cached it (src/oauth/client.ts discover()), if still fresh. */
function cachedMetadata(call: TokenCall, issuer: string, env: NodeJS.ProcessEnv): ServerMetadata | null {
  const rec = JSON.parse(readPrivateFile(discoveryFile(call.paths.discovery, issuer)) ?? "null") as { fetched_at?: unknown; issuer?: unknown; metadata?: ServerMetadata } | null;
  const ttl = Number(env.MCP_AUTH_DISCOVERY_TTL ?? 3600);
  if (!rec || rec.issuer !== issuer || typeof rec.fetched_at !== "number" || !(Date.now() - rec.fetched_at < ttl * 1000)) return null;
  if (!rec.metadata || typeof rec.metadata !== "object") return null;
  return rec.metadata;
}

/** A secret from the file store (src/store/secrets-file.ts, as the file store reads it). */
function fileSecret(call: TokenCall, account: string): string | undefined {
  const v = readSecretsFile(call.paths)[account];
  return typeof v === "string" ? v : undefined;
}

/** getToken() from src/core/tokens.ts, for the cases this path takes; null = let the full CLI do it. */
async function fetchUnderLock(plan: Plan, env: NodeJS.ProcessEnv, o: FreshOptions): Promise<{ text: string; kind: Kind | "cache" } | null> {
  const { call } = plan;
  const before = readCachedToken(call.paths, plan.id);
  // An access token in the keychain, or a refresh token anywhere but the file store: the full CLI's.
  if (before?.access_store || before?.bearer || (before?.refresh_store && before.refresh_store !== "file")) return null;
  if (!before?.refresh_store && plan.grant !== "client_credentials") return null; // a login is needed
  if (before?.refresh_store && plan.newSecrets !== "file") return null;

  // Judged before the lock is taken (as the full path judges before it sends): a refusal is the full CLI's to report.
  const pinned = await judgeEndpoint(plan.issuer, plan.tokenEndpoint, o.resolve);
  const secret = plan.secret.from === "value" ? plan.secret.value : plan.secret.from === "file" ? fileSecret(call, plan.secret.account) : undefined;
  if (plan.secret.from === "file" && secret === undefined) return null; // missing from the store: the full CLI says so

  const startedAt = Date.now() / 1000;
  const release = await acquire(call.paths.locks, cacheKey(plan.id), {
    onWait: (holder) => o.info?.(`Waiting for another mcp-auth (${stripControl(holder)}) that is getting this token…`),
  });
  try {
    // Someone may have got a token while we waited (the full path's rule, src/core/tokens.ts).
    const rec = readCachedToken(call.paths, plan.id);
    if (rec?.access_store || rec?.bearer) return null;
    if (rec?.access_token && !tokenProblem("access_token", rec.access_token) && isBearer(rec.token_type)) {
      const now = Date.now() / 1000;
      if (rec.obtained_at >= startedAt || rec.expires_at - now >= call.minTtl) {
        return { text: formatToken({ ...rec, access_token: rec.access_token }, call.format, { envName: call.envName, now: Math.floor(now), env, headers: call.headers }), kind: "cache" };
      }
    }
    let kind: Kind;
    let rt: string | undefined;
    if (rec?.refresh_store) {
      if (rec.refresh_store !== "file" || plan.newSecrets !== "file") return null;
      rt = fileSecret(call, accounts.refreshToken(cacheKey(plan.id)));
    }
    if (rt) kind = "refresh";
    else if (plan.grant === "client_credentials") kind = "grant";
    else return null;

    const params: Record<string, string> = {};
    if (kind === "grant" && plan.scopes?.length) params.scope = plan.scopes.join(" ");
    if (plan.resource) params.resource = plan.resource;
    if (plan.audience) params.audience = plan.audience;
    if (kind === "refresh") params.refresh_token = rt!;
    params.grant_type = kind === "refresh" ? "refresh_token" : "client_credentials";
    const headers: Record<string, string> = { accept: "application/json", "content-type": "application/x-www-form-urlencoded;charset=UTF-8" };
    const method = plan.authMethod ?? defaultAuthMethod(plan.metadata, secret);
    if (method === "none" || !secret) params.client_id = plan.clientId;
    else if (method === "client_secret_post") Object.assign(params, { client_id: plan.clientId, client_secret: secret });
    else headers.authorization = `Basic ${Buffer.from(`${formUrlEncode(plan.clientId)}:${formUrlEncode(secret)}`).toString("base64")}`;

    const res = await post(plan.tokenEndpoint, headers, new URLSearchParams(params).toString(), pinned, plan.timeoutMs);
    // Any answer but a usable 200: the full CLI asks again and reports it (a refresh token stays where it is).
    if (res.status !== 200) return null;
    const ts = tokenResponse(res.body, plan);
    if (!ts) return null;
    const result: TokenSet = kind === "refresh" ? { ...ts, refresh_token: ts.refresh_token ?? rt } : ts;
    if (result.refresh_token && plan.newSecrets !== "file") return null;
    // As TokenCache.save: the secret first, then the record that points at it (both atomic).
    if (result.refresh_token) {
      const kept = result.refresh_token;
      await editSecretsFile(call.paths, (s) => ((s[accounts.refreshToken(cacheKey(plan.id))] = kept), true));
    }
    saveRecord(call, plan, result);
    return { text: formatToken({ ...result, profile: plan.id.profile }, call.format, { envName: call.envName, now: Math.floor(Date.now() / 1000), env, headers: call.headers }), kind };
  } finally {
    release();
  }
}

/** The cache record TokenCache.save (src/store/cache.ts) writes for a token set, access token in the file. */
function saveRecord(call: TokenCall, plan: Plan, ts: TokenSet): void {
  const rec: Omit<CachedToken, "identity"> = {
    version: 1,
    profile: plan.id.profile,
    issuer: plan.issuer,
    clientId: plan.clientId,
    token_type: ts.token_type,
    expires_at: ts.expires_at,
    obtained_at: Date.now() / 1000,
    scope: ts.scope,
  };
  if (ts.refresh_token) rec.refresh_store = "file";
  rec.access_token = ts.access_token;
  writeCachedToken(call.paths, plan.id, rec);
}

/** src/oauth/client.ts: HTTP Basic unless the server says it wants the secret in the body. */
function defaultAuthMethod(metadata: ServerMetadata, secret: string | undefined): TokenAuthMethod {
  if (!secret) return "none";
  const supported = metadata.token_endpoint_auth_methods_supported;
  if (supported && !supported.includes("client_secret_basic") && supported.includes("client_secret_post")) return "client_secret_post";
  return "client_secret_basic";
}

/** RFC 6749 §2.3.1: id and secret are form-encoded before the Basic encoding (as openid-client does). */
function formUrlEncode(s: string): string {
  return encodeURIComponent(s).replace(/[-_.!~*'()]|%20/g, (c) => (c === "%20" ? "+" : `%${c.charCodeAt(0).toString(16).toUpperCase()}`));
}


const bare = (hostname: string) => hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");

/**
 * The addresses the token endpoint may be connected to: src/oauth/http.ts's rule for a URL a server
 * sent, with the issuer as the one URL the user gave (no --allow-private-network here). Throws when
 * any address is refused: the full CLI then refuses it with its message.
 */
export async function judgeEndpoint(issuer: string, endpoint: URL, resolve?: Resolver): Promise<ResolvedAddress[]> {
  const byName = resolveByName(resolve);
  const issuerHost = bare(new URL(issuer).hostname);
  const host = bare(endpoint.hostname);
  const literal = isIP(host);
  // An address the user typed is theirs to use, whatever it is.
  if (literal && host === issuerHost) return [{ address: host, family: literal as 4 | 6 }];
  const list = literal ? [{ address: host, family: literal as 4 | 6 }] : await byName(host);
  // The issuer's reach: from its addresses (none when it does not resolve: then nothing further in).
  const issuerAddrs = isIP(issuerHost) ? [issuerHost] : await byName(issuerHost).then((l) => l.map((a) => a.address), () => [] as string[]);
  const reference: Reach = reachOf(issuerAddrs.map(classifyAddress));
  for (const a of list) if (judge(classifyAddress(a.address), reference, false) !== "allowed") throw new Error(`${host} is refused`);
  if (!list.length) throw new Error(`${host} has no address`);
  return list;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One POST, over a new connection to the judged addresses only, never following a redirect, the
 * whole exchange (headers and body) under the timeout and the body capped at MAX_BODY_BYTES.
 */
async function post(url: URL, headers: Record<string, string>, body: string, pinned: ResolvedAddress[], timeoutMs: number): Promise<Answer> {
  // getBuiltinModule, not import(): in this CommonJS bundle an import() starts Node's ES module loader (~20 ms).
  const mod = url.protocol === "https:" ? process.getBuiltinModule("node:https") : process.getBuiltinModule("node:http");
  const lookup: LookupFunction = (_hostname, options, callback) => {
    const f = options.family as number | string | undefined;
    const family = f === 4 || f === "IPv4" ? 4 : f === 6 || f === "IPv6" ? 6 : 0;
    const usable = family ? pinned.filter((a) => a.family === family) : pinned;
    if (!usable.length) return callback(Object.assign(new Error("no address"), { code: "ENOTFOUND" }), "");
    if (options.all) callback(null, usable);
    else callback(null, usable[0]!.address, usable[0]!.family);
  };
  return new Promise<Answer>((resolve, reject) => {
    const req = mod.request(
      {
        method: "POST",
        protocol: url.protocol,
        hostname: bare(url.hostname),
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        agent: false,
        lookup,
      },
      (res) => {
        if (Number(res.headers["content-length"] ?? 0) > MAX_BODY_BYTES) return req.destroy(new Error("too large"));
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) req.destroy(new Error("too large"));
          else chunks.push(c);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    const timer = setTimeout(() => req.destroy(new Error("timed out")), timeoutMs);
    req.on("error", reject);
    req.on("close", () => clearTimeout(timer));
    // Once the request is out, the wait for the IdP's answer is idle: load node:crypto then, which the
    // atomic writes after the answer need (src/store/atomic.ts randomHex), rather than before the request.
    req.on("finish", () => setImmediate(() => process.getBuiltinModule("node:crypto")));
    req.end(body);
  });
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/**
 * A 200 token response, checked as openid-client (oauth4webapi processGenericAccessTokenResponse)
 * and then toTokenSet check it; null for anything either would refuse.
 */
function tokenResponse(body: Buffer, plan: Plan): TokenSet | null {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    return null;
  }
  if (!isObject(json) || !nonEmpty(json.access_token) || !nonEmpty(json.token_type)) return null;
  const tokenType = json.token_type.toLowerCase();
  let expiresIn: unknown = json.expires_in;
  if (expiresIn !== undefined) {
    expiresIn = typeof expiresIn === "number" ? expiresIn : parseFloat(String(expiresIn));
    if (typeof expiresIn !== "number" || !Number.isFinite(expiresIn) || expiresIn < 0) return null;
  }
  if (json.refresh_token !== undefined && !nonEmpty(json.refresh_token)) return null;
  if (json.scope !== undefined && typeof json.scope !== "string") return null;
  if (json.id_token !== undefined && (!nonEmpty(json.id_token) || !idTokenClaimsOk(json.id_token, plan))) return null;
  if (tokenType !== "bearer") return null; // "dpop" passes openid-client, and toTokenSet refuses it
  try {
    return toTokenSet({ ...json, token_type: tokenType, expires_in: expiresIn } as never, Date.now());
  } catch {
    return null;
  }
}

/**
 * The ID token's claims as oauth4webapi checks them in a token response (no signature: the answer
 * came over the TLS connection to the token endpoint). mcp-auth keeps no ID token; a response whose
 * ID token would be refused is refused whole, as on the full path.
 */
function idTokenClaimsOk(jwt: string, plan: Plan): boolean {
  const parts = jwt.split(".");
  if (parts.length !== 3) return false;
  let header: unknown;
  let claims: unknown;
  try {
    header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8"));
    claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
  } catch {
    return false;
  }
  if (!isObject(header) || !isObject(claims)) return false;
  const algs = plan.metadata.id_token_signing_alg_values_supported;
  if (Array.isArray(algs) ? !algs.includes(header.alg as string) : header.alg !== "RS256") return false;
  if (header.crit !== undefined) return false;
  const now = Math.floor(Date.now() / 1000);
  const tolerance = 30;
  const c = claims;
  for (const k of ["aud", "exp", "iat", "iss", "sub"]) if (c[k] === undefined) return false;
  if (typeof c.exp !== "number" || c.exp <= now - tolerance) return false;
  if (typeof c.iat !== "number") return false;
  if (c.nbf !== undefined && (typeof c.nbf !== "number" || c.nbf > now + tolerance)) return false;
  if (c.iss !== plan.metadata.issuer) return false;
  if (typeof c.aud === "string" ? c.aud !== plan.clientId : !Array.isArray(c.aud) || !c.aud.includes(plan.clientId)) return false;
  if (typeof c.sub !== "string") return false;
  if (Array.isArray(c.aud) && c.aud.length !== 1 && c.azp !== plan.clientId) return false;
  if (c.auth_time !== undefined && (typeof c.auth_time !== "number" || !Number.isFinite(c.auth_time) || c.auth_time < 0)) return false;
  return true;
}
