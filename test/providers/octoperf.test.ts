import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ROOT, user, type Sandboxed } from "../helpers/cli.js";
import { startOctoPerf, type OctoPerfSim } from "../simulators/octoperf.js";

/**
 * `mcp-auth bootstrap octoperf` end to end against the OctoPerf simulator (../shared/research/idp-apis.md
 * §5, seed 004): public files, discovery from the MCP endpoint, anonymous DCR, a PKCE sign-in, and the
 * public-origin rule whose violation makes "every call return 401".
 */
const BROWSER = `${process.execPath} ${join(ROOT, "test", "helpers", "fetch-browser.mjs")}`;
let sim: OctoPerfSim | undefined;
let u: Sandboxed | undefined;
afterEach(async () => {
  await sim?.close();
  u?.cleanup();
  sim = u = undefined;
});

describe("bootstrap octoperf", () => {
  it("checks AGENTS.md, registers mcp-auth, signs in; the token is accepted; a re-run reuses the client", async () => {
    sim = await startOctoPerf();
    u = user({ MCP_AUTH_STORE: "file" });
    const r = await u.run(["bootstrap", "octoperf", "--url", sim.url, "--browser-command", BROWSER, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ provider: "octoperf", profile: "octoperf", action: "created" });
    expect(out.checks.map((c: { what: string; ok: boolean }) => `${c.ok ? "pass" : "fail"} ${c.what}`)).toEqual([
      "pass first token (signed in)",
      "pass public MCP files",
      "pass token issuer is the public origin",
      "pass token audience is the public origin",
      "pass MCP server accepts the token",
    ]);
    expect(sim.clients.size).toBe(1);
    const [client] = [...sim.clients.values()];
    expect(client!.client_name).toMatch(/^mcp-auth on /);
    expect(sim.log.some((l) => l.method === "GET" && l.path === "/mcp/public/AGENTS.md")).toBe(true);

    const show = JSON.parse((await u.run(["profiles", "show", "octoperf", "--json"])).stdout);
    expect(show).toMatchObject({ provider: "octoperf", issuer: sim.url, mcpUrl: `${sim.url}/mcp`, grant: "authorization_code", extra: { registration: "dcr" } });
    const tok = await u.run(["token", "--provider", "octoperf"]);
    expect(tok.code, tok.stderr).toBe(0);

    const again = await u.run(["bootstrap", "octoperf", "--url", sim.url, "--browser-command", BROWSER]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("OctoPerf: reused");
    expect(sim.clients.size).toBe(1);
  });

  it("the seed's origin mismatch: tokens minted for another origin are refused, and the fix names server.hostname", async () => {
    sim = await startOctoPerf({ backendOrigin: "http://enterprise-edition.invalid:8090" });
    u = user({ MCP_AUTH_STORE: "file" });
    const r = await u.run(["bootstrap", "octoperf", "--url", sim.url, "--browser-command", BROWSER]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("✗ token issuer is the public origin: the token's iss is http://enterprise-edition.invalid:8090");
    expect(r.stderr).toContain("the MCP server answers 401 to every call");
    expect(r.stderr).toContain("server.scheme, server.hostname and server.public.port");
    expect(r.stderr).toContain("✗ MCP server accepts the token: server/discover answered 401");
  });
});
