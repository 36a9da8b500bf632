import { randomBytes } from "node:crypto";
import { registerSecret } from "../io/sanitize.js";
import type { Context } from "../context.js";
import { defineInput } from "../core/inputs.js";
import { AuthError, McpAuthError, UsageError } from "../errors.js";
import { checkUrl } from "../oauth/client.js";
import { normalizeIssuer, type ProfileData } from "../target.js";
import { api, apiError, i18n, peekClaims, type ApiResponse } from "./http.js";
import { adminPasswordInput, adminUserInput, grantInput, redirectPortInput, rotateSecretInput, type ClientGrant } from "./options.js";
import { defineProvider, issuerUrl } from "./types.js";

/**
 * Asgardeo Thunder (the IdP of OpenChoreo). Turns the seed's manual steps into one command:
 * admin assertion via POST /flow/execute, then POST /applications with an OAuth2 inbound config.
 *
 * Thunder's management API has changed wire format across releases (idp-apis.md §1.0): v0.28
 * (OpenChoreo's pin) speaks snake_case and `flowId`; v0.30+ camelCase; v0.34+ `executionId`; v0.35+
 * a mandatory `challengeToken` echo and i18n error objects. Go's JSON decoder ignores unknown fields,
 * so a body in the wrong era "succeeds" without its OAuth config: we detect the era from what the
 * server sends, and check every response for the fields we asked for.
 */
type Casing = "snake" | "camel";
type Json = Record<string, unknown>;

/** Public clients Thunder seeds, with their registered redirect URIs (idp-apis.md §1.2), used to find an application id. */
const KNOWN_CLIENTS = (url: string) => [
  { clientId: "sample_app_client", redirectUri: "https://localhost:3000" },
  { clientId: "CONSOLE", redirectUri: `${url}/console` },
  { clientId: "REACT_SDK_SAMPLE", redirectUri: "https://localhost:3000" },
];

const inputs = [
  defineInput({ name: "url", flag: "--url <url>", kind: "url", description: "Thunder's public URL (also the token issuer)", prompt: "Thunder URL", default: "http://thunder.openchoreo.localhost:8080" }),
  adminUserInput("admin user (needs the 'system' permission)"),
  adminPasswordInput("Thunder"),
  grantInput("the application"),
  redirectPortInput,
  rotateSecretInput,
  defineInput({ name: "appId", flag: "--app-id <id>", kind: "string", description: "application to run the admin login flow with (found automatically)" }),
  defineInput({ name: "name", flag: "--name <name>", kind: "string", description: "name of the application to create", prompt: "Application name", default: "MCP client" }),
  defineInput({
    name: "clientId",
    flag: "--client-id <id>",
    kind: "string",
    description: "OAuth client id of the new application (default mcp_client, or mcp_cli for authorization_code)",
    prompt: "OAuth client id",
    default: (a: Record<string, unknown>) => (a.grant === "authorization_code" ? "mcp_cli" : "mcp_client"),
  }),
  defineInput({
    name: "validity",
    flag: "--validity <seconds>",
    kind: "number",
    description: "access token lifetime",
    prompt: "Access token lifetime (seconds)",
    default: 3600,
    validate: (v: number) => (Number.isInteger(v) && v > 0 ? undefined : `must be a positive number of seconds, got "${v}"`),
  }),
  defineInput({ name: "apiCasing", flag: "--api-casing <casing>", kind: "choice", choices: ["snake", "camel"] as const, description: "force the applications API casing instead of detecting it", hidden: true }),
] as const;

