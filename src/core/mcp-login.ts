import { createServer } from "node:net";
import type { Context } from "../context.js";
import { AuthError, McpAuthError, NetworkError, UsageError } from "../errors.js";
import type { ServerMetadata } from "../oauth/client.js";
import { fetchAuthServerMetadata, fetchResourceMetadata, probeServer, type AuthServerMetadata, type Probe, type ResourceMetadata } from "../oauth/discovery.js";
import { checkClientMetadataUrl, registerClient } from "../oauth/register.js";
import { Registrations, registrationSecretAccount, type RegistrationRecord } from "../store/registrations.js";
import { profileOf, type Grant, type Profile, type ProfileData } from "../profile.js";
import { covers } from "./covers.js";
import { checkMcpUrl } from "./mcp.js";
import { checkProfileName, saveProfile } from "./profiles.js";
import { login, type LoginResult } from "./session.js";
import type { LoginOptions } from "./login.js";

/**
 * MCP-native setup: from nothing but an MCP server's URL to a saved profile, as a spec-complete MCP
 * client does it (authorization spec 2025-11-25 and the 2026-07-28 revision's additions;
 * docs/mcp-authorization.md): probe → RFC 9728 protected-resource metadata → RFC 8414 /
 * OIDC metadata (issuer checked) → client registration in the spec's priority → PKCE S256 with
 * `resource`. The profile then behaves like any other: `token` refreshes, `login` signs in again.
 */
export interface McpSetupInput {
  mcpUrl: string;
  /** Profile name; default: the server's host. */
  name?: string;
  /** Skip authorization-server discovery and use this issuer. */
  issuer?: string;
  clientId?: string;
  clientSecret?: string;
  /** `--client-secret-cmd`: `clientSecret` is what it printed; the profile keeps the command instead (src/core/secret-command.ts). */
  clientSecretCommand?: string[];
  /** Default authorization_code; client_credentials needs a given client and secret. */
  grant?: Grant;
  clientMetadataUrl?: string;
  /** Scopes to request instead of the challenged / advertised ones. */
  scopes?: string[];
  /** Do not send RFC 8707 `resource` (for servers that reject it). */
  noResource?: boolean;
  allowMissingPkceMetadata?: boolean;
  /** Register for the device-code grant too. */
  device?: boolean;
  redirectPort?: number;
  /** Extra authorization-request parameters (`--authorize-param`), stored in the profile. */
  authorizeParams?: Record<string, string>;
  /** An exact loopback redirect URI (`--redirect-uri`): registered as it is, or the given client's. */
  redirectUri?: string;
  /** Hand out the ID token (the openid scope is added). */
  useIdToken?: boolean;
  /** Enterprise-managed authorization through this IdP profile (needs a client registered at the MCP authorization server). */
  enterprise?: string;
  makeDefault?: boolean;
  /** Replace a profile of that name that points elsewhere. */
  force?: boolean;
  /** Asks a person for a client id when the server offers no registration; absent = nobody to ask. */
  askClientId?: (issuer: string) => Promise<string | undefined>;
}

export interface McpDiscovery {
  /** The server's canonical URI (RFC 8707 / spec "Canonical Server URI"). */
  mcpUrl: string;
  probe: Probe;
  resourceMetadata?: ResourceMetadata;
  as: AuthServerMetadata;
  scopes: string[];
  scopeSource: "--scope" | "the server's challenge" | "its resource metadata" | "none";
  resource?: string;
  /** Things worth knowing that did not stop the setup. */
  notes: string[];
}

export type RegistrationKind = "pre-registered" | "cimd" | "dcr" | "reused" | "entered";

export type McpSetupResult =
  | { kind: "open"; mcpUrl: string; probe: Probe }
  | { kind: "profile"; profile: Profile; discovery?: McpDiscovery; registration: RegistrationKind; reusedProfile: boolean };

