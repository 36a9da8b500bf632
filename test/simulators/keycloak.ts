/**
 * Test simulator of Keycloak 26.x: token endpoint, discovery, JWKS, the admin REST API that
 * `mcp-auth bootstrap keycloak` needs, client-registration policies and anonymous DCR.
 *
 * Models Keycloak 26.8 (the newest 26.x release line); `startKeycloak({ release: '26.7' })` keeps the
 * one difference that matters here for 26.0-26.7, which users still run (see `release` below).
 * The facts, in the project's words: docs/idp/keycloak.md. Upstream files followed
 * (keycloak/keycloak, read through the code index), under services/src/main/java/org/keycloak/services/:
 *   - clientregistration/policy/impl/TrustedHostClientRegistrationPolicy.java and its Factory: the
 *     config keys `trusted-hosts`, `host-sending-registration-request-must-match`,
 *     `client-uris-must-match` (both true when absent), the checks and their messages, the
 *     validation that needs both switches present, single, boolean and not both false;
 *   - clientregistration/policy/DefaultClientRegistrationPolicies.java: the policies a realm starts with;
 *   - clientregistration/policy/impl/ClientScopesClientRegistrationPolicy.java and its Factory;
 *   - clientregistration/AbstractClientRegistrationProvider.java (create: default scopes when the
 *     request names `scope`; changed in 26.8.0 by keycloak/keycloak#50807 / #50842) and
 *     clientregistration/oidc/DescriptionConverter.java (`scope` becomes optional client scopes);
 *   - resources/admin/ComponentResource.java (validation errors as 400 {"errorMessage"}), and
 *     server-spi-private/.../provider/ConfigurationValidationHelper.java (its messages).
 * Component config is a multivalued map: every value is a list of strings, an empty list is not stored.
 * Other behaviour cites, next to it:
 *   - `keycloak/keycloak@main:<path>` - Keycloak sources read through the code index;
 *   - `gloak:<doc>` - measurements against a live quay.io/keycloak/keycloak:26.7.1 recorded by the
 *     Keycloak re-implementation ekalinin/gloak:
 *     docs/superpowers/specs/2026-08-18-keycloak-26.7.1-observed.md ("observed"),
 *     docs/superpowers/handover/p5-client-scopes.md ("p5a"), p5-protocol-mappers.md ("p5b"),
 *     p7-registration.md ("p7").
 *
 * Implemented:
 *   - POST /realms/{r}/protocol/openid-connect/token: password (admin-cli, lightweight tokens),
 *     client_credentials (confidential clients with service accounts), refresh_token; RFC 6749 errors.
 *     Access tokens are real RS256 JWTs; `aud` comes from protocol mappers (oidc-audience-mapper,
 *     oidc-audience-resolve-mapper) on the client and on its default / requested optional scopes.
 *   - /realms/{r}/.well-known/openid-configuration, /realms/{r}/.well-known/oauth-authorization-server,
 *     /.well-known/oauth-authorization-server/realms/{r}, /realms/{r}/protocol/openid-connect/certs.
 *   - Admin REST (bearer from master or the same realm; roles checked per operation):
 *     realms (GET, POST), clients CRUD, client-secret, protocol-mappers, client default/optional
 *     client scopes, client roles, service-account-user, user client-role mappings, client-scopes CRUD
 *     + protocol-mappers, realm default-default / default-optional client scopes, components
 *     (client-registration policies seeded as Keycloak does), clients-initial-access.
 *   - DCR: POST/GET/PUT/DELETE /realms/{r}/clients-registrations/openid-connect[/{client_id}] with the
 *     anonymous / authenticated policies (Trusted Hosts, Consent Required, Full Scope Disabled,
 *     Max Clients, Allowed Protocol Mapper Types, Allowed Client Scopes), registration access tokens.
 *   - "Signed JWT" client authentication (client-jwt with a jwks.string JWKS), single-use jti.
 * Not implemented: browser flows (auth, login pages, code grant), device grant, token exchange,
 * introspection, userinfo, logout, users CRUD beyond role mappings, groups, identity providers,
 * realm keys rotation, organizations, fine-grained admin permissions, client policies.
 * Trusted Hosts compares the registering machine's address - the request's socket address, as
 * Keycloak's `getRemoteAddr()` without proxy headers - with the trusted hosts. It resolves only IP
 * literals and `localhost` (no DNS, so no reverse lookup of other addresses); set
 * `sim.remoteAddressOverride` to decide as if the request came from another machine (no connection
 * is made from there).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseBody, pooledKeyPair, rsaKey, sendJson, serve } from './common.js';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, compactVerify, createLocalJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, jwtVerify, type JWK, type JWTPayload, type CryptoKey } from 'jose';

// ------------------------------------------------------------------------------------------------
// Public types
// ------------------------------------------------------------------------------------------------

export interface KeycloakOptions {
  adminUser?: string;
  adminPassword?: string;
  /** Realms to create besides `master`. */
  realms?: string[];
  /** master accessTokenLifespan; Keycloak bootstraps it to 60 s (ApplianceBootstrap). */
  masterTokenLifespan?: number;
  /** accessTokenLifespan of the other realms (Keycloak default 300 s). */
  realmTokenLifespan?: number;
  /**
   * Release line (default '26.8'). A DCR request naming `scope` gets those scopes as optional client
   * scopes; as default scopes it gets the realm's default client scopes from 26.8.0 on
   * (keycloak/keycloak#50807), only `basic` before (AbstractClientRegistrationProvider.create).
   */
  release?: '26.8' | '26.7';
}

export interface ProtocolMapperRep {
  id: string;
  name: string;
  protocol: string;
  protocolMapper: string;
  consentRequired: boolean;
  config: Record<string, string>;
}

export interface ClientScope {
  id: string;
  name: string;
  description?: string;
  protocol: string;
  attributes: Record<string, string>;
  protocolMappers: ProtocolMapperRep[];
}

export interface KcRole {
  id: string;
  name: string;
  description?: string;
  composite: boolean;
  clientRole: boolean;
  containerId: string;
  /** composite members: realm role names and client roles by clientId */
  composites?: { realm?: string[]; client?: Record<string, string[]> };
}

export interface KcClient {
  id: string;
  clientId: string;
  name?: string;
  description?: string;
  rootUrl?: string;
  adminUrl?: string;
  baseUrl?: string;
  surrogateAuthRequired: boolean;
  enabled: boolean;
  alwaysDisplayInConsole: boolean;
  clientAuthenticatorType: string;
  secret?: string;
  redirectUris: string[];
  webOrigins: string[];
  notBefore: number;
  bearerOnly: boolean;
  consentRequired: boolean;
  standardFlowEnabled: boolean;
  implicitFlowEnabled: boolean;
  directAccessGrantsEnabled: boolean;
  serviceAccountsEnabled: boolean;
  publicClient: boolean;
  frontchannelLogout: boolean;
  protocol: string;
  attributes: Record<string, string>;
  authenticationFlowBindingOverrides: Record<string, string>;
  fullScopeAllowed: boolean;
  nodeReRegistrationTimeout: number;
  protocolMappers: ProtocolMapperRep[];
  /** attachments are stored by client-scope id (a rename follows - gloak p5a §1.6) */
  defaultClientScopeIds: string[];
  optionalClientScopeIds: string[];
  roles: KcRole[];
  serviceAccountUserId?: string;
  /** DCR bookkeeping: jti of the current registration access token and how the client was registered */
  registration?: { tokenId: string; auth: 'anonymous' | 'authenticated'; issuedAt: number };
}

export interface ComponentRep {
  id: string;
  name: string;
  providerId: string;
  providerType: string;
  parentId: string;
  subType?: string;
  /** MultivaluedHashMap: every value is an array of strings; empty lists are not stored */
  config: Record<string, string[]>;
}

export interface KcUser {
  id: string;
  username: string;
  password?: string;
  enabled: boolean;
  email?: string;
  emailVerified: boolean;
  firstName?: string;
  lastName?: string;
  createdTimestamp: number;
  realmRoles: string[];
  clientRoles: Record<string, string[]>;
  serviceAccountClientId?: string;
}

export interface KcSession {
  id: string;
  userId: string;
  clientId: string;
  started: number;
  lastRefresh: number;
}

export interface KcRealm {
  id: string;
  name: string;
  enabled: boolean;
  accessTokenLifespan: number;
  ssoSessionIdleTimeout: number;
  clients: Map<string, KcClient>;
  clientScopes: Map<string, ClientScope>;
  /** realm default client scopes by id, in insertion order (gloak p5a §1.2) */
  defaultDefaultClientScopes: string[];
  defaultOptionalClientScopes: string[];
  components: ComponentRep[];
  users: Map<string, KcUser>;
  realmRoles: KcRole[];
  sessions: Map<string, KcSession>;
  initialAccessTokens: Map<string, { id: string; timestamp: number; expiration: number; count: number; remainingCount: number }>;
}

export interface LoggedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  body: unknown;
  status?: number;
}

export interface KeycloakSim {
  url: string;
  close(): Promise<void>;
  realms: Map<string, KcRealm>;
  requests: LoggedRequest[];
  counters: { tokenRequests: number; adminRequests: number; registrationRequests: number };
  readonly tokenRequests: number;
  /** When set, Trusted Hosts sees this as the registration request's remote address. */
  remoteAddressOverride: string | undefined;
  realm(name: string): KcRealm;
  /** Client by clientId (not UUID). */
  client(realm: string, clientId: string): KcClient | undefined;
  clientScope(realm: string, name: string): ClientScope | undefined;
  /** The anonymous `trusted-hosts` client-registration policy component of a realm. */
  trustedHostsPolicy(realm: string): ComponentRep;
  /** Effective scope names attached to a client. */
  clientScopeNames(realm: string, clientId: string): { default: string[]; optional: string[] };
  addUser(realm: string, user: { username: string; password: string; realmRoles?: string[]; clientRoles?: Record<string, string[]>; email?: string }): KcUser;
  /** Grant client roles (e.g. realm-management manage-clients) to a client's service-account user. */
  grantServiceAccountRoles(realm: string, clientId: string, roles: Record<string, string[]>): void;
}

// ------------------------------------------------------------------------------------------------
// Constants
// ------------------------------------------------------------------------------------------------

const POLICY_TYPE = 'org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy';
// gloak observed "Admin roles on the master-realm client": 21 roles; composites view-clients, view-users
const ADMIN_ROLES = [
  'create-client', 'impersonation', 'manage-authorization', 'manage-clients', 'manage-events', 'manage-identity-providers',
  'manage-organizations', 'manage-realm', 'manage-users', 'query-clients', 'query-groups', 'query-organizations', 'query-realms',
  'query-users', 'view-authorization', 'view-clients', 'view-events', 'view-identity-providers', 'view-organizations', 'view-realm', 'view-users',
];
const ADMIN_ROLE_COMPOSITES: Record<string, string[]> = {
  'view-clients': ['query-clients'],
  'view-users': ['query-groups', 'query-users'],
  'view-organizations': ['query-organizations'],
};
// keycloak/keycloak@main:services/.../DefaultClientRegistrationPolicies.java DEFAULT_ALLOWED_PROTOCOL_MAPPERS
const DEFAULT_ALLOWED_MAPPERS = [
  'saml-user-attribute-mapper', 'oidc-usermodel-attribute-mapper', 'saml-user-property-mapper', 'oidc-usermodel-property-mapper',
  'oidc-full-name-mapper', 'oidc-address-mapper', 'oidc-sha256-pairwise-sub-mapper', 'saml-role-list-mapper',
];
// protocol mapper provider ids known to a default 26.x (subset of the 39 /admin/serverinfo lists)
const MAPPER_PROVIDERS = new Set([
  'oidc-acr-mapper', 'oidc-address-mapper', 'oidc-allowed-origins-mapper', 'oidc-amr-mapper', 'oidc-audience-mapper', 'oidc-audience-resolve-mapper',
  'oidc-claims-param-token-mapper', 'oidc-full-name-mapper', 'oidc-group-membership-mapper', 'oidc-hardcoded-claim-mapper', 'oidc-hardcoded-role-mapper',
  'oidc-nonce-backwards-compatible-mapper', 'oidc-organization-membership-mapper', 'oidc-role-name-mapper', 'oidc-sha256-pairwise-sub-mapper', 'oidc-sub-mapper',
  'oidc-usermodel-attribute-mapper', 'oidc-usermodel-client-role-mapper', 'oidc-usermodel-property-mapper', 'oidc-usermodel-realm-role-mapper',
  'oidc-usersessionmodel-note-mapper', 'oidc-user-session-note-idtoken-mapper', 'oidc-claims-param-value-idtoken-mapper', 'oidc-organization-group-membership-mapper',
  'saml-audience-mapper', 'saml-audience-resolve-mapper', 'saml-group-membership-mapper', 'saml-hardcode-attribute-mapper', 'saml-hardcode-role-mapper',
  'saml-organization-mapper', 'saml-role-list-mapper', 'saml-role-name-mapper', 'saml-user-attribute-mapper', 'saml-user-property-mapper',
  'saml-user-session-note-mapper', 'saml-user-attribute-nameid-mapper', 'saml-user-property-nameid-mapper', 'saml-authn-context-class-ref-mapper',
  'docker-v2-allow-all-mapper',
]);
// gloak p5b §1.4: mappers that mirror access.token.claim -> introspection.token.claim and id.token.claim -> userinfo.token.claim
const NO_USERINFO_MIRROR = new Set(['oidc-allowed-origins-mapper', 'oidc-audience-resolve-mapper']);
const NO_MIRROR = new Set(['oidc-nonce-backwards-compatible-mapper', 'oidc-organization-membership-mapper']);
// keycloak/keycloak@main:core/.../OIDCClientRepresentation.java fields (+ newer ones serialized in gloak p7 §1.3);
// the DCR endpoint rejects anything else (gloak p7 §1.7)
const OIDC_CLIENT_FIELDS = new Set([
  'redirect_uris', 'token_endpoint_auth_method', 'token_endpoint_auth_signing_alg', 'grant_types', 'response_types', 'application_type', 'client_id',
  'client_secret', 'client_name', 'client_uri', 'logo_uri', 'scope', 'contacts', 'tos_uri', 'policy_uri', 'jwks_uri', 'jwks', 'sector_identifier_uri',
  'subject_type', 'id_token_signed_response_alg', 'id_token_encrypted_response_alg', 'id_token_encrypted_response_enc', 'userinfo_signed_response_alg',
  'userinfo_encrypted_response_alg', 'userinfo_encrypted_response_enc', 'request_object_signing_alg', 'request_object_encryption_alg',
  'request_object_encryption_enc', 'default_max_age', 'require_auth_time', 'default_acr_values', 'initiate_login_uri', 'request_uris',
  'tls_client_certificate_bound_access_tokens', 'tls_client_auth_subject_dn', 'post_logout_redirect_uris', 'software_id', 'software_version',
  'client_id_issued_at', 'client_secret_expires_at', 'registration_client_uri', 'registration_access_token', 'backchannel_logout_uri',
  'backchannel_logout_session_required', 'backchannel_logout_revoke_offline_tokens', 'backchannel_token_delivery_mode',
  'backchannel_client_notification_endpoint', 'backchannel_authentication_request_signing_alg', 'require_pushed_authorization_requests',
  'frontchannel_logout_uri', 'frontchannel_logout_session_required', 'authorization_signed_response_alg', 'authorization_encrypted_response_alg',
  'authorization_encrypted_response_enc', 'dpop_bound_access_tokens', 'introspection_signed_response_alg', 'introspection_encrypted_response_alg',
  'introspection_encrypted_response_enc',
]);

