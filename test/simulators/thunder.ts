/**
 * Test simulator of the Thunder / ThunderID admin and OAuth APIs, modelled on the upstream source
 * (github.com/thunder-id/thunderid, formerly asgardeo/thunder; facts in docs/idp/thunder.md).
 *
 * Releases served (option `release`; every behaviour below names the release it starts in):
 *   - '1.0.0'        = thunder-id/thunderid@v1.0.0, the newest release;
 *   - '1.0.0-alpha2' = @v1.0.0-alpha2: application `type` required (APP-1042), Console typed `browser`,
 *                      permissions granted only for the resource server named by `resource_server_identifier`;
 *   - '0.48'         = @v0.48.0: flow secret in the `Flow-Secret` header, access-token lifetime split into
 *                      token.accessToken.userConfig / clientConfig (the old key is dropped);
 *   - '0.47'         = @v0.47.0: flow secret as the body field `flowSecret`; FES-1010 (403) / FES-1011, FES-1012 (401);
 *   - '0.45'         = @v0.45.0: authorization_code apps may not start flows (FES-1011, 403);
 *   - '0.43'         = @v0.43.0: `error` object instead of `failureReason`;
 *   - '0.40'         = @v0.40.0: no Sample App any more;
 *   - '0.35'         = @v0.35.0–v0.39.0 (option era 'D'): camelCase, executionId + challengeToken, ouId;
 *   - '0.28'         = @v0.28.0 (option era 'B', the default): what OpenChoreo pins
 *                      (openchoreo/openchoreo install/quick-start/.config.sh THUNDER_VERSION="0.28.0"), and what
 *                      the default `bootstrap thunder --url` reaches: snake_case, flowId, plain-string errors.
 * Source files, under backend/ of each tag: internal/flow/flowexec/{handler,service,model,error_constants}.go,
 * internal/flow/executor/{basic_auth,credentials_auth,authz,auth_assert}_executor.go,
 * internal/flow/interceptor/{challenge_token_interceptor,error_constants}.go,
 * internal/application/{service,error_constants}.go and model/, internal/inboundclient/service.go,
 * internal/system/security/{middleware,jwt_authenticator,permissions}.go,
 * internal/oauth/oauth2/granthandlers/client_credentials.go, cmd/server/bootstrap/ (seed data), and
 * frontend/apps/console/public/config.js; tests/e2e/utils/authentication/admin-api-auth.ts shows
 * upstream's own way to an admin token from 0.45 on.
 *
 * Implemented:
 *   - POST /flow/execute: the default basic flow (1.0.0: the credentials prompt beside the forgot-password
 *     and sign-up actions), an optional username-then-password flow, INCOMPLETE / COMPLETE / ERROR,
 *     bad credentials as an INCOMPLETE step (failureReason, or the FET error object from 0.43), action
 *     auto-select, FES errors, the flow-initiation guard and flow secrets (0.45+), `flowId` as an
 *     administration-flow id (1.0.0, FES-1017). The COMPLETE assertion is a real RS256 JWT.
 *   - security middleware: public paths, Bearer JWT verified against the server key, permission
 *     `system` for everything else; 0.28 plain 401/403 bodies, later AUTH-4010/4030.
 *   - GET/POST /applications, GET/PUT/DELETE /applications/{id} with the release's JSON naming and
 *     fields, Go encoding/json decoding (unknown keys ignored, case-insensitive keys, type errors -> 400),
 *     server-side defaults and validation (APP-10xx), secrets returned once in plaintext.
 *   - GET /organization-units (+ /{id}, /tree/default) from 0.35; GET /console/config.js.
 *   - GET /oauth2/authorize -> 302 to {gate}/gate/signin?applicationId&authId&flowId|executionId.
 *   - POST /oauth2/token grant_type=client_credentials with the registered auth method, RS256 access tokens.
 *   - GET /oauth2/jwks, the two discovery documents, POST /oauth2/dcr/register.
 *   - seed data: user admin/admin (permission `system`), "Console" (CONSOLE), and up to 0.39 "Sample App"
 *     (sample_app_client) and "React SDK Sample"; option `apps` adds applications (e.g. an admin app with
 *     a flow secret, as upstream's e2e config does).
 * Not implemented (answered as Thunder answers an unknown grant / an unrouted path):
 *   - authorization_code, refresh_token and token-exchange grants, /oauth2/auth/callback, the gate UI,
 *     /oauth2/introspect, /oauth2/userinfo, registration / recovery / onboarding flows, administration
 *     flows, SSO sessions, attestation, users/roles/groups APIs, certificates (echoed, not validated),
 *     consent, flow `verbose` meta.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, compactVerify, type JWK } from 'jose';
import { parseBody, rsaKey, serve } from './common.js';

// ------------------------------------------------------------------------------------------------
// Public types
// ------------------------------------------------------------------------------------------------

export type ThunderEra = 'B' | 'D';

/** The releases modelled, oldest first (see the header for what each one changes). */
export const THUNDER_RELEASES = ['0.28', '0.35', '0.40', '0.43', '0.45', '0.47', '0.48', '1.0.0-alpha2', '1.0.0'] as const;
export type ThunderRelease = (typeof THUNDER_RELEASES)[number];

/** The shipped System resource server identifier (bootstrap/01-default-resources.yaml, 1.0.0-alpha2+). */
export const SYSTEM_RESOURCE_SERVER = 'https://localhost:8090/mcp';

/** An application seeded at start (as a declarative resource would be). */
export interface SeedApp {
  name: string;
  /** 1.0.0-alpha2+: browser, fullstack, mobile, m2m, mcp (1.0.0), custom. */
  type?: string;
  /** 0.47+: the flow secret it authenticates flow initiation with. */
  flowSecret?: string;
  /** An OAuth profile; none = an embedded app (flows only). */
  oauth?: { clientId?: string; clientSecret?: string; grantTypes?: string[]; redirectUris?: string[]; tokenEndpointAuthMethod?: string; publicClient?: boolean; pkceRequired?: boolean };
}

export interface ThunderOptions {
  /** The release to behave as (default '0.28', what OpenChoreo runs). */
  release?: ThunderRelease;
  /** Older spelling: 'B' = '0.28', 'D' = '0.35'. `release` wins. */
  era?: ThunderEra;
  adminUser?: string;
  adminPassword?: string;
  /** Default auth flow asks for the username first, then the password (two INCOMPLETE steps). */
  multiStepLogin?: boolean;
  /** Extra users; `permissions` are what AuthorizationExecutor may grant (default none). */
  users?: Array<{ username: string; password: string; permissions?: string[] }>;
  /** oauth.dcr.insecure (default false, conf/default.json). */
  dcrInsecure?: boolean;
  /** 0.35+: identifiers of registered resource servers accepted as `resource`. */
  resourceServers?: string[];
  /** The System resource server's identifier (deployments may change it; default SYSTEM_RESOURCE_SERVER). */
  systemResourceServer?: string;
  /** What /console/config.js says `resource_identifier` is (default: the System resource server); false: no Console served. */
  consoleResourceIdentifier?: string | false;
  /** Applications to seed besides the release's own. */
  apps?: SeedApp[];
}

export interface ThunderUser {
  id: string;
  username: string;
  password: string;
  permissions: string[];
}

/** OAuth part of an application as the store keeps it (model.OAuthAppConfigProcessedDTO). */
export interface StoredOAuthConfig {
  appId: string;
  clientId: string;
  /** SHA-256 thumbprint of the secret; the plaintext is never stored. */
  hashedClientSecret: string;
  redirectUris: string[];
  grantTypes: string[];
  responseTypes: string[];
  tokenEndpointAuthMethod: string;
  pkceRequired: boolean;
  publicClient: boolean;
  requirePushedAuthorizationRequests: boolean;
  token: {
    /** The user-subject access token (0.48+: token.accessToken.userConfig). */
    accessToken: { validityPeriod: number; userAttributes: string[] };
    idToken: { validityPeriod: number; userAttributes: string[] };
    /** 0.48+: token.accessToken.clientConfig, the client_credentials token; no default. */
    clientAccessToken?: { validityPeriod: number; userAttributes: string[] };
  };
  scopes: string[];
  userInfo: { responseType: string; userAttributes: string[] };
  scopeClaims: Record<string, string[]>;
  certificate?: { type: string; value: string };
  acrValues?: string[];
}

/** An application as the store keeps it (model.ApplicationProcessedDTO), era-neutral field names. */
export interface StoredApplication {
  id: string;
  ouId: string;
  name: string;
  description: string;
  authFlowId: string;
  registrationFlowId: string;
  isRegistrationFlowEnabled: boolean;
  recoveryFlowId: string;
  isRecoveryFlowEnabled: boolean;
  themeId: string;
  layoutId: string;
  template: string;
  url: string;
  logoUrl: string;
  tosUri: string;
  policyUri: string;
  contacts: string[] | undefined;
  assertion: { validityPeriod: number; userAttributes: string[] };
  certificate?: { type: string; value: string };
  allowedUserTypes: string[] | undefined;
  loginConsent: { validityPeriod: number };
  metadata: Record<string, unknown> | undefined;
  isReadOnly: boolean;
  inboundAuthConfig: Array<{ type: 'oauth2'; config: StoredOAuthConfig }>;
  /** 1.0.0-alpha2+: the application type (immutable). */
  type?: string;
  /** 0.47+: SHA-256 of the flow secret, when the app holds one. */
  flowSecretHash?: string;
}

export interface LoggedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  /** Parsed JSON, parsed form (object of strings), raw string, or undefined. */
  body: unknown;
  status?: number;
}

export interface FlowContext {
  id: string;
  appId: string;
  graphId: string;
  flowType: string;
  currentNodeId?: string;
  currentAction: string;
  userInputs: Record<string, string>;
  runtimeData: Record<string, string>;
  user?: ThunderUser;
  authenticatedAt?: number;
  /** Era D: SHA-256 hex of the last challengeToken handed out. */
  challengeTokenHash?: string;
  /** A failure routed back to the prompt (the executor's error). */
  pendingFailure?: ApiErr;
  expiresAt: number;
  /** Set when the flow was started by /oauth2/authorize. */
  authId?: string;
}

export interface ThunderSim {
  /** http://127.0.0.1:PORT - also the JWT `iss` and every discovery URL base. */
  url: string;
  release: ThunderRelease;
  /** 'B' for 0.28 (snake_case, flowId), 'D' for every later release. */
  era: ThunderEra;
  /** The System resource server's identifier. */
  systemResourceServer: string;
  close(): Promise<void>;
  /** Stored applications keyed by id. */
  apps: Map<string, StoredApplication>;
  requests: LoggedRequest[];
  counters: { tokenRequests: number; flowExecuteRequests: number; applicationRequests: number; authorizeRequests: number; dcrRequests: number };
  readonly tokenRequests: number;
  users: ThunderUser[];
  /** Live /flow/execute contexts keyed by flowId / executionId. */
  flowContexts: Map<string, FlowContext>;
  flows: { defaultAuthFlowId: string; defaultRegistrationFlowId: string; consoleAuthFlowId: string };
  /** Up to 0.39 only (0.40 stopped seeding it); undefined after. */
  sampleAppId: string | undefined;
  consoleAppId: string;
  /** Era D: id of the "default" organization unit (required `ouId` of every app). */
  defaultOuId: string;
  jwks(): { keys: JWK[] };
  findApp(nameOrClientId: string): StoredApplication | undefined;
  /** Mint an assertion exactly as AuthAssertExecutor would (shortcut for tests). */
  issueAssertion(opts?: { username?: string; permissions?: string; appId?: string; validitySeconds?: number }): Promise<string>;
}

// ------------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------------

/** UUIDv7 - Thunder's ids (system/utils GenerateUUIDv7). */
function uuidv7(): string {
  const b = randomBytes(16);
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');

/** Go's json.Encoder escapes <, >, & and appends a newline (system/utils/http_util.go WriteSuccessResponse). */
function goJson(v: unknown): string {
  return (
    JSON.stringify(v)
      .replace(/</g, '\\u003c')
      .replace(/>/g, '\\u003e')
      .replace(/&/g, '\\u0026')
      .replace(/\u2028/g, '\\u2028')
      .replace(/\u2029/g, '\\u2029') + '\n'
  );
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (status === 204 || body === undefined) {
    res.statusCode = status;
    res.end();
    return;
  }
  if (typeof body === 'string') {
    res.statusCode = status;
    res.end(body);
    return;
  }
  res.setHeader('Content-Type', 'application/json');
  res.statusCode = status;
  res.end(goJson(body));
}

/** Drop keys whose value is "empty" for Go's `omitempty` ("" / false / 0 / nil / empty slice or map). */
function omitEmpty<T extends Record<string, unknown>>(o: T, keep: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (keep.includes(k)) {
      out[k] = v;
      continue;
    }
    if (v === undefined || v === null || v === '' || v === false || v === 0) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0) continue;
    out[k] = v;
  }
  return out;
}

const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

// ------------------------------------------------------------------------------------------------
// Go encoding/json decoding: unknown keys ignored, keys matched case-insensitively (but
// underscore-sensitively), type mismatches are errors.
// Source: system/utils/http_util.go DecodeJSONBody (json.NewDecoder(...).Decode, no
// DisallowUnknownFields) at every tag, v0.28.0 to v1.0.0 (docs/idp/thunder.md, "Casing").
// ------------------------------------------------------------------------------------------------

