import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext, type TestContext, type TestContextOptions } from "./helpers/context.js";

/**
 * MCP-native setup from nothing but a server URL (`profiles add NAME --mcp-url URL`, `login URL`): the
 * discovery matrix of the MCP authorization spec (../shared/research/clients-and-spec.md §5.3, §6.2),
 * each case a server on 127.0.0.1:0 that publishes (or misplaces, or withholds) what the spec asks for.
 */
interface Fixture {
  /** Where the protected-resource metadata is: named in the challenge, path-suffixed, at the root, or nowhere. */
  prm?: "header" | "path" | "root" | "none";
  /** What the MCP endpoint answers without a token. */
  mcpStatus?: number;
  /** The challenge's extra parameters (besides resource_metadata). */
  challenge?: string;
  prmExtra?: Record<string, unknown>;
  /** The authorization server's issuer path ("" = at the root). */
  asPath?: string;
  /** Which well-known URL serves the AS metadata. */
  asAt?: "rfc8414" | "oidc";
  asExtra?: Record<string, unknown>;
  dcr?: "ok" | "401" | "none" | "secret" | "trusted-hosts";
  /** Client ids the token endpoint refuses with invalid_client. */
  forgotten?: string[];
}

const servers: Server[] = [];
let t: TestContext | undefined;
afterEach(async () => {
  t?.cleanup();
  t = undefined;
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function fixture(f: Fixture = {}) {
  const hits: string[] = [];
  const registered: Array<Record<string, unknown>> = [];
  const tokenRequests: URLSearchParams[] = [];
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => route(req, res, body));
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  servers.push(srv);
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const mcpUrl = `${base}/mcp`;
  const issuer = `${base}${f.asPath ?? ""}`;
  const prm = f.prm ?? "header";
  const prmUrl = prm === "header" ? `${base}/meta/prm.json` : prm === "path" ? `${base}/.well-known/oauth-protected-resource/mcp` : `${base}/.well-known/oauth-protected-resource`;
  const asUrl = f.asAt === "oidc" ? `${base}/.well-known/openid-configuration${f.asPath ?? ""}` : `${base}/.well-known/oauth-authorization-server${f.asPath ?? ""}`;
  const json = (res: ServerResponse, status: number, v: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(v));
  function route(req: IncomingMessage, res: ServerResponse, body: string) {
    const url = `${base}${req.url}`;
    hits.push(`${req.method} ${req.url}`);
    if (req.url === "/mcp") {
      const status = f.mcpStatus ?? 401;
      if (status === 200) return json(res, 200, { jsonrpc: "2.0", id: 1, result: { protocolVersion: "2025-06-18", capabilities: {}, serverInfo: { name: "open", version: "0" } } });
      const params = [prm === "header" ? `resource_metadata="${prmUrl}"` : "", f.challenge ?? ""].filter(Boolean).join(", ");
      return res.writeHead(status, { "www-authenticate": `Bearer${params ? ` ${params}` : ""}` }).end();
    }
    if (prm !== "none" && url === prmUrl) return json(res, 200, { resource: mcpUrl, authorization_servers: [issuer], ...f.prmExtra });
    if (url === asUrl) {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        response_types_supported: ["code"],
        code_challenge_methods_supported: ["S256"],
        ...(f.dcr === "none" ? {} : { registration_endpoint: `${issuer}/register` }),
        ...f.asExtra,
      });
    }
    if (url === `${issuer}/register` && req.method === "POST") {
      // Thunder's answer to anonymous DCR (../shared/research/idp-apis.md §1.7).
      if (f.dcr === "401") return json(res, 401, { error: "unauthorized_client", error_description: "Authentication with sufficient permissions is required to register a client" });
      // Keycloak's Trusted Hosts policy (idp-apis.md §2.4).
      if (f.dcr === "trusted-hosts") return json(res, 403, { error: "insufficient_scope", error_description: "Policy 'Trusted Hosts' rejected request to client-registration service. Details: URI doesn't match any trusted host or trusted domain" });
      const meta = JSON.parse(body) as Record<string, unknown>;
      registered.push(meta);
      const secret = f.dcr === "secret" ? { client_secret: "dcr-secret-value", token_endpoint_auth_method: "client_secret_basic" } : { token_endpoint_auth_method: "none" };
      return json(res, 201, { ...meta, client_id: `client-${registered.length}`, ...secret });
    }
    if (url === `${issuer}/token` && req.method === "POST") {
      const p = new URLSearchParams(body);
      tokenRequests.push(p);
      if ((f.forgotten ?? []).includes(p.get("client_id") ?? "")) return json(res, 401, { error: "invalid_client", error_description: "client not found" });
      return json(res, 200, { access_token: `at-for-${p.get("client_id")}`, token_type: "Bearer", expires_in: 3600, refresh_token: "rt-1", scope: p.get("scope") ?? undefined });
    }
    res.writeHead(404).end("not found");
  }
  return { base, mcpUrl, issuer, prmUrl, hits, registered, tokenRequests };
}

