/**
 * Test simulator of an Oracle OCI IAM Identity Domain (IDCS): SCIM admin API + OAuth endpoints, at a
 * real domain name (https://idcs-<guid>.identity.oraclecloud.com, reached through ./oci-net.ts: TLS on
 * loopback behind a forward proxy, so host-name rules are exercised without leaving the machine).
 *
 * Follows Oracle's documentation (the vendor wins where it and this file disagree), as of 2026:
 *   - "Retrieve OpenID Discovery Doc", GET /.well-known/openid-configuration
 *     (docs.oracle.com/en/cloud/paas/identity-cloud/rest-api/op-well-known-openid-configuration-get.html):
 *     `issuer` is https://identity.oraclecloud.com/ for every domain, not the domain URL. Its example
 *     gives endpoints as paths ("/oauth2/v1/token"); live domains give absolute URLs on the domain
 *     host with an explicit :443, plus non-standard `secure_*` endpoints on a regional host. Both forms
 *     are served: `discovery: "live"` (default, the newest) and `"documented"` (the example's shape).
 *   - "Updating an OAuth Setting" (docs.oracle.com/en-us/iaas/Content/Identity/oauth/update-oauth-settings.htm):
 *     a domain may set a custom issuer; newly issued tokens carry it, else the default
 *     https://identity.oraclecloud.com/. The Settings resource's `issuer` ("Tenant issuer", added
 *     20.1.3, returned by default) and `prevIssuer` hold it (oracle/oci-go-sdk identitydomains/setting.go).
 *   - The SCIM admin API as summarised in docs/idp/oci.md: client-credentials admin token with scope
 *     urn:opc:idm:__myscopes__; Apps (create/search/read/delete), AppStatusChanger,
 *     AppClientSecretRegenerator, Settings (GET/PATCH), SigningCert/jwk, IdentityPropagationTrusts;
 *     SCIM errors whose `status` is a string, with `detail` and `scimType`; OAuth errors
 *     {"error","error_description"}.
 *   - The UPST token exchange of oracle/oci-python-sdk auth/signers/token_exchange_signer.py
 *     (subject_token_type `jwt`, base64 DER `public_key`, answer {"token"}), checked against the
 *     trusts; a trust whose subjectType is "User" takes user tokens only.
 *   - GET /oauth2/v1/authorize + authorization_code/refresh_token grants: PKCE S256 when a challenge is
 *     sent, the redirect URI must be registered on the app, the signed-in user (`signedInUser`,
 *     default alice) approves at once; an ID token (iss = the tenant issuer, aud = the client) when
 *     the request asked for `openid`.
 * Not implemented: Grants, user management, /.well-known/idcs-configuration.
 * UNVERIFIED and chosen here: the regenerator's body/response shape, the text of the SCIM `detail`s,
 * the access tokens' `aud` (the domain URL), and whether the discovery document's issuer follows a
 * custom tenant issuer (here it keeps the documented default).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createHash, createPublicKey, randomBytes, randomUUID, type KeyObject } from "node:crypto";
import { SignJWT, exportJWK, jwtVerify } from "jose";
import { basicCredentials, rsaKey, sendJson } from "./common.js";
import { serveDomain, type DomainHost } from "./oci-net.js";

export const IDCS_ISSUER = "https://identity.oraclecloud.com/";
const S = {
  app: "urn:ietf:params:scim:schemas:oracle:idcs:App",
  statusChanger: "urn:ietf:params:scim:schemas:oracle:idcs:AppStatusChanger",
  regenerator: "urn:ietf:params:scim:schemas:oracle:idcs:AppClientSecretRegenerator",
  settings: "urn:ietf:params:scim:schemas:oracle:idcs:Settings",
  trust: "urn:ietf:params:scim:schemas:oracle:idcs:IdentityPropagationTrust",
  patch: "urn:ietf:params:scim:api:messages:2.0:PatchOp",
  list: "urn:ietf:params:scim:api:messages:2.0:ListResponse",
  error: "urn:ietf:params:scim:api:messages:2.0:Error",
  idcsError: "urn:ietf:params:scim:api:oracle:idcs:extension:messages:Error",
};

type Json = Record<string, unknown>;

export interface OciApp {
  id: string;
  /** The OAuth client id (§2: `name`, server-generated). */
  name: string;
  clientSecret: string;
  displayName: string;
  active: boolean;
  clientType: string;
  isOAuthClient: boolean;
  allowedGrants: string[];
  redirectUris: string[];
  basedOnTemplate: { value: string };
  body: Json;
}

