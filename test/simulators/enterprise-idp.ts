import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, exportJWK, importJWK, jwtVerify, SignJWT, type JWK } from "jose";
import { pooledKeyPair } from "./common.js";

/**
 * Enterprise-managed authorization (ID-JAG) on both sides of the MCP client, for tests:
 *
 * - an enterprise IdP: the real oidc-provider for the single sign-on (authorization code + PKCE, ID
 *   tokens), with the RFC 8693 token exchange that issues Identity Assertion JWT Authorization Grants
 *   simulated as the spec text says — modelcontextprotocol/ext-auth specification/stable/
 *   enterprise-managed-authorization.mdx §4 (audience = the resource authorization server's issuer,
 *   resource = the MCP server), and draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3 (request),
 *   §4.3.3 (processing: the subject token is an ID token this IdP issued to the requesting client),
 *   §4.3.4 (response: issued_token_type id-jag, token_type N_A) and §3.1 (the ID-JAG: typ
 *   oauth-id-jag+jwt; iss, sub, aud, client_id, jti, exp, iat, resource, scope). Real IdPs (Okta's
 *   cross-app access) have no local release to run; an administrator's policy is `allow`.
 * - the MCP server's authorization server: the real oidc-provider, with the RFC 7523 JWT-bearer grant
 *   registered through its `registerGrantType` (oidc-provider 9 lib/provider.js) and validating the
 *   ID-JAG per the draft's §4.4.1 (signature by the trusted IdP, typ, aud = its issuer, client_id = the
 *   authenticated client, exp) and the spec's §5.1 (the access token is audience-restricted to the
 *   `resource` claim).
 */
export const ID_JAG = "urn:ietf:params:oauth:token-type:id-jag";
export const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token";
export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

export interface EnterpriseSetup {
  idp: { issuer: string; clientId: string; grants: Record<string, number>; exchanges: URLSearchParams[] };
  as: { issuer: string; clientId: string; clientSecret: string; grants: Record<string, number>; assertions: string[] };
  /** Which (audience, resource) pairs the IdP's administrator allows; default: any. */
  policy: { allow?: (audience: string, resource: string | undefined) => boolean };
  close(): Promise<void>;
}

type OidcCtx = {
  oidc: { params: Record<string, string | undefined>; client: { clientId: string }; provider: any; route?: string };
  body?: unknown;
};

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return (server.address() as AddressInfo).port;
}

function quietly<T>(f: () => Promise<T>): Promise<T> {
  const info = console.info;
  const warn = console.warn;
  console.info = console.warn = () => undefined; // oidc-provider's notices about dev settings
  return f().finally(() => ((console.info = info), (console.warn = warn)));
}

