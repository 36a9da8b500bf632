// Self-tests for the test helpers: the headless browser command (browser.mjs) and the run's browser
// driver it hands its page flows to (browser-driver.ts), driven against the sandbox IdP
// (src/sandbox/server.ts, the suite's one oidc-provider fixture), and the keyring wrapper
// (with-keyring.sh).
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as client from 'openid-client';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';

// __dirname: vitest provides it in every module (and it type-checks whether the package is CJS or ESM)
const here = __dirname;
const BROWSER = join(here, 'browser.mjs');
const WITH_KEYRING = join(here, 'with-keyring.sh');
/** The run's browser driver, as test/global-setup.ts names it (it starts none when BROWSER_SHARED=0). */
const DRIVER: string | undefined = (() => {
  try {
    return JSON.parse(readFileSync(join(here, '..', '..', '.vitest', 'chromium.json'), 'utf8')).driver;
  } catch {
    return undefined;
  }
})();
const insecure = { execute: [client.allowInsecureRequests] };

interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; onStderr?: (all: string, child: import('node:child_process').ChildProcess) => void } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => {
      stderr += d;
      opts.onStderr?.(stderr, child);
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs ?? 45_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A tiny stand-in for the CLI's loopback server: records /callback hits, shows a result page. */
async function startLoopback() {
  const hits: URL[] = [];
  let resolveHit!: (u: URL) => void;
  const firstHit = new Promise<URL>((r) => { resolveHit = r; });
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', `http://${req.headers.host}`);
    if (!u.pathname.startsWith('/callback')) {
      res.writeHead(404).end('not found');
      return;
    }
    hits.push(u);
    resolveHit(u);
    const ok = u.searchParams.has('code') && !u.searchParams.has('error');
    res.writeHead(ok ? 200 : 400, { 'content-type': 'text/html; charset=utf-8', connection: 'close' });
    res.end(ok
      ? '<!doctype html><title>mcp-auth</title><h1>Login complete</h1><p>You can close this window.</p>'
      : `<!doctype html><title>mcp-auth</title><h1>Login failed</h1><p>${u.searchParams.get('error')}</p>`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    hits,
    firstHit,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}

async function pkceStart(sb: Sandbox, redirectUri: string, extra: Record<string, string> = {}) {
  const config = await client.discovery(new URL(sb.issuer), sb.clients.cli.clientId, undefined, client.None(), insecure);
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'mcp:read',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    ...extra,
  });
  return { config, codeVerifier, state, url };
}

const chromiumMissing = !existsSync('/usr/bin/chromium');
const keyringMissing = ['/usr/bin/gnome-keyring-daemon', '/usr/bin/secret-tool', '/usr/bin/dbus-run-session']
  .filter((p) => !existsSync(p));

