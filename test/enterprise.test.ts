import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { devBrowser } from "./helpers/dev-browser.js";
import { ID_JAG, ID_TOKEN_TYPE, JWT_BEARER, startEnterprise, TOKEN_EXCHANGE, type EnterpriseSetup } from "./simulators/enterprise-idp.js";

/**
 * Enterprise-managed authorization (ID-JAG): one sign-in at the enterprise IdP, then tokens for an MCP
 * server's authorization server (the real oidc-provider, with the JWT-bearer grant) without a browser.
 * The MCP server itself is never contacted (a .invalid host): the access token is checked by its claims.
 */
const MCP = "https://mcp.acme.invalid/mcp";
let e: EnterpriseSetup;
let tc: TestContext | undefined;
beforeAll(async () => {
  e = await startEnterprise({ mcpUrl: MCP });
});
afterAll(async () => e?.close());
afterEach(() => {
  tc?.cleanup();
  e.policy.allow = undefined;
});

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.trim().split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
const count = (g: Record<string, number>, k: string) => g[k] ?? 0;

async function setup(o: { asSecret?: string; browse?: boolean } = {}): Promise<TestContext> {
  const c = createTestContext({ now: Date.now(), env: { AS_SECRET: o.asSecret ?? e.as.clientSecret }, ...(o.browse !== false && { onBrowse: devBrowser() }) });
  expect(await c.run(["profiles", "add", "acme", "--issuer", e.idp.issuer, "--client-id", e.idp.clientId, "--grant", "authorization_code", "--scope", "openid", "email"]), c.stderr()).toBe(0);
  expect(await c.run(["profiles", "add", "chat", "--issuer", e.as.issuer, "--client-id", e.as.clientId, "--client-secret-env", "AS_SECRET", "--mcp-url", MCP, "--resource", MCP, "--scope", "mcp:read", "--enterprise", "acme"]), c.stderr()).toBe(0);
  return c;
}

describe("login --enterprise, then tokens without a browser", () => {
  it("one sign-in at the IdP; the MCP token comes from the ID-JAG exchange and the JWT-bearer grant", async () => {
    tc = await setup();
    const ex0 = count(e.idp.grants, TOKEN_EXCHANGE);
    expect(await tc.run(["login", "--enterprise", "acme"]), tc.stderr()).toBe(0);
    expect(tc.stderr()).toContain(`Signed in to the enterprise IdP ${e.idp.issuer}`);
    expect(tc.stderr()).toContain("✓ chat: token valid for");
    expect(tc.browsed).toHaveLength(1); // the IdP's sign-in only
    // leg 1, as the spec asks (ext-auth §4)
    const x = e.idp.exchanges.at(-1)!;
    expect(Object.fromEntries(["requested_token_type", "audience", "resource", "scope", "subject_token_type"].map((k) => [k, x.get(k)]))).toEqual({ requested_token_type: ID_JAG, audience: e.as.issuer, resource: MCP, scope: "mcp:read", subject_token_type: ID_TOKEN_TYPE });
    expect(claims(x.get("subject_token")!)).toMatchObject({ iss: e.idp.issuer, aud: e.idp.clientId, sub: "alice" }); // the ID token
    // leg 2: the ID-JAG as the assertion
    const jag = e.as.assertions.at(-1)!;
    expect(JSON.parse(Buffer.from(jag.split(".")[0]!, "base64url").toString())).toMatchObject({ typ: "oauth-id-jag+jwt" });
    expect(claims(jag)).toMatchObject({ iss: e.idp.issuer, aud: e.as.issuer, resource: MCP, client_id: e.idp.clientId, sub: "alice" });
    expect(count(e.idp.grants, TOKEN_EXCHANGE)).toBe(ex0 + 1);

    // token: from the cache, then a fresh exchange on --force-refresh, still no browser
    const before = tc.stdout().length;
    expect(await tc.run(["token", "--profile", "chat"]), tc.stderr()).toBe(0);
    const at = tc.stdout().slice(before).trim();
    expect(claims(at)).toMatchObject({ iss: e.as.issuer, aud: MCP, sub: "alice", scope: "mcp:read" }); // audience-restricted to the MCP server (§5.1)
    expect(count(e.idp.grants, TOKEN_EXCHANGE)).toBe(ex0 + 1);
    const bearer0 = count(e.as.grants, JWT_BEARER);
    tc.clock.advance(1000); // (a token got in this very second would be taken as fresh)
    expect(await tc.run(["token", "--profile", "chat", "--force-refresh"]), tc.stderr()).toBe(0);
    expect(count(e.idp.grants, TOKEN_EXCHANGE)).toBe(ex0 + 2);
    expect(count(e.as.grants, JWT_BEARER)).toBe(bearer0 + 1);
    expect(tc.browsed).toHaveLength(1);
    expect(tc.stderr()).not.toContain(x.get("subject_token")!);
  });

  it("hours later: the IdP's ID token is refreshed and exchanged again, still without a browser", async () => {
    tc = await setup();
    expect(await tc.run(["login", "--enterprise", "acme"]), tc.stderr()).toBe(0);
    const refreshes = count(e.idp.grants, "refresh_token");
    const exchanges = count(e.idp.grants, TOKEN_EXCHANGE);
    tc.clock.advance(2 * 3600_000); // past the MCP token's 10 minutes and the ID token's hour
    const before = tc.stdout().length;
    expect(await tc.run(["token", "--profile", "chat"]), tc.stderr()).toBe(0);
    expect(claims(tc.stdout().slice(before))).toMatchObject({ aud: MCP, sub: "alice" });
    expect(count(e.idp.grants, "refresh_token")).toBe(refreshes + 1);
    expect(count(e.idp.grants, TOKEN_EXCHANGE)).toBe(exchanges + 1);
    expect(tc.browsed).toHaveLength(1);
  });

  it("without a sign-in at the IdP and nobody to ask: exit 4 naming login --enterprise", async () => {
    tc = await setup({ browse: false });
    expect(await tc.run(["--non-interactive", "token", "--profile", "chat"])).toBe(4);
    expect(tc.stderr()).toContain("enterprise-managed authorization, signing in to the enterprise IdP");
    expect(tc.stderr()).toContain("mcp-auth login --enterprise acme");
  });
});

