import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, createLocalJWKSet, decodeJwt, exportJWK, jwtVerify, type JWK, type JWTPayload } from "jose";
import { pooledKeyPair } from "../simulators/common.js";

/**
 * Identity federation, both sides, for tests:
 *
 * 1. A CI issuer that serves the GitHub Actions ID-token endpoint as GitHub documents it
 *    (docs.github.com → "About security hardening with OpenID Connect" / "Methods for requesting the
 *    OIDC token"): the runner gets ACTIONS_ID_TOKEN_REQUEST_URL (which already carries a query string)
 *    and ACTIONS_ID_TOKEN_REQUEST_TOKEN; `GET $URL&audience=AUD` with `Authorization: bearer $TOKEN`
 *    answers `{"count": …, "value": "<JWT>"}`. The JWT is RS256 with GitHub's claim set (sub
 *    "repo:OWNER/REPO:ref:refs/heads/main", repository, ref, sha, workflow, run_id, …); without an
 *    audience parameter its `aud` is the repository owner's URL. Discovery and JWKS at the usual paths.
 *
 * 2. An authorization server written from RFC 7523 and RFC 8693 that trusts that issuer for one
 *    subject (and, for client assertions, maps it to one client id):
 *    - client_credentials with `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
 *      (RFC 7523 §2.2), the JWT checked per §3: iss trusted, sub the trusted subject, aud naming this
 *      server (issuer or token endpoint), exp in the future, signature by the issuer's keys; errors per
 *      §3.2: `invalid_client` (401);
 *    - `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693 §2.1) with subject_token and
 *      subject_token_type `…:token-type:jwt` or `…:id_token`, the same checks; errors per §2.2.2:
 *      `invalid_request` (400). Optionally client authentication with a secret on the exchange (as OCI's
 *      identity propagation trust insists).
 *    Each refusal says why in error_description, as a real server's logs would.
 */
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const SUBJECT_TYPES = ["urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token"];

export const CI_SUBJECT = "repo:octo-org/octo-repo:ref:refs/heads/main";

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return (server.address() as AddressInfo).port;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers }).end(JSON.stringify(body));
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = "";
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

export interface CiIssuer {
  issuer: string;
  /** What the runner would export; spread into the CLI's environment. */
  env: { ACTIONS_ID_TOKEN_REQUEST_URL: string; ACTIONS_ID_TOKEN_REQUEST_TOKEN: string };
  /** The subject of the next tokens (a different repository or branch). */
  subject: string;
  /** Seconds from now the next tokens expire (negative: already expired). */
  lifetime: number;
  /** ID-token requests served, and every token handed out (to prove none was stored or printed). */
  requests: number;
  issued: string[];
  jwks: { keys: JWK[] };
  mint(aud: string): Promise<string>;
  close(): Promise<void>;
}

