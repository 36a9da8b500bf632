import type { Context } from "../context.js";
import { getToken } from "./tokens.js";
import { relativeTime, type Check, type CheckStatus } from "./checks.js";
import { audiences, decodeToken, scopesOf } from "./decode.js";
import type { Target } from "./target.js";
import { shellWord } from "./covers.js";
import { federationChecks } from "./federation.js";
import type { DoctorHints, Provider } from "./provider.js";
import type { InputSpec } from "./inputs.js";
import { fetchAuthServerMetadata, fetchResourceMetadata, probeMcp, probeServer, type AuthServerMetadata, type Probe, type ResourceMetadata } from "../oauth/discovery.js";
import { markControl } from "../io/sanitize.js";
import type { Fetch } from "../oauth/http.js";
import { describeEra, discoverRequest, modernHeaders, type EraProbe } from "../mcp/era.js";

/**
 * The doctor use case: a checklist of the path from an MCP URL to an accepted token, each check
 * independent (a failure skips only what depends on it), each failure with one concrete fix. The
 * findings map the seeds' troubleshooting sections (kcp, OCI, OpenProject, OctoPerf, OpenChoreo); each
 * IdP's own words for a fix come from its provider (Provider.doctorHints).
 */
export interface DoctorInput {
  mcpUrl?: string;
  /** The profile's target, when there is one (the token comes from it unless `token` is given). */
  target?: Target;
  /** A token given on stdin. */
  token?: string;
  /** The audience the server expects, when neither its challenge nor its metadata say. */
  audience?: string;
  /**
   * The profile at hand is for another server (src/core/covers.ts): it is not used, and its token is
   * not sent. `named`: the user asked for that profile (a failure), rather than it being the default.
   */
  elsewhere?: { profile: string; servers: string[]; named: boolean };
}

const SKEW_SEC = 60;
const ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag";

type Add = (id: string, status: CheckStatus, what: string, detail?: string, fix?: string) => void;

/** What one doctor run has learnt so far; each step reads it and adds to it. */
interface Run {
  ctx: Context;
  input: DoctorInput;
  add: Add;
  /** Fetches what the server's metadata names, no further in than the URLs the user gave (or saved). */
  derived: { fetch: Context["fetch"]; allowHttp: boolean };
  probe?: Probe & { era: EraProbe };
  /** The server answered without a token. */
  open: boolean;
  prm?: ResourceMetadata;
  as?: AuthServerMetadata;
  token?: string;
  /** The presets module, loaded when there is a profile to check against them. */
  presets?: typeof import("../presets/index.js");
}

export async function doctor(ctx: Context, input: DoctorInput): Promise<Check[]> {
  const checks: Check[] = [];
  const add: Add = (id, status, what, detail, fix) => checks.push({ id, ok: status !== "fail", status, what, ...(detail ? { detail } : {}), ...(fix ? { fix } : {}) });
  const userUrls = [input.mcpUrl, input.target?.issuer].filter((u): u is string => Boolean(u));
  const run: Run = { ctx, input, add, derived: { fetch: ctx.fetchFrom(userUrls), allowHttp: ctx.allowHttp }, open: false };

  profileCoversUrl(run);
  await checkServer(run);
  if (run.open && !input.token && !input.target) {
    await reportEra(run, run.probe?.era);
    return checks;
  }
  await checkAuthServer(run);
  checkGrants(run);
  await checkRedirect(run);
  await checkJwks(run);
  // Identity federation: the CI token and its claims (the IdP's trust is tested by the token below).
  if (input.target?.assertion) for (const c of await federationChecks(ctx, input.target)) checks.push(c);
  await checkPreset(run);
  await obtainToken(run);
  checkClaims(run);
  await reportEra(run, await checkMcp(run));
  return checks;
}

const msg = (e: unknown) => (e as Error).message;
const profileFlag = (r: Run) => (r.input.target?.profile ? ` --profile ${r.input.target.profile}` : "");

/**
 * Providers' words for a generic fix (Provider.doctorHints): the hint of the issuer's own IdP when
 * it is one of ours, every provider's when the issuer is unknown or someone else's.
 */
