/**
 * Drives the Thunder simulator with plain fetch, the way seed 000 (OpenChoreo "MCP Configuration")
 * does with curl, and checks it answers as each release's source does (docs/idp/thunder.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { startThunder, type ThunderRelease, type ThunderSim } from './thunder.js';

const json = { 'Content-Type': 'application/json' };
const basic = (id: string, secret: string) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { ...json, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text };
}
async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers, redirect: 'manual' });
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body, text };
}
async function jwksOf(sim: ThunderSim) {
  const r = await get(`${sim.url}/oauth2/jwks`);
  return createLocalJWKSet(r.body);
}
/** Seed 000 step 2: the admin token in one call. */
async function adminToken(sim: ThunderSim, appId = sim.sampleAppId) {
  const r = await post(`${sim.url}/flow/execute`, {
    applicationId: appId,
    flowType: 'AUTHENTICATION',
    inputs: { username: 'admin', password: 'admin', requested_permissions: 'system' },
  });
  expect(r.status).toBe(200);
  return r.body.assertion as string;
}

// The exact body of seed 000 step 3 (an era-A payload: auth_flow_graph_id, token.issuer).
const seedAppBody = {
  name: 'MCP client',
  description: 'MCP client application to use openchoreo MCP server',
  auth_flow_graph_id: 'auth_flow_config_basic',
  inbound_auth_config: [
    {
      type: 'oauth2',
      config: {
        client_id: 'mcp_client',
        client_secret: 'mcp_client_secret',
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
        token: { issuer: 'thunder', access_token: { validity_period: 3600 } },
      },
    },
  ],
};

