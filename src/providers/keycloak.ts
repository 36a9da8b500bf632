import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import type { Context } from "../context.js";
import { AuthError, McpAuthError, UsageError } from "../errors.js";
import { readSecret } from "../io/secret-input.js";
import { checkUrl } from "../oauth/client.js";
import { saveProfile } from "../core/profiles.js";
import { normalizeIssuer, type ProfileData } from "../target.js";
import { api, apiError, peekClaims, type ApiResponse } from "./http.js";
import { adminPassword, clientChoice, declareAdminOptions, declareClientOptions, type AdminOptions, type ClientGrant, type ClientOptions } from "./options.js";
import { defineProvider, type Check } from "./types.js";

/**
 * Keycloak (and kcp's Keycloak): the console clicks of the kcp MCP guide as one idempotent command
 * (idp-apis.md §2):
 *  - Trusted Hosts: add the MCP hosts to the anonymous `trusted-hosts` client-registration policy,
 *    so MCP clients may register themselves (DCR);
 *  - audience: a client scope with an `oidc-audience-mapper`, made a realm default so DCR clients
 *    get it, so tokens carry the `aud` the MCP server checks;
 *  - optionally a client for mcp-auth itself, saved as a profile;
 *  - verify: an anonymous DCR probe (deleted again) and the first token's `aud`.
 */
export interface KeycloakOptions extends AdminOptions, ClientOptions {
  profile: string;
  verify?: boolean;
  url: string;
  realm: string;
  adminRealm: string;
  adminClientId?: string;
  adminClientSecretEnv?: string;
  mcpHost?: string[];
  trustLoopback?: boolean;
  audience?: string;
  audienceClient?: boolean;
  clientScope: string;
  createClient?: string;
  printServerConfig?: boolean;
}

type Json = Record<string, unknown>;
const POLICY_TYPE = "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy";

export const keycloak = defineProvider<KeycloakOptions>({
  id: "keycloak",
  title: "Keycloak",
  summary: "Keycloak / kcp: trusted hosts for DCR, an audience scope, optionally a client for mcp-auth",
  declare: (cmd: Command) =>
    declareClientOptions(
      declareAdminOptions(
        cmd
          .requiredOption("--url <url>", "Keycloak base URL (e.g. https://auth.example.com)")
          .requiredOption("--realm <realm>", "realm the MCP server trusts")
          .option("--admin-realm <realm>", "realm of the admin account", "master"),
        "admin user (password grant on admin-cli)",
      ),
      "for --create-client",
    )
      .option("--admin-client-id <id>", "use this service-account client instead of a user")
      .option("--admin-client-secret-env <VAR>", "the service-account client's secret, from $VAR")
      .option("--mcp-host <host...>", "host(s) MCP clients register from / redirect to (Trusted Hosts)")
      .option("--trust-loopback", "also trust localhost and 127.0.0.1 (local MCP clients)")
      .option("--audience <aud>", "audience the MCP server expects (oauth_audience)")
      .option("--audience-client", "the audience is a client id of the realm (included.client.audience)")
      .option("--client-scope <name>", "client scope that carries the audience mapper", "mcp-audience")
      .option("--create-client <clientId>", "create (or reuse) a client for mcp-auth and save a profile for it")
      .option("--print-server-config", "print the matching kubernetes-mcp-server config.toml on stdout"),

  async bootstrap(ctx, o) {
    const { grant, port } = clientChoice(o);
    const base = normalizeIssuer(checkUrl(o.url, "--url", ctx.allowHttp).href);
    const issuer = `${base}/realms/${encodeURIComponent(o.realm)}`;
    const kc = new KeycloakAdmin(ctx, base, o.realm, await adminCredentials(ctx, o));
    await kc.checkRealm();

    const facts: Array<[string, string]> = [["issuer", issuer]];
    const hosts = [...new Set([...(o.mcpHost ?? []).map(hostOf), ...(o.trustLoopback ? ["localhost", "127.0.0.1"] : [])])];
    if (hosts.length) facts.push(["trusted hosts", await kc.trustHosts(hosts)]);

    let scopeId: string | undefined;
    if (o.audience) {
      const r = await kc.ensureAudienceScope(o.clientScope, o.audience, Boolean(o.audienceClient));
      scopeId = r.id;
      facts.push(["audience", `${o.audience} via client scope "${o.clientScope}" (${r.action}), a realm default scope`]);
    }

    let profile: string | undefined;
    let secret: string | undefined;
    let action: "created" | "reused" | "rotated" | "configured" = "configured";
    if (o.createClient) {
      const c = await kc.ensureClient(o.createClient, grant, port);
      action = c.action;
      if (scopeId) await kc.attachScope(c.uuid, scopeId);
      if (grant === "client_credentials") secret = o.rotateSecret ? await kc.rotateSecret(c.uuid) : await kc.secret(c.uuid);
      if (o.rotateSecret && grant === "client_credentials") action = "rotated";
      const data: ProfileData = {
        provider: "keycloak",
        issuer,
        clientId: o.createClient,
        grant,
        scopes: grant === "authorization_code" ? ["openid"] : undefined,
        redirectPort: grant === "authorization_code" ? port : undefined,
        tokenEndpointAuthMethod: grant === "authorization_code" ? "none" : "client_secret_basic",
        extra: { realm: o.realm, clientUuid: c.uuid, ...(o.audience ? { expectedAudience: o.audience } : {}) },
      };
      await saveProfile(ctx, { name: o.profile, data, clientSecret: secret, force: true });
      profile = o.profile;
      facts.push(["client", `${o.createClient} (${c.action}, ${grant})`]);
    }

    const checks: Check[] = [];
    const probeHost = o.mcpHost?.[0] ? hostOf(o.mcpHost[0]) : o.trustLoopback ? "127.0.0.1" : undefined;
    if (o.verify !== false && probeHost) checks.push(await dcrProbe(ctx, kc, base, o.realm, probeHost, o.audience ? o.clientScope : undefined));

    const serverConfig = o.audience
      ? `require_oauth = true\nauthorization_url = "${issuer}"\noauth_audience = "${o.audience}"\n`
      : `require_oauth = true\nauthorization_url = "${issuer}"\n`;
    return {
      profile,
      action,
      facts,
      clientSecret: secret,
      checks,
      stdout: o.printServerConfig ? serverConfig : undefined,
      notes: o.printServerConfig ? undefined : ["kubernetes-mcp-server config.toml (--print-server-config prints it alone):", ...serverConfig.trimEnd().split("\n").map((l) => `  ${l}`)],
      json: { issuer, trustedHosts: hosts, audience: o.audience ?? null, clientScope: o.audience ? o.clientScope : null },
    };
  },

  async verify(_ctx, o, _result, token) {
    const checks: Check[] = [];
    if (token && o.audience) {
      const aud = peekClaims(token).aud;
      const list = Array.isArray(aud) ? aud : aud === undefined ? [] : [aud];
      checks.push(
        list.includes(o.audience)
          ? { ok: true, what: "token audience", detail: `aud contains "${o.audience}"` }
          : { ok: false, what: "token audience", detail: `aud is ${JSON.stringify(aud ?? null)}, not "${o.audience}"`, fix: `check the "${o.clientScope}" scope's audience mapper` },
      );
    }
    return checks;
  },
});

