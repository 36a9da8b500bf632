import { describe, expect, it } from "vitest";
import { failed, passed, statusOf, type Check } from "../src/core/checks.js";
import { checksStatusJson, renderChecks } from "../src/io/checks.js";

/** Checks with a status (doctor): warn and skip rendered, bootstrap's plain checks unchanged. */
describe("checks with a status", () => {
  const warn: Check = { id: "as.metadata", ok: true, status: "warn", what: "metadata", detail: "proxied", fix: "list the real issuer" };
  const skip: Check = { id: "token.obtain", ok: true, status: "skip", what: "token", detail: "no profile", fix: "pass --profile" };
  const fail: Check = { id: "token.audience", ok: false, status: "fail", what: "audience", detail: "a vs b", fix: "bootstrap --audience b" };

  it("renders ✓ ✗ ! -, and the fix line for failures and warnings only", () => {
    expect(renderChecks([passed("a", "d"), warn, skip, fail])).toEqual(["✓ a: d", "! metadata: proxied", "    fix: list the real issuer", "- token: no profile", "✗ audience: a vs b", "    fix: bootstrap --audience b"]);
  });

  it("a check without status keeps pass/fail from ok (bootstrap's output is unchanged)", () => {
    expect(statusOf(passed("x"))).toBe("pass");
    expect(statusOf(failed("y", undefined))).toBe("fail");
    expect(renderChecks([failed("y", "z", "f")], { indent: "  " })).toEqual(["  ✗ y: z", "      fix: f"]);
  });

  it("JSON: id, status, what, detail, and fix except on passes", () => {
    expect(checksStatusJson([{ ...passed("a"), id: "x.a", fix: "never" }, warn, skip])).toEqual([
      { id: "x.a", status: "pass", what: "a" },
      { id: "as.metadata", status: "warn", what: "metadata", detail: "proxied", fix: "list the real issuer" },
      { id: "token.obtain", status: "skip", what: "token", detail: "no profile", fix: "pass --profile" },
    ]);
  });
});
