/**
 * The authorization-server half the hosted-IdP simulators share (entra, google, okta, auth0, github):
 * authorization endpoint with PKCE S256, token endpoint (authorization_code, refresh_token, device_code,
 * client_credentials), RFC 8628 device authorization, and a log of every request. What each vendor
 * documents — its paths, the parameters it refuses, its error texts and answer shapes — is a `Vendor`
 * in the vendor's own file, whose header names the documentation it follows.
 */
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { SignJWT } from "jose";
import { basicCredentials, parseBody, rsaKey, sendJson, serve, type RsaKey } from "./common.js";

export interface Seen {
  method: string;
  path: string;
  query: Record<string, string>;
  form: Record<string, string>;
  accept?: string;
}

/** An OAuth error as the vendor states it. */
export interface VendorError {
  error: string;
  error_description?: string;
}

export interface Grant {
  clientId: string;
  scope: string;
  /** The authorization request's parameters (audience, access_type…). */
  params: Record<string, string>;
}

export interface Vendor {
  /** The issuer for this simulator's base URL (no discovery document when `metadata` is absent). */
  issuer(base: string): string;
  paths: { authorize: string; token: string; device?: string; metadata?: string; jwks?: string };
  metadata?(base: string): Record<string, unknown>;
  /** Refuses an authorization request (then the browser is sent back with the error), or accepts it. */
  authorize?(q: Record<string, string>): VendorError | undefined;
  /** The client must authenticate at the token endpoint (Google's installed apps, GitHub's web flow). */
  secretRequired?(form: Record<string, string>): boolean;
  /** The access token (and extras) for a grant; `iss`/`aud` for JWTs. */
  mint(g: Grant, ctx: { base: string; issuer: string; sign: (claims: Record<string, unknown>) => Promise<string> }): Promise<Record<string, unknown>>;
  /** How an error leaves the token endpoint (default: RFC 6749 §5.2, 400 JSON). */
  tokenError?(res: ServerResponse, e: VendorError, accept: string | undefined): void;
  /** How a success leaves the token endpoint (default JSON). */
  tokenAnswer?(res: ServerResponse, body: Record<string, unknown>, accept: string | undefined): void;
  /** The device authorization answer's verification URI. */
  verificationUri?(base: string): string;
}

export interface VendorIdp {
  url: string;
  issuer: string;
  seen: Seen[];
  /** Approves the pending device codes (the user typed the code). */
  approveDevice(): void;
  close(): Promise<void>;
}

