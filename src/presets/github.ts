import { UsageError } from "../errors.js";
import { defineInput } from "../core/inputs.js";
import type { Fetch } from "../oauth/http.js";
import { definePreset, presetInputs, originOf, scopeList } from "./preset.js";

/**
 * GitHub (OAuth apps and GitHub Apps acting for a user). Facts: docs/presets.md#github.
 * - Not OpenID Connect for user tokens: no discovery, no ID token. Fixed endpoints on the host
 *   (github.com, or a GitHub Enterprise Server): /login/oauth/authorize, /login/oauth/access_token,
 *   /login/device/code (the device flow, once enabled in the app's settings).
 * - The token endpoint answers form-encoded unless asked for `Accept: application/json` (mcp-auth's
 *   OAuth library always asks), and may state an error in a 200 answer; `tokenFetch` turns such an
 *   answer into the 400 RFC 6749 §5.2 describes, so the device flow's authorization_pending and
 *   slow_down are polled through like anywhere else.
 * - OAuth app tokens do not expire (no expires_in): mcp-auth keeps them for a day at most, like any
 *   opaque token; GitHub App user tokens expire after 8 hours and come with a refresh token.
 * - The web flow's token request wants the client secret; the device flow needs none.
 * - Loopback redirect URIs may use any port when the callback URL is http://127.0.0.1/callback.
 */
export const github = definePreset({
  id: "github",
  title: "GitHub",
  summary: "an OAuth app or GitHub App (not OIDC): --client-id ID, device flow or browser with its secret",
  docs: "docs/presets.md#github",
  inputs: [
    presetInputs.clientId("the app's client id", "Client ID of the OAuth app or GitHub App"),
    defineInput({ name: "grant", flag: "--grant <grant>", kind: "choice", choices: ["device_code", "authorization_code"], description: "how tokens are obtained", prompt: "How do you sign in (device_code needs no secret)", default: "device_code" }),
    defineInput({ name: "clientSecret", flag: "--client-secret", kind: "string", secret: true, required: true, description: "the app's client secret (the browser flow needs it)", askIf: (a) => a.grant === "authorization_code" }),
    defineInput({ name: "scope", flag: "--scope <scope...>", kind: "list", description: "OAuth app scopes (a GitHub App has permissions instead)", prompt: "Scopes (OAuth apps; empty for a GitHub App)" }),
    presetInputs.mcpUrl(),
  ],
  grants: ["device_code", "authorization_code"],
  secret: (grant) => (grant === "authorization_code" ? "required" : "optional"),
  plan(a) {
    const origin = a.domain ? originOf("--domain", a.domain, "github.com or your GitHub Enterprise Server host") : "https://github.com";
    const grant = a.grant ?? (a.hasSecret ? "authorization_code" : "device_code");
    if (grant === "client_credentials") throw new UsageError("GitHub has no client credentials grant for user tokens", { hint: "use --grant device_code or authorization_code" });
    if (a.resource || a.audience) throw new UsageError("--preset github sends neither --resource nor --audience: GitHub takes neither");
    const scopes = scopeList(a.scope);
    return {
      issuer: `${origin}/login/oauth`,
      grant,
      scopes: scopes.length ? scopes : undefined,
      authorizeParams: a.authorizeParams,
      // GitHub documents client_id and client_secret as body parameters of the token request.
      ...(a.hasSecret && { authMethod: "client_secret_post" as const }),
      extra: {
        preset: "github",
        authorizationEndpoint: `${origin}/login/oauth/authorize`,
        tokenEndpoint: `${origin}/login/oauth/access_token`,
        deviceAuthorizationEndpoint: `${origin}/login/device/code`,
      },
      notes: [`fixed endpoints on ${origin} (GitHub has no OpenID discovery for user tokens); OAuth app tokens do not expire, so mcp-auth keeps one for a day at most`],
    };
  },
  setup: (a) => [
    "GitHub → Settings → Developer settings → OAuth Apps (or GitHub Apps) → New. Authorization callback URL: http://127.0.0.1/callback (GitHub accepts any port on a loopback callback).",
    a.grant === "authorization_code" ? "Generate a client secret and give it with --client-secret-env VAR or --client-secret-stdin." : "Tick Enable Device Flow in the app's settings (the device flow needs no client secret).",
    "A GitHub App's user tokens expire after 8 hours and refresh by themselves; an OAuth app's tokens never expire (revoke them in the app's settings).",
    "GitHub has no dynamic client registration: the preset uses the app's client id.",
  ],
  matches: (issuer) => /\/login\/oauth$/.test(issuer),
  fixes: [
    { match: /login timed out/, fix: () => "if the browser showed a redirect_uri error, set the app's Authorization callback URL to http://127.0.0.1/callback; otherwise run the login again" },
    { match: /device_flow_disabled/, fix: () => "tick Enable Device Flow in the app's settings (Developer settings → your app)" },
    { match: /incorrect_client_credentials|invalid_client/, fix: (p) => `check the client id and secret: mcp-auth profiles set ${p} --client-id ID --client-secret-env VAR (the browser flow needs the secret)` },
    { match: /redirect_uri_mismatch|redirect_uri/, fix: () => "set the app's Authorization callback URL to http://127.0.0.1/callback" },
    { match: /bad_verification_code|expired_token/, fix: (p) => `the code expired: sign in again with mcp-auth login ${p}` },
  ],
  check(p) {
    return p.grant === "authorization_code" ? [{ status: "pass", detail: "browser flow with the app's secret" }] : [{ status: "pass", detail: "device flow (Enable Device Flow in the app's settings)" }];
  },
  tokenFetch: (fetch: Fetch, tokenEndpoint: string): Fetch => async (input, init) => {
    const res = await fetch(input, init);
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (url !== tokenEndpoint || res.status !== 200) return res;
    const text = await res.text();
    let body: Record<string, unknown> | undefined;
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch {
      /* not JSON: the OAuth library reports it */
    }
    const headers = new Headers(res.headers);
    headers.delete("content-length");
    if (body && typeof body.error === "string" && body.access_token === undefined) return new Response(text, { status: 400, statusText: "Bad Request", headers });
    // An OAuth app's token never expires: say so within mcp-auth's cap for opaque tokens (src/oauth/client.ts).
    if (body && typeof body.access_token === "string" && body.expires_in === undefined) return new Response(JSON.stringify({ ...body, expires_in: 86400 }), { status: 200, headers });
    return new Response(text, { status: res.status, statusText: res.statusText, headers });
  },
});