export const thunder = defineProvider({
  id: "thunder",
  title: "Thunder",
  summary: "Asgardeo Thunder / OpenChoreo: create the MCP client application via the admin API",
  inputs,

  /** A host named thunder, or Thunder's own endpoint layout (idp-apis.md §1.7: /oauth2/token, /oauth2/jwks, /oauth2/dcr/register at the root). */
  matches(x) {
    const u = issuerUrl(x);
    if (!u) return false;
    if (/(^|[.-])thunder([.-]|$)/i.test(u.hostname)) return true;
    if (typeof x === "string") return false;
    const base = x.issuer.replace(/\/+$/, "");
    return x.token_endpoint === `${base}/oauth2/token` && (x.jwks_uri === `${base}/oauth2/jwks` || x.registration_endpoint === `${base}/oauth2/dcr/register`);
  },

  async bootstrap(ctx, o, run) {
    const { grant, redirectPort: port, validity } = o;
    const url = normalizeIssuer(checkUrl(o.url, "--url", ctx.allowHttp).href);
    const password = o.adminPassword!;

    const appId = o.appId ?? (await findLoginApplication(ctx, url));
    const { assertion, flowEra } = await adminAssertion(ctx, url, appId, o.adminUser, password);
    registerSecret(assertion); // the admin's bearer credential: never printed, whatever a server echoes
    const session = new ThunderAdmin(ctx, url, assertion);
    const apps = await session.list();
    const casing: Casing = o.apiCasing ?? apps.casing ?? (flowEra === "executionId" ? "camel" : "snake");

    const existing = apps.items.find((a) => a.name === o.name);
    const wanted = oauthConfig(grant, o.clientId, port, validity);
    let action: "created" | "reused" | "rotated";
    let appIdCreated: string;
    let clientId: string;
    let secret: string | undefined;
    if (!existing) {
      const ouId = casing === "camel" ? await session.defaultOu() : undefined;
      const res = await session.create(body(casing, o.name, wanted, ouId));
      const cfg = inboundConfig(res);
      if (!cfg) {
        // Thunder ignored our OAuth config (unknown fields are dropped silently): the app is useless, remove it.
        await session.delete(String(res.id)).catch(() => undefined);
        throw new McpAuthError(`Thunder created "${o.name}" without its OAuth configuration (it ignored the ${casing === "camel" ? "camelCase" : "snake_case"} fields); the application was deleted again`, {
          hint: "this Thunder speaks another API version; please report its version",
        });
      }
      action = "created";
      appIdCreated = String(res.id);
      clientId = String(pick(cfg, "client_id", "clientId"));
      secret = pick(cfg, "client_secret", "clientSecret") as string | undefined;
    } else {
      appIdCreated = existing.id;
      const full = await session.get(existing.id);
      const cfg = inboundConfig(full);
      if (!cfg) throw new McpAuthError(`application "${o.name}" (${existing.id}) exists but has no OAuth configuration`, { hint: "delete it in the Thunder console, or pass another --name" });
      clientId = String(pick(cfg, "client_id", "clientId"));
      const isPublic = pick(cfg, "token_endpoint_auth_method", "tokenEndpointAuthMethod") === "none";
      const kind: ClientGrant = isPublic ? "authorization_code" : "client_credentials";
      if (kind !== grant) {
        throw new UsageError(`application "${o.name}" already exists (id ${existing.id}) as a ${kind} client, not ${grant}`, { hint: `pass another --name, or --grant ${kind}` });
      }
      if (o.rotateSecret && !isPublic) {
        secret = randomBytes(32).toString("base64url");
        // Ours before it is Thunder's: if anything below fails, the new secret is not lost.
        await run.vault.stage(secret);
        const updated = await session.update(existing.id, withSecret(full, casing, secret)).catch(async (e: unknown) => {
          await run.vault.unstage();
          throw e;
        });
        if (!inboundConfig(updated)) throw new McpAuthError(`Thunder did not keep the OAuth configuration of "${o.name}" when rotating its secret`);
        action = "rotated";
      } else {
        if (!isPublic && !(await run.vault.holds(clientId))) {
          throw new UsageError(`application "${o.name}" already exists (id ${existing.id}) and mcp-auth does not hold its client secret`, {
            hint: "rerun with --rotate-secret to issue a new one (apps using the old secret will stop working)",
          });
        }
        action = "reused";
      }
    }

    const profile: ProfileData = {
      provider: "thunder",
      issuer: url,
      clientId,
      grant,
      scopes: grant === "authorization_code" ? ["openid"] : undefined,
      redirectPort: grant === "authorization_code" ? port : undefined,
      tokenEndpointAuthMethod: grant === "authorization_code" ? "none" : "client_secret_basic",
      extra: { applicationId: appIdCreated, apiCasing: casing },
    };
    return {
      action,
      profile,
      // Thunder shows it exactly once: core stores it with the profile.
      clientSecret: secret,
      facts: [
        ["application", `${o.name} (${appIdCreated})`],
        ["client id", clientId],
        ["grant", grant],
        ["API", `${casing === "camel" ? "camelCase (Thunder ≥ 0.30)" : "snake_case (Thunder ≤ 0.29)"}, ${flowEra} flows`],
        ["client secret", secret ? (action === "rotated" ? "rotated, stored" : "stored") : action === "reused" ? "kept (already stored)" : "none (public client)"],
      ],
      json: { applicationId: appIdCreated, clientId, casing, flowEra },
    };
  },
});

