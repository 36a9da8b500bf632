import { randomBytes } from "node:crypto";
import type { Context } from "../../context.js";
import type { Check } from "../../core/checks.js";
import { defineInput, type InputValues } from "../../core/inputs.js";
import { UsageError } from "../../errors.js";
import { checkUrl } from "../../oauth/client.js";
import { normalizeIssuer, profileOf, type ProfileData, type ProfileKey } from "../../target.js";
import { generateKey, storeKey } from "../../core/keys.js";
import { api, peekClaims } from "../http.js";
import { adminClientSecretInput, adminPasswordInput, adminUserInput, grantInput, redirectPortInput, rotateSecretInput } from "../options.js";
import { defineProvider, issuerUrl } from "../types.js";
import { KeycloakAdmin, type AdminCredentials } from "./admin.js";
import { serverConfigToml } from "./server-config.js";

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
type Json = Record<string, unknown>;

const inputs = [
  defineInput({ name: "url", flag: "--url <url>", kind: "url", required: true, description: "Keycloak base URL (e.g. https://auth.example.com)", prompt: "Keycloak URL" }),
  defineInput({ name: "realm", flag: "--realm <realm>", kind: "string", required: true, description: "realm the MCP server trusts", prompt: "Realm" }),
  defineInput({ name: "adminRealm", flag: "--admin-realm <realm>", kind: "string", description: "realm of the admin account", prompt: "Realm of the admin account", default: "master" }),
  adminUserInput("admin user (password grant on admin-cli)"),
  defineInput({ name: "adminClientId", flag: "--admin-client-id <id>", kind: "string", description: "use this service-account client instead of a user" }),
  adminPasswordInput("Keycloak", { askIf: (a) => !a.adminClientId, missingHint: " (or --admin-client-id with --admin-client-secret-env)" }),
  { ...adminClientSecretInput("service-account client's secret", "Secret of client"), askIf: (a: Record<string, unknown>) => Boolean(a.adminClientId) },
  grantInput("for --create-client"),
  redirectPortInput,
  rotateSecretInput,
  defineInput({ name: "mcpHost", flag: "--mcp-host <host...>", kind: "list", description: "host(s) MCP clients register from / redirect to (Trusted Hosts)", prompt: "Hosts MCP clients register from", validate: (v: string[]) => v.map(badHost).find(Boolean) }),
  defineInput({ name: "trustLoopback", flag: "--trust-loopback", kind: "boolean", description: "also trust localhost and 127.0.0.1 (local MCP clients)", prompt: "Trust local MCP clients (localhost)?" }),
  defineInput({ name: "audience", flag: "--audience <aud>", kind: "string", description: "audience the MCP server expects (oauth_audience)", prompt: "Audience the MCP server expects" }),
  defineInput({ name: "audienceClient", flag: "--audience-client", kind: "boolean", description: "the audience is a client id of the realm (included.client.audience)", askIf: (a) => Boolean(a.audience) }),
  defineInput({ name: "clientScope", flag: "--client-scope <name>", kind: "string", description: "client scope that carries the audience mapper", default: "mcp-audience" }),
  defineInput({ name: "createClient", flag: "--create-client <clientId>", kind: "string", description: "create (or reuse) a client for mcp-auth and save a profile for it", prompt: "Client id for mcp-auth (empty: none)" }),
  defineInput({ name: "clientAuth", flag: "--client-auth <method>", kind: "choice", choices: ["client-secret", "private-key-jwt"] as const, description: "how the --create-client client authenticates: a secret, or a key pair whose public half Keycloak holds (no secret at all)", default: "client-secret" }),
  defineInput({ name: "printServerConfig", flag: "--print-server-config", kind: "boolean", description: "print the matching kubernetes-mcp-server config.toml on stdout" }),
] as const;

type KeycloakInput = InputValues<typeof inputs>;

