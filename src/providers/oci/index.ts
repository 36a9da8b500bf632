import { type BootstrapRun, type Check, checkUrl, defineInput, defineProvider, type InputValues, issuerUrl, type ProfileData, UsageError } from "../../sdk.js";
import { adminClientSecretInput, rotateSecretInput, SECRET_NOT_HELD } from "../options.js";
import { OciAdmin, type OciApp, tenantIssuer } from "./admin.js";
import { IDCS_HOST, IDCS_TOKEN_ISSUER, idcsMetadata } from "./discovery.js";
import { planEnvFile } from "./env-file.js";
import { forgetUpst, ociUpst } from "./upst.js";

/**
 * Oracle OCI IAM Identity Domains: the 17 console steps of Oracle's MCP sample (create a
 * confidential app, OAuth client with authorization code + client credentials and the MCP server's
 * callback, activate it, note its id and secret, "Configure client access" for the JWKS) as one
 * idempotent command over the domain's SCIM admin API (docs/idp/oci.md; § below are its sections).
 * The profile saved is the app's client-credentials side, so the first token proves the app works.
 */

const inputs = [
  defineInput({
    name: "domainUrl",
    flag: "--domain-url <url>",
    kind: "url",
    required: true,
    description: "identity domain URL (https://idcs-….identity.oraclecloud.com)",
    prompt: "Identity domain URL",
    reach: true,
    validate: (v: string) => (new URL(v).pathname.replace(/\/+$/, "") || new URL(v).search ? "must be the domain's origin only (https://idcs-….identity.oraclecloud.com)" : undefined),
  }),
  defineInput({ name: "adminClientId", flag: "--admin-client-id <id>", kind: "string", required: true, description: "client id of a confidential app with an administrator app role", prompt: "Admin client id" }),
  adminClientSecretInput("admin client's secret", "Secret of admin client"),
  defineInput({ name: "name", flag: "--name <name>", kind: "string", required: true, description: "display name of the confidential app to create or reuse", prompt: "Application name" }),
  defineInput({ name: "mcpUrl", flag: "--mcp-url <url>", kind: "url", description: "the MCP server's URL; the redirect is <url>/oauth/callback (default http://localhost:8000)", prompt: "MCP server URL" }),
  defineInput({
    name: "redirectUri",
    flag: "--redirect-uri <uri>",
    kind: "url",
    description: "redirect URI to register instead of <mcp-url>/oauth/callback",
    validate: (_v: string, a) => (a.mcpUrl ? "and --mcp-url cannot be used together" : undefined),
  }),
  rotateSecretInput,
  defineInput({ name: "tokenExchange", flag: "--token-exchange", kind: "boolean", description: "also create (or reuse) the identity propagation trust that lets this app exchange user tokens for OCI session tokens (UPST)" }),
  // Not --env-file: Node takes `--env-file X` anywhere in argv as its own and exits 9 before mcp-auth
  // runs when X does not exist yet (nodejs/node#54232). The old name stays, hidden, for existing files.
  defineInput({ name: "envFile", flag: "--dotenv <path>", kind: "string", description: "write or merge the sample MCP server's .env (IAM_DOMAIN, IAM_CLIENT_ID, IAM_CLIENT_SECRET…); it will hold the client secret, mode 0600" }),
  defineInput({ name: "envFileOld", flag: "--env-file <path>", kind: "string", hidden: true, description: "the former name of --dotenv" }),
] as const;

