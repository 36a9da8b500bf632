import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * Server text that ends up inside a command mcp-auth suggests to run: a hostile server must not be
 * able to make a copy-pasted suggestion run something else (each value is one quoted shell word).
 */
let srv: Server | undefined;
const contexts: TestContext[] = [];
afterEach(async () => {
  for (const c of contexts.splice(0)) c.cleanup();
  await new Promise((r) => (srv ? srv.close(r) : r(undefined)));
  srv = undefined;
});

function unsignedJwt(claims: Record<string, unknown>): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b({ alg: "none", typ: "JWT" })}.${b(claims)}.`;
}

describe("doctor's suggested commands quote what a server sent", () => {
  it("a server-named issuer and audience with shell syntax are single shell words in the fixes", async () => {
    let base = "";
    const issuer = () => `${base}/as;touch /tmp/pwned`;
    srv = createServer((req, res) => {
      const json = (o: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(o));
      if (req.url === "/mcp") return void res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${base}/prm", audience="aud;touch /tmp/pwned"` }).end();
      if (req.url === "/prm") return json({ resource: `${base}/mcp`, authorization_servers: [issuer()] });
      if (req.url?.startsWith("/.well-known/")) return json({ issuer: issuer(), token_endpoint: `${base}/token`, code_challenge_methods_supported: ["S256"] });
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => srv!.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    const t = createTestContext({ stdin: unsignedJwt({ iss: "https://elsewhere.invalid", aud: "other", exp: 4102444800 }) });
    contexts.push(t);
    expect(await t.run(["profiles", "add", "p", "--issuer", "https://idp.invalid", "--client-id", "c", "--grant", "authorization_code", "--mcp-url", `${base}/mcp`])).toBe(0);
    expect(await t.run(["doctor", "--profile", "p", "--token-stdin"])).toBe(1);
    const out = t.stdout();
    expect(out).toContain(`--issuer '${issuer()}' --force`);
    expect(out).toContain(`--audience 'aud;touch /tmp/pwned'`);
    expect(out).not.toMatch(/--(issuer|audience) [^'\s]*;touch/);
  });
});

describe("bootstrap's report keeps each server value on its own line", () => {
  it("a line break in what the IdP sent (a trusted host in Keycloak's policy) cannot start a line of its own, such as a CI workflow command", async () => {
    const { startKeycloak } = await import("./simulators/keycloak.js");
    const k = await startKeycloak({ realms: ["kcp"] });
    try {
      const policy = k.trustedHostsPolicy("kcp") as unknown as { config: Record<string, string[]> };
      policy.config["trusted-hosts"] = ["old.example.com\n::stop-commands::pwned"];
      const t = createTestContext({ env: { ADMIN_PW: "admin" } });
      contexts.push(t);
      const code = await t.run(["bootstrap", "keycloak", "--url", k.url, "--admin-password-env", "ADMIN_PW", "--realm", "kcp", "--mcp-host", "mcp.example.com", "--no-verify"]);
      expect(code, t.stderr()).toBe(0);
      expect(t.stderr()).toContain("old.example.com ::stop-commands::pwned");
      expect(t.stderr()).not.toMatch(/^\s*::/m);
    } finally {
      await k.close();
    }
  });
});

describe("values the IdP chose, written into the OCI sample's .env", () => {
  it.each([
    ["a${AWS_SECRET_ACCESS_KEY}b", "IAM_CLIENT_SECRET='a${AWS_SECRET_ACCESS_KEY}b'\n"],
    ["$HOME", "IAM_CLIENT_SECRET='$HOME'\n"],
    ["plain-Secret_1", "IAM_CLIENT_SECRET=plain-Secret_1\n"],
    ['with "quote"', 'IAM_CLIENT_SECRET="with \\"quote\\""\n'],
  ])("%j is written so that dotenv parsers read it back literally", async (value, line) => {
    const { mergeEnv } = await import("../src/providers/oci/env-file.js");
    expect(mergeEnv(null, { IAM_CLIENT_SECRET: value })).toBe(line);
  });

  it("a value with $ that no dotenv quoting keeps literal is refused", async () => {
    const { mergeEnv } = await import("../src/providers/oci/env-file.js");
    for (const v of ["a'${X}", "a\\${X}", "a${X}\n"]) expect(() => mergeEnv(null, { IAM_CLIENT_SECRET: v })).toThrow(/refusing to write a value with "\$"/);
  });
});
