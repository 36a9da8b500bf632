import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { useSandbox } from "./helpers/sandbox.js";
import { user, type Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";

/**
 * private_key_jwt (RFC 7523 §2.2) against the real oidc-provider: the public JWK mcp-auth prints is
 * registered as the client's JWKS (DCR), and oidc-provider verifies every assertion (signature, aud,
 * exp, and a jti it has not seen before). The first test runs the CLI as a process, end to end; the
 * others in-process (inProcessUser).
 */
const sb = useSandbox();
let u: Sandboxed;
afterEach(() => u?.cleanup());

const keyClient = (jwks: Record<string, unknown>[]) =>
  sb.registerClient({ token_endpoint_auth_method: "private_key_jwt", jwks: { keys: jwks }, grant_types: ["client_credentials"], response_types: [], redirect_uris: [], scope: "mcp:read mcp:write" });

function allFiles(dir: string): string {
  let text = "";
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) text += readFileSync(join(e.parentPath, e.name), "utf8");
  return text;
}

async function addKeyProfile(s: Sandboxed, extra: string[]) {
  const r = await s.run(["profiles", "add", "ci", "--issuer", sb.issuer, "--resource", sb.mcpUrl, "--client-auth", "private-key-jwt", "--json", ...extra]);
  expect(r.stderr).toContain('Saved profile "ci"');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { profile: string; jwk: Record<string, unknown> };
}

