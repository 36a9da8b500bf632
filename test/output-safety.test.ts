import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { user, type Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * What mcp-auth prints is safe to show in a terminal and in CI logs: a hostile server's escape
 * sequences are stripped, a secret it echoes back is scrubbed (in every form it may travel in), a
 * mistyped flag never echoes its value, and the browser never inherits secret-bearing variables.
 */
const sb = useSandbox();
let u: Sandboxed;
afterEach(() => u?.cleanup());

const CLIENT_ID = "ci-client";
const SECRET = "s3cr3t/+= &value";
const b64 = (s: string) => Buffer.from(s).toString("base64");
const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
const FORMS = [SECRET, encodeURIComponent(SECRET), formEncode(SECRET), b64(`${CLIENT_ID}:${SECRET}`), b64(`${formEncode(CLIENT_ID)}:${formEncode(SECRET)}`)];
const NASTY = "\u001b]0;pwned\u0007\u001b[2J\u001b[31m\u009b1m";

let server: Server;
let issuer = "";
let mode = "json";
beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", issuer);
    if (url.pathname === "/.well-known/openid-configuration" || url.pathname === "/.well-known/oauth-authorization-server") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ issuer, token_endpoint: `${issuer}/token`, authorization_endpoint: `${issuer}/authorize`, response_types_supported: ["code"], subject_types_supported: ["public"], id_token_signing_alg_values_supported: ["RS256"], jwks_uri: `${issuer}/jwks` }));
      return;
    }
    // The token endpoint echoes the credentials it received, wrapped in terminal escape sequences.
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const echoed = `${NASTY} you sent ${body} with ${req.headers.authorization ?? ""} and ${SECRET} ${encodeURIComponent(SECRET)}`;
      if (mode === "json") {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "invalid_client", error_description: echoed }));
      } else if (mode === "www-authenticate") {
        // Raw bytes: node:http would refuse to send control characters in a header.
        const header = `Bearer error="invalid_client", error_description="${echoed.replace(/"/g, "'")}"`;
        req.socket.end(`HTTP/1.1 401 Unauthorized\r\nwww-authenticate: ${header}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`);
      } else {
        res.writeHead(502, { "content-type": "text/html" });
        res.end(`<html><title>${echoed}</title></html>`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));

describe("a hostile server's words reach the terminal without escapes or secrets", () => {
  it.each(["json", "www-authenticate", "html"])("%s error, with and without --debug", async (m) => {
    mode = m;
    u = inProcessUser({ MCP_AUTH_CLIENT_SECRET: SECRET });
    for (const debug of [[], ["--debug"]]) {
      for (const auth of [[], ["--auth-method", "client_secret_post"]]) {
        if (auth.length) {
          // A profile that posts the secret in the form body (so the server can echo it form-encoded).
          await u.run(["profiles", "add", "p", "--issuer", issuer, "--client-id", CLIENT_ID, "--client-secret-env", "MCP_AUTH_CLIENT_SECRET", "--force", ...auth]);
        }
        const args = auth.length ? ["token", "-p", "p", ...debug] : ["token", "--issuer", issuer, "--client-id", CLIENT_ID, ...debug];
        const r = await u.run(args);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/^error: /m);
        if (debug.length) expect(r.stderr).toMatch(/^debug > (GET|POST) /m); // the trace is in what is checked below
        // eslint-disable-next-line no-control-regex
        expect(r.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
        for (const f of FORMS) expect(r.stderr, `${m} ${args.join(" ")}: ${f}`).not.toContain(f);
        expect(r.stdout).toBe("");
      }
    }
  }, 180_000);
});

describe("mistyped flags", () => {
  it.each([
    ["bootstrap", "thunder", "--admin-password=Hunter2-pw"],
    ["token", "--client-secret=Hunter2-pw"],
    ["profiles", "add", "x", "--issuer", "https://i.mcp-auth.invalid", "--client-id", "c", "--secret=Hunter2-pw"],
  ])("never echo the value: %s %s", async (...argv) => {
    u = inProcessUser();
    const r = await u.run(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--[a-z-]+=…'/);
    expect(r.stderr).not.toContain("Hunter2");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("the browser command", () => {
  it("runs without mcp-auth's secret-bearing variables", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-auth-browser-"));
    try {
      const out = join(dir, "env.txt");
      u = user({ MCP_AUTH_CLIENT_SECRET: "client-secret-in-env", MCP_AUTH_ADMIN_PASSWORD: "admin-pw-in-env", SOME_UNRELATED: "kept" });
      await u.run(["profiles", "add", "me", "--issuer", sb.issuer, "--client-id", "sandbox-cli"]);
      const r = await u.run(["login", "me", "--browser-command", `printenv > '${out}'; true`, "--login-timeout", "3"]);
      expect(r.code).toBe(4); // nobody logged in: the login timed out
      const seen = readFileSync(out, "utf8");
      expect(seen).toContain("SOME_UNRELATED=kept");
      expect(seen).not.toContain("client-secret-in-env");
      expect(seen).not.toContain("admin-pw-in-env");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