export interface OciSim extends Omit<DomainHost, "close"> {
  apps: Map<string, OciApp>;
  settings: Json;
  trusts: Json[];
  requests: Array<{ method: string; path: string; auth?: string }>;
  /** Every UPST exchange that succeeded: who asked, for whom, and the key the UPST is bound to. */
  exchanges: Array<{ clientId: string; subject: string; subjectClientId?: string; publicKeyDer: string }>;
  app(displayName: string): OciApp | undefined;
  /** An IDCS-issued access token for a user, as the authorization-code flow would give (§7 iss). */
  userToken(username: string, clientId: string): Promise<string>;
  /** The next request to `method path` (path without query) is answered with this SCIM error. */
  failNext(method: string, path: string, status: number, detail: string, scimType?: string): void;
  close(): Promise<void>;
}

export interface OciOptions {
  adminClientId?: string;
  adminClientSecret?: string;
  /** Lifetime of the UPSTs issued (default 3600 s, UNVERIFIED). */
  upstTtlSec?: number;
  /** The user who approves authorization requests (default "alice"). */
  signedInUser?: string;
  /** The domain's host name (default: idcs-<random 32 hex>.identity.oraclecloud.com). */
  host?: string;
  /** Which discovery document to serve: a live domain's (default) or the REST API docs' example. */
  discovery?: "live" | "documented";
  /** Changes the discovery document served (hostile-document tests). */
  editDiscovery?: (doc: Json) => Json;
  /** The domain's custom issuer (Settings `issuer`); tokens then carry it. */
  tenantIssuer?: string;
}