export function providerHints(providers: readonly Provider<readonly InputSpec[]>[], issuer: string | undefined, pick: (h: DoctorHints) => string | undefined): string[] {
  const mine = issuer ? providers.find((p) => p.matches(issuer)) : undefined;
  return (mine ? [mine] : providers).map((p) => (p.doctorHints ? pick(p.doctorHints) : undefined)).filter((h): h is string => Boolean(h));
}
const hints = (r: Run, pick: (h: DoctorHints) => string | undefined) => providerHints(r.ctx.plugins.providers, r.as?.issuer ?? r.input.target?.issuer, pick);
const inParens = (hs: string[]) => (hs.length ? ` (${hs.join("; ")})` : "");

/** What a 404 from the MCP URL usually means. */
const notFoundFix = (r: Run) => `check the endpoint path (e.g. /mcp), and that MCP is enabled on the server${inParens(hints(r, (h) => h.mcpDisabled))}`;

/** The profile at hand is for another server: say so, and that its token is not sent there. */
function profileCoversUrl(r: Run): void {
  const away = r.input.elsewhere;
  if (!away || !r.input.mcpUrl) return;
  const where = away.servers.length ? `is for ${away.servers.join(" and ")}` : "names no MCP server";
  r.add("profile.server", away.named ? "fail" : "skip", "profile covers the MCP URL", `profile "${away.profile}" ${where}, not ${r.input.mcpUrl}: its token is not sent there, so the server is checked without a token`, `set up a profile for this server: mcp-auth login ${shellWord(r.input.mcpUrl)}`);
}

/** 1. The MCP server without a token: reachable, how it asks for one, its protected-resource metadata. */
async function checkServer(r: Run): Promise<void> {
  const { add } = r;
  const url = r.input.mcpUrl;
  if (!url) {
    add("server.reachable", "skip", "MCP server", "no MCP URL (the profile has none)", `pass --url MCP_URL, or save it: mcp-auth profiles add NAME … --mcp-url MCP_URL --force`);
    return;
  }
  try {
    // The era probe (docs/mcp-2026-07-28.md): server/discover, then initialize; a 401 challenge or any
    // JSON-RPC answer is an MCP server.
    r.probe = await probeServer(r.ctx, url, undefined, { askLegacy: true });
    if (r.probe.era.era !== "unknown" || r.probe.era.refused) add("server.reachable", "pass", "MCP server reachable", `${url} answered ${r.probe.status} without a token (${r.probe.era.detail})`);
    else add("server.reachable", "fail", "MCP server reachable", `${url} ${r.probe.era.detail}`, r.probe.status === 404 ? notFoundFix(r) : "check the MCP URL: an MCP server answers 401, or a JSON-RPC answer when it needs no token");
  } catch (e) {
    add("server.reachable", "fail", "MCP server reachable", msg(e), "check the URL (scheme, host, port and the endpoint path such as /mcp) and that the server is running");
    return;
  }
  const probe = r.probe;
  const challenge = probe.challenge;
  if (probe.era.era !== "unknown") {
    r.open = true;
    add("server.auth", "pass", "MCP server needs no authentication", "it answered without a token: no token is needed, and any client on the network can use it");
    return;
  }
  if (probe.status === 401) {
    if (challenge) {
      const p = challenge.params;
      const said = ["resource_metadata", "scope", "audience", "error"].filter((k) => p[k]).map((k) => `${k}=${p[k]}`);
      add("server.auth", "pass", "MCP server asks for a Bearer token", said.length ? said.join(", ") : "a Bearer challenge with no parameters");
    } else {
      add("server.auth", "warn", "MCP server asks for a token", `401 without a Bearer WWW-Authenticate${probe.wwwAuthenticate ? ` (${probe.wwwAuthenticate})` : ""}: clients cannot discover how to authenticate`, "the server should answer 401 with WWW-Authenticate: Bearer resource_metadata=… (MCP authorization spec)");
    }
  } else {
    add("server.auth", "fail", "MCP server asks for a token", `without a token it answered ${probe.status}, not 401`, probe.status === 404 ? notFoundFix(r) : "check the MCP URL: an MCP server answers 401 (or an MCP answer when it needs no auth)");
  }
  try {
    const prm = (r.prm = await fetchResourceMetadata(r.derived, url, challenge?.params.resource_metadata));
    if (!prm) add("server.resource-metadata", "warn", "protected-resource metadata (RFC 9728)", "not published (tried the path-suffixed and the root well-known URLs)", "the server should publish /.well-known/oauth-protected-resource; until then the profile's issuer is used");
    else {
      const notes = [`at ${prm.url}`, `authorization_servers: ${prm.authorization_servers.join(", ") || "none"}`];
      if (prm.resource !== undefined && prm.resource !== url) notes.push(`its resource is ${prm.resource}, not ${url}`);
      add("server.resource-metadata", prm.authorization_servers.length && (prm.resource === undefined || prm.resource === url) ? "pass" : "warn", "protected-resource metadata (RFC 9728)", notes.join("; "), prm.authorization_servers.length ? "the metadata's resource should be the MCP URL itself (RFC 9728 §3.3)" : "the metadata should list authorization_servers");
    }
  } catch (e) {
    add("server.resource-metadata", "fail", "protected-resource metadata (RFC 9728)", msg(e), "fix the server's /.well-known/oauth-protected-resource document");
  }
}