/** The canonical form of an MCP server URL: lower-case scheme and host, no fragment, no trailing slash. */
export function canonicalMcpUrl(ctx: Context, raw: string): string {
  const u = checkMcpUrl(ctx, raw);
  const path = u.pathname === "/" ? "" : u.pathname.replace(/\/+$/, "");
  return `${u.protocol}//${u.host}${path}${u.search}`;
}

/** A profile name for a server: its host (with the port, if any), in the characters names allow. */
export function profileNameFor(mcpUrl: string): string {
  return new URL(mcpUrl).host.replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[._-]+/, "").slice(0, 64) || "mcp";
}

/**
 * Discovery without side effects. Undefined `as` never: a server that needs no token is returned as
 * `{ open: true }`; anything that prevents a login is an error naming it.
 */
/**
 * The fetch for discovery: everything the server (and the authorization server it names) sends
 * leads no further into the user's network than the MCP URL and any --issuer the user gave.
 */
function discoveryEnv(ctx: Context, mcpUrl: string, issuer: string | undefined): { fetch: Context["fetch"]; allowHttp: boolean } {
  return { fetch: ctx.fetchFrom(issuer ? [mcpUrl, issuer] : [mcpUrl]), allowHttp: ctx.allowHttp };
}

export async function discoverMcp(ctx: Context, rawUrl: string, o: Pick<McpSetupInput, "issuer" | "scopes" | "noResource" | "allowMissingPkceMetadata" | "grant"> = {}): Promise<{ open: true; mcpUrl: string; probe: Probe } | ({ open: false } & McpDiscovery)> {
  const mcpUrl = canonicalMcpUrl(ctx, rawUrl);
  const env = discoveryEnv(ctx, mcpUrl, o.issuer);
  const notes: string[] = [];
  // The era probe (docs/mcp-2026-07-28.md): a 401/403 challenge asks for sign-in; any MCP answer
  // without one (a result or a JSON-RPC error, of either era) is a server that needs no token.
  const probe = await probeServer(env, mcpUrl);
  if (!probe.era.refused) {
    if (probe.era.era !== "unknown") return { open: true, mcpUrl, probe };
    throw new NetworkError(`${mcpUrl} answered ${probe.status} to MCP's server/discover and initialize, neither with a JSON-RPC answer nor 401: it does not look like an MCP endpoint`, {
      hint: probe.status === 404 ? "check the endpoint path (often /mcp), and that MCP is enabled on the server" : "check the URL",
    });
  }
  const challenge = probe.challenge?.params ?? {};
  if (!probe.challenge) notes.push(`the server's 401 has no Bearer WWW-Authenticate challenge${probe.wwwAuthenticate ? ` (${probe.wwwAuthenticate})` : ""}`);

  let prm: ResourceMetadata | undefined;
  let issuer = o.issuer;
  if (!issuer) {
    prm = await fetchResourceMetadata(env, mcpUrl, challenge.resource_metadata);
    if (!prm) {
      throw new NetworkError(`${mcpUrl} publishes no protected-resource metadata (RFC 9728), so its authorization server is unknown`, {
        hint: "pass --issuer URL (the authorization server the server's documentation names)",
      });
    }
    // RFC 9728 §3.3 / the SDK's checkResourceAllowed: the metadata must be about this server.
    if (prm.resource && !covers(prm.resource, mcpUrl)) {
      throw new NetworkError(`the protected-resource metadata at ${prm.url} is for ${prm.resource}, not ${mcpUrl} (RFC 9728 §3.3); refusing it`);
    }
    if (!prm.authorization_servers.length) throw new NetworkError(`the protected-resource metadata at ${prm.url} lists no authorization_servers`, { hint: "pass --issuer URL" });
    issuer = prm.authorization_servers[0]!;
    if (prm.authorization_servers.length > 1) notes.push(`the server lists ${prm.authorization_servers.length} authorization servers; using the first, ${issuer} (--issuer picks another)`);
  }
  const as = await fetchAuthServerMetadata({ ...env, plugins: ctx.plugins }, issuer);
  if (as.proxiedBy) notes.push(`${as.proxiedBy} serves the metadata of ${as.issuer} (as kubernetes-mcp-server does); ${as.issuer}'s own metadata confirmed it, so ${as.issuer} is used`);
  const person = (o.grant ?? "authorization_code") === "authorization_code";
  if (person) checkPkce(as.metadata, o.allowMissingPkceMetadata, notes);
  if (person && !(as.metadata.response_types_supported ?? ["code"]).includes("code")) {
    throw new NetworkError(`the authorization server ${as.issuer} does not support the authorization code flow (response_types_supported lacks "code")`);
  }

  // Scope selection strategy (spec 2025-11-25): the challenge, else scopes_supported, else none.
  let scopes: string[] = [];
  let scopeSource: McpDiscovery["scopeSource"] = "none";
  if (o.scopes?.length) [scopes, scopeSource] = [o.scopes, "--scope"];
  else if (challenge.scope) [scopes, scopeSource] = [challenge.scope.split(/\s+/).filter(Boolean), "the server's challenge"];
  else if (prm?.scopes_supported?.length) [scopes, scopeSource] = [prm.scopes_supported, "its resource metadata"];

  const resource = o.noResource ? undefined : (prm?.resource ?? mcpUrl);
  return { open: false, mcpUrl, probe, ...(prm ? { resourceMetadata: prm } : {}), as, scopes, scopeSource, ...(resource ? { resource } : {}), notes };
}