type GoType = 'string' | 'bool' | 'int' | 'strings' | 'any-map' | 'map-strings' | { obj: GoSchema } | { arr: GoSchema };
interface GoField {
  name: string; // era-neutral camelCase name
  type: GoType;
  /** present from this release on */
  since?: ThunderRelease;
  /** present before this release only */
  until?: ThunderRelease;
}
type GoSchema = GoField[];
/** Which struct definitions apply: the release, and its naming era (snake_case 'B' or camelCase 'D'). */
interface Rel {
  era: ThunderEra;
  release: ThunderRelease;
}
const atLeast = (release: ThunderRelease, r: ThunderRelease) => THUNDER_RELEASES.indexOf(release) >= THUNDER_RELEASES.indexOf(r);
const present = (f: GoField, rel: Rel) => (!f.since || atLeast(rel.release, f.since)) && (!f.until || !atLeast(rel.release, f.until));

class GoDecodeError extends Error {}

function goDecode(schema: GoSchema, value: unknown, rel: Rel, path = '', camelAlways = false): Record<string, unknown> {
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new GoDecodeError(`cannot unmarshal into struct at ${path || 'root'}`);
  const out: Record<string, unknown> = {};
  const fields = schema.filter((f) => present(f, rel));
  for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
    // exact match first, then case-insensitive (encoding/json: "preferring an exact match")
    const jsonName = (f: GoField) => (rel.era === 'B' && !camelAlways ? snake(f.name) : f.name);
    const field = fields.find((f) => jsonName(f) === key) ?? fields.find((f) => jsonName(f).toLowerCase() === key.toLowerCase());
    if (!field) continue; // unknown field: silently ignored
    out[field.name] = goDecodeValue(field.type, raw, rel, `${path}.${key}`);
  }
  return out;
}

function goDecodeValue(t: GoType, raw: unknown, rel: Rel, path: string): unknown {
  if (raw === null) return undefined; // null leaves the Go zero value
  const fail = () => {
    throw new GoDecodeError(`json: cannot unmarshal ${Array.isArray(raw) ? 'array' : typeof raw} into ${path}`);
  };
  switch (t) {
    case 'string':
      if (typeof raw !== 'string') fail();
      return raw;
    case 'bool':
      if (typeof raw !== 'boolean') fail();
      return raw;
    case 'int':
      if (typeof raw !== 'number' || !Number.isInteger(raw)) fail();
      return raw;
    case 'strings':
      if (!Array.isArray(raw) || raw.some((x) => x !== null && typeof x !== 'string')) fail();
      return (raw as Array<string | null>).map((x) => x ?? '');
    case 'any-map':
      if (typeof raw !== 'object' || Array.isArray(raw)) fail();
      return raw;
    case 'map-strings': {
      if (typeof raw !== 'object' || Array.isArray(raw)) fail();
      const o: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(raw as object)) o[k] = goDecodeValue('strings', v, rel, `${path}.${k}`) as string[];
      return o;
    }
    default:
      if ('obj' in t) return goDecode(t.obj, raw, rel, path);
      if (!Array.isArray(raw)) fail();
      return (raw as unknown[]).map((x, i) => goDecode(t.arr, x, rel, `${path}[${i}]`));
  }
}

// model.OAuthAppConfigComplete (0.28, application/model/oauth_app.go) / inboundmodel.OAuthConfigWithSecret (0.35+,
// inboundclient/model/oauth.go) / providers.OAuthConfigWithSecret (0.47+, pkg/thunderidengine/providers/model.go)
const tokenPartSchema: GoSchema = [
  { name: 'validityPeriod', type: 'int' },
  { name: 'userAttributes', type: 'strings' },
];
// 0.48+ providers.AccessTokenSubConfig: `attributes`, not `userAttributes`
const accessSubSchema: GoSchema = [
  { name: 'validityPeriod', type: 'int' },
  { name: 'attributes', type: 'strings' },
];
const oauthConfigSchema: GoSchema = [
  { name: 'clientId', type: 'string' },
  { name: 'clientSecret', type: 'string' },
  { name: 'redirectUris', type: 'strings' },
  { name: 'grantTypes', type: 'strings' },
  { name: 'responseTypes', type: 'strings' },
  { name: 'tokenEndpointAuthMethod', type: 'string' },
  { name: 'pkceRequired', type: 'bool' },
  { name: 'publicClient', type: 'bool' },
  { name: 'requirePushedAuthorizationRequests', type: 'bool', since: '0.35' },
  {
    name: 'token',
    type: {
      obj: [
        { name: 'accessToken', type: { obj: tokenPartSchema }, until: '0.48' },
        // 0.48 split the access token by subject; the flat keys above are unknown (dropped) from then on
        { name: 'accessToken', type: { obj: [{ name: 'userConfig', type: { obj: accessSubSchema } }, { name: 'clientConfig', type: { obj: accessSubSchema } }] }, since: '0.48' },
        { name: 'idToken', type: { obj: tokenPartSchema } },
      ],
    },
  },
  { name: 'scopes', type: 'strings' },
  {
    name: 'userInfo',
    type: {
      obj: [
        { name: 'responseType', type: 'string' },
        { name: 'userAttributes', type: 'strings' },
      ],
    },
  },
  { name: 'scopeClaims', type: 'map-strings' },
  { name: 'certificate', type: { obj: [{ name: 'type', type: 'string' }, { name: 'value', type: 'string' }] } },
  { name: 'acrValues', type: 'strings', since: '0.35' },
];
// model.ApplicationRequest (B, application/model/application.go) / model.ApplicationRequest (D, same path)
const applicationRequestSchema: GoSchema = [
  { name: 'ouId', type: 'string', since: '0.35' },
  { name: 'type', type: 'string', since: '1.0.0-alpha2' },
  { name: 'flowSecret', type: 'string', since: '0.47' },
  { name: 'name', type: 'string' },
  { name: 'description', type: 'string' },
  { name: 'authFlowId', type: 'string' },
  { name: 'registrationFlowId', type: 'string' },
  { name: 'isRegistrationFlowEnabled', type: 'bool' },
  { name: 'recoveryFlowId', type: 'string', since: '0.35' },
  { name: 'isRecoveryFlowEnabled', type: 'bool', since: '0.35' },
  { name: 'themeId', type: 'string' },
  { name: 'layoutId', type: 'string' },
  { name: 'template', type: 'string' },
  { name: 'url', type: 'string' },
  { name: 'logoUrl', type: 'string' },
  { name: 'assertion', type: { obj: tokenPartSchema } },
  { name: 'certificate', type: { obj: [{ name: 'type', type: 'string' }, { name: 'value', type: 'string' }] } },
  { name: 'tosUri', type: 'string' },
  { name: 'policyUri', type: 'string' },
  { name: 'contacts', type: 'strings' },
  { name: 'inboundAuthConfig', type: { arr: [{ name: 'type', type: 'string' }, { name: 'config', type: { obj: oauthConfigSchema } }] } },
  { name: 'allowedUserTypes', type: 'strings' },
  { name: 'loginConsent', type: { obj: [{ name: 'validityPeriod', type: 'int' }] } },
  { name: 'metadata', type: 'any-map' },
];
// flowexec.FlowRequest (flow/flowexec/model.go): 0.28 flowId; 0.35 executionId + challengeToken; 0.47 only
// flowSecret; 1.0.0 flowId again, now the id of an administration flow. camelCase JSON in every release;
// `inputs` (map[string]string) is decoded separately.
const flowRequestSchema: GoSchema = [
  { name: 'applicationId', type: 'string' },
  { name: 'flowType', type: 'string' },
  { name: 'verbose', type: 'bool' },
  { name: 'flowId', type: 'string', until: '0.35' },
  { name: 'flowId', type: 'string', since: '1.0.0' },
  { name: 'executionId', type: 'string', since: '0.35' },
  { name: 'challengeToken', type: 'string', since: '0.35' },
  { name: 'flowSecret', type: 'string', since: '0.47', until: '0.48' },
  { name: 'action', type: 'string' },
];

// ------------------------------------------------------------------------------------------------
// Error catalogue. 0.28: {code, message, description} plain strings (system/error/apierror);
// 0.35+: message/description are {key, defaultValue}.
// ------------------------------------------------------------------------------------------------

interface ApiErr {
  code: string;
  message: string;
  description: string;
  key: string; // i18n key stem (D); description key = key + '_description' unless descKey
  descKey?: string;
}
// asgardeo/thunder@v0.28.0:backend/internal/application/error_constants.go and
// asgardeo/thunder@v0.39.0:backend/internal/application/error_constants.go (keys)
const APP = {
  notFound: { code: 'APP-1001', message: 'Application not found', description: 'The requested application could not be found', key: 'error.applicationservice.application_not_found' },
  invalidName: { code: 'APP-1004', message: 'Invalid application name', description: 'The provided application name is invalid or empty', key: 'error.applicationservice.invalid_application_name' },
  invalidUrl: { code: 'APP-1005', message: 'Invalid application URL', description: 'The provided application URL is not a valid URI', key: 'error.applicationservice.invalid_application_url' },
  invalidLogoUrl: { code: 'APP-1006', message: 'Invalid logo URL', description: 'The provided logo URL is not a valid URI', key: 'error.applicationservice.invalid_logo_url' },
  invalidAuthFlow: { code: 'APP-1007', message: 'Invalid auth flow ID', description: 'The provided authentication flow ID is invalid', key: 'error.applicationservice.invalid_auth_flow_id' },
  invalidRegFlow: { code: 'APP-1008', message: 'Invalid registration flow ID', description: 'The provided registration flow ID is invalid', key: 'error.applicationservice.invalid_registration_flow_id' },
  invalidInbound: { code: 'APP-1009', message: 'Invalid inbound auth config', description: 'The provided inbound authentication configuration is invalid', key: 'error.applicationservice.invalid_inbound_auth_config' },
  invalidGrant: { code: 'APP-1010', message: 'Invalid grant type', description: 'One or more provided grant types are invalid', key: 'error.applicationservice.invalid_grant_type' },
  invalidResponseType: { code: 'APP-1011', message: 'Invalid response type', description: 'One or more provided response types are invalid', key: 'error.applicationservice.invalid_response_type' },
  invalidRedirect: { code: 'APP-1012', message: 'Invalid redirect URI', description: 'One or more provided redirect URIs are not valid URIs', key: 'error.applicationservice.invalid_redirect_uri' },
  invalidAuthMethod: { code: 'APP-1013', message: 'Invalid token endpoint authentication method', description: 'The provided token endpoint authentication method is invalid', key: 'error.applicationservice.invalid_token_endpoint_auth_method' },
  invalidFormat: { code: 'APP-1018', message: 'Invalid request format', description: 'The request body is malformed or contains invalid data', key: 'error.applicationservice.invalid_request_format' },
  nameExists: { code: 'APP-1020', message: 'Application already exists', description: 'An application with the same name already exists', key: 'error.applicationservice.application_already_exists' },
  clientIdExists: { code: 'APP-1021', message: 'Application with client ID already exists', description: 'An application with the same client ID already exists', key: 'error.applicationservice.application_with_client_id_already_exists' },
  publicClient: { code: 'APP-1023', message: 'Invalid public client configuration', description: 'The public client configuration is invalid', key: 'error.applicationservice.invalid_public_client_configuration' },
  oauthConfig: { code: 'APP-1024', message: 'Invalid OAuth configuration', description: 'The OAuth configuration is invalid', key: 'error.applicationservice.invalid_oauth_configuration' },
  // thunder-id/thunderid@v1.0.0-alpha2:backend/internal/application/error_constants.go
  invalidType: { code: 'APP-1040', message: 'Invalid application type', description: 'The provided application type is not supported. It must be one of: browser, fullstack, mobile, m2m, custom.', key: 'error.applicationservice.invalid_application_type' },
  typeImmutable: { code: 'APP-1041', message: 'Application type cannot be changed', description: 'The application type is set at creation and cannot be modified.', key: 'error.applicationservice.application_type_immutable' },
  typeRequired: { code: 'APP-1042', message: 'Application type is required', description: 'An application type must be provided. It must be one of: browser, fullstack, mobile, m2m, custom.', key: 'error.applicationservice.application_type_required' },
} satisfies Record<string, ApiErr>;

// asgardeo/thunder@v0.28.0:backend/internal/flow/flowexec/error_constants.go, @v0.39.0 same path
const FES = {
  decode: { code: 'FES-1001', message: 'Invalid request payload', description: 'Failed to decode request payload', key: 'error.flowexecservice.invalid_request_payload' },
  appId: { code: 'FES-1003', message: 'Invalid request', description: 'Invalid app ID provided in the request', key: 'error.flowexecservice.invalid_app_id' },
  flowIdB: { code: 'FES-1004', message: 'Invalid request', description: 'Invalid flow ID provided in the request', key: 'error.flowexecservice.invalid_flow_id' },
  executionIdD: { code: 'FES-1004', message: 'Invalid request', description: 'Invalid flow execution ID provided in the request', key: 'error.flowexecservice.invalid_execution_id' },
  flowType: { code: 'FES-1005', message: 'Invalid request', description: 'Invalid flow type provided in the request', key: 'error.flowexecservice.invalid_flow_type' },
  regDisabled: { code: 'FES-1006', message: 'Registration not allowed', description: 'Registration flow is disabled for the application', key: 'error.flowexecservice.registration_not_allowed' },
  challenge: { code: 'FES-1009', message: 'Invalid challenge token', description: 'The challenge token is missing or invalid', key: 'error.flowexecservice.invalid_challenge_token' },
  // v0.45.0–v0.46.0: the flow-initiation guard, 403
  notPermitted045: { code: 'FES-1011', message: 'Direct flow initiation not permitted', description: 'Direct flow initiation is not permitted for this application type', key: 'error.flowexecservice.direct_flow_initiation_not_permitted' },
  // v0.47.0+: renumbered; FES-1011 now means a missing flow secret (401)
  notPermitted: { code: 'FES-1010', message: 'Direct flow initiation not permitted', description: 'Direct flow initiation is not permitted for this application type', key: 'error.flowexecservice.direct_flow_initiation_not_permitted' },
  secretRequired: { code: 'FES-1011', message: 'Authentication required', description: 'Backend applications must provide a valid flow secret to initiate a new flow', key: 'error.flowexecservice.flow_secret_required' },
  secretInvalid: { code: 'FES-1012', message: 'Authentication failed', description: 'The provided flow secret is invalid', key: 'error.flowexecservice.flow_secret_invalid' },
  // v1.0.0: `flowId` names an administration flow
  adminAuth: { code: 'FES-1017', message: 'Authentication required', description: 'Administrative flows require an authenticated caller', key: 'error.flowexecservice.administration_authentication_required' },
  flowIdNotPermitted: { code: 'FES-1018', message: 'Flow execution not permitted', description: 'The selected flow cannot be executed directly by its ID', key: 'error.flowexecservice.flow_id_execution_not_permitted' },
} satisfies Record<string, ApiErr>;