/** 2. The authorization server the server names (else the profile's), and that the profile uses it. */
async function checkAuthServer(r: Run): Promise<void> {
  const { add } = r;
  const listed = r.prm?.authorization_servers[0];
  const issuer = listed ?? r.input.target?.issuer;
  if (!issuer) {
    add("as.metadata", "skip", "authorization server metadata", "no authorization server known (no metadata from the server and no profile)", "pass --profile P, or fix the server's protected-resource metadata");
    return;
  }
  try {
    const as = (r.as = await fetchAuthServerMetadata({ ...r.derived, plugins: r.ctx.plugins }, issuer));
    if (as.proxiedBy) add("as.metadata", "warn", "authorization server metadata", `${as.proxiedBy} serves ${as.issuer}'s metadata as its own (kubernetes-mcp-server does); ${as.issuer}'s own metadata was fetched and matches itself, so it is used`, "nothing to do; the server could list the real issuer in authorization_servers");
    else add("as.metadata", "pass", "authorization server metadata", `issuer ${as.issuer} (from ${as.url})`);
  } catch (e) {
    add("as.metadata", "fail", "authorization server metadata", msg(e), /mismatch/.test(msg(e)) ? `the metadata's issuer must be the URL it is served for: fix the IdP's public URL${inParens(hints(r, (h) => h.publicUrl))}` : `check that ${issuer} is the issuer and is reachable`);
    return;
  }
  const t = r.input.target;
  if (t && listed && t.issuer.replace(/\/$/, "") !== r.as.issuer.replace(/\/$/, "")) {
    add("as.issuer", "fail", "profile's issuer", `the profile uses ${t.issuer}, the server names ${r.as.issuer}`, `mcp-auth profiles add ${t.profile ?? "NAME"} … --issuer ${shellWord(r.as.issuer)} --force`);
  }
}

/** The profile's grant (and PKCE for a browser login) is one the authorization server offers. */
function checkGrants(r: Run): void {
  const t = r.input.target;
  if (!r.as || !t) return;
  const m = r.as.metadata;
  // An enterprise profile's grant at the MCP authorization server is the JWT-bearer one (ext-auth §5; docs/enterprise.md).
  const grantName = t.enterprise ? "urn:ietf:params:oauth:grant-type:jwt-bearer" : t.grant === "device_code" ? "urn:ietf:params:oauth:grant-type:device_code" : t.grant;
  // An absent list means RFC 8414's default, but many servers just omit it: only a list that
  // leaves the grant out is a failure.
  const grants = m.grant_types_supported;
  const notes: string[] = [];
  let status: CheckStatus = !grants || grants.includes(grantName) ? "pass" : "fail";
  if (!grants) notes.push("the server does not list its grant types");
  if (status === "fail") notes.push(`the server does not list the ${t.enterprise ? "JWT-bearer (RFC 7523) grant enterprise-managed authorization needs" : `${t.grant} grant`} (it lists ${grants!.join(", ")})`);
  if (t.grant === "authorization_code") {
    const pkce = m.code_challenge_methods_supported;
    if (!pkce?.includes("S256")) {
      status = "fail";
      notes.push(pkce ? `PKCE S256 is not supported (${pkce.join(", ")})` : "code_challenge_methods_supported is missing: the server does not say it supports PKCE");
    } else notes.push("PKCE S256 supported");
  }
  if (t.enterprise) {
    // ext-auth §6: a server may say so in authorization_grant_profiles_supported (draft §7.2).
    const profiles = (m as { authorization_grant_profiles_supported?: unknown }).authorization_grant_profiles_supported;
    if (Array.isArray(profiles)) {
      if (profiles.includes(ID_JAG_PROFILE)) notes.push("it advertises the ID-JAG grant profile");
      else if (status === "pass") (status = "warn"), notes.push(`its authorization_grant_profiles_supported lacks ${ID_JAG_PROFILE}`);
    }
  }
  r.add("as.grants", status, "grant and PKCE fit the profile", notes.join("; ") || `${t.grant} supported`, status === "fail" ? "enable the grant (and PKCE S256) for the client on the IdP, or use another profile grant" : undefined);
}

