// Reusable oidc-provider fixture for the mcp-auth test suite (see
// /work/shared/research/feasibility.md §3).
//
//   const op = await startOidc();            // http://127.0.0.1:<random port>
//   ...discover op.issuer with openid-client (execute: [allowInsecureRequests])...
//   op.counts.token                          // requests seen per endpoint
//   await op.close();
//
// Clients:
//   m2m  confidential, client_credentials only (secret below), scope "read write"
//   cli  public native client (token_endpoint_auth_method none, PKCE required),
//        redirect http://127.0.0.1/callback (any port matches: RFC 8252 loopback),
//        grants authorization_code, refresh_token, device_code
// Also: open dynamic client registration (/reg), revocation, introspection, device flow,
// devInteractions (login/consent pages driven by test/helpers/browser.mjs).
// Access tokens are JWTs (RS256, typ at+jwt) whose `aud` is the requested `resource`
// or `opts.audience ?? 'urn:mcp-auth:test'`. Refresh tokens are issued whenever the client
// may use the refresh_token grant (no offline_access / prompt=consent needed) and rotate
// for public clients.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OidcCounts {
  /** POST /token (all grants) */
  token: number;
  /** GET /.well-known/* (openid-configuration and oauth-authorization-server) */
  discovery: number;
  /** POST /device/auth (device authorization endpoint) */
  device: number;
  /** POST /token/revocation */
  revocation: number;
  /** /reg and /reg/<id> (dynamic client registration) */
  registration: number;
  /** POST /token/introspection */
  introspection: number;
  /** GET /auth (authorization endpoint, not counting /auth/<uid> resumes) */
  authorization: number;
  /** GET /jwks */
  jwks: number;
  /** every request */
  total: number;
  /** every request, by URL path (query string stripped) */
  byPath: Record<string, number>;
}

export interface StartOidcOptions {
  /** Access-token lifetime in seconds for every grant (default 3600; client_credentials 600). */
  accessTokenTtl?: number;
  /** Audience used when no `resource` is requested (default 'urn:mcp-auth:test'). */
  audience?: string;
  /** Refresh-token lifetime in seconds (default 14 days). */
  refreshTokenTtl?: number;
  /** Scopes the resource server grants (default 'read write'). */
  resourceScopes?: string;
  /** Print oidc-provider's warnings/notices and server errors (default: env OIDC_DEBUG). */
  verbose?: boolean;
}

export interface OidcFixture {
  /** e.g. http://127.0.0.1:41234 — discover exactly this string (localhost would not match) */
  issuer: string;
  close(): Promise<void>;
  /** live counters (the same object is mutated; read after the requests you care about) */
  counts: OidcCounts;
  resetCounts(): void;
  clients: {
    m2m: { clientId: 'm2m'; clientSecret: string; scope: string };
    cli: { clientId: 'cli'; redirectUri: string; scope: string };
  };
  /** default audience of access tokens */
  audience: string;
  /** the oidc-provider instance, for white-box tests (untyped: the package ships no types) */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  provider: any;
}

export const M2M_CLIENT_ID = 'm2m' as const;
export const M2M_CLIENT_SECRET = 'm2m-secret';
export const CLI_CLIENT_ID = 'cli' as const;
export const CLI_REDIRECT_URI = 'http://127.0.0.1/callback';
export const DEFAULT_AUDIENCE = 'urn:mcp-auth:test';

// ---- quieting oidc-provider ------------------------------------------------------------
// oidc-provider prints "oidc-provider WARNING/NOTICE: ..." through console.warn/console.info
// (unsupported Node runtime at import time, devInteractions, in-memory adapter, default
// helper functions called lazily). We filter only those lines, only while a fixture is alive.
type ConsoleFn = (...args: unknown[]) => void;
let quietDepth = 0;
let saved: { warn: ConsoleFn; info: ConsoleFn } | undefined;
let quietWarn: ConsoleFn | undefined;
let quietInfo: ConsoleFn | undefined;
const isOpNoise = (args: unknown[]) => typeof args[0] === 'string' && /oidc-provider (WARNING|NOTICE):/.test(args[0]);

function quietOn() {
  if (quietDepth++ > 0) return;
  const warn = console.warn;
  const info = console.info;
  saved = { warn, info };
  quietWarn = (...args) => { if (!isOpNoise(args)) warn.apply(console, args); };
  quietInfo = (...args) => { if (!isOpNoise(args)) info.apply(console, args); };
  console.warn = quietWarn;
  console.info = quietInfo;
}
function quietOff() {
  if (quietDepth === 0 || --quietDepth > 0) return;
  // restore only what we installed (someone may have replaced console.* meanwhile)
  if (saved && console.warn === quietWarn) console.warn = saved.warn;
  if (saved && console.info === quietInfo) console.info = saved.info;
  saved = quietWarn = quietInfo = undefined;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let providerClass: Promise<any> | undefined;
function loadProvider(verbose: boolean) {
  if (!providerClass) {
    if (!verbose) quietOn();
    // @ts-ignore -- oidc-provider ships no type declarations
    providerClass = import('oidc-provider')
      .then((m: { default: unknown }) => m.default)
      .finally(() => { if (!verbose) quietOff(); });
  }
  return providerClass;
}

// One real RS256 signing key per process (avoids the "development-only signing keys" path;
// generation takes ~50 ms so it is cached).
let signingJwk: Record<string, unknown> | undefined;
function getSigningJwk() {
  if (!signingJwk) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: `test-${randomUUID().slice(0, 8)}`, alg: 'RS256', use: 'sig' };
  }
  return signingJwk;
}

