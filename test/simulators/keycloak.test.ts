/**
 * Drives the Keycloak simulator with plain fetch: the admin-token curl, then the kcp MCP guide
 * (seed 001) - trusted hosts policy, an audience mapper for `kcp`, DCR - and checks the behaviour
 * docs/idp/keycloak.md describes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { startKeycloak, type KeycloakSim } from './keycloak.js';

const POLICY_TYPE = 'org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy';
const formHeaders = { 'Content-Type': 'application/x-www-form-urlencoded' };

async function call(method: string, url: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['Content-Type'] ??= 'application/json';
  }
  const res = await fetch(url, { method, headers, body, redirect: 'manual' });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, body: json };
}
async function tokenRequest(kc: KeycloakSim, realm: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  return call('POST', `${kc.url}/realms/${realm}/protocol/openid-connect/token`, { body: new URLSearchParams(form).toString(), headers: { ...formHeaders, ...headers } });
}
/** The admin token: grant_type=password&client_id=admin-cli&username=admin&password=admin */
async function adminToken(kc: KeycloakSim) {
  const r = await tokenRequest(kc, 'master', { grant_type: 'password', client_id: 'admin-cli', username: 'admin', password: 'admin' });
  expect(r.status).toBe(200);
  return r.body as { access_token: string; refresh_token: string; expires_in: number; refresh_expires_in: number };
}
async function jwks(kc: KeycloakSim, realm: string) {
  return createLocalJWKSet((await call('GET', `${kc.url}/realms/${realm}/protocol/openid-connect/certs`)).body);
}
const idFromLocation = (h: Headers) => h.get('location')!.split('/').pop()!;