/** The redirect URI a browser login sends: IdPs refuse an unregistered one on their own error page. */
async function checkRedirect(r: Run): Promise<void> {
  const t = r.input.target;
  if (!r.as || t?.grant !== "authorization_code" || typeof r.as.metadata.authorization_endpoint !== "string" || !t.clientId) return;
  const c = await redirectCheck(r.derived.fetch, r.as.metadata.authorization_endpoint, t);
  if (c) r.add("as.redirect", c.status, "redirect URI accepted", c.detail, c.fix);
}

/** 3. The JWKS, which the MCP server must read to check tokens. */
async function checkJwks(r: Run): Promise<void> {
  const { add, as } = r;
  if (!as) return;
  const uri = as.metadata.jwks_uri;
  if (!uri) return add("as.jwks", "warn", "JWKS publicly readable", "the metadata has no jwks_uri", "servers that check JWTs offline need the issuer's jwks_uri");
  try {
    const res = await r.derived.fetch(uri, { headers: { Accept: "application/json" } });
    const body = (await res.json().catch(() => undefined)) as { keys?: unknown } | undefined;
    if (res.ok && Array.isArray(body?.keys)) add("as.jwks", "pass", "JWKS publicly readable", `${body!.keys.length} key(s) at ${uri}`);
    else add("as.jwks", "fail", "JWKS publicly readable", `${uri} answered ${res.status}${res.ok ? " without a keys list" : ""}`, res.status === 401 || res.status === 403 ? `make the signing keys public${inParens(hints(r, (h) => h.privateJwks))}` : "fix the IdP's jwks_uri");
  } catch (e) {
    add("as.jwks", "fail", "JWKS publicly readable", msg(e), "fix the IdP's jwks_uri");
  }
}

/** A profile at a big IdP: its quirks, checked against the profile (docs/presets.md). */
async function checkPreset(r: Run): Promise<void> {
  const t = r.input.target;
  if (!t) return;
  const presets = (r.presets = await import("../presets/index.js"));
  const hasRefresh = t.grant === "client_credentials" ? undefined : await r.ctx.tokens.refreshToken(t).then(Boolean, () => undefined);
  const found = presets.presetFindings(t, hasRefresh);
  for (const f of found?.findings ?? []) r.add(`preset.${found!.preset.id}`, f.status, `${found!.preset.title} quirks`, f.detail, f.fix);
}

/** 4. A token: the one on stdin, else the profile's (a federated profile asks the IdP afresh). */
async function obtainToken(r: Run): Promise<void> {
  const t = r.input.target;
  r.token = r.input.token;
  if (r.token) return r.add("token.obtain", "pass", "token obtainable", "read from standard input");
  if (!t) return r.add("token.obtain", "skip", "token obtainable", "no profile and no --token-stdin", "pass --profile P or pipe a token to --token-stdin");
  try {
    // A cached token says nothing about today's trust for a federated profile.
    r.token = (await getToken(r.ctx, t, { minTtl: 0, noCache: Boolean(t.assertion) })).access_token;
    r.add("token.obtain", "pass", "token obtainable", `for profile ${t.profile ?? ""}`.trim());
  } catch (e) {
    r.add("token.obtain", "fail", "token obtainable", msg(e), r.presets?.presetFix(t, e) ?? (e as { hint?: string }).hint ?? `mcp-auth login${profileFlag(r)}`);
  }
}

