import { statusOf, type Check } from "../core/checks.js";

/**
 * The one renderer of checks (bootstrap, doctor, init): `✓ what: detail`, or `✗ what: detail`
 * followed by a `fix:` line; colour only when the caller's terminal wants it.
 */
export interface RenderOptions {
  /** Prefix of every line (checks usually sit under a heading). */
  indent?: string;
  color?: boolean;
}

export function renderChecks(checks: readonly Check[], o: RenderOptions = {}): string[] {
  const indent = o.indent ?? "";
  const paint = (code: number, s: string) => (o.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const lines: string[] = [];
  for (const c of checks) {
    const mark = { pass: paint(32, "✓"), fail: paint(31, "✗"), warn: paint(33, "!"), skip: paint(2, "-") }[statusOf(c)];
    lines.push(`${indent}${mark} ${c.what}${c.detail ? `: ${c.detail}` : ""}`);
    if ((statusOf(c) === "fail" || statusOf(c) === "warn") && c.fix) lines.push(`${indent}    ${paint(2, "fix:")} ${c.fix}`);
  }
  return lines;
}

/** The JSON form: a plain list, with the fields that are set and `fix` only on failures. */
export function checksJson(checks: readonly Check[]): Check[] {
  return checks.map((c) => ({
    ok: c.ok,
    what: c.what,
    ...(c.detail !== undefined ? { detail: c.detail } : {}),
    ...(!c.ok && c.fix !== undefined ? { fix: c.fix } : {}),
  }));
}

/** doctor's JSON form: every check with its id and status; `fix` where there is one to give. */
export function checksStatusJson(checks: readonly Check[]): Array<{ id: string; status: string; what: string; detail?: string; fix?: string }> {
  return checks.map((c) => ({
    id: c.id ?? "",
    status: statusOf(c),
    what: c.what,
    ...(c.detail !== undefined ? { detail: c.detail } : {}),
    ...(c.fix !== undefined && statusOf(c) !== "pass" ? { fix: c.fix } : {}),
  }));
}
