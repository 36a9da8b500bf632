import { afterEach, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * A client id with a control character in it is refused (exit 2) from every flag that takes one: it
 * would be echoed in messages, and in a CI log a line break followed by `::stop-commands::` or
 * `::add-mask::` is a workflow command the runner obeys. In process, as a table of command lines.
 */
let t: TestContext;
afterEach(() => t?.cleanup());

const ISSUER = "https://idp.example.invalid";
const MCP = "https://mcp.example.invalid/mcp";
const HOSTILE = ["ci\n::stop-commands::pwned", "ci\r::add-mask::x", "ci\u001b]0;title\u0007", "ci\u009b2J", "ci\tx", "ci\u007f"];

const commandLines: Array<[string, (id: string) => string[]]> = [
  ["token (profile-less)", (id) => ["token", "--issuer", ISSUER, "--client-id", id]],
  ["token --client-id=…", (id) => ["token", "--issuer", ISSUER, `--client-id=${id}`]],
  ["profiles add", (id) => ["profiles", "add", "p", "--issuer", ISSUER, "--client-id", id]],
  ["profiles set", (id) => ["profiles", "set", "p", "--client-id", id]],
  ["login URL", (id) => ["login", MCP, "--client-id", id]],
  ["bootstrap openproject", (id) => ["bootstrap", "openproject", "--url", "https://op.example.invalid", "--client-id", id]],
  ["bootstrap keycloak --admin-client-id", (id) => ["bootstrap", "keycloak", "--url", "https://kc.example.invalid", "--admin-client-id", id]],
  ["init", (id) => ["init", "--provider", "oidc", "--issuer", ISSUER, "--client-id", id, "--yes"]],
];

describe("control characters in a client id", () => {
  it.each(commandLines)("%s: refused with exit 2 before anything runs, the value never echoed", async (_what, argv) => {
    for (const id of HOSTILE) {
      t = createTestContext({ env: { MCP_AUTH_CLIENT_SECRET: "s3cret-value" } });
      const code = await t.run(argv(id));
      expect(code, `${JSON.stringify(id)}: ${t.stderr()}`).toBe(2);
      expect(t.stdout()).toBe("");
      expect(t.stderr()).toMatch(/^error: --(admin-)?client-id must not contain control characters \(a line break, tab or escape\)\n$/);
      expect(t.stderr()).not.toContain("::");
      expect(t.browsed).toEqual([]);
      t.cleanup();
    }
  });

  it("an ordinary client id (a URL, a GUID, spaces allowed by RFC 6749) passes this check", async () => {
    for (const id of ["https://app.example.invalid/client.json", "0f8fad5b-d9cb-469f-a165-70867728950e", "my client"]) {
      t = createTestContext();
      await t.run(["profiles", "add", "p", "--issuer", ISSUER, "--client-id", id, "--grant", "authorization_code"]);
      expect(t.stderr()).not.toContain("control characters");
      t.cleanup();
    }
  });
});
