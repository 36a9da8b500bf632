import { AuthError, type ProviderContext, McpAuthError, NetworkError, registerSecret, UsageError, type Json } from "../../sdk.js";
import { api, type ApiResponse } from "../http.js";
import { IDCS_TOKEN_ISSUER } from "./discovery.js";

/**
 * The SCIM admin API of an OCI IAM identity domain (IDCS), as described in docs/idp/oci.md (the §
 * numbers below are its sections): a client-credentials admin token (§1), Apps (§2),
 * AppStatusChanger (§3), Settings (§4). Every failure is one line built from the SCIM error
 * body (`detail`, string `status`, `scimType`, §7) or the OAuth one (`error`, `error_description`).
 */

const SCHEMA = {
  app: "urn:ietf:params:scim:schemas:oracle:idcs:App",
  statusChanger: "urn:ietf:params:scim:schemas:oracle:idcs:AppStatusChanger",
  regenerator: "urn:ietf:params:scim:schemas:oracle:idcs:AppClientSecretRegenerator",
  patch: "urn:ietf:params:scim:api:messages:2.0:PatchOp",
  trust: "urn:ietf:params:scim:schemas:oracle:idcs:IdentityPropagationTrust",
};

export interface OciApp {
  id: string;
  /** The OAuth client id (§2: the app's `name`). */
  clientId: string;
  clientSecret?: string;
  active: boolean;
  raw: Json;
}

export interface AppSpec {
  displayName: string;
  redirectUri: string;
}

export class OciAdmin {
  private token?: string;
  constructor(
    private readonly ctx: ProviderContext,
    readonly domain: string,
    private readonly clientId: string,
    private readonly clientSecret: string,
  ) {}

  /** §1: client credentials, Basic auth, scope urn:opc:idm:__myscopes__. */
  async signIn(): Promise<void> {
    const basic = Buffer.from(`${encodeURIComponent(this.clientId)}:${encodeURIComponent(this.clientSecret)}`).toString("base64");
    const res = await api<Json>(this.ctx, "POST", `${this.domain}/oauth2/v1/token`, {
      headers: { authorization: `Basic ${basic}` },
      form: { grant_type: "client_credentials", scope: "urn:opc:idm:__myscopes__" },
    });
    if (res.status !== 200 || typeof res.body?.access_token !== "string") {
      throw failure(`OCI admin sign-in as client "${this.clientId}"`, res, "check --admin-client-id and its secret; the client must be an active confidential app with an administrator app role");
    }
    this.token = res.body.access_token;
    registerSecret(this.token); // the admin's bearer credential: never printed, whatever a server echoes
  }

  private call(method: string, path: string, json?: unknown): Promise<ApiResponse<Json>> {
    return api<Json>(this.ctx, method, `${this.domain}${path}`, { token: this.token, json, headers: { accept: "application/scim+json, application/json" } });
  }

