import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NetworkError } from "../src/errors.js";
import { createFetch, isLoopbackHost, safeLocation } from "../src/oauth/http.js";
import { user, type Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";
import { droppingProxy, flood, loggingProxy, recorder, redirectingFront, type Flood, type Running } from "./helpers/hostile-http.js";
import { useSandbox } from "./helpers/sandbox.js";
import { startKeycloak } from "./simulators/keycloak.js";
import { startThunder } from "./simulators/thunder.js";

/**
 * The one fetch every request goes through, attacked from loopback: redirects that would carry a
 * password elsewhere, proxies that must not see loopback traffic, endless bodies, and a proxy that
 * drops every CONNECT (undici 7's reconnect storm).
 */
const ADMIN_PW = "Adm1n-Pa55w0rd";
const SECRET = "c1ient-s3cret-value";

let u: Sandboxed | undefined;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  u?.cleanup();
  u = undefined;
  for (const c of cleanups.splice(0)) await c();
});
function track<T extends { close(): unknown }>(x: T): T {
  cleanups.push(() => x.close());
  return x;
}

/** A tiny IdP on 127.0.0.1: discovery pointing at itself, and whatever `token` answers. */
async function hostileIdp(handlers: { discovery?: (res: ServerResponse, issuer: string) => void; token?: (req: IncomingMessage, res: ServerResponse) => void; authMethod?: string }): Promise<Running> {
  let issuer = "";
  const server: Server = createServer((req, res) => {
    if (req.url === "/.well-known/openid-configuration" || req.url === "/.well-known/oauth-authorization-server") {
      if (handlers.discovery) return handlers.discovery(res, issuer);
      res.setHeader("content-type", "application/json");
      return void res.end(JSON.stringify({ issuer, token_endpoint: `${issuer}/token`, token_endpoint_auth_methods_supported: [handlers.authMethod ?? "client_secret_basic"] }));
    }
    if (req.url === "/token" && handlers.token) return handlers.token(req, res);
    res.writeHead(404, { "content-type": "application/json" });
    res.end("{}");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return track({
    url: issuer,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  });
}

function expectNothingLeaked(stolen: { seen: Array<{ body: string; headers: IncomingMessage["headers"] }> }, ...secrets: string[]) {
  expect(stolen.seen).toEqual([]); // not one request reached the other port
  for (const s of secrets) expect(JSON.stringify(stolen.seen)).not.toContain(s);
}

describe("redirects of requests that carry credentials are never followed", () => {
  it("bootstrap keycloak: a 307 on the admin password grant sends the password nowhere, exit 3 naming the Location", async () => {
    const kc = track(await startKeycloak({ realms: ["kcp"], adminPassword: ADMIN_PW }));
    const thief = track(await recorder());
    const front = track(await redirectingFront(kc.url, (req) => req.method === "POST" && /\/protocol\/openid-connect\/token$/.test(req.url ?? ""), `http://127.0.0.1:${thief.port}/steal?next=1#x`));
    u = inProcessUser({ MCP_AUTH_STORE: "file", ADMIN_PW });
    const r = await u.run(["bootstrap", "keycloak", "--url", front.url, "--admin-password-env", "ADMIN_PW", "--realm", "kcp"]);
    expect(front.redirected.length).toBeGreaterThan(0);
    expectNothingLeaked(thief, ADMIN_PW);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`HTTP 307, redirecting to http://127.0.0.1:${thief.port}/steal`);
    expect(r.stderr).not.toMatch(/next=1|#x/);
    expect(r.stderr).not.toContain(ADMIN_PW);
  });

  it("bootstrap thunder: a 307 on /flow/execute sends the password nowhere; the authorize redirect it reads still works", async () => {
    const th = track(await startThunder({ adminPassword: ADMIN_PW }));
    const thief = track(await recorder());
    const front = track(await redirectingFront(th.url, (req) => req.method === "POST" && (req.url ?? "").startsWith("/flow/execute"), `http://127.0.0.1:${thief.port}/flow/execute`));
    u = inProcessUser({ MCP_AUTH_STORE: "file", ADMIN_PW });
    const r = await u.run(["bootstrap", "thunder", "--url", front.url, "--admin-password-env", "ADMIN_PW"]);
    expect(front.redirected.length).toBeGreaterThan(0); // got past the application-id discovery (a 302 read with redirect: manual)
    expectNothingLeaked(thief, ADMIN_PW);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`redirecting to http://127.0.0.1:${thief.port}/flow/execute`);
    expect(r.stderr).not.toContain(ADMIN_PW);
  });

  it.each(["client_secret_basic", "client_secret_post"])("token: a token endpoint answering 307 gets no second request (%s), exit 3", async (method) => {
    const thief = track(await recorder());
    const idp = await hostileIdp({
      authMethod: method,
      token: (req, res) => {
        req.resume();
        res.writeHead(307, { location: `http://eve:pw@127.0.0.1:${thief.port}/token?code=x` });
        res.end();
      },
    });
    u = inProcessUser({ MCP_AUTH_STORE: "file", CI_SECRET: SECRET });
    const r = await u.run(["token", "--issuer", idp.url, "--client-id", "c", "--client-secret-env", "CI_SECRET", "--no-cache"]);
    expectNothingLeaked(thief, SECRET, Buffer.from(`c:${SECRET}`).toString("base64"));
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`redirecting to http://127.0.0.1:${thief.port}/token;`);
    expect(r.stderr).not.toMatch(/eve|pw@|code=x/);
  });
});

