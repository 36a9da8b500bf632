import { AuthError, type ProviderContext, McpAuthError, registerSecret, UsageError, type Json } from "../../sdk.js";
import { api, apiError, type ApiResponse } from "../http.js";
import type { ClientGrant } from "../options.js";

/** Keycloak's admin REST API (docs/idp/keycloak.md), signed in as a user (password grant on admin-cli) or a service account. */
const POLICY_TYPE = "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy";
const HOST_CHECK = "host-sending-registration-request-must-match";
const URI_CHECK = "client-uris-must-match";

export type AdminCredentials = { kind: "password"; user: string; password: string; realm: string } | { kind: "client"; clientId: string; secret: string; realm: string };

/** A public key for Keycloak's "Signed JWT" client authenticator. */
export interface SignedJwtKey {
  alg: string;
  publicJwk: Record<string, unknown>;
}

/**
 * "Signed JWT" (private_key_jwt): `clientAuthenticatorType` "client-jwt" (JWTClientAuthenticator.PROVIDER_ID)
 * with the public key as a JWKS string on the client, not a URL (OIDCConfigAttributes: use.jwks.url,
 * use.jwks.string, jwks.string, token.endpoint.auth.signing.alg; keycloak/keycloak
 * services/src/main/java/org/keycloak/protocol/oidc/OIDCConfigAttributes.java). Values are strings.
 */
function signedJwtAttributes(key: SignedJwtKey): Record<string, string> {
  return {
    "use.jwks.url": "false",
    "use.jwks.string": "true",
    "jwks.string": JSON.stringify({ keys: [key.publicJwk] }),
    "token.endpoint.auth.signing.alg": key.alg,
  };
}

/** The admin REST API. Master-realm admin tokens live 60 s, so every call makes sure the token has some left. */
export class KeycloakAdmin {
  private token?: { access: string; refresh?: string; expiresAt: number };
  constructor(
    private readonly ctx: ProviderContext,
    private readonly base: string,
    private readonly realm: string,
    private readonly creds: AdminCredentials,
  ) {}

  private get admin(): string {
    return `${this.base}/admin/realms/${encodeURIComponent(this.realm)}`;
  }

  private async accessToken(): Promise<string> {
    const now = this.ctx.now() / 1000;
    if (this.token && this.token.expiresAt - now > 10) return this.token.access;
    const url = `${this.base}/realms/${encodeURIComponent(this.creds.realm)}/protocol/openid-connect/token`;
    let form: Record<string, string>;
    if (this.token?.refresh) form = { grant_type: "refresh_token", client_id: "admin-cli", refresh_token: this.token.refresh };
    else if (this.creds.kind === "password") form = { grant_type: "password", client_id: "admin-cli", username: this.creds.user, password: this.creds.password };
    else form = { grant_type: "client_credentials", client_id: this.creds.clientId, client_secret: this.creds.secret };
    const res = await api<Json>(this.ctx, "POST", url, { form });
    if (res.status === 400 && form.grant_type === "refresh_token") {
      this.token = undefined; // the admin session ended: sign in again
      return this.accessToken();
    }
    if (res.status !== 200 || typeof res.body?.access_token !== "string") {
      const who = this.creds.kind === "password" ? `user "${this.creds.user}"` : `client "${this.creds.clientId}"`;
      const e = apiError(`Keycloak admin login (${who} in realm ${this.creds.realm})`, res, "check the admin credentials and --admin-realm");
      throw res.status === 401 || res.status === 400 ? new AuthError(e.message, { hint: e.hint, code: e.code }) : e;
    }
    const b = res.body;
    this.token = { access: String(b.access_token), refresh: typeof b.refresh_token === "string" ? b.refresh_token : undefined, expiresAt: now + Number(b.expires_in ?? 60) };
    registerSecret(this.token.access); // admin credentials: never printed, whatever a server echoes
    registerSecret(this.token.refresh);
    return this.token.access;
  }

  private async call(method: string, path: string, json?: unknown): Promise<ApiResponse<unknown>> {
    return api(this.ctx, method, `${this.admin}${path}`, { token: await this.accessToken(), json });
  }