describe("each leg's failure says which leg and what to do", () => {
  it("leg 1: the IdP's administrator does not allow the MCP server (invalid_target)", async () => {
    tc = await setup();
    expect(await tc.run(["login", "acme"]), tc.stderr()).toBe(0); // an ordinary sign-in: the ID token comes by refresh
    e.policy.allow = (audience) => audience !== e.as.issuer;
    expect(await tc.run(["token", "--profile", "chat"])).toBe(4);
    expect(tc.stderr()).toContain("leg 1 of 2 (ID token → ID-JAG at the enterprise IdP)");
    expect(tc.stderr()).toContain("invalid_target");
    expect(tc.stderr()).toContain("the IdP's administrator has not allowed this client");
    expect(count(e.as.grants, JWT_BEARER)).toBeGreaterThanOrEqual(0);
  });

  it("leg 2: the MCP authorization server refuses the client (invalid_client)", async () => {
    tc = await setup({ asSecret: "not-the-secret" });
    expect(await tc.run(["login", "acme"]), tc.stderr()).toBe(0);
    expect(await tc.run(["token", "--profile", "chat"])).toBe(4);
    expect(tc.stderr()).toContain("leg 2 of 2 (ID-JAG → access token at the MCP authorization server)");
    expect(tc.stderr()).toContain("invalid_client");
    expect(tc.stderr()).toContain(`does not accept client ${e.as.clientId} for the JWT-bearer grant`);
  });
});

describe("profiles add --enterprise", () => {
  it.each([
    [["--enterprise", "nobody"], "--enterprise nobody: no such profile"],
    [["--enterprise", "m2m"], "must sign a person in at the IdP"],
    [["--enterprise", "noid"], "does not ask for the openid scope"],
    [["--enterprise", "acme", "--grant", "authorization_code"], "--grant does not apply"],
    [["--enterprise", "acme", "--use-id-token"], "cannot be combined"],
  ])("%j → exit 2: %s", async (flags, why) => {
    tc = createTestContext({ env: { S: "x" } });
    expect(await tc.run(["profiles", "add", "acme", "--issuer", "https://idp.acme.invalid", "--client-id", "c", "--grant", "authorization_code", "--scope", "openid"])).toBe(0);
    expect(await tc.run(["profiles", "add", "noid", "--issuer", "https://idp.acme.invalid", "--client-id", "c", "--grant", "authorization_code", "--scope", "email"])).toBe(0);
    expect(await tc.run(["profiles", "add", "m2m", "--issuer", "https://idp.acme.invalid", "--client-id", "c", "--client-secret-env", "S"])).toBe(0);
    expect(await tc.run(["profiles", "add", "srv", "--issuer", "https://as.acme.invalid", "--client-id", "c", "--mcp-url", MCP, ...flags])).toBe(2);
    expect(tc.stderr()).toContain(why);
  });

  it("saves a public client at the MCP authorization server when no secret is given", async () => {
    tc = createTestContext();
    expect(await tc.run(["profiles", "add", "acme", "--issuer", "https://idp.acme.invalid", "--client-id", "c", "--grant", "authorization_code", "--scope", "openid"])).toBe(0);
    expect(await tc.run(["profiles", "add", "srv", "--issuer", "https://as.acme.invalid", "--client-id", "c", "--mcp-url", MCP, "--enterprise", "acme", "--json"]), tc.stderr()).toBe(0);
    const before = tc.stdout().length;
    expect(await tc.run(["profiles", "show", "srv", "--json"])).toBe(0);
    expect(JSON.parse(tc.stdout().slice(before))).toMatchObject({ enterprise: { idp: "acme" }, grant: "client_credentials", tokenEndpointAuthMethod: "none" });
  });
});

