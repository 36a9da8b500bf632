/**
 * Test simulator of GitHub's OAuth endpoints for user tokens, for the `github` preset. Follows
 * GitHub's documentation as of 2026 (docs/presets.md#github), github/docs
 * content/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps.md:
 *   - no OpenID discovery: GET /login/oauth/authorize, POST /login/oauth/access_token,
 *     POST /login/device/code (device codes are 40 characters, user codes 8 with a hyphen, interval 5);
 *   - the token endpoint answers form-encoded "by default", JSON with Accept: application/json;
 *     token_type "bearer" in lower case, scope comma-separated, no expires_in for an OAuth app;
 *   - the web flow's token request needs client_secret; the device flow does not;
 *   - device flow errors authorization_pending, slow_down, expired_token, access_denied,
 *     device_flow_disabled. GitHub states them in the body with HTTP 200 (as clients that read
 *     `error` from every answer, e.g. the GitHub CLI, expect); the documentation gives no status.
 */
import type { ServerResponse } from "node:http";
import { sendJson } from "./common.js";
import { startVendorIdp, type Vendor, type VendorIdp } from "./vendor-idp.js";

const wantsJson = (accept: string | undefined) => (accept ?? "").includes("application/json");
const answer = (res: ServerResponse, body: Record<string, unknown>, accept: string | undefined) => {
  if (wantsJson(accept)) return sendJson(res, 200, body);
  res.writeHead(200, { "content-type": "application/x-www-form-urlencoded; charset=utf-8" }).end(new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString());
};

export function githubVendor(o: { interval?: number } = {}): Vendor {
  return {
    issuer: (base) => `${base}/login/oauth`,
    paths: { authorize: "/login/oauth/authorize", token: "/login/oauth/access_token", device: "/login/device/code" },
    secretRequired: (form) => form.grant_type === "authorization_code",
    verificationUri: (base) => `${base}/login/device`,
    tokenAnswer: (res, body, accept) => answer(res, "device_code" in body ? { ...body, interval: o.interval ?? 5 } : body, accept),
    tokenError: (res, e, accept) => answer(res, { ...e, error_uri: "https://docs.github.com/apps/troubleshooting" }, accept),
    async mint(g) {
      return { access_token: `gho_sim${Math.random().toString(36).slice(2)}`, token_type: "bearer", scope: g.scope.split(" ").filter(Boolean).join(",") };
    },
  };
}

export const startGitHub = (clients: Record<string, { secret?: string }>, o: { interval?: number; approveAfterPolls?: number } = {}): Promise<VendorIdp> => startVendorIdp(githubVendor(o), clients, o);