describe('Keycloak simulator', () => {
  let kc: KeycloakSim;
  let admin: string;
  beforeAll(async () => {
    kc = await startKeycloak({ realms: ['kcp'] });
    admin = (await adminToken(kc)).access_token;
  });
  afterAll(() => kc.close());

  it('issues the master admin token: 60 s, refresh, lightweight RS256 JWT', async () => {
    const r = await tokenRequest(kc, 'master', { grant_type: 'password', client_id: 'admin-cli', username: 'admin', password: 'admin' });
    expect(Object.keys(r.body)).toEqual(['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type', 'not-before-policy', 'session_state', 'scope']);
    expect(r.body).toMatchObject({ expires_in: 60, token_type: 'Bearer', 'not-before-policy': 0, scope: 'profile email' });
    // The session's idle timeout counts from its start: a second boundary between the session and the token takes one off.
    expect([1799, 1800]).toContain(r.body.refresh_expires_in);
    const { payload, protectedHeader } = await jwtVerify(r.body.access_token, await jwks(kc, 'master'), { issuer: `${kc.url}/realms/master` });
    expect(protectedHeader.alg).toBe('RS256');
    // admin-cli tokens are lightweight: no sub, no aud, no realm_access
    expect(Object.keys(payload).sort()).toEqual(['azp', 'exp', 'iat', 'iss', 'jti', 'scope', 'sid', 'typ']);
    expect(payload).toMatchObject({ typ: 'Bearer', azp: 'admin-cli', sid: r.body.session_state });
    expect(decodeJwt(r.body.refresh_token).typ).toBe('Refresh');

    const bad = await tokenRequest(kc, 'master', { grant_type: 'password', client_id: 'admin-cli', username: 'admin', password: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: 'invalid_grant', error_description: 'Invalid user credentials' });
    expect((await tokenRequest(kc, 'master', { client_id: 'admin-cli' })).body).toEqual({ error: 'invalid_request', error_description: 'Missing form parameter: grant_type' });
    expect((await tokenRequest(kc, 'master', { grant_type: 'magic', client_id: 'admin-cli' })).body).toEqual({ error: 'unsupported_grant_type', error_description: 'Unsupported grant_type' });
    const unknownClient = await tokenRequest(kc, 'master', { grant_type: 'client_credentials', client_id: 'ghost', client_secret: 'x' });
    expect(unknownClient.status).toBe(401);
    expect(unknownClient.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client or Invalid client credentials' });
    const publicCc = await tokenRequest(kc, 'master', { grant_type: 'client_credentials', client_id: 'admin-cli' });
    expect(publicCc.body).toEqual({ error: 'unauthorized_client', error_description: 'Public client not allowed to retrieve service account' });
  });

  it('answers the admin API with 401 / 403 / 404 bodies', async () => {
    const none = await call('GET', `${kc.url}/admin/realms/kcp/clients`);
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ error: 'HTTP 401 Unauthorized' });
    expect(none.headers.get('www-authenticate')).toBeNull();
    expect((await call('GET', `${kc.url}/admin/realms/kcp/clients`, { token: 'garbage' })).body).toEqual({ error: 'HTTP 401 Unauthorized' });
    const noRealm = await call('GET', `${kc.url}/admin/realms/nope/clients`, { token: admin });
    expect(noRealm.status).toBe(404);
    expect(noRealm.body).toEqual({ error: 'Realm not found.' });
    expect((await call('GET', `${kc.url}/realms/nope/.well-known/openid-configuration`)).body).toEqual({ error: 'Realm does not exist' });
    expect((await call('GET', `${kc.url}/admin/realms/kcp/clients/${crypto.randomUUID()}`, { token: admin })).body).toEqual({ error: 'Could not find client' });
  });

  it('expires master admin tokens after masterTokenLifespan; refresh_token gets a new one', async () => {
    const short = await startKeycloak({ masterTokenLifespan: 1 });
    try {
      const t = await adminToken(short);
      expect(t.expires_in).toBe(1);
      expect((await call('GET', `${short.url}/admin/realms/master/clients`, { token: t.access_token })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 2100));
      const expired = await call('GET', `${short.url}/admin/realms/master/clients`, { token: t.access_token });
      expect(expired.status).toBe(401);
      expect(expired.body).toEqual({ error: 'HTTP 401 Unauthorized' });
      const refreshed = await tokenRequest(short, 'master', { grant_type: 'refresh_token', client_id: 'admin-cli', refresh_token: t.refresh_token });
      expect(refreshed.status).toBe(200);
      expect((await call('GET', `${short.url}/admin/realms/master/clients`, { token: refreshed.body.access_token })).status).toBe(200);
      const badRefresh = await tokenRequest(short, 'master', { grant_type: 'refresh_token', client_id: 'admin-cli', refresh_token: 'x.y.z' });
      expect(badRefresh.body).toEqual({ error: 'invalid_grant', error_description: 'Invalid refresh token' });
    } finally {
      await short.close();
    }
  });

  it('creates clients: 201 + Location UUID, 409 on duplicate clientId, secret endpoint', async () => {
    const body = {
      clientId: 'mcp-cli',
      name: 'MCP CLI',
      protocol: 'openid-connect',
      publicClient: false,
      clientAuthenticatorType: 'client-secret',
      standardFlowEnabled: true,
      directAccessGrantsEnabled: false,
      serviceAccountsEnabled: false,
      redirectUris: ['http://127.0.0.1:33418/callback'],
      webOrigins: ['+'],
      attributes: { 'pkce.code.challenge.method': 'S256', 'oauth2.device.authorization.grant.enabled': 'true', 'standard.token.exchange.enabled': 'true' },
      protocolMappers: [
        { name: 'mcp-audience', protocol: 'openid-connect', protocolMapper: 'oidc-audience-mapper', config: { 'included.custom.audience': 'https://mcp.example.com/mcp', 'access.token.claim': 'true', 'id.token.claim': 'false', 'introspection.token.claim': 'true' } },
      ],
    };
    const r = await call('POST', `${kc.url}/admin/realms/kcp/clients`, { token: admin, body });
    expect(r.status).toBe(201);
    expect(r.body).toBeUndefined();
    expect(r.headers.get('location')).toMatch(new RegExp(`^${kc.url}/admin/realms/kcp/clients/[0-9a-f-]{36}$`));
    const uuid = idFromLocation(r.headers);
    const dup = await call('POST', `${kc.url}/admin/realms/kcp/clients`, { token: admin, body });
    expect(dup.status).toBe(409);
    expect(dup.body).toEqual({ errorMessage: 'Client mcp-cli already exists' });

    const found = await call('GET', `${kc.url}/admin/realms/kcp/clients?clientId=mcp-cli`, { token: admin });
    expect(found.body).toHaveLength(1);
    expect(found.body[0]).toMatchObject({ id: uuid, clientId: 'mcp-cli', publicClient: false, fullScopeAllowed: true, nodeReRegistrationTimeout: -1 });
    expect(found.body[0].attributes['pkce.code.challenge.method']).toBe('S256');
    expect(found.body[0].defaultClientScopes).toEqual(expect.arrayContaining(['profile', 'email', 'roles', 'web-origins', 'acr', 'basic']));
    expect(found.body[0].protocolMappers[0].config['access.token.claim']).toBe('true');
    const secret = await call('GET', `${kc.url}/admin/realms/kcp/clients/${uuid}/client-secret`, { token: admin });
    expect(secret.body).toEqual({ type: 'secret', value: found.body[0].secret });
    const bad = await call('POST', `${kc.url}/admin/realms/kcp/clients`, { token: admin, body: { clientId: 'bad-url', baseUrl: 'not a url' } });
    expect(bad.body).toEqual({ error: 'invalid_input', error_description: 'Base URL is not a valid URL' });
    const put = await call('PUT', `${kc.url}/admin/realms/kcp/clients/${uuid}`, { token: admin, body: { description: 'updated' } });
    expect(put.status).toBe(204);
    expect(kc.client('kcp', 'mcp-cli')!.description).toBe('updated');
  });

  it('seed 001 §2: an audience scope `kcp` lands in `aud` of client_credentials tokens', async () => {
    // the kcp client itself
    const kcpClient = await call('POST', `${kc.url}/admin/realms/kcp/clients`, { token: admin, body: { clientId: 'kcp', publicClient: true } });
    expect(kcpClient.status).toBe(201);
    // client scope with an "Audience" mapper: Included Client Audience = kcp, add to ID + access token
    const scope = await call('POST', `${kc.url}/admin/realms/kcp/client-scopes`, {
      token: admin,
      body: {
        name: 'kcp-audience',
        protocol: 'openid-connect',
        attributes: { 'include.in.token.scope': 'true', 'display.on.consent.screen': 'false' },
        protocolMappers: [{ name: 'kcp-audience', protocol: 'openid-connect', protocolMapper: 'oidc-audience-mapper', config: { 'included.client.audience': 'kcp', 'id.token.claim': 'true', 'access.token.claim': 'true' } }],
      },
    });
    expect(scope.status).toBe(201);
    expect(scope.headers.get('cache-control')).toBe('no-cache');
    const scopeId = idFromLocation(scope.headers);
    const dup = await call('POST', `${kc.url}/admin/realms/kcp/client-scopes`, { token: admin, body: { name: 'kcp-audience', protocol: 'openid-connect' } });
    expect(dup.status).toBe(409);
    expect(dup.body).toEqual({ errorMessage: 'Client Scope kcp-audience already exists' });
    const mappers = await call('GET', `${kc.url}/admin/realms/kcp/client-scopes/${scopeId}/protocol-mappers/models`, { token: admin });
    expect(mappers.body[0].config).toMatchObject({ 'introspection.token.claim': 'true', 'userinfo.token.claim': 'true' }); // mirrored on create

    // realm-wide default for new clients
    expect((await call('PUT', `${kc.url}/admin/realms/kcp/default-default-client-scopes/${scopeId}`, { token: admin })).status).toBe(204);
    const again = await call('PUT', `${kc.url}/admin/realms/kcp/default-default-client-scopes/${scopeId}`, { token: admin });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: 'conflict', error_description: 'Duplicate resource error' });
    const defaults = await call('GET', `${kc.url}/admin/realms/kcp/default-default-client-scopes`, { token: admin });
    expect(defaults.body.at(-1)).toEqual({ id: scopeId, name: 'kcp-audience', protocol: 'openid-connect' });
    expect((await call('PUT', `${kc.url}/admin/realms/kcp/default-default-client-scopes/${crypto.randomUUID()}`, { token: admin })).body).toEqual({ error: 'Client scope not found' });

    // a confidential service-account client created now inherits it
    const svc = await call('POST', `${kc.url}/admin/realms/kcp/clients`, { token: admin, body: { clientId: 'kcp-mcp-bot', serviceAccountsEnabled: true, standardFlowEnabled: false } });
    const svcId = idFromLocation(svc.headers);
    const secret = (await call('GET', `${kc.url}/admin/realms/kcp/clients/${svcId}/client-secret`, { token: admin })).body.value;
    const tok = await tokenRequest(kc, 'kcp', { grant_type: 'client_credentials' }, { Authorization: 'Basic ' + Buffer.from(`kcp-mcp-bot:${secret}`).toString('base64') });
    expect(tok.status).toBe(200);
    expect(tok.body).toMatchObject({ expires_in: 300, refresh_expires_in: 0, token_type: 'Bearer' });
    expect(tok.body).not.toHaveProperty('refresh_token');
    const { payload } = await jwtVerify(tok.body.access_token, await jwks(kc, 'kcp'), { issuer: `${kc.url}/realms/kcp`, audience: 'kcp' });
    // audience mapper + audience resolve (the service account's `account` roles); order is not significant
    expect([...(payload.aud as string[])].sort()).toEqual(['account', 'kcp']);
    expect(payload).toMatchObject({ azp: 'kcp-mcp-bot', client_id: 'kcp-mcp-bot', preferred_username: 'service-account-kcp-mcp-bot', typ: 'Bearer' });
    expect(String(payload.scope).split(' ')).toContain('kcp-audience');

    // a client created before the realm default changed does not get it; attach it per client
    const cli = kc.client('kcp', 'mcp-cli')!;
    expect(kc.clientScopeNames('kcp', 'mcp-cli').default).not.toContain('kcp-audience');
    expect((await call('PUT', `${kc.url}/admin/realms/kcp/clients/${cli.id}/default-client-scopes/${scopeId}`, { token: admin })).status).toBe(204);
    expect(kc.clientScopeNames('kcp', 'mcp-cli').default).toContain('kcp-audience');
    const wrong = await tokenRequest(kc, 'kcp', { grant_type: 'client_credentials', client_id: 'kcp-mcp-bot', client_secret: 'wrong' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: 'unauthorized_client', error_description: 'Invalid client or Invalid client credentials' });
  });

  it('applies audience mappers exactly: client audience beats custom, and access.token.claim is required', async () => {
    const c = await call('POST', `${kc.url}/admin/realms/kcp/clients`, {
      token: admin,
      body: {
        clientId: 'aud-probe',
        serviceAccountsEnabled: true,
        defaultClientScopes: ['basic'],
        protocolMappers: [
          { name: 'both', protocol: 'openid-connect', protocolMapper: 'oidc-audience-mapper', config: { 'included.client.audience': 'kcp', 'included.custom.audience': 'https://ignored.example', 'access.token.claim': 'true' } },
          { name: 'custom', protocol: 'openid-connect', protocolMapper: 'oidc-audience-mapper', config: { 'included.custom.audience': 'https://mcp.example.com/mcp', 'access.token.claim': 'true' } },
          { name: 'not-in-access-token', protocol: 'openid-connect', protocolMapper: 'oidc-audience-mapper', config: { 'included.custom.audience': 'https://missing.example' } },
        ],
      },
    });
    const secret = kc.client('kcp', 'aud-probe')!.secret!;
    expect(idFromLocation(c.headers)).toBe(kc.client('kcp', 'aud-probe')!.id);
    // only the named default scope (+ service_account): no roles scope, so no `account` audience
    expect(kc.clientScopeNames('kcp', 'aud-probe').default).toEqual(['basic', 'service_account']);
    const tok = await tokenRequest(kc, 'kcp', { grant_type: 'client_credentials', client_id: 'aud-probe', client_secret: secret });
    expect(decodeJwt(tok.body.access_token).aud).toEqual(['kcp', 'https://mcp.example.com/mcp']);
    const badScope = await tokenRequest(kc, 'kcp', { grant_type: 'client_credentials', client_id: 'aud-probe', client_secret: secret, scope: 'nonexistent' });
    expect(badScope.body).toEqual({ error: 'invalid_scope', error_description: 'Invalid scopes: nonexistent' });
  });

  it('lists the client-registration policies with array-valued config; PUT validates', async () => {
    const list = await call('GET', `${kc.url}/admin/realms/kcp/components?type=${POLICY_TYPE}`, { token: admin });
    expect(list.status).toBe(200);
    expect(list.body.map((c: any) => `${c.subType}:${c.providerId}`)).toEqual([
      'anonymous:trusted-hosts',
      'anonymous:consent-required',
      'anonymous:scope',
      'anonymous:max-clients',
      'anonymous:allowed-protocol-mappers',
      'anonymous:allowed-client-templates',
      'authenticated:allowed-protocol-mappers',
      'authenticated:allowed-client-templates',
    ]);
    const th = list.body[0];
    expect(th).toEqual({
      id: th.id,
      name: 'Trusted Hosts',
      providerId: 'trusted-hosts',
      providerType: POLICY_TYPE,
      parentId: kc.realm('kcp').id,
      subType: 'anonymous',
      config: { 'host-sending-registration-request-must-match': ['true'], 'client-uris-must-match': ['true'] },
    });
    expect(th.config).not.toHaveProperty('trusted-hosts'); // empty list -> absent
    const invalid = await call('PUT', `${kc.url}/admin/realms/kcp/components/${th.id}`, {
      token: admin,
      body: { ...th, config: { 'host-sending-registration-request-must-match': ['false'], 'client-uris-must-match': ['false'] } },
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toEqual({ errorMessage: 'At least one of hosts verification or client URIs validation must be enabled' });
    // both switches are required, single and boolean (ConfigurationValidationHelper.checkBoolean(…, true))
    const put = (config: Record<string, string[]>) => call('PUT', `${kc.url}/admin/realms/kcp/components/${th.id}`, { token: admin, body: { ...th, config } });
    expect((await put({ 'host-sending-registration-request-must-match': ['false'] })).body).toEqual({ errorMessage: "'client-uris-must-match.label' is required" });
    expect((await put({ 'host-sending-registration-request-must-match': ['no'], 'client-uris-must-match': ['true'] })).body).toEqual({
      errorMessage: "'host-sending-registration-request-must-match.label' should be 'true' or 'false'",
    });
    expect((await put({ 'host-sending-registration-request-must-match': ['true', 'false'], 'client-uris-must-match': ['true'] })).body).toEqual({
      errorMessage: "'host-sending-registration-request-must-match.label' should be a single entry",
    });
    expect(kc.trustedHostsPolicy('kcp').config).toEqual({ 'host-sending-registration-request-must-match': ['true'], 'client-uris-must-match': ['true'] });
  });

  it('seed 001 §1 + FAQ: anonymous DCR is refused until the Trusted Hosts policy lists the host', async () => {
    const dcr = (body: unknown, headers: Record<string, string> = {}) => call('POST', `${kc.url}/realms/kcp/clients-registrations/openid-connect`, { body, headers });
    const reg = { client_name: 'Claude Code', redirect_uris: ['http://127.0.0.1:33418/callback'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };

    const refused = await dcr(reg);
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: 'insufficient_scope', error_description: "Policy 'Trusted Hosts' rejected request to client-registration service. Details: Host not trusted." });

    const th = kc.trustedHostsPolicy('kcp');
    const put = await call('PUT', `${kc.url}/admin/realms/kcp/components/${th.id}`, { token: admin, body: { ...th, config: { ...th.config, 'trusted-hosts': ['localhost'] } } });
    expect(put.status).toBe(204);
    expect(kc.trustedHostsPolicy('kcp').config['trusted-hosts']).toEqual(['localhost']);

    // the request now passes the host check, but 127.0.0.1 is not "localhost" for redirect URIs (the FAQ error)
    const uriRefused = await dcr(reg);
    expect(uriRefused.status).toBe(403);
    expect(uriRefused.body.error_description).toBe("Policy 'Trusted Hosts' rejected request to client-registration service. Details: URI doesn't match any trusted host or trusted domain");

    const ok = await dcr({ ...reg, redirect_uris: ['http://localhost:33418/callback'] });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('location')).toBe(ok.body.registration_client_uri);
    expect(Object.keys(ok.body)).toEqual([
      'redirect_uris', 'token_endpoint_auth_method', 'grant_types', 'response_types', 'client_id', 'client_name', 'scope', 'subject_type', 'request_uris',
      'tls_client_certificate_bound_access_tokens', 'dpop_bound_access_tokens', 'post_logout_redirect_uris', 'client_id_issued_at', 'registration_client_uri',
      'registration_access_token', 'backchannel_logout_session_required', 'require_pushed_authorization_requests', 'frontchannel_logout_session_required',
    ]);
    expect(ok.body).toMatchObject({ token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code', 'none'], subject_type: 'public' });
    expect(ok.body.client_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(ok.body.scope).toBe('offline_access address phone microprofile-jwt organization');
    const stored = kc.client('kcp', ok.body.client_id)!;
    expect(stored).toMatchObject({ consentRequired: true, fullScopeAllowed: false, publicClient: true });
    // realm default scopes (incl. kcp-audience from the previous test) were applied to the DCR client
    expect(kc.clientScopeNames('kcp', ok.body.client_id).default).toContain('kcp-audience');

    // the registration access token reads and deletes
    const rat = ok.body.registration_access_token;
    const read = await call('GET', ok.body.registration_client_uri, { token: rat });
    expect(read.status).toBe(200);
    expect(read.body).not.toHaveProperty('client_id_issued_at');
    expect(read.body.registration_access_token).toBe(rat);
    const noToken = await call('GET', ok.body.registration_client_uri);
    expect(noToken.body).toEqual({ error: 'invalid_token', error_description: 'Not authorized to view client. Not valid token or client credentials provided.' });
    expect((await call('DELETE', ok.body.registration_client_uri, { token: rat })).status).toBe(204);
    expect(kc.client('kcp', ok.body.client_id)).toBeUndefined();
    expect((await call('DELETE', ok.body.registration_client_uri, { token: rat })).body).toEqual({ error: 'invalid_token', error_description: 'Not authorized to update client. Maybe missing token or bad token type.' });

    // behind Docker/NAT the remote address is not loopback: host check fails again
    kc.remoteAddressOverride = '172.17.0.1';
    try {
      expect((await dcr({ ...reg, redirect_uris: ['http://localhost:1/cb'] })).body.error_description).toMatch(/Details: Host not trusted\.$/);
      const th2 = kc.trustedHostsPolicy('kcp');
      await call('PUT', `${kc.url}/admin/realms/kcp/components/${th2.id}`, { token: admin, body: { ...th2, config: { ...th2.config, 'host-sending-registration-request-must-match': ['false'] } } });
      expect((await dcr({ ...reg, redirect_uris: ['http://localhost:1/cb'] })).status).toBe(201);
    } finally {
      kc.remoteAddressOverride = undefined;
    }
  });

  it('DCR: scope handling, strict body, client_id refusal, authenticated path', async () => {
    const th = kc.trustedHostsPolicy('kcp');
    await call('PUT', `${kc.url}/admin/realms/kcp/components/${th.id}`, { token: admin, body: { ...th, config: { 'host-sending-registration-request-must-match': ['true'], 'client-uris-must-match': ['true'], 'trusted-hosts': ['localhost', '127.0.0.1'] } } });
    const dcr = (body: unknown, token?: string) => call('POST', `${kc.url}/realms/kcp/clients-registrations/openid-connect`, { body, token });
    const base = { redirect_uris: ['http://127.0.0.1:5000/cb'] };

    const openid = await dcr({ ...base, scope: 'openid profile' });
    expect(openid.status).toBe(403);
    expect(openid.body.error_description).toBe("Policy 'Allowed Client Scopes' rejected request to client-registration service. Details: Not permitted to use specified clientScope");
    // naming scopes: the requested ones become optional; the defaults are the realm's (26.8, see the release table below)
    const named = await dcr({ ...base, scope: 'kcp-audience profile', grant_types: ['client_credentials'] });
    expect(named.status).toBe(201);
    expect(named.body.scope).toBe('kcp-audience profile');
    expect(named.body.grant_types).toEqual(['authorization_code', 'client_credentials']);
    expect(named.body.client_secret).toBeTruthy();
    expect(named.body.client_secret_expires_at).toBe(0);
    expect(kc.clientScopeNames('kcp', named.body.client_id)).toEqual({ default: ['profile', 'email', 'roles', 'web-origins', 'acr', 'basic', 'kcp-audience', 'service_account'], optional: ['kcp-audience', 'profile'] });
    const withAud = await tokenRequest(kc, 'kcp', { grant_type: 'client_credentials', client_id: named.body.client_id, client_secret: named.body.client_secret, scope: 'kcp-audience' });
    expect(decodeJwt(withAud.body.access_token).aud).toBe('kcp'); // one audience: a plain string; full scope disabled -> no `account`

    const withId = await dcr({ ...base, client_id: 'mine' });
    expect(withId.body).toEqual({ error: 'invalid_client_metadata', error_description: 'Client Identifier included' });
    const unknownField = await dcr({ ...base, x: 1 });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error).toMatch(/^Invalid json representation for OIDCClientRepresentation\. Unrecognized field "x" at line 1 column \d+\.$/);
    const pkjwt = await dcr({ ...base, token_endpoint_auth_method: 'private_key_jwt' });
    expect(pkjwt.body).toEqual({ error: 'invalid_client_metadata', error_description: 'Client metadata invalid' });
    const textPlain = await call('POST', `${kc.url}/realms/kcp/clients-registrations/openid-connect`, { body: JSON.stringify(base), headers: { 'Content-Type': 'text/plain' } });
    expect(textPlain.status).toBe(415);

    // a master admin token is not valid for realm kcp's registration endpoint
    const foreign = await dcr(base, admin);
    expect(foreign.status).toBe(401);
    expect(foreign.body).toEqual({ error: 'invalid_token', error_description: 'Failed decode token' });
    // an initial access token takes the authenticated path: Trusted Hosts does not apply
    const iat = await call('POST', `${kc.url}/admin/realms/kcp/clients-initial-access`, { token: admin, body: { expiration: 0, count: 1 } });
    expect(iat.body).toMatchObject({ count: 1, remainingCount: 1, expiration: 0 });
    const anywhere = await dcr({ redirect_uris: ['https://claude.ai/api/mcp/auth_callback'] }, iat.body.token);
    expect(anywhere.status).toBe(201);
    expect(kc.client('kcp', anywhere.body.client_id)).toMatchObject({ consentRequired: false, fullScopeAllowed: true });
    expect((await dcr(base, iat.body.token)).body).toEqual({ error: 'invalid_token', error_description: 'No remaining count on initial access token' });
  });

  it('403s a token without the admin role, and role mappings fix it', async () => {
    await call('POST', `${kc.url}/admin/realms/kcp/clients`, { token: admin, body: { clientId: 'bootstrapper', serviceAccountsEnabled: true } });
    const c = kc.client('kcp', 'bootstrapper')!;
    const getToken = async () => (await tokenRequest(kc, 'kcp', { grant_type: 'client_credentials', client_id: 'bootstrapper', client_secret: c.secret! })).body.access_token as string;
    const t1 = await getToken();
    const denied = await call('GET', `${kc.url}/admin/realms/kcp/clients`, { token: t1 });
    expect(denied.status).toBe(403);
    expect(denied.body).toEqual({ error: 'HTTP 403 Forbidden' });
    // a realm token cannot administer another realm, whatever its roles
    expect((await call('GET', `${kc.url}/admin/realms/master/clients`, { token: t1 })).status).toBe(403);

    // grant realm-management manage-clients through the admin API, as a bootstrap would
    const sa = await call('GET', `${kc.url}/admin/realms/kcp/clients/${c.id}/service-account-user`, { token: admin });
    expect(sa.body.username).toBe('service-account-bootstrapper');
    const rm = kc.client('kcp', 'realm-management')!;
    const roles = await call('GET', `${kc.url}/admin/realms/kcp/clients/${rm.id}/roles`, { token: admin });
    const manageClients = roles.body.find((r: any) => r.name === 'manage-clients');
    expect((await call('POST', `${kc.url}/admin/realms/kcp/users/${sa.body.id}/role-mappings/clients/${rm.id}`, { token: admin, body: [manageClients] })).status).toBe(204);
    const t2 = await getToken();
    expect((await call('GET', `${kc.url}/admin/realms/kcp/clients`, { token: t2 })).status).toBe(200);
    expect([...(decodeJwt(t2).aud as string[])].sort()).toEqual(['account', 'kcp', 'realm-management']);
    // components need manage-realm / view-realm; manage-clients is not enough
    expect((await call('GET', `${kc.url}/admin/realms/kcp/components?type=${POLICY_TYPE}`, { token: t2 })).status).toBe(403);
    kc.grantServiceAccountRoles('kcp', 'bootstrapper', { 'realm-management': ['manage-realm'] });
    expect((await call('GET', `${kc.url}/admin/realms/kcp/components?type=${POLICY_TYPE}`, { token: t2 })).status).toBe(200);
  });

  it('serves discovery (both RFC 8414 forms) and a JWKS with a sig and an enc key', async () => {
    const oidc = await call('GET', `${kc.url}/realms/kcp/.well-known/openid-configuration`);
    expect(oidc.body).toMatchObject({
      issuer: `${kc.url}/realms/kcp`,
      token_endpoint: `${kc.url}/realms/kcp/protocol/openid-connect/token`,
      jwks_uri: `${kc.url}/realms/kcp/protocol/openid-connect/certs`,
      registration_endpoint: `${kc.url}/realms/kcp/clients-registrations/openid-connect`,
      device_authorization_endpoint: `${kc.url}/realms/kcp/protocol/openid-connect/auth/device`,
      code_challenge_methods_supported: ['plain', 'S256'],
    });
    expect((await call('GET', `${kc.url}/realms/kcp/.well-known/oauth-authorization-server`)).body.issuer).toBe(`${kc.url}/realms/kcp`);
    expect((await call('GET', `${kc.url}/.well-known/oauth-authorization-server/realms/kcp`)).body.issuer).toBe(`${kc.url}/realms/kcp`);
    expect((await call('GET', `${kc.url}/.well-known/openid-configuration/realms/kcp`)).status).toBe(404);
    const certs = await call('GET', `${kc.url}/realms/kcp/protocol/openid-connect/certs`);
    expect(certs.body.keys.map((k: any) => `${k.alg}/${k.use}`).sort()).toEqual(['RS256/sig', 'RSA-OAEP/enc']);
  });

  it('DELETE on a realm default-scope list ignores which list it names', async () => {
    const phone = kc.clientScope('kcp', 'phone')!;
    const del = await call('DELETE', `${kc.url}/admin/realms/kcp/default-default-client-scopes/${phone.id}`, { token: admin });
    expect(del.status).toBe(204);
    const optional = await call('GET', `${kc.url}/admin/realms/kcp/default-optional-client-scopes`, { token: admin });
    expect(optional.body.map((s: any) => s.name)).not.toContain('phone');
    expect((await call('PUT', `${kc.url}/admin/realms/kcp/default-optional-client-scopes/${phone.id}`, { token: admin })).status).toBe(204);
  });

  it('logs requests and counts token calls', () => {
    expect(kc.tokenRequests).toBeGreaterThan(5);
    expect(kc.requests.some((r) => r.method === 'PUT' && r.path.startsWith('/admin/realms/kcp/components/') && r.status === 204)).toBe(true);
    const tokenCall = kc.requests.find((r) => r.path === '/realms/master/protocol/openid-connect/token')!;
    expect(tokenCall.body).toMatchObject({ grant_type: 'password', client_id: 'admin-cli' });
  });
});

