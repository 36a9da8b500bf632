import { type ProviderContext, type McpAuthError, UsageError, type Json } from "../../sdk.js";
import { api, apiError, type ApiResponse } from "../http.js";
import type { ClientGrant } from "../options.js";

/**
 * Thunder's applications API with an admin token, and the shape of what it accepts in each release
 * (docs/idp/thunder.md, "The applications API"). Go's JSON decoder drops unknown keys without a word,
 * so a body in the wrong shape "succeeds" without what it asked for: the shape is worked out from what
 * the server shows (its own seeded applications), and what it stored is read back.
 */
export type Casing = "snake" | "camel";
/** Where the access-token lifetime goes: token.accessToken.validityPeriod ("flat"), or split by subject from 0.48. */
export type TokenShape = "flat" | "split";

export interface AppSummary {
  id: string;
  name: string;
  clientId?: string;
}

export interface AppList {
  items: AppSummary[];
  casing?: Casing;
  /** Applications carry a `type` (ThunderID ≥ 1.0.0-alpha2, which requires one on create). */
  typed: boolean;
}

export class ThunderAdmin {
  constructor(
    private readonly ctx: ProviderContext,
    private readonly url: string,
    private readonly token: string,
    /** The token came from --admin-token-env (its 401 means something else than a stale assertion). */
    private readonly given = false,
  ) {}
  private async call(method: string, path: string, json?: unknown): Promise<ApiResponse<Json>> {
    return api<Json>(this.ctx, method, `${this.url}${path}`, { token: this.token, json });
  }
  fail(action: string, res: ApiResponse): McpAuthError {
    const hint =
      res.status === 403
        ? "the admin needs the 'system' permission"
        : res.status === 401 && this.given
          ? "the token from --admin-token-env is expired or was not issued by this Thunder"
          : undefined;
    return apiError(action, res, hint);
  }
  async list(): Promise<AppList> {
    const res = await this.call("GET", "/applications");
    if (res.status !== 200) throw this.fail("listing applications", res);
    const apps = (Array.isArray(res.body?.applications) ? res.body.applications : []) as Json[];
    const casing = apps.some((a) => "client_id" in a || "auth_flow_id" in a) ? "snake" : apps.some((a) => "clientId" in a || "authFlowId" in a || "isReadOnly" in a) ? "camel" : undefined;
    return {
      items: apps.filter((a) => a && typeof a === "object").map((a) => ({ id: String(a.id), name: String(a.name), clientId: str(a.clientId ?? a.client_id) })),
      casing,
      typed: apps.some((a) => typeof a?.type === "string" && a.type !== ""),
    };
  }
  async get(id: string): Promise<Json> {
    const res = await this.call("GET", `/applications/${encodeURIComponent(id)}`);
    if (res.status !== 200) throw this.fail(`reading application ${id}`, res);
    return res.body;
  }
  async create(app: Json): Promise<ApiResponse<Json>> {
    return this.call("POST", "/applications", app);
  }
  async update(id: string, app: Json): Promise<Json> {
    const res = await this.call("PUT", `/applications/${encodeURIComponent(id)}`, app);
    if (res.status !== 200) throw this.fail(`updating application ${id}`, res);
    return res.body;
  }
  async delete(id: string): Promise<void> {
    const res = await this.call("DELETE", `/applications/${encodeURIComponent(id)}`);
    if (res.status !== 204 && res.status !== 200) throw this.fail(`deleting application ${id}`, res);
  }
  /** Thunder ≥ 0.32 files applications under an organization unit: use the default one. */
  async defaultOu(): Promise<string | undefined> {
    const res = await this.call("GET", "/organization-units");
    if (res.status !== 200) return undefined;
    const units = ((res.body?.organizationUnits ?? res.body?.organization_units ?? []) as Json[]).filter((u) => u && typeof u.id === "string");
    const preferred = units.find((u) => u.handle === "default") ?? units[0];
    return preferred ? String(preferred.id) : undefined;
  }
  /**
   * The token shape this server stores, read off an application it already has (the Console is always
   * seeded, with an OAuth configuration): 0.48+ shows token.accessToken.userConfig even when nobody set it.
   */
  async tokenShape(list: AppList): Promise<TokenShape | undefined> {
    if (list.casing === "snake") return "flat";
    const probe = list.items.find((a) => a.clientId === "CONSOLE") ?? list.items.find((a) => a.clientId);
    if (!probe) return undefined;
    const res = await this.call("GET", `/applications/${encodeURIComponent(probe.id)}`);
    if (res.status !== 200) return undefined;
    const at = accessTokenOf(inboundConfig(res.body));
    if (!at) return undefined;
    if ("userConfig" in at || "clientConfig" in at) return "split";
    if ("validityPeriod" in at) return "flat";
    return undefined;
  }
}

