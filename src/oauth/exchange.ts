import { AuthError, NetworkError } from "../errors.js";
import { tokenProblem } from "../format.js";
import { registerSecret } from "../io/sanitize.js";
import type { Fetch } from "./http.js";

/**
 * OCI's RFC 8693 flavour: a JWT exchanged for a User Principal Session Token (UPST) bound to a public
 * key the caller holds the private half of. Wire format from docs/idp/oci.md §6
 * (oci-python-sdk token_exchange_signer.py): client authentication by HTTP Basic, the literal
 * `subject_token_type=jwt` (not the RFC 8693 URN), `public_key` = base64 DER SubjectPublicKeyInfo
 * without PEM armour, and the answer's key is `token`, not `access_token`. openid-client would insist
 * on `access_token`, hence a plain request here.
 *
 * @example
 * const upst = await exchangeForUpst(fetch, {
 *   tokenEndpoint: "https://idcs-abc.identity.oraclecloud.com/oauth2/v1/token",
 *   clientId: "app", clientSecret: "secret", subjectToken: jwt, publicKeyDer: der,
 * }, Date.now());
 */
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const OCI_UPST = "urn:oci:token-type:oci-upst";

export interface UpstRequest {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  subjectToken: string;
  /** DER SubjectPublicKeyInfo of an RSA-2048 key. */
  publicKeyDer: Buffer;
}

export interface Upst {
  token: string;
  /** unix seconds: the UPST's own `exp`, else five minutes (we never trust a lifetime we cannot read). */
  expires_at: number;
}

export async function exchangeForUpst(fetch: Fetch, r: UpstRequest, nowMs: number): Promise<Upst> {
  const where = new URL(r.tokenEndpoint).host;
  // §6 / §1: Basic base64(id:secret); form-encoding both halves first, as RFC 6749 §2.3.1 asks, is a no-op for IDCS ids.
  const basic = Buffer.from(`${encodeURIComponent(r.clientId)}:${encodeURIComponent(r.clientSecret)}`).toString("base64");
  const res = await fetch(r.tokenEndpoint, {
    method: "POST",
    headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams({
      grant_type: TOKEN_EXCHANGE_GRANT,
      requested_token_type: OCI_UPST,
      subject_token: r.subjectToken,
      subject_token_type: "jwt",
      public_key: r.publicKeyDer.toString("base64"),
    }).toString(),
    redirect: "manual",
  });
  const text = await res.text();
  let body: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    /* handled below */
  }
  if (res.status !== 200) {
    // §7: OAuth errors are {"error","error_description"}.
    const error = typeof body?.error === "string" ? body.error : undefined;
    const desc = typeof body?.error_description === "string" ? `: ${body.error_description}` : "";
    const msg = `token exchange (OCI UPST) at ${where} refused: ${error ?? `HTTP ${res.status}`}${desc}`;
    if (res.status >= 500 || !error) throw new NetworkError(msg, { code: error });
    throw new AuthError(msg, {
      code: error,
      hint:
        error === "invalid_client"
          ? "the profile's client secret was refused: rerun mcp-auth bootstrap oci (--rotate-secret if it was lost)"
          : "the app must be listed in an active identity propagation trust for the subject token's issuer: rerun mcp-auth bootstrap oci --token-exchange",
    });
  }
  if (!body) throw new NetworkError(`malformed response from the token exchange at ${where}: expected JSON`);
  const problem = tokenProblem("access_token", body.token);
  if (problem) throw new NetworkError(`malformed response from the token exchange at ${where}: ${problem.replace("access_token", "token")}`);
  const token = body.token as string;
  registerSecret(token);
  const now = Math.floor(nowMs / 1000);
  const exp = jwtExp(token);
  if (exp !== undefined && exp <= now) throw new NetworkError(`the token exchange at ${where} returned a token that has already expired`, { hint: "check this machine's clock" });
  return { token, expires_at: exp ?? now + 300 };
}

function jwtExp(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? Math.floor(exp) : undefined;
  } catch {
    return undefined;
  }
}
