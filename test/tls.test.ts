import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { user, type Sandboxed } from "./helpers/cli.js";

/** An HTTPS IdP with a self-signed certificate: refused by default, trusted with --ca-file or NODE_EXTRA_CA_CERTS, or --insecure. */
let dir: string;
let server: Server;
let issuer: string;
let u: Sandboxed;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mcp-auth-tls-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
  server = createServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }, (req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url === "/.well-known/openid-configuration") return void res.end(JSON.stringify({ issuer, token_endpoint: `${issuer}/token` }));
    if (req.url === "/token" && req.method === "POST") return void res.end(JSON.stringify({ access_token: "tls-token", token_type: "Bearer", expires_in: 300 }));
    res.statusCode = 404;
    res.end("{}");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => u?.cleanup());

const token = (extra: string[] = [], env: NodeJS.ProcessEnv = {}) => u.run(["token", "--issuer", issuer, "--client-id", "c", "--no-cache", ...extra], { env });

describe("TLS", () => {
  it("refuses an untrusted certificate with exit 3 and says how to trust it", async () => {
    u = user({ MCP_AUTH_CLIENT_SECRET: "s", MCP_AUTH_STORE: "file" });
    const r = await token();
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toMatch(/^error: the TLS certificate of 127\.0\.0\.1:\d+ is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\) \(add its CA with --ca-file/);
  });

  it("trusts it with --ca-file or NODE_EXTRA_CA_CERTS", async () => {
    u = user({ MCP_AUTH_CLIENT_SECRET: "s", MCP_AUTH_STORE: "file" });
    const a = await token(["--ca-file", join(dir, "cert.pem")]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe("tls-token\n");
    const b = await token([], { NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") });
    expect(b.code, b.stderr).toBe(0);
  });

  it("--insecure works, with a loud warning", async () => {
    u = user({ MCP_AUTH_CLIENT_SECRET: "s", MCP_AUTH_STORE: "file" });
    const r = await token(["--insecure"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("TLS certificates are NOT verified");
  });
});
