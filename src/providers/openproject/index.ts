import { randomBytes } from "node:crypto";
import { AuthError, type Check, loopbackRedirectProblem, checkUrl, type ProviderContext, defineInput, defineProvider, describeEra, failed, type InputValues, issuerUrl, normalizeIssuer, passed, probeServer, type ProfileData, registerSecret, UsageError, type Json } from "../../sdk.js";
import { api, apiError, type ApiResponse } from "../http.js";
import { adminPasswordInput, adminUserInput, redirectPortInput } from "../options.js";
import { OpenProjectAdmin, redirectUriProblem, Unsupported } from "./create.js";

/**
 * OpenProject (docs/idp/openproject.md). OpenProject has no API that creates OAuth applications (only
 * GET /api/v3/oauth_applications/{id}; creation is the admin UI), so:
 *  - `--create`: sign in to the web UI as an admin and fill the new-application form as a browser
 *    does (./create.ts); anything unexpected there falls back to the guided mode, with the reason;
 *  - `--oauth`: print the exact admin steps and values, then (with --client-id and the secret through
 *    stdin/env/prompt) verify the client at /oauth/token and save a profile for it;
 *  - `--api-token-stdin|--api-token-env`: verify a personal API token at /api/v3/users/me and keep it
 *    in the secret store (it is a static credential, never written to a file).
 * Either way /mcp is probed: the MCP server (17.2+) is an Enterprise add-on an admin switches on, and
 * it wants tokens with the `mcp` scope.
 */

const SCOPES = ["api_v3", "mcp"]; // `mcp` is required by the MCP endpoints (docs/idp/openproject.md)
const OOB = "urn:ietf:wg:oauth:2.0:oob"; // Doorkeeper's native_redirect_uri, always accepted

const inputs = [
  defineInput({ name: "url", flag: "--url <url>", kind: "url", required: true, description: "OpenProject base URL (e.g. https://openproject.example.com)", prompt: "OpenProject URL", reach: true }),
  defineInput({ name: "create", flag: "--create", kind: "boolean", description: "sign in to the web UI as an admin and create the OAuth application (api_v3 + mcp, confidential)" }),
  { ...adminUserInput("OpenProject administrator who creates the application (--create)"), askIf: (a: Record<string, unknown>) => Boolean(a.create) },
  adminPasswordInput("OpenProject", { askIf: (a) => Boolean(a.create) }),
  defineInput({ name: "oauth", flag: "--oauth", kind: "boolean", description: "use an OAuth application (guided: the admin creates it in the UI)" }),
  defineInput({ name: "apiToken", flag: "--api-token", kind: "string", secret: true, description: "personal API token (My account → Access tokens)" }),
  defineInput({ name: "name", flag: "--name <name>", kind: "string", description: "name of the OAuth application", default: "MCP client" }),
  defineInput({
    name: "grant",
    flag: "--grant <grant>",
    kind: "choice",
    choices: ["authorization_code", "client_credentials"] as const,
    description: "authorization_code (people, PKCE) or client_credentials (a service acting as one user)",
    default: "authorization_code",
  }),
  defineInput({ name: "clientCredentialsUser", flag: "--client-credentials-user <login>", kind: "string", description: "user the client-credentials tokens act as", askIf: (a) => a.grant === "client_credentials" }),
  { ...redirectPortInput, askIf: (a: Record<string, unknown>) => a.grant === "authorization_code" },
  defineInput({
    name: "redirectUri",
    flag: "--redirect-uri <uri>",
    kind: "string",
    description: "redirect URI to register instead of http://127.0.0.1:<redirect-port>/callback (e.g. an https URI forwarding to it)",
    validate: (v: string) => (v === OOB || (URL.canParse(v) && /^https?:$/.test(new URL(v).protocol)) ? undefined : `must be an http(s) URI or ${OOB}`),
  }),
  defineInput({ name: "clientId", flag: "--client-id <id>", kind: "string", description: "client id OpenProject showed for the application" }),
  defineInput({
    name: "clientSecret",
    flag: "--client-secret",
    kind: "string",
    secret: true,
    required: true,
    description: "OAuth application's client secret",
    prompt: (a) => `Client secret of OpenProject application ${String(a.clientId)}`,
    askIf: (a) => Boolean(a.oauth && a.clientId),
  }),
  defineInput({ name: "open", flag: "--open", kind: "boolean", description: "open the admin page for new OAuth applications in the browser" }),
] as const;

type OpInput = InputValues<typeof inputs>;