  private fail(action: string, res: ApiResponse): McpAuthError {
    const hint = res.status === 403 ? "the admin account needs realm-management roles manage-clients and manage-realm" : undefined;
    return apiError(`${action} in realm ${this.realm}`, res, hint);
  }

  async checkRealm(): Promise<void> {
    const res = await this.call("GET", "");
    if (res.status === 404) throw new UsageError(`Keycloak has no realm "${this.realm}" at ${this.base}`);
    if (res.status !== 200) throw this.fail("reading the realm", res);
  }

  /** The realm's client-registration policy components (each config value a list of strings). */
  private async policies(): Promise<Json[]> {
    const res = await this.call("GET", `/components?type=${encodeURIComponent(POLICY_TYPE)}`);
    if (res.status !== 200 || !Array.isArray(res.body)) throw this.fail("reading client-registration policies", res);
    return res.body as Json[];
  }

  /**
   * Adds hosts to the anonymous Trusted Hosts policy, keeping everything already there, and sets its
   * two switches (docs/idp/keycloak.md "Trusted Hosts"):
   *  - `host-sending-registration-request-must-match` compares the *registering machine's* address with
   *    the trusted hosts. MCP clients register from wherever they run (a laptop), so it goes off unless
   *    `keepHostCheck`, which turns it (back) on;
   *  - `client-uris-must-match` keeps redirect URIs on the trusted hosts: always on here.
   * Keycloak refuses a PUT that lacks either switch or turns both off, so both are always sent.
   */
  async trustHosts(hosts: string[], keepHostCheck: boolean): Promise<{ detail: string; policy: boolean; hostCheck: boolean }> {
    const policy = (await this.policies()).find((c) => c.providerId === "trusted-hosts" && c.subType === "anonymous");
    if (!policy) return { detail: "no anonymous Trusted Hosts policy in the realm: any machine may register, with any redirect URI", policy: false, hostCheck: false };
    const config = { ...((policy.config ?? {}) as Record<string, string[]>) };
    const current = Array.isArray(config["trusted-hosts"]) ? config["trusted-hosts"] : [];
    const added = hosts.filter((h) => !current.includes(h));
    const wanted = { [HOST_CHECK]: [String(keepHostCheck)], [URI_CHECK]: ["true"] };
    const flagsChange = Object.entries(wanted).some(([k, v]) => config[k]?.length !== 1 || config[k]![0] !== v[0]);
    const switches = keepHostCheck ? "the registering machine's address must be a trusted host" : "any machine may register; redirect URIs must be on a trusted host";
    if (!added.length && !flagsChange) return { detail: `${hosts.length ? `${hosts.join(", ")} already trusted` : "unchanged"}; ${switches}`, policy: true, hostCheck: keepHostCheck };
    config["trusted-hosts"] = [...current, ...added];
    Object.assign(config, wanted);
    const put = await this.call("PUT", `/components/${encodeURIComponent(String(policy.id))}`, { ...policy, config });
    if (put.status !== 204 && put.status !== 200) throw this.fail('updating the "Trusted Hosts" policy', put);
    const what = added.length ? `added ${added.join(", ")} (now: ${config["trusted-hosts"].join(", ")})` : `${hosts.join(", ")} already trusted`;
    return { detail: `${what}; ${switches}`, policy: true, hostCheck: keepHostCheck };
  }