/** Registration as an MCP client sends it (anonymous, public, a redirect URI). */
const mcpRegistration = (redirect: string, extra: Record<string, unknown> = {}) => ({
  client_name: 'MCP client',
  redirect_uris: [redirect],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  ...extra,
});

describe('Keycloak simulator: Trusted Hosts compares the registering machine (the socket address) when asked to', () => {
  let kc: KeycloakSim;
  let admin: string;
  beforeAll(async () => {
    kc = await startKeycloak({ realms: ['kcp'] });
    admin = (await adminToken(kc)).access_token;
  });
  afterAll(() => kc.close());

  const HOST_NOT_TRUSTED = "Policy 'Trusted Hosts' rejected request to client-registration service. Details: Host not trusted.";
  const URI_NOT_TRUSTED = "Policy 'Trusted Hosts' rejected request to client-registration service. Details: URI doesn't match any trusted host or trusted domain";
  // `from`: undefined = this test's own socket (127.0.0.1); otherwise decided as if it came from that address.
  const table: Array<{ name: string; hostCheck: string; trusted: string[]; from?: string; redirect: string; status: number; error?: string }> = [
    { name: 'check on, only the MCP host trusted: this machine (loopback) is refused', hostCheck: 'true', trusted: ['mcp.example.com'], redirect: 'https://mcp.example.com/cb', status: 403, error: HOST_NOT_TRUSTED },
    { name: 'check on, the socket address trusted as an IP', hostCheck: 'true', trusted: ['mcp.example.com', '127.0.0.1'], redirect: 'https://mcp.example.com/cb', status: 201 },
    { name: 'check on, loopback counts as the host name localhost', hostCheck: 'true', trusted: ['mcp.example.com', 'localhost'], redirect: 'https://mcp.example.com/cb', status: 201 },
    { name: 'check on, loopback matches a *.localhost-style domain entry', hostCheck: 'true', trusted: ['*.localhost', 'mcp.example.com'], redirect: 'https://mcp.example.com/cb', status: 201 },
    { name: 'check on, another machine (a laptop) is refused although loopback is trusted', hostCheck: 'true', trusted: ['mcp.example.com', 'localhost', '127.0.0.1'], from: '192.0.2.10', redirect: 'https://mcp.example.com/cb', status: 403, error: HOST_NOT_TRUSTED },
    { name: 'check absent from the config: true by default', hostCheck: '', trusted: ['mcp.example.com'], from: '192.0.2.10', redirect: 'https://mcp.example.com/cb', status: 403, error: HOST_NOT_TRUSTED },
    { name: 'check off: another machine may register with a trusted redirect', hostCheck: 'false', trusted: ['mcp.example.com'], from: '192.0.2.10', redirect: 'https://mcp.example.com/cb', status: 201 },
    { name: 'check off: redirect URIs still must be on a trusted host', hostCheck: 'false', trusted: ['mcp.example.com'], from: '192.0.2.10', redirect: 'https://evil.example/cb', status: 403, error: URI_NOT_TRUSTED },
    { name: 'check off: a wildcard entry covers subdomains', hostCheck: 'false', trusted: ['*.example.com'], redirect: 'https://a.b.example.com/cb', status: 201 },
  ];
  it.each(table)('$name', async ({ hostCheck, trusted, from, redirect, status, error }) => {
    const th = kc.trustedHostsPolicy('kcp');
    const config: Record<string, string[]> = { 'trusted-hosts': trusted, 'client-uris-must-match': ['true'], 'host-sending-registration-request-must-match': [hostCheck || 'true'] };
    expect((await call('PUT', `${kc.url}/admin/realms/kcp/components/${th.id}`, { token: admin, body: { ...th, config } })).status).toBe(204);
    if (!hostCheck) delete kc.trustedHostsPolicy('kcp').config['host-sending-registration-request-must-match']; // as stored by an older import
    kc.remoteAddressOverride = from;
    try {
      const r = await call('POST', `${kc.url}/realms/kcp/clients-registrations/openid-connect`, { body: mcpRegistration(redirect) });
      expect(r.status).toBe(status);
      if (error) expect(r.body).toEqual({ error: 'insufficient_scope', error_description: error });
    } finally {
      kc.remoteAddressOverride = undefined;
    }
  });

  it('reading and deleting a registration are checked against the registering machine too', async () => {
    const th = kc.trustedHostsPolicy('kcp');
    const config = { 'trusted-hosts': ['localhost', 'mcp.example.com'], 'client-uris-must-match': ['true'], 'host-sending-registration-request-must-match': ['true'] };
    await call('PUT', `${kc.url}/admin/realms/kcp/components/${th.id}`, { token: admin, body: { ...th, config } });
    const reg = await call('POST', `${kc.url}/realms/kcp/clients-registrations/openid-connect`, { body: mcpRegistration('https://mcp.example.com/cb') });
    expect(reg.status).toBe(201);
    kc.remoteAddressOverride = '192.0.2.10';
    try {
      const del = await call('DELETE', reg.body.registration_client_uri, { token: reg.body.registration_access_token });
      expect(del.status).toBe(403);
      expect(del.body.error_description).toBe(HOST_NOT_TRUSTED);
    } finally {
      kc.remoteAddressOverride = undefined;
    }
    expect((await call('DELETE', reg.body.registration_client_uri, { token: reg.body.registration_access_token })).status).toBe(204);
  });
});