/** accessTokenTtl: seconds the MCP authorization server's access tokens live (default 600; short ones let a test see one expire). */
export async function startEnterprise(o: { mcpUrl: string; asClientSecret?: string; accessTokenTtl?: number }): Promise<EnterpriseSetup> {
  const { default: Provider, errors } = await import("oidc-provider");
  const idpServer = createServer();
  const asServer = createServer();
  const idpIssuer = `http://127.0.0.1:${await listen(idpServer)}`;
  const asIssuer = `http://127.0.0.1:${await listen(asServer)}`;
  const { privateKey, publicKey } = await pooledKeyPair("RS256");
  const signing: JWK = { ...(await exportJWK(privateKey)), kid: "idp-1", alg: "RS256", use: "sig" };
  const jagKey = await importJWK(signing, "RS256");
  const policy: EnterpriseSetup["policy"] = {};
  const setup = {
    idp: { issuer: idpIssuer, clientId: "mcp-client", grants: {} as Record<string, number>, exchanges: [] as URLSearchParams[] },
    as: { issuer: asIssuer, clientId: "mcp-client", clientSecret: o.asClientSecret ?? "as-secret", grants: {} as Record<string, number>, assertions: [] as string[] },
  };
  const count = (grants: Record<string, number>) => async (ctx: OidcCtx, next: () => Promise<void>) => {
    await next();
    const g = ctx.oidc?.route === "token" ? ctx.oidc.params?.grant_type : undefined;
    if (g) grants[g] = (grants[g] ?? 0) + 1;
  };

  // ---- the enterprise IdP ----
  const idp = await quietly(async () => new Provider(idpIssuer, {
    clients: [
      {
        client_id: setup.idp.clientId,
        application_type: "native",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
        response_types: ["code"],
        redirect_uris: ["http://127.0.0.1/callback"],
        scope: "openid offline_access profile email",
      },
    ],
    jwks: { keys: [signing] },
    scopes: ["openid", "offline_access", "profile", "email"],
    pkce: { required: () => true },
    cookies: { keys: [randomBytes(16).toString("hex")] },
    findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub, email: `${sub}@acme.example` }) }),
    features: { devInteractions: { enabled: true } },
    issueRefreshToken: async () => true,
    ttl: { IdToken: 3600, AccessToken: 3600, RefreshToken: 86400, Interaction: 600, Session: 3600, Grant: 86400 },
  } as never));
  idp.use(count(setup.idp.grants));
  // draft §4.3: the token exchange that turns this IdP's ID token into an ID-JAG for another domain's authorization server.
  idp.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx: OidcCtx) => {
      const p = ctx.oidc.params;
      setup.idp.exchanges.push(new URLSearchParams(Object.entries(p).filter((e): e is [string, string] => typeof e[1] === "string")));
      if (p.requested_token_type !== ID_JAG) throw new errors.InvalidRequest("requested_token_type must be urn:ietf:params:oauth:token-type:id-jag");
      if (p.subject_token_type !== ID_TOKEN_TYPE) throw new errors.InvalidRequest("subject_token_type must be urn:ietf:params:oauth:token-type:id_token");
      if (!p.audience) throw new errors.InvalidRequest("missing audience (the resource authorization server's issuer)");
      let sub: string;
      try {
        // §4.3.3: an ID token this IdP issued, to the client asking, still valid.
        const { payload } = await jwtVerify(p.subject_token ?? "", publicKey, { issuer: idpIssuer, audience: ctx.oidc.client.clientId });
        sub = String(payload.sub);
      } catch (e) {
        throw new errors.InvalidGrant(`subject_token is not a valid ID token issued to this client (${(e as Error).message})`);
      }
      if (policy.allow && !policy.allow(p.audience, p.resource)) throw new errors.InvalidTarget("the administrator's policy does not allow this client to access that resource");
      const now = Math.floor(Date.now() / 1000);
      const jag = await new SignJWT({ client_id: ctx.oidc.client.clientId, jti: randomUUID(), ...(p.resource && { resource: p.resource }), ...(p.scope && { scope: p.scope }), email: `${sub}@acme.example` })
        .setProtectedHeader({ alg: "RS256", kid: signing.kid!, typ: "oauth-id-jag+jwt" })
        .setIssuer(idpIssuer)
        .setSubject(sub)
        .setAudience(p.audience)
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(jagKey);
      ctx.body = { issued_token_type: ID_JAG, access_token: jag, token_type: "N_A", expires_in: 300, ...(p.scope && { scope: p.scope }) };
    },
    ["subject_token", "subject_token_type", "requested_token_type", "audience", "resource", "scope"],
  );
  idpServer.on("request", idp.callback());

  // ---- the MCP server's authorization server ----
  const idpKeys = createRemoteJWKSet(new URL(`${idpIssuer}/jwks`));
  const as = await quietly(async () => new Provider(asIssuer, {
    clients: [{ client_id: setup.as.clientId, client_secret: setup.as.clientSecret, grant_types: [JWT_BEARER], response_types: [], redirect_uris: [], scope: "mcp:read mcp:write" }],
    scopes: ["mcp:read", "mcp:write"],
    // ext-auth §6 / draft §7.2: the grant profile this server supports.
    discovery: { authorization_grant_profiles_supported: ["urn:ietf:params:oauth:grant-profile:id-jag"] },
    cookies: { keys: [randomBytes(16).toString("hex")] },
    features: {
      resourceIndicators: {
        enabled: true,
        defaultResource: () => o.mcpUrl,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({ scope: "mcp:read mcp:write", audience: resource, accessTokenTTL: o.accessTokenTtl ?? 600, accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } }),
      },
    },
  } as never));
  as.use(count(setup.as.grants));
  as.registerGrantType(
    JWT_BEARER,
    async (ctx: OidcCtx) => {
      const assertion = ctx.oidc.params.assertion ?? "";
      setup.as.assertions.push(assertion);
      let claims: Record<string, unknown>;
      try {
        // draft §4.4.1: signed by the trusted IdP, typed as an ID-JAG, for this server, for the authenticated client.
        const { payload } = await jwtVerify(assertion, idpKeys, { issuer: idpIssuer, audience: asIssuer, typ: "oauth-id-jag+jwt" });
        claims = payload;
      } catch (e) {
        throw new errors.InvalidGrant(`the ID-JAG is not valid here (${(e as Error).message})`);
      }
      if (claims.client_id !== ctx.oidc.client.clientId) throw new errors.InvalidGrant("the ID-JAG was issued for another client");
      const resource = typeof claims.resource === "string" ? claims.resource : o.mcpUrl;
      const provider = ctx.oidc.provider;
      const requested = new Set((ctx.oidc.params.scope ?? String(claims.scope ?? "")).split(" ").filter(Boolean));
      // ext-auth §7.2.1: the intersection of the requested scopes and the ID-JAG's.
      const granted = String(claims.scope ?? "").split(" ").filter((s) => requested.has(s)).join(" ");
      const token = new provider.AccessToken({
        accountId: String(claims.sub),
        client: ctx.oidc.client,
        gty: "jwt_bearer",
        scope: granted || undefined,
        resourceServer: new provider.ResourceServer(resource, { scope: "mcp:read mcp:write", audience: resource, accessTokenTTL: o.accessTokenTtl ?? 600, accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } }),
      });
      const value = await token.save();
      ctx.body = { access_token: value, token_type: "Bearer", expires_in: token.expiration, ...(granted && { scope: granted }) };
    },
    ["assertion", "scope", "resource"],
  );
  asServer.on("request", as.callback());

  return {
    ...setup,
    policy,
    async close() {
      for (const s of [idpServer, asServer]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}
