import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { useSandbox } from "./helpers/sandbox.js";
import { user, type Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";

/** Bad servers and bad input: each must end in one clear line and a documented exit code, never a hang or a stack. */
const sb = useSandbox();
let u: Sandboxed;
let fake: Server;
let fakeUrl: string;
let respond: (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void = () => {};

beforeAll(async () => {
  fake = createServer((req, res) => respond(req, res));
  await new Promise<void>((r) => fake.listen(0, "127.0.0.1", () => r()));
  fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
});
afterAll(async () => {
  fake.closeAllConnections();
  fake.close();
});
afterEach(() => {
  u?.cleanup();
});

// In-process (inProcessUser: the launcher's fast paths, then the command tree); the real binary's
// exit codes for unknown flags and --help/--version are checked below as a process.
function ci(issuer: string, extra: string[] = []) {
  u = inProcessUser({ MCP_AUTH_STORE: "file", MCP_AUTH_CLIENT_SECRET: "sandbox-secret" });
  return u.run(["token", "--issuer", issuer, "--client-id", "sandbox-m2m", ...extra]);
}

function expectOneLine(r: { stderr: string; stdout: string }, pattern: RegExp) {
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe("");
}

describe("an IdP that misbehaves", () => {
  it("is down: exit 3", async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, "127.0.0.1", () => r()));
    const url = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((r) => dead.close(() => r()));
    const r = await ci(url);
    expect(r.code).toBe(3);
    expectOneLine(r, /cannot reach 127\.0\.0\.1:\d+: ECONNREFUSED/);
  });

  it("answers 500: exit 3", async () => {
    sb.breakIdp("500");
    const r = await ci(sb.issuer);
    expect(r.code).toBe(3);
    expectOneLine(r, /HTTP 500/);
  });

  it("answers an HTML error page: exit 3", async () => {
    sb.breakIdp("html");
    const r = await ci(sb.issuer);
    expect(r.code).toBe(3);
    expectOneLine(r, /HTTP 502 \(text\/html\)/);
  });

  it("answers malformed discovery JSON: exit 3", async () => {
    sb.breakIdp("bad-json");
    const r = await ci(sb.issuer);
    expect(r.code).toBe(3);
    expectOneLine(r, /malformed response/);
  });

  it("stalls (accepts, never answers): bounded by --timeout, exit 3", async () => {
    sb.breakIdp("stall");
    const started = Date.now();
    const r = await ci(sb.issuer, ["--timeout", "1"]);
    expect(r.code).toBe(3);
    expectOneLine(r, /timed out after 1s/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it("says it is another issuer: exit 3 with a hint", async () => {
    respond = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ issuer: "https://someone-else.example.com", token_endpoint: `${fakeUrl}/token` }));
    };
    const r = await ci(fakeUrl);
    expect(r.code).toBe(3);
    expectOneLine(r, /issuer.*match/i);
  });

  it("answers a token response that is not JSON: exit 3", async () => {
    respond = (req, res) => {
      if (req.url?.startsWith("/.well-known/")) {
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ issuer: fakeUrl, token_endpoint: `${fakeUrl}/token` }));
      }
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>login page</html>");
    };
    const r = await ci(fakeUrl);
    expect(r.code).toBe(3);
    expectOneLine(r, /expected JSON, got HTTP 200 \(text\/html\)/);
  });

  it("falls back to RFC 8414 metadata when there is no OpenID discovery", async () => {
    let tokenCalls = 0;
    respond = (req, res) => {
      if (req.url === "/.well-known/oauth-authorization-server") {
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ issuer: fakeUrl, token_endpoint: `${fakeUrl}/token` }));
      }
      if (req.url === "/token") {
        tokenCalls++;
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ access_token: "opaque-token-1", token_type: "bearer", expires_in: 600 }));
      }
      res.writeHead(404).end();
    };
    const r = await ci(fakeUrl);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("opaque-token-1\n");
    expect(tokenCalls).toBe(1);
  });
});

describe("bad input", () => {
  it("unknown flags and commands exit 2", async () => {
    u = user();
    expect((await u.run(["token", "--bogus"])).code).toBe(2);
    expect((await u.run(["frobnicate"])).code).toBe(2);
    expect((await u.run(["token", "--min-ttl", "soon", "--issuer", sb.issuer, "--client-id", "x"], { env: { MCP_AUTH_CLIENT_SECRET: "s" } })).code).toBe(2);
  });

  it("no profile at all: exit 2 with what to do", async () => {
    u = inProcessUser();
    const r = await u.run(["token"]);
    expect(r.code).toBe(2);
    expectOneLine(r, /no profile configured.*mcp-auth init, or .*mcp-auth login <mcp-url>/);
  });

  // Node's timers fire at once past 2^31 ms (24.8 days): an hour meant as "very long" must not become "now".
  it.each<[string, string[], NodeJS.ProcessEnv]>([
    ["--timeout past a day", ["--timeout", "99999999"], {}],
    ["--timeout 0", ["--timeout", "0"], {}],
    ["MCP_AUTH_TIMEOUT past a day", [], { MCP_AUTH_TIMEOUT: "1e9" }],
    ["MCP_AUTH_TIMEOUT empty", [], { MCP_AUTH_TIMEOUT: " " }],
    ["MCP_AUTH_SECRET_COMMAND_TIMEOUT past a day", [], { MCP_AUTH_SECRET_COMMAND_TIMEOUT: "3000000" }],
  ])("%s: exit 2, one line naming the bound", async (_, flags, env) => {
    // The test context reads MCP_AUTH_TIMEOUT as it is made, so a bad value goes through the real binary.
    u = env.MCP_AUTH_TIMEOUT === undefined ? inProcessUser() : user();
    const r = await u.run([...flags, "token", "--issuer", sb.issuer, "--client-id", "x", "--client-secret-cmd", "/nonexistent/op read x"], { env });
    expect(r.code).toBe(2);
    expectOneLine(r, /must be a positive number of seconds, at most 86400 \(a day\)/);
  });

  it("--help and --version exit 0 and document the exit codes", async () => {
    u = user();
    const h = await u.run(["--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("Exit codes:");
    expect(h.stdout).toMatch(/4 {2}authentication required/);
    expect((await u.run(["--version"])).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});