// v0.45.0+ internal/flow/interceptor/error_constants.go: the challenge token moved to an interceptor,
// whose failure is a 200 ERROR step (flowexec/engine.go processInterceptorResponse)
const ICS_CHALLENGE: ApiErr = { code: 'ICS-1002', message: 'Invalid challenge token', description: 'The challenge token is missing or invalid', key: 'error.interceptor.challenge_token_invalid' };

// flow/executor/error_constants.go (v0.43.0+ reports these as the step's `error`; before, only the
// message text travelled, as failureReason)
const FET = {
  userNotFound: { code: 'FET-1001', message: 'User not found', description: 'The user could not be found in the system', key: 'flows.executor.errors.user_not_found', descKey: 'flows.executor.errors.user_not_found_desc' },
  notAuthenticated: { code: 'FET-1004', message: 'User is not authenticated', description: 'The user has not been authenticated in this flow', key: 'flows.executor.errors.user_not_authenticated', descKey: 'flows.executor.errors.user_not_authenticated_desc' },
  invalidCredentials: { code: 'FET-1005', message: 'Invalid credentials provided', description: 'The credentials provided are invalid', key: 'flows.executor.errors.invalid_credentials', descKey: 'flows.executor.errors.invalid_credentials_desc' },
} satisfies Record<string, ApiErr>;

function renderErr(era: ThunderEra, e: ApiErr, customDescription?: { text: string; key: string }) {
  const desc = customDescription?.text ?? e.description;
  if (era === 'B') return { code: e.code, message: e.message, description: desc };
  return {
    code: e.code,
    message: { key: e.key, defaultValue: e.message },
    description: { key: customDescription?.key ?? e.descKey ?? `${e.key}_description`, defaultValue: desc },
  };
}

class AppError extends Error {
  constructor(
    public status: number,
    public err: ApiErr,
    public custom?: { text: string; key: string },
  ) {
    super(err.code);
  }
}
/** serviceerror.CustomServiceError: same code/message, replaced description (application/service.go). */
const custom = (err: ApiErr, text: string, keySuffix: string) => new AppError(400, err, { text, key: `error.applicationservice.${keySuffix}_description` });

// ------------------------------------------------------------------------------------------------
// Flow graphs (bootstrap flows, backend/cmd/server/bootstrap/flows/authentication/auth_flow_basic.json)
// ------------------------------------------------------------------------------------------------

interface FlowInput {
  ref: string;
  identifier: string;
  type: string;
  required: boolean;
}
interface GraphNode {
  id: string;
  type: 'START' | 'PROMPT' | 'TASK_EXECUTION' | 'END';
  prompts?: Array<{ inputs: FlowInput[]; action: { ref: string; nextNode: string } }>;
  executor?: 'BasicAuthExecutor' | 'IdentifyingExecutor' | 'AuthorizationExecutor' | 'AuthAssertExecutor' | 'NotSimulated';
  onSuccess?: string;
  onIncomplete?: string;
}
interface FlowGraph {
  id: string;
  handle: string;
  flowType: 'AUTHENTICATION' | 'REGISTRATION';
  nodes: Record<string, GraphNode>;
}

const USERNAME_INPUT: FlowInput = { ref: 'input_001', identifier: 'username', type: 'TEXT_INPUT', required: true };
const PASSWORD_INPUT: FlowInput = { ref: 'input_002', identifier: 'password', type: 'PASSWORD_INPUT', required: true };

/**
 * default-basic-flow / console-app-flow: start -> prompt_credentials -> basic_auth -> authorization_check ->
 * auth_assert -> end. With `links` (1.0.0's default-flow, bootstrap/01-default-resources.yaml), the credentials
 * prompt also offers forgot-password and sign-up actions (CALL nodes into other flows, not simulated), so a
 * client has to name the action it takes.
 */
function basicGraph(id: string, handle: string, links = false): FlowGraph {
  return {
    id,
    handle,
    flowType: 'AUTHENTICATION',
    nodes: {
      start: { id: 'start', type: 'START', onSuccess: 'prompt_credentials' },
      prompt_credentials: {
        id: 'prompt_credentials',
        type: 'PROMPT',
        prompts: [
          { inputs: [USERNAME_INPUT, PASSWORD_INPUT], action: { ref: 'action_001', nextNode: 'basic_auth' } },
          ...(links
            ? [
                { inputs: [], action: { ref: 'action_forgot_password', nextNode: 'call_recovery' } },
                { inputs: [], action: { ref: 'action_signup', nextNode: 'call_registration' } },
              ]
            : []),
        ],
      },
      call_recovery: { id: 'call_recovery', type: 'TASK_EXECUTION', executor: 'NotSimulated' },
      call_registration: { id: 'call_registration', type: 'TASK_EXECUTION', executor: 'NotSimulated' },
      basic_auth: { id: 'basic_auth', type: 'TASK_EXECUTION', executor: 'BasicAuthExecutor', onSuccess: 'authorization_check', onIncomplete: 'prompt_credentials' },
      authorization_check: { id: 'authorization_check', type: 'TASK_EXECUTION', executor: 'AuthorizationExecutor', onSuccess: 'auth_assert' },
      auth_assert: { id: 'auth_assert', type: 'TASK_EXECUTION', executor: 'AuthAssertExecutor', onSuccess: 'end' },
      end: { id: 'end', type: 'END' },
    },
  };
}

/**
 * Identifier-first variant (option multiStepLogin). Not a v0.28.0 bootstrap flow; it is the same
 * engine with two prompts and IdentifyingExecutor (flow/executor/identifying_executor.go), which is
 * what a customised OpenChoreo/Thunder login looks like. Node/ref names are this simulator's.
 */
function identifierFirstGraph(id: string, handle: string): FlowGraph {
  return {
    id,
    handle,
    flowType: 'AUTHENTICATION',
    nodes: {
      start: { id: 'start', type: 'START', onSuccess: 'prompt_username' },
      prompt_username: { id: 'prompt_username', type: 'PROMPT', prompts: [{ inputs: [USERNAME_INPUT], action: { ref: 'action_001', nextNode: 'identify_user' } }] },
      identify_user: { id: 'identify_user', type: 'TASK_EXECUTION', executor: 'IdentifyingExecutor', onSuccess: 'prompt_password', onIncomplete: 'prompt_username' },
      prompt_password: { id: 'prompt_password', type: 'PROMPT', prompts: [{ inputs: [PASSWORD_INPUT], action: { ref: 'action_002', nextNode: 'basic_auth' } }] },
      basic_auth: { id: 'basic_auth', type: 'TASK_EXECUTION', executor: 'BasicAuthExecutor', onSuccess: 'authorization_check', onIncomplete: 'prompt_password' },
      authorization_check: { id: 'authorization_check', type: 'TASK_EXECUTION', executor: 'AuthorizationExecutor', onSuccess: 'auth_assert' },
      auth_assert: { id: 'auth_assert', type: 'TASK_EXECUTION', executor: 'AuthAssertExecutor', onSuccess: 'end' },
      end: { id: 'end', type: 'END' },
    },
  };
}

interface FlowStep {
  status: 'COMPLETE' | 'INCOMPLETE' | 'ERROR';
  type?: 'VIEW';
  data: { inputs?: FlowInput[]; actions?: Array<{ ref: string; nextNode: string }> };
  assertion?: string;
  /** Rendered as `failureReason` (text) before 0.43, as the `error` object from 0.43 on. */
  failure?: ApiErr;
}
const INVALID_ACTION: ApiErr = { code: 'FES-1002', message: 'Invalid action', description: 'Invalid action selected', key: 'error.flowexecservice.invalid_action' };
const NOT_SIMULATED: ApiErr = { code: 'SSE-5000', message: 'Not simulated', description: 'This step is not simulated', key: 'error.internal' };

// ------------------------------------------------------------------------------------------------
// The simulator
// ------------------------------------------------------------------------------------------------

// oauth2/constants/constants.go (v0.28.0): supportedGrantTypes, supportedResponseTypes (only "code"),
// supportedTokenEndpointAuthMethods
const GRANT_TYPES = ['authorization_code', 'client_credentials', 'refresh_token', 'urn:ietf:params:oauth:grant-type:token-exchange'];
const RESPONSE_TYPES = ['code'];
const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'];
const FLOW_TYPES = ['AUTHENTICATION', 'REGISTRATION', 'USER_ONBOARDING'];
// system/security/permissions.go publicPaths (v0.28.0)
const PUBLIC_PATHS = [
  /^\/health(\/.*)?$/,
  /^\/auth(\/.*)?$/,
  /^\/register\/passkey(\/.*)?$/,
  /^\/flow\/execute(\/.*)?$/,
  /^\/flow\/meta$/,
  /^\/oauth2(\/.*)?$/,
  /^\/\.well-known\/openid-configuration(\/.*)?$/,
  /^\/\.well-known\/oauth-authorization-server(\/.*)?$/,
  /^\/\.well-known\/oauth-protected-resource$/,
  /^\/gate(\/.*)?$/,
  /^\/console(\/.*)?$/,
  /^\/error(\/.*)?$/,
  /^\/mcp(\/.*)?$/,
];
const JWT_VALIDITY = 3600; // conf/default.json jwt.validity_period
const AUTH_FLOW_EXPIRY = 1800; // flow/flowexec/service.go defaultAuthFlowExpiry