describe('Thunder simulator, era B (v0.28.0, OpenChoreo)', () => {
  let sim: ThunderSim;
  beforeAll(async () => {
    sim = await startThunder();
  });
  afterAll(() => sim.close());

  it('walks seed 000 steps 2-4 exactly as the curl commands do', async () => {
    // Step 2: one-call flow with inputs on the initial request
    const step2 = await post(`${sim.url}/flow/execute`, {
      applicationId: sim.sampleAppId,
      flowType: 'AUTHENTICATION',
      inputs: { username: 'admin', password: 'admin', requested_permissions: 'system' },
    });
    expect(step2.status).toBe(200);
    expect(step2.body).toMatchObject({ flowStatus: 'COMPLETE', data: {} });
    expect(step2.body.flowId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const ADMIN_TOKEN = step2.body.assertion as string;
    const { payload: assertion } = await jwtVerify(ADMIN_TOKEN, await jwksOf(sim), { issuer: sim.url, audience: sim.sampleAppId });
    expect(assertion.authorized_permissions).toBe('system');

    // Step 3: create the app (curl -L follows nothing here: 201 straight away)
    const step3 = await post(`${sim.url}/applications`, seedAppBody, { Authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(step3.status).toBe(201);
    expect(step3.body.client_id).toBe('mcp_client');
    // auth_flow_graph_id is an era-A key: silently ignored, the default flow is assigned
    expect(step3.body.auth_flow_id).toBe(sim.flows.defaultAuthFlowId);
    expect(step3.body).not.toHaveProperty('auth_flow_graph_id');
    const cfg = step3.body.inbound_auth_config[0].config;
    expect(cfg.client_secret).toBe('mcp_client_secret'); // returned once, in plaintext
    expect(cfg.grant_types).toEqual(['client_credentials']);
    expect(cfg.response_types).toEqual([]);
    expect(cfg.redirect_uris).toEqual([]);
    expect(cfg.token).toEqual({ access_token: { validity_period: 3600 }, id_token: { validity_period: 3600 } }); // no `issuer`
    expect(step3.body.login_consent).toEqual({ validity_period: 0 });
    expect(sim.apps.get(step3.body.id)!.inboundAuthConfig[0]!.config.hashedClientSecret).not.toContain('mcp_client_secret');

    const fetched = await get(`${sim.url}/applications/${step3.body.id}`, { Authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(fetched.status).toBe(200);
    expect(fetched.body.inbound_auth_config[0].config).not.toHaveProperty('client_secret');

    // Step 4: client_credentials with client_secret_basic (curl -u)
    const before = sim.tokenRequests;
    const res = await fetch(`${sim.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic('mcp_client', 'mcp_client_secret') },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const tok = await res.json();
    expect(tok).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    expect(sim.tokenRequests).toBe(before + 1);
    const { payload, protectedHeader } = await jwtVerify(tok.access_token, await jwksOf(sim), { issuer: sim.url, audience: 'mcp_client' });
    expect(protectedHeader).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: 'mcp_client', client_id: 'mcp_client', grant_type: 'client_credentials' });
    expect(payload.exp! - payload.iat!).toBe(3600);
  });

  it('runs the two-call flow: INCOMPLETE prompt, then COMPLETE; the flowId is single-use', async () => {
    const init = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'AUTHENTICATION' });
    expect(init.status).toBe(200);
    expect(init.body).toEqual({
      flowId: init.body.flowId,
      flowStatus: 'INCOMPLETE',
      type: 'VIEW',
      data: {
        inputs: [
          { ref: 'input_001', identifier: 'username', type: 'TEXT_INPUT', required: true },
          { ref: 'input_002', identifier: 'password', type: 'PASSWORD_INPUT', required: true },
        ],
        actions: [{ ref: 'action_001', nextNode: 'basic_auth' }],
      },
    });
    expect(init.body).not.toHaveProperty('stepId');
    const done = await post(`${sim.url}/flow/execute`, {
      flowId: init.body.flowId,
      action: 'action_001',
      inputs: { username: 'admin', password: 'admin', requested_permissions: 'system' },
    });
    expect(done.body.flowStatus).toBe('COMPLETE');
    expect(decodeJwt(done.body.assertion).authorized_permissions).toBe('system');
    const reuse = await post(`${sim.url}/flow/execute`, { flowId: init.body.flowId, action: 'action_001', inputs: {} });
    expect(reuse.status).toBe(400);
    expect(reuse.body).toEqual({ code: 'FES-1004', message: 'Invalid request', description: 'Invalid flow ID provided in the request' });
  });

  it('reports bad credentials as INCOMPLETE + failureReason, never ERROR', async () => {
    const bad = await post(`${sim.url}/flow/execute`, {
      applicationId: sim.sampleAppId,
      flowType: 'AUTHENTICATION',
      inputs: { username: 'admin', password: 'wrong', requested_permissions: 'system' },
    });
    expect(bad.status).toBe(200);
    expect(bad.body.flowStatus).toBe('INCOMPLETE');
    expect(bad.body.failureReason).toBe('Invalid credentials provided');
    expect(bad.body.data.inputs.map((i: any) => i.identifier)).toEqual(['username', 'password']);
    expect(bad.body.data.actions).toEqual([{ ref: 'action_001', nextNode: 'basic_auth' }]);
    // the context survives; requested_permissions (not a prompt input) is remembered
    const retry = await post(`${sim.url}/flow/execute`, { flowId: bad.body.flowId, inputs: { username: 'admin', password: 'admin' } });
    expect(retry.body.flowStatus).toBe('COMPLETE');
    expect(decodeJwt(retry.body.assertion).authorized_permissions).toBe('system');

    const unknown = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'AUTHENTICATION', inputs: { username: 'nobody', password: 'x' } });
    expect(unknown.body).toMatchObject({ flowStatus: 'INCOMPLETE', failureReason: 'User not found' });
  });

  it('re-prompts on an unknown action and lists only missing inputs once an action is chosen', async () => {
    const init = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'AUTHENTICATION' });
    const unknownAction = await post(`${sim.url}/flow/execute`, { flowId: init.body.flowId, action: 'submit', inputs: { username: 'admin', password: 'admin' } });
    expect(unknownAction.body).toMatchObject({ flowStatus: 'INCOMPLETE', type: 'VIEW', data: { actions: [{ ref: 'action_001', nextNode: 'basic_auth' }] } });
    expect(unknownAction.body.data).not.toHaveProperty('inputs');
    const init2 = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'AUTHENTICATION' });
    const partial = await post(`${sim.url}/flow/execute`, { flowId: init2.body.flowId, action: 'action_001', inputs: { username: 'admin' } });
    expect(partial.body).toMatchObject({ flowStatus: 'INCOMPLETE', data: { inputs: [{ identifier: 'password' }] } });
    expect(partial.body.data).not.toHaveProperty('actions');
  });

  it('returns the FES error bodies', async () => {
    const nonString = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'AUTHENTICATION', inputs: { username: 'admin', remember: true } });
    expect(nonString.status).toBe(400);
    expect(nonString.body).toEqual({ code: 'FES-1001', message: 'Invalid request payload', description: 'Failed to decode request payload' });
    const noApp = await post(`${sim.url}/flow/execute`, { flowType: 'AUTHENTICATION' });
    expect(noApp.body).toEqual({ code: 'FES-1003', message: 'Invalid request', description: 'Invalid app ID provided in the request' });
    const badType = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'LOGIN' });
    expect(badType.body).toEqual({ code: 'FES-1005', message: 'Invalid request', description: 'Invalid flow type provided in the request' });
    const garbage = await post(`${sim.url}/flow/execute`, '{not json');
    expect(garbage.body.code).toBe('FES-1001');
  });

  it('protects /applications: 401 without a token, 403 without `system`', async () => {
    const none = await get(`${sim.url}/applications`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(none.body).toEqual({ error: 'unauthorized', error_description: 'Authentication is required to access this resource' });
    const garbage = await get(`${sim.url}/applications`, { Authorization: 'Bearer not.a.jwt' });
    expect(garbage.status).toBe(401);

    // forgetting requested_permissions: the flow still COMPLETEs, the assertion has no permission
    const noPerm = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'AUTHENTICATION', inputs: { username: 'admin', password: 'admin' } });
    expect(noPerm.body.flowStatus).toBe('COMPLETE');
    expect(decodeJwt(noPerm.body.assertion)).not.toHaveProperty('authorized_permissions');
    const forbidden = await get(`${sim.url}/applications`, { Authorization: `Bearer ${noPerm.body.assertion}` });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toEqual({ error: 'forbidden', error_description: 'You do not have sufficient permissions to access this resource' });

    // v0.28.0 checks the signature only: an expired assertion is still accepted
    const expired = await sim.issueAssertion({ validitySeconds: -3600 });
    expect((await get(`${sim.url}/applications`, { Authorization: `Bearer ${expired}` })).status).toBe(200);
  });

  it('lists applications in the era-B shape', async () => {
    const token = await adminToken(sim);
    const list = await get(`${sim.url}/applications`, { Authorization: `Bearer ${token}` });
    expect(list.status).toBe(200);
    expect(list.body.totalResults).toBe(list.body.count);
    const sample = list.body.applications.find((a: any) => a.name === 'Sample App');
    expect(sample).toMatchObject({ id: sim.sampleAppId, client_id: 'sample_app_client', is_registration_flow_enabled: false });
    expect(sample).not.toHaveProperty('is_read_only'); // omitempty
    expect(sample).not.toHaveProperty('clientId');
  });

  it('rejects duplicates with 400 APP-1020 / APP-1021 (not 409)', async () => {
    const token = await adminToken(sim);
    const auth = { Authorization: `Bearer ${token}` };
    const body = { name: 'dup-app', inbound_auth_config: [{ type: 'oauth2', config: { client_id: 'dup-client', grant_types: ['client_credentials'] } }] };
    expect((await post(`${sim.url}/applications`, body, auth)).status).toBe(201);
    const again = await post(`${sim.url}/applications`, body, auth);
    expect(again.status).toBe(400);
    expect(again.body).toEqual({ code: 'APP-1020', message: 'Application already exists', description: 'An application with the same name already exists' });
    const sameClient = await post(`${sim.url}/applications`, { ...body, name: 'dup-app-2' }, auth);
    expect(sameClient.body).toEqual({ code: 'APP-1021', message: 'Application with client ID already exists', description: 'An application with the same client ID already exists' });
    const noRedirect = await post(`${sim.url}/applications`, { name: 'code-app', inbound_auth_config: [{ type: 'oauth2', config: {} }] }, auth);
    expect(noRedirect.body).toEqual({ code: 'APP-1024', message: 'Invalid OAuth configuration', description: 'authorization_code grant type requires redirect URIs' });
    const badType = await post(`${sim.url}/applications`, { name: 'bad', inbound_auth_config: [{ type: 'oauth2', config: { grant_types: 'client_credentials' } }] }, auth);
    expect(badType.body).toEqual({ code: 'APP-1018', message: 'Invalid request format', description: 'The request body is malformed or contains invalid data' });
  });

  it('silently ignores wrong-era (camelCase) keys: the app is created without OAuth config', async () => {
    const token = await adminToken(sim);
    const r = await post(
      `${sim.url}/applications`,
      { name: 'camel-in-era-b', inboundAuthConfig: [{ type: 'oauth2', config: { clientId: 'camel', grantTypes: ['client_credentials'] } }] },
      { Authorization: `Bearer ${token}` },
    );
    expect(r.status).toBe(201);
    expect(r.body).not.toHaveProperty('client_id');
    expect(r.body).not.toHaveProperty('inbound_auth_config');
    expect(sim.findApp('camel-in-era-b')!.inboundAuthConfig).toEqual([]);
  });

  it('enforces the registered token endpoint auth method (basic vs post)', async () => {
    const token = await adminToken(sim);
    const auth = { Authorization: `Bearer ${token}` };
    const postApp = await post(
      `${sim.url}/applications`,
      { name: 'post-app', inbound_auth_config: [{ type: 'oauth2', config: { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_post' } }] },
      auth,
    );
    const { client_id, client_secret } = postApp.body.inbound_auth_config[0].config;
    expect(client_secret).toBeTruthy(); // generated and shown once
    const form = (b: Record<string, string>) => ({ method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(b).toString() });
    const ok = await fetch(`${sim.url}/oauth2/token`, form({ grant_type: 'client_credentials', client_id, client_secret, scope: 'read write' }));
    expect(ok.status).toBe(200);
    const okBody = await ok.json();
    expect(okBody.scope).toBe('read write');
    expect(decodeJwt(okBody.access_token).scope).toBe('read write');
    const viaBasic = await fetch(`${sim.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(client_id, client_secret) },
      body: 'grant_type=client_credentials',
    });
    expect(viaBasic.status).toBe(400);
    expect(await viaBasic.json()).toEqual({ error: 'unauthorized_client', error_description: 'Client is not allowed to use the specified token endpoint authentication method' });
    const wrong = await fetch(`${sim.url}/oauth2/token`, form({ grant_type: 'client_credentials', client_id, client_secret: 'nope' }));
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: 'invalid_client', error_description: 'Invalid client credentials' });
    const resource = await fetch(`${sim.url}/oauth2/token`, form({ grant_type: 'client_credentials', client_id, client_secret, resource: 'https://mcp.example.com/mcp' }));
    expect(decodeJwt((await resource.json()).access_token).aud).toBe('https://mcp.example.com/mcp');
  });

  it('keeps the secret on PUT when omitted, deletes with 204 (twice), then 404s', async () => {
    const token = await adminToken(sim);
    const auth = { Authorization: `Bearer ${token}` };
    const created = await post(`${sim.url}/applications`, { name: 'put-app', inbound_auth_config: [{ type: 'oauth2', config: { client_id: 'put-client', client_secret: 's3cret', grant_types: ['client_credentials'] } }] }, auth);
    const id = created.body.id;
    const put = await fetch(`${sim.url}/applications/${id}`, {
      method: 'PUT',
      headers: { ...json, ...auth },
      body: JSON.stringify({ name: 'put-app', description: 'changed', inbound_auth_config: [{ type: 'oauth2', config: { client_id: 'put-client', grant_types: ['client_credentials'] } }] }),
    });
    expect(put.status).toBe(200);
    const putBody = await put.json();
    expect(putBody.description).toBe('changed');
    expect(putBody.inbound_auth_config[0].config).not.toHaveProperty('client_secret');
    const tok = await fetch(`${sim.url}/oauth2/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic('put-client', 's3cret') }, body: 'grant_type=client_credentials' });
    expect(tok.status).toBe(200);
    expect((await fetch(`${sim.url}/applications/${id}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    expect((await fetch(`${sim.url}/applications/${id}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    const gone = await get(`${sim.url}/applications/${id}`, auth);
    expect(gone.status).toBe(404);
    expect(gone.body).toEqual({ code: 'APP-1001', message: 'Application not found', description: 'The requested application could not be found' });
  });

  it('reveals the Sample App id through /oauth2/authorize without a token', async () => {
    const r = await get(
      `${sim.url}/oauth2/authorize?response_type=code&client_id=sample_app_client&redirect_uri=${encodeURIComponent('https://localhost:3000')}&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=x`,
    );
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.get('location')!);
    expect(loc.pathname).toBe('/gate/signin');
    expect(loc.searchParams.get('applicationId')).toBe(sim.sampleAppId);
    expect(loc.searchParams.get('authId')).toBeTruthy();
    expect(loc.searchParams.get('flowId')).toBeTruthy();
    expect(loc.searchParams.has('showInsecureWarning')).toBe(false);
    const noPkce = await get(`${sim.url}/oauth2/authorize?response_type=code&client_id=sample_app_client&redirect_uri=${encodeURIComponent('https://localhost:3000')}`);
    expect(new URL(noPkce.headers.get('location')!).searchParams.get('error_description')).toBe('code_challenge is required for this application');
  });

  it('serves discovery documents whose issuer is the simulator URL', async () => {
    const oidc = await get(`${sim.url}/.well-known/openid-configuration`);
    expect(oidc.body).toMatchObject({ issuer: sim.url, token_endpoint: `${sim.url}/oauth2/token`, jwks_uri: `${sim.url}/oauth2/jwks`, registration_endpoint: `${sim.url}/oauth2/dcr/register`, claims_parameter_supported: true });
    const as = await get(`${sim.url}/.well-known/oauth-authorization-server`);
    expect(as.body.issuer).toBe(sim.url);
    expect(as.body).not.toHaveProperty('claims_parameter_supported');
    const jwks = await get(`${sim.url}/oauth2/jwks`);
    expect(jwks.body.keys[0]).toMatchObject({ kty: 'RSA', use: 'sig', alg: 'RS256' });
    expect(decodeProtectedHeader(await adminToken(sim)).kid).toBe(jwks.body.keys[0].kid);
  });

  it('requires `system` for DCR unless dcr.insecure, and keys apps by client_name', async () => {
    const anon = await post(`${sim.url}/oauth2/dcr/register`, { client_name: 'claude', redirect_uris: ['http://localhost:33418/callback'], token_endpoint_auth_method: 'none' });
    expect(anon.status).toBe(401);
    expect(anon.body).toEqual({ error: 'unauthorized_client', error_description: 'Authentication with sufficient permissions is required to register a client' });
    const auth = { Authorization: `Bearer ${await adminToken(sim)}` };
    const ok = await post(`${sim.url}/oauth2/dcr/register`, { client_name: 'claude', redirect_uris: ['http://localhost:33418/callback'], token_endpoint_auth_method: 'none' }, auth);
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ client_secret_expires_at: 0, token_endpoint_auth_method: 'none', client_name: 'claude' });
    expect(ok.body).not.toHaveProperty('registration_access_token');
    const dup = await post(`${sim.url}/oauth2/dcr/register`, { client_name: 'claude', redirect_uris: ['http://localhost:1/cb'], token_endpoint_auth_method: 'none' }, auth);
    expect(dup.body).toEqual({ error: 'invalid_client_metadata', error_description: 'An application with the same name already exists' });
  });
});

describe('Thunder simulator, era D (v0.35+)', () => {
  let sim: ThunderSim;
  beforeAll(async () => {
    sim = await startThunder({ era: 'D' });
  });
  afterAll(() => sim.close());

  async function login() {
    const init = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'AUTHENTICATION' });
    const done = await post(`${sim.url}/flow/execute`, {
      executionId: init.body.executionId,
      challengeToken: init.body.challengeToken,
      action: 'action_001',
      inputs: { username: 'admin', password: 'admin', requested_permissions: 'system' },
    });
    return done.body.assertion as string;
  }

  it('uses executionId + a mandatory, rotating challengeToken', async () => {
    const init = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'AUTHENTICATION' });
    expect(init.body).toMatchObject({ flowStatus: 'INCOMPLETE', type: 'VIEW' });
    expect(init.body).not.toHaveProperty('flowId');
    expect(init.body.executionId).toBeTruthy();
    expect(init.body.challengeToken).toMatch(/^[0-9a-f]{64}$/);
    // an era-B client: flowId is an unknown key, so this is a *new* flow without flowType
    const legacy = await post(`${sim.url}/flow/execute`, { flowId: init.body.executionId, action: 'action_001', inputs: { username: 'admin', password: 'admin' } });
    expect(legacy.status).toBe(400);
    expect(legacy.body.code).toBe('FES-1005');
    const missing = await post(`${sim.url}/flow/execute`, { executionId: init.body.executionId, action: 'action_001', inputs: { username: 'admin', password: 'wrong' } });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({
      code: 'FES-1009',
      message: { key: 'error.flowexecservice.invalid_challenge_token', defaultValue: 'Invalid challenge token' },
      description: { key: 'error.flowexecservice.invalid_challenge_token_description', defaultValue: 'The challenge token is missing or invalid' },
    });
    // the context survived FES-1009; a wrong password rotates the token
    const bad = await post(`${sim.url}/flow/execute`, { executionId: init.body.executionId, challengeToken: init.body.challengeToken, inputs: { username: 'admin', password: 'wrong' } });
    expect(bad.body).toMatchObject({ flowStatus: 'INCOMPLETE', failureReason: 'Invalid credentials provided' });
    expect(bad.body.challengeToken).not.toBe(init.body.challengeToken);
    const stale = await post(`${sim.url}/flow/execute`, { executionId: init.body.executionId, challengeToken: init.body.challengeToken, inputs: { username: 'admin', password: 'admin' } });
    expect(stale.body.code).toBe('FES-1009');
    const ok = await post(`${sim.url}/flow/execute`, { executionId: init.body.executionId, challengeToken: bad.body.challengeToken, inputs: { username: 'admin', password: 'admin', requested_permissions: 'system' } });
    expect(ok.body).toMatchObject({ executionId: init.body.executionId, flowStatus: 'COMPLETE', data: {} });
    expect(ok.body).not.toHaveProperty('challengeToken');
  });

  it('answers with AUTH-4010 / AUTH-4030 and rejects expired tokens', async () => {
    const none = await get(`${sim.url}/applications`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(none.body).toEqual({
      code: 'AUTH-4010',
      message: { key: 'error.auth.unauthorized', defaultValue: 'Unauthorized' },
      description: { key: 'error.auth.unauthorized_description', defaultValue: 'Authentication is required to access this resource' },
    });
    const noPerm = await sim.issueAssertion({ permissions: '' });
    const forbidden = await get(`${sim.url}/applications`, { Authorization: `Bearer ${noPerm}` });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.code).toBe('AUTH-4030');
    const expired = await sim.issueAssertion({ validitySeconds: -3600 });
    expect((await get(`${sim.url}/applications`, { Authorization: `Bearer ${expired}` })).status).toBe(401);
  });

  it('speaks camelCase, needs ouId, and ignores snake_case keys', async () => {
    const auth = { Authorization: `Bearer ${await login()}` };
    const ous = await get(`${sim.url}/organization-units`, auth);
    const ouId = ous.body.organizationUnits.find((o: any) => o.handle === 'default').id;
    expect(ouId).toBe(sim.defaultOuId);

    // the seed's snake_case body, as is: no ouId -> APP-1018
    const pureSnake = await post(`${sim.url}/applications`, seedAppBody, auth);
    expect(pureSnake.status).toBe(400);
    expect(pureSnake.body).toEqual({
      code: 'APP-1018',
      message: { key: 'error.applicationservice.invalid_request_format', defaultValue: 'Invalid request format' },
      description: { key: 'error.applicationservice.invalid_request_format_description', defaultValue: 'The request body is malformed or contains invalid data' },
    });
    // with ouId it "succeeds" - and silently drops the whole OAuth config
    const mixed = await post(`${sim.url}/applications`, { ...seedAppBody, ouId }, auth);
    expect(mixed.status).toBe(201);
    expect(mixed.body).not.toHaveProperty('clientId');
    expect(mixed.body).not.toHaveProperty('inboundAuthConfig');
    expect(sim.findApp('MCP client')!.inboundAuthConfig).toEqual([]);

    const camel = await post(
      `${sim.url}/applications`,
      {
        ouId,
        name: 'MCP client camel',
        inboundAuthConfig: [{ type: 'oauth2', config: { clientId: 'mcp_camel', clientSecret: 'camel_secret', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', token: { accessToken: { validityPeriod: 600 } } } }],
      },
      auth,
    );
    expect(camel.status).toBe(201);
    expect(camel.body).toMatchObject({ clientId: 'mcp_camel', isRegistrationFlowEnabled: false, isRecoveryFlowEnabled: false, authFlowId: sim.flows.defaultAuthFlowId });
    expect(camel.body.inboundAuthConfig[0].config).toMatchObject({ clientSecret: 'camel_secret', grantTypes: ['client_credentials'], pkceRequired: false, publicClient: false });
    expect(camel.body.inboundAuthConfig[0].config).not.toHaveProperty('redirectUris'); // omitempty in D
    const dup = await post(`${sim.url}/applications`, { ouId, name: 'MCP client camel' }, auth);
    expect(dup.body.code).toBe('APP-1020');
    expect(dup.body.description.defaultValue).toBe('An application with the same name already exists');

    const list = await get(`${sim.url}/applications`, auth);
    const entry = list.body.applications.find((a: any) => a.clientId === 'mcp_camel');
    expect(entry).toMatchObject({ isReadOnly: false, isRegistrationFlowEnabled: false });

    const tokRes = await fetch(`${sim.url}/oauth2/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic('mcp_camel', 'camel_secret') }, body: 'grant_type=client_credentials&scope=system' });
    const tok = await tokRes.json();
    expect(tok.expires_in).toBe(600);
    const { payload } = await jwtVerify(tok.access_token, await jwksOf(sim), { issuer: sim.url, audience: 'mcp_camel' });
    expect(payload).not.toHaveProperty('scope'); // D filters scopes by the app's permissions (none)
    const badResource = await fetch(`${sim.url}/oauth2/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic('mcp_camel', 'camel_secret') }, body: 'grant_type=client_credentials&resource=https%3A%2F%2Fnot.registered' });
    expect(badResource.status).toBe(400);
    expect((await badResource.json()).error).toBe('invalid_target');
  });

  it('puts executionId in the /oauth2/authorize redirect', async () => {
    const r = await get(`${sim.url}/oauth2/authorize?response_type=code&client_id=CONSOLE&redirect_uri=${encodeURIComponent(sim.url + '/console')}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256`);
    const loc = new URL(r.headers.get('location')!);
    expect(loc.searchParams.get('applicationId')).toBe(sim.consoleAppId);
    expect(loc.searchParams.get('executionId')).toBeTruthy();
    expect(loc.searchParams.get('showInsecureWarning')).toBe('true');
  });
});

describe('Thunder simulator, multi-step login', () => {
  let sim: ThunderSim;
  beforeAll(async () => {
    sim = await startThunder({ multiStepLogin: true, adminUser: 'admin@openchoreo.dev', adminPassword: 'Admin@123' });
  });
  afterAll(() => sim.close());

  it('asks for the username, then the password', async () => {
    const s1 = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'AUTHENTICATION' });
    expect(s1.body.data).toEqual({ inputs: [{ ref: 'input_001', identifier: 'username', type: 'TEXT_INPUT', required: true }], actions: [{ ref: 'action_001', nextNode: 'identify_user' }] });
    const s2 = await post(`${sim.url}/flow/execute`, { flowId: s1.body.flowId, action: 'action_001', inputs: { username: 'admin@openchoreo.dev', requested_permissions: 'system' } });
    expect(s2.body).toMatchObject({ flowStatus: 'INCOMPLETE', data: { inputs: [{ identifier: 'password' }], actions: [{ ref: 'action_002', nextNode: 'basic_auth' }] } });
    // re-sending the first step's action ref does not advance: the prompt is re-issued
    const stuck = await post(`${sim.url}/flow/execute`, { flowId: s1.body.flowId, action: 'action_001', inputs: { password: 'Admin@123' } });
    expect(stuck.body).toMatchObject({ flowStatus: 'INCOMPLETE', data: { actions: [{ ref: 'action_002' }] } });
    const s3 = await post(`${sim.url}/flow/execute`, { flowId: s1.body.flowId, action: 'action_002', inputs: { password: 'Admin@123' } });
    expect(s3.body.flowStatus).toBe('COMPLETE');
    expect(decodeJwt(s3.body.assertion).authorized_permissions).toBe('system');
  });

  it('still completes in one call when every input is sent up front (actions auto-selected)', async () => {
    const r = await post(`${sim.url}/flow/execute`, { applicationId: sim.sampleAppId, flowType: 'AUTHENTICATION', inputs: { username: 'admin@openchoreo.dev', password: 'Admin@123', requested_permissions: 'system' } });
    expect(r.body.flowStatus).toBe('COMPLETE');
  });
});

// ------------------------------------------------------------------------------------------------
// The releases after 0.39, up to ThunderID 1.0.0 (thunder-id/thunderid at each tag)
// ------------------------------------------------------------------------------------------------

const FS = 'flow-secret-of-the-admin-app';
const embedded = { name: 'Admin CLI', type: 'fullstack', flowSecret: FS };
const m2m = { name: 'M2M', oauth: { clientId: 'm2m_cli', grantTypes: ['client_credentials'] } };

/** Starts a flow; the admin app's flow secret as 0.47 (body) or 0.48+ (header) wants it, when asked to. */
async function startFlow(sim: ThunderSim, applicationId: string, secret?: { body?: string; header?: string }) {
  return post(`${sim.url}/flow/execute`, { applicationId, flowType: 'AUTHENTICATION', ...(secret?.body ? { flowSecret: secret.body } : {}) }, secret?.header ? { 'Flow-Secret': secret.header } : {});
}
/** Finishes a started flow with the admin's credentials. */
async function finish(sim: ThunderSim, step: { body: any }, inputs: Record<string, string> = {}) {
  return post(`${sim.url}/flow/execute`, {
    executionId: step.body.executionId,
    challengeToken: step.body.challengeToken,
    action: 'action_001',
    inputs: { username: 'admin', password: 'admin', requested_permissions: 'system', ...inputs },
  });
}

describe('Thunder simulator, 0.40-0.43: no Sample App, the error object', () => {
  it('0.40 seeds no Sample App; the Console still starts flows', async () => {
    const sim = await startThunder({ release: '0.40' });
    try {
      expect(sim.sampleAppId).toBeUndefined();
      expect(sim.findApp('sample_app_client')).toBeUndefined();
      const init = await startFlow(sim, sim.consoleAppId);
      expect(init.body.flowStatus).toBe('INCOMPLETE');
      const bad = await finish(sim, init, { password: 'wrong' });
      expect(bad.body).toMatchObject({ flowStatus: 'INCOMPLETE', failureReason: 'Invalid credentials provided' });
    } finally {
      await sim.close();
    }
  });

  it('0.43 reports a wrong password as a 200 INCOMPLETE step carrying the error object', async () => {
    const sim = await startThunder({ release: '0.43' });
    try {
      const bad = await finish(sim, await startFlow(sim, sim.consoleAppId), { password: 'wrong' });
      expect(bad.status).toBe(200);
      expect(bad.body).toMatchObject({ flowStatus: 'INCOMPLETE', type: 'VIEW' });
      expect(bad.body).not.toHaveProperty('failureReason');
      expect(bad.body.error).toEqual({
        code: 'FET-1005',
        message: { key: 'flows.executor.errors.invalid_credentials', defaultValue: 'Invalid credentials provided' },
        description: { key: 'flows.executor.errors.invalid_credentials_desc', defaultValue: 'The credentials provided are invalid' },
      });
      const nobody = await finish(sim, await startFlow(sim, sim.consoleAppId), { username: 'nobody' });
      expect(nobody.body.error.code).toBe('FET-1001');
    } finally {
      await sim.close();
    }
  });
});

describe('Thunder simulator, who may start a flow (0.45+)', () => {
  const refusal = (code: string, key: string, message: string, description: string) => ({
    code,
    message: { key: `error.flowexecservice.${key}`, defaultValue: message },
    description: { key: `error.flowexecservice.${key}_description`, defaultValue: description },
  });
  const notPermitted = (code: string) => refusal(code, 'direct_flow_initiation_not_permitted', 'Direct flow initiation not permitted', 'Direct flow initiation is not permitted for this application type');

  it('0.45 refuses redirect apps with FES-1011 (403) and lets a client_credentials-only app in without a secret', async () => {
    const sim = await startThunder({ release: '0.45', apps: [m2m] });
    try {
      const consoleFlow = await startFlow(sim, sim.consoleAppId);
      expect(consoleFlow.status).toBe(403);
      expect(consoleFlow.body).toEqual(notPermitted('FES-1011'));
      const done = await finish(sim, await startFlow(sim, sim.findApp('M2M')!.id));
      expect(decodeJwt(done.body.assertion).authorized_permissions).toBe('system');
      // the challenge token moved to an interceptor: a wrong one fails the step (200, ERROR, ICS-1002)
      const init = await startFlow(sim, sim.findApp('M2M')!.id);
      const stale = await post(`${sim.url}/flow/execute`, { executionId: init.body.executionId, challengeToken: 'f'.repeat(64), inputs: { username: 'admin', password: 'admin' } });
      expect(stale.status).toBe(200);
      expect(stale.body).toMatchObject({ flowStatus: 'ERROR', error: { code: 'ICS-1002', message: { key: 'error.interceptor.challenge_token_invalid' } } });
    } finally {
      await sim.close();
    }
  });

  it('0.47 renumbers: FES-1010 (403) not permitted, FES-1011 / FES-1012 (401) a missing / wrong flow secret, read from the body', async () => {
    const sim = await startThunder({ release: '0.47', apps: [embedded, m2m] });
    try {
      expect((await startFlow(sim, sim.consoleAppId)).body).toEqual(notPermitted('FES-1010'));
      expect((await startFlow(sim, sim.findApp('M2M')!.id)).status).toBe(403); // client_credentials-only apps no longer run flows
      const id = sim.findApp('Admin CLI')!.id;
      const missing = await startFlow(sim, id);
      expect(missing.status).toBe(401);
      expect(missing.body).toEqual(refusal('FES-1011', 'flow_secret_required', 'Authentication required', 'Backend applications must provide a valid flow secret to initiate a new flow'));
      const wrong = await startFlow(sim, id, { body: 'nope' });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toEqual(refusal('FES-1012', 'flow_secret_invalid', 'Authentication failed', 'The provided flow secret is invalid'));
      expect((await startFlow(sim, id, { header: FS })).body.code).toBe('FES-1011'); // 0.47 does not read the header
      const done = await finish(sim, await startFlow(sim, id, { body: FS }));
      expect(done.body.flowStatus).toBe('COMPLETE');
    } finally {
      await sim.close();
    }
  });

  it('0.48 reads the flow secret from the Flow-Secret header only', async () => {
    const sim = await startThunder({ release: '0.48', apps: [embedded] });
    try {
      const id = sim.findApp('Admin CLI')!.id;
      expect((await startFlow(sim, id, { body: FS })).body.code).toBe('FES-1011');
      expect((await finish(sim, await startFlow(sim, id, { header: FS }))).body.flowStatus).toBe('COMPLETE');
    } finally {
      await sim.close();
    }
  });

  it('0.47 issues a flow secret once to an application created without OAuth settings', async () => {
    const sim = await startThunder({ release: '0.47', apps: [embedded] });
    try {
      const auth = { Authorization: `Bearer ${(await finish(sim, await startFlow(sim, sim.findApp('Admin CLI')!.id, { body: FS }))).body.assertion}` };
      const made = await post(`${sim.url}/applications`, { ouId: sim.defaultOuId, name: 'Backend' }, auth);
      expect(made.status).toBe(201);
      expect(made.body.flowSecret).toMatch(/^[\w-]{40,}$/);
      expect((await get(`${sim.url}/applications/${made.body.id}`, auth)).body).not.toHaveProperty('flowSecret');
      expect((await finish(sim, await startFlow(sim, made.body.id, { body: made.body.flowSecret }))).body.flowStatus).toBe('COMPLETE');
    } finally {
      await sim.close();
    }
  });
});

describe('Thunder simulator, the access-token lifetime split (0.48+)', () => {
  it.each(['0.47', '0.48'] as ThunderRelease[])('%s: which key the client_credentials token lifetime is read from', async (release) => {
    const sim = await startThunder({ release });
    try {
      const auth = { Authorization: `Bearer ${await sim.issueAssertion()}` };
      const app = (clientId: string, accessToken: object) => ({
        ouId: sim.defaultOuId,
        name: clientId,
        inboundAuthConfig: [{ type: 'oauth2', config: { clientId, clientSecret: `${clientId}-secret`, grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', token: { accessToken } } }],
      });
      const flat = await post(`${sim.url}/applications`, app('flat', { validityPeriod: 600 }), auth);
      const split = await post(`${sim.url}/applications`, app('split', { clientConfig: { validityPeriod: 600 } }), auth);
      const expiresIn = async (id: string) =>
        (await (await fetch(`${sim.url}/oauth2/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(id, `${id}-secret`) }, body: 'grant_type=client_credentials' })).json()).expires_in;
      if (release === '0.48') {
        // the flat key is dropped without a word; userConfig is defaulted, clientConfig only when given
        expect((await get(`${sim.url}/applications/${flat.body.id}`, auth)).body.inboundAuthConfig[0].config.token.accessToken).toEqual({ userConfig: { validityPeriod: 3600 } });
        expect((await get(`${sim.url}/applications/${split.body.id}`, auth)).body.inboundAuthConfig[0].config.token.accessToken).toEqual({ userConfig: { validityPeriod: 3600 }, clientConfig: { validityPeriod: 600 } });
        expect(await expiresIn('flat')).toBe(3600);
        expect(await expiresIn('split')).toBe(600);
      } else {
        expect((await get(`${sim.url}/applications/${flat.body.id}`, auth)).body.inboundAuthConfig[0].config.token.accessToken).toEqual({ validityPeriod: 600 });
        expect(await expiresIn('flat')).toBe(600);
        expect(await expiresIn('split')).toBe(3600);
      }
    } finally {
      await sim.close();
    }
  });
});