export const oci = defineProvider({
  id: "oci",
  title: "OCI IAM",
  summary: "Oracle OCI IAM identity domain: confidential app for an MCP server, activated, with a public JWKS",
  inputs,
  forget: forgetUpst,
  exchanges: [ociUpst],
  doctorHints: { privateJwks: "OCI IAM: identity domain → Settings → Configure client access → allow access to the signing certificate" },

  /** Domain hosts are idcs-<guid>.identity.oraclecloud.com; IDCS tokens' and documents' issuer is https://identity.oraclecloud.com/. */
  matches(x) {
    const u = issuerUrl(x);
    if (!u) return false;
    if (IDCS_HOST.test(u.hostname)) return true;
    return u.href === IDCS_TOKEN_ISSUER && typeof x !== "string" && typeof x.token_endpoint === "string" && URL.canParse(x.token_endpoint) && IDCS_HOST.test(new URL(x.token_endpoint).hostname);
  },

  // Domains name https://identity.oraclecloud.com/ as their discovery issuer (./discovery.ts).
  quirks: { metadataIssuer: idcsMetadata },

  async bootstrap(ctx, o, run) {
    const domain = checkUrl(o.domainUrl, "--domain-url", ctx.allowHttp, "issuer").origin;
    const redirectUri = o.redirectUri ?? `${(o.mcpUrl ?? "http://localhost:8000").replace(/\/+$/, "")}/oauth/callback`;
    const oci = new OciAdmin(ctx, domain, o.adminClientId, o.adminClientSecret);
    await oci.signIn();

    const checks: Check[] = [];
    const warnings: string[] = [];
    const { app, action, secret } = await createOrReuse(oci, o, redirectUri, run, checks);

    // §3: activation is idempotent; read the app back rather than trust the answer.
    checks.push(await activate(oci, app, o.name));

    // §4: "Configure client access", so MCP servers can validate tokens. The same Settings say
    // which `iss` the domain's tokens carry (a custom tenant issuer, or the documented default).
    const settings = await oci.settings();
    const issuer = tenantIssuer(settings);
    const changed = await oci.publishSigningCert(settings);
    if (run.verify) checks.push(await publicJwks(ctx, domain));

    const profile: ProfileData = {
      provider: "oci",
      issuer: domain,
      clientId: app.clientId,
      grant: "client_credentials",
      // §1: what the app was granted; IDCS wants a scope on client credentials.
      scopes: ["urn:opc:idm:__myscopes__"],
      tokenEndpointAuthMethod: "client_secret_basic",
      extra: { appId: app.id, displayName: o.name, redirectUri, tokenIssuer: issuer },
    };
    const facts: Array<[string, string]> = [
      ["domain", domain],
      ["app", `${o.name} (${app.id})`],
      ["client id", app.clientId],
      ["redirect URI", redirectUri],
      ["client access (public JWKS)", changed ? "enabled" : "already enabled"],
      ["client secret", action === "rotated" ? "rotated, stored" : secret ? "stored" : "kept (already stored)"],
    ];
    if (o.tokenExchange) {
      // The trust matches the subject token's `iss`: the tenant issuer, not a hard-coded one.
      const trust = await oci.ensureTrust(issuer, app.clientId);
      facts.push(["token exchange", `identity propagation trust ${trust.id} (${trust.action}), issuer ${issuer}${issuer === IDCS_TOKEN_ISSUER ? "" : " (the domain's custom issuer)"}, lists client ${app.clientId}`]);
    }
    const envFile = o.envFile ?? o.envFileOld;
    if (envFile) facts.push(["env file", writeDotenv(run, envFile, domain, app, secret, warnings)]);
    return {
      action,
      profile,
      clientSecret: secret,
      facts,
      checks,
      warnings,
      notes: [
        "MCP server settings (Oracle's sample .env):",
        `  IAM_DOMAIN=${new URL(domain).host}`,
        `  IAM_CLIENT_ID=${app.clientId}`,
        "  IAM_CLIENT_SECRET=<stored by mcp-auth; --show-secret prints it>",
        `Tokens are signed by the domain (jwks ${domain}/admin/v1/SigningCert/jwk) with iss ${issuer}`,
      ],
      json: { domain, appId: app.id, clientId: app.clientId, redirectUri, signingCertPublicAccess: true },
    };
  },
});

type OciInput = InputValues<typeof inputs>;

/**
 * §1–2: the app named --name, created; or reused, with its secret rotated (--rotate-secret), kept
 * (mcp-auth holds it) or read back. A reused app's redirect URI and grants are checked, not changed.
 */