function hostOf(v: string): string {
  try {
    return v.includes("://") ? new URL(v).hostname : v.replace(/[:/].*$/, "");
  } catch {
    throw new UsageError(`--mcp-host: not a host name: "${v}"`);
  }
}

type AdminCredentials = { kind: "password"; user: string; password: string; realm: string } | { kind: "client"; clientId: string; secret: string; realm: string };

async function adminCredentials(ctx: Context, o: KeycloakOptions): Promise<AdminCredentials> {
  if (o.adminClientId) {
    const secret = await readSecret(ctx, { env: o.adminClientSecretEnv ?? "MCP_AUTH_ADMIN_CLIENT_SECRET" }, "admin client secret", "admin-client-secret");
    return { kind: "client", clientId: o.adminClientId, secret: secret!, realm: o.adminRealm };
  }
  const password = await adminPassword(ctx, o, "Keycloak", " (or --admin-client-id with --admin-client-secret-env)");
  return { kind: "password", user: o.adminUser, password, realm: o.adminRealm };
}

/** The admin REST API. Master-realm admin tokens live 60 s, so every call makes sure the token has some left. */
class KeycloakAdmin {
  private token?: { access: string; refresh?: string; expiresAt: number };
  constructor(
    private readonly ctx: Context,
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

  /** Adds hosts to the anonymous Trusted Hosts policy, keeping everything already there. */
  async trustHosts(hosts: string[]): Promise<string> {
    const res = await this.call("GET", `/components?type=${encodeURIComponent(POLICY_TYPE)}`);
    if (res.status !== 200 || !Array.isArray(res.body)) throw this.fail("reading client-registration policies", res);
    const policy = (res.body as Json[]).find((c) => c.providerId === "trusted-hosts" && c.subType === "anonymous");
    if (!policy) return `no anonymous Trusted Hosts policy in the realm, nothing to change`;
    const config = { ...((policy.config ?? {}) as Record<string, string[]>) };
    const current = Array.isArray(config["trusted-hosts"]) ? config["trusted-hosts"] : [];
    const added = hosts.filter((h) => !current.includes(h));
    if (!added.length) return `${hosts.join(", ")} already trusted`;
    config["trusted-hosts"] = [...current, ...added];
    const put = await this.call("PUT", `/components/${encodeURIComponent(String(policy.id))}`, { ...policy, config });
    if (put.status !== 204 && put.status !== 200) throw this.fail('updating the "Trusted Hosts" policy', put);
    return `added ${added.join(", ")} (now: ${config["trusted-hosts"].join(", ")})`;
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

  async ensureClient(clientId: string, grant: ClientGrant, port: number): Promise<{ uuid: string; action: "created" | "reused" }> {
    const isPublic = grant === "authorization_code";
    const res = await this.call("POST", "/clients", {
      clientId,
      name: `${clientId} (mcp-auth)`,
      protocol: "openid-connect",
      publicClient: isPublic,
      clientAuthenticatorType: "client-secret",
      standardFlowEnabled: isPublic,
      directAccessGrantsEnabled: false,
      serviceAccountsEnabled: !isPublic,
      redirectUris: isPublic ? [`http://127.0.0.1:${port}/callback`] : [],
      attributes: isPublic ? { "pkce.code.challenge.method": "S256", "oauth2.device.authorization.grant.enabled": "true" } : {},
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
    return { uuid: String(c.id), action: res.status === 409 ? "reused" : "created" };
  }

  /** Names of a client's default scopes, by clientId (used to check what a DCR client got). */
  async defaultScopesOf(clientId: string): Promise<string[] | undefined> {
    const found = await this.call("GET", `/clients?clientId=${encodeURIComponent(clientId)}`);
    const c = Array.isArray(found.body) ? (found.body as Json[])[0] : undefined;
    if (!c) return undefined;
    const res = await this.call("GET", `/clients/${c.id}/default-client-scopes`);
    return Array.isArray(res.body) ? (res.body as Json[]).map((s) => String(s.name)) : undefined;
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

/**
 * Registers a throw-away public client anonymously, as an MCP client would, and deletes it again.
 * A refusal names the policy that refused (the kcp guide's "Policy 'Trusted Hosts' rejected…").
 */
async function dcrProbe(ctx: Context, kc: KeycloakAdmin, base: string, realm: string, host: string, scope?: string): Promise<Check> {
  const url = `${base}/realms/${encodeURIComponent(realm)}/clients-registrations/openid-connect`;
  const redirect = host === "127.0.0.1" || host === "localhost" ? `http://${host}:33418/callback` : `https://${host}/callback`;
  const res = await api<Json>(ctx, "POST", url, {
    json: {
      client_name: `mcp-auth-probe-${randomBytes(4).toString("hex")}`,
      redirect_uris: [redirect],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    },
  });
  if (res.status === 201) {
    const b = res.body;
    const scopes = scope ? await kc.defaultScopesOf(String(b.client_id)) : undefined;
    if (typeof b.registration_client_uri === "string" && typeof b.registration_access_token === "string") {
      const del = await api(ctx, "DELETE", b.registration_client_uri, { token: b.registration_access_token });
      if (del.status !== 204 && del.status !== 200) ctx.warn(`could not delete the probe client ${b.client_id} (HTTP ${del.status}); remove it in the admin console`);
    }
    const detail = `an MCP client may register with redirect ${redirect}`;
    if (scope && !scopes?.includes(scope)) {
      return { ok: false, what: "dynamic client registration", detail: `${detail}, but its default scopes (${scopes?.join(", ") ?? "unknown"}) lack "${scope}"`, fix: `make "${scope}" a realm default client scope` };
    }
    return { ok: true, what: "dynamic client registration", detail: scope ? `${detail}, and its tokens get the audience scope "${scope}"` : detail };
  }
  const desc = typeof res.body?.error_description === "string" ? res.body.error_description : res.text.slice(0, 200);
  let fix = "see the realm's Client registration → Client policies";
  if (/Trusted Hosts/.test(desc) && /Host not trusted/.test(desc)) fix = "the registering machine's address is not trusted: add it with --mcp-host, or set host-sending-registration-request-must-match to OFF in the Trusted Hosts policy";
  else if (/Trusted Hosts/.test(desc)) fix = `add the host with: mcp-auth bootstrap keycloak --url ${base} --realm ${realm} --mcp-host ${host}`;
  return { ok: false, what: "dynamic client registration", detail: `HTTP ${res.status}: ${desc}`, fix };
}