describe("private_key_jwt", () => {
  it("generates a key, prints only the public JWK, and gets tokens with fresh assertions once the IdP has it", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    const out = await addKeyProfile(u, ["--generate-key"]);
    expect(out.profile).toBe("ci");
    expect(Object.keys(out.jwk).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x", "y"]);
    expect(out.jwk.alg).toBe("ES256");

    // No client id yet (the IdP assigns it after seeing the key): a clear usage error.
    const early = await u.run(["token", "--profile", "ci"]);
    expect(early.code).toBe(2);
    expect(early.stderr).toContain("profiles set ci --client-id");

    const { client_id } = await keyClient([out.jwk]);
    expect((await u.run(["profiles", "set", "ci", "--client-id", client_id])).code).toBe(0);
    sb.resetCounts();
    const a = await u.run(["token", "--profile", "ci", "--no-cache"]);
    expect(a.stderr).toBe("");
    expect(a.code).toBe(0);
    // oidc-provider refuses a replayed jti: a second success proves a fresh assertion per request.
    const b = await u.run(["token", "--profile", "ci", "--no-cache"]);
    expect(b.code).toBe(0);
    expect(sb.grants.client_credentials).toBe(2);
    expect(JSON.parse(Buffer.from(a.stdout.split(".")[1]!, "base64url").toString()).aud).toBe(sb.mcpUrl);

    // The private key is in the secret store (the file fallback here), never in config.json.
    const cfg = readFileSync(join(u.configDir, "config.json"), "utf8");
    expect(cfg).not.toMatch(/"d"\s*:/);
    expect(cfg).toContain(String(out.jwk.kid));
    const show = await u.run(["profiles", "show", "ci", "--json"]);
    expect(show.stdout).not.toMatch(/"d"\s*:/);
  });

  it("refuses with exit 4 when the IdP has another key", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    await addKeyProfile(u, ["--generate-key", "--alg", "RS256"]);
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" });
    const { client_id } = await keyClient([{ ...other, alg: "ES256", use: "sig" }]);
    await u.run(["profiles", "set", "ci", "--client-id", client_id]);
    const r = await u.run(["token", "--profile", "ci"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("invalid_client");
  });

  it("imports a PEM key file into the secret store", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = join(u.home, "key.pem");
    writeFileSync(pem, privateKey.export({ format: "pem", type: "pkcs8" }));
    const out = await addKeyProfile(u, ["--key-file", pem]);
    expect(out.jwk.alg).toBe("RS256");
    expect(out.jwk.n).toBe(publicKey.export({ format: "jwk" }).n);
    expect(out.jwk).not.toHaveProperty("d");
    const { client_id } = await keyClient([out.jwk]);
    await u.run(["profiles", "set", "ci", "--client-id", client_id]);
    const r = await u.run(["token", "--profile", "ci"]);
    expect(r.code).toBe(0);
    // Nothing of the private key in the config or in any output.
    const d = privateKey.export({ format: "jwk" }).d!;
    expect(readFileSync(join(u.configDir, "config.json"), "utf8")).not.toContain(d);
    expect(r.stderr + JSON.stringify(out)).not.toContain(d);
    // A public key cannot sign.
    writeFileSync(pem, publicKey.export({ format: "pem", type: "spki" }));
    const bad = await u.run(["profiles", "add", "ci2", "--issuer", sb.issuer, "--client-auth", "private-key-jwt", "--key-file", pem]);
    expect(bad.code).toBe(2);
  });

  it("rotate-key: the new key is used, the old one serves until the IdP knows the new one, then is retired; a rotated-away key gets exit 4", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const first = (await addKeyProfile(u, ["--generate-key"])).jwk;
    const c1 = await keyClient([first]);
    await u.run(["profiles", "set", "ci", "--client-id", c1.client_id]);
    expect((await u.run(["token", "--profile", "ci", "--no-cache"])).code).toBe(0);

    const rot = await u.run(["profiles", "rotate-key", "ci", "--json"]);
    expect(rot.code).toBe(0);
    const second = JSON.parse(rot.stdout).jwk as Record<string, unknown>;
    expect(second.kid).not.toBe(first.kid);

    // The IdP knows only the first key yet: the previous key still works, with a warning.
    const during = await u.run(["token", "--profile", "ci", "--no-cache"]);
    expect(during.code).toBe(0);
    expect(during.stderr).toContain("using the previous key");

    // The new public key is registered (a client holding only it): its first token retires the old key.
    const c2 = await keyClient([second]);
    await u.run(["profiles", "set", "ci", "--client-id", c2.client_id]);
    const after = await u.run(["token", "--profile", "ci", "--no-cache"]);
    expect(after.code).toBe(0);
    expect(after.stderr).toContain("was deleted");
    const cfg = JSON.parse(readFileSync(join(u.configDir, "config.json"), "utf8"));
    expect(cfg.profiles.ci.key.previous).toBeUndefined();
    expect(allFiles(u.configDir)).not.toContain(`private-key:ci:${first.kid}`);

    // An IdP that still has only the rotated-away key refuses: exit 4.
    const c3 = await keyClient([first]);
    await u.run(["profiles", "set", "ci", "--client-id", c3.client_id]);
    const stale = await u.run(["token", "--profile", "ci", "--no-cache"]);
    expect(stale.code).toBe(4);
    expect(stale.stderr).toContain("invalid_client");
  });

  it("removing the profile removes its private key", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const { jwk } = await addKeyProfile(u, ["--generate-key"]);
    expect(allFiles(u.configDir)).toContain(`private-key:ci:${jwk.kid}`);
    expect((await u.run(["profiles", "remove", "ci"])).code).toBe(0);
    expect(allFiles(u.configDir)).not.toContain(`private-key:ci:${jwk.kid}`);
  });

  it("signs each assertion for the issuer by default, or for the token endpoint with --key-audience token-endpoint", async () => {
    // A token endpoint that records the assertions it is sent (the sandbox accepts both audiences).
    const seen: Array<Record<string, unknown>> = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d)).on("end", () => {
        const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        if (req.url === "/.well-known/oauth-authorization-server") return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ issuer, token_endpoint: `${issuer}/oauth2/v1/token` }));
        if (req.url !== "/oauth2/v1/token") return void res.writeHead(404, { "content-type": "application/json" }).end("{}");
        const jwt = new URLSearchParams(body).get("client_assertion") ?? "";
        seen.push(JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString() || "{}"));
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: `t${seen.length}-abcdefghijklmnop`, token_type: "Bearer", expires_in: 300 }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      u = inProcessUser({ MCP_AUTH_STORE: "file" });
      for (const [name, extra] of [["plain", []], ["okta", ["--key-audience", "token-endpoint"]]] as const) {
        const add = await u.run(["profiles", "add", name, "--issuer", issuer, "--client-id", "c1", "--client-auth", "private-key-jwt", "--generate-key", ...extra]);
        expect(add.code, add.stderr).toBe(0);
        for (let i = 0; i < 2; i++) expect((await u.run(["token", "--profile", name, "--no-cache"])).code).toBe(0);
      }
      expect(seen.map((c) => c.aud)).toEqual([issuer, issuer, `${issuer}/oauth2/v1/token`, `${issuer}/oauth2/v1/token`]);
      for (const c of seen) {
        expect(c).toMatchObject({ iss: "c1", sub: "c1" });
        expect((c.exp as number) - (c.iat as number)).toBeLessThanOrEqual(60);
      }
      expect(new Set(seen.map((c) => c.jti)).size).toBe(4);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
