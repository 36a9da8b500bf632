import { afterEach, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "../helpers/context.js";
import { targetFromProfile } from "../../src/core/target.js";
import { selectProfile } from "../../src/profile.js";
import { startAuth0 } from "./auth0.js";
import { ENTRA_TENANT, entraVendor, startEntra } from "./entra.js";
import { startGitHub } from "./github.js";
import { startGoogle } from "./google.js";
import { startOkta } from "./okta.js";
import { followLogin, startVendorIdp, type VendorIdp } from "./vendor-idp.js";

/**
 * Each preset against its vendor's simulator (built from the vendor's documented requests and
 * answers, named in each simulator's header): saving the profile sends nothing; the login sends what
 * the vendor needs and nothing it refuses; the token is the one an MCP server behind that IdP accepts.
 */
let idp: VendorIdp | undefined;
let tc: TestContext | undefined;
afterEach(async () => {
  tc?.cleanup();
  await idp?.close();
  idp = tc = undefined;
});

const jwt = (t: string) => JSON.parse(Buffer.from(t.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
// The request carrying response_type: login first checks the endpoint answers at all (a bare GET).
const authorizeQuery = (i: VendorIdp) => i.seen.find((s) => s.method === "GET" && /authorize|\/auth$/.test(s.path) && s.query.response_type)?.query ?? {};

interface Case {
  name: string;
  start: () => Promise<VendorIdp>;
  add: (url: string) => string[];
  env?: Record<string, string>;
  login?: string[];
  check: (i: VendorIdp, token: string, hasRefresh: boolean) => void;
}

const CASES: Case[] = [
  {
    name: "entra: tenant v2.0 issuer, the API in the scope with offline_access, no resource",
    start: () => startEntra({ "app-1": {} }),
    add: (u) => ["--preset", "entra", "--authority", u, "--tenant", ENTRA_TENANT, "--client-id", "app-1", "--scope", "api://mcp-server/.default", "--mcp-url", "https://mcp.example.invalid/mcp"],
    check: (i, token, hasRefresh) => {
      const q = authorizeQuery(i);
      expect(q.resource).toBeUndefined();
      expect(q.scope).toBe("api://mcp-server/.default openid offline_access");
      expect(jwt(token)).toMatchObject({ iss: `${i.url}/${ENTRA_TENANT}/v2.0`, aud: "api://mcp-server" });
      expect(hasRefresh).toBe(true);
    },
  },
  {
    name: "entra (device code): the v2.0 devicecode endpoint, authorization_pending polled through",
    start: () => startVendorIdp(entraVendor(), { "app-1": {} }, { approveAfterPolls: 1 }),
    add: (u) => ["--preset", "entra", "--authority", u, "--tenant", ENTRA_TENANT, "--client-id", "app-1", "--scope", "api://mcp-server/.default", "--grant", "device_code"],
    check: (i, token, hasRefresh) => {
      expect(i.seen.find((s) => s.path.endsWith("/oauth2/v2.0/devicecode"))?.form.scope).toBe("api://mcp-server/.default openid offline_access");
      expect(jwt(token)).toMatchObject({ aud: "api://mcp-server" });
      expect(hasRefresh).toBe(true);
    },
  },
  {
    name: "google: access_type=offline and prompt=consent, the client secret at the token endpoint, a refresh token",
    start: () => startGoogle({ "g.apps.googleusercontent.com": { secret: "GOCSPX-sim" } }),
    add: (u) => ["--preset", "google", "--issuer", u, "--client-id", "g.apps.googleusercontent.com", "--client-secret-env", "GSECRET"],
    env: { GSECRET: "GOCSPX-sim" },
    check: (i, token, hasRefresh) => {
      expect(authorizeQuery(i)).toMatchObject({ access_type: "offline", prompt: "consent", scope: "openid email" });
      expect(token).toMatch(/^ya29\./);
      expect(hasRefresh).toBe(true);
    },
  },
  {
    name: "okta: the default custom authorization server, offline_access, aud api://default",
    start: () => startOkta({ "0oa-native": {} }),
    add: (u) => ["--preset", "okta", "--domain", u, "--client-id", "0oa-native"],
    check: (i, token, hasRefresh) => {
      expect(authorizeQuery(i).scope).toBe("openid offline_access");
      expect(authorizeQuery(i).resource).toBeUndefined();
      expect(jwt(token)).toMatchObject({ iss: `${i.url}/oauth2/default`, aud: "api://default" });
      expect(hasRefresh).toBe(true);
    },
  },
  {
    name: "auth0: audience on the authorization request, a JWT for the API (not the opaque /userinfo token)",
    start: () => startAuth0({ "auth0-native": {} }),
    add: (u) => ["--preset", "auth0", "--domain", u, "--audience", "https://mcp.example.invalid/mcp", "--client-id", "auth0-native"],
    check: (i, token, hasRefresh) => {
      expect(authorizeQuery(i).audience).toBe("https://mcp.example.invalid/mcp");
      expect(jwt(token)).toMatchObject({ iss: `${i.url}/`, aud: ["https://mcp.example.invalid/mcp", `${i.url}/userinfo`] });
      expect(hasRefresh).toBe(true);
    },
  },
  {
    name: "github (browser): fixed endpoints, the secret, JSON asked for",
    start: () => startGitHub({ Iv1sim: { secret: "gh-secret" } }),
    add: (u) => ["--preset", "github", "--domain", u, "--client-id", "Iv1sim", "--grant", "authorization_code", "--client-secret-env", "GHSECRET", "--scope", "read:user"],
    env: { GHSECRET: "gh-secret" },
    check: (i, token) => {
      expect(token).toMatch(/^gho_sim/);
      const tokenReq = i.seen.find((s) => s.path === "/login/oauth/access_token")!;
      expect(tokenReq.accept).toContain("application/json");
      expect(tokenReq.form).toMatchObject({ client_id: "Iv1sim", client_secret: "gh-secret" }); // as body parameters, as GitHub documents
    },
  },
  {
    name: "github (device): authorization_pending in a 200 answer is polled through, no secret",
    start: () => startGitHub({ Iv1sim: {} }, { interval: 1, approveAfterPolls: 1 }),
    add: (u) => ["--preset", "github", "--domain", u, "--client-id", "Iv1sim"],
    check: (i, token) => {
      expect(token).toMatch(/^gho_sim/);
      const polls = i.seen.filter((s) => s.path === "/login/oauth/access_token");
      expect(polls.length).toBe(2); // one pending (HTTP 200 with error), then the token
      expect(polls.every((p) => p.form.client_secret === undefined)).toBe(true);
    },
  },
];

describe("presets against their vendors' simulators", () => {
  it.each(CASES)("$name", async (c) => {
    idp = await c.start();
    tc = createTestContext({ env: c.env, onBrowse: followLogin });
    expect(await tc.run(["profiles", "add", "p", ...c.add(idp.url)]), tc.stderr()).toBe(0);
    expect(idp.seen).toEqual([]); // saving a preset profile makes no request
    expect(await tc.run(["login", "p", ...(c.login ?? [])]), tc.stderr()).toBe(0);
    expect(await tc.run(["token", "--profile", "p"]), tc.stderr()).toBe(0);
    const token = tc.stdout().trim().split("\n").at(-1)!;
    const t = targetFromProfile(selectProfile(tc.ctx.config(), { profile: "p" }));
    const hasRefresh = Boolean(await tc.ctx.tokens.refreshToken(t));
    c.check(idp, token, hasRefresh);
  });
});

describe("the quirks, as each vendor answers them", () => {
  it("entra: a profile that sends resource gets AADSTS9010010 back, and the preset's fix as the hint; doctor names it too", async () => {
    idp = await startEntra({ "app-1": {} });
    tc = createTestContext({ onBrowse: followLogin });
    expect(await tc.run(["profiles", "add", "p", "--preset", "entra", "--authority", idp.url, "--tenant", ENTRA_TENANT, "--client-id", "app-1", "--scope", "api://mcp-server/.default"])).toBe(0);
    expect(await tc.run(["profiles", "set", "p", "--resource", "https://mcp.example.invalid/mcp"]), tc.stderr()).toBe(0);
    expect(await tc.run(["login", "p"])).toBe(4);
    expect(tc.stderr()).toContain("AADSTS9010010");
    // Hints print the command the way it runs from here (npx inside this checkout).
    expect(tc.stderr()).toMatch(/Microsoft Entra ID: Entra refuses RFC 8707 resource: drop it with (npx )?mcp-auth profiles set p --resource ""/);
    const before = tc.stdout().length;
    expect(await tc.run(["doctor", "--profile", "p", "--json"])).not.toBe(0);
    const { checks } = JSON.parse(tc.stdout().slice(before)) as { checks: Array<{ id: string; status: string; fix?: string }> };
    expect(checks.find((c) => c.id === "preset.entra")).toMatchObject({ status: "fail", fix: 'mcp-auth profiles set p --resource ""' });
  });

  it("okta: the org authorization server works, but its tokens are Okta's own, and doctor says to use a custom server", async () => {
    idp = await startOkta({ "0oa-native": {} }, "org");
    tc = createTestContext({ onBrowse: followLogin });
    expect(await tc.run(["profiles", "add", "p", "--preset", "okta", "--domain", idp.url, "--auth-server", "org", "--client-id", "0oa-native"])).toBe(0);
    expect(tc.stderr()).toContain("the org authorization server's access tokens are for Okta's own APIs");
    expect(await tc.run(["login", "p"]), tc.stderr()).toBe(0);
    expect(idp.seen.some((s) => s.path === "/oauth2/v1/authorize")).toBe(true);
    const before = tc.stdout().length;
    await tc.run(["doctor", "--profile", "p", "--json"]);
    const { checks } = JSON.parse(tc.stdout().slice(before)) as { checks: Array<{ id: string; status: string; fix?: string }> };
    expect(checks.find((c) => c.id === "preset.okta")).toMatchObject({ status: "fail", fix: expect.stringContaining("--auth-server default") });
  });

  it("google: without access_type=offline no refresh token comes, and doctor says which parameters bring it", async () => {
    idp = await startGoogle({ g: { secret: "s" } });
    tc = createTestContext({ env: { S: "s" }, onBrowse: followLogin });
    expect(await tc.run(["profiles", "add", "p", "--preset", "google", "--issuer", idp.url, "--client-id", "g", "--client-secret-env", "S"])).toBe(0);
    expect(await tc.run(["profiles", "set", "p", "--authorize-param", ""]), tc.stderr()).toBe(0);
    expect(await tc.run(["login", "p"]), tc.stderr()).toBe(0);
    expect(authorizeQuery(idp).access_type).toBeUndefined();
    const t = targetFromProfile(selectProfile(tc.ctx.config(), { profile: "p" }));
    expect(await tc.ctx.tokens.refreshToken(t)).toBeFalsy();
    const before = tc.stdout().length;
    await tc.run(["doctor", "--profile", "p", "--json"]);
    const { checks } = JSON.parse(tc.stdout().slice(before)) as { checks: Array<{ id: string; status: string; fix?: string }> };
    expect(checks.find((c) => c.id === "preset.google")).toMatchObject({ status: "fail", fix: expect.stringContaining("--authorize-param access_type=offline --authorize-param prompt=consent") });
  });
});
