import type * as OC from "openid-client";
import { AuthError, UsageError } from "../errors.js";
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
    throw wrapOAuthError(e, "device login");
  }
}