export async function startThunder(opts: ThunderOptions = {}): Promise<ThunderSim> {
  const release: ThunderRelease = opts.release ?? (opts.era === 'D' ? '0.35' : '0.28');
  const era: ThunderEra = release === '0.28' ? 'B' : 'D';
  const rel: Rel = { era, release };
  const since = (r: ThunderRelease) => atLeast(release, r);
  const systemResourceServer = opts.systemResourceServer ?? SYSTEM_RESOURCE_SERVER;
  // oauth/jwks/service.go getRSAPublicKeyJWKS: kid (thumbprint), kty, use "sig", alg "RS256", n, e
  const { privateKey, publicKey, kid, jwk } = await rsaKey();

  const apps = new Map<string, StoredApplication>();
  const requests: LoggedRequest[] = [];
  const counters = { tokenRequests: 0, flowExecuteRequests: 0, applicationRequests: 0, authorizeRequests: 0, dcrRequests: 0 };
  const flowContexts = new Map<string, FlowContext>();
  const authRequests = new Map<string, { appId: string; clientId: string; redirectUri: string; flowId: string }>();

  // bootstrap/01-default-resources.sh (.yaml from 0.47): admin/admin with a role carrying permission `system`
  const users: ThunderUser[] = [
    { id: uuidv7(), username: opts.adminUser ?? 'admin', password: opts.adminPassword ?? 'admin', permissions: ['system'] },
    ...(opts.users ?? []).map((u) => ({ id: uuidv7(), username: u.username, password: u.password, permissions: u.permissions ?? [] })),
  ];

  const graphs = new Map<string, FlowGraph>();
  const defaultAuthFlowId = uuidv7();
  const consoleAuthFlowId = uuidv7();
  const defaultRegistrationFlowId = uuidv7();
  graphs.set(defaultAuthFlowId, opts.multiStepLogin ? identifierFirstGraph(defaultAuthFlowId, 'default-basic-flow') : basicGraph(defaultAuthFlowId, since('1.0.0') ? 'default-flow' : 'default-basic-flow', since('1.0.0')));
  graphs.set(consoleAuthFlowId, basicGraph(consoleAuthFlowId, 'console-app-flow'));
  // registration graphs exist (apps get registration_flow_id inferred) but are not executable here
  graphs.set(defaultRegistrationFlowId, { id: defaultRegistrationFlowId, handle: 'default-basic-flow', flowType: 'REGISTRATION', nodes: {} });

  const defaultOuId = uuidv7();
  const ouCreatedAt = new Date().toISOString();

  let url = '';
  const issuer = () => url; // config.go GetServerURL: jwt.issuer unset -> public_url -> scheme://host:port

  // --------------------------------------------------------------------------------------------
  // JWT helpers (system/jose/jwt/service.go GenerateJWT: sub, iss, aud, exp, iat, nbf, jti + claims)
  // --------------------------------------------------------------------------------------------
  async function signJwt(sub: string, aud: string | string[], validity: number, claims: Record<string, unknown>, typ: 'JWT' | 'at+jwt') {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ ...claims, sub, iss: issuer(), aud, exp: now + validity, iat: now, nbf: now, jti: uuidv7() })
      .setProtectedHeader({ alg: 'RS256', typ, kid })
      .sign(privateKey);
  }

  /** Returns the payload when the signature is ours; era D also checks exp/nbf (VerifyJWT), era B does not. */
  async function verifyOwnJwt(token: string): Promise<Record<string, unknown> | undefined> {
    if (token.split('.').length !== 3) return undefined;
    try {
      const { payload } = await compactVerify(token, publicKey);
      const claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
      if (era === 'D') {
        // system/jose/jwt/service.go (v0.39.0) VerifyJWT -> verifyJWTClaims (exp/nbf with leeway 30s)
        const now = Math.floor(Date.now() / 1000);
        if (typeof claims.exp === 'number' && now > claims.exp + 30) return undefined;
        if (typeof claims.nbf === 'number' && now + 30 < claims.nbf) return undefined;
      }
      // v0.28.0 system/security/jwt_authenticator.go calls VerifyJWTSignature only: no exp check.
      return claims;
    } catch {
      return undefined;
    }
  }

  async function issueAssertion(user: ThunderUser, appId: string, authorizedPermissions: string, validity?: number) {
    // flow/executor/auth_assert_executor.go generateAuthAssertion: sub = user id, aud = app id,
    // authorized_permissions only when non-empty, assurance from the authenticators used.
    const app = apps.get(appId);
    const claims: Record<string, unknown> = {
      assurance: { aal: 'AAL1', ial: 'IAL1', authenticators: [{ authenticator: 'CredentialsAuthenticator', step: 1, timestamp: Math.floor(Date.now() / 1000) }] },
    };
    if (authorizedPermissions) claims.authorized_permissions = authorizedPermissions;
    return signJwt(user.id, appId, validity ?? (app?.assertion.validityPeriod || JWT_VALIDITY), claims, 'JWT');
  }

  // --------------------------------------------------------------------------------------------
  // Security middleware (system/security/{service.go,middleware.go,jwt_authenticator.go,permissions.go})
  // --------------------------------------------------------------------------------------------
  function isPublic(path: string) {
    return PUBLIC_PATHS.some((re) => re.test(path));
  }
  function extractPermissions(claims: Record<string, unknown>): string[] {
    // jwt_authenticator.go extractScopes: `scope` string, `scopes` array, `authorized_permissions` string
    if (typeof claims.scope === 'string' && claims.scope) return claims.scope.split(/\s+/).filter(Boolean);
    if (Array.isArray(claims.scopes)) return claims.scopes.filter((s): s is string => typeof s === 'string');
    if (typeof claims.authorized_permissions === 'string' && claims.authorized_permissions) return claims.authorized_permissions.split(/\s+/).filter(Boolean);
    return [];
  }
  const hasPermission = (perms: string[], required: string) => perms.some((p) => p === required || required.startsWith(p + ':'));

  function securityError(res: ServerResponse, kind: 'unauthorized' | 'forbidden') {
    if (era === 'B') {
      // v0.28.0 system/security/middleware.go writeSecurityError -> utils.WriteJSONError
      if (kind === 'unauthorized') {
        return send(res, 401, { error: 'unauthorized', error_description: 'Authentication is required to access this resource' }, { 'WWW-Authenticate': 'Bearer' });
      }
      return send(res, 403, { error: 'forbidden', error_description: 'You do not have sufficient permissions to access this resource' });
    }
    // v0.39.0 system/security/middleware.go + system/error/apierror/error.go ErrUnauthorized/ErrForbidden;
    // WWW-Authenticate is set on both.
    const headers = { 'WWW-Authenticate': 'Bearer' };
    if (kind === 'unauthorized') {
      return send(res, 401, {
        code: 'AUTH-4010',
        message: { key: 'error.auth.unauthorized', defaultValue: 'Unauthorized' },
        description: { key: 'error.auth.unauthorized_description', defaultValue: 'Authentication is required to access this resource' },
      }, headers);
    }
    return send(res, 403, {
      code: 'AUTH-4030',
      message: { key: 'error.auth.forbidden', defaultValue: 'Forbidden' },
      description: { key: 'error.auth.forbidden_description', defaultValue: 'You do not have sufficient permissions to access this resource' },
    }, headers);
  }

  /** The permissions of a valid bearer token that holds `system`, else undefined (nothing written). */
  async function bearerPermissions(req: IncomingMessage): Promise<string[] | undefined> {
    const auth = req.headers.authorization ?? '';
    const claims = /^bearer /i.test(auth) ? await verifyOwnJwt(auth.slice(7).trim()) : undefined;
    const perms = claims ? extractPermissions(claims) : [];
    return hasPermission(perms, 'system') ? perms : undefined;
  }

  /** Returns the caller's permissions, or writes the 401/403 and returns undefined. */
  async function requireSystem(req: IncomingMessage, res: ServerResponse): Promise<string[] | undefined> {
    const auth = req.headers.authorization ?? '';
    // jwtAuthenticator.CanHandle: HasPrefixFold(header, "Bearer"); no handler -> errNoHandlerFound -> 401
    if (!/^bearer/i.test(auth)) {
      securityError(res, 'unauthorized');
      return undefined;
    }
    const token = auth.slice(6).trim();
    const claims = token ? await verifyOwnJwt(token) : undefined;
    if (!claims) {
      securityError(res, 'unauthorized');
      return undefined;
    }
    const perms = extractPermissions(claims);
    // permissions.go: no apiPermissionEntries entry for /applications -> SystemPermission
    if (!hasPermission(perms, 'system')) {
      securityError(res, 'forbidden');
      return undefined;
    }
    return perms;
  }

  // --------------------------------------------------------------------------------------------
  // Application service (application/service.go v0.28.0; inboundclient/service.go v0.39.0)
  // --------------------------------------------------------------------------------------------
  interface DecodedOAuth {
    clientId?: string;
    clientSecret?: string;
    redirectUris?: string[];
    grantTypes?: string[];
    responseTypes?: string[];
    tokenEndpointAuthMethod?: string;
    pkceRequired?: boolean;
    publicClient?: boolean;
    requirePushedAuthorizationRequests?: boolean;
    token?: {
      // before 0.48 {validityPeriod, userAttributes}; from 0.48 {userConfig, clientConfig}
      accessToken?: { validityPeriod?: number; userAttributes?: string[]; userConfig?: { validityPeriod?: number; attributes?: string[] }; clientConfig?: { validityPeriod?: number; attributes?: string[] } };
      idToken?: { validityPeriod?: number; userAttributes?: string[] };
    };
    scopes?: string[];
    userInfo?: { responseType?: string; userAttributes?: string[] };
    scopeClaims?: Record<string, string[]>;
    certificate?: { type?: string; value?: string };
    acrValues?: string[];
  }
  interface DecodedApp {
    ouId?: string;
    type?: string;
    flowSecret?: string;
    name?: string;
    description?: string;
    authFlowId?: string;
    registrationFlowId?: string;
    isRegistrationFlowEnabled?: boolean;
    recoveryFlowId?: string;
    isRecoveryFlowEnabled?: boolean;
    themeId?: string;
    layoutId?: string;
    template?: string;
    url?: string;
    logoUrl?: string;
    assertion?: { validityPeriod?: number; userAttributes?: string[] };
    certificate?: { type?: string; value?: string };
    tosUri?: string;
    policyUri?: string;
    contacts?: string[];
    inboundAuthConfig?: Array<{ type?: string; config?: DecodedOAuth }>;
    allowedUserTypes?: string[];
    loginConsent?: { validityPeriod?: number };
    metadata?: Record<string, unknown>;
  }

  const isValidUri = (s: string) => {
    try {
      const u = new URL(s);
      return !!u.protocol;
    } catch {
      return false;
    }
  };
  const genClientId = () => randomBytes(18).toString('base64url'); // oauth2/utils GenerateOAuth2ClientID
  const genClientSecret = () => randomBytes(32).toString('base64url'); // GenerateOAuth2ClientSecret

  /** validateOAuthParamsForCreateAndUpdate (B) / validateOAuthProfile (D). Mutates `o` with defaults. */
  function validateOAuth(o: DecodedOAuth) {
    o.grantTypes = o.grantTypes?.length ? o.grantTypes : ['authorization_code'];
    if (!o.responseTypes?.length) o.responseTypes = o.grantTypes.includes('authorization_code') ? ['code'] : [];
    o.tokenEndpointAuthMethod ||= 'client_secret_basic';
    // redirect URIs: parse, scheme and host, no fragment
    for (const r of o.redirectUris ?? []) {
      let u: URL;
      try {
        u = new URL(r);
      } catch {
        throw new AppError(400, APP.invalidRedirect);
      }
      if (!u.protocol || !u.host) throw new AppError(400, APP.invalidRedirect);
      if (u.hash) throw custom(APP.invalidRedirect, 'Redirect URIs must not contain a fragment component', 'redirect_uri_fragment_not_allowed');
    }
    if (o.grantTypes.includes('authorization_code') && !(o.redirectUris?.length)) {
      throw custom(APP.oauthConfig, 'authorization_code grant type requires redirect URIs', 'auth_code_requires_redirect_uris');
    }
    if (o.grantTypes.some((g) => !GRANT_TYPES.includes(g))) throw new AppError(400, APP.invalidGrant);
    if (o.responseTypes.some((r) => !RESPONSE_TYPES.includes(r))) throw new AppError(400, APP.invalidResponseType);
    if (o.grantTypes.length === 1 && o.grantTypes[0] === 'client_credentials' && o.responseTypes.length > 0) {
      throw custom(APP.oauthConfig, 'client_credentials grant type cannot be used with response types', 'client_credentials_cannot_use_response_types');
    }
    if (o.grantTypes.includes('authorization_code') && !o.responseTypes.includes('code')) {
      throw custom(APP.oauthConfig, "authorization_code grant type requires 'code' response type", 'auth_code_requires_code_response_type');
    }
    if (era === 'D') {
      // v0.39.0 inboundclient/service.go validateGrantAndResponseTypes extra rules
      if (o.grantTypes.length === 1 && o.grantTypes[0] === 'refresh_token') {
        throw custom(APP.oauthConfig, 'refresh_token grant type cannot be used without another grant type', 'refresh_token_cannot_be_sole_grant');
      }
      if (o.pkceRequired && !o.grantTypes.includes('authorization_code')) {
        throw custom(APP.oauthConfig, 'PKCE can only be enabled when the authorization_code grant type is selected', 'pkce_requires_authorization_code');
      }
    }
    const method = o.tokenEndpointAuthMethod;
    if (!AUTH_METHODS.includes(method)) throw new AppError(400, APP.invalidAuthMethod);
    const hasCert = !!o.certificate && !!o.certificate.type && o.certificate.type !== 'NONE';
    if (method === 'private_key_jwt') {
      if (!hasCert) throw custom(APP.oauthConfig, 'private_key_jwt authentication method requires a certificate', 'private_key_jwt_requires_certificate');
      if (o.clientSecret) throw custom(APP.oauthConfig, 'private_key_jwt authentication method cannot have a client secret', 'private_key_jwt_cannot_have_client_secret');
    } else if (method === 'client_secret_basic' || method === 'client_secret_post') {
      if (hasCert) throw custom(APP.oauthConfig, 'client_secret authentication methods cannot have a certificate', 'client_secret_cannot_have_certificate');
    } else if (method === 'none') {
      if (era === 'D' && !o.publicClient) {
        throw custom(APP.oauthConfig, "'none' authentication method requires the client to be a public client", 'none_auth_method_requires_public_client');
      }
      if (hasCert || o.clientSecret) throw custom(APP.oauthConfig, "'none' authentication method cannot have a certificate or client secret", 'none_auth_method_cannot_have_cert_or_secret');
      if (o.grantTypes.includes('client_credentials')) throw custom(APP.oauthConfig, "client_credentials grant type cannot use 'none' authentication method", 'client_credentials_cannot_use_none_auth');
    }
    if (o.publicClient) {
      if (method !== 'none') throw custom(APP.publicClient, "Public clients must use 'none' as token endpoint authentication method", 'public_client_must_use_none_auth');
      if (!o.pkceRequired) throw custom(APP.publicClient, 'Public clients must have PKCE required set to true', 'public_client_must_have_pkce');
    }
  }

  function findByName(name: string) {
    return [...apps.values()].find((a) => a.name === name);
  }
  function findByClientId(clientId: string) {
    return [...apps.values()].find((a) => a.inboundAuthConfig[0]?.config.clientId === clientId);
  }

  /**
   * CreateApplication / UpdateApplication. Returns the stored app and the plaintext secret to echo
   * (only when given or generated in this request - resolveClientSecret / getProcessedClientSecretForUpdate).
   */
  function upsertApplication(input: DecodedApp, existing?: StoredApplication): { app: StoredApplication; plainSecret?: string; flowSecret?: string } {
    const name = input.name ?? '';
    if (!name) throw new AppError(400, APP.invalidName);
    const other = findByName(name);
    if (other && other.id !== existing?.id) throw new AppError(400, APP.nameExists); // 400, not 409

    // the handler drops entries whose type is not "oauth2" or whose config is nil
    // (application/handler.go processInboundAuthConfigFromRequest)
    const oauthIn = (input.inboundAuthConfig ?? []).filter((c) => c.type === 'oauth2' && c.config)[0]?.config;
    let plainSecret: string | undefined;
    if (oauthIn) {
      validateOAuth(oauthIn);
      const existingCfg = existing?.inboundAuthConfig[0]?.config;
      if (!oauthIn.clientId) {
        oauthIn.clientId = genClientId();
      } else if (oauthIn.clientId !== existingCfg?.clientId && findByClientId(oauthIn.clientId)) {
        throw new AppError(400, APP.clientIdExists);
      }
      const secretMethod = oauthIn.tokenEndpointAuthMethod === 'client_secret_basic' || oauthIn.tokenEndpointAuthMethod === 'client_secret_post';
      if (secretMethod && !oauthIn.clientSecret) {
        const preserve = !!existingCfg?.hashedClientSecret && !existingCfg.publicClient;
        if (!preserve) oauthIn.clientSecret = genClientSecret();
      }
      plainSecret = secretMethod ? oauthIn.clientSecret : undefined;
    }

    if (era === 'D') {
      // v0.39.0 application/service.go validateApplicationFields: ouId required and must exist -> APP-1018
      if (!input.ouId || input.ouId !== defaultOuId) throw new AppError(400, APP.invalidFormat);
    }
    let type: string | undefined;
    if (since('1.0.0-alpha2')) {
      // v1.0.0-alpha2 application/service.go: an unknown type -> APP-1040 (validateApplicationFields);
      // none on create -> APP-1042; a different one on update -> APP-1041, none inherits
      const known = ['browser', 'fullstack', 'mobile', 'm2m', 'custom', ...(since('1.0.0') ? ['mcp'] : [])];
      if (input.type && !known.includes(input.type)) throw new AppError(400, APP.invalidType);
      if (!existing && !input.type) throw new AppError(400, APP.typeRequired);
      if (existing && input.type && input.type !== existing.type) throw new AppError(400, APP.typeImmutable);
      type = existing?.type ?? input.type;
    }
    // v0.47.0 application/service.go isFlowSecretEligible: apps that start flows themselves hold a flow
    // secret (generated when none is given, returned once); 1.0.0-alpha2 decides by type first
    let flowSecret: string | undefined;
    let flowSecretHash = existing?.flowSecretHash;
    if (since('0.47') && flowSecretEligible(type, oauthIn)) {
      if (input.flowSecret) flowSecret = input.flowSecret;
      else if (!existing) flowSecret = genClientSecret();
      if (flowSecret) flowSecretHash = sha256hex(flowSecret);
    }
    // validateAuthFlowID: unknown flow -> APP-1007; empty -> default flow (mutates the DTO, so it is echoed)
    let authFlowId = input.authFlowId ?? '';
    if (authFlowId) {
      if (graphs.get(authFlowId)?.flowType !== 'AUTHENTICATION') throw new AppError(400, APP.invalidAuthFlow);
    } else authFlowId = defaultAuthFlowId;
    let registrationFlowId = input.registrationFlowId ?? '';
    if (registrationFlowId) {
      if (graphs.get(registrationFlowId)?.flowType !== 'REGISTRATION') throw new AppError(400, APP.invalidRegFlow);
    } else registrationFlowId = defaultRegistrationFlowId; // inferred from the auth flow's handle
    if (input.url && !isValidUri(input.url)) throw new AppError(400, APP.invalidUrl);
    if (input.logoUrl && !isValidUri(input.logoUrl)) throw new AppError(400, APP.invalidLogoUrl);

    // processTokenConfiguration: assertion defaults to jwt.validity_period; token parts default to it
    const assertionValidity = input.assertion?.validityPeriod || JWT_VALIDITY;
    const assertionAttrs = input.assertion?.userAttributes ?? [];
    const id = existing?.id ?? uuidv7();
    const app: StoredApplication = {
      id,
      ouId: era === 'D' ? input.ouId! : '',
      name,
      description: input.description ?? '',
      authFlowId,
      registrationFlowId,
      isRegistrationFlowEnabled: input.isRegistrationFlowEnabled ?? false,
      recoveryFlowId: input.recoveryFlowId ?? '',
      isRecoveryFlowEnabled: input.isRecoveryFlowEnabled ?? false,
      themeId: input.themeId ?? '',
      layoutId: input.layoutId ?? '',
      template: input.template ?? '',
      url: input.url ?? '',
      logoUrl: input.logoUrl ?? '',
      tosUri: input.tosUri ?? '',
      policyUri: input.policyUri ?? '',
      contacts: input.contacts,
      assertion: { validityPeriod: assertionValidity, userAttributes: assertionAttrs },
      certificate: input.certificate?.type ? { type: input.certificate.type, value: input.certificate.value ?? '' } : undefined,
      allowedUserTypes: input.allowedUserTypes,
      // validateConsentConfig: nil -> {validity_period: 0}; negative -> 0
      loginConsent: { validityPeriod: Math.max(0, input.loginConsent?.validityPeriod ?? 0) },
      metadata: input.metadata,
      isReadOnly: false,
      inboundAuthConfig: [],
      type,
      flowSecretHash,
    };
    if (oauthIn) {
      // 0.48+ inboundclient/service.go resolveOAuthTokens: userConfig defaults to the assertion's, clientConfig
      // has no default; the flat keys of earlier releases were dropped by the decoder
      const flatAt = oauthIn.token?.accessToken;
      const userAt = flatAt?.userConfig;
      const at = since('0.48') ? (userAt ? { validityPeriod: userAt.validityPeriod, userAttributes: userAt.attributes } : undefined) : flatAt;
      const clientAt = since('0.48') ? flatAt?.clientConfig : undefined;
      const it = oauthIn.token?.idToken;
      const idToken = { validityPeriod: it?.validityPeriod || assertionValidity, userAttributes: it ? it.userAttributes ?? [] : assertionAttrs };
      const existingCfg = existing?.inboundAuthConfig[0]?.config;
      app.inboundAuthConfig = [
        {
          type: 'oauth2',
          config: {
            appId: id,
            clientId: oauthIn.clientId!,
            hashedClientSecret: oauthIn.clientSecret
              ? sha256hex(oauthIn.clientSecret)
              : oauthIn.tokenEndpointAuthMethod === 'client_secret_basic' || oauthIn.tokenEndpointAuthMethod === 'client_secret_post'
                ? existingCfg?.hashedClientSecret ?? ''
                : '',
            redirectUris: oauthIn.redirectUris ?? [],
            grantTypes: oauthIn.grantTypes!,
            responseTypes: oauthIn.responseTypes!,
            tokenEndpointAuthMethod: oauthIn.tokenEndpointAuthMethod!,
            pkceRequired: oauthIn.pkceRequired ?? false,
            publicClient: oauthIn.publicClient ?? false,
            requirePushedAuthorizationRequests: oauthIn.requirePushedAuthorizationRequests ?? false,
            token: {
              accessToken: { validityPeriod: at?.validityPeriod || assertionValidity, userAttributes: at ? at.userAttributes ?? [] : assertionAttrs },
              idToken,
              clientAccessToken: clientAt ? { validityPeriod: clientAt.validityPeriod ?? 0, userAttributes: clientAt.attributes ?? [] } : undefined,
            },
            scopes: oauthIn.scopes ?? [],
            // processUserInfoConfiguration: response type JSON unless JWS; attributes default to the id token's
            userInfo: {
              responseType: oauthIn.userInfo?.responseType?.toUpperCase() === 'JWS' ? 'JWS' : 'JSON',
              userAttributes: oauthIn.userInfo?.userAttributes ?? idToken.userAttributes,
            },
            scopeClaims: oauthIn.scopeClaims ?? {},
            certificate: oauthIn.certificate?.type ? { type: oauthIn.certificate.type, value: oauthIn.certificate.value ?? '' } : undefined,
            acrValues: oauthIn.acrValues,
          },
        },
      ];
    }
    apps.set(id, app);
    return { app, plainSecret, flowSecret };
  }

  /** isFlowSecretEligible (v0.47.0 application/service.go; v1.0.0-alpha2 adds the type switch). */
  function flowSecretEligible(type: string | undefined, oauth: DecodedOAuth | undefined): boolean {
    if (type === 'browser' || type === 'mobile' || type === 'm2m') return false;
    if (!oauth) return true;
    if (oauth.publicClient || oauth.grantTypes?.includes('authorization_code')) return false;
    return !(oauth.grantTypes?.length === 1 && oauth.grantTypes[0] === 'client_credentials');
  }

  // ---- rendering (field order = Go struct order; omitempty as tagged) ------------------------
  const k = (name: string) => (era === 'B' ? snake(name) : name);
  function renderTokenPart(p: { validityPeriod: number; userAttributes: string[] }) {
    return omitEmpty({ [k('validityPeriod')]: p.validityPeriod, [k('userAttributes')]: p.userAttributes });
  }
  function renderOAuth(c: StoredOAuthConfig, secret: string | undefined, withSecretField: boolean) {
    // 0.48+ providers.AccessTokenConfig {userConfig, clientConfig}, each {validityPeriod, attributes} (omitempty)
    const sub = (p: { validityPeriod: number; userAttributes: string[] }) => omitEmpty({ validityPeriod: p.validityPeriod, attributes: p.userAttributes });
    const accessToken = since('0.48')
      ? omitEmpty({ userConfig: sub(c.token.accessToken), clientConfig: c.token.clientAccessToken ? sub(c.token.clientAccessToken) : undefined })
      : renderTokenPart(c.token.accessToken);
    const token = { [k('accessToken')]: accessToken, [k('idToken')]: renderTokenPart(c.token.idToken) };
    const userInfo = omitEmpty({ [k('responseType')]: c.userInfo.responseType, [k('userAttributes')]: c.userInfo.userAttributes });
    if (era === 'B') {
      // model.OAuthAppConfigComplete / model.OAuthAppConfig (v0.28.0): redirect_uris, grant_types,
      // response_types and token_endpoint_auth_method have no omitempty (the handler turns nil into [])
      const o: Record<string, unknown> = { client_id: c.clientId };
      if (withSecretField && secret) o.client_secret = secret;
      Object.assign(o, {
        redirect_uris: c.redirectUris,
        grant_types: c.grantTypes,
        response_types: c.responseTypes,
        token_endpoint_auth_method: c.tokenEndpointAuthMethod,
        pkce_required: c.pkceRequired,
        public_client: c.publicClient,
      });
      Object.assign(o, omitEmpty({ token, scopes: c.scopes, user_info: userInfo, scope_claims: c.scopeClaims, certificate: c.certificate }));
      return o;
    }
    // inboundmodel.OAuthConfigWithSecret / OAuthConfig (v0.39.0): arrays omitempty, three bools always
    return {
      ...omitEmpty({
        clientId: c.clientId,
        clientSecret: withSecretField ? secret : undefined,
        redirectUris: c.redirectUris,
        grantTypes: c.grantTypes,
        responseTypes: c.responseTypes,
        tokenEndpointAuthMethod: c.tokenEndpointAuthMethod,
      }),
      pkceRequired: c.pkceRequired,
      publicClient: c.publicClient,
      requirePushedAuthorizationRequests: c.requirePushedAuthorizationRequests,
      ...omitEmpty({ token, scopes: c.scopes, userInfo, scopeClaims: c.scopeClaims, certificate: c.certificate, acrValues: c.acrValues }),
    };
  }
  /** ApplicationCompleteResponse (POST/PUT) or ApplicationGetResponse (GET). */
  function renderApp(a: StoredApplication, mode: 'complete' | 'get', secret?: string, flowSecret?: string) {
    const cfg = a.inboundAuthConfig[0]?.config;
    const inbound = a.inboundAuthConfig.map((c) => ({ type: c.type, config: renderOAuth(c.config, secret, mode === 'complete') }));
    const assertion = omitEmpty({ [k('validityPeriod')]: a.assertion.validityPeriod, [k('userAttributes')]: a.assertion.userAttributes });
    if (era === 'B') {
      return {
        ...omitEmpty({ id: a.id }),
        name: a.name,
        ...omitEmpty({ description: a.description, client_id: cfg?.clientId, auth_flow_id: a.authFlowId, registration_flow_id: a.registrationFlowId }),
        is_registration_flow_enabled: a.isRegistrationFlowEnabled,
        ...omitEmpty({
          theme_id: a.themeId,
          layout_id: a.layoutId,
          template: a.template,
          url: a.url,
          logo_url: a.logoUrl,
          assertion,
          certificate: a.certificate,
          tos_uri: a.tosUri,
          policy_uri: a.policyUri,
          contacts: a.contacts,
          inbound_auth_config: inbound,
          allowed_user_types: a.allowedUserTypes,
        }),
        login_consent: { validity_period: a.loginConsent.validityPeriod },
        ...omitEmpty({ metadata: a.metadata }),
      };
    }
    return {
      ...omitEmpty({ id: a.id, ouId: a.ouId }),
      name: a.name,
      // 0.47+ flowSecret (creation response only), 1.0.0-alpha2+ type
      ...omitEmpty({ description: a.description, clientId: cfg?.clientId, type: a.type, flowSecret: mode === 'complete' ? flowSecret : undefined }),
      ...omitEmpty({ template: a.template, url: a.url, logoUrl: a.logoUrl, tosUri: a.tosUri, policyUri: a.policyUri, contacts: a.contacts }),
      // embedded inboundmodel.InboundAuthProfile
      ...omitEmpty({ authFlowId: a.authFlowId, registrationFlowId: a.registrationFlowId }),
      isRegistrationFlowEnabled: a.isRegistrationFlowEnabled,
      ...omitEmpty({ recoveryFlowId: a.recoveryFlowId }),
      isRecoveryFlowEnabled: a.isRecoveryFlowEnabled,
      ...omitEmpty({ themeId: a.themeId, layoutId: a.layoutId, assertion }),
      loginConsent: { validityPeriod: a.loginConsent.validityPeriod },
      ...omitEmpty({ allowedUserTypes: a.allowedUserTypes, certificate: a.certificate, inboundAuthConfig: inbound, metadata: a.metadata }),
    };
  }
  /** BasicApplicationResponse (list). */
  function renderBasic(a: StoredApplication) {
    const cfg = a.inboundAuthConfig[0]?.config;
    if (era === 'B') {
      return {
        ...omitEmpty({ id: a.id }),
        name: a.name,
        ...omitEmpty({ description: a.description, client_id: cfg?.clientId, logo_url: a.logoUrl, auth_flow_id: a.authFlowId, registration_flow_id: a.registrationFlowId }),
        is_registration_flow_enabled: a.isRegistrationFlowEnabled,
        ...omitEmpty({ theme_id: a.themeId, layout_id: a.layoutId, template: a.template, is_read_only: a.isReadOnly }),
      };
    }
    return {
      ...omitEmpty({ id: a.id }),
      name: a.name,
      ...omitEmpty({ description: a.description, clientId: cfg?.clientId, logoUrl: a.logoUrl, authFlowId: a.authFlowId, registrationFlowId: a.registrationFlowId }),
      isRegistrationFlowEnabled: a.isRegistrationFlowEnabled,
      ...omitEmpty({ recoveryFlowId: a.recoveryFlowId }),
      isRecoveryFlowEnabled: a.isRecoveryFlowEnabled,
      ...omitEmpty({ themeId: a.themeId, layoutId: a.layoutId, type: a.type, template: a.template }),
      isReadOnly: a.isReadOnly, // always present from 0.30
    };
  }

  // --------------------------------------------------------------------------------------------
  // Seed data (bootstrap/01-default-resources.sh or .yaml, 02-sample-resources.sh up to 0.39)
  // --------------------------------------------------------------------------------------------
  function seed(input: DecodedApp, authFlow?: string): StoredApplication {
    const { app } = upsertApplication({ ...input, ouId: defaultOuId });
    if (authFlow) app.authFlowId = authFlow;
    return app;
  }

  // --------------------------------------------------------------------------------------------
  // Flow engine (flow/flowexec/engine.go, flow/core/prompt_node.go, flow/executor/*.go)
  // --------------------------------------------------------------------------------------------
  function allInputs(node: GraphNode) {
    return (node.prompts ?? []).flatMap((p) => p.inputs);
  }
  function allActions(node: GraphNode) {
    return (node.prompts ?? []).map((p) => p.action);
  }

  /** promptNode.Execute */
  function runPrompt(node: GraphNode, ctx: FlowContext): { status: 'COMPLETE'; next: string } | { status: 'INCOMPLETE'; inputs: FlowInput[]; actions: Array<{ ref: string; nextNode: string }>; failure?: ApiErr } | { status: 'FAILURE'; failure: ApiErr } {
    let failure: ApiErr | undefined;
    if (ctx.pendingFailure) {
      // a failure routed back here (runtime data failureReason / failureReasonJSON): report it, forget
      // this prompt's inputs and the action
      failure = ctx.pendingFailure;
      delete ctx.pendingFailure;
      for (const i of allInputs(node)) delete ctx.userInputs[i.identifier];
      ctx.currentAction = '';
    }
    const missing: FlowInput[] = [];
    const check = (inputs: FlowInput[]) => {
      let required = false;
      for (const i of inputs) {
        if (!(i.identifier in ctx.userInputs)) {
          if (i.required) required = true;
          missing.push(i);
        }
      }
      return !required;
    };
    // hasRequiredInputs: inputs of the selected action's prompt, else (unknown/no action) of all prompts
    const selected = (node.prompts ?? []).find((p) => p.action.ref === ctx.currentAction);
    const hasAllInputs = selected ? check(selected.inputs) : check(allInputs(node));
    // hasSelectedAction
    const actions = allActions(node);
    let hasAction = actions.length === 0 || actions.some((a) => a.ref === ctx.currentAction);
    let listedActions = hasAction ? [] : actions;
    // tryAutoSelectSingleAction: only when no action was sent at all
    if (hasAllInputs && !hasAction && actions.length === 1 && ctx.currentAction === '' && allInputs(node).length > 0) {
      ctx.currentAction = actions[0]!.ref;
      hasAction = true;
      listedActions = [];
    }
    if (hasAllInputs && hasAction) {
      const next = actions.find((a) => a.ref === ctx.currentAction)?.nextNode;
      if (!next) return { status: 'FAILURE', failure: INVALID_ACTION }; // unreachable via the API
      return { status: 'COMPLETE', next };
    }
    return { status: 'INCOMPLETE', inputs: missing, actions: listedActions, failure };
  }

  async function runEngine(ctx: FlowContext): Promise<FlowStep> {
    const graph = graphs.get(ctx.graphId)!;
    let node: GraphNode | undefined = ctx.currentNodeId ? graph.nodes[ctx.currentNodeId] : graph.nodes[graph.nodes.start!.onSuccess!];
    while (node && node.type !== 'END') {
      ctx.currentNodeId = node.id;
      if (node.type === 'PROMPT') {
        const r = runPrompt(node, ctx);
        if (r.status === 'COMPLETE') {
          ctx.currentAction = ''; // engine.go updateContextWithNodeResponse clears the action on COMPLETE
          node = graph.nodes[r.next];
          continue;
        }
        if (r.status === 'FAILURE') return { status: 'ERROR', data: {}, failure: r.failure };
        return {
          status: 'INCOMPLETE',
          type: 'VIEW',
          data: omitEmpty({ inputs: r.inputs, actions: r.actions }) as FlowStep['data'],
          failure: r.failure,
        };
      }
      // TASK_EXECUTION
      const result = await runExecutor(node, ctx);
      // engine.go: sensitive (PASSWORD_INPUT) inputs are dropped from the context once consumed
      if (node.executor === 'BasicAuthExecutor') delete ctx.userInputs.password;
      if (result.status === 'COMPLETE') {
        node = graph.nodes[node.onSuccess!];
        continue;
      }
      if (result.status === 'RETRY' && node.onIncomplete) {
        ctx.pendingFailure = result.failure;
        node = graph.nodes[node.onIncomplete];
        continue;
      }
      return { status: 'ERROR', data: {}, failure: result.failure };
    }
    ctx.currentNodeId = undefined;
    return { status: 'COMPLETE', data: {}, assertion: ctx.runtimeData.__assertion };
  }

  type ExecResult = { status: 'COMPLETE' } | { status: 'RETRY' | 'FAILURE'; failure: ApiErr };
  async function runExecutor(node: GraphNode, ctx: FlowContext): Promise<ExecResult> {
    switch (node.executor) {
      case 'IdentifyingExecutor': {
        const u = users.find((x) => x.username === ctx.userInputs.username);
        if (!u) return { status: 'RETRY', failure: FET.userNotFound };
        return { status: 'COMPLETE' };
      }
      case 'BasicAuthExecutor': {
        // flow/executor/basic_auth_executor.go (0.45+: credentials_auth_executor.go): bad credentials ->
        // USER_INPUT_REQUIRED with ErrUserNotFound / ErrInvalidCredentials, routed to onIncomplete
        const u = users.find((x) => x.username === ctx.userInputs.username);
        if (!u) return { status: 'RETRY', failure: FET.userNotFound };
        if (u.password !== ctx.userInputs.password) return { status: 'RETRY', failure: FET.invalidCredentials };
        ctx.user = u;
        ctx.authenticatedAt = Math.floor(Date.now() / 1000);
        return { status: 'COMPLETE' };
      }
      case 'AuthorizationExecutor': {
        // flow/executor/authz_executor.go: requested_permissions from runtime data, else user input
        if (!ctx.user) return { status: 'FAILURE', failure: FET.notAuthenticated };
        const requested = (ctx.runtimeData.requested_permissions || ctx.userInputs.requested_permissions || '').split(' ').filter(Boolean);
        if (requested.length) {
          // v1.0.0-alpha2 resolveResourceServerID: permissions are evaluated on the resource server named by
          // resource_server_identifier (runtime data from the OAuth layer, else the input); none or an
          // unknown one (no default resource server ships) drops every requested permission
          const identifier = ctx.runtimeData.resource_server_identifier || ctx.userInputs.resource_server_identifier || '';
          const scoped = !since('1.0.0-alpha2') || identifier === systemResourceServer;
          const granted = scoped ? requested.filter((p) => hasPermission(ctx.user!.permissions, p)) : [];
          ctx.runtimeData.authorized_permissions = granted.join(' ');
        }
        return { status: 'COMPLETE' };
      }
      case 'AuthAssertExecutor': {
        if (!ctx.user) return { status: 'FAILURE', failure: FET.notAuthenticated };
        ctx.runtimeData.__assertion = await issueAssertion(ctx.user, ctx.appId, ctx.runtimeData.authorized_permissions ?? '');
        return { status: 'COMPLETE' };
      }
      default:
        return { status: 'FAILURE', failure: NOT_SIMULATED };
    }
  }

  function newFlowContext(appId: string, graphId: string, flowType: string): FlowContext {
    return { id: uuidv7(), appId, graphId, flowType, currentAction: '', userInputs: {}, runtimeData: {}, expiresAt: Date.now() + AUTH_FLOW_EXPIRY * 1000 };
  }

  /**
   * checkDirectFlowInitiationAllowed (flow/flowexec/service.go, 0.45+) for a new AUTHENTICATION flow: the
   * refusal to answer with, or undefined when the application may start it.
   */
  function initiationRefusal(app: StoredApplication, flowSecret: string): { status: number; err: ApiErr } | undefined {
    if (!since('0.45')) return undefined;
    const cfg = app.inboundAuthConfig[0]?.config;
    const authCode = !!cfg?.grantTypes.includes('authorization_code');
    if (!since('0.47')) {
      // v0.45.0: only redirect (authorization_code) apps are refused; nothing else is asked
      return authCode ? { status: 403, err: FES.notPermitted045 } : undefined;
    }
    // v0.47.0 resolveFlowInitiationMode: redirect and client_credentials-only apps never run flows; the
    // rest (no OAuth profile, or another confidential one) present their flow secret. 1.0.0-alpha2 first
    // looks at the type: browser and m2m apps never run flows.
    const ccOnly = cfg?.grantTypes.length === 1 && cfg.grantTypes[0] === 'client_credentials';
    if (app.type === 'browser' || app.type === 'm2m' || authCode || ccOnly) return { status: 403, err: FES.notPermitted };
    if (!flowSecret) return { status: 401, err: FES.secretRequired };
    if (!app.flowSecretHash || sha256hex(flowSecret) !== app.flowSecretHash) return { status: 401, err: FES.secretInvalid };
    return undefined;
  }

  async function handleFlowExecute(req: IncomingMessage, body: unknown, res: ServerResponse) {
    counters.flowExecuteRequests++;
    const fesErr = (e: ApiErr, status = 400) => send(res, status, renderErr(era, e));
    let reqData: Record<string, unknown>;
    try {
      if (body === undefined || body === '') throw new GoDecodeError('EOF');
      if (typeof body === 'string') throw new GoDecodeError('invalid JSON');
      reqData = goDecode(flowRequestSchema, body, rel, '', true);
      // `inputs` is map[string]string: any non-string value is a decode error (FES-1001)
      const inputs = (body as Record<string, unknown>)[Object.keys(body as object).find((x) => x.toLowerCase() === 'inputs') ?? 'inputs'];
      if (inputs !== undefined && inputs !== null) {
        if (typeof inputs !== 'object' || Array.isArray(inputs) || Object.values(inputs).some((v) => v !== null && typeof v !== 'string')) throw new GoDecodeError('inputs');
        reqData.inputs = Object.fromEntries(Object.entries(inputs as object).map(([a, b]) => [a, b ?? '']));
      }
    } catch {
      return fesErr(FES.decode);
    }
    const inputs = (reqData.inputs as Record<string, string> | undefined) ?? {};
    const action = (reqData.action as string | undefined)?.trim() ?? '';
    if (since('1.0.0') && reqData.flowId) {
      // v1.0.0 handler.go: a flowId starts (or continues) an administration flow, for a caller holding
      // `system` only (validateAdministrationCaller); none exists here, so a caller who has it gets FES-1018
      const perms = await bearerPermissions(req);
      if (!perms) return fesErr(FES.adminAuth, 401);
      return fesErr(FES.flowIdNotPermitted, 403);
    }
    const continuation = ((era === 'B' ? reqData.flowId : reqData.executionId) as string | undefined) ?? '';
    let ctx: FlowContext;
    if (!continuation) {
      const flowType = (reqData.flowType as string | undefined) ?? '';
      if (!FLOW_TYPES.includes(flowType)) return fesErr(FES.flowType);
      const appId = (reqData.applicationId as string | undefined) ?? '';
      const app = appId ? apps.get(appId) : undefined;
      if (!app) return fesErr(FES.appId);
      if (flowType === 'AUTHENTICATION') {
        // the flow secret: the body field in 0.47 only, the Flow-Secret header from 0.48
        const secret = since('0.48') ? String(req.headers['flow-secret'] ?? '') : String(reqData.flowSecret ?? '');
        const refusal = initiationRefusal(app, secret);
        if (refusal) return fesErr(refusal.err, refusal.status);
      }
      if (flowType === 'REGISTRATION') {
        if (!app.isRegistrationFlowEnabled) return fesErr(FES.regDisabled);
        return send(res, 500, renderErr(era, { code: 'SSE-5000', message: 'Internal server error', description: 'Registration flows are not simulated', key: 'error.internal' }));
      }
      if (flowType === 'USER_ONBOARDING') {
        return send(res, 500, renderErr(era, { code: 'SSE-5000', message: 'Internal server error', description: 'User onboarding flows are not simulated', key: 'error.internal' }));
      }
      ctx = newFlowContext(app.id, app.authFlowId, flowType);
    } else {
      const stored = flowContexts.get(continuation);
      if (!stored || stored.expiresAt < Date.now()) {
        flowContexts.delete(continuation);
        return fesErr(era === 'B' ? FES.flowIdB : FES.executionIdD);
      }
      ctx = stored;
      if (era === 'D' && ctx.challengeTokenHash) {
        const presented = (reqData.challengeToken as string | undefined) ?? '';
        if (!presented || sha256hex(presented) !== ctx.challengeTokenHash) {
          // v0.39.0 flow/flowexec/engine.go validateChallengeToken: 400 FES-1009, the context survives
          // (service.go keeps it when flowErr.Code == ErrorInvalidChallengeToken.Code). 0.45+: the challenge
          // token interceptor fails the step instead: 200, flowStatus ERROR, error ICS-1002.
          if (!since('0.45')) return fesErr(FES.challenge);
          flowContexts.delete(ctx.id);
          return send(res, 200, { executionId: ctx.id, flowStatus: 'ERROR', data: {}, error: renderErr(era, ICS_CHALLENGE) });
        }
      }
    }
    // prepareContext: merge inputs, set the action when given
    Object.assign(ctx.userInputs, inputs);
    if (action) ctx.currentAction = action;

    const step = await runEngine(ctx);
    const out: Record<string, unknown> = era === 'B' ? { flowId: ctx.id } : { executionId: ctx.id };
    out.flowStatus = step.status;
    if (step.type) out.type = step.type;
    if (step.status === 'INCOMPLETE' && era === 'D') {
      // rotateChallengeToken: 32 random bytes, hex; only the hash is kept
      const token = randomBytes(32).toString('hex');
      ctx.challengeTokenHash = sha256hex(token);
      out.challengeToken = token;
    }
    out.data = step.data; // FlowData struct: never omitted, so COMPLETE/ERROR carry "data":{}
    if (step.assertion) out.assertion = step.assertion;
    // FlowResponse: failureReason (a string) up to 0.42; from 0.43 `error`, an apierror.ErrorResponse
    if (step.failure) {
      if (since('0.43')) out.error = renderErr(era, step.failure);
      else out.failureReason = step.failure.message;
    }
    // service.go Execute: COMPLETE removes the context; otherwise it is stored/updated
    if (step.status === 'COMPLETE') flowContexts.delete(ctx.id);
    else flowContexts.set(ctx.id, ctx);
    return send(res, 200, out);
  }

  // --------------------------------------------------------------------------------------------
  // OAuth endpoints
  // --------------------------------------------------------------------------------------------
  function oauthError(res: ServerResponse, status: number, error: string, description: string, headers: Record<string, string> = {}) {
    // system/utils/http_util.go WriteJSONError
    return send(res, status, { error, error_description: description }, headers);
  }

  async function handleToken(req: IncomingMessage, form: Record<string, string>, res: ServerResponse) {
    counters.tokenRequests++;
    // oauth2/clientauth/clientauth.go authenticate: the method is detected from what was sent
    const authHeader = req.headers.authorization ?? '';
    let method = '';
    if (authHeader) method = 'client_secret_basic';
    if (form.client_secret) {
      if (method) return oauthError(res, 400, 'invalid_request', 'Multiple client authentication methods were provided');
      method = 'client_secret_post';
    }
    if (form.client_assertion_type || form.client_assertion) {
      if (method) return oauthError(res, 400, 'invalid_request', 'Multiple client authentication methods were provided');
      method = 'private_key_jwt';
    }
    if (!method && form.client_id) method = 'none';
    const basicChallenge: Record<string, string> = authHeader ? { 'WWW-Authenticate': 'Basic' } : {};
    let clientId = '';
    let secret = '';
    if (method === 'client_secret_basic') {
      if (!/^basic /i.test(authHeader)) return oauthError(res, 401, 'invalid_client', 'Invalid client credentials', basicChallenge);
      const decoded = Buffer.from(authHeader.slice(6).trim(), 'base64').toString('utf8');
      const idx = decoded.indexOf(':');
      if (idx < 0) return oauthError(res, 401, 'invalid_client', 'Invalid client credentials', basicChallenge);
      if (idx === 0) return oauthError(res, 400, 'invalid_request', 'Missing client_id parameter');
      if (idx === decoded.length - 1) return oauthError(res, 401, 'invalid_client', 'Invalid client credentials', basicChallenge);
      try {
        // url.QueryUnescape: '+' becomes a space
        clientId = decodeURIComponent(decoded.slice(0, idx).replace(/\+/g, ' '));
        secret = decodeURIComponent(decoded.slice(idx + 1).replace(/\+/g, ' '));
      } catch {
        return oauthError(res, 401, 'invalid_client', 'Invalid client credentials', basicChallenge);
      }
    } else if (method === 'client_secret_post') {
      if (!form.client_id) return oauthError(res, 400, 'invalid_request', 'Missing client_id parameter');
      clientId = form.client_id;
      secret = form.client_secret!;
    } else if (method === 'private_key_jwt') {
      return oauthError(res, 401, 'invalid_client', 'Invalid client assertion'); // not simulated
    } else if (method === 'none') {
      clientId = form.client_id!;
    } else {
      return oauthError(res, 400, 'invalid_request', 'Missing client_id parameter');
    }
    if (form.client_id && clientId !== form.client_id) {
      return oauthError(res, 400, 'invalid_request', 'client_id in request body does not match client_id from authentication credentials');
    }
    const app = findByClientId(clientId);
    const cfg = app?.inboundAuthConfig[0]?.config;
    if (!app || !cfg) return oauthError(res, 401, 'invalid_client', 'Invalid client credentials', basicChallenge);
    // IsAllowedTokenEndpointAuthMethod: exactly the registered method, no fallback
    if (cfg.tokenEndpointAuthMethod !== method) {
      return oauthError(res, 400, 'unauthorized_client', 'Client is not allowed to use the specified token endpoint authentication method');
    }
    if ((method === 'client_secret_basic' || method === 'client_secret_post') && sha256hex(secret) !== cfg.hashedClientSecret) {
      return oauthError(res, 401, 'invalid_client', 'Invalid client credentials', basicChallenge);
    }
    // oauth2/token/service.go ProcessTokenRequest
    const grantType = form.grant_type ?? '';
    if (!grantType) return oauthError(res, 400, 'invalid_request', 'Missing grant_type parameter');
    if (!GRANT_TYPES.includes(grantType)) return oauthError(res, 400, 'unsupported_grant_type', 'Invalid grant_type parameter');
    if (!cfg.grantTypes.includes(grantType)) return oauthError(res, 400, 'unauthorized_client', 'The client is not authorized to use this grant type');
    if (grantType !== 'client_credentials') {
      // not simulated: answered like a grant type without a registered handler
      return oauthError(res, 400, 'unsupported_grant_type', 'Unsupported grant type');
    }
    let scopes = (form.scope ?? '').split(' ').filter(Boolean); // scope/validator.go: all requested scopes are returned as-is (B)
    let aud: string | string[] = clientId;
    if (era === 'B') {
      // granthandlers/client_credentials.go: DetermineAudience("", resource, "", clientID)
      if (form.resource) aud = form.resource;
    } else {
      // v0.39.0 granthandlers/client_credentials.go: resource must name a registered resource server
      // (else invalid_target); requested scopes are filtered by the app's authorized permissions -
      // this simulator grants applications none.
      const resources = ([] as string[]).concat(form.resource ? [form.resource] : []);
      for (const r of resources) {
        if (!(opts.resourceServers ?? []).includes(r)) {
          return oauthError(res, 400, 'invalid_target', 'The resource parameter does not match any registered resource server');
        }
      }
      scopes = [];
      if (resources.length) aud = resources.length === 1 ? resources[0]! : resources;
    }
    // 0.48+ granthandlers/client_credentials.go: the client-subject lifetime (clientConfig), else jwt.validity_period
    const validity = (since('0.48') ? cfg.token.clientAccessToken?.validityPeriod : cfg.token.accessToken.validityPeriod) || JWT_VALIDITY;
    const claims: Record<string, unknown> = {};
    if (scopes.length) claims.scope = scopes.join(' ');
    claims.client_id = clientId;
    claims.grant_type = 'client_credentials';
    const accessToken = await signJwt(clientId, aud, validity, claims, 'at+jwt');
    const body = omitEmpty({ access_token: accessToken, token_type: 'Bearer', expires_in: validity, scope: scopes.join(' ') }, ['expires_in']);
    return send(res, 200, body, { 'Cache-Control': 'no-store', Pragma: 'no-cache' });
  }

  function gateRedirect(res: ServerResponse, query: Record<string, string>) {
    // authz/handler.go getLoginPageRedirectURI: {gate_client.scheme://host:port}{gate_client.path}/signin;
    // the query is url.Values.Encode()d, i.e. sorted by key
    const u = new URL(`${url}/gate/signin`);
    for (const key of Object.keys(query).sort()) u.searchParams.set(key, query[key]!);
    res.statusCode = 302;
    res.setHeader('Location', u.toString());
    res.end();
  }
  function errorPageRedirect(res: ServerResponse, code: string, msg: string) {
    const u = new URL(`${url}/gate/error`);
    u.searchParams.set('errorCode', code);
    u.searchParams.set('errorMessage', msg);
    res.statusCode = 302;
    res.setHeader('Location', u.toString());
    res.end();
  }
  function clientRedirect(res: ServerResponse, redirectUri: string, error: string, description: string, state?: string) {
    const u = new URL(redirectUri);
    u.searchParams.set('error', error);
    u.searchParams.set('error_description', description);
    if (state) u.searchParams.set('state', state);
    res.statusCode = 302;
    res.setHeader('Location', u.toString());
    res.end();
  }

  function handleAuthorize(q: Record<string, string>, res: ServerResponse) {
    counters.authorizeRequests++;
    // oauth2/authz/service.go HandleInitialAuthorizationRequest + validator.go
    const clientId = q.client_id ?? '';
    if (!clientId) return errorPageRedirect(res, 'invalid_request', 'Missing client_id parameter');
    const app = findByClientId(clientId);
    const cfg = app?.inboundAuthConfig[0]?.config;
    if (!app || !cfg) return errorPageRedirect(res, 'invalid_request', 'Invalid client_id');
    const redirectUri = q.redirect_uri ?? '';
    // model/oauth_app.go validateRedirectURI: exact string match; omitted only if exactly one is registered
    let okRedirect = false;
    if (!redirectUri) okRedirect = cfg.redirectUris.length === 1;
    else okRedirect = cfg.redirectUris.includes(redirectUri) && !redirectUri.includes('#');
    if (!okRedirect) return errorPageRedirect(res, 'invalid_request', 'Invalid redirect URI');
    const target = redirectUri || cfg.redirectUris[0]!;
    const state = q.state;
    if ('prompt' in q) {
      const values = (q.prompt ?? '').split(/\s+/).filter(Boolean);
      if (!values.length) return clientRedirect(res, target, 'invalid_request', 'The prompt parameter cannot be empty', state);
      if (values.includes('none')) return clientRedirect(res, target, values.length > 1 ? 'invalid_request' : 'login_required', values.length > 1 ? "prompt value 'none' must not be combined with other values" : 'User authentication is required', state);
    }
    if (!cfg.grantTypes.includes('authorization_code')) return clientRedirect(res, target, 'unauthorized_client', 'Authorization code grant type is not allowed for the client', state);
    const responseType = q.response_type ?? '';
    if (!responseType) return clientRedirect(res, target, 'invalid_request', 'Missing response_type parameter', state);
    if (!cfg.responseTypes.includes(responseType)) return clientRedirect(res, target, 'unsupported_response_type', 'Unsupported response type', state);
    if (responseType === 'code') {
      const challenge = q.code_challenge ?? '';
      if ((cfg.pkceRequired || cfg.publicClient) && !challenge) return clientRedirect(res, target, 'invalid_request', 'code_challenge is required for this application', state);
      if (challenge && ((q.code_challenge_method && q.code_challenge_method !== 'S256') || !/^[A-Za-z0-9\-._~]{43,128}$/.test(challenge))) {
        return clientRedirect(res, target, 'invalid_request', 'Invalid code_challenge or code_challenge_method parameter', state);
      }
    }
    if (q.resource) {
      let bad = false;
      try {
        const u = new URL(q.resource);
        bad = !!u.hash;
      } catch {
        bad = true;
      }
      if (bad) return clientRedirect(res, target, 'invalid_target', 'Invalid resource parameter', state);
    }
    // InitiateFlow: an OAuth-bound flow context (requested permissions = the non-OIDC scopes)
    const ctx = newFlowContext(app.id, app.authFlowId, 'AUTHENTICATION');
    const oidc = ['openid', 'profile', 'email', 'phone', 'address'];
    ctx.runtimeData.requested_permissions = (q.scope ?? '').split(' ').filter((s) => s && !oidc.includes(s) && !(s in cfg.scopeClaims)).join(' ');
    const authId = randomUUID();
    ctx.authId = authId;
    flowContexts.set(ctx.id, ctx);
    authRequests.set(authId, { appId: app.id, clientId, redirectUri: target, flowId: ctx.id });
    const query: Record<string, string> = { authId, applicationId: app.id };
    query[era === 'B' ? 'flowId' : 'executionId'] = ctx.id;
    if (new URL(target).protocol === 'http:') query.showInsecureWarning = 'true';
    return gateRedirect(res, query);
  }

  function discovery() {
    // oauth2/discovery/service.go + model.go (v0.28.0)
    const base = {
      issuer: issuer(),
      authorization_endpoint: `${url}/oauth2/authorize`,
      token_endpoint: `${url}/oauth2/token`,
      userinfo_endpoint: `${url}/oauth2/userinfo`,
      jwks_uri: `${url}/oauth2/jwks`,
      registration_endpoint: `${url}/oauth2/dcr/register`,
      introspection_endpoint: `${url}/oauth2/introspect`,
      scopes_supported: ['openid', 'profile', 'email', 'phone', 'address'],
      response_types_supported: RESPONSE_TYPES,
      grant_types_supported: GRANT_TYPES,
      token_endpoint_auth_methods_supported: AUTH_METHODS,
      code_challenge_methods_supported: ['S256'],
    };
    const oidc = {
      ...base,
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at', 'email', 'email_verified', 'phone_number', 'phone_number_verified', 'address'],
      claims_parameter_supported: true,
    };
    return { base, oidc };
  }

  async function handleDcr(req: IncomingMessage, body: unknown, res: ServerResponse) {
    counters.dcrRequests++;
    // oauth2/dcr/handler.go: unless oauth.dcr.insecure, the caller needs permission `system`
    if (!opts.dcrInsecure) {
      const auth = req.headers.authorization ?? '';
      const claims = /^bearer /i.test(auth) ? await verifyOwnJwt(auth.slice(7).trim()) : undefined;
      if (!claims || !hasPermission(extractPermissions(claims), 'system')) {
        return oauthError(res, 401, 'unauthorized_client', 'Authentication with sufficient permissions is required to register a client');
      }
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) return oauthError(res, 400, 'invalid_client_metadata', 'The request body is missing or has an invalid format');
    const r = body as Record<string, unknown>;
    const str = (x: unknown) => (typeof x === 'string' ? x : '');
    const arr = (x: unknown) => (Array.isArray(x) ? (x as string[]) : undefined);
    if (str(r.jwks_uri) && r.jwks && Object.keys(r.jwks as object).length) return oauthError(res, 400, 'invalid_client_metadata', "Cannot specify both 'jwks' and 'jwks_uri' parameters");
    const method = str(r.token_endpoint_auth_method);
    const isPublic = method === 'none';
    // dcr/service.go convertDCRToApplication: client_name becomes the application name
    let clientId = '';
    let name = str(r.client_name);
    if (!name) {
      clientId = genClientId();
      name = clientId;
    }
    try {
      const { app, plainSecret } = upsertApplication({
        name,
        ouId: defaultOuId,
        type: 'custom', // 1.0.0 oauth2/dcr/service.go
        url: str(r.client_uri),
        logoUrl: str(r.logo_uri),
        tosUri: str(r.tos_uri),
        policyUri: str(r.policy_uri),
        contacts: arr(r.contacts),
        inboundAuthConfig: [
          {
            type: 'oauth2',
            config: {
              clientId,
              redirectUris: arr(r.redirect_uris),
              grantTypes: arr(r.grant_types),
              responseTypes: arr(r.response_types),
              tokenEndpointAuthMethod: method,
              publicClient: isPublic,
              pkceRequired: isPublic,
              scopes: str(r.scope) ? str(r.scope).split(/\s+/).filter(Boolean) : undefined,
            },
          },
        ],
      });
      const c = app.inboundAuthConfig[0]!.config;
      return send(res, 201, {
        client_id: c.clientId,
        ...omitEmpty({ client_secret: plainSecret }),
        client_secret_expires_at: 0,
        ...omitEmpty({
          redirect_uris: c.redirectUris,
          grant_types: c.grantTypes,
          response_types: c.responseTypes,
          client_name: str(r.client_name) || app.name,
          client_uri: app.url,
          logo_uri: app.logoUrl,
          token_endpoint_auth_method: c.tokenEndpointAuthMethod,
          scope: c.scopes.join(' '),
          contacts: app.contacts,
          tos_uri: app.tosUri,
          policy_uri: app.policyUri,
          app_id: app.id,
        }),
      });
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      // dcr/service.go mapApplicationErrorToDCRError: APP-1006/1014/1015 -> invalid_redirect_uri, else invalid_client_metadata
      const code = ['APP-1006', 'APP-1014', 'APP-1015'].includes(e.err.code) ? 'invalid_redirect_uri' : 'invalid_client_metadata';
      return oauthError(res, 400, code, e.custom?.text ?? e.err.description);
    }
  }

  // --------------------------------------------------------------------------------------------
  // Applications API handlers
  // --------------------------------------------------------------------------------------------
  function appError(res: ServerResponse, e: AppError) {
    return send(res, e.status, renderErr(era, e.err, e.custom));
  }
  function decodeApp(body: unknown): DecodedApp {
    if (body === undefined || body === '' || typeof body === 'string') throw new AppError(400, APP.invalidFormat);
    try {
      return goDecode(applicationRequestSchema, body, rel) as DecodedApp;
    } catch (e) {
      if (e instanceof GoDecodeError) throw new AppError(400, APP.invalidFormat);
      throw e;
    }
  }

  async function handleApplications(req: IncomingMessage, path: string, body: unknown, res: ServerResponse) {
    counters.applicationRequests++;
    const method = req.method ?? 'GET';
    // the security middleware wraps the mux, so 401/403 come before 404/405
    if (!(await requireSystem(req, res))) return;
    const m = /^\/applications(?:\/([^/]+))?$/.exec(path);
    if (!m) return send(res, 404, '404 page not found\n', { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    const id = m[1] ? decodeURIComponent(m[1]) : undefined;
    // Go 1.22 ServeMux: a known path with an unregistered method -> 405 with Allow
    const allowed = id ? ['GET', 'PUT', 'DELETE'] : ['GET', 'POST'];
    if (!allowed.includes(method)) {
      return send(res, 405, 'Method Not Allowed\n', { Allow: allowed.join(', '), 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    }
    try {
      if (!id && method === 'GET') {
        // ApplicationListResponse: totalResults/count/applications are camelCase in every era
        const list = [...apps.values()].map(renderBasic);
        return send(res, 200, { totalResults: list.length, count: list.length, applications: list });
      }
      if (!id && method === 'POST') {
        const { app, plainSecret, flowSecret } = upsertApplication(decodeApp(body));
        return send(res, 201, renderApp(app, 'complete', plainSecret, flowSecret));
      }
      const existing = apps.get(id!);
      if (method === 'GET') {
        if (!existing) throw new AppError(404, APP.notFound);
        return send(res, 200, renderApp(existing, 'get'));
      }
      if (method === 'PUT') {
        const input = decodeApp(body);
        if (!input.name) throw new AppError(400, APP.invalidName);
        if (!existing) throw new AppError(404, APP.notFound);
        const { app, plainSecret } = upsertApplication(input, existing);
        return send(res, 200, renderApp(app, 'complete', plainSecret));
      }
      // DELETE: service.go DeleteApplication returns nil for a missing app -> 204 either way
      apps.delete(id!);
      return send(res, 204);
    } catch (e) {
      if (e instanceof AppError) return appError(res, e);
      throw e;
    }
  }

  /**
   * The Console's runtime configuration, a public static file (frontend/apps/console/public/config.js;
   * Helm renders install/helm/conf/apps/console/config.js). From 0.48 it names the System resource
   * server the Console asks tokens for (`client.resource_identifier`).
   */
  function consoleConfig(res: ServerResponse) {
    if (opts.consoleResourceIdentifier === false) return send(res, 404, '404 page not found\n', { 'Content-Type': 'text/plain; charset=utf-8' });
    const identifier = opts.consoleResourceIdentifier ?? systemResourceServer;
    const lines = [
      'window.__THUNDERID_RUNTIME_CONFIG__ = {',
      "  brand: { product_name: 'ThunderID' },",
      '  client: {',
      "    base: '/console',",
      "    client_id: 'CONSOLE',",
      ...(since('0.48') ? [`    resource_identifier: '${identifier}',`] : []),
      "    scopes: ['openid', 'profile', 'email', 'ou', 'system'],",
      '  },',
      '};',
      '',
    ];
    return send(res, 200, lines.join('\n'), { 'Content-Type': 'application/javascript; charset=utf-8' });
  }

  async function handleOrganizationUnits(req: IncomingMessage, path: string, res: ServerResponse) {
    if (!(await requireSystem(req, res))) return;
    // v0.39.0 ou/model.go OrganizationUnitBasic / OrganizationUnit; bootstrap creates handle "default"
    const basic = { id: defaultOuId, handle: 'default', name: 'Default', description: 'Default organization unit', logoUrl: 'emoji:🏛️', isReadOnly: false, createdAt: ouCreatedAt, updatedAt: ouCreatedAt };
    const full = { id: defaultOuId, handle: 'default', name: 'Default', description: 'Default organization unit', parent: null, logoUrl: 'emoji:🏛️', createdAt: ouCreatedAt, updatedAt: ouCreatedAt };
    if (path === '/organization-units' && req.method === 'GET') return send(res, 200, { totalResults: 1, startIndex: 1, count: 1, organizationUnits: [basic], links: [] });
    if ((path === `/organization-units/${defaultOuId}` || path === '/organization-units/tree/default') && req.method === 'GET') return send(res, 200, full);
    return send(res, 404, renderErr(era, { code: 'OU-1003', message: 'Organization unit not found', description: 'The specified organization unit could not be found', key: 'error.ouservice.organization_unit_not_found' }));
  }

  // --------------------------------------------------------------------------------------------
  // HTTP plumbing
  // --------------------------------------------------------------------------------------------
  const served = await serve(async (req, res, raw) => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const path = u.pathname;
      const query = Object.fromEntries(u.searchParams);
      const { body, form } = parseBody(raw, req.headers['content-type']);
      const entry: LoggedRequest = {
        method: req.method ?? 'GET',
        path,
        query,
        headers: { authorization: req.headers.authorization, 'content-type': req.headers['content-type'], 'flow-secret': req.headers['flow-secret'] as string | undefined },
        body,
      };
      requests.push(entry);
      res.on('finish', () => (entry.status = res.statusCode));
      const method = req.method ?? 'GET';

      if (method === 'POST' && path === '/flow/execute') return handleFlowExecute(req, body, res);
      if (method === 'GET' && path === '/oauth2/authorize') return handleAuthorize(query, res);
      if (method === 'POST' && path === '/oauth2/token') {
        // r.ParseForm + r.FormValue: urlencoded body values win over URL query values; other
        // content types leave the body unparsed (no error)
        return handleToken(req, { ...query, ...(form ?? {}) }, res);
      }
      if (method === 'GET' && path === '/oauth2/jwks') return send(res, 200, { keys: [jwk] });
      if (method === 'GET' && path === '/console/config.js') return consoleConfig(res);
      if (method === 'POST' && path === '/oauth2/dcr/register') return handleDcr(req, body, res);
      if (method === 'GET' && path === '/.well-known/openid-configuration') return send(res, 200, discovery().oidc);
      if (method === 'GET' && path === '/.well-known/oauth-authorization-server') return send(res, 200, discovery().base);
      if (path === '/applications' || path.startsWith('/applications/')) return handleApplications(req, path, body, res);
      if (era === 'D' && (path === '/organization-units' || path.startsWith('/organization-units/'))) return handleOrganizationUnits(req, path, res);
      // everything else: the security middleware runs before the mux, so non-public paths 401 first
      if (!isPublic(path) && !(await requireSystem(req, res))) return;
      return send(res, 404, '404 page not found\n', { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  }, (res, err) => send(res, 500, { code: 'SSE-5000', message: 'Internal server error', description: String(err) }));
  url = served.url;

  // seed after `url` is known (Console redirect = {publicUrl}/console). 1.0.0-alpha2 types the Console
  // `browser` (bootstrap/01-default-resources.yaml); 1.0.0 also gives it refresh_token.
  const consoleApp = seed(
    {
      name: 'Console',
      description: 'Application for managing Thunder',
      type: 'browser',
      inboundAuthConfig: [{ type: 'oauth2', config: { clientId: 'CONSOLE', redirectUris: [`${url}/console`], grantTypes: since('1.0.0') ? ['authorization_code', 'refresh_token'] : ['authorization_code'], responseTypes: ['code'], tokenEndpointAuthMethod: 'none', pkceRequired: true, publicClient: true } }],
    },
    consoleAuthFlowId,
  );
  // bootstrap/02-sample-resources.sh, gone in v0.40.0
  const sampleApp = since('0.40')
    ? undefined
    : seed({
        name: 'Sample App',
        description: 'Sample application for testing',
        inboundAuthConfig: [{ type: 'oauth2', config: { clientId: 'sample_app_client', redirectUris: ['https://localhost:3000'], grantTypes: ['authorization_code'], responseTypes: ['code'], tokenEndpointAuthMethod: 'none', pkceRequired: true, publicClient: true } }],
      });
  if (!since('0.40')) {
    seed({
      name: 'React SDK Sample',
      description: 'Sample React application using Thunder React SDK',
      inboundAuthConfig: [{ type: 'oauth2', config: { clientId: 'REACT_SDK_SAMPLE', redirectUris: ['https://localhost:3000'], grantTypes: ['authorization_code'], responseTypes: ['code'], tokenEndpointAuthMethod: 'none', pkceRequired: true, publicClient: true } }],
    });
  }
  for (const a of opts.apps ?? []) {
    const o = a.oauth;
    seed({
      name: a.name,
      type: a.type ?? 'fullstack',
      flowSecret: a.flowSecret,
      inboundAuthConfig: o
        ? [{ type: 'oauth2', config: { ...o, tokenEndpointAuthMethod: o.tokenEndpointAuthMethod ?? (o.publicClient ? 'none' : 'client_secret_basic'), responseTypes: o.grantTypes?.includes('authorization_code') ? ['code'] : [] } }]
        : undefined,
    });
  }

  return {
    url,
    release,
    era,
    systemResourceServer,
    apps,
    requests,
    counters,
    get tokenRequests() {
      return counters.tokenRequests;
    },
    users,
    flowContexts,
    flows: { defaultAuthFlowId, defaultRegistrationFlowId, consoleAuthFlowId },
    sampleAppId: sampleApp?.id,
    consoleAppId: consoleApp.id,
    defaultOuId,
    jwks: () => ({ keys: [jwk] }),
    findApp: (x) => findByName(x) ?? findByClientId(x),
    issueAssertion: async (o = {}) => {
      const user = users.find((x) => x.username === (o.username ?? users[0]!.username)) ?? users[0]!;
      return issueAssertion(user, o.appId ?? sampleApp?.id ?? consoleApp.id, o.permissions ?? 'system', o.validitySeconds);
    },
    close: served.close,
  };
}