/** The error of a failed create, with the fixes this command can name. */
export function createError(name: string, res: ApiResponse): McpAuthError {
  const err = apiError(`creating application "${name}"`, res, res.status === 403 ? "the admin needs the 'system' permission" : undefined);
  if (err.code === "APP-1021") return new UsageError(err.message, { hint: "another application already uses that client id: pass --client-id" });
  return err;
}

/** Did a create fail because the server does not know this application type (1.0.0-alpha2 has no `mcp`)? */
export function unknownType(res: ApiResponse): boolean {
  const b = (res.body ?? {}) as Json;
  const key = b.message && typeof b.message === "object" ? (b.message as Json).key : undefined;
  return res.status === 400 && (key === "error.applicationservice.invalid_application_type" || (key === undefined && b.code === "APP-1040"));
}

/**
 * The application type to create with, best first. ThunderID ≥ 1.0.0-alpha2 requires one (APP-1042) and
 * never lets it change; older releases drop the key. `mcp` ("MCP client") exists from 1.0.0-beta, so
 * 1.0.0-alpha2 gets its nearest kin, `browser` (the public redirect client type the Console has).
 */
export function appTypes(grant: ClientGrant): string[] {
  return grant === "client_credentials" ? ["m2m"] : ["mcp", "browser"];
}

/** The OAuth part, in snake_case; `body()` converts it for camelCase servers. */
export function oauthConfig(grant: ClientGrant, clientId: string, port: number, validity: number, shape: TokenShape | undefined): Json {
  const token = { access_token: accessTokenLifetime(grant, validity, shape) };
  if (grant === "client_credentials") {
    return { client_id: clientId, grant_types: ["client_credentials"], token_endpoint_auth_method: "client_secret_basic", token };
  }
  return {
    client_id: clientId,
    redirect_uris: [`http://127.0.0.1:${port}/callback`],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
    pkce_required: true,
    public_client: true,
    scopes: ["openid"],
    token,
  };
}

/**
 * 0.48 moved the lifetime under the token's subject: the client itself (client_credentials, client_config)
 * or a user (user_config); the flat key is dropped there, as the split keys are before. Not knowing the
 * release, both are sent: each release keeps the one it knows.
 */
function accessTokenLifetime(grant: ClientGrant, validity: number, shape: TokenShape | undefined): Json {
  const split = { [grant === "client_credentials" ? "client_config" : "user_config"]: { validity_period: validity } };
  if (shape === "split") return split;
  if (shape === "flat") return { validity_period: validity };
  return { validity_period: validity, ...split };
}

/** The access-token lifetime an application's OAuth configuration holds for this grant, as stored. */
export function lifetimeOf(cfg: Json | undefined, grant: ClientGrant): number | undefined {
  const at = accessTokenOf(cfg);
  if (!at) return undefined;
  const sub = (grant === "client_credentials" ? at.clientConfig : at.userConfig) as Json | undefined;
  if ("userConfig" in at || "clientConfig" in at) return typeof sub?.validityPeriod === "number" ? sub.validityPeriod : undefined;
  const flat = at.validityPeriod ?? at.validity_period;
  return typeof flat === "number" ? flat : undefined;
}

function accessTokenOf(cfg: Json | undefined): Json | undefined {
  const token = (cfg?.token ?? undefined) as Json | undefined;
  const at = (token?.accessToken ?? token?.access_token) as Json | undefined;
  return at && typeof at === "object" ? at : undefined;
}

export function camel(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camel);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), camel(x)]));
  }
  return v;
}

export function body(casing: Casing, name: string, config: Json, o: { ouId?: string; type?: string } = {}): Json {
  const app: Json = {
    name,
    description: "OAuth client for MCP, created by mcp-auth",
    inbound_auth_config: [{ type: "oauth2", config }],
  };
  if (o.ouId) app.ou_id = o.ouId;
  // camelCase servers only: 0.28 is snake_case and has no types
  if (casing === "camel" && o.type) app.type = o.type;
  return casing === "camel" ? (camel(app) as Json) : app;
}

export function inboundConfig(app: Json | undefined): Json | undefined {
  const list = (app?.inbound_auth_config ?? app?.inboundAuthConfig) as Array<{ type?: string; config?: Json }> | undefined;
  const cfg = Array.isArray(list) ? list.find((c) => c?.type === "oauth2")?.config : undefined;
  return cfg && (cfg.client_id ?? cfg.clientId) ? cfg : undefined;
}

export function pick(o: Json, snake: string, camelKey: string): unknown {
  return o[snake] ?? o[camelKey];
}

/** A PUT body: the app as read, with a new secret in its OAuth config (PUT keeps the secret when it is omitted). */
export function withSecret(app: Json, casing: Casing, secret: string): Json {
  const copy = structuredClone(app);
  delete copy.id;
  const cfg = inboundConfig(copy)!;
  cfg[casing === "camel" ? "clientSecret" : "client_secret"] = secret;
  return copy;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}
