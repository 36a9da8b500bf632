/**
 * Test simulator of an Oracle OCI IAM Identity Domain (IDCS): SCIM admin API + OAuth endpoints.
 *
 * Spec: ../shared/research/idp-apis.md §3, contract list §3.8. Every behaviour cites its subsection.
 * Implemented:
 *   - POST /oauth2/v1/token client_credentials (Basic auth): admin clients with
 *     scope=urn:opc:idm:__myscopes__ (§3.1) and active confidential apps allowed that grant (§3.8.1);
 *     RS256 JWTs whose `iss` is https://identity.oraclecloud.com/ (§3.7). OAuth errors are
 *     {"error","error_description"} (§3.7).
 *   - POST/GET /admin/v1/Apps, GET/DELETE /admin/v1/Apps/{id} (§3.2, §3.8.2), with SCIM errors whose
 *     `status` is a string, plus `detail` and `scimType` (§3.7).
 *   - POST /admin/v1/AppClientSecretRegenerator (§3.2 "Secret rotation").
 *   - PUT /admin/v1/AppStatusChanger/{id} (§3.3).
 *   - GET/PATCH /admin/v1/Settings/Settings, GET /admin/v1/SigningCert/jwk (§3.4, §3.8.4).
 *   - POST/GET /admin/v1/IdentityPropagationTrusts, GET/PATCH …/{id} (§3.5, §3.8.5).
 *   - GET /.well-known/openid-configuration without registration_endpoint (§3.7 "No DCR", §3.8.6).
 *   - POST /oauth2/v1/token UPST token exchange (§3.6, §3.8.1), checked against the trusts; a trust
 *     whose subjectType is "User" (the seed's, §3.5) takes user tokens only (UNVERIFIED: the exact
 *     refusal; a client-credentials token's subject is the client, which maps to no user).
 *   - GET /oauth2/v1/authorize + authorization_code/refresh_token grants (§3.8.1 "authorization_code/refresh
 *     for the app"): PKCE S256 when a challenge is sent, the redirect URI must be registered on the app,
 *     the signed-in user (`signedInUser`, default alice) approves at once.
 * Not implemented: Grants, user management.
 * UNVERIFIED and chosen here: the discovery document's `issuer` (the domain URL, so standard clients
 * can discover it), the regenerator's body/response shape, the text of the SCIM `detail`s.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createHash, createPublicKey, randomBytes, randomUUID, type KeyObject } from "node:crypto";
import { SignJWT, exportJWK, jwtVerify } from "jose";
import { basicCredentials, rsaKey, sendJson, serve } from "./common.js";

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
  /** The OAuth client id (§3.2: `name`, server-generated). */
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

export interface OciSim {
  url: string;
  apps: Map<string, OciApp>;
  settings: Json;
  trusts: Json[];
  requests: Array<{ method: string; path: string; auth?: string }>;
  /** Every UPST exchange that succeeded: who asked, for whom, and the key the UPST is bound to. */
  exchanges: Array<{ clientId: string; subject: string; subjectClientId?: string; publicKeyDer: string }>;
  app(displayName: string): OciApp | undefined;
  /** An IDCS-issued access token for a user, as the authorization-code flow would give (§3.7 iss). */
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
}