async function createOrReuse(oci: OciAdmin, o: OciInput, redirectUri: string, run: BootstrapRun, checks: Check[]): Promise<{ app: OciApp; action: "created" | "reused" | "rotated"; secret?: string }> {
  const found = await oci.findApp(o.name);
  if (!found) {
    const app = await oci.createApp({ displayName: o.name, redirectUri });
    return { app, action: "created", secret: app.clientSecret };
  }
  const app = found;
  if (app.raw.isOAuthClient === false || (app.raw.clientType !== undefined && app.raw.clientType !== "confidential")) {
    throw new UsageError(`app "${o.name}" (${app.id}) exists but is not a confidential OAuth client`, { hint: "pass another --name" });
  }
  let action: "reused" | "rotated" = "reused";
  let secret: string | undefined;
  if (o.rotateSecret) {
    secret = await oci.regenerateSecret(app.id);
    // The domain already has it: keep a copy before anything else can fail.
    await run.vault.stage(secret);
    action = "rotated";
  } else if (!(await run.vault.holds(app.clientId))) {
    // §2: clientSecret is "returned default", so an admin may read it back.
    secret = app.clientSecret;
    if (!secret) {
      throw new UsageError(`app "${o.name}" (${app.id}) exists and neither mcp-auth nor the domain gives its client secret`, {
        code: SECRET_NOT_HELD,
        hint: "rerun with --rotate-secret to issue a new one (servers using the old secret will stop working)",
      });
    }
  }
  const uris = Array.isArray(app.raw.redirectUris) ? app.raw.redirectUris.map(String) : [];
  const grants = Array.isArray(app.raw.allowedGrants) ? app.raw.allowedGrants.map(String) : [];
  if (!uris.includes(redirectUri)) checks.push({ ok: false, what: "redirect URI", detail: `app "${o.name}" does not register ${redirectUri} (it has ${uris.join(", ") || "none"})`, fix: "add it under the app's OAuth configuration, or pass the --mcp-url/--redirect-uri it was created with" });
  const missing = ["authorization_code", "client_credentials"].filter((g) => !grants.includes(g));
  if (missing.length) checks.push({ ok: false, what: "grants", detail: `app "${o.name}" does not allow ${missing.join(" and ")}`, fix: "enable them under the app's OAuth configuration" });
  return { app, action, secret };
}

/** §3: activation is idempotent; the app is read back rather than the answer trusted. */
async function activate(oci: OciAdmin, app: OciApp, name: string): Promise<Check> {
  await oci.activate(app.id);
  const after = await oci.getApp(app.id);
  return after.active ? { ok: true, what: "app active", detail: `${name} (${app.id})` } : { ok: false, what: "app active", detail: `the domain still reports ${app.id} inactive`, fix: "activate it in the console (Integrated applications → Actions → Activate)" };
}

/**
 * --dotenv: the one place a secret is written outside the secret store, because the user asked for
 * exactly this file (Oracle's sample server reads it). Returns the fact to report.
 */
function writeDotenv(run: BootstrapRun, path: string, domain: string, app: OciApp, secret: string | undefined, warnings: string[]): string {
  const envSecret = secret ?? app.clientSecret;
  const host = new URL(domain).host;
  const change = planEnvFile(path, {
    IAM_DOMAIN: host,
    IAM_CLIENT_ID: app.clientId,
    IAM_CLIENT_SECRET: envSecret,
    IAM_GUID: host.split(".")[0],
    // The seed's token exchange uses the same app ("In most cases, you can use the same OAuth client").
    IAM_TOKENEXCHANGE_CLIENT_ID: app.clientId,
    IAM_TOKENEXCHANGE_CLIENT_SECRET: envSecret,
  });
  const applied = run.writeFiles([change])[0]!;
  warnings.push(`${change.path} holds the app's client secret (mode 0600) because --dotenv asked for it; keep it out of version control`);
  if (!envSecret) warnings.push(`the domain did not return the client secret: IAM_CLIENT_SECRET in ${change.path} was left as it was (--rotate-secret issues a new one)`);
  return `${change.path} (${applied.action}${applied.backup ? `; previous version kept at ${applied.backup}` : ""})`;
}

/** §4: the JWKS must answer without a token once client access is configured. */
async function publicJwks(ctx: Parameters<typeof oci.bootstrap>[0], domain: string): Promise<Check> {
  const url = `${domain}/admin/v1/SigningCert/jwk`;
  try {
    const res = await ctx.fetch(url, { headers: { accept: "application/json" }, redirect: "manual" });
    const text = await res.text();
    let keys = 0;
    try {
      const b = JSON.parse(text) as { keys?: unknown };
      keys = Array.isArray(b.keys) ? b.keys.length : 0;
    } catch {
      /* counted as no keys */
    }
    if (res.status === 200 && keys > 0) return { ok: true, what: "public JWKS", detail: `${url} answers without a token (${keys} key${keys > 1 ? "s" : ""})` };
    return { ok: false, what: "public JWKS", detail: `${url} answered HTTP ${res.status}${res.status === 200 ? " without keys" : ""} without a token`, fix: 'enable "Configure client access" in the domain settings' };
  } catch (e) {
    return { ok: false, what: "public JWKS", detail: `${url}: ${(e as Error).message}` };
  }
}
