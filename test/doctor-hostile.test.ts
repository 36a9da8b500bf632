import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./helpers/context.js";

/** doctor quotes server text; a hostile server's escape sequences never reach the terminal. */
let srv: Server | undefined;
let t: TestContext | undefined;
afterEach(async () => {
  t?.cleanup();
  await new Promise((r) => (srv ? srv.close(r) : r(undefined)));
});

it("escape sequences in a server's metadata are stripped from doctor's output (text and JSON)", async () => {
  let base = "";
  srv = createServer((req, res) => {
    const json = (o: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(o));
    if (req.url === "/mcp") return void res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${base}/prm"` }).end();
    if (req.url === "/prm") return json({ resource: `${base}/mcp\x1b]0;pwned\x07`, authorization_servers: [base] });
    if (req.url === "/.well-known/oauth-authorization-server") return json({ issuer: base, token_endpoint: `${base}/token`, jwks_uri: `${base}/jwks\x1b[2J\x1b[31m` });
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => srv!.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  t = createTestContext();
  const code = await t.run(["doctor", "--url", `${base}/mcp`]);
  expect(code).toBe(1); // the JWKS cannot be read
  expect(t.stdout()).toContain("✗ JWKS publicly readable");
  expect(t.stdout()).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
  const j = createTestContext();
  expect(await j.run(["doctor", "--url", `${base}/mcp`, "--json"])).toBe(1);
  expect(j.stdout()).not.toMatch(/\\u001b|\x1b/);
  j.cleanup();
});