/** "MCP clients MUST verify PKCE support … If code_challenge_methods_supported is absent … MUST refuse to proceed." */
function checkPkce(m: ServerMetadata, allowMissing: boolean | undefined, notes: string[]): void {
  const methods = m.code_challenge_methods_supported;
  if (Array.isArray(methods) && methods.includes("S256")) return;
  if (Array.isArray(methods)) {
    throw new NetworkError(`the authorization server ${String(m.issuer)} does not support PKCE with S256 (code_challenge_methods_supported: ${methods.join(", ") || "none"}); refusing to log in without it`);
  }
  if (!allowMissing) {
    throw new NetworkError(`the authorization server ${String(m.issuer)} does not advertise PKCE (no code_challenge_methods_supported), and the MCP authorization spec says to refuse it`, {
      hint: "if you know it supports S256 anyway, pass --allow-missing-pkce-metadata",
    });
  }
  notes.push("the authorization server does not advertise PKCE; proceeding with S256 because of --allow-missing-pkce-metadata");
}

/** A free loopback port for the redirect a registration names (servers compare it exactly). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

interface ClientChoice {
  clientId: string;
  clientSecret?: string;
  authMethod?: ProfileData["tokenEndpointAuthMethod"];
  redirectPort?: number;
  redirectUri?: string;
  kind: RegistrationKind;
}

/** Client registration in the spec's priority: given → CIMD → reused/new DCR → asked. */
async function chooseClient(ctx: Context, d: McpDiscovery, input: McpSetupInput, opts: { reregister?: boolean } = {}): Promise<ClientChoice> {
  if (input.clientId) {
    return { clientId: input.clientId, ...(input.clientSecret ? { clientSecret: input.clientSecret } : {}), ...redirectOf(input), kind: "pre-registered" };
  }
  const m = d.as.metadata as ServerMetadata & { client_id_metadata_document_supported?: unknown };
  if (input.clientMetadataUrl) {
    const url = checkClientMetadataUrl(input.clientMetadataUrl);
    if (m.client_id_metadata_document_supported === true) return { clientId: url, ...redirectOf(input), kind: "cimd" };
    d.notes.push(`the authorization server does not support Client ID Metadata Documents; --client-metadata-url ignored`);
  }
  const regs = new Registrations(ctx.paths.dir);
  const issuer = d.as.issuer;
  const known = regs.get(issuer);
  // A client registered for another redirect URI cannot take this one.
  if (known && !opts.reregister && (!input.redirectUri || known.redirect_uri === input.redirectUri)) {
    const secret = known.secret_store ? ((await (await ctx.secretsOf(known.secret_store)).get(registrationSecretAccount(issuer))) ?? undefined) : undefined;
    if (!known.secret_store || secret) {
      return { clientId: known.client_id, ...(secret ? { clientSecret: secret } : {}), authMethod: known.token_endpoint_auth_method, ...(input.redirectUri ? { redirectUri: input.redirectUri } : { redirectPort: portOf(known.redirect_uri) }), kind: "reused" };
    }
  }
  if (typeof m.registration_endpoint === "string") {
    const port = input.redirectPort ?? (await freePort());
    const reg = await registerClient(discoveryEnv(ctx, d.mcpUrl, input.issuer), m, { redirectUri: input.redirectUri ?? `http://127.0.0.1:${port}/callback`, scope: d.scopes.join(" ") || undefined, device: input.device });
    const record: RegistrationRecord = { client_id: reg.client_id, redirect_uri: reg.redirect_uri, token_endpoint_auth_method: reg.token_endpoint_auth_method, registered_at: Math.floor(ctx.now() / 1000) };
    if (reg.client_secret) {
      const store = await ctx.secrets();
      await store.set(registrationSecretAccount(issuer), reg.client_secret);
      record.secret_store = store.kind;
    }
    await regs.put(issuer, record);
    return { clientId: reg.client_id, ...(reg.client_secret ? { clientSecret: reg.client_secret } : {}), authMethod: reg.token_endpoint_auth_method, ...(input.redirectUri ? { redirectUri: input.redirectUri } : { redirectPort: port }), kind: "dcr" };
  }
  const asked = input.askClientId ? await input.askClientId(issuer) : undefined;
  if (asked) return { clientId: asked, ...redirectOf(input), kind: "entered" };
  throw new UsageError(`the authorization server ${issuer} offers no way to register a client (no registration_endpoint${input.clientMetadataUrl ? "" : ", and no --client-metadata-url"})`, {
    hint: "ask its admin for a client id for a native app with redirect http://127.0.0.1/callback, then pass --client-id ID",
  });
}