  /**
   * The client scopes an anonymous DCR client may name in its registration, by the anonymous
   * "Allowed Client Scopes" policy (docs/idp/keycloak.md "Scopes"): its `allowed-client-scopes`, plus the
   * realm's default and optional client scopes while `allow-default-scopes` is on (its default). Only
   * openid-connect scopes are kept; `openid` only when the policy names it.
   */
  async dcrScopes(): Promise<{ allowed: string[]; realmDefaults: string[] }> {
    const policy = (await this.policies()).find((c) => c.providerId === "allowed-client-templates" && c.subType === "anonymous");
    const all = await this.call("GET", "/client-scopes");
    if (all.status !== 200 || !Array.isArray(all.body)) throw this.fail("listing client scopes", all);
    const oidc = new Set((all.body as Json[]).filter((s) => s.protocol === undefined || s.protocol === "openid-connect").map((s) => String(s.name)));
    const names = async (list: string) => {
      const res = await this.call("GET", `/${list}`);
      if (res.status !== 200 || !Array.isArray(res.body)) throw this.fail("reading the realm default scopes", res);
      return (res.body as Json[]).map((s) => String(s.name)).filter((n) => oidc.has(n));
    };
    const realmDefaults = await names("default-default-client-scopes");
    const realmOptional = await names("default-optional-client-scopes");
    if (!policy) return { allowed: [...realmDefaults, ...realmOptional], realmDefaults }; // no policy: nothing is refused
    const config = (policy.config ?? {}) as Record<string, string[]>;
    const listed = (config["allowed-client-scopes"] ?? []).filter((n) => oidc.has(n) || n === "openid");
    const allowDefaults = config["allow-default-scopes"]?.[0] !== "false";
    return { allowed: [...new Set([...listed, ...(allowDefaults ? [...realmDefaults, ...realmOptional] : [])])], realmDefaults };
  }

  /** A client scope with an audience mapper, and a realm default so DCR clients get it too. */
  async ensureAudienceScope(name: string, audience: string, isClient: boolean): Promise<{ id: string; action: string }> {
    const mapper = {
      name: `audience ${audience}`.slice(0, 255),
      protocol: "openid-connect",
      protocolMapper: "oidc-audience-mapper",
      config: {
        [isClient ? "included.client.audience" : "included.custom.audience"]: audience,
        "access.token.claim": "true",
        "id.token.claim": "false",
        "introspection.token.claim": "true",
      },
    };
    let action = "exists";
    let scope = await this.findScope(name);
    if (!scope) {
      const res = await this.call("POST", "/client-scopes", {
        name,
        protocol: "openid-connect",
        description: "Audience for MCP servers (mcp-auth)",
        attributes: { "include.in.token.scope": "true", "display.on.consent.screen": "false" },
        protocolMappers: [mapper],
      });
      if (res.status !== 201 && res.status !== 409) throw this.fail(`creating client scope "${name}"`, res);
      scope = await this.findScope(name);
      if (!scope) throw new McpAuthError(`client scope "${name}" was created but cannot be found`);
      action = "created";
    } else {
      const mappers = await this.call("GET", `/client-scopes/${scope.id}/protocol-mappers/models`);
      if (mappers.status !== 200) throw this.fail(`reading the mappers of "${name}"`, mappers);
      const has = ((mappers.body as Json[]) ?? []).some((m) => {
        const c = (m.config ?? {}) as Record<string, string>;
        return m.protocolMapper === "oidc-audience-mapper" && (c["included.custom.audience"] === audience || c["included.client.audience"] === audience);
      });
      if (!has) {
        const add = await this.call("POST", `/client-scopes/${scope.id}/protocol-mappers/models`, mapper);
        if (add.status !== 201 && add.status !== 409) throw this.fail(`adding the audience mapper to "${name}"`, add);
        action = "mapper added";
      }
    }
    const defaults = await this.call("GET", "/default-default-client-scopes");
    if (defaults.status !== 200 || !Array.isArray(defaults.body)) throw this.fail("reading the realm default scopes", defaults);
    if (!(defaults.body as Json[]).some((d) => d.id === scope!.id)) {
      const def = await this.call("PUT", `/default-default-client-scopes/${scope.id}`);
      // 409: it became a default meanwhile — the state we want.
      if (def.status !== 204 && def.status !== 200 && def.status !== 409) throw this.fail(`making "${name}" a realm default scope`, def);
    }
    return { id: scope.id, action };
  }

  private async findScope(name: string): Promise<{ id: string } | undefined> {
    const res = await this.call("GET", "/client-scopes");
    if (res.status !== 200 || !Array.isArray(res.body)) throw this.fail("listing client scopes", res);
    const s = (res.body as Json[]).find((x) => x.name === name);
    return s ? { id: String(s.id) } : undefined;
  }

