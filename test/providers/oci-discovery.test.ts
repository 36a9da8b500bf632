import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeJwt } from "jose";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tenantIssuer } from "../../src/providers/oci/admin.js";
import { IDCS_TOKEN_ISSUER, idcsMetadata } from "../../src/providers/oci/discovery.js";
import { createTestContext, type TestContext } from "../helpers/context.js";
import { freePort } from "../helpers/util.js";
import { discoveryDocument, startOci, type OciOptions, type OciSim } from "../simulators/oci.js";

/**
 * OCI identity domains name https://identity.oraclecloud.com/ as the issuer of their discovery
 * document (docs/idp/oci.md §7). mcp-auth accepts exactly that, for idcs-*.identity.oraclecloud.com
 * only, with every endpoint on the domain host; and a domain's custom tenant issuer (§4) is the one
 * the identity propagation trust is made for. The decisions are tables; the flows (bootstrap, token,
 * login, token exchange) run in-process against the simulated domain at its real kind of host name.
 */
const D = "https://idcs-0a1b2c3d4e5f60718293a4b5c6d7e8f9.identity.oraclecloud.com";
const HOST = new URL(D).host;
const live = () => discoveryDocument(D, "live");

describe("idcsMetadata: which documents are an identity domain's", () => {
  it("a live domain's document: endpoints kept on the domain host (:443 dropped), secure_* endpoints dropped, issuer kept", () => {
    const m = idcsMetadata(D, live())!;
    expect(m.issuer).toBe(IDCS_TOKEN_ISSUER);
    expect(m.token_endpoint).toBe(`${D}/oauth2/v1/token`);
    expect(m.jwks_uri).toBe(`${D}/admin/v1/SigningCert/jwk`);
    expect(m.introspection_endpoint).toBe(`${D}/oauth2/v1/introspect`);
    expect(Object.keys(m).filter((k) => k.startsWith("secure_"))).toEqual([]);
    expect(m.code_challenge_methods_supported).toEqual(["S256"]);
    expect(m.idcs_id_token).toBe("supported");
  });

  it("the document of Oracle's REST API example: its endpoint paths are taken on the domain host", () => {
    const m = idcsMetadata(`${D}/`, discoveryDocument(D, "documented"))!;
    expect(m).toMatchObject({ issuer: IDCS_TOKEN_ISSUER, authorization_endpoint: `${D}/oauth2/v1/authorize`, token_endpoint: `${D}/oauth2/v1/token`, end_session_endpoint: `${D}/oauth2/v1/userlogout` });
  });

  it.each([
    ["another host under identity.oraclecloud.com", "https://auth.identity.oraclecloud.com", live()],
    ["a host that only starts like a domain", `${D}.evil.example`, live()],
    ["a domain name one label short", "https://idcs-0a1b.oraclecloud.com", live()],
    ["plain http", D.replace("https:", "http:"), live()],
    ["another port", `${D}:8443`, live()],
    ["a path", `${D}/tenant`, live()],
    ["the issuer without its trailing slash", D, { ...live(), issuer: "https://identity.oraclecloud.com" }],
    ["another issuer", D, { ...live(), issuer: "https://evil.example/" }],
    ["the domain's own URL as issuer (the standard check handles it)", D, { ...live(), issuer: D }],
  ])("not a domain's documented form: %s → undefined (the standard refusal applies)", (_name, fetchedFor, doc) => {
    expect(idcsMetadata(fetchedFor, doc as Record<string, unknown>)).toBeUndefined();
  });

  it.each([
    ["a token endpoint on another host", { token_endpoint: "https://evil.example/oauth2/v1/token" }, /token_endpoint points elsewhere \(https:\/\/evil\.example\)/],
    ["a JWKS over plain http", { jwks_uri: `http://${HOST}/admin/v1/SigningCert/jwk` }, /jwks_uri points elsewhere \(http:/],
    ["an endpoint on another port", { authorization_endpoint: `${D}:444/oauth2/v1/authorize` }, /authorization_endpoint points elsewhere/],
    ["a protocol-relative endpoint", { token_endpoint: "//evil.example/oauth2/v1/token" }, /token_endpoint (points elsewhere|is not a URL)/],
    ["an endpoint with a user name", { userinfo_endpoint: `https://x:y@${HOST}/oauth2/v1/userinfo` }, /userinfo_endpoint points elsewhere/],
    ["a registration endpoint elsewhere", { registration_endpoint: "https://evil.example/register" }, /registration_endpoint points elsewhere/],
    ["a look-alike host", { revocation_endpoint: `https://${HOST}.evil.example/oauth2/v1/revoke` }, /revocation_endpoint points elsewhere/],
    ["an endpoint that is not a string", { token_endpoint: ["https://a", "https://b"] }, /token_endpoint is not a string/],
    ["no token endpoint", { token_endpoint: undefined }, /it has no token_endpoint/],
  ])("a domain's document with %s is refused outright", (_name, change, err) => {
    const doc: Record<string, unknown> = { ...live(), ...change };
    for (const [k, v] of Object.entries(change)) if (v === undefined) delete doc[k];
    expect(() => idcsMetadata(D, doc)).toThrow(err);
  });

  it("mTLS aliases and other URLs are dropped, plain data is kept", () => {
    const m = idcsMetadata(D, { ...live(), mtls_endpoint_aliases: { token_endpoint: "https://evil.example/t" }, op_policy_uri: "https://evil.example/policy", ui_locales_supported: ["en"] })!;
    expect(m).not.toHaveProperty("mtls_endpoint_aliases");
    expect(m).not.toHaveProperty("op_policy_uri");
    expect(m.ui_locales_supported).toEqual(["en"]);
  });
});

describe("tenantIssuer: the iss the domain's tokens carry (Settings issuer)", () => {
  it.each([
    ["no issuer attribute", {}, IDCS_TOKEN_ISSUER],
    ["an empty one", { issuer: "" }, IDCS_TOKEN_ISSUER],
    ["null", { issuer: null }, IDCS_TOKEN_ISSUER],
    ["a custom issuer", { issuer: "https://login.example-corp.com/" }, "https://login.example-corp.com/"],
  ])("%s → %s", (_name, settings, want) => {
    expect(tenantIssuer(settings)).toBe(want);
  });
  it.each([
    ["a number", { issuer: 42 }],
    ["a control character", { issuer: "https://a.example/\u001b[2J" }],
    ["a space", { issuer: "https://a.example/ x" }],
  ])("refuses %s", (_name, settings) => {
    expect(() => tenantIssuer(settings)).toThrow(/not a printable string/);
  });
});

describe("against the simulated domain, in-process", () => {
  let sim: OciSim | undefined;
  let t: TestContext | undefined;
  afterEach(async () => {
    t?.cleanup();
    await sim?.close();
    sim = t = undefined;
  });

  async function domain(o: OciOptions = {}): Promise<{ sim: OciSim; t: TestContext }> {
    sim = await startOci({ adminClientId: "admin-app", adminClientSecret: "admin-app-secret", ...o });
    const s = sim;
    t = createTestContext({
      now: Date.now(),
      env: { ...s.env, ADMIN: "admin-app-secret" },
      global: { caFile: s.caFile },
      // The domain's name resolves to this machine, as a real one resolves to Oracle's: requests still go
      // through the simulator's proxy, but the address checks on server-sent URLs have an address to check.
      resolve: async (host) => {
        if (host === s.host) return [{ address: "127.0.0.1", family: 4 }];
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
      },
      // The signed-in user approves at once; the browser follows the redirect to the loopback callback.
      onBrowse: async (url) => {
        const r = await s.fetch(url, { redirect: "manual" });
        await (await fetch(r.headers.get("location")!)).text();
      },
    });
    return { sim, t };
  }
  const bootstrap = (s: OciSim, c: TestContext, extra: string[] = []) =>
    c.run(["bootstrap", "oci", "--domain-url", s.url, "--admin-client-id", "admin-app", "--admin-client-secret-env", "ADMIN", "--name", "MCP server", ...extra]);

  /** A profile "user" that signs alice in with the app, and the login. */
  async function userLogin(s: OciSim, c: TestContext, scope?: string) {
    const port = await freePort();
    s.app("MCP server")!.redirectUris.push(`http://127.0.0.1:${port}/callback`);
    const app = s.app("MCP server")!;
    c.env.APP_SECRET = app.clientSecret;
    expect(await c.run(["profiles", "add", "user", "--kind", "oci", "--issuer", s.url, "--client-id", app.name, "--client-secret-env", "APP_SECRET", "--grant", "authorization_code", "--redirect-port", String(port), ...(scope ? ["--scope", scope] : [])])).toBe(0);
    return c.run(["login", "--profile", "user"]);
  }

  it.each(["live", "documented"] as const)("the %s discovery document: bootstrap's first token, token, login with an ID token, and the UPST exchange all work", async (shape) => {
    const { sim: s, t: c } = await domain({ discovery: shape });
    expect(await bootstrap(s, c, ["--token-exchange"]), c.stderr()).toBe(0);
    expect(c.stderr()).toMatch(/✓ first token/);
    expect(await c.run(["token", "--profile", "oci", "--force-refresh"]), c.stderr()).toBe(0);
    // openid: the domain returns an ID token whose iss is the documented issuer, and openid-client checks it.
    expect(await userLogin(s, c, "openid"), c.stderr()).toBe(0);
    const from = c.stdout().length;
    expect(await c.run(["token", "--profile", "user", "--exchange", "oci-upst"]), c.stderr()).toBe(0);
    expect(decodeJwt(c.stdout().slice(from).trim())).toMatchObject({ iss: IDCS_TOKEN_ISSUER, sub: "alice" });
    expect(s.exchanges).toHaveLength(1);
    // Nothing but the domain was ever contacted (Oracle's identity.oraclecloud.com included).
    expect(s.refused).toEqual([]);
    expect(s.requests.filter((r) => r.path === "/.well-known/openid-configuration").length).toBeGreaterThan(0);
  });

  it("doctor: the domain's metadata is read and its tokens' documented issuer passes, nothing else contacted", async () => {
    const { sim: s, t: c } = await domain();
    expect(await bootstrap(s, c), c.stderr()).toBe(0);
    const from = c.stdout().length;
    await c.run(["doctor", "--profile", "oci", "--json"]);
    const checks = JSON.parse(c.stdout().slice(from)).checks as Array<{ id: string; status: string; detail: string }>;
    expect(checks.find((k) => k.id === "as.metadata")).toMatchObject({ status: "pass" });
    expect(checks.find((k) => k.id === "token.issuer")).toMatchObject({ status: "pass", detail: IDCS_TOKEN_ISSUER });
    expect(s.refused).toEqual([]);
  });

  it("login <mcp-url>: an MCP server listing the domain (with :443, as Oracle's own MCP servers do) gets a profile and a signed-in user", async () => {
    const { sim: s, t: c } = await domain();
    expect(await bootstrap(s, c), c.stderr()).toBe(0);
    // A protected MCP server on loopback: 401 with its resource metadata, which names the domain.
    const mcp = createServer((req, res) => {
      const base = `http://127.0.0.1:${(mcp.address() as AddressInfo).port}`;
      if (req.method === "GET" && req.url === "/.well-known/oauth-protected-resource/mcp") {
        return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ resource: `${base}/mcp`, authorization_servers: [`${s.url}:443`], scopes_supported: ["openid"] }));
      }
      res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"` }).end();
    });
    await new Promise<void>((r) => mcp.listen(0, "127.0.0.1", r));
    try {
      const port = await freePort();
      const app = s.app("MCP server")!;
      app.redirectUris.push(`http://127.0.0.1:${port}/callback`);
      c.env.APP_SECRET = app.clientSecret;
      const url = `http://127.0.0.1:${(mcp.address() as AddressInfo).port}/mcp`;
      expect(await c.run(["login", url, "--client-id", app.name, "--client-secret-env", "APP_SECRET", "--port", String(port)]), c.stderr()).toBe(0);
      const profile = Object.values(JSON.parse(readFileSync(join(c.configDir, "config.json"), "utf8")).profiles as Record<string, { issuer: string; mcpUrl?: string }>).find((p) => p.mcpUrl === url)!;
      expect(new URL(profile.issuer).host).toBe(s.host);
      expect(s.refused).toEqual([]);
    } finally {
      mcp.closeAllConnections();
      await new Promise((r) => mcp.close(r));
    }
  });

  it("a custom tenant issuer: the trust is made for it, and the exchange of the user's token (iss = that issuer) works", async () => {
    const custom = "https://login.example-corp.com/oci";
    const { sim: s, t: c } = await domain({ tenantIssuer: custom });
    expect(await bootstrap(s, c, ["--token-exchange"]), c.stderr()).toBe(0);
    expect(s.trusts).toHaveLength(1);
    expect(s.trusts[0]).toMatchObject({ issuer: custom, clientClaimValues: [custom], active: true });
    expect(c.stderr()).toContain(`issuer ${custom} (the domain's custom issuer)`);
    expect(c.stderr()).toContain(`with iss ${custom}`);
    expect(c.ctx.config().profiles.oci!.extra).toMatchObject({ tokenIssuer: custom });
    expect(await userLogin(s, c), c.stderr()).toBe(0);
    expect(await c.run(["token", "--profile", "user", "--exchange", "oci-upst"]), c.stderr()).toBe(0);
    expect(s.exchanges).toHaveLength(1);
  });

  it.each<[string, OciOptions, RegExp]>([
    ["a token endpoint on another host", { editDiscovery: (d) => ({ ...d, token_endpoint: "https://evil.example/oauth2/v1/token" }) }, /serves metadata naming https:\/\/identity\.oraclecloud\.com\/ as its issuer \(as documented\), but its token_endpoint points elsewhere \(https:\/\/evil\.example\); refusing it/],
    ["another issuer", { editDiscovery: (d) => ({ ...d, issuer: "https://evil.example/" }) }, /discovery at https:\/\/idcs-[0-9a-f]+\.identity\.oraclecloud\.com failed: .*issuer/],
    ["the documented issuer at a host that is not a domain", { host: "auth.identity.oraclecloud.com" }, /discovery at https:\/\/auth\.identity\.oraclecloud\.com failed: .*issuer/],
  ])("%s: token exits 3 and nothing else is contacted", async (_name, o, err) => {
    const { sim: s, t: c } = await domain(o);
    const app = { name: "app-client", secret: "app-secret" };
    c.env.S = app.secret;
    expect(await c.run(["profiles", "add", "p", "--kind", "oci", "--issuer", s.url, "--client-id", app.name, "--client-secret-env", "S"])).toBe(0);
    expect(await c.run(["token", "--profile", "p"])).toBe(3);
    expect(c.stderr()).toMatch(err);
    expect(c.stdout()).toBe("");
    expect(s.refused).toEqual([]);
    expect(s.requests.filter((r) => r.path === "/oauth2/v1/token")).toEqual([]);
  });
});
