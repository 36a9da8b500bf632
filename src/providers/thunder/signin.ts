import { randomBytes } from "node:crypto";
import { AuthError, type ProviderContext, markControl, McpAuthError, NetworkError, peekClaims, UsageError, type Json } from "../../sdk.js";
import { api, apiError, i18n, type ApiResponse } from "../http.js";

/**
 * The admin sign-in of `bootstrap thunder`: POST /flow/execute until Thunder hands out an assertion
 * carrying the `system` permission. What changed release by release, and why each step is the way it
 * is, is in docs/idp/thunder.md ("Signing in as the admin").
 */

/** The System resource server identifier Thunder ships (bootstrap/01-default-resources.yaml). */
export const DEFAULT_SYSTEM_RESOURCE = "https://localhost:8090/mcp";

export interface SignInOptions {
  user: string;
  password: string;
  /** --admin-app-id: the application to run the flow with; found through /oauth2/authorize when absent. */
  appId?: string;
  /** --flow-secret-env: the flow secret of that application (Thunder ≥ 0.47). */
  flowSecret?: string;
  /** --system-resource-server: the identifier permissions are asked for (ThunderID ≥ 1.0.0-alpha2). */
  systemResource?: string;
}

/** What the sign-in learnt about the server. */
export interface FlowFacts {
  appId: string;
  /** The continuation field the server answered with: `flowId` up to 0.33, `executionId` after. */
  continuation: "flowId" | "executionId";
  systemResource: string;
  systemResourceFrom: "flag" | "console" | "default";
}

/** Public clients Thunder seeds, with their registered redirect URIs: the Sample App only up to 0.39. */
const KNOWN_CLIENTS = (url: string) => [
  { clientId: "sample_app_client", redirectUri: "https://localhost:3000" },
  { clientId: "CONSOLE", redirectUri: `${url}/console` },
  { clientId: "REACT_SDK_SAMPLE", redirectUri: "https://localhost:3000" },
];

const MAX_STEPS = 8;

export async function signIn(ctx: ProviderContext, url: string, o: SignInOptions): Promise<{ assertion: string; flow: FlowFacts }> {
  const found = o.appId === undefined;
  const appId = o.appId ?? (await findLoginApplication(ctx, url));
  const rs = o.systemResource ? { id: o.systemResource, from: "flag" as const } : await systemResource(ctx, url);

  // The secret goes both ways: 0.47 reads the body field, 0.48+ the header; each ignores the other.
  const start: Json = { applicationId: appId, flowType: "AUTHENTICATION" };
  if (o.flowSecret) start.flowSecret = o.flowSecret;
  let res = await flowCall(ctx, url, start, o.flowSecret ? { "Flow-Secret": o.flowSecret } : undefined, { appId, found, withSecret: Boolean(o.flowSecret) });
  // Only a field the server itself used continues the flow: since 1.0.0 a `flowId` in the body names an
  // administration flow instead (FES-1017), so it is never sent on a guess.
  const continuation = typeof res.executionId === "string" ? "executionId" : typeof res.flowId === "string" ? "flowId" : undefined;
  if (!continuation) throw new NetworkError("Thunder's /flow/execute answered without an executionId or flowId", { hint: "check --url: it is Thunder's public URL" });

  const known: Record<string, string> = { username: o.user, password: o.password };
  // Asked on every step: 1.0.0-alpha2+ grants `system` only for the resource server named here; older
  // releases keep unknown inputs without reading them.
  const always: Record<string, string> = { requested_permissions: "system", resource_server_identifier: rs.id };
  const asked = new Set<string>();
  for (let step = 0; step < MAX_STEPS; step++) {
    const status = res.flowStatus;
    const failure = stepFailure(res);
    if (status === "COMPLETE") {
      const assertion = res.assertion;
      if (typeof assertion !== "string") throw new McpAuthError("Thunder completed the admin login without an assertion");
      if (!holdsSystem(peekClaims(assertion))) {
        throw new AuthError(`Thunder user "${o.user}" signed in but was not granted the 'system' permission`, {
          hint: `use an administrator account; ThunderID ≥ 1.0 grants it only for its System resource server (asked for ${rs.id}${rs.from === "flag" ? "" : `, ${rs.from === "console" ? "from the Console's config.js" : "Thunder's default"}`}): pass --system-resource-server ID`,
        });
      }
      return { assertion, flow: { appId, continuation, systemResource: rs.id, systemResourceFrom: rs.from } };
    }
    if (status === "ERROR") throw new AuthError(`Thunder admin login failed: ${failure?.text ?? "flow error"}`, { code: failure?.code });
    if (status !== "INCOMPLETE") throw new McpAuthError(`Thunder admin login: unexpected flow status ${markControl(JSON.stringify(status) ?? "none").slice(0, 40)}`);
    // A wrong password is an INCOMPLETE step carrying the reason: `failureReason` up to 0.42, the `error` object from 0.43.
    if (failure) throw new AuthError(`Thunder refused the admin login for "${o.user}": ${failure.text}`, { hint: "check --admin-user and the password", code: failure.code });
    const data = (res.data ?? {}) as { inputs?: Array<{ identifier?: unknown; required?: unknown }>; actions?: Array<{ ref?: unknown }> };
    const inputs: Record<string, string> = { ...always };
    for (const i of Array.isArray(data.inputs) ? data.inputs : []) {
      const id = String(i?.identifier);
      if (id in known) inputs[id] = known[id]!;
      else if (i?.required === true && !(id in inputs)) {
        throw new McpAuthError(`Thunder's admin login asks for "${markControl(id).slice(0, 60)}", which mcp-auth cannot supply`, { hint: "use an account with a username/password login, or pass --admin-token-env VAR" });
      }
    }
    const key = JSON.stringify(Object.keys(inputs).sort());
    if (asked.has(key)) throw new McpAuthError("Thunder's admin login keeps asking for the same inputs; giving up");
    asked.add(key);
    // The first action is the credentials prompt's in every flow Thunder ships; 1.0.0 lists
    // forgot-password and sign-up after it.
    const action = Array.isArray(data.actions) ? data.actions.find((a) => typeof a?.ref === "string")?.ref : undefined;
    const next: Json = { inputs };
    if (action) next.action = action;
    next[continuation] = res[continuation];
    if (typeof res.challengeToken === "string") next.challengeToken = res.challengeToken;
    res = await flowCall(ctx, url, next);
  }
  throw new McpAuthError(`Thunder's admin login did not complete after ${MAX_STEPS} steps`);
}