export const openproject = defineProvider({
  id: "openproject",
  title: "OpenProject",
  summary: "OpenProject: guided OAuth application (api_v3 + mcp) or a personal API token, verified against /mcp",
  inputs,

  /** OpenProject has no discovery document; a profile's issuer is the base URL and its endpoints are /oauth/*. */
  doctorHints: { mcpDisabled: "OpenProject: Administration → experimental features", scope: "OpenProject: the mcp scope" },
  matches(x) {
    if (typeof x === "string") return false;
    const u = issuerUrl(x);
    return Boolean(u && x.token_endpoint === `${normalizeIssuer(u.href)}/oauth/token` && x.authorization_endpoint === `${normalizeIssuer(u.href)}/oauth/authorize`);
  },

  async bootstrap(ctx, o, run) {
    const base = normalizeIssuer(checkUrl(o.url, "--url", ctx.allowHttp).href);
    const modes = [o.create && "--create", o.oauth && "--oauth", o.apiToken !== undefined && "--api-token-stdin/--api-token-env"].filter(Boolean);
    if (modes.length > 1) throw new UsageError(`pass one of ${modes.join(", ")}, not several`);
    if (!modes.length) o = await askMode(ctx, o);
    if (o.apiToken !== undefined) return apiTokenMode(ctx, base, o.apiToken, run.verify);
    const redirectUri = o.redirectUri ?? (o.grant === "authorization_code" ? `http://127.0.0.1:${o.redirectPort}/callback` : OOB);
    if (o.create) return createMode(ctx, base, o, redirectUri, run);
    if (!o.clientId) return guided(ctx, base, o, redirectUri);
    return oauthMode(ctx, base, o, redirectUri, run.verify);
  },
});

const MODES_HINT = "--create --admin-user LOGIN (mcp-auth creates the OAuth application in the web UI), --oauth (an admin creates it; mcp-auth prints the steps), or --api-token-stdin / --api-token-env VAR (your personal API token)";

/** None of the three modes given: a person chooses (with what that mode needs, asked hidden); anyone else gets exit 2. */
async function askMode(ctx: ProviderContext, o: OpInput): Promise<OpInput> {
  if (!ctx.io.interactive || ctx.nonInteractive) throw new UsageError("say how mcp-auth should set up OpenProject", { hint: `pass ${MODES_HINT}` });
  const p = ctx.io.prompter;
  const mode = await p.select("How should mcp-auth set up OpenProject?", [
    { value: "create", name: "Create the OAuth application (signs in to the web UI as an administrator)" },
    { value: "oauth", name: "Guided: an administrator creates it, mcp-auth prints the steps" },
    { value: "token", name: "Use my personal API token" },
  ] as const);
  if (mode === "token") return { ...o, apiToken: await p.password("Personal API token (My account → Access tokens)", { flagHint: "--api-token-stdin" }) };
  if (mode === "oauth") return { ...o, oauth: true };
  const adminUser = o.adminUser ?? (await p.input("Admin user", { default: "admin", flagHint: "--admin-user" }));
  return { ...o, create: true, adminUser, adminPassword: await p.password(`Password of OpenProject user "${adminUser}"`, { flagHint: "--admin-password-stdin" }) };
}

function guided(ctx: ProviderContext, base: string, o: OpInput, redirectUri: string, reason?: string) {
  const admin = `${base}/admin/oauth/applications/new`;
  const open = o.open ? ctx.browser.open(admin) : Promise.resolve();
  return open.then(() => ({
    action: "guided" as const, // nothing exists yet: the admin creates it from the steps
    facts: [["admin page", admin]] as Array<[string, string]>,
    // The fallback stops with exit 1: what was asked (--create) did not happen.
    checks: reason ? [failed("create the OAuth application", reason, "follow the steps below")] : undefined,
    notes: guide(base, o, redirectUri),
    json: { adminUrl: admin, redirectUri, scopes: SCOPES, ...(reason && { fallback: reason }) },
  }));
}