/** The token's claims against what the server expects: lifetime, clock, issuer, audience, scopes. */
function checkClaims(r: Run): void {
  const { add, as, input, token } = r;
  const challenge = r.probe?.challenge;
  // What the user says wins; then what the server says in its challenge, then its metadata.
  const expectedAud = input.audience ?? challenge?.params.audience ?? r.prm?.resource;
  const audSource = input.audience ? "--audience" : challenge?.params.audience ? "its challenge" : "its resource metadata";
  const decoded = token ? decodeToken(token) : undefined;
  if (decoded?.kind === "opaque") add("token.claims", "warn", "token claims", `the token is opaque (${decoded.why}): its expiry, issuer and audience cannot be checked here`);
  if (decoded?.kind !== "jwt") return;
  const c = decoded.claims;
  const now = Math.floor(r.ctx.now() / 1000);
  const exp = typeof c.exp === "number" ? c.exp : undefined;
  const nbf = typeof c.nbf === "number" ? c.nbf : undefined;
  const skew = r.probe?.date !== undefined ? now - r.probe.date : 0;
  if (exp !== undefined && exp <= now) add("token.expiry", "fail", "token lifetime", `expired ${relativeTime(exp - now)}`, `get a fresh one: mcp-auth token${profileFlag(r)} --force-refresh`);
  else if (nbf !== undefined && nbf > now + SKEW_SEC) add("token.expiry", "fail", "token lifetime", `not valid yet (nbf ${relativeTime(nbf - now)})`, "check this machine's clock and the IdP's (NTP)");
  else add("token.expiry", "pass", "token lifetime", exp !== undefined ? `expires ${relativeTime(exp - now)}` : "no exp claim");
  if (Math.abs(skew) > SKEW_SEC) add("token.clock", "warn", "clock", `this machine's clock is ${Math.abs(skew)} s ${skew > 0 ? "ahead of" : "behind"} the MCP server's`, "synchronise the clocks (NTP): skew makes fresh tokens look expired or not yet valid");
  const iss = typeof c.iss === "string" ? c.iss : undefined;
  if (as) {
    // The metadata's own issuer is what tokens carry when an IdP documents serving another one (OCI).
    if (iss === as.issuer || (as.quirk && iss === as.metadata.issuer)) add("token.issuer", "pass", "token issuer", iss!);
    else add("token.issuer", "fail", "token issuer", `the token's iss is ${iss ?? "missing"}, the server trusts ${as.issuer}`, `make them the same URL: the server's issuer setting${inParens(hints(r, (h) => h.serverIssuer))} must be the token's iss exactly, and the IdP must issue tokens under its public URL${inParens(hints(r, (h) => h.publicUrl))}`);
  }
  const auds = audiences(c);
  if (expectedAud) {
    const how = hints(r, (h) => h.audience?.(shellWord(expectedAud)));
    if (auds.includes(expectedAud)) add("token.audience", "pass", "token audience", `aud contains ${expectedAud} (expected by ${audSource})`);
    else add("token.audience", "fail", "token audience", `invalid audience: the token's aud is ${auds.length ? auds.join(", ") : "empty"}, the server expects ${expectedAud} (from ${audSource})`, `make the IdP put ${expectedAud} in aud${how.length ? `, ${how.join("; ")}` : ""}`);
  } else add("token.audience", "skip", "token audience", `the server says nothing about the audience it expects; aud is ${auds.join(", ") || "empty"}`, "pass --audience AUD to check it");
  const wanted = challenge?.params.scope?.split(" ").filter(Boolean) ?? [];
  if (!wanted.length) return;
  const missing = wanted.filter((s) => !scopesOf(c).includes(s));
  const where = inParens(hints(r, (h) => h.scope));
  if (missing.length) add("token.scope", "fail", "token scopes", `the server asks for ${wanted.join(" ")}; the token lacks ${missing.join(" ")}`, input.target?.profile ? `step up: mcp-auth login ${input.target.profile} --scope ${scopeWords(missing)}${where}` : `request ${missing.join(" ")} when getting the token${where}`);
  else add("token.scope", "pass", "token scopes", `has ${wanted.join(" ")}`);
}

