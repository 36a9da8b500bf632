import { afterEach, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { decodeToken, claimRows } from "../src/core/decode.js";

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const jwt = (claims: Record<string, unknown>, header: Record<string, unknown> = { alg: "RS256", typ: "JWT", kid: "k1" }) => `${b64(header)}.${b64(claims)}.c2lnbmF0dXJlLXNlY3JldA`;
const NOW = Date.UTC(2026, 10, 29, 12, 0, 0) / 1000;

let t: TestContext | undefined;
afterEach(() => t?.cleanup());

async function decode(token: string, ...args: string[]) {
  t = createTestContext({ stdin: `${token}\n` });
  const code = await t.run(["decode", "--token-stdin", ...args]);
  return { code, out: t.stdout(), err: t.stderr() };
}

describe("mcp-auth decode", () => {
  it("shows header and claims, times as local times with 'expires in', never the token or signature", async () => {
    const tok = jwt({ iss: "https://idp.example", sub: "alice", aud: ["urn:kcp:mcp", "account"], scope: "openid mcp", azp: "cli", iat: NOW - 60, nbf: NOW - 60, exp: NOW + 3000 });
    const r = await decode(tok);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("Header");
    expect(r.out).toMatch(/kid\s+k1/);
    expect(r.out).toMatch(/iss\s+https:\/\/idp\.example/);
    expect(r.out).toMatch(/aud\s+urn:kcp:mcp, account/);
    expect(r.out).toMatch(/scope\s+openid mcp/);
    expect(r.out).toMatch(/azp\s+cli/);
    expect(r.out).toMatch(/exp\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d \(expires in 50 min\)/);
    expect(r.out).toMatch(/iat\s+.*\(60 s ago\)/);
    expect(r.out).not.toContain(tok);
    expect(r.out).not.toContain("c2lnbmF0dXJlLXNlY3JldA");
    expect(r.out + r.err).not.toContain(tok.split(".")[1]);
  });

  it.each([
    ["expired", { exp: NOW - 7200 }, /EXPIRED 2 h ago/],
    ["not yet valid", { nbf: NOW + 600, exp: NOW + 4000 }, /NOT YET VALID, valid in 10 min/],
  ])("says plainly when a token is %s", async (_n, claims, re) => {
    const r = await decode(jwt({ iss: "x", ...claims }));
    expect(r.out).toMatch(re);
  });

  it.each([
    ["an opaque reference", "2YotnFZFEjr1zCsicMWpAA", /opaque \(22 characters\): it is not a JWT/],
    ["a JWE", "a.b.c.d.e", /opaque .*encrypted JWT/],
    ["three parts that are not JSON", "abc.def.ghi", /opaque .*not base64url JSON/],
  ])("says plainly when the token is %s", async (_n, tok, re) => {
    const r = await decode(tok);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(re);
    expect(r.out).not.toContain(tok);
  });

  it("strips escape sequences and control characters from hostile claims (keys and values)", async () => {
    const r = await decode(jwt({ iss: "https://idp\x1b]0;pwned\x07.example", sub: "\x1b[2J\x1b[31malice\r\nroot", "x\x1b[1mkey": "v\x07\x00", aud: ["a\x1b[Kb"] }));
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(r.out).toMatch(/sub\s+alice ?root/);
    expect(r.out).toMatch(/iss\s+https:\/\/idp\.example/);
    expect(r.out).toMatch(/xkey\s+v/);
  });

  it("--json gives header and claims (cleaned), and the kind", async () => {
    const r = await decode(jwt({ iss: "i", sub: "\x1b[31mbob" }), "--json");
    const j = JSON.parse(r.out);
    expect(j).toEqual({ kind: "jwt", header: { alg: "RS256", typ: "JWT", kid: "k1" }, claims: { iss: "i", sub: "bob" } });
    const o = JSON.parse((await decode("opaque-token", "--json")).out);
    expect(o).toMatchObject({ kind: "opaque", length: 12 });
  });

  it("refuses a profile and --token-stdin together (exit 2)", async () => {
    t = createTestContext({ stdin: "x" });
    expect(await t.run(["decode", "--token-stdin", "--profile", "p"])).toBe(2);
  });

  it("unit: decodeToken and claimRows", () => {
    expect(decodeToken("a.b").kind).toBe("opaque");
    const d = decodeToken(jwt({ client_id: "c", exp: NOW + 30 }));
    expect(d.kind).toBe("jwt");
    if (d.kind === "jwt") expect(claimRows(d.claims, NOW)).toEqual([["client_id", "c"], ["exp", expect.stringMatching(/\(expires in 30 s\)$/)]]);
  });
});