export async function startVendorIdp(v: Vendor, clients: Record<string, { secret?: string }>, o: { approveAfterPolls?: number } = {}): Promise<VendorIdp> {
  let polls = 0;
  const key: RsaKey = await rsaKey();
  const seen: Seen[] = [];
  const codes = new Map<string, Grant & { challenge: string; redirectUri: string }>();
  const refresh = new Map<string, Grant>();
  const devices = new Map<string, Grant & { approved: boolean }>();
  let base = "";
  const issuer = () => v.issuer(base);
  const sign = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: key.kid }).setIssuedAt().setExpirationTime("1h").sign(key.privateKey);
  const tokenError = (res: ServerResponse, e: VendorError, accept: string | undefined) => (v.tokenError ? v.tokenError(res, e, accept) : sendJson(res, e.error === "invalid_client" ? 401 : 400, e));
  const answer = async (res: ServerResponse, g: Grant, accept: string | undefined) => {
    const body = await v.mint(g, { base, issuer: issuer(), sign });
    if (typeof body.refresh_token === "string") refresh.set(body.refresh_token, g);
    return v.tokenAnswer ? v.tokenAnswer(res, body, accept) : sendJson(res, 200, body);
  };

  const handler = async (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const u = new URL(req.url ?? "/", base);
    const { form = {} } = parseBody(raw, req.headers["content-type"]);
    seen.push({ method: req.method ?? "", path: u.pathname, query: Object.fromEntries(u.searchParams), form, accept: req.headers.accept });
    if (v.metadata && req.method === "GET" && u.pathname === v.paths.metadata) return sendJson(res, 200, v.metadata(base));
    if (v.paths.jwks && u.pathname === v.paths.jwks) return sendJson(res, 200, { keys: [key.jwk] });
    if (req.method === "GET" && u.pathname === v.paths.authorize) {
      const q = Object.fromEntries(u.searchParams);
      const back = new URL(q.redirect_uri ?? "http://127.0.0.1:1/none");
      if (!clients[q.client_id ?? ""]) return sendJson(res, 400, { error: "invalid_client" });
      const refused = v.authorize?.(q);
      if (refused) {
        back.searchParams.set("error", refused.error);
        if (refused.error_description) back.searchParams.set("error_description", refused.error_description);
      } else {
        const code = randomBytes(16).toString("hex");
        const { client_id, scope = "", code_challenge = "", redirect_uri = "", ...params } = q;
        codes.set(code, { clientId: client_id!, scope, params, challenge: code_challenge, redirectUri: redirect_uri });
        back.searchParams.set("code", code);
      }
      back.searchParams.set("state", q.state ?? "");
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (req.method === "POST" && v.paths.device && u.pathname === v.paths.device) {
      const clientId = form.client_id ?? basicCredentials(req)?.id ?? "";
      if (!clients[clientId]) return tokenError(res, { error: "invalid_client" }, req.headers.accept);
      const device_code = randomBytes(20).toString("hex");
      devices.set(device_code, { clientId, scope: form.scope ?? "", params: {}, approved: false });
      return (v.tokenAnswer ?? ((r, b) => sendJson(r, 200, b)))(res, { device_code, user_code: "WDJB-MJHT", verification_uri: v.verificationUri?.(base) ?? `${base}/device`, expires_in: 900, interval: 1 }, req.headers.accept);
    }
    if (req.method === "POST" && u.pathname === v.paths.token) {
      const accept = req.headers.accept;
      const basic = basicCredentials(req);
      const clientId = basic?.id ?? form.client_id ?? "";
      const secret = basic?.secret ?? form.client_secret;
      const client = clients[clientId];
      if (!client || (secret !== undefined && secret !== client.secret) || ((client.secret && v.secretRequired?.(form)) && secret === undefined)) {
        return tokenError(res, { error: "invalid_client", error_description: secret === undefined ? "client_secret is missing." : "Unauthorized" }, accept);
      }
      switch (form.grant_type) {
        case "authorization_code": {
          const c = codes.get(form.code ?? "");
          codes.delete(form.code ?? "");
          const verifier = form.code_verifier ?? "";
          if (!c || c.clientId !== clientId || c.redirectUri !== form.redirect_uri || createHash("sha256").update(verifier).digest("base64url") !== c.challenge) return tokenError(res, { error: "invalid_grant" }, accept);
          return answer(res, c, accept);
        }
        case "refresh_token": {
          const g = refresh.get(form.refresh_token ?? "");
          if (!g || g.clientId !== clientId) return tokenError(res, { error: "invalid_grant" }, accept);
          return answer(res, { ...g, params: { ...g.params, ...(form.audience ? { audience: form.audience } : {}) } }, accept);
        }
        case "urn:ietf:params:oauth:grant-type:device_code": {
          const d = devices.get(form.device_code ?? "");
          if (!d) return tokenError(res, { error: "expired_token" }, accept);
          if (o.approveAfterPolls !== undefined && ++polls > o.approveAfterPolls) d.approved = true;
          if (!d.approved) return tokenError(res, { error: "authorization_pending", error_description: "The authorization request is still pending." }, accept);
          devices.delete(form.device_code ?? "");
          return answer(res, d, accept);
        }
        case "client_credentials":
          return answer(res, { clientId, scope: form.scope ?? "", params: form }, accept);
        default:
          return tokenError(res, { error: "unsupported_grant_type" }, accept);
      }
    }
    return sendJson(res, 404, { error: "not_found" });
  };
  const served = await serve(handler);
  base = served.url;
  return {
    url: base,
    issuer: issuer(),
    seen,
    approveDevice: () => {
      for (const d of devices.values()) d.approved = true;
    },
    close: served.close,
  };
}

/** Follows an authorization URL as a browser whose user approves at once: to the IdP, then back to the loopback. */
export async function followLogin(url: string): Promise<void> {
  const r = await fetch(url, { redirect: "manual" });
  await r.arrayBuffer();
  const back = r.headers.get("location");
  if (back) void fetch(back).then((x) => x.arrayBuffer()).catch(() => {});
}
