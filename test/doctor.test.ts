import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandbox, type Sandbox } from "../src/sandbox/server.js";
import type { Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";
import { startKubernetesMcp, type KubernetesMcp } from "./helpers/k8s-mcp.js";

/**
 * `mcp-auth doctor` against the sandbox IdP and the real kubernetes-mcp-server, the CLI in this process
 * (the way bin/mcp-auth.js goes: the exit codes are the same map, src/cli.ts).
 */
const KCP_AUDIENCE = "urn:kcp:mcp";
let sb: Sandbox;
let k8s: KubernetesMcp;
let u: Sandboxed;
let open: Server;
let openUrl: string;

beforeAll(async () => {
  sb = await startSandbox();
  k8s = await startKubernetesMcp({ issuer: sb.issuer, audience: KCP_AUDIENCE });
  u = inProcessUser({ MCP_AUTH_STORE: "file", MCP_AUTH_CLIENT_SECRET: "sandbox-secret" });
  // An MCP server that needs no auth at all.
  open = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end('{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"open","version":"0"}}}'));
  });
  await new Promise<void>((r) => open.listen(0, "127.0.0.1", r));
  openUrl = `http://127.0.0.1:${(open.address() as AddressInfo).port}/mcp`;
}, 60_000);
afterAll(async () => {
  await k8s?.stop();
  await sb?.close();
  await new Promise((r) => open?.close(r));
  u?.cleanup();
});