  /** §2: `GET /admin/v1/Apps?filter=displayName eq "…"`. */
  async findApp(displayName: string): Promise<OciApp | undefined> {
    const filter = `displayName eq "${displayName.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
    const res = await this.call("GET", `/admin/v1/Apps?${new URLSearchParams({ filter })}`);
    if (res.status !== 200) throw failure("searching the domain's apps", res);
    const found = ((res.body?.Resources ?? []) as Json[]).filter((a) => a.displayName === displayName);
    if (found.length > 1) throw new UsageError(`${found.length} apps are named "${displayName}" in the domain`, { hint: "pass a --name that is unique" });
    return found[0] ? appOf(found[0], "reading") : undefined;
  }

  /** §2: a confidential OAuth client app from CustomWebAppTemplateId; the 201 carries `name` and `clientSecret`. */
  async createApp(s: AppSpec): Promise<OciApp> {
    const res = await this.call("POST", "/admin/v1/Apps", {
      schemas: [SCHEMA.app],
      displayName: s.displayName,
      description: "OAuth client for an MCP server, created by mcp-auth",
      basedOnTemplate: { value: "CustomWebAppTemplateId" },
      isOAuthClient: true,
      clientType: "confidential",
      active: true,
      // The seed's steps 12-13: authorization code (with its redirect) and client credentials.
      allowedGrants: ["authorization_code", "client_credentials", "refresh_token"],
      redirectUris: [s.redirectUri],
    });
    if (res.status !== 201) {
      throw failure(`creating app "${s.displayName}"`, res, res.status === 409 ? "another app already has that name: pass another --name" : undefined);
    }
    const app = appOf(res.body, "creating");
    if (!app.clientSecret) throw new McpAuthError(`OCI created app "${s.displayName}" (${app.id}) but its response holds no clientSecret`);
    return app;
  }

  /** §3: the documented, idempotent activation. */
  async activate(id: string): Promise<boolean> {
    const res = await this.call("PUT", `/admin/v1/AppStatusChanger/${encodeURIComponent(id)}`, { active: true, schemas: [SCHEMA.statusChanger] });
    if (res.status !== 200) throw failure(`activating app ${id}`, res);
    return res.body?.active === true;
  }

  async getApp(id: string): Promise<OciApp> {
    const res = await this.call("GET", `/admin/v1/Apps/${encodeURIComponent(id)}`);
    if (res.status !== 200) throw failure(`reading app ${id}`, res);
    return appOf(res.body, "reading");
  }

  /** §2 "Secret rotation": `POST /admin/v1/AppClientSecretRegenerator`. */
  async regenerateSecret(id: string): Promise<string> {
    const res = await this.call("POST", "/admin/v1/AppClientSecretRegenerator", { appId: id, schemas: [SCHEMA.regenerator] });
    if ((res.status !== 200 && res.status !== 201) || typeof res.body?.clientSecret !== "string") throw failure(`regenerating the secret of app ${id}`, res);
    registerSecret(res.body.clientSecret);
    return res.body.clientSecret;
  }

  /** The domain's Settings resource (single instance, id "Settings"). */
  async settings(): Promise<Json> {
    const get = await this.call("GET", "/admin/v1/Settings/Settings");
    if (get.status !== 200 || !get.body) throw failure("reading the domain settings", get);
    return get.body;
  }

  /** §4: "Configure client access" = `signingCertPublicAccess`; PATCH, since PUT needs the whole resource. Returns whether it changed. */
  async publishSigningCert(settings: Json): Promise<boolean> {
    if (settings.signingCertPublicAccess === true) return false;
    const res = await this.call("PATCH", "/admin/v1/Settings/Settings", {
      schemas: [SCHEMA.patch],
      Operations: [{ op: "replace", path: "signingCertPublicAccess", value: true }],
    });
    if (res.status !== 200 && res.status !== 204) throw failure('enabling "Configure client access" (signingCertPublicAccess)', res);
    return true;
  }

  /**
   * §5: the Identity Propagation Trust that lets `clientId` exchange IDCS-issued user tokens for a
   * UPST (§6), as the seed's `oci identity-domains identity-propagation-trust create`. The issuer
   * is unique per domain, so an existing trust for it is reused: made active and given the client.
   */
  async ensureTrust(issuer: string, clientId: string): Promise<{ id: string; action: "created" | "updated" | "reused" }> {
    const filter = `issuer eq "${issuer.replace(/"/g, '\\"')}"`;
    const list = await this.call("GET", `/admin/v1/IdentityPropagationTrusts?${new URLSearchParams({ filter })}`);
    if (list.status !== 200) throw failure("searching the identity propagation trusts", list);
    const existing = ((list.body?.Resources ?? []) as Json[]).find((t) => t.issuer === issuer);
    if (!existing) {
      const res = await this.call("POST", "/admin/v1/IdentityPropagationTrusts", {
        schemas: [SCHEMA.trust],
        name: "MCP token exchange",
        type: "JWT",
        issuer,
        publicKeyEndpoint: `${this.domain}/admin/v1/SigningCert/jwk`,
        active: true, // §5: defaults to false
        subjectClaimName: "sub",
        subjectMappingAttribute: "username",
        subjectType: "User",
        clientClaimName: "iss",
        clientClaimValues: [issuer],
        allowImpersonation: false,
        oauthClients: [clientId],
      });
      if (res.status !== 201 || typeof res.body?.id !== "string") throw failure("creating the identity propagation trust", res);
      return { id: res.body.id, action: "created" };
    }
    const id = String(existing.id);
    const clients = Array.isArray(existing.oauthClients) ? existing.oauthClients.map(String) : [];
    const ops: Json[] = [];
    if (!clients.includes(clientId)) ops.push({ op: "add", path: "oauthClients", value: [clientId] });
    if (existing.active !== true) ops.push({ op: "replace", path: "active", value: true });
    if (!ops.length) return { id, action: "reused" };
    const res = await this.call("PATCH", `/admin/v1/IdentityPropagationTrusts/${encodeURIComponent(id)}`, { schemas: [SCHEMA.patch], Operations: ops });
    if (res.status !== 200 && res.status !== 204) throw failure(`updating identity propagation trust ${id}`, res);
    return { id, action: "updated" };
  }
}

