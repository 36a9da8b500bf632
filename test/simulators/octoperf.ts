/**
 * Test simulator of OctoPerf's MCP server and the OAuth identity provider bundled in its backend.
 *
 * Spec: ../shared/research/idp-apis.md §5 (its "simulator contract (minimal)") and seed 004
 * (../shared/seeds/004_abc435dc9aa5e3a8.txt, the self-hosted MCP server page). Implemented:
 *   - GET /mcp/public/AGENTS.md without authentication; any other /mcp/public/** is 404 (seed 004:
 *     "Unknown paths under /mcp/public/** return 404"; §5 "public unauthenticated files");
 *   - POST /mcp (Streamable HTTP, JSON answers): 401 with `WWW-Authenticate: Bearer resource_metadata=…`
 *     without a valid token (§5 contract); with one, `initialize` and `tools/list`;
 *   - protected-resource metadata (RFC 9728) naming the public origin as authorization server (§5);
 *   - authorization-server metadata whose `registration_endpoint` is {origin}/auth/connect/register (§5);
 *   - anonymous RFC 7591 registration there, 201 (§5 "DCR: anonymous");
 *   - authorization code with PKCE only (S256; §5 "PKCE-only authorization code"), a signed-in user
 *     approving at once; token endpoint with authorization_code and refresh_token (public clients);
 *   - RS256 JWTs whose `iss` and `aud` derive from the backend's public origin, validated by the MCP
 *     server against its own configured origin (seed 004: "They must resolve to the same public origin
 *     the backend mints tokens with, or every call returns 401"). `backendOrigin` reproduces the
 *     mismatch: the backend mints with another origin, and every /mcp call is 401 invalid_token.
 * UNVERIFIED and chosen here (§5: "Exact discovery paths/JSON … are not public"): Spring Authorization
 * Server's default paths mounted under /auth (/auth/oauth2/authorize, /auth/oauth2/token,
 * /auth/oauth2/jwks), metadata at the issuer's root well-known paths, the resource being {origin}/mcp,
 * `aud` = [origin], the 401 texts (Spring Security's "The iss claim is not valid" / "The aud claim is not valid").
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import { SignJWT, jwtVerify } from "jose";
import { parseBody, rsaKey, sendJson, serve, wellKnown } from "./common.js";

export interface OctoPerfOptions {
  /**
   * The origin the backend's IdP derives `iss`/`aud` from (its server.scheme/hostname/public.port).
   * Default: the simulator's own URL, which is also what the MCP server validates against. Another
   * value reproduces seed 004's "every call returns 401".
   */
  backendOrigin?: string;
  /** Seconds an access token lives (default 300). */
  accessTokenTtl?: number;
}

export interface OctoPerfClient {
  client_id: string;
  redirect_uris: string[];
  client_name?: string;
  grant_types: string[];
}

export interface OctoPerfSim {
  url: string;
  clients: Map<string, OctoPerfClient>;
  /** Method and path of every request, for assertions. */
  log: Array<{ method: string; path: string; auth?: string }>;
  /** The user who approves authorization requests. */
  user: string;
  /** Switches the backend's origin at run time (the seed's mismatch), or back with undefined. */
  setBackendOrigin(origin: string | undefined): void;
  close(): Promise<void>;
}

export const AGENTS_MD = "# OctoPerf agents\n\nUse the OctoPerf MCP server at /mcp to design and run load tests.\n";