const RFC_ERR = (error: string, error_description: string) => ({ error, error_description });

class HttpError extends Error {
  constructor(
    public status: number,
    public body: unknown,
  ) {
    super(typeof body === 'object' ? JSON.stringify(body) : String(body));
  }
}
// gloak observed "Admin API rejection shapes": bare `error` with prose
const E401 = () => new HttpError(401, { error: 'HTTP 401 Unauthorized' });
const E403 = () => new HttpError(403, { error: 'HTTP 403 Forbidden' });
const notFound = (msg: string) => new HttpError(404, { error: msg });

// ------------------------------------------------------------------------------------------------
// The simulator
// ------------------------------------------------------------------------------------------------

interface RealmKeys {
  sigKid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  sigJwk: JWK;
  encJwk: JWK;
  hmac: Uint8Array;
}

export async function startKeycloak(opts: KeycloakOptions = {}): Promise<KeycloakSim> {
  const realms = new Map<string, KcRealm>();
  const keys = new Map<string, RealmKeys>();
  const requests: LoggedRequest[] = [];
  const counters = { tokenRequests: 0, adminRequests: 0, registrationRequests: 0 };
  let url = '';
  const sim = { remoteAddressOverride: undefined as string | undefined };
  const release = opts.release ?? '26.8';

  const issuerOf = (realm: string) => `${url}/realms/${realm}`;
  const now = () => Math.floor(Date.now() / 1000);
  const genSecret = () => randomBytes(24).toString('base64url').slice(0, 32);

  // --------------------------------------------------------------------------------------------
  // Realm bootstrap (what a fresh 26.x creates)
  // --------------------------------------------------------------------------------------------
  function mapper(name: string, protocolMapper: string, config: Record<string, string>, protocol = 'openid-connect'): ProtocolMapperRep {
    return { id: randomUUID(), name, protocol, protocolMapper, consentRequired: false, config };
  }
  const at = { 'introspection.token.claim': 'true', 'access.token.claim': 'true' };
  const all = { 'introspection.token.claim': 'true', 'userinfo.token.claim': 'true', 'id.token.claim': 'true', 'access.token.claim': 'true' };
  const prop = (attr: string, claim: string, type = 'String') => ({ ...all, 'user.attribute': attr, 'claim.name': claim, 'jsonType.label': type });

  /** The fifteen realm client scopes (gloak p5a §1.2), with the mappers that shape the tokens here. */
  function bootstrapScopes(realm: KcRealm) {
    const add = (name: string, protocol: string, attributes: Record<string, string>, mappers: ProtocolMapperRep[], description?: string) => {
      const s: ClientScope = { id: randomUUID(), name, description, protocol, attributes, protocolMappers: mappers };
      realm.clientScopes.set(s.id, s);
      return s;
    };
    const consent = (inToken: boolean, text?: string) => ({
      'include.in.token.scope': String(inToken),
      'display.on.consent.screen': 'true',
      ...(text ? { 'consent.screen.text': text } : {}),
    });
    const s: Record<string, ClientScope> = {};
    s.role_list = add('role_list', 'saml', { 'consent.screen.text': '${samlRoleListScopeConsentText}', 'display.on.consent.screen': 'true' }, [mapper('role list', 'saml-role-list-mapper', { single: 'false', 'attribute.nameformat': 'Basic', 'attribute.name': 'Role' }, 'saml')], 'SAML role list');
    s.saml_organization = add('saml_organization', 'saml', { 'display.on.consent.screen': 'false' }, [mapper('organization', 'saml-organization-mapper', {}, 'saml')], 'Organization Membership');
    s.AuthnContextClassRef = add('AuthnContextClassRef', 'saml', { 'display.on.consent.screen': 'false' }, [], 'SAML AuthnContextClassRef');
    s.profile = add('profile', 'openid-connect', consent(true, '${profileScopeConsentText}'), [
      mapper('username', 'oidc-usermodel-property-mapper', prop('username', 'preferred_username')),
      mapper('full name', 'oidc-full-name-mapper', { 'id.token.claim': 'true', 'introspection.token.claim': 'true', 'access.token.claim': 'true', 'userinfo.token.claim': 'true' }),
      mapper('given name', 'oidc-usermodel-property-mapper', prop('firstName', 'given_name')),
      mapper('family name', 'oidc-usermodel-property-mapper', prop('lastName', 'family_name')),
    ], 'OpenID Connect built-in scope: profile');
    s.email = add('email', 'openid-connect', consent(true, '${emailScopeConsentText}'), [
      mapper('email', 'oidc-usermodel-property-mapper', prop('email', 'email')),
      mapper('email verified', 'oidc-usermodel-property-mapper', prop('emailVerified', 'email_verified', 'boolean')),
    ], 'OpenID Connect built-in scope: email');
    s.roles = add('roles', 'openid-connect', consent(false, '${rolesScopeConsentText}'), [
      mapper('realm roles', 'oidc-usermodel-realm-role-mapper', { 'user.attribute': 'foo', ...at, 'claim.name': 'realm_access.roles', 'jsonType.label': 'String', multivalued: 'true' }),
      mapper('client roles', 'oidc-usermodel-client-role-mapper', { 'user.attribute': 'foo', ...at, 'claim.name': 'resource_access.${client_id}.roles', 'jsonType.label': 'String', multivalued: 'true' }),
      mapper('audience resolve', 'oidc-audience-resolve-mapper', { ...at }),
    ], 'OpenID Connect scope for add user roles to the access token');
    s['web-origins'] = add('web-origins', 'openid-connect', { 'include.in.token.scope': 'false', 'display.on.consent.screen': 'false', 'consent.screen.text': '' }, [mapper('allowed web origins', 'oidc-allowed-origins-mapper', { ...at })], 'OpenID Connect scope for add allowed web origins to the access token');
    s.acr = add('acr', 'openid-connect', { 'include.in.token.scope': 'false', 'display.on.consent.screen': 'false' }, [mapper('acr loa level', 'oidc-acr-mapper', { 'id.token.claim': 'true', ...at })], 'OpenID Connect scope for add acr (authentication context class reference) to the token');
    s.basic = add('basic', 'openid-connect', { 'include.in.token.scope': 'false', 'display.on.consent.screen': 'false' }, [
      mapper('sub', 'oidc-sub-mapper', { ...at }),
      mapper('auth_time', 'oidc-usersessionmodel-note-mapper', { 'user.session.note': 'AUTH_TIME', ...all, 'claim.name': 'auth_time', 'jsonType.label': 'long' }),
    ], 'OpenID Connect scope for add all basic claims to the token');
    s.offline_access = add('offline_access', 'openid-connect', { 'consent.screen.text': '${offlineAccessScopeConsentText}', 'display.on.consent.screen': 'true' }, [], 'OpenID Connect built-in scope: offline_access');
    s.address = add('address', 'openid-connect', consent(true, '${addressScopeConsentText}'), [mapper('address', 'oidc-address-mapper', { 'user.attribute.formatted': 'formatted', ...all })], 'OpenID Connect built-in scope: address');
    s.phone = add('phone', 'openid-connect', consent(true, '${phoneScopeConsentText}'), [mapper('phone number', 'oidc-usermodel-attribute-mapper', prop('phoneNumber', 'phone_number'))], 'OpenID Connect built-in scope: phone');
    s['microprofile-jwt'] = add('microprofile-jwt', 'openid-connect', { 'include.in.token.scope': 'true', 'display.on.consent.screen': 'false' }, [mapper('upn', 'oidc-usermodel-property-mapper', prop('username', 'upn'))], 'Microprofile - JWT built-in scope');
    s.organization = add('organization', 'openid-connect', { 'include.in.token.scope': 'true', 'display.on.consent.screen': 'true', 'consent.screen.text': '${organizationScopeConsentText}' }, [mapper('organization', 'oidc-organization-membership-mapper', { ...at, 'id.token.claim': 'true' })], 'Additional claims about the organization a subject belongs to');
    s.service_account = add('service_account', 'openid-connect', { 'include.in.token.scope': 'false', 'display.on.consent.screen': 'false' }, [
      mapper('Client ID', 'oidc-usersessionmodel-note-mapper', { 'user.session.note': 'client_id', ...all, 'claim.name': 'client_id', 'jsonType.label': 'String' }),
      mapper('Client Host', 'oidc-usersessionmodel-note-mapper', { 'user.session.note': 'clientHost', ...all, 'claim.name': 'clientHost', 'jsonType.label': 'String' }),
      mapper('Client IP Address', 'oidc-usersessionmodel-note-mapper', { 'user.session.note': 'clientAddress', ...all, 'claim.name': 'clientAddress', 'jsonType.label': 'String' }),
    ], 'Specific scope for a client enabled for service accounts');
    // gloak p5a §1.2: default set (9) and optional set (5), in this order
    realm.defaultDefaultClientScopes = ['role_list', 'saml_organization', 'AuthnContextClassRef', 'profile', 'email', 'roles', 'web-origins', 'acr', 'basic'].map((n) => s[n]!.id);
    realm.defaultOptionalClientScopes = ['offline_access', 'address', 'phone', 'microprofile-jwt', 'organization'].map((n) => s[n]!.id);
  }

  function role(realm: KcRealm, name: string, clientRole: boolean, containerId: string, composites?: KcRole['composites'], description?: string): KcRole {
    return { id: randomUUID(), name, description: description ?? `\${role_${name}}`, composite: !!composites, clientRole, containerId, composites };
  }

  function newClient(realm: KcRealm, rep: Partial<KcClient> & { clientId: string }): KcClient {
    // gloak p5a §1.8: creation defaults of POST /clients with {"clientId":"x"}
    const c: KcClient = {
      id: rep.id ?? randomUUID(),
      clientId: rep.clientId,
      name: rep.name,
      description: rep.description,
      rootUrl: rep.rootUrl,
      adminUrl: rep.adminUrl,
      baseUrl: rep.baseUrl,
      surrogateAuthRequired: rep.surrogateAuthRequired ?? false,
      enabled: rep.enabled ?? true,
      alwaysDisplayInConsole: rep.alwaysDisplayInConsole ?? false,
      clientAuthenticatorType: rep.clientAuthenticatorType ?? 'client-secret',
      secret: rep.secret,
      redirectUris: rep.redirectUris ?? [],
      webOrigins: rep.webOrigins ?? [],
      notBefore: rep.notBefore ?? 0,
      bearerOnly: rep.bearerOnly ?? false,
      consentRequired: rep.consentRequired ?? false,
      standardFlowEnabled: rep.standardFlowEnabled ?? true,
      implicitFlowEnabled: rep.implicitFlowEnabled ?? false,
      directAccessGrantsEnabled: rep.directAccessGrantsEnabled ?? false,
      serviceAccountsEnabled: rep.serviceAccountsEnabled ?? false,
      publicClient: rep.publicClient ?? false,
      frontchannelLogout: rep.frontchannelLogout ?? true,
      protocol: rep.protocol ?? 'openid-connect',
      attributes: { realm_client: 'false', ...(rep.attributes ?? {}) },
      authenticationFlowBindingOverrides: rep.authenticationFlowBindingOverrides ?? {},
      fullScopeAllowed: rep.fullScopeAllowed ?? true,
      nodeReRegistrationTimeout: rep.nodeReRegistrationTimeout ?? -1,
      protocolMappers: rep.protocolMappers ?? [],
      defaultClientScopeIds: [],
      optionalClientScopeIds: [],
      roles: [],
    };
    if (!c.publicClient && c.clientAuthenticatorType === 'client-secret') {
      c.secret ??= genSecret();
      c.attributes['client.secret.creation.time'] ??= String(now());
    }
    realm.clients.set(c.id, c);
    return c;
  }

  /** Realm default scopes go to a new client unless it named either list (all-or-nothing, gloak p5a §1.7). */
  function attachScopes(realm: KcRealm, c: KcClient, defaultNames?: string[], optionalNames?: string[]) {
    const byName = (n: string) => [...realm.clientScopes.values()].find((s) => s.name === n);
    if (defaultNames === undefined && optionalNames === undefined) {
      // RepresentationToModel.createClient: realm defaults, filtered by the client's protocol
      c.defaultClientScopeIds = realm.defaultDefaultClientScopes.filter((id) => realm.clientScopes.get(id)?.protocol === c.protocol);
      c.optionalClientScopeIds = realm.defaultOptionalClientScopes.filter((id) => realm.clientScopes.get(id)?.protocol === c.protocol);
    } else {
      // keycloak/keycloak@main:model/.../RepresentationToModel.java "First remove all default/built in client
      // scopes", then add the named ones; unknown names are dropped in silence
      c.defaultClientScopeIds = (defaultNames ?? []).map(byName).filter((s) => s && s.protocol === c.protocol).map((s) => s!.id);
      c.optionalClientScopeIds = (optionalNames ?? []).map(byName).filter((s) => s && s.protocol === c.protocol).map((s) => s!.id);
    }
  }

  function ensureServiceAccount(realm: KcRealm, c: KcClient) {
    if (!c.serviceAccountsEnabled || c.serviceAccountUserId) return;
    // service-account-<clientId>, with the realm's default roles; KC 26 attaches the service_account scope
    const u = addUserInternal(realm, { username: `service-account-${c.clientId}`.toLowerCase(), realmRoles: [`default-roles-${realm.name}`] });
    u.serviceAccountClientId = c.clientId;
    c.serviceAccountUserId = u.id;
    const sa = [...realm.clientScopes.values()].find((s) => s.name === 'service_account');
    if (sa && !c.defaultClientScopeIds.includes(sa.id)) c.defaultClientScopeIds.push(sa.id);
  }

  function addUserInternal(realm: KcRealm, u: { username: string; password?: string; realmRoles?: string[]; clientRoles?: Record<string, string[]>; email?: string }): KcUser {
    const user: KcUser = {
      id: randomUUID(),
      username: u.username.toLowerCase(),
      password: u.password,
      enabled: true,
      email: u.email,
      emailVerified: false,
      createdTimestamp: Date.now(),
      realmRoles: u.realmRoles ?? [`default-roles-${realm.name}`],
      clientRoles: u.clientRoles ?? {},
    };
    realm.users.set(user.id, user);
    return user;
  }

  async function createRealm(name: string, lifespan: number): Promise<KcRealm> {
    const realm: KcRealm = {
      id: randomUUID(),
      name,
      enabled: true,
      accessTokenLifespan: lifespan,
      ssoSessionIdleTimeout: 1800,
      clients: new Map(),
      clientScopes: new Map(),
      defaultDefaultClientScopes: [],
      defaultOptionalClientScopes: [],
      components: [],
      users: new Map(),
      realmRoles: [],
      sessions: new Map(),
      initialAccessTokens: new Map(),
    };
    realms.set(name, realm);
    const { privateKey, publicKey, kid: sigKid, jwk: sigJwk } = await rsaKey();
    const enc = await pooledKeyPair('RSA-OAEP');
    const encPub = await exportJWK(enc.publicKey);
    // gloak observed "Certificate endpoint": an RS256/sig key and an RSA-OAEP/enc key; key order is
    // not stable across starts - the enc key is listed first here so clients must select by kid/use
    keys.set(name, {
      sigKid,
      privateKey,
      publicKey,
      sigJwk,
      encJwk: { kid: await calculateJwkThumbprint(encPub), kty: 'RSA', alg: 'RSA-OAEP', use: 'enc', n: encPub.n, e: encPub.e },
      hmac: randomBytes(64), // refresh tokens are HS512 (gloak observed "Token signing")
    });
    bootstrapScopes(realm);

    // realm roles (gloak observed "Bootstrap of the master realm")
    const accountRoles = ['view-profile', 'manage-account'];
    realm.realmRoles.push(
      role(realm, 'offline_access', false, realm.id),
      role(realm, 'uma_authorization', false, realm.id),
      role(realm, `default-roles-${name}`, false, realm.id, { realm: ['offline_access', 'uma_authorization'], client: { account: accountRoles } }),
    );
    // built-in clients (gloak observed table)
    const account = newClient(realm, { clientId: 'account', name: '${client_account}', publicClient: true, baseUrl: `/realms/${name}/account/`, redirectUris: [`/realms/${name}/account/*`] });
    account.roles = ['view-profile', 'manage-account', 'manage-account-links', 'view-applications', 'view-consent', 'manage-consent', 'view-groups', 'delete-account'].map((r) => role(realm, r, true, account.id));
    newClient(realm, { clientId: 'account-console', name: '${client_account-console}', publicClient: true, baseUrl: `/realms/${name}/account/`, redirectUris: [`/realms/${name}/account/*`] });
    // admin-cli: public, direct grants only, lightweight access tokens (gloak observed "Lightweight access tokens")
    newClient(realm, { clientId: 'admin-cli', name: '${client_admin-cli}', publicClient: true, standardFlowEnabled: false, directAccessGrantsEnabled: true, attributes: { 'client.use.lightweight.access.token.enabled': 'true' } });
    newClient(realm, { clientId: 'broker', name: '${client_broker}', bearerOnly: true });
    newClient(realm, { clientId: 'security-admin-console', name: '${client_security-admin-console}', publicClient: true, baseUrl: `/admin/${name}/console/`, redirectUris: [`/admin/${name}/console/*`] });
    for (const c of realm.clients.values()) attachScopes(realm, c);

    if (name === 'master') {
      realm.realmRoles.push(role(realm, 'create-realm', false, realm.id));
      realm.realmRoles.push(role(realm, 'admin', false, realm.id, { realm: ['create-realm'], client: {} }, '${role_admin}'));
    } else {
      // realm-management carries the admin roles of a non-master realm, realm-admin is composite over all
      const rm = newClient(realm, { clientId: 'realm-management', name: '${client_realm-management}', bearerOnly: true });
      attachScopes(realm, rm);
      rm.roles = ADMIN_ROLES.map((r) => role(realm, r, true, rm.id, ADMIN_ROLE_COMPOSITES[r] ? { client: { 'realm-management': ADMIN_ROLE_COMPOSITES[r]! } } : undefined));
      rm.roles.push(role(realm, 'realm-admin', true, rm.id, { client: { 'realm-management': [...ADMIN_ROLES] } }));
    }
    // the master realm holds one <realm>-realm client per realm with its admin roles; `admin` covers them
    const master = realms.get('master');
    if (master) {
      const holder = newClient(master, { clientId: `${name}-realm`, name: `${name} Realm`, bearerOnly: true });
      attachScopes(master, holder);
      holder.roles = ADMIN_ROLES.map((r) => role(master, r, true, holder.id, ADMIN_ROLE_COMPOSITES[r] ? { client: { [`${name}-realm`]: ADMIN_ROLE_COMPOSITES[r]! } } : undefined));
      const admin = master.realmRoles.find((r) => r.name === 'admin')!;
      admin.composites!.client![`${name}-realm`] = [...ADMIN_ROLES];
    }

    // keycloak/keycloak@main:services/.../policy/DefaultClientRegistrationPolicies.java addDefaultPolicies
    const policy = (cname: string, providerId: string, subType: string, config: Record<string, string[]>): ComponentRep => ({
      id: randomUUID(),
      name: cname,
      providerId,
      providerType: POLICY_TYPE,
      parentId: realm.id,
      subType,
      config,
    });
    realm.components.push(
      // "Not any trusted hosts by default": the empty trusted-hosts list is not stored, so it is absent
      policy('Trusted Hosts', 'trusted-hosts', 'anonymous', { 'host-sending-registration-request-must-match': ['true'], 'client-uris-must-match': ['true'] }),
      policy('Consent Required', 'consent-required', 'anonymous', {}),
      policy('Full Scope Disabled', 'scope', 'anonymous', {}),
      policy('Max Clients Limit', 'max-clients', 'anonymous', { 'max-clients': ['200'] }),
      policy('Allowed Protocol Mapper Types', 'allowed-protocol-mappers', 'anonymous', { 'allowed-protocol-mapper-types': [...DEFAULT_ALLOWED_MAPPERS] }),
      policy('Allowed Client Scopes', 'allowed-client-templates', 'anonymous', { 'allow-default-scopes': ['true'] }),
      policy('Allowed Protocol Mapper Types', 'allowed-protocol-mappers', 'authenticated', { 'allowed-protocol-mapper-types': [...DEFAULT_ALLOWED_MAPPERS] }),
      policy('Allowed Client Scopes', 'allowed-client-templates', 'authenticated', { 'allow-default-scopes': ['true'] }),
    );
    return realm;
  }

  const master = await createRealm('master', opts.masterTokenLifespan ?? 60);
  // the master realm's own admin-role holder (master-realm) is created here, after the realm exists
  {
    const holder = newClient(master, { clientId: 'master-realm', name: 'master Realm', bearerOnly: true });
    attachScopes(master, holder);
    holder.roles = ADMIN_ROLES.map((r) => role(master, r, true, holder.id, ADMIN_ROLE_COMPOSITES[r] ? { client: { 'master-realm': ADMIN_ROLE_COMPOSITES[r]! } } : undefined));
    master.realmRoles.find((r) => r.name === 'admin')!.composites!.client!['master-realm'] = [...ADMIN_ROLES];
  }
  // KC_BOOTSTRAP_ADMIN_USERNAME/PASSWORD: realm roles admin + default-roles-master, no client roles
  addUserInternal(master, { username: opts.adminUser ?? 'admin', password: opts.adminPassword ?? 'admin', realmRoles: ['admin', 'default-roles-master'] });
  for (const r of opts.realms ?? []) await createRealm(r, opts.realmTokenLifespan ?? 300);

  // --------------------------------------------------------------------------------------------
  // Roles
  // --------------------------------------------------------------------------------------------
  interface Effective {
    realm: Set<string>;
    client: Map<string, Set<string>>;
  }
  function effectiveRoles(realm: KcRealm, user: KcUser): Effective {
    const eff: Effective = { realm: new Set(), client: new Map() };
    const addClient = (clientId: string, name: string) => {
      const set = eff.client.get(clientId) ?? new Set<string>();
      if (set.has(name)) return;
      set.add(name);
      eff.client.set(clientId, set);
      const c = [...realm.clients.values()].find((x) => x.clientId === clientId);
      expand(c?.roles.find((r) => r.name === name));
    };
    const addRealm = (name: string) => {
      if (eff.realm.has(name)) return;
      eff.realm.add(name);
      expand(realm.realmRoles.find((r) => r.name === name));
    };
    const expand = (r?: KcRole) => {
      if (!r?.composites) return;
      for (const n of r.composites.realm ?? []) addRealm(n);
      for (const [cid, names] of Object.entries(r.composites.client ?? {})) for (const n of names) addClient(cid, n);
    };
    for (const n of user.realmRoles) addRealm(n);
    for (const [cid, names] of Object.entries(user.clientRoles)) for (const n of names) addClient(cid, n);
    return eff;
  }

  // --------------------------------------------------------------------------------------------
  // Tokens
  // --------------------------------------------------------------------------------------------
  const rolesKey = (r: string) => keys.get(r)!;
  async function signRs(realm: string, payload: Record<string, unknown>, typ = 'JWT') {
    const k = rolesKey(realm);
    return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: 'RS256', typ, kid: k.sigKid }).sign(k.privateKey);
  }
  async function signHs(realm: string, payload: Record<string, unknown>, typ = 'JWT') {
    return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: 'HS512', typ }).sign(rolesKey(realm).hmac);
  }
  /** Verify a token issued by `realm` (RS256 access/ID or HS512 refresh/registration tokens). */
  async function verify(realm: string, token: string, opts2: { checkExp?: boolean } = {}): Promise<Record<string, unknown> | undefined> {
    const k = keys.get(realm);
    if (!k) return undefined;
    try {
      const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { alg?: string };
      const key = header.alg === 'HS512' ? k.hmac : header.alg === 'RS256' ? k.publicKey : undefined;
      if (!key) return undefined;
      // signature only; expiry is checked here because initial/registration access tokens carry exp 0 = never
      const { payload } = await compactVerify(token, key);
      const claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
      if (claims.iss !== issuerOf(realm)) return undefined;
      if (opts2.checkExp !== false && typeof claims.exp === 'number' && claims.exp !== 0 && claims.exp < now()) return undefined;
      return claims;
    } catch {
      return undefined;
    }
  }

  function scopesById(realm: KcRealm, ids: string[]) {
    return ids.map((id) => realm.clientScopes.get(id)).filter((s): s is ClientScope => !!s);
  }

  /** Client scopes in effect: the client's default scopes + the requested optional ones (same protocol). */
  function resolveScopes(realm: KcRealm, c: KcClient, scopeParam: string): { scopes: ClientScope[]; invalid: string[] } {
    const requested = scopeParam.split(' ').filter(Boolean);
    const defaults = scopesById(realm, c.defaultClientScopeIds).filter((s) => s.protocol === c.protocol);
    const optionals = scopesById(realm, c.optionalClientScopeIds).filter((s) => s.protocol === c.protocol);
    const invalid: string[] = [];
    const chosen = [...defaults];
    for (const r of requested) {
      if (r === 'openid') continue;
      if (defaults.some((s) => s.name === r)) continue;
      const o = optionals.find((s) => s.name === r);
      if (o) chosen.push(o);
      else invalid.push(r);
    }
    return { scopes: chosen, invalid };
  }

  interface TokenContext {
    realm: KcRealm;
    client: KcClient;
    user: KcUser;
    session?: KcSession;
    scopes: ClientScope[];
    openid: boolean;
    notes: Record<string, string>;
  }

  /** Build the access token claims by running the protocol mappers (client's own + scopes'). */
  function accessTokenClaims(ctx: TokenContext, lightweight: boolean) {
    const { realm, client, user } = ctx;
    const iat = now();
    const claims: Record<string, unknown> = {
      exp: iat + realm.accessTokenLifespan,
      iat,
      jti: `onrtro:${randomUUID()}`, // gloak observed: access-token jti carries an instance prefix
      iss: issuerOf(realm.name),
    };
    const aud: string[] = [];
    const mappers = [...client.protocolMappers, ...ctx.scopes.flatMap((s) => s.protocolMappers)].filter((m) => m.protocol === 'openid-connect');
    const applies = (m: ProtocolMapperRep) => m.config['access.token.claim'] === 'true' && (!lightweight || m.config['lightweight.claim'] === 'true');
    const eff = effectiveRoles(realm, user);
    // fullScopeAllowed=false without scope mappings leaves no roles in the token (Full Scope Disabled policy)
    const scopedRealmRoles = client.fullScopeAllowed ? [...eff.realm] : [];
    const scopedClientRoles = client.fullScopeAllowed ? eff.client : new Map<string, Set<string>>();
    const body: Record<string, unknown> = {};
    for (const m of mappers) {
      if (!applies(m)) continue;
      const cfg = m.config;
      switch (m.protocolMapper) {
        case 'oidc-audience-mapper': {
          // keycloak/keycloak@main:services/.../mappers/AudienceProtocolMapper.java: the client audience wins,
          // the custom audience is only a fallback (docs/idp/keycloak.md "Audience")
          const v = cfg['included.client.audience'] ?? cfg['included.custom.audience'];
          if (v && v.trim() && !aud.includes(v)) aud.push(v);
          break;
        }
        case 'oidc-audience-resolve-mapper':
          // every client for which the token carries client roles, except the requesting client
          for (const [cid, roles] of scopedClientRoles) if (roles.size && cid !== client.clientId && !aud.includes(cid)) aud.push(cid);
          break;
        case 'oidc-usermodel-realm-role-mapper':
          if (scopedRealmRoles.length) body.realm_access = { roles: scopedRealmRoles };
          break;
        case 'oidc-usermodel-client-role-mapper': {
          const ra: Record<string, { roles: string[] }> = {};
          for (const [cid, roles] of scopedClientRoles) if (roles.size) ra[cid] = { roles: [...roles] };
          if (Object.keys(ra).length) body.resource_access = ra;
          break;
        }
        case 'oidc-allowed-origins-mapper': {
          const origins = client.webOrigins.flatMap((o) => (o === '+' ? client.redirectUris.filter((r) => /^https?:\/\//.test(r)).map((r) => new URL(r).origin) : [o]));
          if (origins.length) body['allowed-origins'] = [...new Set(origins)];
          break;
        }
        case 'oidc-acr-mapper':
          body.acr = '1';
          break;
        case 'oidc-sub-mapper':
          body.sub = user.id;
          break;
        case 'oidc-usermodel-property-mapper': {
          const attr = cfg['user.attribute'];
          const v = attr === 'username' ? user.username : attr === 'email' ? user.email : attr === 'emailVerified' ? user.emailVerified : attr === 'firstName' ? user.firstName : attr === 'lastName' ? user.lastName : undefined;
          if (v !== undefined && cfg['claim.name']) body[cfg['claim.name']] = v;
          break;
        }
        case 'oidc-full-name-mapper': {
          const full = [user.firstName, user.lastName].filter(Boolean).join(' ');
          if (full) body.name = full;
          break;
        }
        case 'oidc-usersessionmodel-note-mapper': {
          const v = ctx.notes[cfg['user.session.note'] ?? ''];
          if (v !== undefined && cfg['claim.name']) body[cfg['claim.name']] = cfg['jsonType.label'] === 'long' ? Number(v) : v;
          break;
        }
        case 'oidc-hardcoded-claim-mapper':
          if (cfg['claim.name']) body[cfg['claim.name']] = cfg['claim.value'];
          break;
        default:
          break;
      }
    }
    // aud is a String[] serialised as a single string when there is one value (StringOrArraySerializer)
    if (aud.length) claims.aud = aud.length === 1 ? aud[0] : aud;
    if (body.sub !== undefined) claims.sub = body.sub;
    claims.typ = 'Bearer';
    claims.azp = client.clientId;
    if (ctx.session) claims.sid = ctx.session.id;
    const rest = { ...body };
    delete rest.sub;
    Object.assign(claims, rest);
    const scopeNames = ctx.scopes.filter((s) => s.attributes['include.in.token.scope'] === 'true').map((s) => s.name);
    claims.scope = [...(ctx.openid ? ['openid'] : []), ...scopeNames].join(' ');
    return claims;
  }

  async function tokenResponse(ctx: TokenContext, withRefresh: boolean) {
    const { realm, client } = ctx;
    const lightweight = client.attributes['client.use.lightweight.access.token.enabled'] === 'true';
    const claims = accessTokenClaims(ctx, lightweight);
    const accessToken = await signRs(realm.name, claims);
    const out: Record<string, unknown> = { access_token: accessToken, expires_in: realm.accessTokenLifespan };
    if (withRefresh && ctx.session) {
      const iat = now();
      const refreshExp = Math.min(ctx.session.lastRefresh + realm.ssoSessionIdleTimeout, iat + realm.ssoSessionIdleTimeout);
      out.refresh_expires_in = refreshExp - iat;
      out.refresh_token = await signHs(realm.name, {
        exp: refreshExp,
        iat,
        jti: randomUUID(),
        iss: issuerOf(realm.name),
        aud: issuerOf(realm.name),
        sub: ctx.user.id,
        typ: 'Refresh',
        azp: client.clientId,
        sid: ctx.session.id,
        scope: [...(ctx.openid ? ['openid'] : []), ...ctx.scopes.map((s) => s.name)].join(' '),
      });
    } else {
      out.refresh_expires_in = 0;
    }
    out.token_type = 'Bearer';
    if (ctx.openid && ctx.session) {
      const iat = now();
      out.id_token = await signRs(realm.name, {
        exp: iat + realm.accessTokenLifespan,
        iat,
        auth_time: ctx.session.started,
        jti: randomUUID(),
        iss: issuerOf(realm.name),
        aud: client.clientId,
        sub: ctx.user.id,
        typ: 'ID',
        azp: client.clientId,
        sid: ctx.session.id,
        at_hash: createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url'),
        acr: '1',
        email_verified: ctx.user.emailVerified,
        preferred_username: ctx.user.username,
      });
    }
    out['not-before-policy'] = 0; // hyphens, not underscores (gloak observed "Token endpoint response")
    if (ctx.session) out.session_state = ctx.session.id;
    out.scope = claims.scope;
    return out;
  }

  /**
   * "Signed JWT" client authentication (private_key_jwt), `keycloak/keycloak@main:services/src/main/java/
   * org/keycloak/authentication/authenticators/client/{JWTClientAuthenticator,AbstractJWTClientValidator}.java`:
   * the client's `clientAuthenticatorType` must be `client-jwt`; its public keys come from the
   * `jwks.string` attribute when `use.jwks.string` is "true" (OIDCConfigAttributes; the admin console's
   * Keys tab "JWKS"), picked by the assertion's `kid` (PublicKeyStorageManager). Failures are 400
   * `invalid_client` with the validators' texts; exceptions get the prefix "Client authentication with
   * signed JWT failed: ". Assertion `aud` may be the realm issuer or its token endpoint; `jti` is single-use.
   */
  const usedJtis = new Set<string>();
  async function authenticateJwtClient(realm: KcRealm, form: Record<string, string>): Promise<KcClient> {
    const fail = (d: string) => new HttpError(400, RFC_ERR('invalid_client', d));
    const failed = (d: string) => fail(`Client authentication with signed JWT failed: ${d}`);
    if (form.client_assertion_type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      throw fail(`Parameter client_assertion_type has value '${form.client_assertion_type}' but expected is 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'`);
    }
    const assertion = form.client_assertion;
    if (!assertion) throw fail('client_assertion parameter missing');
    let claims: JWTPayload;
    let header: { alg?: string; kid?: string };
    try {
      claims = decodeJwt(assertion);
      header = decodeProtectedHeader(assertion) as typeof header;
    } catch (e) {
      throw failed((e as Error).message);
    }
    if (!claims.sub) throw fail('Token sub claim is required');
    if (form.client_id !== undefined && form.client_id !== claims.sub) throw fail('client_id parameter does not match sub claim');
    const c = [...realm.clients.values()].find((x) => x.clientId === claims.sub);
    if (!c || c.clientAuthenticatorType !== 'client-jwt') throw new HttpError(401, RFC_ERR('invalid_client', 'Invalid client or Invalid client credentials'));
    const expectedAlg = c.attributes['token.endpoint.auth.signing.alg'];
    if (!header.alg || (expectedAlg && expectedAlg !== header.alg)) throw fail('invalid signature algorithm');
    let jwks: { keys: JWK[] } | undefined;
    try {
      jwks = c.attributes['use.jwks.string'] === 'true' ? (JSON.parse(c.attributes['jwks.string'] ?? '') as { keys: JWK[] }) : undefined;
    } catch {
      jwks = undefined;
    }
    const candidates = (jwks?.keys ?? []).filter((k) => !header.kid || k.kid === header.kid);
    if (!candidates.length) throw fail('Unable to load public key');
    const issuer = issuerOf(realm.name);
    try {
      await jwtVerify(assertion, createLocalJWKSet({ keys: candidates }), { algorithms: [header.alg] });
    } catch {
      throw failed('Signature on JWT token failed validation');
    }
    const aud = Array.isArray(claims.aud) ? claims.aud : claims.aud ? [claims.aud] : [];
    if (!aud.some((a) => a === issuer || a === `${issuer}/protocol/openid-connect/token`)) throw fail('Invalid token audience');
    if (typeof claims.exp !== 'number' || claims.exp < now()) throw fail('Token is not active');
    if (!claims.jti) throw fail('Token reuse detected');
    if (usedJtis.has(claims.jti)) throw fail('Token reuse detected');
    usedJtis.add(claims.jti);
    return c;
  }

  /** Client authentication at the token endpoint (ClientIdAndSecretAuthenticator). */
  function authenticateClient(realm: KcRealm, req: IncomingMessage, form: Record<string, string>): KcClient {
    let clientId = form.client_id;
    let secret = form.client_secret;
    const auth = req.headers.authorization ?? '';
    if (/^basic /i.test(auth)) {
      const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) {
        clientId = decodeURIComponent(decoded.slice(0, i));
        secret = decodeURIComponent(decoded.slice(i + 1));
      }
    }
    // gloak observed "Error formats" shape 1: unknown client -> invalid_client, wrong secret -> unauthorized_client
    const c = clientId ? [...realm.clients.values()].find((x) => x.clientId === clientId) : undefined;
    if (!c || c.bearerOnly) throw new HttpError(401, RFC_ERR('invalid_client', 'Invalid client or Invalid client credentials'));
    if (!c.publicClient) {
      if (!secret) throw new HttpError(401, RFC_ERR('unauthorized_client', 'Client secret not provided in request'));
      if (secret !== c.secret) throw new HttpError(401, RFC_ERR('unauthorized_client', 'Invalid client or Invalid client credentials'));
    }
    return c;
  }

  async function handleToken(realm: KcRealm, req: IncomingMessage, form: Record<string, string>, res: ServerResponse) {
    counters.tokenRequests++;
    const grant = form.grant_type;
    if (!grant) throw new HttpError(400, RFC_ERR('invalid_request', 'Missing form parameter: grant_type'));
    const client = form.client_assertion !== undefined || form.client_assertion_type !== undefined ? await authenticateJwtClient(realm, form) : authenticateClient(realm, req, form);
    const clientHost = '127.0.0.1';
    if (grant === 'password') {
      if (!client.directAccessGrantsEnabled) throw new HttpError(400, RFC_ERR('unauthorized_client', 'Client not allowed for direct access grants'));
      const user = [...realm.users.values()].find((u) => u.username === (form.username ?? '').toLowerCase() && !u.serviceAccountClientId);
      // gloak observed (26.7.1): wrong password is 400 invalid_grant
      if (!user || !user.password || user.password !== form.password) throw new HttpError(400, RFC_ERR('invalid_grant', 'Invalid user credentials'));
      const { scopes, invalid } = resolveScopes(realm, client, form.scope ?? '');
      if (invalid.length) throw new HttpError(400, RFC_ERR('invalid_scope', `Invalid scopes: ${form.scope}`));
      const session: KcSession = { id: randomUUID(), userId: user.id, clientId: client.clientId, started: now(), lastRefresh: now() };
      realm.sessions.set(session.id, session);
      const openid = (form.scope ?? '').split(' ').includes('openid');
      return sendJson(res, 200, await tokenResponse({ realm, client, user, session, scopes, openid, notes: { AUTH_TIME: String(session.started) } }, true));
    }
    if (grant === 'client_credentials') {
      if (client.publicClient) throw new HttpError(401, RFC_ERR('unauthorized_client', 'Public client not allowed to retrieve service account'));
      if (!client.serviceAccountsEnabled) throw new HttpError(401, RFC_ERR('unauthorized_client', 'Client not enabled to retrieve service account'));
      ensureServiceAccount(realm, client);
      const user = realm.users.get(client.serviceAccountUserId!)!;
      const { scopes, invalid } = resolveScopes(realm, client, form.scope ?? '');
      if (invalid.length) throw new HttpError(400, RFC_ERR('invalid_scope', `Invalid scopes: ${form.scope}`));
      const openid = (form.scope ?? '').split(' ').includes('openid');
      // use.refresh.tokens.for.client.credentials.grant is off: no refresh token, no user session, no ID token
      return sendJson(res, 200, await tokenResponse({ realm, client, user, scopes, openid, notes: { client_id: client.clientId, clientHost, clientAddress: clientHost } }, false));
    }
    if (grant === 'refresh_token') {
      const claims = form.refresh_token ? await verify(realm.name, form.refresh_token, { checkExp: false }) : undefined;
      if (!claims || claims.typ !== 'Refresh') throw new HttpError(400, RFC_ERR('invalid_grant', 'Invalid refresh token'));
      if (typeof claims.exp === 'number' && claims.exp < now()) throw new HttpError(400, RFC_ERR('invalid_grant', 'Token is not active'));
      if (claims.azp !== client.clientId) throw new HttpError(400, RFC_ERR('invalid_grant', 'Invalid refresh token. Token client and authorized client don\'t match'));
      const session = realm.sessions.get(String(claims.sid));
      if (!session || session.lastRefresh + realm.ssoSessionIdleTimeout < now()) throw new HttpError(400, RFC_ERR('invalid_grant', 'Session not active'));
      session.lastRefresh = now();
      const user = realm.users.get(session.userId)!;
      const names = String(claims.scope ?? '').split(' ');
      const { scopes } = resolveScopes(realm, client, names.filter((n) => scopesById(realm, client.optionalClientScopeIds).some((s) => s.name === n)).join(' '));
      return sendJson(res, 200, await tokenResponse({ realm, client, user, session, scopes, openid: names.includes('openid'), notes: { AUTH_TIME: String(session.started) } }, true));
    }
    throw new HttpError(400, RFC_ERR('unsupported_grant_type', 'Unsupported grant_type'));
  }

  // --------------------------------------------------------------------------------------------
  // Admin authentication and authorization
  // --------------------------------------------------------------------------------------------
  interface Caller {
    realm: KcRealm;
    user: KcUser;
    roles: Effective;
  }
  async function adminCaller(req: IncomingMessage): Promise<Caller> {
    const auth = req.headers.authorization ?? '';
    if (!/^bearer /i.test(auth)) throw E401();
    const token = auth.slice(7).trim();
    let iss: unknown;
    try {
      iss = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')).iss;
    } catch {
      throw E401();
    }
    const realmName = typeof iss === 'string' && iss.startsWith(`${url}/realms/`) ? iss.slice(`${url}/realms/`.length) : '';
    const realm = realms.get(realmName);
    const claims = realm ? await verify(realmName, token) : undefined;
    if (!realm || !claims || claims.typ !== 'Bearer') throw E401();
    // admin-cli tokens are lightweight (no sub): roles are resolved server-side from the session (gloak observed)
    let user: KcUser | undefined;
    if (typeof claims.sid === 'string') {
      const s = realm.sessions.get(claims.sid);
      if (!s || s.lastRefresh + realm.ssoSessionIdleTimeout < now()) throw E401();
      user = realm.users.get(s.userId);
    } else if (typeof claims.sub === 'string') {
      user = realm.users.get(claims.sub);
    }
    if (!user) throw E401();
    return { realm, user, roles: effectiveRoles(realm, user) };
  }
  /** RealmsAdminResource: a non-master token may administer its own realm only. */
  function holderOf(caller: Caller, target: KcRealm) {
    if (caller.realm.name === 'master') return `${target.name}-realm`;
    if (caller.realm.name !== target.name) throw E403();
    return 'realm-management';
  }
  function can(caller: Caller, target: KcRealm, ...roles: string[]) {
    const held = caller.roles.client.get(holderOf(caller, target)) ?? new Set();
    return roles.some((r) => held.has(r) || held.has('realm-admin'));
  }
  function requireRole(caller: Caller, target: KcRealm, ...roles: string[]) {
    if (!can(caller, target, ...roles)) throw E403();
  }
  const VIEW_CLIENTS = ['view-clients', 'manage-clients'];
  const MANAGE_CLIENTS = ['manage-clients'];
  const VIEW_REALM = ['view-realm', 'manage-realm'];
  const MANAGE_REALM = ['manage-realm'];

  // --------------------------------------------------------------------------------------------
  // Representations
  // --------------------------------------------------------------------------------------------
  function clientRep(realm: KcRealm, c: KcClient) {
    // ClientRepresentation as GET /clients answers it (gloak observed: 26 fields; name/rootUrl/baseUrl/description absent unless set;
    // `secret` follows publicClient - gloak AGENTS.md)
    const rep: Record<string, unknown> = { id: c.id, clientId: c.clientId };
    for (const k of ['name', 'description', 'rootUrl', 'adminUrl', 'baseUrl'] as const) if (c[k] !== undefined) rep[k] = c[k];
    Object.assign(rep, {
      surrogateAuthRequired: c.surrogateAuthRequired,
      enabled: c.enabled,
      alwaysDisplayInConsole: c.alwaysDisplayInConsole,
      clientAuthenticatorType: c.clientAuthenticatorType,
    });
    if (!c.publicClient && c.secret) rep.secret = c.secret;
    Object.assign(rep, {
      redirectUris: c.redirectUris,
      webOrigins: c.webOrigins,
      notBefore: c.notBefore,
      bearerOnly: c.bearerOnly,
      consentRequired: c.consentRequired,
      standardFlowEnabled: c.standardFlowEnabled,
      implicitFlowEnabled: c.implicitFlowEnabled,
      directAccessGrantsEnabled: c.directAccessGrantsEnabled,
      serviceAccountsEnabled: c.serviceAccountsEnabled,
      publicClient: c.publicClient,
      frontchannelLogout: c.frontchannelLogout,
      protocol: c.protocol,
      attributes: c.attributes,
      authenticationFlowBindingOverrides: c.authenticationFlowBindingOverrides,
      fullScopeAllowed: c.fullScopeAllowed,
      nodeReRegistrationTimeout: c.nodeReRegistrationTimeout,
    });
    if (c.protocolMappers.length) rep.protocolMappers = c.protocolMappers; // absent when none (gloak p5b §1.11)
    rep.defaultClientScopes = scopesById(realm, c.defaultClientScopeIds).map((s) => s.name);
    rep.optionalClientScopes = scopesById(realm, c.optionalClientScopeIds).map((s) => s.name);
    rep.access = { view: true, configure: true, manage: true };
    return rep;
  }
  function scopeRep(s: ClientScope) {
    // gloak p5a §1.1: id, name, description (absent when unset), protocol, attributes, protocolMappers (absent when none)
    const rep: Record<string, unknown> = { id: s.id, name: s.name };
    if (s.description !== undefined) rep.description = s.description;
    rep.protocol = s.protocol;
    rep.attributes = s.attributes;
    if (s.protocolMappers.length) rep.protocolMappers = s.protocolMappers;
    return rep;
  }
  function userRep(u: KcUser) {
    return {
      id: u.id,
      username: u.username,
      ...(u.email ? { email: u.email } : {}),
      emailVerified: u.emailVerified,
      createdTimestamp: u.createdTimestamp,
      enabled: u.enabled,
      totp: false,
      disableableCredentialTypes: [],
      requiredActions: [],
      notBefore: 0,
      ...(u.serviceAccountClientId ? { serviceAccountClientId: u.serviceAccountClientId } : {}),
      access: { manage: true },
    };
  }
  const roleRep = (r: KcRole) => ({ id: r.id, name: r.name, description: r.description, composite: r.composite, clientRole: r.clientRole, containerId: r.containerId });

  /** Protocol mapper create normalisation (gloak p5b §1.4): empty values dropped, claims mirrored. */
  function normaliseMapper(m: Partial<ProtocolMapperRep>): ProtocolMapperRep {
    const cfg: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.config ?? {})) if (v !== '' && v !== null && v !== undefined) cfg[k] = String(v);
    const p = m.protocolMapper ?? '';
    if (p.startsWith('oidc-') && !NO_MIRROR.has(p)) {
      if (cfg['access.token.claim'] !== undefined && cfg['introspection.token.claim'] === undefined) cfg['introspection.token.claim'] = cfg['access.token.claim'];
      if (!NO_USERINFO_MIRROR.has(p) && cfg['id.token.claim'] !== undefined && cfg['userinfo.token.claim'] === undefined) cfg['userinfo.token.claim'] = cfg['id.token.claim'];
    }
    return { id: m.id ?? randomUUID(), name: m.name ?? '', protocol: m.protocol ?? 'openid-connect', protocolMapper: p, consentRequired: false, config: cfg };
  }
  /** POST .../protocol-mappers/models (ProtocolMappersResource). */
  function addMapper(list: ProtocolMapperRep[], body: unknown): ProtocolMapperRep {
    if (!body || typeof body !== 'object') throw new HttpError(500, RFC_ERR('unknown_error', 'For more on this error consult the server log.'));
    const m = body as Partial<ProtocolMapperRep>;
    if (!m.protocolMapper || !MAPPER_PROVIDERS.has(m.protocolMapper)) throw notFound('ProtocolMapper provider not found');
    // gloak p5b §1.5: absent name or protocol is a NOT NULL violation surfaced as 409 "Duplicate resource error"
    if (m.name === undefined || m.name === null || !m.protocol) throw new HttpError(409, RFC_ERR('conflict', 'Duplicate resource error'));
    if (list.some((x) => x.name === m.name && x.protocol === m.protocol)) throw new HttpError(409, { errorMessage: 'Protocol mapper exists with same name' });
    const created = normaliseMapper(m);
    list.push(created);
    return created;
  }

  // --------------------------------------------------------------------------------------------
  // Admin REST handlers
  // --------------------------------------------------------------------------------------------
  function created(res: ServerResponse, location: string, headers: Record<string, string> = {}) {
    // gloak observed "The admin API's create response": 201, absolute Location, no body, no Content-Type
    res.statusCode = 201;
    res.setHeader('Location', location);
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.end();
  }
  function noContent(res: ServerResponse) {
    res.statusCode = 204;
    res.end();
  }
  function sendAdmin(res: ServerResponse, status: number, body: unknown) {
    // gloak observed: admin 2xx bodies carry ;charset=UTF-8, errors plain application/json
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json;charset=UTF-8');
    res.end(JSON.stringify(body));
  }
  function asObject(body: unknown): Record<string, unknown> {
    // gloak observed "Error formats" shape 4
    if (body === undefined || typeof body === 'string') throw new HttpError(400, RFC_ERR('invalid_request', 'Cannot parse the JSON'));
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, RFC_ERR('unknown_error', 'Cannot parse the JSON'));
    return body as Record<string, unknown>;
  }
  function validUrl(s: unknown) {
    if (s === undefined || s === null || s === '') return true;
    try {
      new URL(String(s));
      return true;
    } catch {
      return false;
    }
  }

  function applyClientRep(realm: KcRealm, c: KcClient, b: Record<string, unknown>, isCreate: boolean) {
    // ValidationUtil / ClientValidation: invalid URLs -> 400 invalid_input (docs/idp/keycloak.md "Admin API calls")
    if (!validUrl(b.rootUrl)) throw new HttpError(400, RFC_ERR('invalid_input', 'Root URL is not a valid URL'));
    if (!validUrl(b.baseUrl) && !String(b.baseUrl).startsWith('/')) throw new HttpError(400, RFC_ERR('invalid_input', 'Base URL is not a valid URL'));
    const scalar = ['name', 'description', 'rootUrl', 'adminUrl', 'baseUrl', 'clientAuthenticatorType', 'protocol'] as const;
    for (const k of scalar) if (typeof b[k] === 'string') (c as unknown as Record<string, unknown>)[k] = b[k];
    const bools = ['surrogateAuthRequired', 'enabled', 'alwaysDisplayInConsole', 'bearerOnly', 'consentRequired', 'standardFlowEnabled', 'implicitFlowEnabled', 'directAccessGrantsEnabled', 'serviceAccountsEnabled', 'publicClient', 'frontchannelLogout', 'fullScopeAllowed'] as const;
    for (const k of bools) if (typeof b[k] === 'boolean') (c as unknown as Record<string, unknown>)[k] = b[k];
    if (Array.isArray(b.redirectUris)) c.redirectUris = b.redirectUris.map(String);
    if (Array.isArray(b.webOrigins)) c.webOrigins = b.webOrigins.map(String);
    if (typeof b.secret === 'string') c.secret = b.secret;
    if (b.attributes && typeof b.attributes === 'object') for (const [k, v] of Object.entries(b.attributes)) c.attributes[k] = String(v); // attribute values are strings
    if (Array.isArray(b.protocolMappers)) {
      // POST and PUT /clients keep/replace mappers without checking the provider (gloak p5b §1.11)
      const list: ProtocolMapperRep[] = [];
      for (const m of b.protocolMappers as Array<Partial<ProtocolMapperRep>>) {
        if (list.some((x) => x.name === m.name && x.protocol === (m.protocol ?? 'openid-connect'))) {
          throw new HttpError(400, RFC_ERR('invalid_input', `Cannot add protocol mapper '${m.name}'. Protocol mapper name must be unique per protocol`));
        }
        list.push(normaliseMapper(m));
      }
      c.protocolMappers = list;
    }
    if (!c.publicClient && c.clientAuthenticatorType === 'client-secret' && !c.secret) {
      c.secret = genSecret();
      c.attributes['client.secret.creation.time'] = String(now());
    }
    if (isCreate) attachScopes(realm, c, b.defaultClientScopes as string[] | undefined ?? undefined, b.optionalClientScopes as string[] | undefined ?? undefined);
    ensureServiceAccount(realm, c);
  }

  async function handleAdmin(req: IncomingMessage, segs: string[], query: Record<string, string>, body: unknown, res: ServerResponse) {
    counters.adminRequests++;
    const method = req.method ?? 'GET';
    const caller = await adminCaller(req); // authentication happens before the realm is resolved
    // /admin/realms
    if (segs.length === 0) {
      if (method === 'GET') {
        const visible = [...realms.values()].filter((r) => caller.realm.name === 'master' ? can(caller, r, 'view-realm', 'manage-realm', 'query-realms') : r.name === caller.realm.name);
        return sendAdmin(res, 200, visible.map((r) => ({ id: r.id, realm: r.name, enabled: r.enabled })));
      }
      if (method === 'POST') {
        if (caller.realm.name !== 'master' || !caller.roles.realm.has('create-realm')) throw E403();
        const b = asObject(body);
        const name = String(b.realm ?? '');
        if (realms.has(name)) throw new HttpError(409, { errorMessage: 'Conflict detected. See logs for details' }); // UNVERIFIED text
        await createRealm(name, typeof b.accessTokenLifespan === 'number' ? b.accessTokenLifespan : 300);
        return created(res, `${url}/admin/realms/${encodeURIComponent(name)}`);
      }
      throw notFound('HTTP 404 Not Found');
    }
    const realm = realms.get(segs[0]!);
    if (!realm) throw notFound('Realm not found.'); // trailing period on the admin API (gloak observed)
    holderOf(caller, realm);
    const [, section, id, sub, subId, sub2, sub2Id] = segs;

    if (section === undefined) {
      if (method !== 'GET') throw notFound('HTTP 404 Not Found');
      requireRole(caller, realm, ...VIEW_REALM);
      return sendAdmin(res, 200, { id: realm.id, realm: realm.name, enabled: realm.enabled, accessTokenLifespan: realm.accessTokenLifespan, ssoSessionIdleTimeout: realm.ssoSessionIdleTimeout });
    }

    // ---- clients --------------------------------------------------------------------------------
    if (section === 'clients') {
      if (id === undefined) {
        if (method === 'GET') {
          requireRole(caller, realm, ...VIEW_CLIENTS, 'query-clients');
          let list = [...realm.clients.values()];
          if (query.clientId !== undefined) {
            const search = query.search === 'true';
            list = list.filter((c) => (search ? c.clientId.toLowerCase().includes(query.clientId!.toLowerCase()) : c.clientId === query.clientId));
          }
          const first = Number(query.first ?? 0);
          const max = query.max !== undefined ? Number(query.max) : list.length;
          return sendAdmin(res, 200, list.slice(first, first + max).map((c) => clientRep(realm, c)));
        }
        if (method === 'POST') {
          requireRole(caller, realm, ...MANAGE_CLIENTS, 'create-client');
          const b = asObject(body);
          const clientId = typeof b.clientId === 'string' ? b.clientId : '';
          // keycloak/keycloak@main:services/.../admin/ClientsResource.java createClient -> ErrorResponse.exists
          if ([...realm.clients.values()].some((c) => c.clientId === clientId)) throw new HttpError(409, { errorMessage: `Client ${clientId} already exists` });
          const c = newClient(realm, { clientId, id: typeof b.id === 'string' ? b.id : undefined, publicClient: b.publicClient === true, clientAuthenticatorType: typeof b.clientAuthenticatorType === 'string' ? b.clientAuthenticatorType : undefined, secret: typeof b.secret === 'string' ? b.secret : undefined });
          try {
            applyClientRep(realm, c, b, true);
          } catch (e) {
            realm.clients.delete(c.id);
            throw e;
          }
          return created(res, `${url}/admin/realms/${realm.name}/clients/${c.id}`);
        }
        throw notFound('HTTP 404 Not Found');
      }
      const c = realm.clients.get(id);
      if (!can(caller, realm, ...VIEW_CLIENTS, 'query-clients')) throw E403();
      if (!c) throw notFound('Could not find client');
      if (sub === undefined) {
        if (method === 'GET') {
          requireRole(caller, realm, ...VIEW_CLIENTS);
          return sendAdmin(res, 200, clientRep(realm, c));
        }
        if (method === 'PUT') {
          requireRole(caller, realm, ...MANAGE_CLIENTS);
          const b = asObject(body);
          if (typeof b.clientId === 'string' && b.clientId !== c.clientId && [...realm.clients.values()].some((x) => x.clientId === b.clientId)) {
            throw new HttpError(409, { errorMessage: `Client ${b.clientId} already exists` });
          }
          if (typeof b.clientId === 'string') c.clientId = b.clientId;
          // PUT merges; the two client-scope lists are ignored (gloak p5a §1.7)
          applyClientRep(realm, c, b, false);
          return noContent(res);
        }
        if (method === 'DELETE') {
          requireRole(caller, realm, ...MANAGE_CLIENTS);
          realm.clients.delete(c.id);
          if (c.serviceAccountUserId) realm.users.delete(c.serviceAccountUserId);
          return noContent(res);
        }
        throw notFound('HTTP 404 Not Found');
      }
      if (sub === 'client-secret' && subId === undefined) {
        if (method === 'GET') {
          requireRole(caller, realm, ...VIEW_CLIENTS);
          // a client without a secret answers 200 with no `value` (gloak AGENTS.md)
          return sendAdmin(res, 200, c.secret && !c.publicClient ? { type: 'secret', value: c.secret } : { type: 'secret' });
        }
        if (method === 'POST') {
          requireRole(caller, realm, ...MANAGE_CLIENTS);
          c.secret = genSecret();
          c.attributes['client.secret.creation.time'] = String(now());
          return sendAdmin(res, 200, { type: 'secret', value: c.secret });
        }
      }
      if (sub === 'protocol-mappers' && subId === 'models') {
        if (sub2 === undefined && method === 'GET') {
          requireRole(caller, realm, ...VIEW_CLIENTS);
          return sendAdmin(res, 200, c.protocolMappers);
        }
        if (sub2 === undefined && method === 'POST') {
          requireRole(caller, realm, ...MANAGE_CLIENTS);
          const m = addMapper(c.protocolMappers, body);
          return created(res, `${url}/admin/realms/${realm.name}/clients/${c.id}/protocol-mappers/models/${m.id}`, { 'Cache-Control': 'no-cache' });
        }
        if (sub2 !== undefined) return mapperItem(c.protocolMappers, sub2, method, body, res, () => requireRole(caller, realm, ...VIEW_CLIENTS), () => requireRole(caller, realm, ...MANAGE_CLIENTS));
      }
      if ((sub === 'default-client-scopes' || sub === 'optional-client-scopes') && sub2 === undefined) {
        const list = sub === 'default-client-scopes' ? 'defaultClientScopeIds' : 'optionalClientScopeIds';
        if (subId === undefined && method === 'GET') {
          requireRole(caller, realm, ...VIEW_CLIENTS);
          return sendAdmin(res, 200, scopesById(realm, c[list]).map((s) => ({ id: s.id, name: s.name }))); // id, name only (gloak p5a §1.1)
        }
        if (subId !== undefined && (method === 'PUT' || method === 'DELETE')) {
          requireRole(caller, realm, ...MANAGE_CLIENTS);
          const s = realm.clientScopes.get(subId);
          if (!s) throw notFound('Client scope not found');
          if (method === 'PUT') {
            // 204 and silent when already attached in either list or of another protocol (gloak p5a §1.6)
            if (!c.defaultClientScopeIds.includes(s.id) && !c.optionalClientScopeIds.includes(s.id) && s.protocol === c.protocol) c[list].push(s.id);
          } else {
            c.defaultClientScopeIds = c.defaultClientScopeIds.filter((x) => x !== s.id); // DELETE ignores which list it names
            c.optionalClientScopeIds = c.optionalClientScopeIds.filter((x) => x !== s.id);
          }
          return noContent(res);
        }
      }
      if (sub === 'roles' && subId === undefined && method === 'GET') {
        requireRole(caller, realm, ...VIEW_CLIENTS);
        return sendAdmin(res, 200, c.roles.map(roleRep));
      }
      if (sub === 'service-account-user' && subId === undefined && method === 'GET') {
        requireRole(caller, realm, ...VIEW_CLIENTS);
        if (!c.serviceAccountsEnabled || !c.serviceAccountUserId) throw new HttpError(400, RFC_ERR('unknown_error', 'Service account not enabled for the client'));
        return sendAdmin(res, 200, userRep(realm.users.get(c.serviceAccountUserId)!));
      }
      throw notFound('HTTP 404 Not Found');
    }

    // ---- users (role mappings only) -------------------------------------------------------------
    if (section === 'users') {
      if (id === undefined && method === 'GET') {
        requireRole(caller, realm, 'view-users', 'manage-users', 'query-users');
        let list = [...realm.users.values()].filter((u) => !u.serviceAccountClientId);
        if (query.username) list = list.filter((u) => (query.exact === 'true' ? u.username === query.username!.toLowerCase() : u.username.includes(query.username!.toLowerCase())));
        return sendAdmin(res, 200, list.map(userRep));
      }
      const u = id ? realm.users.get(id) : undefined;
      if (!u) throw notFound('User not found');
      if (sub === undefined && method === 'GET') {
        requireRole(caller, realm, 'view-users', 'manage-users');
        return sendAdmin(res, 200, userRep(u));
      }
      if (sub === 'role-mappings' && subId === 'clients' && sub2 !== undefined && sub2Id === undefined) {
        const target = realm.clients.get(sub2);
        if (!target) throw notFound('Client not found');
        if (method === 'GET') {
          requireRole(caller, realm, 'view-users', 'manage-users');
          return sendAdmin(res, 200, target.roles.filter((r) => (u.clientRoles[target.clientId] ?? []).includes(r.name)).map(roleRep));
        }
        if (method === 'POST' || method === 'DELETE') {
          requireRole(caller, realm, 'manage-users');
          if (!Array.isArray(body)) throw new HttpError(400, RFC_ERR('invalid_request', 'Cannot parse the JSON'));
          const names = new Set((u.clientRoles[target.clientId] ??= []));
          for (const r of body as Array<{ id?: string; name?: string }>) {
            const found = target.roles.find((x) => x.id === r.id || x.name === r.name);
            if (!found) throw notFound('Role not found');
            if (method === 'POST') names.add(found.name);
            else names.delete(found.name);
          }
          u.clientRoles[target.clientId] = [...names];
          return noContent(res);
        }
      }
      throw notFound('HTTP 404 Not Found');
    }

    // ---- client scopes --------------------------------------------------------------------------
    if (section === 'client-scopes' || section === 'client-templates') {
      // gloak p5a §1.10: the clients role family guards client scopes
      if (id === undefined) {
        if (method === 'GET') {
          if (!can(caller, realm, ...VIEW_CLIENTS, 'query-clients')) throw E403();
          return sendAdmin(res, 200, can(caller, realm, ...VIEW_CLIENTS) ? [...realm.clientScopes.values()].map(scopeRep) : []);
        }
        if (method === 'POST') {
          requireRole(caller, realm, ...MANAGE_CLIENTS);
          const b = asObject(body);
          // gloak p5a §1.3 status table
          if (b.name === undefined || b.name === null) throw new HttpError(500, RFC_ERR('unknown_error', 'For more on this error consult the server log.'));
          if (b.protocol !== 'openid-connect' && b.protocol !== 'saml') throw new HttpError(400, { errorMessage: 'Unexpected protocol' });
          const name = String(b.name);
          if (name === '') throw new HttpError(400, { errorMessage: 'Unexpected name "" for ClientScope' });
          // keycloak/keycloak@main:services/.../admin/ClientScopesResource.java -> ErrorResponse.exists
          if ([...realm.clientScopes.values()].some((s) => s.name === name)) throw new HttpError(409, { errorMessage: `Client Scope ${name} already exists` });
          const s: ClientScope = {
            id: typeof b.id === 'string' ? b.id : randomUUID(),
            name,
            description: typeof b.description === 'string' ? b.description : undefined,
            protocol: String(b.protocol),
            attributes: Object.fromEntries(Object.entries((b.attributes as Record<string, unknown>) ?? {}).map(([k2, v]) => [k2, String(v)])),
            protocolMappers: Array.isArray(b.protocolMappers) ? (b.protocolMappers as Array<Partial<ProtocolMapperRep>>).map(normaliseMapper) : [],
          };
          realm.clientScopes.set(s.id, s);
          return created(res, `${url}/admin/realms/${realm.name}/${section}/${s.id}`, { 'Cache-Control': 'no-cache' });
        }
        throw notFound('HTTP 404 Not Found');
      }
      if (!can(caller, realm, ...VIEW_CLIENTS, 'query-clients')) throw E403();
      const s = realm.clientScopes.get(id);
      if (!s) throw notFound('Could not find client scope');
      if (sub === undefined) {
        if (method === 'GET') {
          requireRole(caller, realm, ...VIEW_CLIENTS);
          return sendAdmin(res, 200, scopeRep(s));
        }
        if (method === 'PUT') {
          requireRole(caller, realm, ...MANAGE_CLIENTS);
          const b = asObject(body);
          if (b.name === undefined) throw new HttpError(500, RFC_ERR('unknown_error', 'For more on this error consult the server log.'));
          const name = String(b.name);
          if (name !== s.name && [...realm.clientScopes.values()].some((x) => x.name === name)) throw new HttpError(409, { errorMessage: `Client Scope ${name} already exists` });
          // PUT merges and ignores protocolMappers (gloak p5a §1.3, p5b §1.11)
          s.name = name;
          if (typeof b.description === 'string') s.description = b.description;
          if (typeof b.protocol === 'string') s.protocol = b.protocol;
          if (b.attributes && typeof b.attributes === 'object') for (const [k2, v] of Object.entries(b.attributes)) s.attributes[k2] = String(v);
          return noContent(res);
        }
        if (method === 'DELETE') {
          requireRole(caller, realm, ...MANAGE_CLIENTS);
          realm.clientScopes.delete(s.id);
          // deleting a client scope cascades (gloak p5a §1.6)
          realm.defaultDefaultClientScopes = realm.defaultDefaultClientScopes.filter((x) => x !== s.id);
          realm.defaultOptionalClientScopes = realm.defaultOptionalClientScopes.filter((x) => x !== s.id);
          for (const c of realm.clients.values()) {
            c.defaultClientScopeIds = c.defaultClientScopeIds.filter((x) => x !== s.id);
            c.optionalClientScopeIds = c.optionalClientScopeIds.filter((x) => x !== s.id);
          }
          return noContent(res);
        }
        throw notFound('HTTP 404 Not Found');
      }
      if (sub === 'protocol-mappers' && subId === 'models') {
        if (sub2 === undefined && method === 'GET') {
          requireRole(caller, realm, ...VIEW_CLIENTS);
          return sendAdmin(res, 200, s.protocolMappers);
        }
        if (sub2 === undefined && method === 'POST') {
          requireRole(caller, realm, ...MANAGE_CLIENTS);
          const m = addMapper(s.protocolMappers, body);
          return created(res, `${url}/admin/realms/${realm.name}/${section}/${s.id}/protocol-mappers/models/${m.id}`, { 'Cache-Control': 'no-cache' });
        }
        if (sub2 !== undefined) return mapperItem(s.protocolMappers, sub2, method, body, res, () => requireRole(caller, realm, ...VIEW_CLIENTS), () => requireRole(caller, realm, ...MANAGE_CLIENTS));
      }
      throw notFound('HTTP 404 Not Found');
    }

    // ---- realm default client scopes ------------------------------------------------------------
    if (section === 'default-default-client-scopes' || section === 'default-optional-client-scopes') {
      const listKey = section === 'default-default-client-scopes' ? 'defaultDefaultClientScopes' : 'defaultOptionalClientScopes';
      if (id === undefined && method === 'GET') {
        requireRole(caller, realm, ...VIEW_CLIENTS);
        return sendAdmin(res, 200, scopesById(realm, realm[listKey]).map((s) => ({ id: s.id, name: s.name, protocol: s.protocol })));
      }
      if (id !== undefined && sub === undefined && (method === 'PUT' || method === 'DELETE')) {
        // guarded by manage-clients, not manage-realm (gloak p5a §1.10); role checked before the scope (§1.11)
        requireRole(caller, realm, ...MANAGE_CLIENTS);
        const s = realm.clientScopes.get(id);
        if (!s) throw notFound('Client scope not found');
        if (method === 'PUT') {
          // one row per scope with a flag: a second PUT, or a PUT into the other list, is a 409 (gloak p5a §1.5)
          if (realm.defaultDefaultClientScopes.includes(s.id) || realm.defaultOptionalClientScopes.includes(s.id)) {
            throw new HttpError(409, RFC_ERR('conflict', 'Duplicate resource error'));
          }
          realm[listKey].push(s.id);
        } else {
          realm.defaultDefaultClientScopes = realm.defaultDefaultClientScopes.filter((x) => x !== s.id);
          realm.defaultOptionalClientScopes = realm.defaultOptionalClientScopes.filter((x) => x !== s.id);
        }
        res.setHeader('Cache-Control', 'no-cache');
        return noContent(res);
      }
      throw notFound('HTTP 404 Not Found');
    }

    // ---- components -----------------------------------------------------------------------------
    if (section === 'components') {
      // ComponentResource: view-realm to read, manage-realm to write (docs/idp/keycloak.md)
      if (id === undefined) {
        if (method === 'GET') {
          requireRole(caller, realm, ...VIEW_REALM);
          const parent = query.parent ?? realm.id;
          let list = realm.components.filter((c) => c.parentId === parent);
          if (query.type) list = list.filter((c) => c.providerType === query.type);
          if (query.name) list = list.filter((c) => c.name === query.name);
          if (query.providerId) list = list.filter((c) => c.providerId === query.providerId);
          return sendAdmin(res, 200, list);
        }
        if (method === 'POST') {
          requireRole(caller, realm, ...MANAGE_REALM);
          const comp = toComponent(realm, asObject(body));
          realm.components.push(comp);
          return created(res, `${url}/admin/realms/${realm.name}/components/${comp.id}`);
        }
        throw notFound('HTTP 404 Not Found');
      }
      requireRole(caller, realm, ...VIEW_REALM);
      const idx = realm.components.findIndex((c) => c.id === id);
      if (idx < 0) throw notFound('Could not find component');
      if (method === 'GET') return sendAdmin(res, 200, realm.components[idx]);
      if (method === 'PUT') {
        requireRole(caller, realm, ...MANAGE_REALM);
        const next = toComponent(realm, { ...asObject(body), id }, realm.components[idx]);
        realm.components[idx] = next;
        return noContent(res);
      }
      if (method === 'DELETE') {
        requireRole(caller, realm, ...MANAGE_REALM);
        realm.components.splice(idx, 1);
        return noContent(res);
      }
      throw notFound('HTTP 404 Not Found');
    }

    // ---- initial access tokens ------------------------------------------------------------------
    if (section === 'clients-initial-access' && id === undefined && method === 'POST') {
      requireRole(caller, realm, ...MANAGE_CLIENTS, 'create-client');
      const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
      const expiration = Number(b.expiration ?? 0);
      const count = Number(b.count ?? 1);
      const iat = now();
      const rec = { id: randomUUID(), timestamp: iat, expiration, count, remainingCount: count };
      realm.initialAccessTokens.set(rec.id, rec);
      // gloak p7 §1.1: HS512 JWT, typ InitialAccessToken, jti = id
      const token = await signHs(realm.name, { exp: expiration ? iat + expiration : 0, iat, jti: rec.id, iss: issuerOf(realm.name), aud: issuerOf(realm.name), typ: 'InitialAccessToken' });
      return sendAdmin(res, 200, { ...rec, token });
    }
    throw new HttpError(404, { error: 'Unable to find matching target resource method' });
  }

  function mapperItem(list: ProtocolMapperRep[], mid: string, method: string, body: unknown, res: ServerResponse, view: () => void, manage: () => void) {
    const m = list.find((x) => x.id === mid);
    if (method === 'GET') {
      view();
      if (!m) throw notFound('Model not found');
      return sendAdmin(res, 200, m);
    }
    if (method === 'PUT') {
      manage();
      if (!m) throw notFound('Model not found');
      // gloak p5b §1.3: PUT writes protocolMapper and config only; config is replaced
      const b = asObject(body);
      const target = list.find((x) => x.id === b.id);
      if (!target) throw new HttpError(500, RFC_ERR('unknown_error', 'For more on this error consult the server log.'));
      const n = normaliseMapper({ ...target, protocolMapper: typeof b.protocolMapper === 'string' ? b.protocolMapper : target.protocolMapper, config: (b.config as Record<string, string>) ?? {} });
      target.protocolMapper = n.protocolMapper;
      target.config = n.config;
      return noContent(res);
    }
    if (method === 'DELETE') {
      manage();
      if (!m) throw notFound('Model not found');
      list.splice(list.indexOf(m), 1);
      return noContent(res);
    }
    throw notFound('HTTP 404 Not Found');
  }

  function toComponent(realm: KcRealm, b: Record<string, unknown>, existing?: ComponentRep): ComponentRep {
    const config: Record<string, string[]> = {};
    for (const [k2, v] of Object.entries((b.config as Record<string, unknown>) ?? {})) {
      if (!Array.isArray(v)) throw new HttpError(400, RFC_ERR('invalid_request', 'Cannot parse the JSON')); // MultivaluedHashMap<String,String>
      const vals = v.map(String);
      if (vals.length) config[k2] = vals; // an empty list is not stored, so it reads back absent
    }
    const comp: ComponentRep = {
      id: existing?.id ?? (typeof b.id === 'string' ? b.id : randomUUID()),
      name: typeof b.name === 'string' ? b.name : existing?.name ?? '',
      providerId: typeof b.providerId === 'string' ? b.providerId : existing?.providerId ?? '',
      providerType: typeof b.providerType === 'string' ? b.providerType : existing?.providerType ?? '',
      parentId: typeof b.parentId === 'string' ? b.parentId : existing?.parentId ?? realm.id,
      subType: typeof b.subType === 'string' ? b.subType : existing?.subType,
      config,
    };
    if (comp.providerType === POLICY_TYPE && comp.providerId === 'trusted-hosts') {
      // TrustedHostClientRegistrationPolicyFactory.validateConfiguration: both switches required, single and
      // boolean (ConfigurationValidationHelper.checkBoolean(property, true)); ComponentResource formats the
      // message with the property's label key when the admin messages have no text for it
      for (const k2 of ['host-sending-registration-request-must-match', 'client-uris-must-match']) {
        const label = `${k2}.label`;
        if ((config[k2]?.length ?? 0) > 1) throw new HttpError(400, { errorMessage: `'${label}' should be a single entry` });
        if (!config[k2]) throw new HttpError(400, { errorMessage: `'${label}' is required` });
        if (!['true', 'false'].includes(config[k2]![0]!)) throw new HttpError(400, { errorMessage: `'${label}' should be 'true' or 'false'` });
      }
      const flag = (k2: string) => (config[k2]?.[0] ?? 'true') !== 'false';
      if (!flag('host-sending-registration-request-must-match') && !flag('client-uris-must-match')) {
        throw new HttpError(400, { errorMessage: 'At least one of hosts verification or client URIs validation must be enabled' });
      }
    }
    return comp;
  }

  // --------------------------------------------------------------------------------------------
  // Client registration (DCR) - OIDCClientRegistrationProvider, ClientRegistrationAuth, policies
  // --------------------------------------------------------------------------------------------
  class PolicyError extends Error {}
  const policyReject = (componentName: string, detail: string) =>
    // ClientRegistrationPolicyException wrapped by ClientRegistrationAuth.forbidden (docs/idp/keycloak.md "Trusted Hosts")
    new HttpError(403, RFC_ERR('insufficient_scope', `Policy '${componentName}' rejected request to client-registration service. Details: ${detail}`));

  function remoteAddress(req: IncomingMessage) {
    const a = sim.remoteAddressOverride ?? req.socket.remoteAddress ?? '';
    return a.startsWith('::ffff:') ? a.slice(7) : a;
  }
  const isLoopback = (ip: string) => ip === '::1' || ip.startsWith('127.');
  /** InetAddress.getByName without DNS: IP literals and localhost only. */
  const resolveHost = (h: string) => (h === 'localhost' ? ['127.0.0.1', '::1'] : /^[\d.]+$|:/.test(h) ? [h] : []);
  const checkTrustedDomain = (hostname: string, trusted: string) =>
    trusted.startsWith('*.') ? hostname === trusted.slice(2) || hostname.endsWith('.' + trusted.slice(2)) : hostname === trusted;

  /** keycloak/keycloak@main:services/.../policy/impl/TrustedHostClientRegistrationPolicy.java */
  function trustedHosts(comp: ComponentRep, req: IncomingMessage, client: Record<string, unknown> | undefined) {
    const cfg = comp.config;
    const list = cfg['trusted-hosts'] ?? [];
    const hosts = list.filter((h) => !h.startsWith('*.'));
    const parse = (k2: string) => (cfg[k2]?.[0] ?? 'true') !== 'false'; // true by default
    if (parse('host-sending-registration-request-must-match')) {
      const ip = remoteAddress(req);
      let ok = hosts.some((h) => resolveHost(h).includes(ip));
      // verifyHostInTrustedDomains: a loopback address is treated as hostname "localhost"
      if (!ok && isLoopback(ip)) ok = list.some((d) => checkTrustedDomain('localhost', d));
      if (!ok) throw new PolicyError('Host not trusted.');
    }
    if (client && parse('client-uris-must-match')) {
      const hostTrusted = (host: string) => hosts.includes(host) || list.some((d) => checkTrustedDomain(host, d));
      const rootUrl = client.rootUrl as string | undefined;
      const rel = (r: string | undefined) => (r === undefined ? undefined : !r.startsWith('/') ? r : rootUrl ? rootUrl + r : undefined);
      for (const u of [rootUrl, rel(client.baseUrl as string | undefined), rel(client.adminUrl as string | undefined)]) {
        if (u === undefined) continue;
        let host: string;
        try {
          host = new URL(u).hostname;
        } catch {
          throw new PolicyError('URL is malformed');
        }
        if (!hostTrusted(host)) throw new PolicyError("URL doesn't match any trusted host or trusted domain");
      }
      for (const r of (client.redirectUris as string[] | undefined) ?? []) {
        const abs = r.startsWith('/') && rootUrl ? rootUrl + r : r;
        let host: string;
        try {
          host = new URL(abs).hostname.replace(/^\[|\]$/g, '');
        } catch {
          throw new PolicyError('URI is malformed');
        }
        if (!hostTrusted(host)) throw new PolicyError("URI doesn't match any trusted host or trusted domain");
      }
    }
  }

  type RegAuth = 'anonymous' | 'authenticated';
  /** ClientRegistrationPolicyManager.triggerBeforeRegister / Update / View / Remove. */
  function runPolicies(realm: KcRealm, auth: RegAuth, phase: 'register' | 'update' | 'view' | 'delete', req: IncomingMessage, client?: Record<string, unknown>, existing?: KcClient) {
    for (const comp of realm.components.filter((c) => c.providerType === POLICY_TYPE && c.subType === auth && c.parentId === realm.id)) {
      try {
        switch (comp.providerId) {
          case 'trusted-hosts':
            trustedHosts(comp, req, phase === 'register' || phase === 'update' ? client : undefined);
            break;
          case 'max-clients':
            if (phase === 'register' && realm.clients.size >= Number(comp.config['max-clients']?.[0] ?? 200)) {
              throw new PolicyError(`It's allowed to have max ${comp.config['max-clients']?.[0] ?? 200} clients per realm`);
            }
            break;
          case 'allowed-client-templates': {
            if (phase !== 'register' && phase !== 'update') break;
            // keycloak/keycloak@main:.../ClientScopesClientRegistrationPolicy.java
            const allowDefault = (comp.config['allow-default-scopes']?.[0] ?? 'true') !== 'false';
            const allowed = [...(comp.config['allowed-client-scopes'] ?? [])];
            if (allowDefault) {
              allowed.push(...scopesById(realm, realm.defaultDefaultClientScopes).map((s) => s.name));
              allowed.push(...scopesById(realm, realm.defaultOptionalClientScopes).map((s) => s.name));
            }
            let requested = [...((client?.defaultClientScopes as string[]) ?? []), ...((client?.optionalClientScopes as string[]) ?? [])];
            if (existing) {
              const have = [...scopesById(realm, existing.defaultClientScopeIds), ...scopesById(realm, existing.optionalClientScopeIds)].map((s) => s.name);
              requested = requested.filter((n) => !have.includes(n));
            }
            if (requested.some((n) => !allowed.includes(n))) throw new PolicyError('Not permitted to use specified clientScope');
            break;
          }
          case 'allowed-protocol-mappers': {
            const allowedTypes = comp.config['allowed-protocol-mapper-types'] ?? [];
            for (const m of (client?.protocolMappers as ProtocolMapperRep[] | undefined) ?? []) {
              if (!allowedTypes.includes(m.protocolMapper)) throw new PolicyError(`ProtocolMapper type not allowed`);
            }
            break;
          }
          default:
            break; // consent-required and scope only change the client (applied at creation)
        }
      } catch (e) {
        if (e instanceof PolicyError) throw policyReject(comp.name, e.message);
        throw e;
      }
    }
  }

  /** DescriptionConverter.toInternal (keycloak/keycloak@main:services/.../oidc/DescriptionConverter.java). */
  function toInternal(o: Record<string, unknown>) {
    const responseTypes = (o.response_types as string[] | undefined)?.length ? (o.response_types as string[]) : ['code'];
    const grantTypes = o.grant_types as string[] | undefined;
    const method = o.token_endpoint_auth_method as string | undefined;
    // gloak p7 §1.5: private_key_jwt, self_signed_tls_client_auth, unknown and "" are refused
    const methods: Record<string, string> = { client_secret_basic: 'client-secret', client_secret_post: 'client-secret', client_secret_jwt: 'client-secret-jwt', tls_client_auth: 'client-x509', none: 'none' };
    if (method !== undefined && !(method in methods)) throw new HttpError(400, RFC_ERR('invalid_client_metadata', 'Client metadata invalid'));
    const rep: Record<string, unknown> = {
      name: o.client_name,
      redirectUris: o.redirect_uris ?? [],
      baseUrl: o.client_uri,
      protocol: 'openid-connect',
      standardFlowEnabled: responseTypes.includes('code'),
      implicitFlowEnabled: responseTypes.some((r) => r.includes('token')),
      publicClient: method === 'none',
      clientAuthenticatorType: method ? methods[method] : 'client-secret',
      attributes: {} as Record<string, string>,
    };
    if (typeof o.scope === 'string') rep.optionalClientScopes = o.scope.split(' '); // `scope` -> optional client scopes
    if (grantTypes) {
      rep.directAccessGrantsEnabled = grantTypes.includes('password');
      rep.serviceAccountsEnabled = grantTypes.includes('client_credentials');
      // naming grant_types writes use.refresh.tokens (gloak p7 §1.11)
      (rep.attributes as Record<string, string>)['use.refresh.tokens'] = String(grantTypes.includes('refresh_token'));
      if (grantTypes.includes('urn:ietf:params:oauth:grant-type:device_code')) (rep.attributes as Record<string, string>)['oauth2.device.authorization.grant.enabled'] = 'true';
    }
    if (method === 'client_secret_post') (rep.attributes as Record<string, string>)['client.secret.authentication.allowed.method'] = 'client_secret_post';
    (rep.attributes as Record<string, string>)['backchannel.logout.session.required'] = 'true';
    if (o.logo_uri) (rep.attributes as Record<string, string>).logoUri = String(o.logo_uri);
    if (o.tos_uri) (rep.attributes as Record<string, string>).tosUri = String(o.tos_uri);
    if (o.policy_uri) (rep.attributes as Record<string, string>).policyUri = String(o.policy_uri);
    return rep;
  }

  /** DescriptionConverter.toExternalResponse, keys in the order gloak p7 §1.3 recorded. */
  function toExternal(realm: KcRealm, c: KcClient, opts2: { rat?: string; issuedAt?: number }) {
    const grantTypes: string[] = [];
    if (c.standardFlowEnabled) grantTypes.push('authorization_code');
    if (c.implicitFlowEnabled) grantTypes.push('implicit');
    if (c.directAccessGrantsEnabled) grantTypes.push('password');
    if (c.serviceAccountsEnabled) grantTypes.push('client_credentials');
    if (c.attributes['oauth2.device.authorization.grant.enabled'] === 'true') grantTypes.push('urn:ietf:params:oauth:grant-type:device_code');
    if (c.attributes['use.refresh.tokens'] !== 'false') grantTypes.push('refresh_token'); // seventh of nine
    const responseTypes: string[] = [];
    if (c.standardFlowEnabled) responseTypes.push('code', 'none');
    if (c.implicitFlowEnabled) responseTypes.push('id_token', 'id_token token');
    const secretMethods = ['client-secret', 'client-secret-jwt'];
    const out: Record<string, unknown> = {
      redirect_uris: c.redirectUris,
      token_endpoint_auth_method:
        c.clientAuthenticatorType === 'none' ? 'none' : c.clientAuthenticatorType === 'client-secret-jwt' ? 'client_secret_jwt' : c.clientAuthenticatorType === 'client-x509' ? 'tls_client_auth' : c.clientAuthenticatorType === 'client-jwt' ? 'private_key_jwt' : 'client_secret_basic',
      grant_types: grantTypes,
      response_types: responseTypes,
      client_id: c.clientId,
    };
    if (secretMethods.includes(c.clientAuthenticatorType) && !c.publicClient) out.client_secret = c.secret;
    if (c.name !== undefined) out.client_name = c.name; // omitted when absent (gloak p7 §1.3)
    out.scope = scopesById(realm, c.optionalClientScopeIds).map((s) => s.name).join(' ');
    out.subject_type = 'public';
    out.request_uris = [];
    out.tls_client_certificate_bound_access_tokens = false;
    out.dpop_bound_access_tokens = false;
    out.post_logout_redirect_uris = [];
    if (opts2.issuedAt !== undefined) out.client_id_issued_at = opts2.issuedAt;
    if (secretMethods.includes(c.clientAuthenticatorType)) out.client_secret_expires_at = 0;
    out.registration_client_uri = `${url}/realms/${realm.name}/clients-registrations/openid-connect/${c.clientId}`;
    if (opts2.rat) out.registration_access_token = opts2.rat;
    out.backchannel_logout_session_required = false; // a constant false (gloak p7 §1.3)
    out.require_pushed_authorization_requests = false;
    out.frontchannel_logout_session_required = true;
    return out;
  }

  async function registrationAccessToken(realm: KcRealm, c: KcClient, auth: RegAuth) {
    const jti = randomUUID();
    c.registration = { tokenId: jti, auth, issuedAt: c.registration?.issuedAt ?? now() };
    return signHs(realm.name, { exp: 0, iat: now(), jti, iss: issuerOf(realm.name), aud: issuerOf(realm.name), typ: 'Registration Access Token', registration_auth: auth });
  }

  function sendReg(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    // the registration family follows the admin API's charset rule (gloak p7 §2)
    res.statusCode = status;
    for (const [k2, v] of Object.entries(headers)) res.setHeader(k2, v);
    res.setHeader('Content-Type', 'application/json;charset=UTF-8');
    res.end(JSON.stringify(body));
  }

  async function handleRegistration(realm: KcRealm, req: IncomingMessage, clientIdInPath: string | undefined, raw: string, res: ServerResponse) {
    counters.registrationRequests++;
    const method = req.method ?? 'GET';
    let body: Record<string, unknown> | undefined;
    if (method === 'POST' || method === 'PUT') {
      // gloak p7 §1.6-1.7: media type first (415), then JSON (400), then unknown fields (400), then the caller
      const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (ct && ct !== 'application/json' && ct !== '*/*') throw new HttpError(415, { error: 'The content-type header value did not match the value in @Consumes' });
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new HttpError(400, RFC_ERR('invalid_request', 'Cannot parse the JSON'));
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new HttpError(400, RFC_ERR('invalid_request', 'Cannot parse the JSON'));
      for (const k2 of Object.keys(parsed)) {
        if (!OIDC_CLIENT_FIELDS.has(k2)) {
          const col = raw.indexOf(`"${k2}"`) + k2.length + 3; // Jackson reports the position after the field name (approximation)
          throw new HttpError(400, { error: `Invalid json representation for OIDCClientRepresentation. Unrecognized field "${k2}" at line 1 column ${col}.` });
        }
      }
      body = parsed as Record<string, unknown>;
    }

    // ClientRegistrationAuth: who is calling?
    const authz = req.headers.authorization ?? '';
    let auth: RegAuth = 'anonymous';
    let bearerClaims: Record<string, unknown> | undefined;
    let adminUser: KcUser | undefined;
    const bearer = /^bearer /i.test(authz) ? authz.slice(7).trim() : '';
    if (bearer) {
      bearerClaims = await verify(realm.name, bearer);
      // a token from another realm (e.g. master admin against realm kcp) fails here too (docs/idp/keycloak.md)
      if (!bearerClaims) throw new HttpError(401, RFC_ERR('invalid_token', 'Failed decode token'));
      if (bearerClaims.typ === 'Refresh') throw new HttpError(401, RFC_ERR('invalid_token', 'Invalid type of token'));
    }

    if (method === 'POST' && clientIdInPath === undefined) {
      // OIDCClientRegistrationProvider.createOIDC
      if (body!.client_id !== undefined) throw new HttpError(400, RFC_ERR('invalid_client_metadata', 'Client Identifier included'));
      if (bearerClaims) {
        if (bearerClaims.typ === 'InitialAccessToken') {
          const rec = realm.initialAccessTokens.get(String(bearerClaims.jti));
          if (!rec || rec.remainingCount <= 0) throw new HttpError(401, RFC_ERR('invalid_token', 'No remaining count on initial access token'));
          rec.remainingCount--;
          auth = 'authenticated';
        } else if (bearerClaims.typ === 'Bearer') {
          adminUser = await bearerUser(realm, bearerClaims);
          const eff = adminUser ? effectiveRoles(realm, adminUser) : undefined;
          const holder = realm.name === 'master' ? 'master-realm' : 'realm-management';
          const held = eff?.client.get(holder) ?? new Set<string>();
          // create-client or manage-clients (gloak p7 §1.2); anything else is a bare "Forbidden"
          if (!['create-client', 'manage-clients', 'realm-admin'].some((r) => held.has(r))) throw new HttpError(403, RFC_ERR('insufficient_scope', 'Forbidden'));
          auth = 'authenticated';
        } else {
          throw new HttpError(401, RFC_ERR('invalid_token', 'Failed decode token'));
        }
      }
      const rep = toInternal(body!);
      runPolicies(realm, auth, 'register', req, rep);
      const c = newClient(realm, { clientId: randomUUID(), name: rep.name as string | undefined, baseUrl: rep.baseUrl as string | undefined, publicClient: rep.publicClient as boolean, clientAuthenticatorType: rep.clientAuthenticatorType as string });
      // `scope` given -> those as optional scopes, and as defaults the realm's (26.8) or `basic` (26.0-26.7);
      // absent -> the realm defaults
      const named = rep.optionalClientScopes as string[] | undefined;
      const realmDefaults = scopesById(realm, realm.defaultDefaultClientScopes).filter((x) => x.protocol === 'openid-connect').map((x) => x.name);
      attachScopes(realm, c, named && (release === '26.7' ? ['basic'] : realmDefaults), named);
      applyClientRep(realm, c, { ...rep, name: undefined, baseUrl: undefined }, false);
      c.directAccessGrantsEnabled = rep.directAccessGrantsEnabled === true;
      if (auth === 'anonymous') {
        // Consent Required and Full Scope Disabled policies (docs/idp/keycloak.md)
        c.consentRequired = true;
        c.fullScopeAllowed = false;
      }
      ensureServiceAccount(realm, c);
      const rat = await registrationAccessToken(realm, c, auth);
      const location = `${url}/realms/${realm.name}/clients-registrations/openid-connect/${c.clientId}`;
      return sendReg(res, 201, toExternal(realm, c, { rat, issuedAt: c.registration!.issuedAt }), { Location: location });
    }

    if (clientIdInPath === undefined) throw new HttpError(404, { error: 'HTTP 404 Not Found' });
    const c = [...realm.clients.values()].find((x) => x.clientId === clientIdInPath);
    const isView = method === 'GET';
    const unauthorized = () =>
      new HttpError(401, RFC_ERR('invalid_token', isView ? 'Not authorized to view client. Not valid token or client credentials provided.' : 'Not authorized to update client. Maybe missing token or bad token type.'));
    let regAuth: RegAuth | undefined;
    let viaRat = false;
    if (bearerClaims?.typ === 'Registration Access Token') {
      if (!c || c.registration?.tokenId !== bearerClaims.jti) throw unauthorized();
      regAuth = (bearerClaims.registration_auth as RegAuth) ?? 'anonymous';
      viaRat = true;
    } else if (bearerClaims?.typ === 'Bearer') {
      adminUser = await bearerUser(realm, bearerClaims);
      const holder = realm.name === 'master' ? 'master-realm' : 'realm-management';
      const held = (adminUser ? effectiveRoles(realm, adminUser).client.get(holder) : undefined) ?? new Set<string>();
      const okRoles = isView ? ['view-clients', 'manage-clients', 'realm-admin'] : ['manage-clients', 'realm-admin'];
      if (!okRoles.some((r) => held.has(r))) throw new HttpError(403, RFC_ERR('insufficient_scope', 'Forbidden'));
      if (!c) throw new HttpError(404, RFC_ERR('invalid_request', 'Client not found'));
      regAuth = 'authenticated';
    } else {
      throw unauthorized();
    }
    if (method === 'GET') {
      runPolicies(realm, regAuth, 'view', req);
      return sendReg(res, 200, toExternal(realm, c!, { rat: viaRat ? bearer : undefined }));
    }
    if (method === 'DELETE') {
      runPolicies(realm, regAuth, 'delete', req);
      realm.clients.delete(c!.id);
      if (c!.serviceAccountUserId) realm.users.delete(c!.serviceAccountUserId);
      return noContent(res);
    }
    if (method === 'PUT') {
      if (body!.client_id !== c!.clientId) throw new HttpError(400, RFC_ERR('invalid_client_metadata', 'Client Identifier modified'));
      const rep = toInternal(body!);
      runPolicies(realm, regAuth, 'update', req, rep, c);
      // PUT replaces everything except the secret, and rotates the registration access token (gloak p7 §1.9)
      const keep = c!.secret;
      c!.redirectUris = (rep.redirectUris as string[]) ?? [];
      c!.name = rep.name as string | undefined;
      c!.baseUrl = rep.baseUrl as string | undefined;
      c!.standardFlowEnabled = rep.standardFlowEnabled as boolean;
      c!.implicitFlowEnabled = rep.implicitFlowEnabled as boolean;
      c!.serviceAccountsEnabled = rep.serviceAccountsEnabled === true;
      c!.directAccessGrantsEnabled = rep.directAccessGrantsEnabled === true;
      Object.assign(c!.attributes, rep.attributes);
      c!.secret = keep;
      ensureServiceAccount(realm, c!);
      const rat = await registrationAccessToken(realm, c!, regAuth);
      return sendReg(res, 200, toExternal(realm, c!, { rat }));
    }
    throw new HttpError(405, { error: 'HTTP 405 Method Not Allowed' });
  }

  async function bearerUser(realm: KcRealm, claims: Record<string, unknown>) {
    if (typeof claims.sid === 'string') {
      const s = realm.sessions.get(claims.sid);
      return s ? realm.users.get(s.userId) : undefined;
    }
    return typeof claims.sub === 'string' ? realm.users.get(claims.sub) : undefined;
  }

  // --------------------------------------------------------------------------------------------
  // Discovery
  // --------------------------------------------------------------------------------------------
  function discovery(realm: string) {
    const iss = issuerOf(realm);
    const p = `${iss}/protocol/openid-connect`;
    const base: Record<string, unknown> = {
      issuer: iss,
      authorization_endpoint: `${p}/auth`,
      token_endpoint: `${p}/token`,
      introspection_endpoint: `${p}/token/introspect`,
      userinfo_endpoint: `${p}/userinfo`,
      end_session_endpoint: `${p}/logout`,
      frontchannel_logout_session_supported: true,
      frontchannel_logout_supported: true,
      jwks_uri: `${p}/certs`,
      check_session_iframe: `${p}/login-status-iframe.html`,
      grant_types_supported: ['authorization_code', 'client_credentials', 'implicit', 'password', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:uma-ticket', 'urn:openid:params:grant-type:ciba'],
      acr_values_supported: ['0', '1'],
      response_types_supported: ['code', 'none', 'id_token', 'token', 'id_token token', 'code id_token', 'code token', 'code id_token token'],
      subject_types_supported: ['public', 'pairwise'],
      id_token_signing_alg_values_supported: ['PS384', 'RS384', 'EdDSA', 'ES384', 'HS256', 'HS512', 'ES256', 'RS256', 'HS384', 'ES512', 'PS256', 'PS512', 'RS512'],
      response_modes_supported: ['query', 'fragment', 'form_post', 'query.jwt', 'fragment.jwt', 'form_post.jwt', 'jwt'],
      registration_endpoint: `${iss}/clients-registrations/openid-connect`,
      token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'tls_client_auth', 'client_secret_jwt'],
      claims_supported: ['aud', 'sub', 'iss', 'auth_time', 'name', 'given_name', 'family_name', 'preferred_username', 'email', 'acr'],
      claim_types_supported: ['normal'],
      claims_parameter_supported: true,
      scopes_supported: ['openid', ...scopesById(realms.get(realm)!, [...realms.get(realm)!.clientScopes.keys()]).filter((s) => s.protocol === 'openid-connect').map((s) => s.name)],
      request_parameter_supported: true,
      request_uri_parameter_supported: true,
      require_request_uri_registration: true,
      code_challenge_methods_supported: ['plain', 'S256'],
      tls_client_certificate_bound_access_tokens: true,
      revocation_endpoint: `${p}/revoke`,
      device_authorization_endpoint: `${p}/auth/device`,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
      require_pushed_authorization_requests: false,
      pushed_authorization_request_endpoint: `${p}/ext/par/request`,
      authorization_response_iss_parameter_supported: true,
    };
    return base;
  }

  // --------------------------------------------------------------------------------------------
  // HTTP plumbing
  // --------------------------------------------------------------------------------------------
  const served = await serve(async (req, res, raw) => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const path = u.pathname;
      const query = Object.fromEntries(u.searchParams);
      const ctype = (req.headers['content-type'] ?? '').toLowerCase();
      const { body } = parseBody(raw, ctype);
      const entry: LoggedRequest = { method: req.method ?? 'GET', path, query, headers: { authorization: req.headers.authorization, 'content-type': req.headers['content-type'] }, body };
      requests.push(entry);
      res.on('finish', () => (entry.status = res.statusCode));
      const method = req.method ?? 'GET';
      try {
        const segs = path.split('/').filter(Boolean).map(decodeURIComponent);
        // RFC 8414 root form (26.4+): /.well-known/oauth-authorization-server/realms/{realm}
        if (segs[0] === '.well-known' && segs[1] === 'oauth-authorization-server' && segs[2] === 'realms' && segs.length === 4 && method === 'GET') {
          if (!realms.has(segs[3]!)) throw notFound('Realm does not exist');
          return sendJson(res, 200, discovery(segs[3]!));
        }
        if (segs[0] === 'admin' && segs[1] === 'realms') return await handleAdmin(req, segs.slice(2), query, body, res);
        if (segs[0] === 'realms' && segs.length >= 2) {
          const realm = realms.get(segs[1]!);
          const rest = segs.slice(2).join('/');
          if (!realm) throw notFound('Realm does not exist'); // no trailing period on the protocol side (gloak observed)
          if (rest === '.well-known/openid-configuration' && method === 'GET') return sendJson(res, 200, discovery(realm.name));
          if (rest === '.well-known/oauth-authorization-server' && method === 'GET') return sendJson(res, 200, discovery(realm.name));
          if (rest === 'protocol/openid-connect/certs' && method === 'GET') {
            const k2 = keys.get(realm.name)!;
            return sendJson(res, 200, { keys: [k2.encJwk, k2.sigJwk] });
          }
          if (rest === 'protocol/openid-connect/token' && method === 'POST') {
            const form = body && typeof body === 'object' && !Array.isArray(body) && ctype.includes('application/x-www-form-urlencoded') ? (body as Record<string, string>) : {};
            return await handleToken(realm, req, form, res).catch((e: unknown) => {
              if (e instanceof HttpError) return sendJson(res, e.status, e.body, { 'Cache-Control': 'no-store', Pragma: 'no-cache' });
              throw e;
            });
          }
          if (segs[2] === 'clients-registrations') {
            if (segs[3] !== 'openid-connect') throw notFound('Client registration provider not found');
            if (segs.length > 5) throw new HttpError(404, { error: 'HTTP 404 Not Found' });
            return await handleRegistration(realm, req, segs[4], raw, res);
          }
          if (rest === '' && method === 'GET') {
            return sendJson(res, 200, { realm: realm.name, public_key: '', 'token-service': `${issuerOf(realm.name)}/protocol/openid-connect`, 'account-service': `${issuerOf(realm.name)}/account`, 'tokens-not-before': 0 });
          }
        }
        throw new HttpError(404, { error: 'Unable to find matching target resource method' });
      } catch (e) {
        if (e instanceof HttpError) return sendJson(res, e.status, e.body);
        throw e;
      }
  }, (res, err) => sendJson(res, 500, { error: 'unknown_error', error_description: String(err) }));
  url = served.url;

  const getRealm = (name: string) => {
    const r = realms.get(name);
    if (!r) throw new Error(`no realm ${name}`);
    return r;
  };
  const findClient = (realm: string, clientId: string) => [...getRealm(realm).clients.values()].find((c) => c.clientId === clientId);

  const api: KeycloakSim = {
    url,
    realms,
    requests,
    counters,
    get tokenRequests() {
      return counters.tokenRequests;
    },
    get remoteAddressOverride() {
      return sim.remoteAddressOverride;
    },
    set remoteAddressOverride(v: string | undefined) {
      sim.remoteAddressOverride = v;
    },
    realm: getRealm,
    client: findClient,
    clientScope: (realm, name) => [...getRealm(realm).clientScopes.values()].find((s) => s.name === name),
    trustedHostsPolicy: (realm) => getRealm(realm).components.find((c) => c.providerId === 'trusted-hosts' && c.subType === 'anonymous')!,
    clientScopeNames: (realm, clientId) => {
      const r = getRealm(realm);
      const c = findClient(realm, clientId)!;
      return { default: scopesById(r, c.defaultClientScopeIds).map((s) => s.name), optional: scopesById(r, c.optionalClientScopeIds).map((s) => s.name) };
    },
    addUser: (realm, u) => addUserInternal(getRealm(realm), u),
    grantServiceAccountRoles: (realm, clientId, roles) => {
      const r = getRealm(realm);
      const c = findClient(realm, clientId);
      if (!c) throw new Error(`no client ${clientId}`);
      ensureServiceAccount(r, c);
      const u = r.users.get(c.serviceAccountUserId!)!;
      for (const [cid, names] of Object.entries(roles)) u.clientRoles[cid] = [...new Set([...(u.clientRoles[cid] ?? []), ...names])];
    },
    close: served.close,
  };
  return api;
}