export const keycloak = defineProvider({
  id: "keycloak",
  title: "Keycloak",
  summary: "Keycloak / kcp: trusted hosts for DCR, an audience scope, optionally a client for mcp-auth",
  inputs,

  /** Keycloak issuers are `<base>/realms/<realm>` (`<base>` may carry the legacy `/auth` prefix). */
  matches(x) {
    const u = issuerUrl(x);
    return Boolean(u && /\/realms\/[^/]+\/?$/.test(u.pathname));
  },

  async bootstrap(ctx, o, run) {
    const { grant, redirectPort: port } = o;
    const base = normalizeIssuer(checkUrl(o.url, "--url", ctx.allowHttp).href);
    const issuer = `${base}/realms/${encodeURIComponent(o.realm)}`;
    const kc = new KeycloakAdmin(ctx, base, o.realm, adminCredentials(o));
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

    let profile: ProfileData | undefined;
    let secret: string | undefined;
    let action: "created" | "reused" | "rotated" | "configured" = "configured";
    if (o.createClient) {
      const signedJwt = o.clientAuth === "private-key-jwt";
      if (signedJwt && grant !== "client_credentials") throw new UsageError("--client-auth private-key-jwt needs --grant client_credentials");
      if (signedJwt && o.rotateSecret) throw new UsageError("--rotate-secret and --client-auth private-key-jwt exclude each other (rotate the key with: mcp-auth profiles rotate-key)");
      const key = signedJwt ? await profileKey(ctx, run.profile, o.createClient) : undefined;
      const c = await kc.ensureClient(o.createClient, grant, port, key);
      action = c.action;
      if (scopeId) await kc.attachScope(c.uuid, scopeId);
      if (grant === "client_credentials" && !key) secret = o.rotateSecret ? await kc.rotateSecret(c.uuid) : await kc.secret(c.uuid);
      if (o.rotateSecret && grant === "client_credentials") action = "rotated";
      profile = {
        provider: "keycloak",
        issuer,
        clientId: o.createClient,
        grant,
        scopes: grant === "authorization_code" ? ["openid"] : undefined,
        redirectPort: grant === "authorization_code" ? port : undefined,
        tokenEndpointAuthMethod: grant === "authorization_code" ? "none" : key ? "private_key_jwt" : "client_secret_basic",
        ...(key && { key }),
        extra: { realm: o.realm, clientUuid: c.uuid, ...(o.audience ? { expectedAudience: o.audience } : {}) },
      };
      facts.push(["client", `${o.createClient} (${c.action}, ${grant}${key ? `, Signed JWT with key ${key.kid}, no secret` : ""})`]);
    }

    const checks: Check[] = [];
    const probeHost = o.mcpHost?.[0] ? hostOf(o.mcpHost[0]) : o.trustLoopback ? "127.0.0.1" : undefined;
    if (run.verify && probeHost) checks.push(await dcrProbe(ctx, kc, base, o.realm, probeHost, o.audience ? o.clientScope : undefined));

    const serverConfig = await serverConfigToml({ issuer, audience: o.audience });
    return {
      action,
      profile,
      clientSecret: secret,
      facts,
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

/**
 * The key a Signed-JWT client gets: the profile's current one when it is re-run for the same client
 * (idempotent), else a new key pair whose private half goes to the secret store.
 */
async function profileKey(ctx: Context, profile: string, clientId: string): Promise<ProfileKey> {
  const existing = profileOf(ctx.config(), profile);
  if (existing?.key && existing.clientId === clientId) return existing.key;
  const k = await generateKey("ES256");
  return { ...(await storeKey(ctx, profile, k)), publicJwk: k.publicJwk };
}

function adminCredentials(o: KeycloakInput): AdminCredentials {
  if (o.adminClientId) return { kind: "client", clientId: o.adminClientId, secret: o.adminClientSecret!, realm: o.adminRealm };
  return { kind: "password", user: o.adminUser, password: o.adminPassword!, realm: o.adminRealm };
}

/** Why a --mcp-host value is not a host, or undefined. */
function badHost(v: string): string | undefined {
  try {
    hostOf(v);
    return undefined;
  } catch {
    return `has a value that is not a host name: "${v}"`;
  }
}

function hostOf(v: string): string {
  try {
    return v.includes("://") ? new URL(v).hostname : v.replace(/[:/].*$/, "");
  } catch {
    throw new UsageError(`--mcp-host: not a host name: "${v}"`);
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
