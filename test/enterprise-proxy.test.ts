import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mountMcp, type Counts } from "../src/sandbox/mcp.js";
import { BIN, ROOT, user, type Sandboxed } from "./helpers/cli.js";
import { JWT_BEARER, startEnterprise, TOKEN_EXCHANGE, type EnterpriseSetup } from "./simulators/enterprise-idp.js";

/**
 * `mcp-auth proxy --profile SRV` where SRV is an enterprise-managed (ID-JAG) profile, spawned as an MCP
 * client would. The MCP server is the product's protected MCP server (src/sandbox/mcp.ts) trusting the
 * MCP authorization server of test/simulators/enterprise-idp.ts (the real oidc-provider with the
 * JWT-bearer grant), whose access tokens live TTL seconds here: a token really expires mid-session, and
 * the proxy must get the next one by a new exchange (ID token → ID-JAG → access token), never a browser.
 */
const TTL = 5;
const CHROMIUM = `${process.execPath} ${join(ROOT, "test", "helpers", "browser.mjs")}`;
const hasChromium = existsSync("/usr/bin/chromium") || Boolean(process.env.CI);

let e: EnterpriseSetup;
let mcp: Server;
let u: Sandboxed;
const counts: Counts = { total: 0, discovery: 0, token: 0, device: 0, revocation: 0, registration: 0, mcp: 0 };
const n = (g: Record<string, number>, k: string) => g[k] ?? 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  mcp = createServer();
  await new Promise<void>((r) => mcp.listen(0, "127.0.0.1", () => r()));
  const mcpUrl = `http://127.0.0.1:${(mcp.address() as AddressInfo).port}/mcp`;
  e = await startEnterprise({ mcpUrl, accessTokenTtl: TTL });
  mountMcp(mcp, { issuer: e.as.issuer, mcpUrl, counts, protocol: "legacy" });
  u = user({ MCP_AUTH_STORE: "file", AS_SECRET: e.as.clientSecret });
  for (const args of [
    ["profiles", "add", "acme", "--issuer", e.idp.issuer, "--client-id", e.idp.clientId, "--grant", "authorization_code", "--scope", "openid"],
    ["profiles", "add", "chat", "--issuer", e.as.issuer, "--client-id", e.as.clientId, "--client-secret-env", "AS_SECRET", "--mcp-url", mcpUrl, "--scope", "mcp:read", "--enterprise", "acme"],
  ]) {
    const r = await u.run(args);
    expect(r.code, r.stderr).toBe(0);
  }
}, 60_000);
afterAll(async () => {
  mcp?.closeAllConnections();
  mcp?.close();
  await e?.close();
  u?.cleanup();
});

type Message = { id?: number; result?: { tools?: unknown[] }; error?: unknown };

describe.skipIf(!hasChromium)("mcp-auth proxy with an enterprise-managed (ID-JAG) profile", () => {
  it("serves MCP requests; when the access token expires, the next request gets a new one by a new exchange, without a browser", async () => {
    const login = await u.run(["login", "--enterprise", "acme", "--browser-command", CHROMIUM]);
    expect(login.code, login.stderr).toBe(0);
    const signIns = n(e.idp.grants, "authorization_code");
    expect(signIns).toBe(1);

    const child = spawn(process.execPath, [BIN, "proxy", "--profile", "chat", "--min-ttl", "1"], { env: u.env, stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    let pending = "";
    const waiters = new Map<number, (m: Message) => void>();
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout.on("data", (d) => {
      pending += d;
      for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n")) {
        const m = JSON.parse(pending.slice(0, nl)) as Message;
        pending = pending.slice(nl + 1);
        if (typeof m.id === "number") waiters.get(m.id)?.(m);
      }
    });
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    let id = 0;
    const request = (method: string, params?: unknown) =>
      new Promise<Message>((resolve, reject) => {
        const mine = ++id;
        const timer = setTimeout(() => reject(new Error(`no answer to ${method}\nstderr: ${stderr}`)), 30_000);
        waiters.set(mine, (m) => (clearTimeout(timer), resolve(m)));
        child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id: mine, method, params }) + "\n");
      });

    try {
      const init = await request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "0" } });
      expect(init.result, JSON.stringify(init) + stderr).toBeDefined();
      child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
      expect((await request("tools/list")).result?.tools?.length).toBeGreaterThan(0);
      const exchanges = n(e.idp.grants, TOKEN_EXCHANGE);
      const bearers = n(e.as.grants, JWT_BEARER);

      await sleep((TTL + 1) * 1000); // the token the proxy holds is expired: the server would refuse it
      const list = await request("tools/list");
      expect(list.error, JSON.stringify(list) + stderr).toBeUndefined();
      expect(list.result?.tools?.length).toBeGreaterThan(0);
      expect(n(e.idp.grants, TOKEN_EXCHANGE)).toBe(exchanges + 1); // leg 1 again, with the cached ID token
      expect(n(e.as.grants, JWT_BEARER)).toBe(bearers + 1); // leg 2 again
      expect(n(e.idp.grants, "authorization_code")).toBe(signIns); // no second sign-in
    } finally {
      child.stdin.end();
    }
    expect(await exited, stderr).toBe(0);
    expect(stderr).not.toMatch(/login|browser/i);
  }, 60_000);
});
