import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sanitize, sanitizeOutput } from "../src/io/sanitize.js";
import { painter } from "../src/io/terminal.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * What a person reads on stdout (`status`, `profiles list|show`, `clients`, `doctor`, `decode`) goes
 * through the same sanitizer as stderr: values planted in config.json or a client's config file, a
 * token's claims and a server's metadata reach the terminal without escape sequences (CSI, OSC 8
 * links, OSC 52 clipboard writes), CR, BEL or bidi overrides. Machine output (`--json`) stays exact.
 */
const NASTIES: Record<string, string> = {
  csi: "\u001b[2J\u001b[31m",
  "osc 8 link": "\u001b]8;;https://evil.example.invalid/\u0007click\u001b]8;;\u0007",
  "osc 52 clipboard": "\u001b]52;c;Y3VybCBldmlsIHwgc2g=\u0007",
  "8-bit csi": "\u009b2J",
  cr: "\rfake ok",
  bel: "\u0007",
  "bidi override": "\u202egnp.exe",
  "bidi isolate": "\u2066x\u2069",
};
const EVERY = Object.values(NASTIES).join("");
// Anything that drives a terminal: C0 but \n, DEL, C1, bidi controls.
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

let t: TestContext;
beforeEach(() => {
  t = createTestContext();
});
afterEach(() => t.cleanup());

async function run(argv: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  if (stdin !== undefined) t = createTestContext({ env: t.env, stdin });
  const o = t.stdout().length;
  const e = t.stderr().length;
  const code = await t.run(argv);
  return { code, out: t.stdout().slice(o), err: t.stderr().slice(e) };
}

/** A profile whose every free-text field carries `nasty` (as a server could have sent it, or a hand edit). */
async function plantProfile(nasty: string): Promise<void> {
  expect(await t.run(["profiles", "add", "dev", "--issuer", "https://idp.example.invalid", "--client-id", "cli", "--mcp-url", "https://mcp.example.invalid/mcp"])).toBe(0);
  const file = t.ctx.paths.config;
  const cfg = JSON.parse(readFileSync(file, "utf8"));
  Object.assign(cfg.profiles.dev, {
    issuer: `https://idp.example.invalid/${nasty}issuer`,
    clientId: `cli${nasty}id`,
    scopes: [`read${nasty}`, "write"],
    mcpUrl: `https://mcp.example.invalid/mcp${nasty}`,
    extra: { discovered: true, resourceMetadata: `https://mcp.example.invalid/meta${nasty}`, registration: "dcr" },
  });
  writeFileSync(file, JSON.stringify(cfg, null, 2), { mode: 0o600 });
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

describe.each(Object.entries(NASTIES))("%s never reaches stdout raw", (_name, nasty) => {
  it("status, profiles list, profiles show", async () => {
    await plantProfile(nasty);
    for (const argv of [["status"], ["profiles", "list"], ["profiles", "show", "dev"]]) {
      const r = await run(argv);
      expect(r.code, r.err).toBe(0);
      expect(r.out, argv.join(" ")).toContain("idp.example.invalid/");
      expect(r.out, argv.join(" ")).not.toMatch(RAW);
    }
    // --json is machine output: the value exactly as stored (JSON escapes control characters itself)
    const json = await run(["status", "--json"]);
    expect(JSON.parse(json.out)[0].issuer).toBe(`https://idp.example.invalid/${nasty}issuer`);
  });

  it("clients: server names, URLs and profiles from a planted client config", async () => {
    const home = t.env.HOME!;
    const file = join(home, ".cursor", "mcp.json");
    mkdirSync(dirname(file), { recursive: true });
    const servers = { [`srv${nasty}`]: { url: `https://x.example.invalid/${nasty}` }, ours: { command: "mcp-auth", args: ["proxy", "--profile", `p${nasty}`] } };
    writeFileSync(file, JSON.stringify({ mcpServers: servers }));
    const r = await run(["clients"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("srv");
    expect(r.out).toContain("x.example.invalid/");
    expect(r.out).not.toMatch(RAW);
    expect(JSON.parse((await run(["clients", "--json"])).out).find((c: { client: string }) => c.client === "cursor").files[0].servers[0].name).toBe(`srv${nasty}`);
  });

  it("decode: a token's header and claims", async () => {
    const token = `${b64url({ alg: "RS256", kid: `k${nasty}`, typ: "JWT" })}.${b64url({ iss: `https://idp.example.invalid/${nasty}`, sub: `alice${nasty}`, aud: ["a", `b${nasty}`], exp: 4_000_000_000 })}.c2ln`;
    const r = await run(["decode", "--token-stdin"], token);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("alice");
    expect(r.out).not.toMatch(RAW);
  });
});

describe("doctor against a server whose metadata and challenge carry escape sequences", () => {
  let server: Server;
  let origin = "";
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", origin).pathname;
      if (path.startsWith("/.well-known/oauth-protected-resource")) {
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ resource: `${origin}/mcp${EVERY}`, authorization_servers: [`${origin}/as${EVERY}`], resource_name: `evil${EVERY}` }));
      }
      if (path.startsWith("/.well-known/")) {
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ issuer: `${origin}/as${EVERY}`, token_endpoint: `${origin}/token${EVERY}` }));
      }
      res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp", error_description="bad"`, "content-type": "application/json" });
      res.end(JSON.stringify({ error: `nope${EVERY}` }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it("prints its checklist on stdout with server text, never a raw control character", async () => {
    const r = await run(["doctor", "--url", `${origin}/mcp`]);
    expect(r.out).toContain("evil.example.invalid"); // the metadata's words, cleaned
    expect(r.out).not.toMatch(RAW);
    expect(r.err).not.toMatch(RAW);
  });
});

describe("sanitizeOutput", () => {
  it("on a colour terminal keeps the painter's own colour codes and nothing else", () => {
    const p = painter(true);
    const line = `${p.success("✓")} ${p.fail("✗")} ${p.warn("!")} ${p.dim("fix:")} ${p.bold("b")} server said ${EVERY}.`;
    const out = sanitizeOutput(line);
    expect(out).toBe(`${p.success("✓")} ${p.fail("✗")} ${p.warn("!")} ${p.dim("fix:")} ${p.bold("b")} server said \u001b[31mclickfake okgnp.exex.`);
    // without colour (NO_COLOR, a pipe), nothing is kept
    expect(sanitize(line)).toBe("✓ ✗ ! fix: b server said clickfake okgnp.exex.");
  });
});
