import { randomBytes } from "node:crypto";
import { type Check, checkUrl, type ProviderContext, defineInput, defineProvider, type InputValues, issuerUrl, normalizeIssuer, peekClaims, type ProfileData, UsageError, type Json } from "../../sdk.js";
import { api } from "../http.js";
import { adminClientSecretInput, adminPasswordInput, adminUserInput, grantInput, redirectPortInput, rotateSecretInput } from "../options.js";
import { KeycloakAdmin, type AdminCredentials } from "./admin.js";
import { serverConfigToml } from "./server-config.js";

/**
 * Keycloak (and kcp's Keycloak): the console clicks of the kcp MCP guide as one idempotent command
 * (docs/idp/keycloak.md):
 *  - Trusted Hosts: add the MCP hosts to the anonymous `trusted-hosts` client-registration policy,
 *    and stop it comparing the registering machine's address with them (unless --keep-host-check),
 *    so MCP clients may register themselves (DCR) from wherever they run;
 *  - audience: a client scope with an `oidc-audience-mapper`, made a realm default so DCR clients
 *    get it, so tokens carry the `aud` the MCP server checks;
 *  - optionally a client for mcp-auth itself, saved as a profile;
 *  - verify: an anonymous DCR probe from this machine (deleted again) and the first token's `aud`;
 *  - print kubernetes-mcp-server's config, `server_url` and `oauth_scopes` included.
 */