/** Does a token (assertion or access token) carry `system`? Thunder reads scope, scopes, then authorized_permissions. */
export function holdsSystem(claims: Json): boolean {
  const words = [claims.scope, claims.authorized_permissions].filter((v): v is string => typeof v === "string").join(" ").split(/\s+/);
  return words.includes("system") || (Array.isArray(claims.scopes) && claims.scopes.includes("system"));
}

/** A step's failure: `failureReason` (a string, up to 0.42) or `error` ({code, message{key, defaultValue}, description}, 0.43+). */
function stepFailure(res: Json): { text: string; code?: string } | undefined {
  if (typeof res.failureReason === "string" && res.failureReason) return { text: clip(res.failureReason) };
  const e = res.error;
  if (e && typeof e === "object") {
    const b = e as Json;
    const text = i18n(b.message) ?? i18n(b.description) ?? (typeof b.code === "string" ? b.code : "refused");
    return { text: clip(text), code: typeof b.code === "string" ? clip(b.code) : undefined };
  }
  return undefined;
}

const clip = (s: string) => markControl(s).slice(0, 200);

interface CallContext {
  appId: string;
  /** The application was found on our own (the Console), not named with --admin-app-id. */
  found: boolean;
  withSecret: boolean;
}

async function flowCall(ctx: ProviderContext, url: string, payload: Json, headers?: Record<string, string>, first?: CallContext): Promise<Json> {
  const res = await api<Json>(ctx, "POST", `${url}/flow/execute`, { json: payload, headers });
  if (res.status === 200 && res.body && typeof res.body === "object") return res.body;
  if (first) {
    const refused = refusal(res, first);
    if (refused) throw refused;
  }
  throw apiError("Thunder admin login (/flow/execute)", res);
}

export type RefusalKind = "not-permitted" | "secret-required" | "secret-invalid" | "unknown-app" | "administration";

/**
 * Why Thunder refused to start the flow. Codes were renumbered between releases (FES-1011 is "not
 * permitted" with 403 in 0.45–0.46, "flow secret required" with 401 from 0.47), so the i18n message key
 * decides when there is one, and the code only together with the HTTP status otherwise.
 */