describe('Thunder simulator, ThunderID 1.0.0-alpha2 and 1.0.0', () => {
  it('1.0.0-alpha2 requires an application type (APP-1042), knows no `mcp` (APP-1040), never changes it (APP-1041)', async () => {
    const sim = await startThunder({ release: '1.0.0-alpha2' });
    try {
      const auth = { Authorization: `Bearer ${await sim.issueAssertion()}` };
      const base = { ouId: sim.defaultOuId, name: 'typed', inboundAuthConfig: [{ type: 'oauth2', config: { clientId: 'typed', grantTypes: ['client_credentials'] } }] };
      const none = await post(`${sim.url}/applications`, base, auth);
      expect(none.status).toBe(400);
      expect(none.body).toMatchObject({ code: 'APP-1042', message: { key: 'error.applicationservice.application_type_required' } });
      const mcp = await post(`${sim.url}/applications`, { ...base, type: 'mcp' }, auth);
      expect(mcp.body).toMatchObject({ code: 'APP-1040', message: { key: 'error.applicationservice.invalid_application_type' } });
      const ok = await post(`${sim.url}/applications`, { ...base, type: 'm2m' }, auth);
      expect(ok.status).toBe(201);
      expect(ok.body.type).toBe('m2m');
      const change = await fetch(`${sim.url}/applications/${ok.body.id}`, { method: 'PUT', headers: { ...json, ...auth }, body: JSON.stringify({ ...base, type: 'custom' }) });
      expect((await change.json()).code).toBe('APP-1041');
      const list = await get(`${sim.url}/applications`, auth);
      expect(list.body.applications.find((a: any) => a.name === 'Console').type).toBe('browser');
    } finally {
      await sim.close();
    }
  });

  it('1.0.0-alpha2 grants `system` only for the System resource server named by resource_server_identifier', async () => {
    const sim = await startThunder({ release: '1.0.0-alpha2', apps: [embedded] });
    try {
      const id = sim.findApp('Admin CLI')!.id;
      const unscoped = await finish(sim, await startFlow(sim, id, { header: FS }));
      expect(decodeJwt(unscoped.body.assertion)).not.toHaveProperty('authorized_permissions');
      const wrong = await finish(sim, await startFlow(sim, id, { header: FS }), { resource_server_identifier: `${sim.url}/mcp` });
      expect(decodeJwt(wrong.body.assertion)).not.toHaveProperty('authorized_permissions');
      const scoped = await finish(sim, await startFlow(sim, id, { header: FS }), { resource_server_identifier: 'https://localhost:8090/mcp' });
      expect(decodeJwt(scoped.body.assertion).authorized_permissions).toBe('system');
    } finally {
      await sim.close();
    }
  });

  it('1.0.0: the Console names the System resource server in its public config.js (0.45 did not)', async () => {
    const newest = await startThunder({ release: '1.0.0', systemResourceServer: 'https://id.example.test/mcp' });
    const older = await startThunder({ release: '0.45' });
    try {
      const cfg = await get(`${newest.url}/console/config.js`);
      expect(cfg.status).toBe(200);
      expect(cfg.headers.get('content-type')).toMatch(/javascript/);
      expect(cfg.text).toContain("resource_identifier: 'https://id.example.test/mcp'");
      expect((await get(`${older.url}/console/config.js`)).text).not.toContain('resource_identifier');
    } finally {
      await newest.close();
      await older.close();
    }
  });

  it('1.0.0 reads a flowId in the body as an administration flow: FES-1017 (401) without a system token, FES-1018 (403) with one', async () => {
    const sim = await startThunder({ release: '1.0.0', apps: [embedded] });
    try {
      const init = await startFlow(sim, sim.findApp('Admin CLI')!.id, { header: FS });
      // a 0.28-style continuation
      const legacy = await post(`${sim.url}/flow/execute`, { flowId: init.body.executionId, action: 'action_001', inputs: { username: 'admin', password: 'admin' } });
      expect(legacy.status).toBe(401);
      expect(legacy.body).toEqual({
        code: 'FES-1017',
        message: { key: 'error.flowexecservice.administration_authentication_required', defaultValue: 'Authentication required' },
        description: { key: 'error.flowexecservice.administration_authentication_required_description', defaultValue: 'Administrative flows require an authenticated caller' },
      });
      const withToken = await post(`${sim.url}/flow/execute`, { flowId: init.body.executionId }, { Authorization: `Bearer ${await sim.issueAssertion()}` });
      expect(withToken.status).toBe(403);
      expect(withToken.body.code).toBe('FES-1018');
    } finally {
      await sim.close();
    }
  });

  it('1.0.0 lists forgot-password and sign-up beside the credentials action, accepts the `mcp` type, and types DCR clients `custom`', async () => {
    const sim = await startThunder({ release: '1.0.0', apps: [embedded], dcrInsecure: true });
    try {
      const init = await startFlow(sim, sim.findApp('Admin CLI')!.id, { header: FS });
      expect(init.body.data.actions.map((a: any) => a.ref)).toEqual(['action_001', 'action_forgot_password', 'action_signup']);
      const auth = { Authorization: `Bearer ${(await finish(sim, init, { resource_server_identifier: 'https://localhost:8090/mcp' })).body.assertion}` };
      const mcp = await post(`${sim.url}/applications`, { ouId: sim.defaultOuId, name: 'mcp app', type: 'mcp', inboundAuthConfig: [{ type: 'oauth2', config: { clientId: 'mcp_app', grantTypes: ['authorization_code'], redirectUris: ['http://127.0.0.1:1/callback'], tokenEndpointAuthMethod: 'none', publicClient: true, pkceRequired: true } }] }, auth);
      expect(mcp.status).toBe(201);
      expect(mcp.body.type).toBe('mcp');
      const dcr = await post(`${sim.url}/oauth2/dcr/register`, { client_name: 'dcr app', redirect_uris: ['http://127.0.0.1:2/cb'], token_endpoint_auth_method: 'none' });
      expect(dcr.status).toBe(201);
      expect(sim.findApp('dcr app')!.type).toBe('custom');
    } finally {
      await sim.close();
    }
  });
});