/** 5. An MCP request with the token; returns the server's protocol era (docs/mcp-2026-07-28.md). */
async function checkMcp(r: Run): Promise<EraProbe | undefined> {
  const { add, probe, token } = r;
  const url = r.input.mcpUrl;
  const what = "MCP server answers with the token";
  const profile = r.input.target?.profile ?? undefined;
  if (!url || !probe || (probe.era.era === "unknown" && !probe.era.refused)) {
    add("mcp.initialize", "skip", what, "the server could not be probed");
    return undefined;
  }
  if (!token) {
    if (!r.open) add("mcp.initialize", "skip", what, "no token");
    return r.open ? probe.era : undefined;
  }
  try {
    const res = await probeServer(r.ctx, url, `Bearer ${token}`, { askLegacy: true });
    if (res.era.era === "unknown") {
      add("mcp.initialize", "fail", what, res.era.refused ? refusal(res) : `${res.era.detail}`, res.era.refused ? refusalFix(res, profile) : "check the server's logs");
      return undefined;
    }
    add("mcp.initialize", "pass", what, describeEra(res.era));
    await toolsList(r.ctx, url, token, res.era, add, profile);
    return res.era;
  } catch (e) {
    add("mcp.initialize", "fail", what, msg(e), "check that the server is up");
  }
}

/** The server's era, and the mismatch a modern-only server means for clients that send initialize. */
async function reportEra(r: Run, era: EraProbe | undefined): Promise<void> {
  const { add, input } = r;
  const versions = era?.supported?.length ? ` (lists ${era.supported.join(", ")})` : "";
  if (era?.era === "legacy") {
    add("mcp.era", "pass", "MCP protocol era", `speaks ${era.version ?? "a version before 2026-07-28"} (initialize handshake)${versions}; 2026-07-28 clients need \`mcp-auth proxy\`, which bridges the eras`);
    return;
  }
  if (era?.era !== "modern") return;
  if (!era.version) add("mcp.era", "fail", "MCP protocol era", `speaks only versions mcp-auth does not${versions}`, "upgrade mcp-auth, or ask the server to keep 2026-07-28");
  else add("mcp.era", "pass", "MCP protocol era", `speaks ${era.version}${versions}${era.dualEra ? ", and the initialize handshake" : ""}`);
  if (era.dualEra) return;
  // A modern-only server refuses initialize: every client configured to talk to it directly fails.
  const direct = await directEntries(r.ctx, input.mcpUrl!);
  const client = direct.length ? `${direct.join(", ")} ${direct.length > 1 ? "connect" : "connects"} to it directly and ${direct.length > 1 ? "send" : "sends"} initialize` : input.target?.profile ? `an MCP client wired to profile ${input.target.profile} without the proxy sends initialize` : "an MCP client that connects directly sends initialize";
  add("mcp.era.clients", "warn", "MCP clients of the older era", `this server speaks only ${era.version ?? era.supported?.join(", ") ?? "2026-07-28"}; ${client}, which it refuses`, "use `mcp-auth add-client … --strategy proxy`: the proxy bridges the eras");
}

/**
 * The client entries that reach this URL over HTTP themselves (not through `mcp-auth proxy`), e.g.
 * `cursor "kcp"`: they send initialize, which a 2026-07-28-only server refuses. Unreadable files count as none.
 */
async function directEntries(ctx: Context, mcpUrl: string): Promise<string[]> {
  const same = (u: string) => u.replace(/\/+$/, "").toLowerCase() === mcpUrl.replace(/\/+$/, "").toLowerCase();
  try {
    const { listClients } = await import("./clients.js");
    const rows = await listClients(ctx, { cwd: process.cwd(), platform: process.platform });
    return rows.flatMap((c) => c.files.flatMap((f) => f.servers.filter((s) => s.url && same(s.url)).map((s) => `${c.client} "${markControl(s.name).slice(0, 60)}"`))).slice(0, 5);
  } catch {
    return [];
  }
}

/** tools/list in the server's era: a modern request with `_meta` and headers, or a legacy session. */
async function toolsList(ctx: Context, url: string, token: string, era: EraProbe, add: (id: string, s: CheckStatus, what: string, detail?: string, fix?: string) => void, profile: string | undefined): Promise<void> {
  try {
    let r: Probe & { body: string };
    if (era.era === "modern") {
      if (!era.version) return add("mcp.tools", "skip", "MCP tools/list with the token", "no protocol version in common");
      const m = { ...discoverRequest(2, era.version), method: "tools/list" };
      r = await probeMcp(ctx, url, token, { body: JSON.stringify(m), headers: modernHeaders(m, era.version) });
    } else {
      const init = await probeMcp(ctx, url, token);
      const sessionId = init.sessionId;
      await probeMcp(ctx, url, token, { sessionId, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) });
      r = await probeMcp(ctx, url, token, { sessionId, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }) });
    }
    const n = (r.body.match(/"inputSchema"/g) ?? []).length;
    if (r.status >= 200 && r.status < 300 && /"tools"/.test(r.body)) add("mcp.tools", "pass", "MCP tools/list with the token", `${n} tool(s)`);
    else add("mcp.tools", "fail", "MCP tools/list with the token", refusal(r), refusalFix(r, profile));
  } catch (e) {
    add("mcp.tools", "fail", "MCP tools/list with the token", (e as Error).message, "check the server's logs");
  }
}

