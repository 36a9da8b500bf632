import { describe, expect, it } from "vitest";
import { allPassed, failed, passed, relativeTime, type Check } from "../src/core/checks.js";
import { checksJson, renderChecks } from "../src/io/checks.js";

/** The one check renderer shared by bootstrap, doctor and init. */
describe("renderChecks", () => {
  it.each<[string, Check[], { indent?: string; color?: boolean }, string[]]>([
    ["nothing", [], {}, []],
    ["a pass with detail", [passed("first token", "expires in 1 h")], { indent: "  " }, ["  ✓ first token: expires in 1 h"]],
    ["a pass without detail", [passed("realm exists")], {}, ["✓ realm exists"]],
    ["a failure with its fix line", [failed("dynamic client registration", "HTTP 403: Host not trusted.", "add it with --mcp-host")], { indent: "  " }, ["  ✗ dynamic client registration: HTTP 403: Host not trusted.", "      fix: add it with --mcp-host"]],
    ["a failure without a fix", [failed("token audience", 'aud is "x", not "kcp"')], {}, ['✗ token audience: aud is "x", not "kcp"']],
    ["a fix on a pass is not shown", [{ ok: true, what: "w", fix: "never" }], {}, ["✓ w"]],
    ["colour marks only the symbols", [passed("a"), failed("b", undefined, "c")], { color: true }, ["\x1b[32m✓\x1b[0m a", "\x1b[31m✗\x1b[0m b", "    \x1b[2mfix:\x1b[0m c"]],
  ])("%s", (_name, checks, opts, lines) => {
    expect(renderChecks(checks, opts)).toEqual(lines);
  });

  it("JSON keeps what is set, and fix only on failures", () => {
    expect(checksJson([{ ok: true, what: "a", detail: "d", fix: "x" }, failed("b", undefined, "f")])).toEqual([
      { ok: true, what: "a", detail: "d" },
      { ok: false, what: "b", fix: "f" },
    ]);
  });

  it("allPassed and relativeTime", () => {
    expect(allPassed([passed("a")])).toBe(true);
    expect(allPassed([passed("a"), failed("b", "c")])).toBe(false);
    expect([30, 3000, 7200, 200000, -7200].map(relativeTime)).toEqual(["in 30 s", "in 50 min", "in 2 h", "in 2 d", "2 h ago"]);
  });
});