/** What GET /.well-known/openid-configuration answers, in the two shapes described above. */
export function discoveryDocument(url: string, shape: "live" | "documented"): Json {
  const common = {
    issuer: IDCS_ISSUER,
    scopes_supported: ["openid", "profile", "offline_access", "email", "address", "phone", "groups", "get_groups", "approles", "get_approles"],
    response_types_supported: ["code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["RS256"],
    claims_supported: ["aud", "exp", "iat", "iss", "jti", "sub"],
    grant_types_supported: ["client_credentials", "password", "refresh_token", "authorization_code", "urn:ietf:params:oauth:grant-type:jwt-bearer", "tls_cert_auth"],
    token_endpoint_auth_signing_alg_values_supported: ["RS256"],
    userinfo_signing_alg_values_supported: ["none"],
    ui_locales_supported: ["en"],
    claims_parameter_supported: false,
    http_logout_supported: true,
    logout_session_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    require_request_uri_registration: false,
  };
  const paths = { authorization_endpoint: "/oauth2/v1/authorize", token_endpoint: "/oauth2/v1/token", userinfo_endpoint: "/oauth2/v1/userinfo", revocation_endpoint: "/oauth2/v1/revoke", end_session_endpoint: "/oauth2/v1/userlogout", jwks_uri: "/admin/v1/SigningCert/jwk" };
  if (shape === "documented") {
    return { ...common, ...paths, introspect_endpoint: "/oauth2/v1/introspect", token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_jwt"] };
  }
  const at = (base: string) => Object.fromEntries(Object.entries(paths).map(([k, p]) => [k, `${base}${p}`]));
  const secure = `https://${new URL(url).hostname.replace(".identity.", ".us-ashburn-idcs-1.secure.identity.")}`;
  return {
    ...common,
    ...at(`${url}:443`),
    introspection_endpoint: `${url}:443/oauth2/v1/introspect`,
    ...Object.fromEntries(Object.entries(at(secure)).map(([k, v]) => [`secure_${k}`, v])),
    token_endpoint_auth_methods_supported: ["client_secret_basic", "private_key_jwt", "client_secret_post"],
    code_challenge_methods_supported: ["S256"],
    idcs_id_token: "supported",
    idcs_logout_v3: "supported",
  };
}

export async function startOci(o: OciOptions = {}): Promise<OciSim> {
  const admin = { id: o.adminClientId ?? "admin-app", secret: o.adminClientSecret ?? "admin-app-secret" };
  const { privateKey, publicKey: signingKey, jwk } = await rsaKey({ kid: "SIGNING_KEY" });
  const apps = new Map<string, OciApp>();
  // §4: single pre-seeded instance, id "Settings"; client access is off until enabled. No `issuer`
  // unless the domain has a custom one.
  const settings: Json = { id: "Settings", schemas: [S.settings], signingCertPublicAccess: false, csrAccess: "none", ...(o.tenantIssuer && { issuer: o.tenantIssuer }) };
  /** The `iss` of tokens issued now, and the issuers whose tokens still validate (the current and one previous). */
  const issuerNow = () => (typeof settings.issuer === "string" && settings.issuer ? settings.issuer : IDCS_ISSUER);
  const validIssuers = () => [issuerNow(), ...(typeof settings.prevIssuer === "string" ? [settings.prevIssuer] : [])];
  const trusts: Json[] = [];
  const requests: OciSim["requests"] = [];
  const exchanges: OciSim["exchanges"] = [];
  const codes = new Map<string, { clientId: string; redirectUri: string; challenge?: string; user: string; scope: string; nonce?: string }>();
  const refreshTokens = new Map<string, { clientId: string; user: string; scope: string }>();
  const injected: Array<{ key: string; status: number; detail: string; scimType?: string }> = [];
  let url = "";

  const sign = (claims: Json, sub: string, ttlSec = 3600) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: jwk.kid, typ: "JWT" })
      .setIssuer(issuerNow()) // the tenant issuer: https://identity.oraclecloud.com/ unless the domain set its own
      .setSubject(sub)
      .setAudience(typeof claims.aud === "string" ? claims.aud : url) // UNVERIFIED: the domain URL as an access token's audience
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSec)
      .setJti(randomUUID())
      .sign(privateKey);

  const send = (res: ServerResponse, status: number, body?: unknown, type = "application/json") => sendJson(res, status, body, {}, type);
  // §7: SCIM error shape; `status` is a string.
  const scimError = (res: ServerResponse, status: number, detail: string, scimType?: string, messageId?: string) =>
    send(res, status, { schemas: [S.error, S.idcsError], detail, status: String(status), ...(scimType && { scimType }), [S.idcsError]: { messageId: messageId ?? `error.common.${status}` } }, "application/scim+json");
  const oauthError = (res: ServerResponse, status: number, error: string, description: string) => send(res, status, { error, error_description: description });

  const appResource = (a: OciApp, withSecret = true): Json => ({
    ...a.body,
    schemas: [S.app],
    id: a.id,
    name: a.name,
    displayName: a.displayName,
    active: a.active,
    clientType: a.clientType,
    isOAuthClient: a.isOAuthClient,
    allowedGrants: a.allowedGrants,
    redirectUris: a.redirectUris,
    basedOnTemplate: a.basedOnTemplate,
    // §2: clientSecret is readOnly, returned by default
    ...(withSecret && a.clientType !== "public" && { clientSecret: a.clientSecret }),
    meta: { resourceType: "App", location: `${url}/admin/v1/Apps/${a.id}` },
  });

  async function isAdmin(req: IncomingMessage): Promise<boolean> {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    if (!m) return false;
    try {
      const { payload } = await jwtVerify(m[1]!, signingKey, { issuer: validIssuers() });
      return payload.client_id === admin.id && String(payload.scope ?? "").split(" ").includes("urn:opc:idm:__myscopes__");
    } catch {
      return false;
    }
  }

  /** §2: `filter=displayName eq "x"` (SCIM string compare; displayName is not caseExact). */
  function filtered<T extends Json>(items: T[], filter: string | null): T[] | undefined {
    if (!filter) return items;
    const m = /^\s*(\w+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/.exec(filter);
    if (!m) return undefined;
    const value = m[2]!.replace(/\\(.)/g, "$1").toLowerCase();
    return items.filter((x) => String(x[m[1]!] ?? "").toLowerCase() === value);
  }
  const listResponse = (items: Json[]) => ({ schemas: [S.list], totalResults: items.length, Resources: items, startIndex: 1, itemsPerPage: items.length });

  /**
   * §6 / §8: UPST exchange. `subject_token_type` is the literal `jwt`; `public_key` is base64
   * DER SubjectPublicKeyInfo; the client must be listed in an active trust whose issuer is the
   * subject token's `iss` (signature checked against the domain key for IDCS tokens). Answer: {"token"}.
   * Errors are OAuth's {"error","error_description"} (§7): 400 invalid_request for a malformed
   * request, 400 invalid_grant for a subject token or trust that does not allow it; a bad client is
   * 401 invalid_client (checked before, in the token endpoint). UNVERIFIED and chosen here: the
   * descriptions' text, and that a key shorter than 2048 bits is refused (§6 names RSA-2048).
   */
  async function exchange(res: ServerResponse, form: URLSearchParams, app: OciApp): Promise<void> {
    if (!form.get("subject_token")) return oauthError(res, 400, "invalid_request", "Missing subject_token.");
    if (form.get("requested_token_type") !== "urn:oci:token-type:oci-upst") return oauthError(res, 400, "invalid_request", "Unsupported requested_token_type.");
    if (form.get("subject_token_type") !== "jwt") return oauthError(res, 400, "invalid_request", "Invalid subject_token_type.");
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: Buffer.from(form.get("public_key") ?? "", "base64"), format: "der", type: "spki" });
      if (publicKey.asymmetricKeyType !== "rsa" || (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new Error("not RSA-2048");
    } catch {
      return oauthError(res, 400, "invalid_request", "Invalid public_key.");
    }
    let claims: Json;
    try {
      claims = (await jwtVerify(form.get("subject_token") ?? "", signingKey, { issuer: validIssuers() })).payload as Json;
    } catch {
      return oauthError(res, 400, "invalid_grant", "Invalid subject_token.");
    }
    const trust = trusts.find((t) => t.active === true && t.issuer === claims.iss && Array.isArray(t.oauthClients) && t.oauthClients.includes(app.name));
    if (!trust) return oauthError(res, 400, "invalid_grant", "No active identity propagation trust authorizes this client for the subject token's issuer.");
    if (trust.subjectType === "User" && claims.sub_type !== "user") return oauthError(res, 400, "invalid_grant", "The subject token does not identify a user.");
    const jwkPub = await exportJWK(publicKey);
    const ttl = o.upstTtlSec ?? 3600;
    const token = await sign({ sub_type: "user", user: claims.sub, jwk: JSON.stringify(jwkPub), sess_exp: Math.floor(Date.now() / 1000) + ttl, ptype: "user" }, String(claims.sub), ttl);
    exchanges.push({ clientId: app.name, subject: String(claims.sub), subjectClientId: typeof claims.client_id === "string" ? claims.client_id : undefined, publicKeyDer: publicKey.export({ format: "der", type: "spki" }).toString("base64") });
    return send(res, 200, { token });
  }

  async function handle(req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
    const u = new URL(req.url ?? "/", url);
    const path = u.pathname;
    const method = req.method ?? "GET";
    requests.push({ method, path, auth: req.headers.authorization?.split(" ")[0] });
    const inj = injected.findIndex((x) => x.key === `${method} ${path}`);
    if (inj >= 0) {
      const [x] = injected.splice(inj, 1);
      return scimError(res, x!.status, x!.detail, x!.scimType);
    }
    let body: Json = {};
    if (raw && (req.headers["content-type"] ?? "").includes("json")) {
      try {
        body = JSON.parse(raw) as Json;
      } catch {
        return scimError(res, 400, "Invalid JSON in request body.", "invalidSyntax");
      }
    }

    // "Retrieve OpenID Discovery Doc": the documented issuer, whatever the domain; no registration_endpoint (no DCR).
    if (method === "GET" && path === "/.well-known/openid-configuration") {
      const doc = discoveryDocument(url, o.discovery ?? "live");
      return send(res, 200, o.editDiscovery ? o.editDiscovery(doc) : doc);
    }

    // §1 / §8: the token endpoint (client_credentials only here).
    if (method === "POST" && path === "/oauth2/v1/token") {
      const form = new URLSearchParams(raw);
      const creds = basicCredentials(req) ?? (form.get("client_id") ? { id: form.get("client_id")!, secret: form.get("client_secret") ?? "" } : undefined);
      if (!creds) return oauthError(res, 401, "invalid_client", "Client authentication failed.");
      const grant = form.get("grant_type");
      const scope = form.get("scope") ?? "";
      if (creds.id === admin.id) {
        if (creds.secret !== admin.secret) return oauthError(res, 401, "invalid_client", "Client authentication failed.");
        if (grant !== "client_credentials") return oauthError(res, 400, "unauthorized_client", "Client is not authorized for this grant type.");
        const token = await sign({ client_id: admin.id, scope, sub_type: "client" }, admin.id);
        return send(res, 200, { access_token: token, token_type: "Bearer", expires_in: 3600 });
      }
      const app = [...apps.values()].find((a) => a.name === creds.id);
      if (!app || app.clientSecret !== creds.secret) return oauthError(res, 401, "invalid_client", "Client authentication failed.");
      if (!app.active) return oauthError(res, 401, "invalid_client", "Client is inactive.");
      if (grant === "urn:ietf:params:oauth:grant-type:token-exchange") return exchange(res, form, app);
      if (grant === "authorization_code" || grant === "refresh_token") {
        if (!app.allowedGrants.includes(grant === "refresh_token" ? "authorization_code" : grant)) return oauthError(res, 400, "unauthorized_client", "Client is not authorized for this grant type.");
        let who: { user: string; scope: string } | undefined;
        let idToken: string | undefined;
        if (grant === "authorization_code") {
          const c = codes.get(form.get("code") ?? "");
          codes.delete(form.get("code") ?? "");
          if (!c || c.clientId !== app.name || c.redirectUri !== form.get("redirect_uri")) return oauthError(res, 400, "invalid_grant", "Invalid authorization code.");
          if (c.challenge && createHash("sha256").update(form.get("code_verifier") ?? "").digest("base64url") !== c.challenge) return oauthError(res, 400, "invalid_grant", "Invalid code_verifier.");
          who = c;
          if (c.scope.split(" ").includes("openid")) {
            idToken = await sign({ aud: app.name, ...(c.nonce && { nonce: c.nonce }), sub_type: "user", user_displayname: c.user }, c.user);
          }
        } else {
          const r = refreshTokens.get(form.get("refresh_token") ?? "");
          refreshTokens.delete(form.get("refresh_token") ?? "");
          if (!r || r.clientId !== app.name) return oauthError(res, 400, "invalid_grant", "Invalid refresh token.");
          who = r;
        }
        const rt = randomBytes(24).toString("base64url");
        refreshTokens.set(rt, { clientId: app.name, user: who.user, scope: who.scope });
        const token = await sign({ client_id: app.name, sub_type: "user", user_displayname: who.user, scope: who.scope }, who.user);
        return send(res, 200, { access_token: token, token_type: "Bearer", expires_in: 3600, refresh_token: rt, ...(idToken && { id_token: idToken }) });
      }
      if (grant !== "client_credentials" || !app.allowedGrants.includes("client_credentials")) {
        return oauthError(res, 400, "unauthorized_client", "Client is not authorized for this grant type.");
      }
      const token = await sign({ client_id: app.name, scope, sub_type: "client" }, app.name);
      return send(res, 200, { access_token: token, token_type: "Bearer", expires_in: 3600 });
    }

    // §7 authorize endpoint: the signed-in user approves at once.
    if (method === "GET" && path === "/oauth2/v1/authorize") {
      const q = u.searchParams;
      const app = [...apps.values()].find((a) => a.name === q.get("client_id"));
      const redirectUri = q.get("redirect_uri") ?? "";
      if (!app || !app.active || !app.redirectUris.includes(redirectUri)) return oauthError(res, 400, "invalid_request", "Invalid client_id or redirect_uri.");
      const to = new URL(redirectUri);
      if (q.get("state")) to.searchParams.set("state", q.get("state")!);
      if (q.get("response_type") !== "code" || !app.allowedGrants.includes("authorization_code")) to.searchParams.set("error", "unauthorized_client");
      else if (q.get("code_challenge") && q.get("code_challenge_method") !== "S256") to.searchParams.set("error", "invalid_request");
      else {
        const code = randomBytes(24).toString("base64url");
        codes.set(code, { clientId: app.name, redirectUri, challenge: q.get("code_challenge") ?? undefined, user: o.signedInUser ?? "alice", scope: q.get("scope") ?? "", nonce: q.get("nonce") ?? undefined });
        to.searchParams.set("code", code);
      }
      res.writeHead(302, { location: to.href });
      res.end();
      return;
    }

    // §4 / §8: the JWKS needs a token unless "Configure client access" is on.
    if (method === "GET" && path === "/admin/v1/SigningCert/jwk") {
      if (settings.signingCertPublicAccess !== true && !(await isAdmin(req))) return scimError(res, 401, "This operation is not permitted. You do not have access rights to this resource.");
      return send(res, 200, { keys: [jwk] });
    }

    if (!path.startsWith("/admin/v1/")) return send(res, 404, { error: "not_found" });
    if (!(await isAdmin(req))) return scimError(res, 401, "This operation is not permitted. You do not have access rights to this resource.");

    // §2 / §8: Apps
    if (path === "/admin/v1/Apps" && method === "GET") {
      const items = filtered([...apps.values()].map((a) => appResource(a)), u.searchParams.get("filter"));
      if (!items) return scimError(res, 400, "Invalid filter.", "invalidFilter");
      return send(res, 200, listResponse(items), "application/scim+json");
    }
    if (path === "/admin/v1/Apps" && method === "POST") {
      const missing = [
        !Array.isArray(body.schemas) || !body.schemas.includes(S.app) ? "schemas" : undefined,
        typeof (body.basedOnTemplate as Json | undefined)?.value !== "string" ? "basedOnTemplate" : undefined,
        typeof body.displayName !== "string" || !body.displayName ? "displayName" : undefined,
      ].filter(Boolean);
      if (missing.length) return scimError(res, 400, `Missing required attributes: ${missing.join(", ")}.`, "invalidValue", "error.common.validation.missingReqAttributes");
      // §8: displayName uniqueness (server); RFC 7644 §3.3: 409 with scimType "uniqueness".
      const taken = [...apps.values()].some((a) => a.displayName.toLowerCase() === String(body.displayName).toLowerCase());
      if (taken) return scimError(res, 409, `An App with the same displayName "${String(body.displayName)}" already exists.`, "uniqueness", "error.common.uniquenessViolation");
      const id = randomBytes(16).toString("hex");
      const app: OciApp = {
        id,
        name: randomBytes(16).toString("hex"),
        clientSecret: randomUUID(),
        displayName: String(body.displayName),
        // §3: REST creates honour "active" from the body; default inactive as in the console.
        active: body.active === true,
        clientType: typeof body.clientType === "string" ? body.clientType : "confidential",
        isOAuthClient: body.isOAuthClient === true,
        allowedGrants: Array.isArray(body.allowedGrants) ? body.allowedGrants.map(String) : [],
        redirectUris: Array.isArray(body.redirectUris) ? body.redirectUris.map(String) : [],
        basedOnTemplate: { value: String((body.basedOnTemplate as Json).value) },
        body,
      };
      apps.set(id, app);
      return send(res, 201, appResource(app), "application/scim+json");
    }
    const appPath = /^\/admin\/v1\/Apps\/([^/]+)$/.exec(path);
    if (appPath) {
      const app = apps.get(decodeURIComponent(appPath[1]!));
      if (!app) return scimError(res, 404, `Resource ${appPath[1]} not found.`);
      if (method === "GET") return send(res, 200, appResource(app), "application/scim+json");
      if (method === "DELETE") {
        // §3: deletion requires active:false first (exact error UNVERIFIED).
        if (app.active) return scimError(res, 400, "The App is active. Deactivate it before deleting it.", "mutability");
        apps.delete(app.id);
        return send(res, 204);
      }
    }
    // §3: activation
    const status = /^\/admin\/v1\/AppStatusChanger\/([^/]+)$/.exec(path);
    if (status && method === "PUT") {
      if (!Array.isArray(body.schemas) || !body.schemas.includes(S.statusChanger) || typeof body.active !== "boolean") {
        return scimError(res, 400, "Missing required attributes: schemas, active.", "invalidValue", "error.common.validation.missingReqAttributes");
      }
      const app = apps.get(decodeURIComponent(status[1]!));
      if (!app) return scimError(res, 404, `Resource ${status[1]} not found.`);
      app.active = body.active;
      return send(res, 200, { schemas: [S.statusChanger], id: app.id, active: app.active, meta: { resourceType: "AppStatusChanger" } }, "application/scim+json");
    }
    // §2: secret rotation (body/response shape UNVERIFIED: appId in, clientSecret out).
    if (path === "/admin/v1/AppClientSecretRegenerator" && method === "POST") {
      const app = typeof body.appId === "string" ? apps.get(body.appId) : undefined;
      if (!Array.isArray(body.schemas) || !body.schemas.includes(S.regenerator)) return scimError(res, 400, "Missing required attributes: schemas.", "invalidValue");
      if (!app) return scimError(res, 404, `Resource ${String(body.appId)} not found.`);
      app.clientSecret = randomUUID();
      return send(res, 201, { schemas: [S.regenerator], appId: app.id, clientSecret: app.clientSecret }, "application/scim+json");
    }
    // §4: Settings
    if (path === "/admin/v1/Settings/Settings") {
      if (method === "GET") return send(res, 200, settings, "application/scim+json");
      if (method === "PATCH") {
        const ops = body.Operations;
        if (!Array.isArray(body.schemas) || !body.schemas.includes(S.patch) || !Array.isArray(ops)) return scimError(res, 400, "Invalid PatchOp request.", "invalidSyntax");
        for (const op of ops as Json[]) {
          if (op.op !== "replace" || typeof op.path !== "string") return scimError(res, 400, `Unsupported operation ${String(op.op)}.`, "invalidSyntax");
          settings[op.path] = op.value;
        }
        return send(res, 200, settings, "application/scim+json");
      }
    }
    // §5 / §8: Identity Propagation Trusts
    if (path === "/admin/v1/IdentityPropagationTrusts") {
      if (method === "GET") {
        const items = filtered(trusts, u.searchParams.get("filter"));
        return items ? send(res, 200, listResponse(items), "application/scim+json") : scimError(res, 400, "Invalid filter.", "invalidFilter");
      }
      if (method === "POST") {
        if (!Array.isArray(body.schemas) || !body.schemas.includes(S.trust) || !body.name || !body.type || !body.issuer) {
          return scimError(res, 400, "Missing required attributes.", "invalidValue", "error.common.validation.missingReqAttributes");
        }
        if (trusts.some((t) => t.issuer === body.issuer)) return scimError(res, 400, "An Identity Propagation Trust with the same issuer already exists.", "uniqueness");
        const trust = { ...body, id: randomBytes(16).toString("hex"), active: body.active === true }; // §5: active defaults to false
        trusts.push(trust);
        return send(res, 201, trust, "application/scim+json");
      }
    }
    // SCIM PATCH (RFC 7644 §3.5.2) on one trust: `add` appends to multi-valued attributes, `replace` sets.
    // §5 names `name` immutable; the PATCH endpoint itself is UNVERIFIED (oci-go-sdk PatchIdentityPropagationTrust).
    const trustPath = /^\/admin\/v1\/IdentityPropagationTrusts\/([^/]+)$/.exec(path);
    if (trustPath) {
      const trust = trusts.find((t) => t.id === decodeURIComponent(trustPath[1]!));
      if (!trust) return scimError(res, 404, `Resource ${trustPath[1]} not found.`);
      if (method === "GET") return send(res, 200, trust, "application/scim+json");
      if (method === "PATCH") {
        const ops = body.Operations;
        if (!Array.isArray(body.schemas) || !body.schemas.includes(S.patch) || !Array.isArray(ops)) return scimError(res, 400, "Invalid PatchOp request.", "invalidSyntax");
        for (const op of ops as Json[]) {
          const attr = String(op.path);
          if (attr === "name" || attr === "issuer") return scimError(res, 400, `Attribute ${attr} is immutable.`, "mutability");
          if (op.op === "add" && Array.isArray(op.value)) trust[attr] = [...new Set([...((trust[attr] as unknown[]) ?? []), ...op.value])];
          else if (op.op === "replace" || op.op === "add") trust[attr] = op.value;
          else return scimError(res, 400, `Unsupported operation ${String(op.op)}.`, "invalidSyntax");
        }
        return send(res, 200, trust, "application/scim+json");
      }
    }
    return scimError(res, 404, `No resource at ${method} ${path}.`);
  }

  const host = o.host ?? `idcs-${randomBytes(16).toString("hex")}.identity.oraclecloud.com`;
  const served = await serveDomain(host, handle, (res, e) => scimError(res, 500, String(e)));
  url = served.url;
  return {
    ...served,
    apps,
    settings,
    trusts,
    requests,
    exchanges,
    app: (displayName) => [...apps.values()].find((a) => a.displayName === displayName),
    userToken: (username, clientId) => sign({ client_id: clientId, sub_type: "user", user_displayname: username, scope: "openid" }, username),
    failNext: (method, path, status, detail, scimType) => void injected.push({ key: `${method} ${path}`, status, detail, scimType }),
    close: served.close,
  };
}
