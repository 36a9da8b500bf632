import { randomBytes } from "node:crypto";
import { AuthError, type BootstrapRun, type Check, checkUrl, defineInput, defineProvider, type InputValues, issuerUrl, McpAuthError, normalizeIssuer, passed, peekClaims, type ProfileData, type ProviderContext, registerSecret, UsageError, type Json } from "../sdk.js";
import { adminPasswordInput, adminUserInput, grantInput, redirectPortInput, rotateSecretInput, SECRET_NOT_HELD, type ClientGrant } from "./options.js";
import { appTypes, body, createError, inboundConfig, lifetimeOf, oauthConfig, pick, ThunderAdmin, unknownType, withSecret, type AppList, type Casing, type TokenShape } from "./thunder/apps.js";
import { holdsSystem, signIn, type FlowFacts } from "./thunder/signin.js";

/**
 * Thunder / ThunderID (the IdP of OpenChoreo). Turns the manual steps into one command: an admin
 * token (the assertion of POST /flow/execute, or one given with --admin-token-env), then POST
 * /applications with an OAuth2 inbound config.
 *
 * Every release from 0.28 (OpenChoreo's pin) to ThunderID 1.0.0 is supported; their differences (wire
 * casing, flow continuation, error shapes, who may start a flow, flow secrets, the token-lifetime
 * shape, application types, resource-server-scoped permissions) are listed in docs/idp/thunder.md.
 * Go's JSON decoder ignores unknown fields, so a body in the wrong shape "succeeds" without its
 * settings: the shape is worked out from the server's own answers, and what it stored is read back.
 */
const inputs = [
  defineInput({ name: "url", flag: "--url <url>", kind: "url", description: "Thunder's public URL (also the token issuer)", prompt: "Thunder URL", default: "http://thunder.openchoreo.localhost:8080", reach: true }),
  defineInput({ name: "adminToken", flag: "--admin-token", kind: "string", secret: true, description: "admin access token carrying 'system' (skips the sign-in)" }),
  { ...adminUserInput("admin user (needs the 'system' permission)"), askIf: (a: Record<string, unknown>) => !a.adminToken },
  adminPasswordInput("Thunder", { askIf: (a) => !a.adminToken, missingHint: " (or --admin-token-env VAR)" }),
  defineInput({ name: "adminAppId", flag: "--admin-app-id <id>", kind: "string", description: "application to run the admin sign-in flow with (found on its own up to Thunder 0.44)", askIf: (a) => !a.adminToken }),
  defineInput({ name: "flowSecret", flag: "--flow-secret", kind: "string", secret: true, description: "flow secret of the --admin-app-id application (ThunderID ≥ 0.47)", askIf: (a) => !a.adminToken }),
  defineInput({ name: "systemResourceServer", flag: "--system-resource-server <id>", kind: "string", description: "identifier of Thunder's System resource server (ThunderID ≥ 1.0; read from the Console when absent)", askIf: (a) => !a.adminToken }),
  grantInput("the application"),
  redirectPortInput,
  rotateSecretInput,
  // the first spelling of --admin-app-id
  defineInput({ name: "appId", flag: "--app-id <id>", kind: "string", description: "same as --admin-app-id", hidden: true }),
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
  summary: "Thunder / ThunderID (OpenChoreo): create the MCP client application via the admin API",
  inputs,

  /** A host named thunder, or Thunder's own endpoint layout (docs/idp/thunder.md: /oauth2/token, /oauth2/jwks, /oauth2/dcr/register at the root). */
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
    const adminAppId = o.adminAppId ?? o.appId;
    if (o.flowSecret && !adminAppId && !o.adminToken) {
      throw new UsageError("--flow-secret-env needs --admin-app-id: a flow secret belongs to one application", { hint: "pass --admin-app-id ID of the application the secret was issued to" });
    }

    const { token, flow } = await adminCredential(ctx, url, o, adminAppId);
    const session = new ThunderAdmin(ctx, url, token, Boolean(o.adminToken));
    const apps = await session.list();
    const casing: Casing = o.apiCasing ?? apps.casing ?? (flow?.continuation === "flowId" ? "snake" : "camel");
    const shape = casing === "snake" ? "flat" : await session.tokenShape(apps);

    const existing = apps.items.find((a) => a.name === o.name);
    const { action, appIdCreated, clientId, secret, stored } = existing ? await reuseApp(session, casing, o, existing.id, run) : await newApp(ctx, session, casing, shape, o);

    const checks: Check[] = [lifetimeCheck(stored && lifetimeOf(inboundConfig(stored), grant), validity, action === "created", stored !== undefined)];
    const release = releaseLabel(casing, apps, shape, flow);
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
        ["API", `${release}: ${casing === "camel" ? "camelCase" : "snake_case"}${flow ? `, ${flow.continuation} flows` : ", admin token given"}`],
        ["client secret", secret ? (action === "rotated" ? "rotated, stored" : "stored") : action === "reused" ? "kept (already stored)" : "none (public client)"],
      ],
      checks,
      json: { applicationId: appIdCreated, clientId, casing, flowEra: flow?.continuation, release, tokenShape: shape, typed: apps.typed },
    };
  },
});