function ctx(o: TestContextOptions = {}): TestContext {
  return (t = createTestContext({ env: { MCP_AUTH_STORE: "file" }, ...o }));
}
const profile = (tc: TestContext, name: string) => tc.ctx.config().profiles[name];

describe("profiles add NAME --mcp-url URL (no --issuer): the discovery matrix", () => {
  it("header-provided metadata URL: used as given; AS at the root; DCR as a native public client", async () => {
    const s = await fixture({ prm: "header" });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl]), tc.stderr()).toBe(0);
    expect(profile(tc, "p")).toMatchObject({ issuer: s.issuer, clientId: "client-1", grant: "authorization_code", resource: s.mcpUrl, mcpUrl: s.mcpUrl, tokenEndpointAuthMethod: "none", extra: { discovered: true, registration: "dcr", resourceMetadata: s.prmUrl } });
    expect(s.hits.filter((h) => h.includes("oauth-protected-resource"))).toEqual([]);
    expect(s.registered[0]!.client_name).toMatch(/^mcp-auth on .+ [0-9a-f]{6}$/); // unique: Thunder refuses a repeated name
    expect(s.registered[0]).toMatchObject({ application_type: "native", token_endpoint_auth_method: "none", grant_types: ["authorization_code", "refresh_token"], response_types: ["code"] });
    expect(s.registered[0]!.redirect_uris).toEqual([expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)]);
    expect(profile(tc, "p")!.redirectPort).toBe(Number(new URL((s.registered[0]!.redirect_uris as string[])[0]!).port));
    expect(tc.stderr()).toContain(`Saved profile "p": ${s.mcpUrl} → authorization server ${s.issuer}, client client-1 (registered just now)`);
  });

  it("path-suffixed metadata: /.well-known/oauth-protected-resource/mcp, the root is not needed", async () => {
    const s = await fixture({ prm: "path" });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl]), tc.stderr()).toBe(0);
    expect(profile(tc, "p")!.extra).toMatchObject({ resourceMetadata: s.prmUrl });
    expect(s.hits).not.toContain("GET /.well-known/oauth-protected-resource");
  });

  it("root only: found after the path-suffixed URL 404s", async () => {
    const s = await fixture({ prm: "root", prmExtra: { resource: undefined } });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl]), tc.stderr()).toBe(0);
    expect(s.hits.filter((h) => h.includes("oauth-protected-resource"))).toEqual(["GET /.well-known/oauth-protected-resource/mcp", "GET /.well-known/oauth-protected-resource"]);
    // No `resource` in the metadata: the server's canonical URI is sent (the spec: "regardless").
    expect(profile(tc, "p")!.resource).toBe(s.mcpUrl);
  });

  it("no protected-resource metadata at all: exit 3, and --issuer is the way through", async () => {
    const s = await fixture({ prm: "none" });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl])).toBe(3);
    expect(tc.stderr()).toContain("publishes no protected-resource metadata (RFC 9728)");
    expect(tc.stderr()).toContain("--issuer");
    const tc2 = ctx();
    expect(await tc2.run(["login", s.mcpUrl, "--issuer", s.issuer, "--no-browser", "--login-timeout", "0.2"])).toBe(4); // set up, then nobody signs in
    expect(profile(tc2, "127.0.0.1-" + new URL(s.base).port)).toMatchObject({ issuer: s.issuer, clientId: "client-1" });
  });

  it("an OIDC-only authorization server: RFC 8414 404s, OpenID discovery is used", async () => {
    const s = await fixture({ asAt: "oidc" });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl]), tc.stderr()).toBe(0);
    expect(s.hits).toContain("GET /.well-known/oauth-authorization-server");
    expect(s.hits).toContain("GET /.well-known/openid-configuration");
  });

  it("an authorization server with a path: RFC 8414 path insertion, the issuer keeps its path", async () => {
    const s = await fixture({ asPath: "/tenant1" });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl]), tc.stderr()).toBe(0);
    expect(profile(tc, "p")!.issuer).toBe(`${s.base}/tenant1`);
    expect(s.hits).toContain("GET /.well-known/oauth-authorization-server/tenant1");
  });

  it("missing code_challenge_methods_supported: refused (exit 3) unless --allow-missing-pkce-metadata", async () => {
    const s = await fixture({ asExtra: { code_challenge_methods_supported: undefined } });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl])).toBe(3);
    expect(tc.stderr()).toContain("does not advertise PKCE");
    expect(tc.stderr()).toContain("--allow-missing-pkce-metadata");
    expect(s.registered).toEqual([]); // refused before registering anything
    const tc2 = ctx();
    expect(await tc2.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl, "--allow-missing-pkce-metadata"]), tc2.stderr()).toBe(0);
    expect(tc2.stderr()).toContain("note: the authorization server does not advertise PKCE");
  });

  it("PKCE without S256 is refused, whatever the flag", async () => {
    const s = await fixture({ asExtra: { code_challenge_methods_supported: ["plain"] } });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl, "--allow-missing-pkce-metadata"])).toBe(3);
    expect(tc.stderr()).toContain("does not support PKCE with S256 (code_challenge_methods_supported: plain)");
  });

  it("issuer mismatch: metadata naming another issuer that does not confirm itself is refused (exit 3)", async () => {
    const s = await fixture({ asExtra: { issuer: "http://127.0.0.1:1/other" } });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl])).toBe(3);
    expect(tc.stderr()).toContain("issuer mismatch");
    expect(tc.ctx.config().profiles.p).toBeUndefined();
  });

  it("protected-resource metadata about another server is refused (RFC 9728 §3.3)", async () => {
    const s = await fixture({ prmExtra: { resource: "http://127.0.0.1:1/elsewhere" } });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl])).toBe(3);
    expect(tc.stderr()).toContain("is for http://127.0.0.1:1/elsewhere, not");
  });

  it("DCR refused with 401 (Thunder, Keycloak without policy): exit 4 naming the admin-created-client way", async () => {
    const s = await fixture({ dcr: "401" });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl])).toBe(4);
    expect(tc.stderr()).toContain("refused dynamic client registration (HTTP 401: Authentication with sufficient permissions is required to register a client)");
    expect(tc.stderr()).toContain("mcp-auth bootstrap thunder");
  });

  it("Keycloak's Trusted Hosts policy: exit 4 naming the host to add and where", async () => {
    const s = await fixture({ dcr: "trusted-hosts" });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl])).toBe(4);
    expect(tc.stderr()).toContain("Keycloak refused the registration: Policy 'Trusted Hosts' rejected request");
    expect(tc.stderr()).toContain("add 127.0.0.1 (the loopback redirect's host) to the realm's Trusted Hosts policy");
  });

  it("CIMD supported: the metadata document URL is the client id, nothing is registered", async () => {
    const s = await fixture({ asExtra: { client_id_metadata_document_supported: true } });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl, "--client-metadata-url", "https://me.invalid/mcp-auth.json"]), tc.stderr()).toBe(0);
    expect(profile(tc, "p")).toMatchObject({ clientId: "https://me.invalid/mcp-auth.json", extra: { registration: "cimd" } });
    expect(s.registered).toEqual([]);
  });

  it("CIMD not supported: --client-metadata-url is set aside (with a note) and DCR is used", async () => {
    const s = await fixture();
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl, "--client-metadata-url", "https://me.invalid/mcp-auth.json"]), tc.stderr()).toBe(0);
    expect(profile(tc, "p")!.clientId).toBe("client-1");
    expect(tc.stderr()).toContain("does not support Client ID Metadata Documents");
  });

  it.each([
    ["http://me.invalid/doc.json", "refusing plain http:// for --client-metadata-url"],
    ["https://me.invalid/", "with a path"],
  ])("a client metadata URL that cannot be a client_id (%s) is refused (exit 2)", async (url, msg) => {
    const s = await fixture({ asExtra: { client_id_metadata_document_supported: true } });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl, "--client-metadata-url", url])).toBe(2);
    expect(tc.stderr()).toContain(msg);
  });

  it("a pre-registered client (--client-id) wins over registration", async () => {
    const s = await fixture();
    const tc = ctx({ stdin: "s3cret" });
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl, "--client-id", "given", "--client-secret-stdin"]), tc.stderr()).toBe(0);
    expect(profile(tc, "p")).toMatchObject({ clientId: "given", issuer: s.issuer, secretStore: "file", extra: { registration: "pre-registered" } });
    expect(s.registered).toEqual([]);
  });

  it("no registration offered: a person is asked for a client id; without one, exit 2 naming --client-id", async () => {
    const s = await fixture({ dcr: "none" });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl])).toBe(2);
    expect(tc.stderr()).toContain("offers no way to register a client");
    expect(tc.stderr()).toContain("--client-id ID");
    const tc2 = ctx({ interactive: true, answers: ["typed-client"] });
    expect(await tc2.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl]), tc2.stderr()).toBe(0);
    expect(tc2.asked[0]).toContain("offers no client registration");
    expect(profile(tc2, "p")).toMatchObject({ clientId: "typed-client", extra: { registration: "entered" } });
  });

  it("a server that insists on a confidential client: its secret goes to the secret store, never the config", async () => {
    const s = await fixture({ dcr: "secret" });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl]), tc.stderr()).toBe(0);
    expect(profile(tc, "p")).toMatchObject({ clientId: "client-1", tokenEndpointAuthMethod: "client_secret_basic", secretStore: "file" });
    expect(readFileSync(join(tc.ctx.paths.dir, "config.json"), "utf8")).not.toContain("dcr-secret-value");
    expect(readFileSync(join(tc.ctx.paths.dir, "registrations.json"), "utf8")).not.toContain("dcr-secret-value");
    expect(await (await tc.ctx.secrets()).get("client-secret:p")).toBe("dcr-secret-value");
    // Traced with --debug, the registration's answer never shows the secret.
    const tc2 = ctx();
    expect(await tc2.run(["--debug", "profiles", "add", "q", "--mcp-url", `${s.mcpUrl}/`, "--force"]), tc2.stderr()).toBe(0);
    expect(tc2.stderr()).not.toContain("dcr-secret-value");
  });

  it.each<[string, Fixture, string[], string[] | undefined]>([
    ["the challenge's scope wins over scopes_supported", { challenge: 'scope="files:read"', prmExtra: { scopes_supported: ["a", "b"] } }, [], ["files:read"]],
    ["scopes_supported when the challenge names none", { prmExtra: { scopes_supported: ["a", "b"] } }, [], ["a", "b"]],
    ["none at all: no scope parameter", {}, [], undefined],
    ["--scope overrides both", { challenge: 'scope="files:read"' }, ["--scope", "x", "y"], ["x", "y"]],
  ])("scope selection: %s", async (_n, f, flags, scopes) => {
    const s = await fixture(f);
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl, ...flags]), tc.stderr()).toBe(0);
    expect(profile(tc, "p")!.scopes).toEqual(scopes);
    expect(s.registered[0]!.scope).toBe(scopes?.join(" "));
  });

  it("--no-resource: no resource indicator is saved (for servers that reject it)", async () => {
    const s = await fixture();
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl, "--no-resource"]), tc.stderr()).toBe(0);
    expect(profile(tc, "p")!.resource).toBeUndefined();
    expect(profile(tc, "p")!.extra).toMatchObject({ noResource: true });
  });

  it("a server that needs no authentication is reported as such, and no profile is saved", async () => {
    const s = await fixture({ mcpStatus: 200 });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl])).toBe(2);
    expect(tc.stderr()).toContain("needs no authentication");
    const tc2 = ctx();
    expect(await tc2.run(["login", s.mcpUrl])).toBe(0);
    expect(tc2.stderr()).toContain("needs no authentication, so there is nothing to log in to");
    expect(Object.keys(tc2.ctx.config().profiles)).toEqual([]);
  });

  it("a URL that is not a protected MCP endpoint (404) is named as such (exit 3)", async () => {
    const s = await fixture({ mcpStatus: 404 });
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl])).toBe(3);
    expect(tc.stderr()).toContain("answered 404 to MCP's server/discover and initialize");
  });

  it("registrations are kept per authorization server and reused by the next profile", async () => {
    const s = await fixture();
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "a", "--mcp-url", s.mcpUrl]), tc.stderr()).toBe(0);
    expect(await tc.run(["profiles", "add", "b", "--mcp-url", `${s.mcpUrl}/`]), tc.stderr()).toBe(0);
    expect(s.registered).toHaveLength(1);
    expect(profile(tc, "b")).toMatchObject({ clientId: "client-1", redirectPort: profile(tc, "a")!.redirectPort, mcpUrl: s.mcpUrl }); // canonical: no trailing slash
    expect(tc.stderr()).toContain("(registered before)");
  });
});

