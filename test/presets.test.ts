import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { checkAuthorizeParams, parseAuthorizeParams } from "../src/oauth/authorize-params.js";
import { presetFix } from "../src/presets/index.js";
import { profileOf } from "../src/profile.js";
import { startGoogle } from "./simulators/google.js";
import { followLogin } from "./simulators/vendor-idp.js";

/**
 * Presets and extra authorization parameters, in-process. Every IdP host here is a `.invalid` name:
 * saving a preset profile must not contact anything (the simulator table in
 * test/simulators/presets.test.ts covers the logins).
 */
let tc: TestContext | undefined;
afterEach(() => {
  tc?.cleanup();
  tc = undefined;
});

const TENANT = "0f3a1c2d-4b5e-4f60-8a7b-9c0d1e2f3a4b";
const run = async (argv: string[], env: Record<string, string> = {}) => {
  tc = createTestContext({ env });
  const code = await tc.run(argv);
  return { code, stderr: tc.stderr(), stdout: tc.stdout(), profile: profileOf(tc.ctx.config(), "p") };
};

describe("profiles add --preset: what each preset saves, offline", () => {
  it.each([
    [
      "entra",
      ["--preset", "entra", "--tenant", TENANT, "--client-id", "app", "--scope", "api://mcp/.default", "--mcp-url", "https://mcp.example.invalid/mcp"],
      { issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`, grant: "authorization_code", scopes: ["api://mcp/.default", "openid", "offline_access"], mcpUrl: "https://mcp.example.invalid/mcp", extra: { preset: "entra", tenant: TENANT } },
    ],
    ["entra, a national cloud", ["--preset", "entra", "--authority", "login.microsoftonline.us", "--tenant", TENANT.toUpperCase(), "--client-id", "app", "--scope", "api://mcp/read"], { issuer: `https://login.microsoftonline.us/${TENANT}/v2.0` }],
    ["entra, client credentials", ["--preset", "entra", "--tenant", TENANT, "--client-id", "app", "--scope", "api://mcp/.default", "--client-secret-env", "S"], { grant: "client_credentials", scopes: ["api://mcp/.default"], secretStore: "file" }],
    ["google", ["--preset", "google", "--client-id", "g", "--client-secret-env", "S"], { issuer: "https://accounts.google.com", grant: "authorization_code", scopes: ["openid", "email"], authorizeParams: { access_type: "offline", prompt: "consent" }, secretStore: "file" }],
    ["google, the user's prompt wins", ["--preset", "google", "--client-id", "g", "--client-secret-env", "S", "--authorize-param", "prompt=select_account consent"], { authorizeParams: { access_type: "offline", prompt: "select_account consent" } }],
    ["google, device flow", ["--preset", "google", "--client-id", "g", "--client-secret-env", "S", "--grant", "device_code"], { grant: "device_code" }],
    ["okta", ["--preset", "okta", "--domain", "dev-1.okta.invalid", "--client-id", "0oa"], { issuer: "https://dev-1.okta.invalid/oauth2/default", scopes: ["openid", "offline_access"], extra: { preset: "okta", authServer: "default" } }],
    ["okta, org server", ["--preset", "okta", "--domain", "https://dev-1.okta.invalid", "--auth-server", "org", "--client-id", "0oa"], { issuer: "https://dev-1.okta.invalid" }],
    ["auth0", ["--preset", "auth0", "--domain", "t.auth0.invalid", "--audience", "https://mcp.example.invalid/mcp", "--client-id", "a"], { issuer: "https://t.auth0.invalid", audience: "https://mcp.example.invalid/mcp", scopes: ["openid", "offline_access"] }],
    [
      "github",
      ["--preset", "github", "--client-id", "Iv1"],
      { issuer: "https://github.com/login/oauth", grant: "device_code", extra: { preset: "github", authorizationEndpoint: "https://github.com/login/oauth/authorize", tokenEndpoint: "https://github.com/login/oauth/access_token", deviceAuthorizationEndpoint: "https://github.com/login/device/code" } },
    ],
    ["github enterprise server, browser", ["--preset", "github", "--domain", "ghe.example.invalid", "--client-id", "Iv1", "--client-secret-env", "S"], { issuer: "https://ghe.example.invalid/login/oauth", grant: "authorization_code" }],
  ])("%s", async (_name, flags, expected) => {
    const r = await run(["profiles", "add", "p", ...flags], { S: "sekret" });
    expect(r.code, r.stderr).toBe(0);
    expect(r.profile).toMatchObject(expected);
    expect(r.profile!.resource).toBeUndefined();
    expect(r.stderr).toMatch(/\n {2}1\. /); // the portal steps
  });

  it.each([
    ["entra without --tenant", ["--preset", "entra", "--client-id", "a", "--scope", "api://x/.default"], /needs --tenant TENANT_ID/],
    ["entra with a multi-tenant authority", ["--preset", "entra", "--tenant", "common", "--client-id", "a", "--scope", "api://x/.default"], /--tenant common is a multi-tenant authority/],
    ["entra with a domain for the tenant", ["--preset", "entra", "--tenant", "contoso.onmicrosoft.com", "--client-id", "a", "--scope", "api://x/.default"], /--tenant wants the tenant id \(a GUID\)/],
    ["entra with --resource", ["--preset", "entra", "--tenant", TENANT, "--client-id", "a", "--scope", "api://x/.default", "--resource", "https://mcp.example.invalid"], /refuses RFC 8707 resource \(AADSTS9010010\)/],
    ["entra with OpenID scopes only", ["--preset", "entra", "--tenant", TENANT, "--client-id", "a", "--scope", "openid"], /needs --scope naming the MCP server's API/],
    ["entra with two APIs", ["--preset", "entra", "--tenant", TENANT, "--client-id", "a", "--scope", "api://x/.default", "api://y/read"], /one API per request \(AADSTS28000\)/],
    ["entra client credentials without .default", ["--preset", "entra", "--tenant", TENANT, "--client-id", "a", "--scope", "api://x/read", "--client-secret-env", "S"], /exactly one scope, the API's \/\.default/],
    ["google without a secret", ["--preset", "google", "--client-id", "g"], /Google with authorization_code needs the client secret/],
    ["google client credentials", ["--preset", "google", "--client-id", "g", "--client-secret-env", "S", "--grant", "client_credentials"], /no client credentials grant/],
    ["okta without --domain", ["--preset", "okta", "--client-id", "a"], /--domain is required/],
    ["okta with a path in --domain", ["--preset", "okta", "--domain", "https://dev.okta.invalid/oauth2/default", "--client-id", "a"], /without a path/],
    ["okta client credentials on the org server", ["--preset", "okta", "--domain", "dev.okta.invalid", "--auth-server", "org", "--client-id", "a", "--client-secret-env", "S"], /need a custom authorization server/],
    ["auth0 without --audience", ["--preset", "auth0", "--domain", "t.auth0.invalid", "--client-id", "a"], /needs --audience API_IDENTIFIER/],
    ["github browser flow without a secret", ["--preset", "github", "--client-id", "a", "--grant", "authorization_code"], /GitHub with authorization_code needs the client secret/],
    ["any preset without --client-id", ["--preset", "okta", "--domain", "dev.okta.invalid"], /--preset okta needs --client-id ID/],
    ["--issuer with a preset that builds it", ["--preset", "okta", "--domain", "dev.okta.invalid", "--client-id", "a", "--issuer", "https://x.invalid"], /builds the issuer itself/],
    ["--client-auth with a preset", ["--preset", "okta", "--domain", "dev.okta.invalid", "--client-id", "a", "--client-auth", "private-key-jwt"], /--client-auth cannot be combined with --preset/],
    ["--tenant without --preset", ["--issuer", "https://idp.example.invalid", "--client-id", "a", "--tenant", TENANT], /--tenant only applies with --preset/],
  ])("refuses %s (exit 2, nothing saved)", async (_name, flags, message) => {
    const r = await run(["profiles", "add", "p", ...flags], { S: "sekret" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.profile).toBeUndefined();
  });
});

/** The saved profile, read from disk (a context caches what it read). */
const saved = (t: TestContext, name = "p") => (JSON.parse(readFileSync(join(t.configDir, "config.json"), "utf8")) as { profiles: Record<string, Record<string, unknown>> }).profiles[name];

describe("--authorize-param", () => {
  it.each([
    ["state=x", /--authorize-param state: refused: "state" is a parameter mcp-auth sends itself/],
    ["code_challenge=x", /"code_challenge" is a parameter mcp-auth sends itself/],
    ["code_challenge_method=plain", /"code_challenge_method" is a parameter mcp-auth sends itself/],
    ["redirect_uri=https://evil.invalid/cb", /"redirect_uri" is a parameter mcp-auth sends itself/],
    ["client_id=other", /"client_id" is a parameter mcp-auth sends itself/],
    ["response_type=token", /"response_type" is a parameter mcp-auth sends itself/],
    ["Response_Type=token", /"Response_Type" is a parameter mcp-auth sends itself/],
    ["scope=admin", /"scope" is a parameter mcp-auth sends itself; use --scope/],
    ["resource=https://x.invalid", /use --resource/],
    ["audience=x", /use --audience/],
    ["client_secret=s3cret", /"client_secret" carries a credential, which never goes on the command line/],
    ["code_verifier=x", /"code_verifier" carries a credential/],
    ["id_token_hint=eyJ", /"id_token_hint" carries a credential/],
    ["noequals", /wants KEY=VALUE/],
    ["=value", /wants KEY=VALUE/],
    ["bad key=1", /is not a parameter name/],
    ["prompt=", /the value of "prompt" must be 1 to 512 printable characters/],
    ["prompt=a\u001b[31mb", /printable characters/],
    ["prompt=a\u202eb", /printable characters/],
    [`login_hint=${"x".repeat(513)}`, /1 to 512/],
  ])("refuses %j", (value, message) => {
    expect(() => parseAuthorizeParams([value])).toThrow(message);
  });

  it("takes printable values (Unicode too), refuses the same key twice with different values, and more than 16", () => {
    expect(parseAuthorizeParams(["access_type=offline", "prompt=consent", "login_hint=zoë@example.com", "prompt=consent"])).toEqual({ access_type: "offline", prompt: "consent", login_hint: "zoë@example.com" });
    expect(() => parseAuthorizeParams(["prompt=consent", "prompt=login"])).toThrow(/given twice/);
    expect(() => parseAuthorizeParams(Array.from({ length: 17 }, (_, i) => `p${i}=v`))).toThrow(/at most 16/);
  });

  it("refuses an owned parameter read back from config.json, naming the profile", () => {
    expect(() => checkAuthorizeParams({ redirect_uri: "https://evil.invalid" }, "p")).toThrow(/profile "p" has unusable authorization parameters: "redirect_uri" is a parameter mcp-auth sends itself/);
    expect(() => checkAuthorizeParams(["x"], "p")).toThrow(/not an object of strings/);
    expect(checkAuthorizeParams(undefined, "p")).toEqual({});
  });

  it("is stored by profiles add, replaced by profiles set, and cleared with an empty value", async () => {
    tc = createTestContext();
    expect(await tc.run(["profiles", "add", "p", "--issuer", "https://idp.example.invalid", "--client-id", "c", "--authorize-param", "access_type=offline", "--authorize-param", "prompt=consent"]), tc.stderr()).toBe(0);
    expect(saved(tc)!.authorizeParams).toEqual({ access_type: "offline", prompt: "consent" });
    expect(await tc.run(["profiles", "set", "p", "--authorize-param", "acr_values=mfa"]), tc.stderr()).toBe(0);
    expect(saved(tc)!.authorizeParams).toEqual({ acr_values: "mfa" });
    expect(await tc.run(["profiles", "set", "p", "--authorize-param", ""]), tc.stderr()).toBe(0);
    expect(saved(tc)!.authorizeParams).toBeUndefined();
    expect(await tc.run(["profiles", "set", "p", "--authorize-param", "client_id=x"])).toBe(2);
    expect(tc.stderr()).toContain('"client_id" is a parameter mcp-auth sends itself');
  });

  it("reaches the authorization request of any profile; login NAME --authorize-param adds to them and keeps them once the login worked", async () => {
    const idp = await startGoogle({ c: { secret: "s" } });
    try {
      tc = createTestContext({ env: { S: "s" }, onBrowse: followLogin });
      expect(await tc.run(["profiles", "add", "p", "--issuer", idp.url, "--client-id", "c", "--client-secret-env", "S", "--grant", "authorization_code", "--authorize-param", "access_type=offline"]), tc.stderr()).toBe(0);
      expect(await tc.run(["login", "p", "--authorize-param", "login_hint=zoë@example.com"]), tc.stderr()).toBe(0);
      const q = idp.seen.find((x) => x.path === "/o/oauth2/v2/auth" && x.query.response_type)!.query; // not the reachability check before it
      expect(q).toMatchObject({ access_type: "offline", login_hint: "zoë@example.com", response_type: "code", code_challenge_method: "S256" });
      expect(saved(tc)!.authorizeParams).toEqual({ access_type: "offline", login_hint: "zoë@example.com" });
    } finally {
      await idp.close();
    }
  });

  it("login refuses an owned parameter before any request (the IdP is a .invalid name)", async () => {
    tc = createTestContext();
    expect(await tc.run(["profiles", "add", "p", "--issuer", "https://idp.example.invalid", "--client-id", "c"])).toBe(0);
    expect(await tc.run(["login", "p", "--authorize-param", "state=fixed"])).toBe(2);
    expect(tc.stderr()).toContain('--authorize-param state: refused: "state" is a parameter mcp-auth sends itself');
  });
});

describe("the presets' fixes, by the IdP's own words", () => {
  it.each([
    ["entra", "AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes.", /profiles set p --resource ""/],
    ["entra", "AADSTS50011: The redirect URI 'http://127.0.0.1:5000/callback' specified in the request does not match", /http:\/\/localhost\/callback/],
    ["entra", "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'", /Allow public client flows/],
    ["google", "invalid_client: client_secret is missing.", /--client-secret-env VAR/],
    ["github", "device_flow_disabled", /Enable Device Flow/],
    ["entra", "login timed out after 300s waiting for the browser", /if the browser showed AADSTS50011/],
    ["google", "login timed out after 300s waiting for the browser", /redirect_uri_mismatch/],
    ["auth0", "access_denied: Service not found: https://api.invalid", /--audience API_IDENTIFIER/],
  ])("%s: %s", (preset, message, fix) => {
    expect(presetFix({ preset, issuer: "https://idp.example.invalid", profile: "p" }, new Error(message))).toMatch(fix);
  });

  it("knows a profile made another way by its issuer (login URL at Entra)", () => {
    expect(presetFix({ issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`, profile: "p" }, new Error("AADSTS9010010: …"))).toMatch(/^Microsoft Entra ID: /);
    expect(presetFix({ issuer: "https://idp.example.invalid", profile: "p" }, new Error("AADSTS9010010"))).toBeUndefined();
  });
});

describe("init offers the presets", () => {
  it("init --provider entra --yes saves the preset profile offline and shows the portal steps", async () => {
    tc = createTestContext();
    const code = await tc.run(["init", "--provider", "entra", "--tenant", TENANT, "--client-id", "app", "--scope", "api://mcp/.default", "--profile", "p", "--yes", "--no-login"]);
    expect(code, tc.stderr()).toBe(0);
    expect(profileOf(tc.ctx.config(), "p")).toMatchObject({ issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`, extra: { preset: "entra" } });
    expect(tc.stderr()).toContain("Mobile and desktop applications");
  });

  it("the wizard lists the presets and asks only what the chosen one needs", async () => {
    // The profile's name is asked last, after what the preset needs.
    tc = createTestContext({ interactive: true, answers: ["okta", "dev-1.okta.invalid", "default", "0oa", "openid offline_access", "authorization_code", "", "p", false] });
    expect(await tc.run(["init"]), tc.stderr()).toBe(0);
    expect(tc.asked.slice(1, 7)).toEqual(["Okta domain (dev-123.okta.com):", "Authorization server id (default, or org):", "Client ID:", "Scopes (space-separated):", "How do you sign in:", "MCP server URL (empty: none):"]);
    expect(saved(tc)).toMatchObject({ issuer: "https://dev-1.okta.invalid/oauth2/default", clientId: "0oa", extra: { preset: "okta" } });
  });

  it("without a terminal, init --provider google prints the flags that answer it", async () => {
    tc = createTestContext();
    expect(await tc.run(["init", "--provider", "google"])).toBe(2);
    expect(tc.stderr()).toContain("mcp-auth init --provider google --client-id ID --client-secret-env CLIENT_SECRET --scope 'openid email'");
  });
});