export async function startOctoPerf(o: OctoPerfOptions = {}): Promise<OctoPerfSim> {
  const key = await rsaKey();
  const clients = new Map<string, OctoPerfClient>();
  const codes = new Map<string, { clientId: string; redirectUri: string; challenge: string; scope: string }>();
  const refresh = new Map<string, { clientId: string; scope: string }>();
  const log: OctoPerfSim["log"] = [];
  const user = "alice@octoperf.test";
  let backendOrigin = o.backendOrigin;
  let url = "";

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => sendJson(res, status, body, { "cache-control": "no-store", ...headers });
  const oauthError = (res: ServerResponse, status: number, error: string, description: string) => json(res, status, { error, error_description: description });
  const mintOrigin = () => backendOrigin ?? url;

  async function issue(clientId: string, scope: string) {
    const origin = mintOrigin();
    const now = Math.floor(Date.now() / 1000);
    const access = await new SignJWT({ scope, client_id: clientId })
      .setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" })
      .setIssuer(origin)
      .setAudience([origin])
      .setSubject(user)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + (o.accessTokenTtl ?? 300))
      .setJti(randomUUID())
      .sign(key.privateKey);
    const rt = randomBytes(32).toString("base64url");
    refresh.set(rt, { clientId, scope });
    return { access_token: access, token_type: "Bearer", expires_in: o.accessTokenTtl ?? 300, refresh_token: rt, scope };
  }

  /** The MCP server's resource-server check: signature, then iss and aud against its own configured origin. */
  async function bearer(header: string | undefined): Promise<{ ok: true } | { ok: false; challenge: string }> {
    const metadata = `resource_metadata="${url}${wellKnown(`${url}/mcp`).protectedResource}"`;
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
    if (!m) return { ok: false, challenge: `Bearer ${metadata}` };
    try {
      const { payload } = await jwtVerify(m[1]!, key.publicKey, { algorithms: ["RS256"] });
      const why = payload.iss !== url ? "The iss claim is not valid" : !(Array.isArray(payload.aud) ? payload.aud : [payload.aud]).includes(url) ? "The aud claim is not valid" : undefined;
      if (why) return { ok: false, challenge: `Bearer error="invalid_token", error_description="An error occurred while attempting to decode the Jwt: ${why}", ${metadata}` };
      return { ok: true };
    } catch (e) {
      return { ok: false, challenge: `Bearer error="invalid_token", error_description="${String((e as Error).message).replace(/"/g, "'")}", ${metadata}` };
    }
  }

  const metadata = () => ({
    issuer: url,
    authorization_endpoint: `${url}/auth/oauth2/authorize`,
    token_endpoint: `${url}/auth/oauth2/token`,
    jwks_uri: `${url}/auth/oauth2/jwks`,
    registration_endpoint: `${url}/auth/connect/register`,
    response_types_supported: ["code"],
    grant_types_supported: ["authorization_code", "refresh_token"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: ["none"],
    scopes_supported: ["openid", "profile"],
  });

  const served = await serve(async (req, res, raw) => {
    const u = new URL(req.url ?? "/", "http://127.0.0.1");
    const path = u.pathname;
    const method = req.method ?? "GET";
    log.push({ method, path, auth: req.headers.authorization?.split(" ")[0] });
    const known = wellKnown(url);

    // Seed 004: the only unauthenticated MCP paths; unknown ones are 404.
    if (path.startsWith("/mcp/public/")) {
      if (method === "GET" && path === "/mcp/public/AGENTS.md") {
        res.writeHead(200, { "content-type": "text/markdown; charset=utf-8" });
        return res.end(AGENTS_MD);
      }
      return json(res, 404, { error: "Not Found", path });
    }
    if (path === "/mcp") {
      const auth = await bearer(req.headers.authorization);
      if (!auth.ok) return json(res, 401, { error: "unauthorized" }, { "www-authenticate": auth.challenge });
      if (method !== "POST") return json(res, 405, { error: "Method Not Allowed" });
      const rpc = parseBody(raw, "application/json").body as { id?: unknown; method?: string } | undefined;
      if (rpc?.method === "initialize") return json(res, 200, { jsonrpc: "2.0", id: rpc.id, result: { protocolVersion: "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: "octoperf-mcp", version: "16.2.0" } } });
      if (rpc?.method === "tools/list") return json(res, 200, { jsonrpc: "2.0", id: rpc.id, result: { tools: [{ name: "list_projects", inputSchema: { type: "object" } }] } });
      return json(res, 200, { jsonrpc: "2.0", id: rpc?.id ?? null, error: { code: -32601, message: "Method not found" } });
    }
    if (method === "GET" && (path === wellKnown(`${url}/mcp`).protectedResource || path === "/.well-known/oauth-protected-resource")) {
      return json(res, 200, { resource: `${url}/mcp`, authorization_servers: [url], bearer_methods_supported: ["header"], scopes_supported: ["openid", "profile"] });
    }
    if (method === "GET" && (path === known.oauth || path === known.openid)) return json(res, 200, metadata());
    if (method === "GET" && path === "/auth/oauth2/jwks") return json(res, 200, { keys: [key.jwk] });

    // §5: anonymous RFC 7591 registration.
    if (path === "/auth/connect/register" && method === "POST") {
      const body = parseBody(raw, req.headers["content-type"]).body as Record<string, unknown> | undefined;
      if (!body || typeof body !== "object") return oauthError(res, 400, "invalid_client_metadata", "The request body is not a JSON object.");
      const uris = Array.isArray(body.redirect_uris) ? body.redirect_uris.map(String) : [];
      if (!uris.length || !uris.every((x) => URL.canParse(x) && !new URL(x).hash)) return oauthError(res, 400, "invalid_redirect_uri", "redirect_uris is required and must hold absolute URIs.");
      const grants = Array.isArray(body.grant_types) ? body.grant_types.map(String) : ["authorization_code"];
      if (grants.some((g) => g !== "authorization_code" && g !== "refresh_token")) return oauthError(res, 400, "invalid_client_metadata", "Only authorization_code and refresh_token are allowed.");
      const c: OctoPerfClient = { client_id: randomUUID(), redirect_uris: uris, client_name: typeof body.client_name === "string" ? body.client_name : undefined, grant_types: grants };
      clients.set(c.client_id, c);
      return json(res, 201, { ...c, client_id_issued_at: Math.floor(Date.now() / 1000), response_types: ["code"], token_endpoint_auth_method: "none" });
    }

    if (path === "/auth/oauth2/authorize" && method === "GET") {
      const q = u.searchParams;
      const c = clients.get(q.get("client_id") ?? "");
      const redirectUri = q.get("redirect_uri") ?? "";
      if (!c || !c.redirect_uris.includes(redirectUri)) return oauthError(res, 400, "invalid_request", "Unknown client or redirect_uri.");
      const back = (params: Record<string, string>) => {
        const to = new URL(redirectUri);
        for (const [k, v] of Object.entries(params)) to.searchParams.set(k, v);
        if (q.get("state")) to.searchParams.set("state", q.get("state")!);
        res.writeHead(302, { location: to.href });
        res.end();
      };
      if (q.get("response_type") !== "code") return back({ error: "unsupported_response_type" });
      // §5: PKCE only, S256.
      if (!q.get("code_challenge") || q.get("code_challenge_method") !== "S256") return back({ error: "invalid_request", error_description: "PKCE with S256 is required." });
      const code = randomBytes(24).toString("base64url");
      codes.set(code, { clientId: c.client_id, redirectUri, challenge: q.get("code_challenge")!, scope: q.get("scope") ?? "openid" });
      return back({ code });
    }

    if (path === "/auth/oauth2/token" && method === "POST") {
      const { form } = parseBody(raw, req.headers["content-type"]);
      if (!form) return oauthError(res, 400, "invalid_request", "The token request must be application/x-www-form-urlencoded.");
      const c = clients.get(form.client_id ?? "");
      if (!c) return oauthError(res, 401, "invalid_client", "Client authentication failed: client_id");
      if (form.grant_type === "authorization_code") {
        const entry = codes.get(form.code ?? "");
        codes.delete(form.code ?? "");
        if (!entry || entry.clientId !== c.client_id || entry.redirectUri !== form.redirect_uri) return oauthError(res, 400, "invalid_grant", "The authorization code is invalid.");
        if (createHash("sha256").update(form.code_verifier ?? "").digest("base64url") !== entry.challenge) return oauthError(res, 400, "invalid_grant", "PKCE verification failed.");
        return json(res, 200, await issue(c.client_id, entry.scope));
      }
      if (form.grant_type === "refresh_token") {
        const r = refresh.get(form.refresh_token ?? "");
        refresh.delete(form.refresh_token ?? "");
        if (!r || r.clientId !== c.client_id) return oauthError(res, 400, "invalid_grant", "The refresh token is invalid.");
        return json(res, 200, await issue(c.client_id, r.scope));
      }
      return oauthError(res, 400, "unsupported_grant_type", `Unsupported grant type: ${form.grant_type ?? ""}`);
    }
    return json(res, 404, { error: "Not Found", path });
  });
  url = served.url;
  return {
    url,
    clients,
    log,
    user,
    setBackendOrigin: (origin) => void (backendOrigin = origin),
    close: served.close,
  };
}