function redirectOf(input: McpSetupInput): Pick<ClientChoice, "redirectPort" | "redirectUri"> {
  return input.redirectUri ? { redirectUri: input.redirectUri } : input.redirectPort ? { redirectPort: input.redirectPort } : {};
}

function portOf(redirectUri: string): number | undefined {
  const p = Number(new URL(redirectUri).port);
  return p > 0 ? p : undefined;
}

export type McpPlan =
  | { kind: "open"; mcpUrl: string; probe: Probe }
  | { kind: "plan"; data: ProfileData; clientSecret?: string; discovery: McpDiscovery; registration: RegistrationKind };

/**
 * Discovery and client registration for a server, as profile data not saved yet (a bootstrap
 * provider returns it; core saves it). Registering is the one side effect: a dynamically registered
 * client is recorded per authorization server, to be reused.
 */
export async function planMcpProfile(ctx: Context, input: McpSetupInput, opts: { reregister?: boolean } = {}): Promise<McpPlan> {
  const mcpUrl = canonicalMcpUrl(ctx, input.mcpUrl);
  const grant = input.grant ?? "authorization_code";
  if (input.enterprise && !input.clientId) throw new UsageError("--enterprise needs --client-id: the client the MCP server's authorization server knows (and --client-secret-* if it has a secret)");
  if (grant === "client_credentials" && !input.enterprise && !(input.clientId && input.clientSecret)) {
    throw new UsageError("client credentials need a client registered by the server's admin", { hint: "pass --client-id ID and --client-secret-stdin (or --client-secret-env VAR)" });
  }
  const d = await discoverMcp(ctx, mcpUrl, input);
  if (d.open) return { kind: "open", mcpUrl, probe: d.probe };
  const client = await chooseClient(ctx, d, input, opts);
  const data: ProfileData = {
    provider: "oidc",
    issuer: d.as.issuer,
    clientId: client.clientId,
    grant,
    ...(d.scopes.length || input.useIdToken ? { scopes: input.useIdToken && !d.scopes.includes("openid") ? ["openid", ...d.scopes] : d.scopes } : {}),
    ...(input.useIdToken && { useIdToken: true }),
    ...(input.enterprise && { enterprise: { idp: input.enterprise } }),
    ...(d.resource ? { resource: d.resource } : {}),
    mcpUrl,
    ...(client.redirectPort ? { redirectPort: client.redirectPort } : {}),
    ...(input.authorizeParams && Object.keys(input.authorizeParams).length ? { authorizeParams: input.authorizeParams } : {}),
    ...(client.redirectUri ? { redirectUri: client.redirectUri } : {}),
    ...(client.authMethod && client.authMethod !== "none" ? { tokenEndpointAuthMethod: client.authMethod } : client.clientSecret ? {} : { tokenEndpointAuthMethod: "none" }),
    extra: {
      discovered: true,
      registration: client.kind === "reused" ? "dcr" : client.kind,
      ...(d.resourceMetadata ? { resourceMetadata: d.resourceMetadata.url } : {}),
      ...(d.as.proxiedBy ? { metadataProxiedBy: d.as.proxiedBy } : {}),
      ...(input.noResource ? { noResource: true } : {}),
    },
  };
  return { kind: "plan", data, ...(client.clientSecret ? { clientSecret: client.clientSecret } : {}), discovery: d, registration: client.kind };
}