describe("doctor", () => {
  it("checks the JWT-bearer grant at the MCP authorization server, and explains a refused leg", async () => {
    tc = await setup();
    expect(await tc.run(["login", "acme"]), tc.stderr()).toBe(0);
    e.policy.allow = () => false;
    await tc.run(["doctor", "--profile", "chat", "--json"]);
    const checks = JSON.parse(tc.stdout()).checks as Array<{ id: string; status: string; detail?: string; fix?: string }>;
    expect(checks.find((c) => c.id === "as.grants")).toMatchObject({ status: "pass", detail: expect.stringContaining("it advertises the ID-JAG grant profile") });
    const token = checks.find((c) => c.id === "token.obtain")!;
    expect(token).toMatchObject({ status: "fail" });
    expect(token.detail).toContain("leg 1 of 2");
    expect(token.fix).toContain("the IdP's administrator has not allowed this client");
  });
});

describe("profiles add --mcp-url … --enterprise: the authorization server is discovered", () => {
  it("the MCP server's metadata names the authorization server; the ID-JAG's audience is its issuer and its resource the server", async () => {
    // An MCP server that asks for a token and publishes RFC 9728 metadata naming the oidc-provider above.
    const server = createServer((req, res) => {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      if (req.url === "/.well-known/oauth-protected-resource/mcp") {
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ resource: `${base}/mcp`, authorization_servers: [e.as.issuer], scopes_supported: ["mcp:read"] }));
      }
      req.resume();
      res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"` }).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const mcp = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
    try {
      tc = createTestContext({ now: Date.now(), env: { AS_SECRET: e.as.clientSecret }, onBrowse: devBrowser() });
      expect(await tc.run(["profiles", "add", "acme", "--issuer", e.idp.issuer, "--client-id", e.idp.clientId, "--grant", "authorization_code", "--scope", "openid"])).toBe(0);
      expect(await tc.run(["profiles", "add", "found", "--mcp-url", mcp, "--enterprise", "acme"])).toBe(2);
      expect(tc.stderr()).toContain("--enterprise needs --client-id");
      expect(await tc.run(["profiles", "add", "found", "--mcp-url", mcp, "--enterprise", "acme", "--client-id", e.as.clientId, "--client-secret-env", "AS_SECRET"]), tc.stderr()).toBe(0);
      expect(await tc.run(["login", "--enterprise", "acme"]), tc.stderr()).toBe(0);
      expect(tc.stderr()).toContain("✓ found: token valid for");
      const x = e.idp.exchanges.at(-1)!;
      expect([x.get("audience"), x.get("resource"), x.get("scope")]).toEqual([e.as.issuer, mcp, "mcp:read"]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe("a CI identity (federated profile) as the enterprise IdP: refused, the ID-JAG needs a person's ID token", () => {
  const federated = [
    ["client assertion", ["--assertion-from", "github-actions"], "github-actions"],
    ["token exchange", ["--assertion-from", "env:CI_TOKEN", "--federation", "token-exchange", "--subject-token-type", "id_token"], "env:CI_TOKEN"],
  ] as const;

  it.each(federated)("profiles add --enterprise naming a %s profile → exit 2", async (_, flags, from) => {
    tc = createTestContext();
    expect(await tc.run(["profiles", "add", "ci", "--issuer", "https://idp.acme.invalid", "--client-id", "c", ...flags]), tc.stderr()).toBe(0);
    expect(await tc.run(["profiles", "add", "srv", "--issuer", "https://as.acme.invalid", "--client-id", "c", "--mcp-url", MCP, "--enterprise", "ci"])).toBe(2);
    expect(tc.stderr()).toContain(`--enterprise ci: the enterprise IdP profile "ci" is a CI identity (the token from ${from}): enterprise-managed authorization exchanges the ID token of a person's sign-in`);
    expect(tc.stderr()).toContain("give the CI token to the MCP server's authorization server itself");
  });

  it.each(federated)("token for a profile whose IdP profile became a %s profile → exit 2 before any request", async (_, flags, from) => {
    tc = await setup();
    expect(await tc.run(["profiles", "add", "acme", "--force", "--issuer", e.idp.issuer, "--client-id", e.idp.clientId, "--scope", "openid", ...flags]), tc.stderr()).toBe(0);
    const exchanges = e.idp.exchanges.length;
    const grants = { ...e.idp.grants };
    const before = tc.stderr().length;
    expect(await tc.run(["--non-interactive", "token", "--profile", "chat"])).toBe(2);
    const lines = tc.stderr().slice(before).trim().split("\n");
    expect(lines).toHaveLength(1); // one line: the reason, then what to do instead
    expect(lines[0]).toContain(`error: the enterprise IdP profile "acme" is a CI identity (the token from ${from}): enterprise-managed authorization exchanges the ID token of a person's sign-in, which a CI token cannot stand in for`);
    expect(lines[0]).toMatch(/give the CI token to the MCP server's authorization server itself: (npx )?mcp-auth profiles add SRV --issuer AS_URL --client-id ID --assertion-from SOURCE\)$/);
    expect([e.idp.exchanges.length, e.idp.grants]).toEqual([exchanges, grants]);
  });
});
