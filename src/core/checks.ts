/**
 * One finding of bootstrap, doctor or init: what was checked, whether it held, and how to fix it.
 * Data only; src/io/checks.ts renders a list of them for the terminal or as JSON.
 */
export interface Check {
  ok: boolean;
  what: string;
  detail?: string;
  /** How to fix it, when !ok. */
  fix?: string;
  /** A stable name (doctor's --json). */
  id?: string;
  /**
   * Finer than ok: "warn" works but is worth knowing (ok stays true), "skip" could not run because an
   * earlier step failed (ok stays true: it is not a failure of its own). Absent: pass/fail from ok.
   */
  status?: CheckStatus;
}

export type CheckStatus = "pass" | "fail" | "warn" | "skip";

export function statusOf(c: Check): CheckStatus {
  return c.status ?? (c.ok ? "pass" : "fail");
}

export const passed = (what: string, detail?: string): Check => ({ ok: true, what, ...(detail ? { detail } : {}) });
export const failed = (what: string, detail: string | undefined, fix?: string): Check => ({ ok: false, what, ...(detail ? { detail } : {}), ...(fix ? { fix } : {}) });

export function allPassed(checks: readonly Check[]): boolean {
  return checks.every((c) => c.ok);
}

/** "in 53 min", "2 h ago": for details such as a token's expiry. */
export function relativeTime(deltaSec: number): string {
  const a = Math.abs(deltaSec);
  const v = a < 90 ? `${Math.round(a)} s` : a < 5400 ? `${Math.round(a / 60)} min` : a < 172800 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return deltaSec >= 0 ? `in ${v}` : `${v} ago`;
}
