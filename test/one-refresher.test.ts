import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ROOT, user, type Sandboxed } from "./helpers/cli.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * One refresher for the whole machine (README "stdio servers and static-header clients"): `serve`,
 * `exec`, `proxy` and bursts of `token` calls, each its own process, all on ONE signed-in profile
 * whose refresh token rotates (the sandbox's oidc-provider, rotateRefreshToken: true, which revokes
 * the whole grant when a rotated-away refresh token comes back). They run side by side across
 * several token expiries (two lifetimes of 6 s tokens), each driven as a real client drives it; the
 * cross-process lock around read → refresh → save (src/store/lock.ts) is what keeps them from
 * spending one refresh token twice.
 *
 * Real time, not an injected clock: the IdP's own clock decides when its tokens expire, and the
 * consumers are separate processes, each reading the wall clock.
 */
const TTL = 6;
/**
 * The life a consumer wants from a token, scaled down with the tokens' own (the default, 60 s, is
 * longer than these tokens live: every renewal would then ask the IdP, which is correct but shares nothing).
 */
const MIN_TTL = "3";
/** How long everything runs side by side: two token lifetimes, four or five refreshes. */
const RUN_MS = 2 * TTL * 1000;
const SERVER = join(ROOT, "test", "fixtures", "stdio", "token-server.mjs");
const BROWSER = `${process.execPath} ${join(ROOT, "scripts", "bench-browser.mjs")}`;
const sb = useSandbox({ tokenTtl: TTL, protocol: "legacy" });
let u: Sandboxed;

beforeAll(async () => {
  u = user({ MCP_AUTH_STORE: "file" });
  const add = await u.run(["profiles", "add", "me", "--issuer", sb.issuer, "--client-id", sb.clients.cli.clientId, "--grant", "authorization_code", "--scope", "openid mcp:read", "--resource", sb.mcpUrl, "--mcp-url", sb.mcpUrl]);
  expect(add.code, add.stderr).toBe(0);
  // Signed in once, through oidc-provider's own pages (followed over HTTP): the profile holds a rotating refresh token.
  const login = await u.run(["login", "me", "--browser-command", BROWSER]);
  expect(login.code, login.stderr).toBe(0);
}, 60_000);
afterAll(() => u?.cleanup());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const text = (r: Awaited<ReturnType<Client["callTool"]>>) => JSON.parse((r.content as Array<{ text: string }>)[0]!.text) as Record<string, unknown>;
/** What the sandbox's whoami says for a token of this profile's sign-in. */
const SIGNED_IN = { sub: "bench", client_id: "sandbox-cli" };