export async function startCiIssuer(): Promise<CiIssuer> {
  const server = createServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey, publicKey } = await pooledKeyPair("RS256");
  const kid = randomUUID();
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }] };
  const requestToken = randomBytes(24).toString("base64url");
  const ci: CiIssuer = {
    issuer,
    env: { ACTIONS_ID_TOKEN_REQUEST_URL: `${issuer}/_apis/distributedtask/idtoken?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken },
    subject: CI_SUBJECT,
    lifetime: 300,
    requests: 0,
    issued: [],
    jwks,
    async mint(aud) {
      const now = Math.floor(Date.now() / 1000);
      const exp = now + ci.lifetime;
      const token = await new SignJWT({
        sub: ci.subject,
        repository: "octo-org/octo-repo",
        repository_owner: "octo-org",
        ref: "refs/heads/main",
        sha: "0123456789abcdef0123456789abcdef01234567",
        workflow: "CI",
        event_name: "push",
        run_id: "42",
        job_workflow_ref: "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
      })
        .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
        .setIssuer(issuer)
        .setAudience(aud)
        .setJti(randomUUID())
        .setIssuedAt(Math.min(now, exp - 60))
        .setNotBefore(Math.min(now, exp - 60))
        .setExpirationTime(exp)
        .sign(privateKey);
      ci.issued.push(token);
      return token;
    },
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
  server.on("request", async (req, res) => {
    const url = new URL(req.url ?? "/", issuer);
    if (url.pathname === "/.well-known/openid-configuration") {
      return json(res, 200, { issuer, jwks_uri: `${issuer}/.well-known/jwks`, subject_types_supported: ["public", "pairwise"], response_types_supported: ["id_token"], id_token_signing_alg_values_supported: ["RS256"], scopes_supported: ["openid"], claims_supported: ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "repository_owner", "run_id", "sha", "workflow", "event_name", "job_workflow_ref"] });
    }
    if (url.pathname === "/.well-known/jwks") return json(res, 200, jwks);
    if (url.pathname === "/_apis/distributedtask/idtoken") {
      if (req.headers.authorization !== `bearer ${requestToken}` && req.headers.authorization !== `Bearer ${requestToken}`) return json(res, 401, { message: "Bad credentials" });
      ci.requests++;
      const aud = url.searchParams.get("audience") ?? "https://github.com/octo-org";
      return json(res, 200, { count: 1, value: await ci.mint(aud) });
    }
    json(res, 404, { message: "Not Found" });
  });
  return ci;
}

export interface FederatedAsOptions {
  /** The issuer trusted, with its public keys. */
  trust: { issuer: string; jwks: { keys: JWK[] }; subject: string };
  /** The client id the trusted subject is (client assertions). */
  clientId: string;
  /** Require this client secret (HTTP Basic) on token exchange, as OCI does. */
  exchangeClientSecret?: string;
}

export interface FederatedAs {
  issuer: string;
  /** Every token request: grant type, client assertion or subject token seen. */
  requests: Array<{ grant: string; assertion?: string; subjectToken?: string; subjectTokenType?: string; resource?: string }>;
  close(): Promise<void>;
}

export async function startFederatedAs(o: FederatedAsOptions): Promise<FederatedAs> {
  const server = createServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const tokenEndpoint = `${issuer}/token`;
  const keys = createLocalJWKSet(o.trust.jwks);
  const requests: FederatedAs["requests"] = [];

  /** RFC 7523 §3 checks, in order; the first failure's reason, or the claims. */
  async function check(jwt: string): Promise<{ ok: true; claims: JWTPayload } | { ok: false; why: string }> {
    let claims: JWTPayload;
    try {
      claims = decodeJwt(jwt);
    } catch {
      return { ok: false, why: "the assertion is not a JWT" };
    }
    if (claims.iss !== o.trust.issuer) return { ok: false, why: `issuer ${String(claims.iss)} is not trusted` };
    if (claims.sub !== o.trust.subject) return { ok: false, why: `subject ${String(claims.sub)} is not trusted (expected ${o.trust.subject})` };
    const aud = Array.isArray(claims.aud) ? claims.aud : claims.aud ? [claims.aud] : [];
    if (!aud.some((a) => a === issuer || a === tokenEndpoint)) return { ok: false, why: `audience ${JSON.stringify(claims.aud)} does not name this authorization server (${issuer})` };
    if (typeof claims.exp !== "number" || claims.exp <= Math.floor(Date.now() / 1000)) return { ok: false, why: "the assertion has expired" };
    try {
      await jwtVerify(jwt, keys, { issuer: o.trust.issuer });
    } catch (e) {
      return { ok: false, why: `signature check failed (${(e as Error).message})` };
    }
    return { ok: true, claims };
  }

  const issue = (res: ServerResponse, exchange: boolean) =>
    json(res, 200, { access_token: randomBytes(32).toString("base64url"), token_type: "Bearer", expires_in: 300, ...(exchange && { issued_token_type: "urn:ietf:params:oauth:token-type:access_token" }) });

  server.on("request", async (req, res) => {
    const url = new URL(req.url ?? "/", issuer);
    if (url.pathname === "/.well-known/oauth-authorization-server" || url.pathname === "/.well-known/openid-configuration") {
      if (url.pathname.endsWith("openid-configuration")) return json(res, 404, { error: "not_found" });
      return json(res, 200, {
        issuer,
        token_endpoint: tokenEndpoint,
        grant_types_supported: ["client_credentials", TOKEN_EXCHANGE],
        token_endpoint_auth_methods_supported: ["private_key_jwt", "client_secret_basic", "none"],
      });
    }
    if (url.pathname !== "/token" || req.method !== "POST") return json(res, 404, { error: "not_found" });
    const f = await readForm(req);
    const grant = f.get("grant_type") ?? "";
    if (grant === "client_credentials") {
      const assertion = f.get("client_assertion") ?? undefined;
      requests.push({ grant, assertion, resource: f.get("resource") ?? undefined });
      if (f.get("client_assertion_type") !== JWT_BEARER || !assertion) return json(res, 401, { error: "invalid_client", error_description: "client authentication by a jwt-bearer client assertion is required" });
      const r = await check(assertion);
      if (!r.ok) return json(res, 401, { error: "invalid_client", error_description: r.why });
      const cid = f.get("client_id");
      if (cid !== null && cid !== o.clientId) return json(res, 401, { error: "invalid_client", error_description: `client_id ${cid} is not the client the trusted subject maps to` });
      return issue(res, false);
    }
    if (grant === TOKEN_EXCHANGE) {
      const subjectToken = f.get("subject_token") ?? undefined;
      const subjectTokenType = f.get("subject_token_type") ?? undefined;
      requests.push({ grant, subjectToken, subjectTokenType, resource: f.get("resource") ?? undefined });
      if (o.exchangeClientSecret !== undefined) {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined and base64-encoded.
        const raw = /^Basic (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
        const [id, secret] = raw ? Buffer.from(raw, "base64").toString("utf8").split(":").map((x) => decodeURIComponent(x.replace(/\+/g, " "))) : [];
        if (id !== o.clientId || secret !== o.exchangeClientSecret) return json(res, 401, { error: "invalid_client", error_description: "client authentication failed" }, { "www-authenticate": 'Basic realm="token"' });
      }
      if (!subjectToken || !subjectTokenType) return json(res, 400, { error: "invalid_request", error_description: "subject_token and subject_token_type are required" });
      if (!SUBJECT_TYPES.includes(subjectTokenType)) return json(res, 400, { error: "invalid_request", error_description: `unsupported subject_token_type ${subjectTokenType}` });
      const r = await check(subjectToken);
      if (!r.ok) return json(res, 400, { error: "invalid_request", error_description: r.why });
      return issue(res, true);
    }
    json(res, 400, { error: "unsupported_grant_type", error_description: `grant_type ${grant} is not supported` });
  });
  return { issuer, requests, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}