/** `--create`: the web UI does what the guide would ask an admin to do; then the client is checked as in `--oauth`. */
async function createMode(ctx: ProviderContext, base: string, o: OpInput, redirectUri: string, run: { verify: boolean; vault: { holds(clientId: string): Promise<boolean> } }) {
  const cc = o.grant === "client_credentials";
  if (cc && !o.clientCredentialsUser) throw new UsageError("--grant client_credentials needs --client-credentials-user LOGIN (the user its tokens act as)");
  // OpenProject's own rule, checked before anything is signed in to or submitted (docs/idp/openproject.md "Redirect URIs").
  const problem = redirectUriProblem(redirectUri);
  if (problem) {
    throw new UsageError(`OpenProject would refuse the redirect URI ${redirectUri}: ${problem}`, {
      hint: "use an https redirect URI, the default loopback one (http://127.0.0.1:PORT/callback, --redirect-port), or --grant client_credentials --client-credentials-user LOGIN (no redirect)",
    });
  }
  const admin = new OpenProjectAdmin(ctx, base);
  let created;
  try {
    await admin.signIn(o.adminUser!, o.adminPassword!);
    const existing = await admin.find(o.name);
    if (existing) {
      const clientId = await admin.clientIdOf(existing);
      if (!(await run.vault.holds(clientId))) {
        throw new UsageError(`OpenProject already has an OAuth application "${o.name}" (client ${clientId}), and its secret, shown once when it was created, is not in mcp-auth's store`, {
          hint: "pass another --name, or delete that application under Administration → Authentication → OAuth applications (OpenProject cannot show or regenerate its secret)",
        });
      }
      created = { action: "reused" as const, appId: existing, clientId, markup: "" };
    } else {
      created = await admin.create({ name: o.name, redirectUri, scopes: SCOPES, clientCredentialsUser: cc ? o.clientCredentialsUser : undefined });
    }
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
    const warning = `cannot create the application through the web UI: ${e.message}; here are the steps instead`;
    return { ...(await guided(ctx, base, o, redirectUri, e.message)), warnings: [warning] };
  }
  const facts: Array<[string, string]> = [["application", `${o.name} (id ${created.appId})`]];
  if (created.action === "reused") {
    // Its secret is already in the store (core keeps it); the first token checks it.
    return { ...profileResult(base, o, created.clientId, redirectUri), action: "reused" as const, facts: [...facts, ["client", `${created.clientId} (${o.grant})`], ["client secret", "kept (already stored)"]] as Array<[string, string]> };
  }
  const checked = await oauthMode(ctx, base, { ...o, clientId: created.clientId, clientSecret: created.clientSecret }, redirectUri, run.verify);
  return { ...checked, action: "created" as const, facts: [...facts, ...checked.facts], json: { ...checked.json, appId: created.appId, form: created.markup } };
}

function profileResult(base: string, o: OpInput, clientId: string, redirectUri: string): { profile: ProfileData; json: Json } {
  const cc = o.grant === "client_credentials";
  const profile: ProfileData = {
    provider: "openproject",
    issuer: base,
    clientId,
    grant: o.grant,
    scopes: SCOPES,
    mcpUrl: `${base}/mcp`,
    redirectPort: cc ? undefined : o.redirectPort,
    // A loopback redirect URI of the user's own (localhost, another path): the login listens for exactly it.
    ...(!cc && o.redirectUri && !loopbackRedirectProblem(o.redirectUri) && { redirectUri: o.redirectUri }),
    tokenEndpointAuthMethod: "client_secret_basic",
    // No RFC 8414 document on OpenProject: the endpoints are fixed paths (docs/idp/openproject.md).
    extra: { authorizationEndpoint: `${base}/oauth/authorize`, tokenEndpoint: `${base}/oauth/token`, redirectUri },
  };
  return { profile, json: { clientId, grant: o.grant, redirectUri, mcpUrl: `${base}/mcp` } };
}