  async ensureClient(clientId: string, grant: ClientGrant, port: number, key?: SignedJwtKey): Promise<{ uuid: string; action: "created" | "reused" }> {
    const isPublic = grant === "authorization_code";
    const res = await this.call("POST", "/clients", {
      clientId,
      name: `${clientId} (mcp-auth)`,
      protocol: "openid-connect",
      publicClient: isPublic,
      clientAuthenticatorType: key ? "client-jwt" : "client-secret",
      standardFlowEnabled: isPublic,
      directAccessGrantsEnabled: false,
      serviceAccountsEnabled: !isPublic,
      redirectUris: isPublic ? [`http://127.0.0.1:${port}/callback`] : [],
      attributes: isPublic ? { "pkce.code.challenge.method": "S256", "oauth2.device.authorization.grant.enabled": "true" } : key ? signedJwtAttributes(key) : {},
    });
    if (res.status === 201) {
      const location = res.headers.get("location") ?? "";
      const uuid = location.split("/").pop();
      if (uuid) return { uuid, action: "created" };
    } else if (res.status !== 409) {
      throw this.fail(`creating client "${clientId}"`, res);
    }
    const found = await this.call("GET", `/clients?clientId=${encodeURIComponent(clientId)}`);
    const c = Array.isArray(found.body) ? (found.body as Json[]).find((x) => x.clientId === clientId) : undefined;
    if (!c) throw this.fail(`finding client "${clientId}"`, found);
    if (Boolean(c.publicClient) !== isPublic) {
      throw new UsageError(`client "${clientId}" already exists as a ${c.publicClient ? "public" : "confidential"} client`, { hint: "pass another --create-client name, or the matching --grant" });
    }
    if (key) await this.useSignedJwt(String(c.id), key);
    return { uuid: String(c.id), action: res.status === 409 ? "reused" : "created" };
  }

  /** Switches an existing client to "Signed JWT" with this public key (GET the representation, PUT it back changed). */
  private async useSignedJwt(uuid: string, key: SignedJwtKey): Promise<void> {
    const got = await this.call("GET", `/clients/${uuid}`);
    if (got.status !== 200 || !got.body || typeof got.body !== "object") throw this.fail("reading the client", got);
    const rep = got.body as Json;
    const attributes = { ...((rep.attributes as Json | undefined) ?? {}), ...signedJwtAttributes(key) };
    const put = await this.call("PUT", `/clients/${uuid}`, { ...rep, clientAuthenticatorType: "client-jwt", attributes });
    if (put.status !== 204 && put.status !== 200) throw this.fail("registering the public key on the client", put);
  }

  /** Names of a client's default and optional scopes, by clientId (used to check what a DCR client got). */
  async scopesOf(clientId: string): Promise<{ default: string[]; optional: string[] } | undefined> {
    const found = await this.call("GET", `/clients?clientId=${encodeURIComponent(clientId)}`);
    const c = Array.isArray(found.body) ? (found.body as Json[]).find((x) => x.clientId === clientId) : undefined;
    if (!c) return undefined;
    const list = async (kind: string) => {
      const res = await this.call("GET", `/clients/${encodeURIComponent(String(c.id))}/${kind}-client-scopes`);
      return Array.isArray(res.body) ? (res.body as Json[]).map((s) => String(s.name)) : [];
    };
    return { default: await list("default"), optional: await list("optional") };
  }

  async attachScope(uuid: string, scopeId: string): Promise<void> {
    const res = await this.call("PUT", `/clients/${uuid}/default-client-scopes/${scopeId}`);
    if (res.status !== 204 && res.status !== 200) throw this.fail("attaching the audience scope to the client", res);
  }

  async secret(uuid: string): Promise<string> {
    const res = await this.call("GET", `/clients/${uuid}/client-secret`);
    const value = (res.body as Json | undefined)?.value;
    if (res.status !== 200 || typeof value !== "string") throw this.fail("reading the client secret", res);
    return value;
  }

  async rotateSecret(uuid: string): Promise<string> {
    const res = await this.call("POST", `/clients/${uuid}/client-secret`);
    const value = (res.body as Json | undefined)?.value;
    if (res.status !== 200 || typeof value !== "string") throw this.fail("regenerating the client secret", res);
    return value;
  }
}