describe("createFetch and redirects (in-process)", () => {
  it.each([
    ["a plain GET asking for manual (Thunder's application-id lookup) gets the 3xx itself", { redirect: "manual" }, "passed"],
    ["a GET with Authorization", { redirect: "manual", headers: { authorization: "Bearer t" } }, "refused"],
    ["a GET with a cookie", { redirect: "manual", headers: { cookie: "s=1" } }, "refused"],
    ["a POST with a body", { method: "POST", redirect: "manual", body: "password=x" }, "refused"],
    ["a plain GET asking to follow", {}, "refused"],
  ] as Array<[string, RequestInit, string]>)("%s", async (_name, init, outcome) => {
    const thief = track(await recorder());
    const server = track(await redirectingFront("http://127.0.0.1:9", () => true, `http://127.0.0.1:${thief.port}/next`));
    const f = createFetch({ timeoutMs: 5000, env: {} });
    const got = await f(`${server.url}/start`, init).then((r) => r.status, (e: unknown) => e);
    if (outcome === "passed") expect(got).toBe(307);
    else {
      expect(got).toBeInstanceOf(NetworkError);
      expect((got as Error).message).toContain(`redirecting to http://127.0.0.1:${thief.port}/next`);
    }
    expect(thief.seen).toEqual([]);
  });
});

describe("loopback never goes through a proxy", () => {
  const sb = useSandbox();

  it("a logging proxy sees nothing of a loopback issuer, whatever NO_PROXY says; other hosts still use it", async () => {
    const proxy = track(await loggingProxy());
    for (const noProxy of [undefined, "", "example.com"]) {
      u = inProcessUser({ MCP_AUTH_STORE: "file", CI_SECRET: "sandbox-secret", HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, ...(noProxy === undefined ? {} : { NO_PROXY: noProxy }) });
      const r = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "CI_SECRET", "--no-cache"]);
      expect(r.code, r.stderr).toBe(0);
      expect(proxy.seen).toEqual([]);
      u.cleanup();
    }

    // Still proxied: names that are not loopback (.invalid: never resolved, the proxy answers itself).
    u = inProcessUser({ MCP_AUTH_STORE: "file", CI_SECRET: "x", HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url });
    const tls = await u.run(["token", "--issuer", "https://idp.mcp-auth.invalid", "--client-id", "c", "--client-secret-env", "CI_SECRET", "--no-cache"]);
    expect(tls.code, tls.stderr).toBe(3);
    const plain = await u.run(["token", "--issuer", "http://idp.mcp-auth.invalid", "--allow-http", "--client-id", "c", "--client-secret-env", "CI_SECRET", "--no-cache"]);
    expect(plain.code, plain.stderr).toBe(3);
    const lines = proxy.seen.map((s) => `${s.method} ${s.url}`);
    expect(lines).toContain("CONNECT idp.mcp-auth.invalid:443");
    expect(lines.some((l) => l.startsWith("GET http://idp.mcp-auth.invalid/.well-known/"))).toBe(true);
  });

  it.each([
    ["127.0.0.1", true], ["127.8.9.10", true], ["localhost", true], ["LOCALHOST.", true], ["idp.localhost", true], ["[::1]", true], ["::1", true],
    ["[::ffff:7f00:1]", true], ["128.0.0.1", false], ["10.0.0.1", false], ["localhost.example.com", false], ["notlocalhost", false],
    ["[::2]", false], ["[::ffff:a00:1]", false], ["idp.mcp-auth.invalid", false], ["127.0.0.1.nip.io", false],
  ])("isLoopbackHost(%s) = %s", (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});