/** The admin's clicks, with every value to paste (the new-application form; docs/idp/openproject.md). */
function guide(base: string, o: OpInput, redirectUri: string): string[] {
  const cc = o.grant === "client_credentials";
  const user = o.clientCredentialsUser ?? "LOGIN";
  const steps = [
    "OpenProject has no API to create OAuth applications; an admin creates one in the web UI:",
    `  1. Sign in as an administrator and open Administration → Authentication → OAuth applications → "+ OAuth application" (${base}/admin/oauth/applications/new)`,
    `  2. Name: ${o.name}`,
    `  3. Redirect URI: ${redirectUri}`,
    `  4. Scopes: tick "api_v3" and "mcp" (MCP refuses tokens without "mcp")`,
    "  5. Confidential: ticked",
    ...(cc ? [`  6. Client Credentials User: ${user} (the user every token acts as)`] : []),
    `  ${cc ? 7 : 6}. Create, then copy the Client ID and the Client secret (the secret is shown only once)`,
    `Then run: mcp-auth bootstrap openproject --url ${base} --oauth${cc ? " --grant client_credentials" : ""} --client-id CLIENT_ID --client-secret-stdin`,
    "  (paste the secret on stdin, or use --client-secret-env VAR; on a terminal mcp-auth asks for it without echo)",
  ];
  const problem = redirectUriProblem(redirectUri);
  if (problem) {
    steps.push(`OpenProject will refuse ${redirectUri}: ${problem}. Use an https URI, a loopback one such as http://127.0.0.1:${o.redirectPort}/callback, or ${OOB} with --grant client_credentials.`);
  } else if (!cc) {
    steps.push(`OpenProject accepts this plain-http redirect URI because it points at a loopback address (its redirect-URI check asks for https or a loopback host); from another machine, use an https URI that forwards to the port instead.`);
  }
  steps.push(
    "MCP must be enabled: Administration → Artificial Intelligence (AI) → Model Context Protocol (MCP) (Enterprise add-on); on older versions tick it at /admin/settings/experimental.",
    "Self-hosted, without the UI (prints the client id and the secret once):",
    `  docker compose exec web bundle exec rails runner 'a = Doorkeeper::Application.create!(name: ${rubyString(o.name)}, redirect_uri: ${rubyString(redirectUri)}, scopes: "api_v3 mcp", confidential: true${cc ? `, client_credentials_user_id: User.find_by!(login: ${rubyString(user)}).id` : ""}); puts a.uid, a.plaintext_secret'`,
  );
  return steps;
}

function rubyString(s: string): string {
  return `"${s.replace(/[\\"#]/g, (c) => `\\${c}`)}"`;
}

/**
 * Verifies the pasted client at /oauth/token (form, client_secret_basic). For authorization_code a
 * made-up code tells a good secret (invalid_grant) from a bad one (invalid_client) without a login.
 */