type ThunderInput = InputValues<typeof inputs>;
interface AppOutcome {
  action: "created" | "reused" | "rotated";
  appIdCreated: string;
  clientId: string;
  secret?: string;
  /** The application as Thunder keeps it, read back (undefined when that failed). */
  stored?: Json;
}

/** The admin's bearer credential (--admin-token-env, or a sign-in through the flow API): never printed, whatever a server echoes. */
async function adminCredential(ctx: ProviderContext, url: string, o: ThunderInput, adminAppId: string | undefined): Promise<{ token: string; flow?: FlowFacts }> {
  if (o.adminToken) {
    registerSecret(o.adminToken);
    const claims = peekClaims(o.adminToken);
    if (Object.keys(claims).length && !holdsSystem(claims)) {
      throw new AuthError("the token from --admin-token-env does not carry the 'system' permission", { hint: "use a token of an administrator, asked for the 'system' scope" });
    }
    return { token: o.adminToken };
  }
  // (the password travels only in the sign-in body, whose `password` field traces never show)
  registerSecret(o.flowSecret);
  const signedIn = await signIn(ctx, url, { user: o.adminUser!, password: o.adminPassword!, appId: adminAppId, flowSecret: o.flowSecret, systemResource: o.systemResourceServer });
  registerSecret(signedIn.assertion);
  return { token: signedIn.assertion, flow: signedIn.flow };
}

