import { UsageError } from "../errors.js";
import { defineInput } from "../core/inputs.js";
import { definePreset, presetInputs, originOf, scopeList, withScopes } from "./preset.js";

/**
 * Okta. Facts: docs/presets.md#okta.
 * - Two kinds of authorization server: the org authorization server (issuer `https://{domain}`),
 *   whose access tokens are for Okta's own APIs and cannot be validated by your servers, and custom
 *   authorization servers (issuer `https://{domain}/oauth2/{id}`, `default` exists in every org with
 *   API Access Management), whose tokens carry the audience set on the server. MCP servers need a
 *   custom one.
 * - The audience is fixed per authorization server, so no `resource`/`audience` parameter is sent.
 * - `offline_access` (and the Refresh Token grant on the app) for a refresh token; the device flow
 *   when the app has the Device Authorization grant; dynamic registration needs an admin API token,
 *   so the preset asks for the app's client id.
 */
const SERVER_ID = /^[A-Za-z0-9]{1,64}$/;

export const okta = definePreset({
  id: "okta",
  title: "Okta",
  summary: "an OIDC app and a custom authorization server: --domain ORG.okta.com --client-id ID [--auth-server default]",
  docs: "docs/presets.md#okta",
  inputs: [
    defineInput({ name: "domain", flag: "--domain <host>", kind: "string", description: "Okta: your org's domain (dev-123.okta.com)", prompt: "Okta domain (dev-123.okta.com)", required: true }),
    defineInput({ name: "authServer", flag: "--auth-server <id>", kind: "string", description: "Okta: the custom authorization server id, or org", prompt: "Authorization server id (default, or org)", default: "default" }),
    presetInputs.clientId("the app's client id", "Client ID"),
    presetInputs.scope(["openid", "offline_access"]),
    presetInputs.grant(),
    presetInputs.mcpUrl(),
  ],
  grants: ["authorization_code", "device_code", "client_credentials"],
  secret: (grant) => (grant === "client_credentials" ? "required" : "optional"),
  plan(a) {
    const origin = originOf("--domain", a.domain, "your Okta org's domain, e.g. dev-123.okta.com");
    const server = a.authServer ?? "default";
    if (server !== "org" && !SERVER_ID.test(server)) throw new UsageError(`--auth-server wants an authorization server id (default, aus…) or org, got "${server.slice(0, 80)}"`);
    if (a.resource) throw new UsageError("--preset okta sends no --resource: the audience is set on the authorization server (Security → API → Authorization Servers)");
    if (a.audience) throw new UsageError("--preset okta sends no --audience: the audience is set on the authorization server");
    const grant = a.grant ?? (a.hasSecret ? "client_credentials" : "authorization_code");
    if (grant === "client_credentials" && server === "org") throw new UsageError("client credentials need a custom authorization server at Okta (the org server's tokens are for Okta's own APIs)");
    const typed = scopeList(a.scope);
    const scopes = grant === "client_credentials" ? typed : withScopes(typed.length ? typed : ["openid"], ["offline_access"]);
    if (grant === "client_credentials" && !scopes.length) throw new UsageError("client credentials at Okta need --scope: a custom scope of the authorization server");
    const notes =
      server === "org"
        ? ["the org authorization server's access tokens are for Okta's own APIs: an MCP server cannot validate them; use a custom authorization server (--auth-server default)"]
        : [`issuer ${origin}/oauth2/${server} (custom authorization server \"${server}\"; its audience setting is the token's aud)`];
    return { issuer: server === "org" ? origin : `${origin}/oauth2/${server}`, grant, scopes: scopes.length ? scopes : undefined, authorizeParams: a.authorizeParams, extra: { preset: "okta", authServer: server }, notes };
  },
  setup: (a) => [
    "Okta Admin Console → Applications → Create App Integration → OIDC → Native Application (or Web Application for a client secret). Copy the Client ID.",
    "Sign-in redirect URIs: http://127.0.0.1/callback (Okta matches loopback redirect URIs on any port for native apps; otherwise also give --redirect-port PORT and register that port).",
    `Grant types: Authorization Code and Refresh Token${a.grant === "device_code" ? ", Device Authorization" : ""}; assign the app to your users or groups.`,
    "Security → API → Authorization Servers: the server (default) whose Audience is the MCP server; an access policy rule that allows this app and these scopes.",
    "Dynamic client registration at Okta needs an admin API token: mcp-auth uses the app's client id.",
  ],
  matches: (issuer) => /^https:\/\/[^/]+\.(okta|oktapreview|okta-emea)\.com(\/oauth2\/[^/]+)?$/.test(issuer),
  fixes: [
    { match: /login timed out/, fix: () => "if the browser showed an Okta error page, add http://127.0.0.1/callback to the app's Sign-in redirect URIs and assign the app to you; otherwise run the login again" },
    { match: /redirect_uri.*(Login redirect URI|must be)|invalid_request.*redirect/i, fix: () => "add http://127.0.0.1/callback to the app's Sign-in redirect URIs" },
    { match: /no_matching_policy|Policy evaluation failed|access_denied/, fix: () => "the authorization server's access policy has no rule for this app, grant or scope: Security → API → Authorization Servers → Access Policies" },
    { match: /invalid_scope/, fix: (p) => `ask only for scopes the authorization server defines: mcp-auth profiles set ${p} --scope "openid offline_access YOUR:SCOPE"` },
    { match: /unauthorized_client/, fix: () => "enable the grant on the app (General → Grant type: Authorization Code, Refresh Token, Device Authorization)" },
  ],
  check(p) {
    if (!/\/oauth2\/[^/]+$/.test(p.issuer)) return [{ status: "fail", detail: "the org authorization server's access tokens are for Okta's own APIs: the MCP server cannot validate them", fix: `use a custom authorization server: mcp-auth profiles add ${p.name ?? "NAME"} --preset okta --auth-server default … --force` }];
    return p.grant !== "client_credentials" && !(p.scopes ?? []).includes("offline_access")
      ? [{ status: "warn", detail: "no offline_access scope: Okta returns no refresh token", fix: `mcp-auth profiles set ${p.name ?? "NAME"} --scope ${[...(p.scopes ?? []), "offline_access"].join(" ")}` }]
      : [{ status: "pass", detail: "offline_access for refresh" }];
  },
});