async function oauthMode(ctx: ProviderContext, base: string, o: OpInput, redirectUri: string, verify: boolean) {
  const clientId = o.clientId!;
  const secret = o.clientSecret!;
  registerSecret(secret, { clientId });
  const token = `${base}/oauth/token`;
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString("base64")}`;
  const cc = o.grant === "client_credentials";
  const form: Record<string, string> = cc
    ? { grant_type: "client_credentials", scope: SCOPES.join(" ") }
    : { grant_type: "authorization_code", code: randomBytes(16).toString("hex"), redirect_uri: redirectUri, code_verifier: randomBytes(32).toString("base64url") };
  const res = await api<Json>(ctx, "POST", token, { form, headers: { authorization: basic } });
  const error = typeof res.body?.error === "string" ? res.body.error : undefined;
  const checks: Check[] = [];
  if (res.status === 401 || error === "invalid_client") {
    throw new AuthError(`OpenProject refused client ${clientId}: ${describe(res)}`, { hint: "check the client id and secret (Administration → Authentication → OAuth applications; regenerate the secret if it was lost)" });
  }
  let accessToken: string | undefined;
  if (cc) {
    if (error === "invalid_scope") throw new AuthError(`OpenProject refused the scopes "api_v3 mcp" for client ${clientId}: ${describe(res)}`, { hint: 'edit the OAuth application and tick the "mcp" and "api_v3" scopes' });
    if (error === "unauthorized_client") throw new AuthError(`OpenProject refused client credentials for ${clientId}: ${describe(res)}`, { hint: "edit the OAuth application and set a Client Credentials User" });
    if (res.status !== 200 || typeof res.body?.access_token !== "string") throw apiError("client credentials token", res as ApiResponse);
    accessToken = res.body.access_token;
    registerSecret(accessToken);
    const scopes = String(res.body.scope ?? "").split(/\s+/);
    checks.push(scopes.includes("mcp") ? passed("token scope", scopes.join(" ")) : failed("token scope", `the token carries "${scopes.join(" ")}", without "mcp"`, 'edit the OAuth application and tick the "mcp" scope'));
  } else if (error === "invalid_grant") {
    checks.push(passed("client secret", "accepted by /oauth/token"));
  } else {
    throw apiError("checking the client at /oauth/token", res as ApiResponse);
  }
  if (verify) checks.push(await mcpProbe(ctx, base, accessToken ? `Bearer ${accessToken}` : undefined));

  const { profile, json } = profileResult(base, o, clientId, redirectUri);
  return {
    action: "configured" as const,
    profile,
    clientSecret: secret,
    facts: [["client", `${clientId} (${o.grant})`], ["scopes", SCOPES.join(" ")], ["redirect URI", redirectUri]] as Array<[string, string]>,
    checks,
    json,
  };
}

/** A personal API token: Bearer first (tokens made since 17.2), Basic `apikey:<token>` as the fallback. */
async function apiTokenMode(ctx: ProviderContext, base: string, tokenValue: string, verify: boolean) {
  registerSecret(tokenValue, { clientId: "apikey" });
  const me = `${base}/api/v3/users/me`;
  let scheme: "bearer" | "basic" = "bearer";
  let res = await api<Json>(ctx, "GET", me, { token: tokenValue });
  if (res.status === 401) {
    scheme = "basic";
    res = await api<Json>(ctx, "GET", me, { headers: { authorization: basicApiKey(tokenValue) } });
  }
  if (res.status === 401 || res.status === 403) {
    throw new AuthError(`OpenProject refused the API token: ${describe(res)}`, { hint: 'create a new one under My account → Access tokens; an admin must have "Enable API tokens" on' });
  }
  if (res.status !== 200) throw apiError("GET /api/v3/users/me", res as ApiResponse);
  const login = String(res.body?.login ?? res.body?.name ?? "?");
  const checks: Check[] = [passed("API token", `signs in as ${login} (${scheme === "bearer" ? "Bearer" : "Basic apikey:"})`)];
  if (verify) checks.push(await mcpProbe(ctx, base, scheme === "bearer" ? `Bearer ${tokenValue}` : basicApiKey(tokenValue)));
  const profile: ProfileData = {
    provider: "openproject",
    issuer: base,
    clientId: "apikey",
    grant: "authorization_code",
    mcpUrl: `${base}/mcp`,
    tokenEndpointAuthMethod: "client_secret_basic",
    // The token is the profile's secret (secret store only); `credential` says it is sent as it is.
    extra: { credential: "api-token", scheme, user: login },
  };
  return {
    action: "configured" as const,
    profile,
    clientSecret: tokenValue,
    facts: [["user", login], ["MCP endpoint", `${base}/mcp`]] as Array<[string, string]>,
    checks,
    notes: [`The API token is kept in the secret store, never in a file; MCP clients send it as "Authorization: Bearer <token>" to ${base}/mcp.`],
    json: { user: login, scheme, mcpUrl: `${base}/mcp` },
  };
}

function basicApiKey(token: string): string {
  return `Basic ${Buffer.from(`apikey:${token}`).toString("base64")}`;
}

/** OpenProject's own words: a HAL error's `message` or Doorkeeper's error_description. */
function describe(res: ApiResponse<Json>): string {
  const b = res.body ?? {};
  const text = typeof b.message === "string" ? b.message : typeof b.error_description === "string" ? `${String(b.error)}: ${b.error_description}` : res.text.slice(0, 200).replace(/\s+/g, " ");
  return `HTTP ${res.status}: ${text}`;
}

/**
 * POST /mcp (§4.3), as the MCP era probe does it (server/discover, then initialize). Without a token,
 * 401 means MCP is on (it wants a token with `mcp`); 404/403 means it is switched off (§4.4.4).
 */
async function mcpProbe(ctx: ProviderContext, base: string, authorization?: string): Promise<Check> {
  const r = await probeServer(ctx, `${base}/mcp`, authorization);
  const what = "MCP endpoint";
  if (r.era.era === "unknown" && (r.status === 404 || r.status === 403)) {
    return failed(what, `${base}/mcp answers HTTP ${r.status}: the MCP server is not enabled`, "enable it under Administration → Artificial Intelligence (AI) → Model Context Protocol (MCP) (an Enterprise add-on), or on older versions at /admin/settings/experimental");
  }
  if (!authorization) {
    return r.status === 401 ? passed(what, `${base}/mcp is on and asks for a token with the "mcp" scope`) : failed(what, `${base}/mcp answered HTTP ${r.status} without a token`, "check the URL");
  }
  if (r.era.refused) {
    const scope = /insufficient_scope/.test(r.wwwAuthenticate ?? "");
    return failed(what, `${base}/mcp refused the token (HTTP ${r.status}${scope ? ", insufficient_scope" : ""})${r.wwwAuthenticate ? `: ${r.wwwAuthenticate}` : ""}`, scope ? 'tick the "mcp" scope in the OAuth application' : "check the token");
  }
  if (r.era.era !== "unknown") return passed(what, `${base}/mcp ${describeEra(r.era)}`);
  return failed(what, `${base}/mcp answered HTTP ${r.status}`, "check that the URL is OpenProject's");
}