describe("one refresher for the whole machine", () => {
  it("serve, exec, proxy and token, all on one rotating refresh token across several expiries: every call succeeds, refreshes are shared, nobody is asked to log in", async () => {
    const children: ChildProcess[] = [];
    const clients: Client[] = [];
    const stderr: Record<string, string> = { serve: "", exec: "", proxy: "", token: "" };
    const calls: Record<string, number> = { serve: 0, exec: 0, proxy: 0, token: 0 };
    const failures: string[] = [];
    try {
      sb.resetCounts(); // the login's authorization_code grant is not counted

      // serve: a static-header client (the SDK's Streamable HTTP client) given the printed URL and header.
      const serve = spawn(process.execPath, [BIN, "serve", "--profile", "me", "--min-ttl", MIN_TTL], { env: u.env, stdio: ["ignore", "pipe", "pipe"] });
      children.push(serve);
      serve.stderr.on("data", (d) => (stderr.serve += d));
      let out = "";
      await new Promise<void>((resolve, reject) => {
        serve.stdout.on("data", (d) => ((out += d), out.includes("\n") && resolve()));
        serve.on("exit", (code) => reject(new Error(`serve exited ${code}: ${stderr.serve}`)));
      });
      const printed = JSON.parse(out) as { url: string; headers: Record<string, string> };
      const viaServe = new Client({ name: "static-header-client", version: "0" });
      clients.push(viaServe);
      await viaServe.connect(new StreamableHTTPClientTransport(new URL(printed.url), { requestInit: { headers: printed.headers } }));

      // exec and proxy: the SDK's stdio client, as an MCP client launches them from its config.
      const stdio = async (name: "exec" | "proxy", args: string[], env: Record<string, string> = {}) => {
        const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, ...args], env: { ...u.env, ...env } as Record<string, string>, stderr: "pipe" });
        transport.stderr?.on("data", (d) => (stderr[name] += d));
        const client = new Client({ name, version: "0" });
        clients.push(client);
        await client.connect(transport);
        return client;
      };
      const viaExec = await stdio("exec", ["exec", "--profile", "me", "--min-ttl", MIN_TTL, "--", process.execPath, SERVER], { UPSTREAM_MCP_URL: sb.mcpUrl });
      const viaProxy = await stdio("proxy", ["proxy", "--profile", "me", "--min-ttl", MIN_TTL]);

      const began = Date.now();
      const running = () => Date.now() - began < RUN_MS && failures.length === 0;
      const execPids = new Set<unknown>();
      /** Calls whoami through one consumer until the run ends; the first failure ends that loop and is kept. */
      const loop = async (name: string, client: Client, check: (r: Record<string, unknown>) => void) => {
        while (running()) {
          try {
            const r = await client.callTool({ name: "whoami", arguments: {} });
            if (r.isError) throw new Error(JSON.stringify(r));
            check(text(r));
            calls[name]!++;
          } catch (e) {
            failures.push(`${name} after ${calls[name]} calls, ${Date.now() - began} ms in: ${(e as Error).message}`);
            return;
          }
          await sleep(300);
        }
      };
      const signedIn = (w: Record<string, unknown>) => expect(w).toMatchObject(SIGNED_IN);
      // token: bursts of parallel calls, as scripts and several CLIs at once would make; each token is
      // then shown to the MCP server, which must accept it. Every eighth burst has two calls with the
      // default --min-ttl, longer than these tokens live: they refresh on the launcher's own path
      // (src/fast-fetch.ts, with its own take of the lock) rather than the full CLI's, one after the
      // other, or the second takes the first one's token. A preloaded probe records what that path served each of them
      // (its SERVED marker), one file per process.
      const served = join(u.home, "served");
      mkdirSync(served);
      const probe = join(u.home, "probe.cjs");
      writeFileSync(probe, `process.on("exit", () => require("fs").writeFileSync(${JSON.stringify(served)} + "/" + process.pid, String(globalThis[Symbol.for("mcp-auth.fast-fetch.served")])));`);
      const tokens = async () => {
        for (let i = 0; running(); i++) {
          const plain = i % 8 === 0;
          const burst = await Promise.all([1, 2, 3].map((n) => (plain && n < 3 ? u.run(["token", "--profile", "me"], { env: { NODE_OPTIONS: `--require ${probe}` } }) : u.run(["token", "--profile", "me", "--min-ttl", MIN_TTL]))));
          for (const r of burst) stderr.token += r.stderr;
          const bad = burst.find((r) => r.code !== 0 || !/^ey[\w.-]+\n$/.test(r.stdout));
          if (bad) return void failures.push(`token exited ${bad.code} after ${calls.token} calls, ${Date.now() - began} ms in: ${bad.stderr}`);
          try {
            for (const t of new Set(burst.map((r) => r.stdout.trim()))) {
              const c = new Client({ name: "token-user", version: "0" });
              await c.connect(new StreamableHTTPClientTransport(new URL(sb.mcpUrl), { requestInit: { headers: { authorization: `Bearer ${t}` } } }));
              try {
                signedIn(text(await c.callTool({ name: "whoami", arguments: {} })));
              } finally {
                await c.close();
              }
            }
          } catch (e) {
            return void failures.push(`a token printed by token, ${Date.now() - began} ms in: ${(e as Error).message}`);
          }
          calls.token! += burst.length;
          await sleep(2000);
        }
      };
      await Promise.all([
        loop("serve", viaServe, signedIn),
        loop("exec", viaExec, (w) => (expect(w.upstream).toMatchObject(SIGNED_IN), execPids.add(w.pid))),
        loop("proxy", viaProxy, signedIn),
        tokens(),
      ]);
      const elapsed = Date.now() - began;
      const fast = readdirSync(served).map((f) => readFileSync(join(served, f), "utf8"));
      const report = JSON.stringify({ failures, calls, grants: sb.grants, grantErrors: sb.grantErrors, execPids: execPids.size, fast, elapsed, stderr });

      expect(failures, report).toEqual([]);
      for (const n of Object.values(calls)) expect(n, report).toBeGreaterThan(0);
      // Each call with the default --min-ttl was the fast path's: a refresh of its own, or the token
      // another process got while it waited for the lock.
      expect(fast.length, report).toBeGreaterThan(0);
      for (const f of fast) expect(["refresh", "cache"], report).toContain(f);
      // … and not the only one that refreshed: the others' renewals came between its calls.
      expect(sb.grants.refresh_token, report).toBeGreaterThan(fast.filter((f) => f === "refresh").length);
      // exec served from a new process with a new token at least twice: it renewed during the run too.
      expect(execPids.size, report).toBeGreaterThanOrEqual(3);
      // The IdP was asked for refreshes only, and never answered one with an error (a refresh token
      // spent twice would be invalid_grant, and the grant revoked).
      expect(Object.keys(sb.grants), report).toEqual(["refresh_token"]);
      expect(sb.grantErrors, report).toEqual({});
      // Several refreshes happened, but fewer than one per consumer per token lifetime: they were shared.
      const consumers = Object.keys(calls).length;
      const lifetimes = Math.ceil(elapsed / (TTL * 1000));
      expect(sb.grants.refresh_token, report).toBeGreaterThanOrEqual(3);
      expect(sb.grants.refresh_token, report).toBeLessThan(consumers * lifetimes);
      // Nobody was told to sign in again, or saw the IdP refuse.
      for (const e of Object.values(stderr)) expect(e, report).not.toMatch(/login|invalid_grant|error/i);
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
      await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.on("exit", r)))));
    }
  }, 60_000);
});
