import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { networkInterfaces } from "node:os";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createFetch, type ResolvedAddress } from "../src/oauth/http.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { loggingProxy } from "./helpers/hostile-http.js";
import { fakeJwt } from "./helpers/hostile-idp.js";
import { startThunder } from "./simulators/thunder.js";

/**
 * A hostile MCP server (and the authorization server it names) cannot turn discovery against the
 * user's own network, and `*.localhost` is loopback whatever a resolver says. Only loopback and this
 * machine's own interface address are ever connected to: names are `.invalid` (no real resolver
 * answers them) and an injected resolver maps them to 127.0.0.1 or to that interface address.
 * Every server here counts the connections it accepts, so "refused" means "never connected to".
 * The decision tables over other addresses are in test/address-policy.test.ts.
 */

/** This machine's own non-loopback address (IPv4 first), never a link-local one. */
function ownAddress(): string | undefined {
  const all = Object.values(networkInterfaces()).flatMap((l) => l ?? []);
  const usable = all.filter((a) => !a.internal && !/^fe[89ab]/i.test(a.address) && !a.address.startsWith("169.254.") && !a.scopeid);
  return (usable.find((a) => a.family === "IPv4") ?? usable[0])?.address;
}
const OWN = ownAddress();
const hostPart = (ip: string) => (ip.includes(":") ? `[${ip}]` : ip);

interface Spy {
  host: string;
  port: number;
  base: string;
  /** Connections accepted (a refused address must stay at 0). */
  connections: number;
  requests: Array<{ method: string; url: string; host: string; body: string }>;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string, spy: Spy) => void;
const json = (res: ServerResponse, status: number, v: unknown, headers: Record<string, string> = {}) => res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(v));