function newCounts(): OidcCounts {
  return {
    token: 0, discovery: 0, device: 0, revocation: 0, registration: 0,
    introspection: 0, authorization: 0, jwks: 0, total: 0, byPath: {},
  };
}

function countRequest(counts: OidcCounts, rawUrl: string | undefined) {
  const path = (rawUrl ?? '/').split('?')[0] || '/';
  counts.total += 1;
  counts.byPath[path] = (counts.byPath[path] ?? 0) + 1;
  if (path.startsWith('/.well-known/')) counts.discovery += 1;
  else if (path === '/token') counts.token += 1;
  else if (path === '/token/revocation') counts.revocation += 1;
  else if (path === '/token/introspection') counts.introspection += 1;
  else if (path === '/device/auth') counts.device += 1;
  else if (path === '/reg' || path.startsWith('/reg/')) counts.registration += 1;
  else if (path === '/auth') counts.authorization += 1;
  else if (path === '/jwks') counts.jwks += 1;
}

export async function startOidc(opts: StartOidcOptions = {}): Promise<OidcFixture> {
  const verbose = opts.verbose ?? /^(1|true|yes)$/i.test(process.env.OIDC_DEBUG ?? '');
  const audience = opts.audience ?? DEFAULT_AUDIENCE;
  const resourceScopes = opts.resourceScopes ?? 'read write';
  const accessTtl = opts.accessTokenTtl;
  const refreshTtl = opts.refreshTokenTtl ?? 14 * 24 * 3600;

  const Provider = await loadProvider(verbose);

  const counts = newCounts();
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  if (!verbose) quietOn();
  let quietActive = !verbose;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let provider: any;
  try {
    provider = new Provider(issuer, {
      clients: [
        {
          client_id: M2M_CLIENT_ID,
          client_secret: M2M_CLIENT_SECRET,
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
          scope: 'read write',
        },
        {
          client_id: CLI_CLIENT_ID,
          application_type: 'native',
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
          response_types: ['code'],
          redirect_uris: [CLI_REDIRECT_URI], // native + loopback IP: any port matches
          scope: 'openid offline_access read write',
        },
      ],
      jwks: { keys: [getSigningJwk()] },
      scopes: ['openid', 'offline_access', 'read', 'write'],
      pkce: { required: () => true },
      cookies: { keys: ['mcp-auth-test-cookie-key'] },
      findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
      clientBasedCORS: () => true,
      features: {
        devInteractions: { enabled: true },
        clientCredentials: { enabled: true },
        deviceFlow: { enabled: true },
        registration: { enabled: true }, // open DCR at /reg (no initial access token)
        revocation: {
          enabled: true,
          // a client may revoke its own tokens (public clients included)
          allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId: string }) => token.clientId === client.clientId,
        },
        introspection: {
          enabled: true,
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          allowedPolicy: (ctx: any, client: { clientAuthMethod: string }, token: { clientId: string }) =>
            !(client.clientAuthMethod === 'none' && token.clientId !== ctx.oidc.client.clientId),
        },
        resourceIndicators: {
          enabled: true,
          defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string) => oneOf ?? audience,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resource: string) => ({
            scope: resourceScopes,
            audience: resource,
            accessTokenFormat: 'jwt',
            ...(accessTtl !== undefined ? { accessTokenTTL: accessTtl } : {}),
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      // refresh tokens without offline_access / prompt=consent (MCP-style clients)
      issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(g: string): boolean }) =>
        client.grantTypeAllowed('refresh_token'),
      // rotate for public clients (as oidc-provider's default does), never for confidential ones
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      rotateRefreshToken: (ctx: any) => ctx.oidc.client.clientAuthMethod === 'none',
      ttl: {
        AccessToken: () => accessTtl ?? 3600,
        ClientCredentials: () => accessTtl ?? 600,
        AuthorizationCode: 60,
        DeviceCode: 600,
        IdToken: 3600,
        Interaction: 3600,
        Grant: refreshTtl,
        RefreshToken: refreshTtl,
        Session: refreshTtl,
      },
    });
  } catch (e) {
    if (quietActive) quietOff();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    throw e;
  }
  provider.proxy = false;
  if (verbose) {
    provider.on('server_error', (_ctx: unknown, err: Error) => console.error('oidc-provider server_error:', err));
  }

  const callback = provider.callback();
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    countRequest(counts, req.url);
    callback(req, res);
  });

  let closed = false;
  return {
    issuer,
    counts,
    audience,
    provider,
    clients: {
      m2m: { clientId: M2M_CLIENT_ID, clientSecret: M2M_CLIENT_SECRET, scope: 'read write' },
      cli: { clientId: CLI_CLIENT_ID, redirectUri: CLI_REDIRECT_URI, scope: 'openid offline_access read write' },
    },
    resetCounts() {
      // mutate in place so references to `counts` (and `counts.byPath`) stay live
      const fresh = newCounts();
      for (const k of Object.keys(fresh) as (keyof OidcCounts)[]) {
        if (k !== 'byPath') counts[k] = fresh[k] as number;
      }
      for (const p of Object.keys(counts.byPath)) delete counts.byPath[p];
    },
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // keep-alive sockets from fetch/Chromium
      });
      if (quietActive) {
        quietActive = false;
        quietOff();
      }
    },
  };
}