const inputs = [
  defineInput({ name: "url", flag: "--url <url>", kind: "url", required: true, description: "Keycloak base URL (e.g. https://auth.example.com)", prompt: "Keycloak URL", reach: true }),
  defineInput({ name: "realm", flag: "--realm <realm>", kind: "string", required: true, description: "realm the MCP server trusts", prompt: "Realm" }),
  defineInput({ name: "adminRealm", flag: "--admin-realm <realm>", kind: "string", description: "realm of the admin account", prompt: "Realm of the admin account", default: "master" }),
  adminUserInput("admin user (password grant on admin-cli)"),
  defineInput({ name: "adminClientId", flag: "--admin-client-id <id>", kind: "string", description: "use this service-account client instead of a user" }),
  adminPasswordInput("Keycloak", { askIf: (a) => !a.adminClientId, missingHint: " (or --admin-client-id with --admin-client-secret-env)" }),
  { ...adminClientSecretInput("service-account client's secret", "Secret of client"), askIf: (a: Record<string, unknown>) => Boolean(a.adminClientId) },
  grantInput("for --create-client"),
  redirectPortInput,
  rotateSecretInput,
  defineInput({ name: "mcpHost", flag: "--mcp-host <host...>", kind: "list", description: "trusted host(s) for MCP clients' redirect URIs (Keycloak's Trusted Hosts); the first is also the MCP server's host for server_url unless --mcp-url", prompt: "Trusted hosts for MCP clients' redirect URIs", validate: (v: string[]) => v.map(badHost).find(Boolean) }),
  defineInput({ name: "keepHostCheck", flag: "--keep-host-check", kind: "boolean", description: "keep Keycloak's check that the registering machine is a trusted host (MCP clients elsewhere then get \"Host not trusted\")" }),
  defineInput({ name: "mcpUrl", flag: "--mcp-url <url>", kind: "url", description: "the MCP server's public URL, for server_url in the printed config (default: https://<first --mcp-host>)" }),
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
  // kcp is the Kubernetes control plane of the Keycloak guide (docs/idp/keycloak.md): its settings name the issuer and audience.
  doctorHints: {
    publicUrl: "Keycloak: KC_HOSTNAME",
    serverIssuer: "kcp: authorization_url",
    audience: (aud) => `e.g. mcp-auth bootstrap keycloak --audience ${aud} (kcp: ensure oauth_audience matches the client's audience)`,
  },
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
    const keepHostCheck = o.keepHostCheck;
    const hosts = [...new Set([...(o.mcpHost ?? []).map(hostOf), ...(o.trustLoopback ? ["localhost", "127.0.0.1"] : [])])];
    let trust: Awaited<ReturnType<KeycloakAdmin["trustHosts"]>> | undefined;
    if (hosts.length || keepHostCheck) {
      trust = await kc.trustHosts(hosts, keepHostCheck);
      facts.push(["trusted hosts", trust.detail]);
    }
    const serverUrl = o.mcpUrl ? checkUrl(o.mcpUrl, "--mcp-url", ctx.allowHttp, "resource").href.replace(/\/$/, "") : o.mcpHost?.[0] ? publicUrlOf(o.mcpHost[0]) : undefined;

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
      const key = signedJwt ? await run.vault.signingKey(o.createClient) : undefined;
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

    // The scopes MCP clients should ask for: what a DCR client may name and gets by default (docs/idp/keycloak.md "Scopes").
    const offered = await kc.dcrScopes();
    const oauthScopes = [...(offered.allowed.includes("openid") ? ["openid"] : []), ...offered.realmDefaults.filter((n) => offered.allowed.includes(n))];

    const checks: Check[] = [];
    const warnings: string[] = [];
    const probeHost = o.mcpHost?.[0] ? hostOf(o.mcpHost[0]) : o.trustLoopback ? "127.0.0.1" : undefined;
    if (run.verify && probeHost) {
      const hostCheck = trust ? trust.hostCheck : undefined;
      checks.push(await dcrProbe(ctx, kc, { base, realm: o.realm, host: probeHost, scopes: oauthScopes, audienceScope: o.audience ? o.clientScope : undefined, hostCheck }, warnings));
    }

    const serverConfig = await serverConfigToml({ issuer, audience: o.audience, serverUrl, oauthScopes });
    const configNotes: string[] = [];
    if (!serverUrl) configNotes.push("server_url is missing: pass --mcp-url (or --mcp-host); behind TLS termination the server otherwise advertises http://<Host> and MCP clients refuse it");
    if (!oauthScopes.length) configNotes.push("oauth_scopes is missing: the realm offers DCR clients no default client scope, so MCP clients would ask for every scope Keycloak lists");
    return {
      action,
      profile,
      clientSecret: secret,
      facts,
      checks,
      warnings,
      stdout: o.printServerConfig ? serverConfig : undefined,
      notes: [
        ...(o.printServerConfig ? [] : ["kubernetes-mcp-server config.toml (--print-server-config prints it alone):", ...serverConfig.trimEnd().split("\n").map((l) => `  ${l}`)]),
        ...configNotes.map((n) => `note: ${n}`),
      ],
      json: { issuer, trustedHosts: hosts, hostCheck: trust ? trust.hostCheck : null, audience: o.audience ?? null, clientScope: o.audience ? o.clientScope : null, serverUrl: serverUrl ?? null, oauthScopes },
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

/** The MCP server's public URL from an --mcp-host value: its origin when it is a URL, else https://<host[:port]>. */
function publicUrlOf(v: string): string {
  return v.includes("://") ? new URL(v).origin : `https://${v.replace(/\/.*$/, "")}`;
}

function hostOf(v: string): string {
  try {
    return v.includes("://") ? new URL(v).hostname : v.replace(/[:/].*$/, "");
  } catch {
    throw new UsageError(`--mcp-host: not a host name: "${v}"`);
  }
}

/**
 * Registers a throw-away public client anonymously, as an MCP client would (with the `scope` it reads
 * from the server's oauth_scopes), and deletes it again. It runs from *this* machine: with the host
 * check off (the default here) that proves registration for MCP clients anywhere; with the check on it
 * proves it only for machines Keycloak trusts. A refusal names the policy that refused (the kcp guide's
 * "Policy 'Trusted Hosts' rejected…"). See docs/idp/keycloak.md "The DCR probe".
 */
async function dcrProbe(
  ctx: ProviderContext,
  kc: KeycloakAdmin,
  o: { base: string; realm: string; host: string; scopes: string[]; audienceScope?: string; hostCheck?: boolean },
  warnings: string[],
): Promise<Check> {
  const url = `${o.base}/realms/${encodeURIComponent(o.realm)}/clients-registrations/openid-connect`;
  const redirect = o.host === "127.0.0.1" || o.host === "localhost" ? `http://${o.host}:33418/callback` : `https://${o.host}/callback`;
  const res = await api<Json>(ctx, "POST", url, {
    json: {
      client_name: `mcp-auth-probe-${randomBytes(4).toString("hex")}`,
      redirect_uris: [redirect],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      ...(o.scopes.length ? { scope: o.scopes.join(" ") } : {}),
    },
  });
  const what = "dynamic client registration";
  if (res.status === 201) {
    const b = res.body;
    const got = o.audienceScope ? await kc.scopesOf(String(b.client_id)) : undefined;
    if (typeof b.registration_client_uri === "string" && typeof b.registration_access_token === "string") {
      const del = await api(ctx, "DELETE", b.registration_client_uri, { token: b.registration_access_token });
      if (del.status !== 204 && del.status !== 200) warnings.push(`could not delete the probe client ${String(b.client_id)} (HTTP ${del.status}); remove it in the admin console`);
    }
    const asked = o.scopes.length ? ` and scope "${o.scopes.join(" ")}"` : "";
    const where =
      o.hostCheck === true
        ? "from this machine only: Keycloak checks the registering machine's address, so an MCP client elsewhere needs its address trusted too (or drop --keep-host-check)"
        : o.hostCheck === false
          ? "from this machine, and Keycloak does not check the registering machine, so MCP clients anywhere may register"
          : "from this machine (the realm's host check was left as it is)";
    const detail = `an anonymous client with redirect ${redirect}${asked} was registered ${where}`;
    const has = got && [...got.default, ...got.optional].includes(o.audienceScope!);
    if (o.audienceScope && !has) {
      const list = got ? [...got.default, ...got.optional].join(", ") || "none" : "unknown";
      return { ok: false, what, detail: `${detail}, but its client scopes (${list}) lack "${o.audienceScope}"`, fix: `make "${o.audienceScope}" a realm default client scope` };
    }
    const check: Check = { ok: true, what, detail: o.audienceScope ? `${detail}; its tokens get the audience scope "${o.audienceScope}"` : detail };
    return o.hostCheck ? { ...check, status: "warn" } : check;
  }
  const desc = typeof res.body?.error_description === "string" ? res.body.error_description : res.text.slice(0, 200);
  let fix = "see the realm's Clients → Client registration → Anonymous access policies";
  if (/Trusted Hosts/.test(desc) && /Host not trusted/.test(desc)) {
    fix = "Keycloak checks the registering machine's address and this machine's is not trusted: run without --keep-host-check, or add this machine with --mcp-host";
  } else if (/Trusted Hosts/.test(desc)) fix = `add the host with: mcp-auth bootstrap keycloak --url ${o.base} --realm ${o.realm} --mcp-host ${o.host}`;
  else if (/Allowed Client Scopes/.test(desc)) fix = `let the anonymous "Allowed Client Scopes" policy allow ${o.scopes.join(", ")}, or make them realm default client scopes`;
  return { ok: false, what, detail: `HTTP ${res.status}: ${desc}`, fix };
}
