import { relativeTime } from "./checks.js";
import { stripControl } from "../io/sanitize.js";

/**
 * What a token says about itself, for `decode` and `doctor`: the JWT's header and claims, never its
 * signature, never the token. Claims are server text: control characters are removed from every value.
 */
export type Decoded =
  | { kind: "jwt"; header: Record<string, unknown>; claims: Record<string, unknown> }
  | { kind: "opaque"; length: number; why: string };

function part(s: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(s)) return undefined;
  try {
    const v = JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (clean(v) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Every string inside, keys included, without control characters or escape sequences. */
function clean(v: unknown): unknown {
  if (typeof v === "string") return stripControl(v).replace(/[\n\r\t]/g, " ");
  if (Array.isArray(v)) return v.map(clean);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [clean(k) as string, clean(x)]));
  return v;
}

export function decodeToken(token: string): Decoded {
  const parts = token.trim().split(".");
  if (parts.length === 5) return { kind: "opaque", length: token.length, why: "it is an encrypted JWT (JWE): only the server can read it" };
  if (parts.length !== 3) return { kind: "opaque", length: token.length, why: "it is not a JWT (an opaque reference only the server can look up)" };
  const header = part(parts[0]!);
  const claims = part(parts[1]!);
  if (!header || !claims) return { kind: "opaque", length: token.length, why: "it has three parts but they are not base64url JSON, so it is not a JWT" };
  return { kind: "jwt", header, claims };
}

/** `aud` as a list (RFC 7519 allows a string or an array). */
export function audiences(claims: Record<string, unknown>): string[] {
  const a = claims.aud;
  return typeof a === "string" ? [a] : Array.isArray(a) ? a.filter((x): x is string => typeof x === "string") : [];
}

/** `scope` (a string, RFC 8693) or `scp` (a list, Entra/Okta) as a list. */
export function scopesOf(claims: Record<string, unknown>): string[] {
  if (typeof claims.scope === "string") return claims.scope.split(" ").filter(Boolean);
  if (Array.isArray(claims.scp)) return claims.scp.filter((x): x is string => typeof x === "string");
  if (typeof claims.scp === "string") return claims.scp.split(" ").filter(Boolean);
  return [];
}

/** A unix time as a local date and time with its offset: 2026-11-29 13:00:00 +01:00. */
export function localTime(sec: number): string {
  const d = new Date(sec * 1000);
  const p = (n: number) => String(Math.abs(n)).padStart(2, "0");
  const off = -d.getTimezoneOffset();
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${off >= 0 ? "+" : "-"}${p(Math.trunc(off / 60))}:${p(off % 60)}`;
}

const TIMES = ["iat", "nbf", "exp", "auth_time"] as const;
const SHOWN = ["iss", "sub", "aud", "scope", "scp", "azp", "client_id", "iat", "nbf", "exp"];

/** The rows decode prints: the well-known claims first, in a fixed order, times made readable. */
export function claimRows(claims: Record<string, unknown>, nowSec: number): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
  for (const k of SHOWN) {
    const v = claims[k];
    if (v === undefined) continue;
    if ((TIMES as readonly string[]).includes(k) && typeof v === "number" && Number.isFinite(v)) {
      const rel = relativeTime(v - nowSec);
      const note = k === "exp" ? (v > nowSec ? `expires ${rel}` : `EXPIRED ${rel}`) : k === "nbf" && v > nowSec ? `NOT YET VALID, valid ${rel}` : rel;
      rows.push([k, `${localTime(v)} (${note})`]);
    } else rows.push([k, k === "aud" ? audiences(claims).join(", ") || show(v) : show(v)]);
  }
  for (const [k, v] of Object.entries(claims)) if (!SHOWN.includes(k)) rows.push([k, show(v)]);
  return rows;
}

/** Decodes a JWT's claims without verifying it (to explain, never to trust). */
export function peekClaims(jwt: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
  } catch {
    return {};
  }
}