export async function startOci(o: OciOptions = {}): Promise<OciSim> {
  const admin = { id: o.adminClientId ?? "admin-app", secret: o.adminClientSecret ?? "admin-app-secret" };
  const { privateKey, publicKey: signingKey, jwk } = await rsaKey({ kid: "SIGNING_KEY" });
  const apps = new Map<string, OciApp>();
  // §3.4: single pre-seeded instance, id "Settings"; client access is off until enabled.
  const settings: Json = { id: "Settings", schemas: [S.settings], signingCertPublicAccess: false, csrAccess: "none" };
  const trusts: Json[] = [];
  const requests: OciSim["requests"] = [];
  const exchanges: OciSim["exchanges"] = [];
  const codes = new Map<string, { clientId: string; redirectUri: string; challenge?: string; user: string; scope: string }>();
  const refreshTokens = new Map<string, { clientId: string; user: string; scope: string }>();
  const injected: Array<{ key: string; status: number; detail: string; scimType?: string }> = [];
  let url = "";

  const sign = (claims: Json, sub: string, ttlSec = 3600) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: jwk.kid, typ: "JWT" })
      .setIssuer(IDCS_ISSUER) // §3.7: IDCS tokens carry https://identity.oraclecloud.com/, not the domain URL
      .setSubject(sub)
      .setAudience(url) // UNVERIFIED: the domain URL as audience
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSec)
      .setJti(randomUUID())
      .sign(privateKey);

  const send = (res: ServerResponse, status: number, body?: unknown, type = "application/json") => sendJson(res, status, body, {}, type);
  // §3.7: SCIM error shape; `status` is a string.
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
    // §3.2: clientSecret is readOnly, returned by default
    ...(withSecret && a.clientType !== "public" && { clientSecret: a.clientSecret }),
    meta: { resourceType: "App", location: `${url}/admin/v1/Apps/${a.id}` },
  });

  async function isAdmin(req: IncomingMessage): Promise<boolean> {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    if (!m) return false;
    try {
      const { payload } = await jwtVerify(m[1]!, signingKey, { issuer: IDCS_ISSUER });
      return payload.client_id === admin.id && String(payload.scope ?? "").split(" ").includes("urn:opc:idm:__myscopes__");
    } catch {
      return false;
    }
  }

  /** §3.2: `filter=displayName eq "x"` (SCIM string compare; displayName is not caseExact). */
  function filtered<T extends Json>(items: T[], filter: string | null): T[] | undefined {
    if (!filter) return items;
    const m = /^\s*(\w+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/.exec(filter);
    if (!m) return undefined;
    const value = m[2]!.replace(/\\(.)/g, "$1").toLowerCase();
    return items.filter((x) => String(x[m[1]!] ?? "").toLowerCase() === value);
  }
  const listResponse = (items: Json[]) => ({ schemas: [S.list], totalResults: items.length, Resources: items, startIndex: 1, itemsPerPage: items.length });

  /**
   * §3.6 / §3.8.1: UPST exchange. `subject_token_type` is the literal `jwt`; `public_key` is base64
   * DER SubjectPublicKeyInfo; the client must be listed in an active trust whose issuer is the
   * subject token's `iss` (signature checked against the domain key for IDCS tokens). Answer: {"token"}.
   * Errors are OAuth's {"error","error_description"} (§3.7): 400 invalid_request for a malformed
   * request, 400 invalid_grant for a subject token or trust that does not allow it; a bad client is
   * 401 invalid_client (checked before, in the token endpoint). UNVERIFIED and chosen here: the
   * descriptions' text, and that a key shorter than 2048 bits is refused (§3.6 names RSA-2048).
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
      claims = (await jwtVerify(form.get("subject_token") ?? "", signingKey, { issuer: IDCS_ISSUER })).payload as Json;
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

    // §3.7 discovery; §3.8.6: no registration_endpoint (OCI IAM has no DCR).
    if (method === "GET" && path === "/.well-known/openid-configuration") {
      return send(res, 200, {
        issuer: url,
        authorization_endpoint: `${url}/oauth2/v1/authorize`,
        token_endpoint: `${url}/oauth2/v1/token`,
        jwks_uri: `${url}/admin/v1/SigningCert/jwk`,
        userinfo_endpoint: `${url}/oauth2/v1/userinfo`,
        grant_types_supported: ["client_credentials", "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"],
        token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
        response_types_supported: ["code"],
        code_challenge_methods_supported: ["S256"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        scopes_supported: ["openid", "profile", "email", "urn:opc:idm:__myscopes__"],
      });
    }

    // §3.1 / §3.8.1: the token endpoint (client_credentials only here).
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
        if (grant === "authorization_code") {
          const c = codes.get(form.get("code") ?? "");
          codes.delete(form.get("code") ?? "");
          if (!c || c.clientId !== app.name || c.redirectUri !== form.get("redirect_uri")) return oauthError(res, 400, "invalid_grant", "Invalid authorization code.");
          if (c.challenge && createHash("sha256").update(form.get("code_verifier") ?? "").digest("base64url") !== c.challenge) return oauthError(res, 400, "invalid_grant", "Invalid code_verifier.");
          who = c;
        } else {
          const r = refreshTokens.get(form.get("refresh_token") ?? "");
          refreshTokens.delete(form.get("refresh_token") ?? "");
          if (!r || r.clientId !== app.name) return oauthError(res, 400, "invalid_grant", "Invalid refresh token.");
          who = r;
        }
        const rt = randomBytes(24).toString("base64url");
        refreshTokens.set(rt, { clientId: app.name, user: who.user, scope: who.scope });
        const token = await sign({ client_id: app.name, sub_type: "user", user_displayname: who.user, scope: who.scope }, who.user);
        return send(res, 200, { access_token: token, token_type: "Bearer", expires_in: 3600, refresh_token: rt });
      }
      if (grant !== "client_credentials" || !app.allowedGrants.includes("client_credentials")) {
        return oauthError(res, 400, "unauthorized_client", "Client is not authorized for this grant type.");
      }
      const token = await sign({ client_id: app.name, scope, sub_type: "client" }, app.name);
      return send(res, 200, { access_token: token, token_type: "Bearer", expires_in: 3600 });
    }

    // §3.7 authorize endpoint: the signed-in user approves at once.
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
        codes.set(code, { clientId: app.name, redirectUri, challenge: q.get("code_challenge") ?? undefined, user: o.signedInUser ?? "alice", scope: q.get("scope") ?? "openid" });
        to.searchParams.set("code", code);
      }
      res.writeHead(302, { location: to.href });
      res.end();
      return;
    }

    // §3.4 / §3.8.4: the JWKS needs a token unless "Configure client access" is on.
    if (method === "GET" && path === "/admin/v1/SigningCert/jwk") {
      if (settings.signingCertPublicAccess !== true && !(await isAdmin(req))) return scimError(res, 401, "This operation is not permitted. You do not have access rights to this resource.");
      return send(res, 200, { keys: [jwk] });
    }

    if (!path.startsWith("/admin/v1/")) return send(res, 404, { error: "not_found" });
    if (!(await isAdmin(req))) return scimError(res, 401, "This operation is not permitted. You do not have access rights to this resource.");

    // §3.2 / §3.8.2: Apps
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
      // §3.8.2: displayName uniqueness (server); RFC 7644 §3.3: 409 with scimType "uniqueness".
      const taken = [...apps.values()].some((a) => a.displayName.toLowerCase() === String(body.displayName).toLowerCase());
      if (taken) return scimError(res, 409, `An App with the same displayName "${String(body.displayName)}" already exists.`, "uniqueness", "error.common.uniquenessViolation");
      const id = randomBytes(16).toString("hex");
      const app: OciApp = {
        id,
        name: randomBytes(16).toString("hex"),
        clientSecret: randomUUID(),
        displayName: String(body.displayName),
        // §3.3: REST creates honour "active" from the body; default inactive as in the console.
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
        // §3.3: deletion requires active:false first (exact error UNVERIFIED).
        if (app.active) return scimError(res, 400, "The App is active. Deactivate it before deleting it.", "mutability");
        apps.delete(app.id);
        return send(res, 204);
      }
    }
    // §3.3: activation
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
    // §3.2: secret rotation (body/response shape UNVERIFIED: appId in, clientSecret out).
    if (path === "/admin/v1/AppClientSecretRegenerator" && method === "POST") {
      const app = typeof body.appId === "string" ? apps.get(body.appId) : undefined;
      if (!Array.isArray(body.schemas) || !body.schemas.includes(S.regenerator)) return scimError(res, 400, "Missing required attributes: schemas.", "invalidValue");
      if (!app) return scimError(res, 404, `Resource ${String(body.appId)} not found.`);
      app.clientSecret = randomUUID();
      return send(res, 201, { schemas: [S.regenerator], appId: app.id, clientSecret: app.clientSecret }, "application/scim+json");
    }
    // §3.4: Settings
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
    // §3.5 / §3.8.5: Identity Propagation Trusts
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
        const trust = { ...body, id: randomBytes(16).toString("hex"), active: body.active === true }; // §3.5: active defaults to false
        trusts.push(trust);
        return send(res, 201, trust, "application/scim+json");
      }
    }
    // SCIM PATCH (RFC 7644 §3.5.2) on one trust: `add` appends to multi-valued attributes, `replace` sets.
    // §3.5 names `name` immutable; the PATCH endpoint itself is UNVERIFIED (oci-go-sdk PatchIdentityPropagationTrust).
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

  const served = await serve(handle, (res, e) => scimError(res, 500, String(e)));
  url = served.url;
  return {
    url,
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
