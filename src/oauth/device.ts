import type * as OC from "openid-client";
import { AuthError, NetworkError, UsageError } from "../errors.js";
import { openid, wrapOAuthError } from "./client.js";

/**
 * The device authorization grant (RFC 8628), for SSH sessions, WSL and other places without a
 * browser: show a URL and a code, then poll until the user approves on another device, or give up
 * after `timeoutMs`.
 */
export async function deviceLogin(
  config: OC.Configuration,
  params: Record<string, string>,
  show: (info: { verificationUri: string; verificationUriComplete?: string; userCode: string; expiresIn: number }) => Promise<void>,
  timeoutMs: number,
): Promise<OC.TokenEndpointResponse> {
  const client = await openid();
  if (!config.serverMetadata().device_authorization_endpoint) {
    throw new UsageError("this server does not offer the device flow (no device_authorization_endpoint)", { hint: "use mcp-auth login without --device" });
  }
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await client.initiateDeviceAuthorization(config, params);
    checkDeviceResponse(res);
    await show({
      verificationUri: res.verification_uri,
      verificationUriComplete: res.verification_uri_complete,
      userCode: res.user_code,
      expiresIn: res.expires_in,
    });
    return await client.pollDeviceAuthorizationGrant(config, res, undefined, { signal });
  } catch (e) {
    if (signal.aborted) {
      throw new AuthError(`device login timed out after ${Math.round(timeoutMs / 1000)}s without approval`, { hint: "run the login again, and approve it in time" });
    }
    throw wrapOAuthError(e, "device login", config);
  }
}

/**
 * What the user is shown and the browser command is given comes from the server: an http(s) URL
 * without credentials, and a short code of visible characters (no terminal escapes), or exit 3.
 */
function checkDeviceResponse(res: OC.DeviceAuthorizationResponse): void {
  const malformed = (why: string) => new NetworkError(`device login failed: malformed response from the device authorization endpoint: ${why}`);
  for (const field of ["verification_uri", "verification_uri_complete"] as const) {
    const v = res[field];
    if (v === undefined && field === "verification_uri_complete") continue;
    let url: URL | undefined;
    try {
      url = typeof v === "string" && /^[\x21-\x7e]+$/.test(v) ? new URL(v) : undefined;
    } catch {
      /* refused below */
    }
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || url.username || url.password) throw malformed(`${field} is not an http(s) URL`);
  }
  if (typeof res.user_code !== "string" || !/^[\x20-\x7e]{1,64}$/.test(res.user_code)) throw malformed("user_code is not a short printable code");
}