export function refusalKind(status: number, body: unknown): RefusalKind | undefined {
  const b = (body && typeof body === "object" ? body : {}) as Json;
  const code = typeof b.code === "string" ? b.code : "";
  const key = b.message && typeof b.message === "object" && typeof (b.message as Json).key === "string" ? String((b.message as Json).key) : "";
  if (key) {
    const k = key.replace(/^error\.flowexecservice\./, "");
    if (k === "direct_flow_initiation_not_permitted") return "not-permitted";
    if (k === "flow_secret_required") return "secret-required";
    if (k === "flow_secret_invalid") return "secret-invalid";
    if (k === "invalid_app_id") return "unknown-app";
    if (k.startsWith("administration_")) return "administration";
    return undefined;
  }
  if (status === 403 && (code === "FES-1011" || code === "FES-1010")) return "not-permitted";
  if (status === 401 && code === "FES-1011") return "secret-required";
  if (status === 401 && code === "FES-1012") return "secret-invalid";
  if (status === 400 && code === "FES-1003") return "unknown-app";
  return undefined;
}

function refusal(res: ApiResponse<Json>, c: CallContext): McpAuthError | undefined {
  const kind = refusalKind(res.status, res.body);
  if (!kind) return undefined;
  const code = typeof res.body?.code === "string" ? ` (${clip(res.body.code)})` : "";
  const app = c.found ? `its Console application (${c.appId})` : `application ${c.appId}`;
  switch (kind) {
    case "not-permitted":
      return new AuthError(`Thunder does not let ${app} start a sign-in flow from outside the browser${code}`, {
        hint: "pass --admin-app-id ID of an application allowed to start flows (ThunderID ≥ 0.47: with --flow-secret-env VAR), or --admin-token-env VAR with a token that carries 'system'",
        code: res.body?.code as string | undefined,
      });
    case "secret-required":
      return new AuthError(`Thunder wants the flow secret of ${app} to start a sign-in flow${code}`, {
        hint: c.found ? "pass --admin-app-id ID and --flow-secret-env VAR" : "pass --flow-secret-env VAR, naming the variable that holds the application's flow secret",
        code: res.body?.code as string | undefined,
      });
    case "secret-invalid":
      return new AuthError(`Thunder refused the flow secret of ${app}${code}`, { hint: "check the secret in the variable passed with --flow-secret-env, and --admin-app-id", code: res.body?.code as string | undefined });
    case "unknown-app":
      return new UsageError(`Thunder has no application ${c.appId}${code}`, { hint: c.found ? "pass --admin-app-id ID" : "check --admin-app-id (the application's id, not its client id)" });
    case "administration":
      return new McpAuthError(`Thunder took the sign-in for an administration flow${code}`, { hint: "pass --admin-token-env VAR, and please report this with the Thunder release" });
  }
}

/**
 * The admin login flow needs an application id, and listing applications needs the admin login:
 * GET /oauth2/authorize (a public path) redirects to the sign-in gate with `applicationId` in the
 * query, for any registered client. From 0.45 the clients found this way (redirect clients) may no
 * longer start flows themselves; Thunder's refusal then names --admin-app-id.
 */
export async function findLoginApplication(ctx: ProviderContext, url: string): Promise<string> {
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
  // Thunder redirects every authorize request (to its sign-in gate, or with an error): a server that
  // never redirects is something else, and saying so beats "no application" (docs/idp/thunder.md).
  if (!redirected) throw new UsageError(`${url} is not a Thunder server (${markControl(answer)})`, { hint: "check --url: it is Thunder's public URL, e.g. http://thunder.openchoreo.localhost:8080" });
  throw new UsageError(`could not find an application to sign in with at ${url}`, { hint: "pass --admin-app-id ID (Thunder ≤ 0.39 logs 'Sample App ID: …'), or --admin-token-env VAR" });
}

/**
 * The System resource server's identifier. It comes from the server's own default resources, not from
 * its URL: the shipped value is https://localhost:8090/mcp, and deployments that change it also change
 * what the Console asks tokens for, which the Console's public config.js states (0.48+).
 */
async function systemResource(ctx: ProviderContext, url: string): Promise<{ id: string; from: "console" | "default" }> {
  try {
    const res = await ctx.fetch(`${url}/console/config.js`, { redirect: "manual" });
    if (res.status === 200) {
      const text = (await res.text()).slice(0, 256 * 1024);
      // `resource_identifier: '…'`; printable ASCII only, so nothing a terminal could act on
      const m = /\bresource_identifier\s*:\s*(['"])([!#-&(-~]{1,512})\1/.exec(text);
      if (m) return { id: m[2]!, from: "console" };
    } else await res.body?.cancel();
  } catch (e) {
    ctx.debug(`no Console configuration: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { id: DEFAULT_SYSTEM_RESOURCE, from: "default" };
}