describe('sandbox IdP, as the helpers use it', () => {
  it.each([
    [undefined, undefined],
    [1, 1],
  ])('deviceInterval %s: the device authorization answer carries interval %s (absent: RFC 8628 default of 5 s)', async (deviceInterval, interval) => {
    const sb = await startSandbox({ deviceInterval });
    try {
      const cli = await client.discovery(new URL(sb.issuer), sb.clients.cli.clientId, undefined, client.None(), insecure);
      const d = await client.initiateDeviceAuthorization(cli, { scope: 'openid' });
      expect(d.interval).toBe(interval);
      expect(d.device_code).toBeTruthy();
    } finally {
      await sb.close();
    }
  });

  it('issues client_credentials JWTs for the MCP URL by default, honours tokenTtl, and counts requests', async () => {
    const sb = await startSandbox({ tokenTtl: 120 });
    try {
      const m2m = await client.discovery(new URL(sb.issuer), sb.clients.m2m.clientId, sb.clients.m2m.clientSecret, undefined, insecure);
      const tokens = await client.clientCredentialsGrant(m2m, { scope: 'mcp:read' });
      expect(tokens.token_type?.toLowerCase()).toBe('bearer');
      expect(tokens.expires_in).toBe(120);
      const jwks = createRemoteJWKSet(new URL(m2m.serverMetadata().jwks_uri!));
      const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
        issuer: sb.issuer, audience: sb.mcpUrl, typ: 'at+jwt',
      });
      expect(protectedHeader.alg).toBe('RS256');
      expect(payload.scope).toBe('mcp:read');
      expect(payload.client_id).toBe('sandbox-m2m');
      expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(120);

      // explicit resource -> that audience
      const res = await client.clientCredentialsGrant(m2m, { scope: 'mcp:write', resource: 'http://127.0.0.1:9/mcp' });
      expect(decodeJwt(res.access_token).aud).toBe('http://127.0.0.1:9/mcp');

      expect(sb.counts.discovery).toBe(1);
      expect(sb.counts.token).toBe(2);
      expect(sb.grants).toEqual({ client_credentials: 2 });
      expect(sb.counts.total).toBe(4); // discovery + 2 token + 1 jwks

      // gotcha: oidc-provider refuses to revoke/introspect structured (JWT) access tokens
      await expect(client.tokenRevocation(m2m, res.access_token)).rejects.toMatchObject({ error: 'unsupported_token_type' });
      expect(sb.counts.revocation).toBe(1);

      sb.resetCounts();
      expect(sb.counts).toMatchObject({ token: 0, discovery: 0, revocation: 0, total: 0 });
      expect(sb.grants).toEqual({});

      // open dynamic client registration
      const dcr = await client.dynamicClientRegistration(new URL(sb.issuer), {
        application_type: 'native', token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1/callback'], grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      }, client.None(), insecure);
      expect(dcr.clientMetadata().client_id).toBeTruthy();
      expect(sb.counts.registration).toBe(1);
    } finally {
      await sb.close();
    }
  });
});