/** A new application with the OAuth configuration asked for, read back; deleted again when Thunder dropped that configuration. */
async function newApp(ctx: ProviderContext, session: ThunderAdmin, casing: Casing, shape: TokenShape | undefined, o: ThunderInput): Promise<AppOutcome> {
  const ouId = casing === "camel" ? await session.defaultOu() : undefined;
  const wanted = oauthConfig(o.grant, o.clientId, o.redirectPort, o.validity, shape);
  const res = await createApp(session, casing, o.name, wanted, ouId, o.grant);
  const cfg = inboundConfig(res);
  if (!cfg) {
    // Thunder ignored our OAuth config (unknown fields are dropped silently): the app is useless, remove it.
    await session.delete(String(res.id)).catch(() => undefined);
    throw new McpAuthError(`Thunder created "${o.name}" without its OAuth configuration (it ignored the ${casing === "camel" ? "camelCase" : "snake_case"} fields); the application was deleted again`, {
      hint: "this Thunder speaks another API version; please report its version",
    });
  }
  const appIdCreated = String(res.id);
  const clientId = String(pick(cfg, "client_id", "clientId"));
  const secret = pick(cfg, "client_secret", "clientSecret") as string | undefined;
  registerSecret(secret, { clientId });
  // What Thunder keeps, read back: the decoder drops keys of another release's shape without a word.
  const stored = await session.get(appIdCreated).catch((e: unknown) => {
    ctx.debug(`reading application ${appIdCreated} back failed: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  });
  return { action: "created", appIdCreated, clientId, secret, stored };
}

/** The application named --name, reused as it is, or with a new secret (--rotate-secret), staged in the vault before Thunder has it. */
async function reuseApp(session: ThunderAdmin, casing: Casing, o: ThunderInput, id: string, run: BootstrapRun): Promise<AppOutcome> {
  const full = await session.get(id);
  const cfg = inboundConfig(full);
  if (!cfg) throw new McpAuthError(`application "${o.name}" (${id}) exists but has no OAuth configuration`, { hint: "delete it in the Thunder console, or pass another --name" });
  const clientId = String(pick(cfg, "client_id", "clientId"));
  const isPublic = pick(cfg, "token_endpoint_auth_method", "tokenEndpointAuthMethod") === "none";
  const kind: ClientGrant = isPublic ? "authorization_code" : "client_credentials";
  if (kind !== o.grant) {
    throw new UsageError(`application "${o.name}" already exists (id ${id}) as a ${kind} client, not ${o.grant}`, { hint: `pass another --name, or --grant ${kind}` });
  }
  if (o.rotateSecret && !isPublic) {
    const secret = randomBytes(32).toString("base64url");
    // Ours before it is Thunder's: if anything below fails, the new secret is not lost.
    await run.vault.stage(secret);
    const updated = await session.update(id, withSecret(full, casing, secret)).catch(async (e: unknown) => {
      await run.vault.unstage();
      throw e;
    });
    if (!inboundConfig(updated)) throw new McpAuthError(`Thunder did not keep the OAuth configuration of "${o.name}" when rotating its secret`);
    return { action: "rotated", appIdCreated: id, clientId, secret, stored: full };
  }
  if (!isPublic && !(await run.vault.holds(clientId))) {
    throw new UsageError(`application "${o.name}" already exists (id ${id}) and mcp-auth does not hold its client secret`, {
      code: SECRET_NOT_HELD,
      hint: "rerun with --rotate-secret to issue a new one (apps using the old secret will stop working)",
    });
  }
  return { action: "reused", appIdCreated: id, clientId, stored: full };
}

/**
 * POST /applications. ThunderID ≥ 1.0.0-alpha2 requires an application `type`; the best one this
 * release knows is sent (older releases drop the key).
 */
async function createApp(session: ThunderAdmin, casing: Casing, name: string, config: Json, ouId: string | undefined, grant: ClientGrant): Promise<Json> {
  const types = appTypes(grant);
  for (const [i, type] of types.entries()) {
    const res = await session.create(body(casing, name, config, { ouId, type }));
    if (res.status === 201) return res.body;
    if (i < types.length - 1 && unknownType(res)) continue;
    throw createError(name, res);
  }
  throw new McpAuthError("unreachable");
}

/** The access-token lifetime Thunder stored, against the one asked for. */
function lifetimeCheck(stored: number | undefined, asked: number, created: boolean, readBack: boolean): Check {
  const what = "access-token lifetime";
  if (stored === asked) return passed(what, `${asked} s, read back from Thunder`);
  if (!readBack) return { ok: true, status: "warn", what, detail: "the application could not be read back to check it" };
  const kept = stored === undefined ? "none of its own (Thunder's default applies)" : `${stored} s`;
  return {
    ok: true,
    status: "warn",
    what,
    detail: created ? `Thunder stored ${kept}, not the ${asked} s asked for` : `the existing application keeps ${kept}; --validity applies when it is created`,
    fix: "set the access-token validity of the application in the Thunder Console",
  };
}

/** The releases the answers fit (docs/idp/thunder.md lists what tells them apart). */
function releaseLabel(casing: Casing, apps: AppList, shape: TokenShape | undefined, flow: FlowFacts | undefined): string {
  if (apps.typed) return "ThunderID ≥ 1.0.0-alpha2";
  if (shape === "split") return "ThunderID 0.48–1.0.0-alpha";
  if (casing === "snake") return "Thunder ≤ 0.29";
  if (flow?.continuation === "flowId") return "Thunder 0.30–0.33";
  if (flow?.continuation === "executionId") return "Thunder 0.34–0.47";
  return "Thunder 0.30–0.47";
}