/**
 * The admin login flow needs an application id, and listing applications needs the admin login:
 * GET /oauth2/authorize (a public path) redirects to the login gate with `applicationId` in the
 * query (idp-apis.md §1.6), for any registered client.
 */
async function findLoginApplication(ctx: Context, url: string): Promise<string> {
  let redirected = false;
  let answer = "";
  for (const c of KNOWN_CLIENTS(url)) {
    const q = new URLSearchParams({
      response_type: "code",
      client_id: c.clientId,
      redirect_uri: c.redirectUri,
      scope: "openid",
      state: randomBytes(8).toString("hex"),
      code_challenge: randomBytes(32).toString("base64url"),
      code_challenge_method: "S256",
    });
    const res = await ctx.fetch(`${url}/oauth2/authorize?${q}`, { redirect: "manual" });
    await res.body?.cancel();
    const location = res.headers.get("location");
    answer = `GET /oauth2/authorize answered ${res.status}${location ? "" : res.headers.get("content-type") ? ` with ${res.headers.get("content-type")!.split(";")[0]}` : ""}`;
    if (res.status >= 300 && res.status < 400 && location) {
      redirected = true;
      const id = new URL(location, url).searchParams.get("applicationId");
      if (id) {
        ctx.debug(`application id ${id} found via client ${c.clientId}`);
        return id;
      }
    }
  }
  // Thunder redirects every authorize request (to its sign-in gate, or with an error): a server that never
  // redirects is something else, and saying so beats "no application" (../shared/research/idp-apis.md §1.6).
  if (!redirected) throw new UsageError(`${url} is not a Thunder server (${answer})`, { hint: "check --url: it is Thunder's public URL, e.g. http://thunder.openchoreo.localhost:8080" });
  throw new UsageError(`could not find an application to sign in with at ${url}`, { hint: "pass --app-id ID (Thunder's setup logs 'Sample App ID: …')" });
}

type FlowEra = "flowId" | "executionId";

/** POST /flow/execute until COMPLETE; a wrong password is an INCOMPLETE with failureReason, never retried. */
async function adminAssertion(ctx: Context, url: string, applicationId: string, user: string, password: string): Promise<{ assertion: string; flowEra: FlowEra }> {
  const known: Record<string, string> = { username: user, password, requested_permissions: "system" };
  let res = await flow(ctx, url, { applicationId, flowType: "AUTHENTICATION" });
  const era: FlowEra = typeof res.executionId === "string" ? "executionId" : "flowId";
  const asked = new Set<string>();
  for (let step = 0; step < 8; step++) {
    const status = res.flowStatus;
    if (status === "COMPLETE") {
      const assertion = res.assertion;
      if (typeof assertion !== "string") throw new McpAuthError("Thunder completed the admin login without an assertion");
      const claims = peekClaims(assertion);
      const perms = [claims.authorized_permissions, claims.scope].filter((v) => typeof v === "string").join(" ").split(" ");
      if (!perms.includes("system") && !(Array.isArray(claims.scopes) && claims.scopes.includes("system"))) {
        throw new AuthError(`Thunder user "${user}" signed in but was not granted the 'system' permission`, { hint: "use an administrator account" });
      }
      return { assertion, flowEra: era };
    }
    if (status === "ERROR") throw new AuthError(`Thunder admin login failed: ${i18n(res.failureReason) ?? "flow error"}`);
    if (status !== "INCOMPLETE") throw new McpAuthError(`Thunder admin login: unexpected flow status ${JSON.stringify(status)}`);
    if (res.failureReason) throw new AuthError(`Thunder refused the admin login for "${user}": ${i18n(res.failureReason)}`, { hint: "check --admin-user and the password" });
    const data = (res.data ?? {}) as { inputs?: Array<{ identifier?: string; required?: boolean }>; actions?: Array<{ ref?: string }> };
    const inputs: Record<string, string> = { requested_permissions: "system" };
    for (const i of data.inputs ?? []) {
      const id = String(i.identifier);
      if (id in known) inputs[id] = known[id]!;
      else if (i.required) throw new McpAuthError(`Thunder's admin login asks for "${id}", which mcp-auth cannot supply`, { hint: "use an account with a username/password login" });
    }
    const key = JSON.stringify(Object.keys(inputs).sort());
    if (asked.has(key)) throw new McpAuthError("Thunder's admin login keeps asking for the same inputs; giving up");
    asked.add(key);
    const next: Json = { action: data.actions?.[0]?.ref, inputs };
    if (era === "executionId") {
      next.executionId = res.executionId;
      if (res.challengeToken) next.challengeToken = res.challengeToken;
    } else next.flowId = res.flowId;
    res = await flow(ctx, url, next);
  }
  throw new McpAuthError("Thunder's admin login did not complete after 8 steps");
}