async function token(resource: string): Promise<string> {
  const r = await u.run(["token", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--resource", resource]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

type Row = { id: string; status: string; what: string; detail?: string; fix?: string };
async function doctorJson(args: string[], input?: string): Promise<{ code: number | null; checks: Row[]; stderr: string }> {
  const r = await u.run(["doctor", ...args, "--json"], { input });
  const { checks } = JSON.parse(r.stdout) as { checks: Row[] };
  return { code: r.code, checks, stderr: r.stderr };
}
const byId = (checks: Row[], id: string) => checks.find((c) => c.id === id);

describe("mcp-auth doctor", () => {
  it("a good token for the sandbox MCP server: every check ✓, exit 0", async () => {
    const tok = await token(sb.mcpUrl);
    const r = await u.run(["doctor", "--url", sb.mcpUrl, "--token-stdin"], { input: tok });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/^[✗!-] /m);
    for (const what of ["MCP server reachable", "MCP server asks for a Bearer token", "protected-resource metadata", "authorization server metadata", "JWKS publicly readable", "token lifetime", "token issuer", "token audience", "MCP server answers with the token"]) {
      expect(r.stdout).toMatch(new RegExp(`^✓ ${what}`, "m"));
    }
    expect(r.stdout + r.stderr).not.toContain(tok);
  });

  it("a good token for kubernetes-mcp-server: nothing fails, the proxied metadata is a warning, exit 0", async () => {
    const { code, checks } = await doctorJson(["--url", k8s.url, "--token-stdin"], await token(KCP_AUDIENCE));
    expect(code, JSON.stringify(checks, null, 1)).toBe(0);
    expect(checks.filter((c) => c.status === "fail")).toEqual([]);
    expect(byId(checks, "as.metadata")).toMatchObject({ status: "warn", detail: expect.stringContaining(`serves ${sb.issuer}'s metadata`) });
    expect(byId(checks, "token.audience")).toMatchObject({ status: "pass", detail: expect.stringContaining(KCP_AUDIENCE) });
    expect(byId(checks, "mcp.initialize")).toMatchObject({ status: "pass" });
  });

  it("a server that expects another audience: the audience finding names both values and the bootstrap fix, exit 1", async () => {
    const r = await u.run(["doctor", "--url", k8s.url, "--token-stdin"], { input: await token(sb.mcpUrl) });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`✗ token audience: invalid audience: the token's aud is ${sb.mcpUrl}, the server expects ${KCP_AUDIENCE}`);
    expect(r.stdout).toContain(`fix: make the IdP put ${KCP_AUDIENCE} in aud, e.g. mcp-auth bootstrap keycloak --audience ${KCP_AUDIENCE}`);
    expect(r.stdout).toMatch(/✗ MCP server answers with the token: the server answered 401: it refused the token \(invalid_token/);
    // The other checks still ran.
    expect(r.stdout).toMatch(/✓ JWKS publicly readable/);
  });

  it("an expired token: the expiry finding with its fix, exit 1", async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const expired = `${b64({ alg: "RS256", kid: "x" })}.${b64({ iss: sb.issuer, aud: KCP_AUDIENCE, exp: Math.floor(Date.now() / 1000) - 3 * 3600 })}.c2ln`;
    const { code, checks } = await doctorJson(["--url", k8s.url, "--token-stdin"], expired);
    expect(code).toBe(1);
    expect(byId(checks, "token.expiry")).toEqual({ id: "token.expiry", status: "fail", what: "token lifetime", detail: "expired 3 h ago", fix: "get a fresh one: mcp-auth token --force-refresh" });
    expect(byId(checks, "token.issuer")).toMatchObject({ status: "pass" });
    expect(byId(checks, "mcp.initialize")).toMatchObject({ status: "fail" });
  });

  it("a token from another issuer, or not yet valid: the issuer and lifetime findings name both sides, exit 1", async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const forged = `${b64({ alg: "RS256" })}.${b64({ iss: "https://public.example", aud: KCP_AUDIENCE, nbf: now + 3600, exp: now + 7200 })}.c2ln`;
    const { code, checks } = await doctorJson(["--url", k8s.url, "--token-stdin"], forged);
    expect(code).toBe(1);
    expect(byId(checks, "token.issuer")).toMatchObject({ status: "fail", detail: `the token's iss is https://public.example, the server trusts ${sb.issuer}`, fix: expect.stringContaining("authorization_url") });
    expect(byId(checks, "token.expiry")).toMatchObject({ status: "fail", detail: "not valid yet (nbf in 60 min)" });
    expect(byId(checks, "token.audience")).toMatchObject({ status: "pass" });
  });

  it("a server that needs no auth is reported as such (pass), exit 0", async () => {
    const r = await u.run(["doctor", "--url", openUrl]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("✓ MCP server needs no authentication: it answered without a token");
  });

  it("--json: {checks:[{id,status,what,detail,fix}]}, fix only where something is to be done", async () => {
    const { checks } = await doctorJson(["--url", k8s.url]);
    expect(checks.length).toBeGreaterThan(3);
    for (const c of checks) {
      expect(Object.keys(c).every((k) => ["id", "status", "what", "detail", "fix"].includes(k))).toBe(true);
      expect(["pass", "fail", "warn", "skip"]).toContain(c.status);
      expect(c.id).toMatch(/^[a-z]+\.[a-z-]+$/);
      if (c.status === "pass") expect(c.fix).toBeUndefined();
    }
    expect(byId(checks, "server.auth")).toMatchObject({ status: "pass", detail: expect.stringContaining(`audience=${KCP_AUDIENCE}`) });
    expect(byId(checks, "token.obtain")).toMatchObject({ status: "skip", fix: expect.any(String) });
    expect(byId(checks, "mcp.initialize")).toMatchObject({ status: "skip" });
  });

  it("with a profile: the profile's token and MCP URL", async () => {
    const add = await u.run(["profiles", "add", "kcp", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "MCP_AUTH_CLIENT_SECRET", "--grant", "client_credentials", "--resource", KCP_AUDIENCE, "--mcp-url", k8s.url]);
    expect(add.code, add.stderr).toBe(0);
    const { code, checks } = await doctorJson(["--profile", "kcp"]);
    expect(code, JSON.stringify(checks, null, 1)).toBe(0);
    expect(byId(checks, "token.obtain")).toMatchObject({ status: "pass" });
    expect(byId(checks, "as.grants")).toMatchObject({ status: "pass" });
    // decode reads the same profile's token: claims shown, the token never.
    const d = await u.run(["decode", "--profile", "kcp"]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(new RegExp(`aud\\s+${KCP_AUDIENCE}`));
    expect(d.stdout).toMatch(/client_id\s+sandbox-m2m/);
    expect(d.stdout).toMatch(/exp\s+.*\(expires in \d+ min\)/);
    const tok = (await u.run(["token", "--profile", "kcp"])).stdout.trim();
    expect(d.stdout).not.toContain(tok);
  });
});