describe("login URL", () => {
  /** Plays the browser: follows the authorization URL straight to the loopback redirect with a code. */
  const browser = (issuer: string) => async (url: string) => {
    const u = new URL(url);
    void fetch(`${u.searchParams.get("redirect_uri")}?code=the-code&state=${u.searchParams.get("state")}&iss=${encodeURIComponent(issuer)}`).catch(() => {});
  };

  it("discovers, registers, signs in with PKCE S256 and resource on both requests, and saves a profile named after the host", async () => {
    const s = await fixture({ challenge: 'scope="files:read"' });
    const seen: URL[] = [];
    const tc = ctx({ onBrowse: (url) => (seen.push(new URL(url)), browser(s.issuer)(url)) });
    expect(await tc.run(["login", s.mcpUrl]), tc.stderr()).toBe(0);
    const name = `127.0.0.1-${new URL(s.base).port}`;
    expect(profile(tc, name)).toMatchObject({ mcpUrl: s.mcpUrl, issuer: s.issuer, clientId: "client-1", scopes: ["files:read"] });
    const auth = seen[0]!.searchParams;
    expect(Object.fromEntries(["client_id", "code_challenge_method", "resource", "scope"].map((k) => [k, auth.get(k)]))).toEqual({ client_id: "client-1", code_challenge_method: "S256", resource: s.mcpUrl, scope: "files:read" });
    expect(s.tokenRequests[0]!.get("resource")).toBe(s.mcpUrl);
    expect(s.tokenRequests[0]!.get("code_verifier")).toBeTruthy();
    expect(tc.stderr()).toContain(`saved as profile "${name}"`);
    // The profile is an ordinary one now: token serves the cached token.
    expect(await tc.run(["token", "--profile", name]), tc.stderr()).toBe(0);
    expect(tc.stdout()).toContain("at-for-client-1");
  });

  it("an issuer with a path published only by OIDC path insertion: found for setup, and again for the login", async () => {
    const s = await fixture({ asPath: "/tenant1", asAt: "oidc" });
    const tc = ctx({ onBrowse: browser(`${s.base}/tenant1`) });
    expect(await tc.run(["login", s.mcpUrl, "--profile", "t"]), tc.stderr()).toBe(0);
    expect(profile(tc, "t")!.issuer).toBe(`${s.base}/tenant1`);
    expect(s.hits.filter((h) => h === "GET /.well-known/openid-configuration/tenant1").length).toBeGreaterThanOrEqual(2);
    expect(s.tokenRequests).toHaveLength(1);
  });

  it("a dynamically registered client the server has forgotten (invalid_client) is registered again, once", async () => {
    const s = await fixture({ forgotten: ["client-1"] });
    const tc = ctx({ onBrowse: browser(s.issuer) });
    expect(await tc.run(["login", s.mcpUrl]), tc.stderr()).toBe(0);
    expect(s.registered).toHaveLength(2);
    expect(tc.stderr()).toContain("no longer knows client client-1");
    expect(profile(tc, `127.0.0.1-${new URL(s.base).port}`)!.clientId).toBe("client-2");
    const regs = JSON.parse(readFileSync(join(tc.ctx.paths.dir, "registrations.json"), "utf8"));
    expect(regs.servers[s.issuer].client_id).toBe("client-2");
  });

  it("token: a refresh refused with invalid_client clears the tokens and says that login registers a new client", async () => {
    const f: Fixture = { forgotten: [] };
    const s = await fixture(f);
    const tc = ctx({ onBrowse: browser(s.issuer) });
    expect(await tc.run(["login", s.mcpUrl, "--profile", "p"]), tc.stderr()).toBe(0);
    f.forgotten!.push("client-1"); // the server forgets the client
    tc.clock.advance(3600_000);
    expect(await tc.run(["token", "--profile", "p"])).toBe(4);
    expect(tc.stderr()).toContain('no longer knows the client mcp-auth registered for profile "p" (invalid_client)');
    expect(tc.stderr()).toContain("run: npx mcp-auth login p (it registers a new client)");
    expect(await tc.run(["login", "p"]), tc.stderr()).toBe(0);
    expect(profile(tc, "p")!.clientId).toBe("client-2");
  });

  it("login PROFILE of a discovered profile also registers a forgotten client again", async () => {
    const s = await fixture({ forgotten: ["client-1"] });
    const tc = ctx({ onBrowse: browser(s.issuer) });
    expect(await tc.run(["profiles", "add", "p", "--mcp-url", s.mcpUrl]), tc.stderr()).toBe(0);
    expect(await tc.run(["login", "p"]), tc.stderr()).toBe(0);
    expect(s.registered).toHaveLength(2);
    expect(profile(tc, "p")!.clientId).toBe("client-2");
  });

  it("a client the server keeps refusing is not registered a third time (exit 4)", async () => {
    const s = await fixture({ forgotten: ["client-1", "client-2"] });
    const tc = ctx({ onBrowse: browser(s.issuer) });
    expect(await tc.run(["login", s.mcpUrl])).toBe(4);
    expect(s.registered).toHaveLength(2);
  });

  it("an existing profile of that name for another server: exit 2 naming the conflict, nothing contacted", async () => {
    const a = await fixture();
    const b = await fixture();
    const tc = ctx();
    expect(await tc.run(["profiles", "add", "x", "--mcp-url", a.mcpUrl]), tc.stderr()).toBe(0);
    const before = b.hits.length;
    expect(await tc.run(["login", b.mcpUrl, "--profile", "x"])).toBe(2);
    expect(tc.stderr()).toContain(`profile "x" already exists for ${a.mcpUrl}, not ${b.mcpUrl}`);
    expect(b.hits.length).toBe(before);
  });

  it("an existing profile for the same server is reused: no second discovery or registration", async () => {
    const s = await fixture();
    const tc = ctx({ onBrowse: browser(s.issuer) });
    expect(await tc.run(["login", s.mcpUrl, "--profile", "x"]), tc.stderr()).toBe(0);
    const hits = s.hits.length;
    expect(await tc.run(["login", s.mcpUrl, "--profile", "x"]), tc.stderr()).toBe(0);
    expect(s.registered).toHaveLength(1);
    expect(s.hits.slice(hits).filter((h) => h.includes("well-known") || h.startsWith("POST /mcp"))).toEqual([]);
  });

  it("login PROFILE --scope X: step-up; the profile keeps X only after the new token was obtained", async () => {
    const s = await fixture({ challenge: 'scope="files:read"' });
    const tc = ctx({ stdin: "s3cret" });
    expect(await tc.run(["profiles", "add", "cc", "--mcp-url", s.mcpUrl, "--grant", "client_credentials", "--client-id", "m2m", "--client-secret-stdin"]), tc.stderr()).toBe(0);
    expect(await tc.run(["login", "cc", "--scope", "files:write"]), tc.stderr()).toBe(0);
    expect(s.tokenRequests.at(-1)!.get("scope")).toBe("files:read files:write");
    expect(profile(tc, "cc")!.scopes).toEqual(["files:read", "files:write"]);
  });

  it("URL-only flags are refused with a profile login", async () => {
    const tc = ctx();
    expect(await tc.run(["login", "dev", "--client-id", "x"])).toBe(2);
    expect(tc.stderr()).toContain("--client-id only applies to a login with an MCP server URL");
  });
});