describe("response bodies are capped", () => {
  const TOTAL = 256 * 1024 * 1024;
  const HUGE = 64 * 1024 * 1024; // far above the cap, far below what was sent

  async function floodedRun(where: "discovery" | "token", contentLength: boolean, extra: string[] = []) {
    let f: Flood | undefined;
    const idp = await hostileIdp(
      where === "discovery"
        ? { discovery: (res, issuer) => (f = flood(res, TOTAL, { prefix: `{"issuer":"${issuer}","x":"`, contentLength })) }
        : { token: (req, res) => (req.resume(), (f = flood(res, TOTAL, { prefix: '{"access_token":"', contentLength }))) },
    );
    u = inProcessUser({ MCP_AUTH_STORE: "file", CI_SECRET: SECRET });
    const r = await u.run(["token", "--issuer", idp.url, "--client-id", "c", "--client-secret-env", "CI_SECRET", "--no-cache", ...extra]);
    expect(f, "the server was asked").toBeDefined();
    await f!.closed; // the CLI closed the connection...
    return { r, written: f!.written() };
  }

  it.each([
    ["discovery", false],
    ["discovery", true],
    ["token", false],
    ["token", true],
  ] as const)("a %s response of 256 MB (content-length: %s) is refused after a few MB, exit 3", async (where, contentLength) => {
    const { r, written } = await floodedRun(where, contentLength);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("is too large (over 4 MB)");
    expect(written).toBeLessThan(HUGE); // ...long before the end
  });

  it("--debug traces show at most 2000 characters of a body, without control characters", async () => {
    const idp = await hostileIdp({
      discovery: (res) => {
        res.writeHead(500, { "content-type": "text/html" });
        res.end(`<title>\u001b]0;pwned\u0007\u001b[2J</title>${"x".repeat(1024 * 1024)}`);
      },
    });
    u = inProcessUser({ MCP_AUTH_STORE: "file", CI_SECRET: SECRET });
    const r = await u.run(["token", "--issuer", idp.url, "--client-id", "c", "--client-secret-env", "CI_SECRET", "--no-cache", "--debug"]);
    expect(r.code, r.stderr).toBe(3);
    const trace = r.stderr.split("\n").find((l) => l.includes("<title>"))!;
    expect(trace).toBeDefined();
    expect(trace.length).toBeLessThan(2100);
    expect(trace).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  });
});

describe("a proxy that drops every CONNECT", () => {
  it("costs one connection per request, and the CLI exits 3 at --timeout at the latest", async () => {
    const proxy = track(await droppingProxy());
    u = inProcessUser({ MCP_AUTH_STORE: "file", CI_SECRET: SECRET, HTTPS_PROXY: proxy.url });
    // A hung process makes run() reject after 30 s (no timing assertion, just "it ended").
    const r = await u.run(["token", "--issuer", "https://idp.mcp-auth.invalid", "--client-id", "c", "--client-secret-env", "CI_SECRET", "--timeout", "2", "--no-cache"], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("idp.mcp-auth.invalid");
    expect(proxy.connections()).toBeGreaterThan(0);
    expect(proxy.connections()).toBeLessThanOrEqual(10);
  });
});

describe("the process ends when the command does", () => {
  const sb = useSandbox();

  it("exits with the command's code and full output even when a handle stays open", async () => {
    u = user({ MCP_AUTH_STORE: "file", CI_SECRET: "sandbox-secret" });
    // A leftover handle, as a proxy storm or a stray socket would leave: an interval from a preload.
    const keepAlive = join(u.home, "keep-alive.cjs");
    writeFileSync(keepAlive, "setInterval(() => {}, 1000);\n");
    const env = { NODE_OPTIONS: `--require ${keepAlive}` };
    const ok = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "CI_SECRET", "--no-cache"], { env, timeoutMs: 30_000 });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const refused = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--no-cache"], { env: { ...env, MCP_AUTH_CLIENT_SECRET: "wrong" }, timeoutMs: 30_000 });
    expect(refused.code, refused.stderr).toBe(4);
  });
});

describe("safeLocation", () => {
  it.each([
    ["http://u:p@127.0.0.1:9/a?secret=1#f", "http://127.0.0.1:9/a"],
    ["/relative?x", "http://idp.example/relative"],
    ["https://evil.example/%1B]0;x", "https://evil.example/%1B]0;x"],
    [null, "(no Location header)"],
  ])("%s → %s", (loc, shown) => {
    expect(safeLocation(loc, "http://idp.example/start")).toBe(shown);
  });
});