const opened: Array<{ close(): Promise<void> }> = [];
let t: TestContext | undefined;
afterEach(async () => {
  t?.cleanup();
  t = undefined;
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

/** An HTTP server on host:port (0: any) that records every connection and request. */
async function spy(host: string, port = 0, handler: Handler = (_q, res) => json(res, 200, {})): Promise<Spy> {
  const server: Server = createServer();
  const s: Spy = {
    host,
    port: 0,
    base: "",
    connections: 0,
    requests: [],
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  server.on("connection", (sock: Socket) => {
    s.connections++;
    sock.on("error", () => {});
  });
  server.on("request", (req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      s.requests.push({ method: req.method ?? "", url: req.url ?? "", host: req.headers.host ?? "", body });
      handler(req, res, body, s);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  s.port = (server.address() as AddressInfo).port;
  s.base = `http://${hostPart(host)}:${s.port}`;
  opened.push(s);
  return s;
}

/** Two servers on one port: 127.0.0.1 and this machine's own address (a name can then lead to either). */
async function twins(handler?: Handler): Promise<{ lo: Spy; own: Spy }> {
  for (let i = 0; ; i++) {
    const lo = await spy("127.0.0.1", 0, handler);
    try {
      return { lo, own: await spy(OWN!, lo.port, handler) };
    } catch (e) {
      await lo.close();
      if (i > 10) throw e;
    }
  }
}

/** A resolver that knows only `names` (a list, or one answer per call); it records what it was asked. */
function resolver(names: Record<string, string[] | (() => string[])>) {
  const asked: string[] = [];
  const resolve = async (host: string): Promise<ResolvedAddress[]> => {
    asked.push(host);
    const entry = names[host];
    const list = typeof entry === "function" ? entry() : entry;
    if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return list.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
  return { resolve, asked };
}

const oneLine = (s: string) => s.trim().split("\n").filter(Boolean);

describe.skipIf(!OWN)("a server-sent URL is connected only to the address that was checked", () => {
  it("pins the connection: a resolver that answers differently the second time (DNS rebinding) is not asked again", async () => {
    const { lo, own } = await twins();
    let calls = 0;
    const r = resolver({ "mcp.rebind.invalid": [OWN!], "api.rebind.invalid": () => (++calls === 1 ? [OWN!] : ["127.0.0.1"]) });
    const f = createFetch({ timeoutMs: 5000, env: {}, resolve: r.resolve });
    const policy = { references: [`http://mcp.rebind.invalid:${lo.port}/mcp`], allowPrivateNetwork: false };
    const res = await f(`http://api.rebind.invalid:${lo.port}/meta`, { addressPolicy: policy });
    expect(res.status).toBe(200);
    expect(own.requests.map((q) => q.host)).toEqual([`api.rebind.invalid:${lo.port}`]); // Host kept, address pinned
    expect(lo.connections).toBe(0);
    // The next request asks again, gets 127.0.0.1, and is refused before connecting.
    await expect(f(`http://api.rebind.invalid:${lo.port}/meta`, { addressPolicy: policy })).rejects.toThrow(/refusing http:\/\/api\.rebind\.invalid:\d+\/meta: api\.rebind\.invalid resolves to 127\.0\.0\.1, which is this machine .*--allow-private-network/);
    expect(lo.connections).toBe(0);
  });

  it("refuses a name with one allowed and one loopback address, connecting to neither", async () => {
    const { lo, own } = await twins();
    const r = resolver({ "mcp.mixed.invalid": [OWN!], "api.mixed.invalid": [OWN!, "127.0.0.1"] });
    const f = createFetch({ timeoutMs: 5000, env: {}, resolve: r.resolve });
    const policy = { references: [`http://mcp.mixed.invalid:${lo.port}/mcp`], allowPrivateNetwork: false };
    await expect(f(`http://api.mixed.invalid:${lo.port}/x`, { addressPolicy: policy })).rejects.toThrow(/refusing .*127\.0\.0\.1/);
    expect(lo.connections + own.connections).toBe(0);
  });
});

/** The hostile MCP server: one process playing the MCP endpoint, its resource metadata and its authorization server. */
interface HostileOptions {
  resourceMetadata?: (base: string) => string;
  authorizationServers?: (base: string) => string[];
  metadata?: (base: string) => Record<string, unknown>;
}

async function hostileMcp(host: string, name: string, o: HostileOptions = {}): Promise<Spy & { url: string; issuer: string }> {
  let base = "";
  const server = await spy(host, 0, (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const prm = o.resourceMetadata?.(base) ?? `${base}/.well-known/oauth-protected-resource/mcp`;
    if (path === "/mcp") return json(res, 401, { error: "unauthorized" }, { "www-authenticate": `Bearer resource_metadata="${prm}"` });
    if (path === "/.well-known/oauth-protected-resource/mcp") return json(res, 200, { resource: `${base}/mcp`, authorization_servers: o.authorizationServers?.(base) ?? [base] });
    if (path === "/.well-known/oauth-authorization-server" || path === "/.well-known/openid-configuration") {
      return json(res, 200, {
        issuer: base,
        authorization_endpoint: `${base}/authorize`,
        token_endpoint: `${base}/token`,
        registration_endpoint: `${base}/register`,
        jwks_uri: `${base}/jwks`,
        response_types_supported: ["code"],
        grant_types_supported: ["authorization_code", "client_credentials", "refresh_token"],
        code_challenge_methods_supported: ["S256"],
        ...o.metadata?.(base),
      });
    }
    if (path === "/jwks") return json(res, 200, { keys: [] });
    if (path === "/token") return json(res, 400, { error: "invalid_client" });
    json(res, 404, { error: "not_found" });
  });
  base = `http://${name}:${server.port}`;
  return Object.assign(server, { url: `${base}/mcp`, issuer: base });
}

describe.skipIf(!OWN)("discovery from an MCP server on this machine's own address (a private-network server) cannot reach loopback", () => {
  const cases: Array<{ name: string; o: (target: string) => HostileOptions; refused: (target: string) => string; names?: Record<string, string[]> }> = [
    { name: "registration_endpoint at 127.0.0.1", o: (x) => ({ metadata: () => ({ registration_endpoint: `${x}/register` }) }), refused: (x) => `${x}/register` },
    { name: "registration_endpoint at an IPv4-mapped loopback address", o: (x) => ({ metadata: () => ({ registration_endpoint: `${x.replace("127.0.0.1", "[::ffff:127.0.0.1]")}/register` }) }), refused: (x) => `${x.replace("127.0.0.1", "[::ffff:7f00:1]")}/register` },
    { name: "registration_endpoint at a *.localhost name", o: (x) => ({ metadata: () => ({ registration_endpoint: `${x.replace("127.0.0.1", "evil.localhost")}/register` }) }), refused: (x) => `${x.replace("127.0.0.1", "evil.localhost")}/register` },
    { name: "registration_endpoint at a name that resolves to loopback", names: { "sneaky.hostile.invalid": ["127.0.0.1"] }, o: (x) => ({ metadata: () => ({ registration_endpoint: `${x.replace("127.0.0.1", "sneaky.hostile.invalid")}/register` }) }), refused: (x) => `${x.replace("127.0.0.1", "sneaky.hostile.invalid")}/register` },
    { name: "authorization_servers naming 127.0.0.1", o: (x) => ({ authorizationServers: () => [x] }), refused: (x) => `${x}/.well-known/oauth-authorization-server` },
    { name: "the challenge's resource_metadata at 127.0.0.1", o: (x) => ({ resourceMetadata: () => `${x}/prm` }), refused: (x) => `${x}/prm` },
  ];

  it.each(cases)("$name: refused in one line naming the URL and --allow-private-network (exit 3), never connected", async (c) => {
    const target = await spy("127.0.0.1");
    const mcp = await hostileMcp(OWN!, "mcp.hostile.invalid", c.o(target.base));
    const r = resolver({ "mcp.hostile.invalid": [OWN!], ...c.names });
    t = createTestContext({ resolve: r.resolve, global: { allowHttp: true } });
    expect(await t.run(["profiles", "add", "h", "--mcp-url", mcp.url])).toBe(3);
    const lines = oneLine(t.stderr());
    expect(lines, t.stderr()).toHaveLength(1);
    expect(lines[0]).toContain(`refusing ${c.refused(target.base)}`);
    expect(lines[0]).toContain("--allow-private-network");
    expect(target.connections).toBe(0);
    expect(r.asked).not.toContain("evil.localhost"); // a localhost name never goes to a resolver
  });

  it("--allow-private-network lets the registration through and says so on stderr", async () => {
    const target = await spy("127.0.0.1");
    const mcp = await hostileMcp(OWN!, "mcp.hostile.invalid", { metadata: () => ({ registration_endpoint: `${target.base}/register` }) });
    t = createTestContext({ resolve: resolver({ "mcp.hostile.invalid": [OWN!] }).resolve, global: { allowHttp: true } });
    expect(await t.run(["--allow-private-network", "profiles", "add", "h", "--mcp-url", mcp.url])).toBe(3); // the spy answers {} (no client_id)
    expect(target.requests.map((q) => `${q.method} ${q.url}`)).toEqual(["POST /register"]);
    expect(t.stderr()).toMatch(new RegExp(`warning: --allow-private-network: connecting to ${target.base.replace(/\./g, "\\.")}/register \\(127\\.0\\.0\\.1, this machine\\)`));
    expect(t.stderr()).toContain("without a usable client_id");
  });

  it("a token_endpoint at 127.0.0.1 in the issuer's metadata is refused at token time, never connected", async () => {
    const target = await spy("127.0.0.1");
    const idp = await hostileMcp(OWN!, "idp.hostile.invalid", { metadata: () => ({ token_endpoint: `${target.base}/token` }) });
    t = createTestContext({ resolve: resolver({ "idp.hostile.invalid": [OWN!] }).resolve, global: { allowHttp: true }, env: { MCP_AUTH_CLIENT_SECRET: "s3cret-value" } });
    expect(await t.run(["token", "--issuer", idp.issuer, "--client-id", "c"])).toBe(3);
    expect(oneLine(t.stderr())).toHaveLength(1);
    expect(t.stderr()).toContain(`refusing ${target.base}/token`);
    expect(target.connections).toBe(0);
  });

  it("a device_authorization_endpoint at 127.0.0.1 is refused when a device login starts, never connected", async () => {
    const target = await spy("127.0.0.1");
    const idp = await hostileMcp(OWN!, "idp.hostile.invalid", { metadata: () => ({ device_authorization_endpoint: `${target.base}/device` }) });
    t = createTestContext({ resolve: resolver({ "idp.hostile.invalid": [OWN!] }).resolve, global: { allowHttp: true } });
    expect(await t.run(["profiles", "add", "dev", "--issuer", idp.issuer, "--client-id", "c", "--grant", "device_code"])).toBe(0);
    expect(await t.run(["login", "dev", "--device"])).toBe(3);
    expect(t.stderr()).toContain(`refusing ${target.base}/device`);
    expect(target.connections).toBe(0);
  });

  it("doctor: a jwks_uri at 127.0.0.1 fails its check instead of being fetched", async () => {
    const target = await spy("127.0.0.1");
    const mcp = await hostileMcp(OWN!, "mcp.hostile.invalid", { metadata: () => ({ jwks_uri: `${target.base}/jwks` }) });
    t = createTestContext({ resolve: resolver({ "mcp.hostile.invalid": [OWN!] }).resolve, global: { allowHttp: true } });
    await t.run(["doctor", "--url", mcp.url, "--json"]);
    const { checks } = JSON.parse(t.stdout()) as { checks: Array<{ id: string; status: string; detail?: string }> };
    const jwks = checks.find((c) => c.id === "as.jwks");
    expect(jwks?.status).toBe("fail");
    expect(jwks?.detail).toContain(`refusing ${target.base}/jwks`);
    expect(jwks?.detail).toContain("--allow-private-network");
    expect(target.connections).toBe(0);
  });

  it("doctor: the CI token's iss at 127.0.0.1 is not fetched for a federated profile", async () => {
    const target = await spy("127.0.0.1");
    const idp = await hostileMcp(OWN!, "idp.hostile.invalid");
    const ci = fakeJwt({ iss: target.base, sub: "repo:o/r:ref:refs/heads/main", aud: idp.issuer, exp: Math.floor(Date.UTC(2026, 10, 29, 13) / 1000) });
    t = createTestContext({ resolve: resolver({ "idp.hostile.invalid": [OWN!] }).resolve, global: { allowHttp: true }, env: { CI_TOKEN: ci } });
    expect(await t.run(["profiles", "add", "fed", "--issuer", idp.issuer, "--client-id", "c", "--grant", "client_credentials", "--assertion-from", "env:CI_TOKEN"])).toBe(0);
    await t.run(["doctor", "--profile", "fed", "--json"]);
    const { checks } = JSON.parse(t.stdout().slice(t.stdout().indexOf('{\n  "checks"'))) as { checks: Array<{ id: string; status: string; detail?: string }> };
    const iss = checks.find((c) => c.id === "federation.issuer");
    expect(iss?.detail).toMatch(new RegExp(`^refusing ${target.base.replace(/\./g, "\\.")}/\\.well-known/openid-configuration: .*--allow-private-network`));
    expect(target.connections).toBe(0);
  });
});

describe("link-local and unspecified addresses are refused even under a loopback MCP URL and --allow-private-network", () => {
  it("a registration_endpoint at http://0.0.0.0 (which Linux connects to this machine) is never connected to", async () => {
    const target = await spy("127.0.0.1");
    const mcp = await hostileMcp("127.0.0.1", "127.0.0.1", { metadata: () => ({ registration_endpoint: `http://0.0.0.0:${target.port}/register` }) });
    t = createTestContext({ global: { allowHttp: true } }); // so that the https rule does not refuse it first
    expect(await t.run(["--allow-private-network", "profiles", "add", "h", "--mcp-url", mcp.url])).toBe(3);
    const lines = oneLine(t.stderr());
    expect(lines, t.stderr()).toHaveLength(1);
    expect(lines[0]).toMatch(/refusing http:\/\/0\.0\.0\.0:\d+\/register: 0\.0\.0\.0 is unspecified; mcp-auth never connects there/);
    expect(target.connections).toBe(0);
  });
});

describe.skipIf(!OWN)("*.localhost is this machine, whatever the resolver says", () => {
  it("plain http to a *.localhost name goes to 127.0.0.1 with its Host header; the resolver is never asked", async () => {
    const { lo, own } = await twins();
    const r = resolver({ "thunder.openchoreo.localhost": [OWN!] });
    t = createTestContext({ resolve: r.resolve });
    const res = await t.ctx.fetch(`http://thunder.openchoreo.localhost:${lo.port}/auth/credentials/authenticate`, { method: "POST", body: JSON.stringify({ username: "admin", password: "admin-pw" }) });
    expect(res.status).toBe(200);
    expect(lo.requests).toMatchObject([{ host: `thunder.openchoreo.localhost:${lo.port}`, body: expect.stringContaining("admin-pw") }]);
    expect(own.connections).toBe(0);
    expect(r.asked).toEqual([]);
  });

  it("a *.localhost name bypasses HTTPS_PROXY/HTTP_PROXY and still reaches only 127.0.0.1", async () => {
    const { lo, own } = await twins();
    const proxy = await loggingProxy();
    opened.push(proxy);
    t = createTestContext({ resolve: resolver({ "idp.localhost": [OWN!] }).resolve, env: { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: "" } });
    const res = await t.ctx.fetch(`http://idp.localhost:${lo.port}/x`, { method: "POST", body: "secret=1" });
    expect(res.status).toBe(200);
    expect(lo.requests).toHaveLength(1);
    expect(own.connections).toBe(0);
    expect(proxy.seen).toEqual([]);
  });

  it("bootstrap thunder's admin password never reaches another address a resolver gives its *.localhost URL", async () => {
    const sim = await startThunder({ era: "D" });
    opened.push(sim);
    const port = Number(new URL(sim.url).port);
    let own: Spy;
    try {
      own = await spy(OWN!, port);
    } catch {
      return; // that port is taken on the other address: nothing to prove with this pair
    }
    t = createTestContext({ resolve: resolver({ "thunder.openchoreo.localhost": [OWN!] }).resolve, env: { PW: "admin" } });
    await t.run(["bootstrap", "thunder", "--url", `http://thunder.openchoreo.localhost:${port}`, "--admin-password-env", "PW", "--name", "pinned app", "--client-id", "pinned", "--profile", "p"]);
    expect(own.connections).toBe(0);
    expect(sim.requests.length).toBeGreaterThan(0);
  });
});