describe.skipIf(chromiumMissing)('browser.mjs against the sandbox IdP', () => {
  let sb: Sandbox;
  beforeAll(async () => { sb = await startSandbox(); });
  afterAll(async () => { await sb?.close(); });

  it('completes a PKCE authorization (login + consent) and the code is redeemable', async () => {
    const loopback = await startLoopback();
    const shot = join(mkdtempSync(join(tmpdir(), 'browser-shot-')), 'final.png');
    try {
      const resource = 'http://127.0.0.1:9/mcp';
      const { config, codeVerifier, state, url } = await pkceStart(sb, loopback.redirectUri, { resource });
      const r = await run(process.execPath, [BROWSER, url.href], {
        env: { BROWSER_LOGIN: 'bob', BROWSER_SCREENSHOT: shot },
      });
      console.info(`browser login (approve) took ${r.ms} ms`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('Login complete');
      expect(loopback.hits).toHaveLength(1);
      const cb = loopback.hits[0]!;
      expect(cb.searchParams.get('state')).toBe(state);
      expect(cb.searchParams.get('code')).toBeTruthy();
      expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');

      sb.resetCounts();
      const tokens = await client.authorizationCodeGrant(config, cb, { pkceCodeVerifier: codeVerifier, expectedState: state });
      expect(sb.counts.token).toBe(1);
      // refresh token without offline_access
      expect(tokens.refresh_token).toBeTruthy();
      const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
      const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: sb.issuer, audience: resource, typ: 'at+jwt' });
      expect(payload.sub).toBe('bob');
      expect(payload.scope).toBe('mcp:read');

      // public client: refresh tokens rotate, the old one is then rejected
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.refresh_token).toBeTruthy();
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      expect(decodeJwt(refreshed.access_token).aud).toBe(resource);
      await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect(sb.grants).toEqual({ authorization_code: 1, refresh_token: 2 });

      // refresh tokens (opaque) can be revoked by the public client
      sb.resetCounts();
      await client.tokenRevocation(config, refreshed.refresh_token!, { token_type_hint: 'refresh_token' });
      expect(sb.counts.revocation).toBe(1);
      await expect(client.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    } finally {
      await loopback.close();
      rmSync(dirname(shot), { recursive: true, force: true });
    }
  }, 60_000);

  it('BROWSER_ACTION=deny ends at the callback with error=access_denied', async () => {
    const loopback = await startLoopback();
    try {
      const { url, state } = await pkceStart(sb, loopback.redirectUri);
      const r = await run(process.execPath, [BROWSER, url.href], { env: { BROWSER_ACTION: 'deny' } });
      console.info(`browser login (deny) took ${r.ms} ms`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('Login failed');
      expect(loopback.hits).toHaveLength(1);
      expect(loopback.hits[0]!.searchParams.get('error')).toBe('access_denied');
      expect(loopback.hits[0]!.searchParams.get('state')).toBe(state);
      expect(loopback.hits[0]!.searchParams.has('code')).toBe(false);
    } finally {
      await loopback.close();
    }
  }, 60_000);

  it('BROWSER_ACTION=deny-consent logs in, then cancels at consent', async () => {
    const loopback = await startLoopback();
    try {
      const { url } = await pkceStart(sb, loopback.redirectUri);
      const r = await run(process.execPath, [BROWSER, url.href], { env: { BROWSER_ACTION: 'deny-consent', BROWSER_DEBUG: '1' } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/page login:/);
      expect(r.stderr).toMatch(/\[ Cancel \] \(consent\)/);
      expect(loopback.hits[0]!.searchParams.get('error')).toBe('access_denied');
    } finally {
      await loopback.close();
    }
  }, 60_000);

  it('drives the device flow pages (code input, confirm, login, consent)', async () => {
    const config = await client.discovery(new URL(sb.issuer), sb.clients.cli.clientId, undefined, client.None(), insecure);
    sb.resetCounts();
    const da = await client.initiateDeviceAuthorization(config, { scope: 'mcp:read' });
    expect(sb.counts.device).toBe(1);
    // verification_uri + typed code (verification_uri_complete skips the input page)
    const r = await run(process.execPath, [BROWSER, da.verification_uri], { env: { BROWSER_USER_CODE: da.user_code } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/reached device-success/);
    const tokens = await client.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:device_code', { device_code: da.device_code });
    expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: sb.mcpUrl, sub: 'alice' }); // default resource; browser.mjs's default login
    expect(tokens.refresh_token).toBeTruthy();
  }, 60_000);

  it('exits 1 with a clear message on timeout', async () => {
    // a server that accepts the request and never answers
    const sockets = new Set<import('node:net').Socket>();
    const hang = http.createServer(() => {});
    hang.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    try {
      const { port } = hang.address() as AddressInfo;
      const r = await run(process.execPath, [BROWSER, `http://127.0.0.1:${port}/authorize`], {
        env: { BROWSER_TIMEOUT_MS: '2000' },
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/FAILED after \d+ ms: timed out after 2000 ms/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => hang.close(r));
    }
  }, 30_000);

  it('exits 1 on an unexpected page', async () => {
    const r = await run(process.execPath, [BROWSER, `${sb.issuer}/.well-known/openid-configuration`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unexpected page at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration/);
  }, 30_000);
});

/** The page flows the driver runs now (each one's URL) and the contexts open on its connection. */
async function driverFlows(): Promise<{ flows: string[]; contexts: number }> {
  return (await fetch(new URL('/flows', DRIVER))).json() as Promise<{ flows: string[]; contexts: number }>;
}

describe.skipIf(chromiumMissing || process.env.BROWSER_SHARED === '0')('browser.mjs and the run\'s browser driver', () => {
  let sb: Sandbox;
  beforeAll(async () => { sb = await startSandbox(); });
  afterAll(async () => { await sb?.close(); });

  it.each([
    ['through the driver', {}, /flow running in the browser driver http:\/\/127\.0\.0\.1:\d+/],
    ['BROWSER_SHARED=0: with a Chromium of its own', { BROWSER_SHARED: '0' }, /launched Chromium/],
  ])('%s, a sign-in completes', async (_name, env, how) => {
    const loopback = await startLoopback();
    try {
      const { url, state } = await pkceStart(sb, loopback.redirectUri);
      const r = await run(process.execPath, [BROWSER, url.href], { env: { ...env, BROWSER_DEBUG: '1' } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(how);
      expect(r.stderr).toMatch(/\[browser\] reached callback page in \d+ ms: http:\/\/127\.0\.0\.1:\d+\/callback\?code=/);
      expect(r.stderr).toContain('Login complete');
      expect(r.stdout).toBe('');
      expect(loopback.hits.map((u) => u.searchParams.get('state'))).toEqual([state]);
    } finally {
      await loopback.close();
    }
  }, 60_000);

  it('SIGTERM mid-flow: browser.mjs exits 143 and the driver closes the flow\'s context', async () => {
    expect(DRIVER, '.vitest/chromium.json names no browser driver').toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // a server that accepts the request and never answers: the page waits on it until its context closes
    const sockets = new Set<import('node:net').Socket>();
    let connected!: () => void;
    const reached = new Promise<void>((r) => { connected = r; });
    const hang = http.createServer(() => connected());
    hang.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    try {
      const target = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/authorize?hang=1`;
      let killed = false;
      let open: { flows: string[]; contexts: number } | undefined;
      const r = await run(process.execPath, [BROWSER, target], {
        env: { BROWSER_DEBUG: '1' },
        onStderr: async (all, child) => {
          if (killed || !all.includes('flow running in the browser driver')) return;
          killed = true;
          await reached; // the page is waiting on the server
          open = await driverFlows().catch(() => undefined);
          child.kill('SIGTERM');
        },
      });
      expect(r.code, r.stderr).toBe(143);
      expect(r.stderr).toContain('[browser] got SIGTERM, closing browser');
      expect(r.stderr).not.toContain('FAILED');
      expect(open?.flows).toContain(target);
      expect(open?.contexts).toBeGreaterThan(0);
      // The closed context drops the page's connection; the driver lists a flow until its context is closed.
      await expect.poll(() => [...sockets].every((s) => s.destroyed), { timeout: 10_000, interval: 50 }).toBe(true);
      await expect.poll(async () => (await driverFlows()).flows, { timeout: 10_000, interval: 50 }).not.toContain(target);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => hang.close(r));
    }
  }, 60_000);
});

describe('with-keyring.sh', () => {
  it('stores and looks up a secret in a throw-away gnome-keyring', async (ctx) => {
    if (keyringMissing.length > 0) {
      const why = `SKIP with-keyring.sh: gnome-keyring not installed (missing ${keyringMissing.join(', ')}); apt-get install --no-install-recommends gnome-keyring libsecret-tools dbus`;
      console.warn(why); // the default reporter does not print skip notes; --reporter=verbose does
      ctx.skip(why);
    }
    const home = mkdtempSync(join(tmpdir(), 'with-keyring-home-'));
    try {
      const env = { HOME: home };
      // one session: store (secret on stdin, passed through the wrapper) then look it up
      const both = await run(WITH_KEYRING, ['sh', '-c',
        'secret-tool store --label x service mcp-auth-test account a && secret-tool lookup service mcp-auth-test account a'], {
        env, input: 's3cret-value',
      });
      console.info(`with-keyring.sh store+lookup took ${both.ms} ms`);
      expect(both.code, both.stderr).toBe(0);
      expect(both.stdout).toBe('s3cret-value');
      expect(existsSync(join(home, '.local/share/keyrings/login.keyring'))).toBe(true);

      // a second session unlocks the same login.keyring with the same password
      const again = await run(WITH_KEYRING, ['secret-tool', 'lookup', 'service', 'mcp-auth-test', 'account', 'a'], { env });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toBe('s3cret-value');

      // exit codes propagate; the bus is private to the run
      const rc = await run(WITH_KEYRING, ['sh', '-c', 'test -n "$DBUS_SESSION_BUS_ADDRESS" && exit 7'], { env });
      expect(rc.code).toBe(7);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 30_000);
});