async function flow(ctx: Context, url: string, payload: Json): Promise<Json> {
  const res = await api<Json>(ctx, "POST", `${url}/flow/execute`, { json: payload });
  if (res.status !== 200 || !res.body) throw apiError("Thunder admin login (/flow/execute)", res);
  return res.body;
}

interface AppSummary {
  id: string;
  name: string;
}

/** The applications API with the admin assertion. */
class ThunderAdmin {
  constructor(
    private readonly ctx: Context,
    private readonly url: string,
    private readonly token: string,
  ) {}
  private async call(method: string, path: string, json?: unknown): Promise<ApiResponse<Json>> {
    return api<Json>(this.ctx, method, `${this.url}${path}`, { token: this.token, json });
  }
  private fail(action: string, res: ApiResponse): McpAuthError {
    return apiError(action, res, res.status === 403 ? "the admin user needs the 'system' permission" : undefined);
  }
  async list(): Promise<{ items: AppSummary[]; casing?: Casing }> {
    const res = await this.call("GET", "/applications");
    if (res.status !== 200) throw this.fail("listing applications", res);
    const apps = (res.body?.applications ?? []) as Json[];
    const casing = apps.some((a) => "client_id" in a || "auth_flow_id" in a) ? "snake" : apps.some((a) => "clientId" in a || "authFlowId" in a || "isReadOnly" in a) ? "camel" : undefined;
    return { items: apps.map((a) => ({ id: String(a.id), name: String(a.name) })), casing };
  }
  async get(id: string): Promise<Json> {
    const res = await this.call("GET", `/applications/${encodeURIComponent(id)}`);
    if (res.status !== 200) throw this.fail(`reading application ${id}`, res);
    return res.body;
  }
  async create(app: Json): Promise<Json> {
    const res = await this.call("POST", "/applications", app);
    if (res.status !== 201) {
      const err = this.fail(`creating application "${app.name}"`, res);
      if (err.code === "APP-1021") throw new UsageError(err.message, { hint: "another application already uses that client id: pass --client-id" });
      throw err;
    }
    return res.body;
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
}

/** The OAuth part, in snake_case; `body()` converts it for camelCase servers. */
function oauthConfig(grant: ClientGrant, clientId: string, port: number, validity: number): Json {
  const token = { access_token: { validity_period: validity } };
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

function camel(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camel);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), camel(x)]));
  }
  return v;
}

function body(casing: Casing, name: string, config: Json, ouId?: string): Json {
  const app: Json = {
    name,
    description: "OAuth client for MCP, created by mcp-auth",
    inbound_auth_config: [{ type: "oauth2", config }],
  };
  if (ouId) app.ou_id = ouId;
  return casing === "camel" ? (camel(app) as Json) : app;
}

function inboundConfig(app: Json | undefined): Json | undefined {
  const list = (app?.inbound_auth_config ?? app?.inboundAuthConfig) as Array<{ type?: string; config?: Json }> | undefined;
  const cfg = list?.find((c) => c.type === "oauth2")?.config;
  return cfg && (cfg.client_id ?? cfg.clientId) ? cfg : undefined;
}

function pick(o: Json, snake: string, camelKey: string): unknown {
  return o[snake] ?? o[camelKey];
}

/** A PUT body: the app as read, with a new secret in its OAuth config (PUT keeps the secret when it is omitted). */
function withSecret(app: Json, casing: Casing, secret: string): Json {
  const copy = structuredClone(app);
  delete copy.id;
  const cfg = inboundConfig(copy)!;
  cfg[casing === "camel" ? "clientSecret" : "client_secret"] = secret;
  return copy;
}
