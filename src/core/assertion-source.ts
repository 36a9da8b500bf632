import { UsageError } from "../errors.js";
import type { Federation, ProfileAssertion } from "../profile.js";

/**
 * Where a CI job's identity token is (`--assertion-from`): a place, never the token. Kept apart from
 * the federation flows (./federation.ts) so profiles and targets can validate it without them.
 */
export type AssertionSource = { kind: "github-actions"; audience?: string } | { kind: "env"; name: string } | { kind: "file"; path: string };

/** Parses `github-actions[:AUDIENCE] | env:VAR | file:PATH` (a place, never a token). */
export function parseAssertionSource(raw: string): AssertionSource {
  if (raw === "github-actions") return { kind: "github-actions" };
  if (raw.startsWith("github-actions:")) {
    const audience = raw.slice("github-actions:".length);
    if (!audience) throw new UsageError("--assertion-from github-actions: needs an audience after the colon (or none at all)");
    return { kind: "github-actions", audience };
  }
  if (raw.startsWith("env:") && /^[A-Za-z_][A-Za-z0-9_]*$/.test(raw.slice(4))) return { kind: "env", name: raw.slice(4) };
  if (raw.startsWith("file:") && raw.length > 5) return { kind: "file", path: raw.slice(5) };
  // A JWT pasted here would land in the config and in `ps`: refuse it without echoing it.
  const looksLikeToken = raw.split(".").length === 3 && raw.length > 40;
  throw new UsageError(looksLikeToken ? "--assertion-from takes where the CI token is, not the token itself" : `--assertion-from: unknown source "${raw}"`, {
    hint: "use github-actions[:AUDIENCE], env:VAR or file:PATH",
  });
}

export function describeSource(s: AssertionSource): string {
  return s.kind === "github-actions" ? `GitHub Actions ID token${s.audience ? ` (audience ${s.audience})` : ""}` : s.kind === "env" ? `$${s.name}` : s.path;
}

/** Validates `--assertion-from` / `--federation` / `--subject-token-type` into what a profile stores. */
export function assertionSetting(from: string, federation: Federation | undefined, tokenType?: string): ProfileAssertion {
  parseAssertionSource(from);
  return { from, federation: federation ?? "client-assertion", ...(tokenType ? { subjectTokenType: tokenType } : {}) };
}
