import { createServer, request, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { tryCachedToken } from "../src/fast.js";
import { headerArgs, headerSpecs, parseHeader, parseHeaderEnv, resolveHeaders } from "../src/headers.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { useSandbox } from "./helpers/sandbox.js";

/** Custom headers beside OAuth: `--header`, `--header-env` on token, proxy and add-client. */
const sb = useSandbox();
let tc: TestContext | undefined;
afterEach(() => tc?.cleanup());

describe("which headers may be added", () => {
  it.each([
    ["X-Tenant: acme", { name: "X-Tenant", value: "acme" }],
    ["X-Tenant:acme", { name: "X-Tenant", value: "acme" }],
    ["x-routing-key:  a b\tc  ", { name: "x-routing-key", value: "a b\tc" }],
    ["X-Empty:", { name: "X-Empty", value: "" }],
  ])("--header %j", (raw, spec) => {
    expect(parseHeader(raw)).toEqual(spec);
  });

  it.each([
    ["Authorization: Bearer x", "sets Authorization itself"],
    ["authorization: x", "sets authorization itself"],
    ["Proxy-Authorization: x", "itself"],
    ["Host: evil.example", "itself"],
    ["Content-Length: 0", "itself"],
    ["Transfer-Encoding: chunked", "itself"],
    ["Mcp-Session-Id: s", "itself"],
    ["MCP-Protocol-Version: 2025-11-25", "itself"],
    ["Mcp-Method: tools/call", "itself"],
    ["Mcp-Param-Path: /", "itself"],
    ["Cookie: a=b", "itself"],
    ["X-A: b\r\nX-Injected: 1", "line break or a control character"],
    ["X-A: b\nc", "line break"],
    ["X-A: \u0000", "control character"],
    ["X A: b", "is not a header name"],
    ["X-(A): b", "is not a header name"],
    ["no colon", 'expected "Name: value"'],
    [": value", 'expected "Name: value"'],
    [`X-Big: ${"a".repeat(8193)}`, "longer than 8192"],
  ])("--header %j is refused: %s", (raw, why) => {
    expect(() => parseHeader(raw)).toThrow(why);
  });

  it.each([
    ["X-Api-Key=ACME_KEY", { name: "X-Api-Key", env: "ACME_KEY" }],
    [" X-Api-Key = KEY_2 ", { name: "X-Api-Key", env: "KEY_2" }],
  ])("--header-env %j", (raw, spec) => {
    expect(parseHeaderEnv(raw)).toEqual(spec);
  });

  it.each([
    ["X-Api-Key=s3cr3t value", "expected the name of an environment variable, not a value"],
    ["X-Api-Key=", "expected the name of an environment variable"],
    ["X-Api-Key", "expected Name=VAR"],
    ["Authorization=TOKEN", "sets Authorization itself"],
  ])("--header-env %j is refused: %s", (raw, why) => {
    expect(() => parseHeaderEnv(raw)).toThrow(why);
  });

  it("a name given twice is refused; resolving reads the variables now, and an unset one is an error naming it", () => {
    expect(() => headerSpecs(["X-A: 1"], ["x-a=V"])).toThrow("header x-a is given twice");
    const specs = headerSpecs(["X-Tenant: acme"], ["X-Api-Key=KEY"]);
    const seen: string[] = [];
    expect(resolveHeaders(specs, { KEY: "k-1" }, (v) => seen.push(v))).toEqual([["X-Tenant", "acme"], ["X-Api-Key", "k-1"]]);
    expect(seen).toEqual(["k-1"]); // the value from the environment is registered as a secret
    expect(() => resolveHeaders(specs, {})).toThrow("header X-Api-Key: $KEY is not set");
    expect(() => resolveHeaders(specs, { KEY: "a\r\nX-B: c" })).toThrow("line break");
    expect(headerArgs(specs)).toEqual(["--header", "X-Tenant: acme", "--header-env", "X-Api-Key=KEY"]);
  });
});

async function m2m(c: TestContext, mcpUrl = sb.mcpUrl): Promise<void> {
  expect(await c.run(["profiles", "add", "m2m", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--resource", sb.mcpUrl, "--mcp-url", mcpUrl, "--client-secret-env", "S"]), c.stderr()).toBe(0);
}

describe("token --format headers-json --header", () => {
  it("prints the extra headers beside Authorization, a --header-env value read now; the fast path prints the same", async () => {
    tc = createTestContext({ now: Date.now(), env: { S: "sandbox-secret", ACME_KEY: "k-123" } });
    await m2m(tc);
    const argv = ["token", "--format", "headers-json", "--header", "X-Tenant: acme", "--header-env", "X-Api-Key=ACME_KEY"];
    expect(await tc.run(argv), tc.stderr()).toBe(0);
    const printed = JSON.parse(tc.stdout());
    expect(Object.keys(printed)).toEqual(["X-Tenant", "X-Api-Key", "Authorization"]);
    expect(printed).toMatchObject({ "X-Tenant": "acme", "X-Api-Key": "k-123" });
    expect(printed.Authorization).toMatch(/^Bearer eyJ/);
    let out = "";
    expect(tryCachedToken(argv, tc.env, (s) => void (out += s))).toBe(true);
    expect(JSON.parse(out)).toEqual(printed);
    // an unset variable: the fast path steps aside, the CLI names it (exit 2)
    expect(tryCachedToken(argv, { ...tc.env, ACME_KEY: "" }, () => undefined)).toBe(false);
  });

  it.each([
    [["--format", "raw", "--header", "X-A: b"], "only apply with --format headers-json"],
    [["--format", "headers-json", "--header-env", "X-A=UNSET_VAR"], "header X-A: $UNSET_VAR is not set"],
    [["--format", "headers-json", "--header", "Authorization: Bearer mine"], "sets Authorization itself"],
  ])("%j: exit 2 (%s), nothing printed", async (flags, why) => {
    tc = createTestContext({ now: Date.now(), env: { S: "sandbox-secret" } });
    await m2m(tc);
    expect(await tc.run(["token", ...flags])).toBe(2);
    expect(tc.stderr()).toContain(why);
    expect(tc.stdout()).toBe("");
  });
});

describe("proxy --header: on every request to the MCP server, beside the token", () => {
  /** A front for the sandbox's MCP server that records each request's headers and forwards it. */
  let front: { url: string; seen: IncomingHttpHeaders[]; close(): void };
  beforeAll(async () => {
    const target = new URL(sb.mcpUrl);
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      const up = request({ host: target.hostname, port: target.port, method: req.method, path: target.pathname, headers: { ...req.headers, host: target.host } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on("error", () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    front = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, seen, close: () => (server.closeAllConnections(), server.close()) };
  });
  afterAll(() => front?.close());

  const session = [
    { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } },
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", id: 2, method: "tools/list" },
  ].map((m) => JSON.stringify(m) + "\n").join("");

  it("X-Tenant and the --header-env value reach the server on each request; Authorization is the profile's token", async () => {
    tc = createTestContext({ now: Date.now(), stdin: session, env: { S: "sandbox-secret", ACME_KEY: "k-from-env" } });
    await m2m(tc, front.url);
    front.seen.length = 0;
    expect(await tc.run(["proxy", "--profile", "m2m", "--protocol", "legacy", "--header", "X-Tenant: acme", "--header-env", "X-Api-Key=ACME_KEY"]), tc.stderr()).toBe(0);
    const answers = tc.stdout().trim().split("\n").map((l) => JSON.parse(l));
    expect(answers.find((a) => a.id === 2)?.result?.tools).toBeDefined();
    const posts = front.seen.filter((h) => h["content-type"]?.includes("json"));
    expect(posts.length).toBeGreaterThanOrEqual(2);
    for (const h of posts) {
      expect(h).toMatchObject({ "x-tenant": "acme", "x-api-key": "k-from-env" });
      expect(h.authorization).toMatch(/^Bearer eyJ/);
    }
    expect(tc.stderr()).not.toContain("k-from-env");
  });

  it("an unset --header-env variable: exit 2 before any request", async () => {
    tc = createTestContext({ now: Date.now(), stdin: session, env: { S: "sandbox-secret" } });
    await m2m(tc, front.url);
    front.seen.length = 0;
    expect(await tc.run(["proxy", "--profile", "m2m", "--header-env", "X-Api-Key=ACME_KEY"])).toBe(2);
    expect(tc.stderr()).toContain("$ACME_KEY is not set");
    expect(front.seen).toEqual([]);
  });
});

describe("add-client --header: written into the entry as flags, a --header-env as the variable's name", () => {
  const entry = (c: TestContext) => JSON.parse(c.stdout());

  it.each([["cursor"], ["vscode"], ["claude-desktop"], ["gemini"]])("%s (proxy strategy): the proxy's argv carries both; no value from the environment", async (client) => {
    tc = createTestContext({ env: { S: "sandbox-secret", ACME_KEY: "k-never-written" } });
    await m2m(tc);
    expect(await tc.run(["add-client", client, "--profile", "m2m", "--strategy", "proxy", "--print", "--header", "X-Tenant: acme", "--header-env", "X-Api-Key=ACME_KEY"]), tc.stderr()).toBe(0);
    expect(tc.stdout()).not.toContain("k-never-written");
    const args = JSON.stringify(entry(tc));
    expect(args).toContain('"--header","X-Tenant: acme","--header-env","X-Api-Key=ACME_KEY"');
  });

  it("claude (helper strategy): the headersHelper prints them", async () => {
    tc = createTestContext({ env: { S: "sandbox-secret", ACME_KEY: "k-never-written", PATH: "" } });
    await m2m(tc);
    expect(await tc.run(["add-client", "claude", "--profile", "m2m", "--scope", "user", "--print", "--header", "X-Tenant: acme", "--header-env", "X-Api-Key=ACME_KEY"]), tc.stderr()).toBe(0);
    const helper = JSON.stringify(entry(tc));
    expect(helper).toContain("--format headers-json --header 'X-Tenant: acme' --header-env X-Api-Key=ACME_KEY");
    expect(tc.stdout()).not.toContain("k-never-written");
  });

  it.each([
    [["--strategy", "header", "--header", "X-A: b"], 2, "apply to the helper and proxy strategies"],
    [["--strategy", "proxy", "--header", "Authorization: Bearer x"], 2, "sets Authorization itself"],
    [["--strategy", "proxy", "--header", "X-Api-Key: literal"], 0, "its value is written into the client's config file in clear"],
  ])("%j → exit %i: %s", async (flags, code, why) => {
    tc = createTestContext({ env: { S: "sandbox-secret" } });
    await m2m(tc);
    expect(await tc.run(["add-client", "cursor", "--profile", "m2m", "--print", ...flags])).toBe(code);
    expect(tc.stderr()).toContain(why);
  });
});
