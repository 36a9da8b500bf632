import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { useSandbox } from "./helpers/sandbox.js";
import type { Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";
import { resetSecrets } from "../src/io/sanitize.js";

/** Secrets stay secret in traces; proxies are honoured; the memory store leaves nothing behind. */
const SECRET = "very-secret-client-secret-0451";
const sb = useSandbox({ clientSecret: SECRET });
let u: Sandboxed;
afterEach(() => u?.cleanup());

/**
 * The CLI in this process. Each run starts with no secret registered for scrubbing, as a new process
 * does: one registered by an earlier run would hide a leak in the next.
 */
function user(env: NodeJS.ProcessEnv): Sandboxed {
  const s = inProcessUser(env);
  return { ...s, run: (args, opts) => (resetSecrets(), s.run(args, opts)) };
}

describe("--debug", () => {
  it("traces every exchange but never a secret or a token", async () => {
    u = user({ MCP_AUTH_STORE: "file", S: SECRET });
    await u.run(["profiles", "add", "p", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "S"]);
    const r = await u.run(["token", "--debug", "--format", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const token = JSON.parse(r.stdout).access_token as string;
    expect(r.stderr).toMatch(/> POST http:\/\/127\.0\.0\.1:\d+\/token/);
    expect(r.stderr).toContain("authorization: Basic [redacted]");
    expect(r.stderr).toContain('"access_token":"[redacted]"');
    expect(r.stderr).not.toContain(SECRET);
    expect(r.stderr).not.toContain(Buffer.from(`sandbox-m2m:${SECRET}`).toString("base64"));
    expect(r.stderr).not.toContain(token);
    expect(r.stderr).not.toContain(token.split(".")[2]!);
  });

  it("shows the stack of a failure only with --debug", async () => {
    u = user({ MCP_AUTH_STORE: "file", MCP_AUTH_CLIENT_SECRET: "wrong" });
    const plain = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m"]);
    expect(plain.stderr).not.toMatch(/\n\s+at /);
    const debug = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--debug"]);
    expect(debug.code).toBe(4);
    expect(debug.stderr).toMatch(/\n\s+at /);
    expect(debug.stderr).not.toContain("wrong\n");
  });
});

describe("proxies", () => {
  let proxy: Server;
  let proxied: string[] = [];
  beforeAll(async () => {
    // A forward proxy for plain http: receives absolute URIs, forwards them, and records them.
    proxy = createServer((req, res) => {
      proxied.push(`${req.method} ${req.url}`);
      const target = new URL(req.url!);
      const up = httpRequest(target, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      up.on("error", () => res.writeHead(502).end());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
  });
  afterAll(() => {
    proxy.closeAllConnections();
    proxy.close();
  });

  it("never sends loopback requests through HTTP_PROXY, with or without NO_PROXY", async () => {
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    u = user({ MCP_AUTH_STORE: "file", MCP_AUTH_CLIENT_SECRET: SECRET, HTTP_PROXY: proxyUrl });
    proxied = [];
    const r = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--no-cache"]);
    expect(r.code, r.stderr).toBe(0);
    expect(proxied).toEqual([]); // loopback is never proxied (http-hardening.test.ts checks that other hosts are)
    proxied = [];
    const direct = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--no-cache"], { env: { NO_PROXY: "127.0.0.1" } });
    expect(direct.code, direct.stderr).toBe(0);
    expect(proxied).toEqual([]);
  });
});

describe("MCP_AUTH_STORE=memory", () => {
  it("gets tokens without persisting any", async () => {
    u = user({ MCP_AUTH_STORE: "memory", MCP_AUTH_CLIENT_SECRET: SECRET });
    const r = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m"]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(u.configDir, "tokens")) ? readdirSync(join(u.configDir, "tokens")) : []).toEqual([]);
    expect(existsSync(join(u.configDir, "secrets.json"))).toBe(false);
  });
});
