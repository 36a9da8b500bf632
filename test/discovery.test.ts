import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { authServerMetadataUrls, fetchAuthServerMetadata, fetchResourceMetadata, parseWwwAuthenticate, probeMcp } from "../src/oauth/discovery.js";

/** Discovery against small servers on 127.0.0.1:0 that publish (or misplace, or forge) their metadata. */
type Routes = (base: string) => Record<string, unknown | ((req: IncomingMessage, res: ServerResponse) => void)>;
const servers: Server[] = [];
let t: TestContext | undefined;
afterEach(async () => {
  t?.cleanup();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(routes: Routes): Promise<{ base: string; hits: string[] }> {
  const hits: string[] = [];
  let table: ReturnType<Routes> = {};
  const srv = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    const r = table[req.url ?? ""];
    if (typeof r === "function") return void (r as (q: IncomingMessage, s: ServerResponse) => void)(req, res);
    if (r === undefined) return void res.writeHead(404).end("not found");
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(r));
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  servers.push(srv);
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  table = routes(base);
  return { base, hits };
}
const env = () => (t = createTestContext()).ctx;
const asDoc = (issuer: string) => ({ issuer, token_endpoint: `${issuer}/token`, authorization_endpoint: `${issuer}/auth`, jwks_uri: `${issuer}/jwks`, code_challenge_methods_supported: ["S256"] });

describe("WWW-Authenticate", () => {
  it.each<[string, string, Record<string, string> | undefined]>([
    ["quoted params", 'Bearer resource_metadata="https://m.example/.well-known/oauth-protected-resource/mcp", scope="a b"', { resource_metadata: "https://m.example/.well-known/oauth-protected-resource/mcp", scope: "a b" }],
    ["kubernetes-mcp-server", 'Bearer realm="Kubernetes MCP Server", audience="urn:kcp:mcp", error="missing_token"', { realm: "Kubernetes MCP Server", audience: "urn:kcp:mcp", error: "missing_token" }],
    ["unquoted and escaped", 'Bearer error=invalid_token, error_description="a \\"b\\""', { error: "invalid_token", error_description: 'a "b"' }],
    ["Bearer after another scheme", 'Basic realm="x", Bearer scope="mcp"', { scope: "mcp" }],
    ["no Bearer", 'Basic realm="x"', undefined],
    ["control characters are replaced", 'Bearer error="a\x1b[2Jb"', { error: "a?[2Jb" }],
  ])("%s", (_n, header, params) => {
    expect(parseWwwAuthenticate(header)?.params).toEqual(params);
  });
});

describe("protected-resource metadata (RFC 9728)", () => {
  it("path-suffixed: /.well-known/oauth-protected-resource/<path> first", async () => {
    const s = await serve((b) => ({ "/.well-known/oauth-protected-resource/tenant/mcp": { resource: `${b}/tenant/mcp`, authorization_servers: ["https://as.example"], scopes_supported: ["mcp"] }, "/.well-known/oauth-protected-resource": { authorization_servers: ["https://wrong.example"] } }));
    const m = await fetchResourceMetadata(env(), `${s.base}/tenant/mcp`);
    expect(m).toMatchObject({ how: "path", resource: `${s.base}/tenant/mcp`, authorization_servers: ["https://as.example"], scopes_supported: ["mcp"] });
  });

  it("root only: falls back to the root after the path-suffixed 404", async () => {
    const s = await serve(() => ({ "/.well-known/oauth-protected-resource": { authorization_servers: ["https://as.example"] } }));
    const m = await fetchResourceMetadata(env(), `${s.base}/mcp`);
    expect(m).toMatchObject({ how: "root", authorization_servers: ["https://as.example"] });
    expect(m!.tried.map((x) => x.status)).toEqual([404, 200]);
  });

  it("header-provided URL: used as given, the well-known ones are not tried", async () => {
    const s = await serve(() => ({ "/meta/prm.json": { authorization_servers: ["https://as.example"] } }));
    const ctx = env();
    const probe = await probeMcp(ctx, `${s.base}/mcp`).catch(() => undefined);
    expect(probe?.status).toBe(404);
    const m = await fetchResourceMetadata(ctx, `${s.base}/mcp`, `${s.base}/meta/prm.json`);
    expect(m).toMatchObject({ how: "header", url: `${s.base}/meta/prm.json` });
    expect(s.hits.filter((h) => h.includes("well-known"))).toEqual([]);
  });

  it("a header URL on plain http to a non-loopback host is refused before any request", async () => {
    await expect(fetchResourceMetadata(env(), "http://127.0.0.1:1/mcp", "http://evil.invalid/prm")).rejects.toMatchObject({ exitCode: 2 });
  });

  it("none published: undefined", async () => {
    const s = await serve(() => ({}));
    expect(await fetchResourceMetadata(env(), `${s.base}/mcp`)).toBeUndefined();
  });

  it("the probe reads a 401 challenge and the server's Date", async () => {
    const s = await serve((b) => ({ "/mcp": (_q: IncomingMessage, res: ServerResponse) => res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${b}/prm", scope="mcp:read"` }).end() }));
    const p = await probeMcp(env(), `${s.base}/mcp`);
    expect(p).toMatchObject({ status: 401, challenge: { scheme: "Bearer", params: { resource_metadata: `${s.base}/prm`, scope: "mcp:read" } } });
    expect(p.date).toBeTypeOf("number");
  });
});

describe("authorization server metadata", () => {
  it("the spec's order, with and without a path", () => {
    expect(authServerMetadataUrls("https://as.example")).toEqual(["https://as.example/.well-known/oauth-authorization-server", "https://as.example/.well-known/openid-configuration"]);
    expect(authServerMetadataUrls("https://as.example/realms/r")).toEqual([
      "https://as.example/.well-known/oauth-authorization-server/realms/r",
      "https://as.example/.well-known/openid-configuration/realms/r",
      "https://as.example/realms/r/.well-known/openid-configuration",
    ]);
  });

  it("OIDC only: RFC 8414 404s, the OIDC document is used", async () => {
    const s = await serve((b) => ({ "/.well-known/openid-configuration": asDoc(b) }));
    const m = await fetchAuthServerMetadata(env(), s.base);
    expect(m).toMatchObject({ issuer: s.base, url: `${s.base}/.well-known/openid-configuration` });
    expect(m.proxiedBy).toBeUndefined();
  });

  it("an AS with a path: found by OIDC appending after both insertions 404", async () => {
    const s = await serve((b) => ({ "/realms/r/.well-known/openid-configuration": asDoc(`${b}/realms/r`) }));
    const m = await fetchAuthServerMetadata(env(), `${s.base}/realms/r`);
    expect(m.url).toBe(`${s.base}/realms/r/.well-known/openid-configuration`);
    expect(s.hits).toEqual(["GET /.well-known/oauth-authorization-server/realms/r", "GET /.well-known/openid-configuration/realms/r", "GET /realms/r/.well-known/openid-configuration"]);
  });

  it("issuer mismatch: a document naming an issuer that does not confirm itself is refused (exit 3)", async () => {
    // The named issuer exists but its own metadata names yet another issuer.
    const other = await serve(() => ({ "/.well-known/oauth-authorization-server": asDoc("https://third.example") }));
    const liar = await serve(() => ({ "/.well-known/oauth-authorization-server": asDoc(other.base) }));
    await expect(fetchAuthServerMetadata(env(), liar.base)).rejects.toThrow(/issuer mismatch: .* own metadata does not confirm it/);
    await expect(fetchAuthServerMetadata(env(), liar.base)).rejects.toMatchObject({ exitCode: 3 });
    // Or cannot be reached at all.
    const dead = await serve(() => ({ "/.well-known/oauth-authorization-server": asDoc("http://127.0.0.1:9") }));
    await expect(fetchAuthServerMetadata(env(), dead.base)).rejects.toThrow(/issuer mismatch: .* could not be read/);
  });

  it("issuer mismatch pointing at plain http off loopback: refused without contacting it", async () => {
    const liar = await serve(() => ({ "/.well-known/oauth-authorization-server": asDoc("http://idp.invalid") }));
    await expect(fetchAuthServerMetadata(env(), liar.base)).rejects.toThrow(/issuer mismatch.*not a usable issuer/);
  });

  it("proxied metadata (kubernetes-mcp-server): the named issuer's own metadata is used, and flagged", async () => {
    const idp = await serve((b) => ({ "/.well-known/openid-configuration": asDoc(b) }));
    const proxy = await serve(() => ({ "/.well-known/oauth-authorization-server": asDoc(idp.base) }));
    const m = await fetchAuthServerMetadata(env(), proxy.base);
    expect(m).toMatchObject({ issuer: idp.base, proxiedBy: proxy.base });
    expect(idp.hits.length).toBeGreaterThan(0);
  });

  it("metadata with an endpoint on plain http off loopback is refused", async () => {
    const s = await serve((b) => ({ "/.well-known/oauth-authorization-server": { ...asDoc(b), token_endpoint: "http://idp.invalid/token" } }));
    await expect(fetchAuthServerMetadata(env(), s.base)).rejects.toThrow(/token_endpoint is plain http/);
  });
});
