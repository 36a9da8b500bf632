/**
 * Plumbing shared by the IdP simulators (thunder, keycloak, oci, openproject, octoperf): a server on
 * 127.0.0.1 port 0 that hands each handler the whole request body, JSON answers, request bodies
 * parsed as the IdPs parse them, HTTP Basic client credentials, an RS256 signing key with its JWK,
 * and the well-known paths clients look for metadata at. What each IdP answers stays in its own file.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";

export interface Served {
  /** http://127.0.0.1:PORT, no trailing slash. */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the server. The handler gets the body read to its end; a handler that throws (or rejects)
 * gets `onError` (default: a bare 500), or the connection is ended if an answer had started.
 */
export async function serve(
  handler: (req: IncomingMessage, res: ServerResponse, raw: string) => unknown,
  onError: (res: ServerResponse, err: unknown) => void = (res) => sendJson(res, 500, { error: "server_error" }),
): Promise<Served> {
  const server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      await handler(req, res, raw);
    })().catch((err: unknown) => {
      if (!res.headersSent) onError(res, err);
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections?.();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** A JSON answer (or none for 204 / undefined). */
export function sendJson(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}, type = "application/json"): void {
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (status === 204 || body === undefined) {
    res.end();
    return;
  }
  if (!res.hasHeader("content-type")) res.setHeader("Content-Type", type);
  res.end(JSON.stringify(body));
}

/**
 * A body as Go's and Java's OAuth servers see it: urlencoded → an object of its fields (`form` too),
 * otherwise JSON if it parses, else the raw text; undefined when empty.
 */
export function parseBody(raw: string, contentType: string | undefined): { body: unknown; form?: Record<string, string> } {
  if (raw === "") return { body: undefined };
  if ((contentType ?? "").toLowerCase().includes("application/x-www-form-urlencoded")) {
    const form = Object.fromEntries(new URLSearchParams(raw));
    return { body: form, form };
  }
  try {
    return { body: JSON.parse(raw) };
  } catch {
    return { body: raw };
  }
}

/** HTTP Basic client credentials (RFC 6749 §2.3.1: each half form-urlencoded before base64). */
export function basicCredentials(req: IncomingMessage): { id: string; secret: string } | undefined {
  const m = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? "");
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, "base64").toString("utf8");
  const i = text.indexOf(":");
  if (i < 0) return undefined;
  const dec = (s: string) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, " "));
    } catch {
      return s;
    }
  };
  return { id: dec(text.slice(0, i)), secret: dec(text.slice(i + 1)) };
}

export interface RsaKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  kid: string;
  /** The public JWK as JWKS endpoints list it: kid, kty, use "sig", alg RS256, n, e. */
  jwk: JWK;
}

/**
 * RSA key pairs for the simulators, from a small pool per process: generating an RSA-2048 key takes
 * about 200 ms, and a suite starts simulators hundreds of times. The pool hands its keys out in turn,
 * so the next POOL_SIZE simulators started (say, two IdPs a test tells apart) never share a key.
 */
const POOL_SIZE = 8;
const pools = new Map<string, { next: number; keys: Array<Promise<{ privateKey: CryptoKey; publicKey: CryptoKey }>> }>();
export function pooledKeyPair(alg: "RS256" | "RSA-OAEP"): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey }> {
  let pool = pools.get(alg);
  if (!pool) pools.set(alg, (pool = { next: 0, keys: [] }));
  const i = pool.next++ % POOL_SIZE;
  return (pool.keys[i] ??= generateKeyPair(alg, { extractable: true }));
}

/** An RS256 signing key; `kid` defaults to the RFC 7638 thumbprint (what Thunder and Keycloak use). */
export async function rsaKey(o: { kid?: string } = {}): Promise<RsaKey> {
  const { privateKey, publicKey } = await pooledKeyPair("RS256");
  const pub = await exportJWK(publicKey);
  const kid = o.kid ?? (await calculateJwkThumbprint(pub));
  return { privateKey, publicKey, kid, jwk: { kid, kty: "RSA", use: "sig", alg: "RS256", n: pub.n, e: pub.e } };
}

/**
 * Where clients look for an issuer's metadata: OIDC Discovery appends to the issuer's path; RFC 8414
 * §3.1 inserts the well-known segment before it (and many servers also serve the appended form).
 * For a resource, RFC 9728 §3.1 inserts `oauth-protected-resource` the same way.
 */
export function wellKnown(url: string): { openid: string; oauth: string; oauthAppended: string; protectedResource: string } {
  const path = new URL(url).pathname.replace(/\/+$/, "");
  return {
    openid: `${path}/.well-known/openid-configuration`,
    oauth: `/.well-known/oauth-authorization-server${path}`,
    oauthAppended: `${path}/.well-known/oauth-authorization-server`,
    protectedResource: `/.well-known/oauth-protected-resource${path}`,
  };
}