/** The server's refusal, its WWW-Authenticate interpreted. */
function refusal(r: Probe): string {
  const p = r.challenge?.params ?? {};
  const head = `the server answered ${r.status}`;
  if (p.error === "invalid_token") return `${head}: it refused the token (invalid_token${p.error_description ? `: ${p.error_description}` : ""})`;
  if (p.error === "insufficient_scope") return `${head}: the token lacks scope${p.scope ? ` (it needs ${p.scope})` : ""}`;
  return `${head}${r.wwwAuthenticate ? ` (WWW-Authenticate: ${r.wwwAuthenticate})` : ""}`;
}

function refusalFix(r: Probe, profile: string | undefined): string {
  const p = r.challenge?.params ?? {};
  if (p.error === "insufficient_scope") {
    // The spec's step-up: sign in again with the challenged scopes added to the profile's.
    return p.scope && profile ? `step up: mcp-auth login ${profile} --scope ${scopeWords(p.scope.split(" "))} (mcp-auth proxy does this by itself)` : `request the scopes it names${p.scope ? ` (${p.scope})` : ""}, then sign in again`;
  }
  if (r.status === 401) return "see the token checks above (audience, issuer, expiry); the server's logs name the exact reason";
  if (r.status === 403) return "the token is valid but not allowed: grant the user or client access on the server";
  return "check the server's logs";
}

function scopeWords(scopes: string[]): string {
  return scopes.filter(Boolean).map(shellWord).join(" ");
}

/**
 * Asks the authorization endpoint what it makes of the profile's redirect URI, as a browser would at
 * the start of a login, and stops at its first answer (nothing is signed in to). A redirect or a login
 * page means the URI was accepted; an error page with a refusal text an IdP documents
 * (docs/redirect-uris.md) names the fix.
 */
async function redirectCheck(fetch: Fetch, endpoint: string, t: Target): Promise<{ status: CheckStatus; detail: string; fix?: string } | undefined> {
  const { redirectMismatch } = await import("../oauth/redirect-uri.js");
  // Without a fixed URI, a login sends 127.0.0.1 on a random port: any port stands for it here.
  const sent = t.redirectUri ?? `http://127.0.0.1:${t.redirectPort ?? 49152}/callback`;
  const url = new URL(endpoint);
  const q = { client_id: t.clientId, redirect_uri: sent, response_type: "code", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256", state: "mcp-auth-doctor", ...(t.scopes?.length && { scope: t.scopes.join(" ") }) };
  for (const [k, v] of Object.entries(q)) url.searchParams.set(k, v);
  let res: Response;
  try {
    res = await fetch(url.href, { redirect: "manual", headers: { Accept: "text/html" } });
  } catch (e) {
    return { status: "warn", detail: `the authorization endpoint could not be asked: ${(e as Error).message}` };
  }
  const body = res.status >= 300 && res.status < 400 ? "" : (await res.text().catch(() => "")).slice(0, 65536);
  const idp = redirectMismatch(`${body} ${res.headers.get("location") ?? ""}`);
  const flag = t.profile ? `mcp-auth profiles set ${t.profile} --redirect-uri URI` : "--redirect-uri URI";
  if (idp) {
    const fix = t.redirectUri
      ? `register ${sent} for client ${t.clientId} at the IdP exactly as written, or pass the one it has: ${flag}`
      : `pass the redirect URI the IdP has registered for client ${t.clientId}: ${flag} (e.g. http://localhost:3118/callback), or register http://127.0.0.1/callback with any port (RFC 8252 §7.3)`;
    return { status: "fail", detail: `${idp} refused redirect_uri ${sent} (${res.status})`, fix };
  }
  if (res.status >= 400) return { status: "warn", detail: `the authorization endpoint answered ${res.status} to a login started with redirect_uri ${sent}`, fix: "try mcp-auth login; the page the browser shows names the reason" };
  return { status: "pass", detail: `${sent} (the authorization endpoint answered ${res.status})` };
}