/** Discovers the server and saves a profile for it (no login). */
export async function setupMcpProfile(ctx: Context, input: McpSetupInput, opts: { reregister?: boolean } = {}): Promise<McpSetupResult> {
  const mcpUrl = canonicalMcpUrl(ctx, input.mcpUrl);
  const name = input.name ?? profileNameFor(mcpUrl);
  checkProfileName(name);
  const existing = profileOf(ctx.config(), name);
  if (existing && !input.force && !opts.reregister) {
    if (existing.mcpUrl !== mcpUrl) {
      throw new UsageError(`profile "${name}" already exists for ${existing.mcpUrl ?? existing.issuer}, not ${mcpUrl}`, { hint: "pass --profile NAME to save this server under another name (or --force to replace it)" });
    }
    return { kind: "profile", profile: { name, ...existing }, registration: "reused", reusedProfile: true };
  }
  const plan = await planMcpProfile(ctx, input, opts);
  if (plan.kind === "open") return plan;
  const byCommand = Boolean(input.clientSecretCommand && plan.clientSecret);
  const data = byCommand ? { ...plan.data, clientSecretCommand: input.clientSecretCommand } : plan.data;
  const saved = await saveProfile(ctx, { name, data, clientSecret: byCommand ? undefined : plan.clientSecret, force: true, makeDefault: input.makeDefault });
  return { kind: "profile", profile: { name, ...saved }, discovery: plan.discovery, registration: plan.registration, reusedProfile: false };
}

/**
 * `mcp-auth login <mcp-url>`: set up (or reuse) the server's profile, then sign in. A dynamically
 * registered client the server has forgotten (`invalid_client`) is registered again, once.
 */
export async function mcpLogin(ctx: Context, input: McpSetupInput, o: LoginOptions): Promise<{ setup: McpSetupResult; login?: LoginResult }> {
  const setup = await setupMcpProfile(ctx, input);
  if (setup.kind === "open") return { setup };
  for (const note of setup.discovery?.notes ?? []) ctx.info(`note: ${note}`);
  try {
    return { setup, login: await login(ctx, setup.profile, o) };
  } catch (e) {
    const forgotten = e instanceof AuthError && (e.code === "invalid_client" || e.code === "unauthorized_client");
    if (!forgotten || setup.profile.extra?.registration !== "dcr" || input.clientId) throw e;
    ctx.info(`The authorization server no longer knows client ${setup.profile.clientId} (${(e as McpAuthError).message}); registering again.`);
    await new Registrations(ctx.paths.dir).forget(setup.profile.issuer, await ctx.secrets());
    const again = await setupMcpProfile(ctx, { ...input, name: setup.profile.name, force: true }, { reregister: true });
    if (again.kind === "open") return { setup: again };
    return { setup: again, login: await login(ctx, again.profile, o) };
  }
}