describe.each([
  { release: '26.8' as const, defaults: ['profile', 'email', 'roles', 'web-origins', 'acr', 'basic'] },
  { release: '26.7' as const, defaults: ['basic'] },
])('Keycloak simulator $release: a DCR request naming `scope`', ({ release, defaults }) => {
  let kc: KeycloakSim;
  beforeAll(async () => {
    kc = await startKeycloak({ realms: ['kcp'], release });
    kc.trustedHostsPolicy('kcp').config['trusted-hosts'] = ['localhost'];
  });
  afterAll(() => kc.close());

  it('gets the named scopes as optional ones and the release\'s default scopes', async () => {
    const r = await call('POST', `${kc.url}/realms/kcp/clients-registrations/openid-connect`, { body: mcpRegistration('http://localhost:1/cb', { scope: 'profile email' }) });
    expect(r.status).toBe(201);
    expect(kc.clientScopeNames('kcp', r.body.client_id)).toEqual({ default: defaults, optional: ['profile', 'email'] });
    const plain = await call('POST', `${kc.url}/realms/kcp/clients-registrations/openid-connect`, { body: mcpRegistration('http://localhost:1/cb') });
    expect(kc.clientScopeNames('kcp', plain.body.client_id).default).toEqual(['profile', 'email', 'roles', 'web-origins', 'acr', 'basic']);
  });
});