/**
 * The `iss` the domain's tokens carry: its custom issuer (Settings `issuer`, "Tenant issuer") when it
 * has one, else the documented default (docs/idp/oci.md). Refused if it could not be an issuer.
 */
export function tenantIssuer(settings: Json): string {
  const v = settings.issuer;
  if (v === undefined || v === null || v === "") return IDCS_TOKEN_ISSUER;
  if (typeof v !== "string" || !/^[\x21-\x7e]{1,2048}$/.test(v)) throw new McpAuthError("the domain's Settings name an issuer that is not a printable string (attribute \"issuer\"); refusing to build a trust on it");
  return v;
}

function appOf(b: Json | undefined, doing: string): OciApp {
  if (!b || typeof b.id !== "string" || typeof b.name !== "string") throw new McpAuthError(`OCI answered ${doing} an app without its id and name (client id)`);
  const secret = typeof b.clientSecret === "string" ? b.clientSecret : undefined;
  if (secret) registerSecret(secret);
  return { id: b.id, clientId: b.name, clientSecret: secret, active: b.active === true, raw: b };
}

/**
 * One line from a SCIM error (§7: `detail`, `status` as a string, `scimType`) or an OAuth error.
 * 401/403 → AuthError (exit 4); 400/404/409 → UsageError (exit 2: the request, i.e. the flags, was
 * refused); 5xx → NetworkError (exit 3).
 */
export function failure(action: string, res: ApiResponse, hint?: string): McpAuthError {
  const b = (res.body ?? {}) as Json;
  const parts = [
    typeof b.detail === "string" ? b.detail : undefined,
    typeof b.scimType === "string" ? `(scimType ${b.scimType})` : undefined,
    typeof b.error === "string" ? b.error : undefined,
    typeof b.error_description === "string" ? b.error_description : undefined,
  ].filter((x): x is string => Boolean(x));
  const detail = (parts.length ? parts.join(": ").replace(/: \(scimType/, " (scimType") : res.text ? res.text.slice(0, 200) : "(empty body)").replace(/\s+/g, " ");
  const message = `OCI ${action} failed: HTTP ${res.status}: ${detail}`;
  const code = typeof b.scimType === "string" ? b.scimType : typeof b.error === "string" ? b.error : undefined;
  if (res.status === 401 || res.status === 403) return new AuthError(message, { hint, code });
  if (res.status >= 500) return new NetworkError(message, { hint, code });
  if (res.status === 400 || res.status === 404 || res.status === 409) return new UsageError(message, { hint, code });
  return new McpAuthError(message, { hint, code });
}
