import { UsageError } from "../errors.js";
import { defineInput, type InputSpec } from "../core/inputs.js";
import type { Fetch } from "../oauth/http.js";
import type { Grant } from "../profile.js";

/**
 * An IdP preset: what one big IdP needs from a profile, encoded once (facts and sources:
 * docs/presets.md). A preset only computes a profile from what the user typed; it never talks to
 * the network, so saving a preset profile works offline and the first request is the login.
 */
export interface PresetAnswers {
  clientId?: string;
  /** Entra: the directory (tenant) id. */
  tenant?: string;
  /** Okta, Auth0, GitHub Enterprise Server: the host (or https origin) of the IdP. */
  domain?: string;
  /** Okta: the custom authorization server id ("default"), or "org" for the org authorization server. */
  authServer?: string;
  /** Entra: the login host of a national cloud (default https://login.microsoftonline.com). */
  authority?: string;
  /** Google: another issuer (a test IdP); default https://accounts.google.com. */
  issuer?: string;
  audience?: string;
  scope?: string[];
  grant?: Grant;
  mcpUrl?: string;
  /** `--resource URI` (refused where the IdP refuses RFC 8707). */
  resource?: string;
  /** A client secret was given (its value never comes here). */
  hasSecret: boolean;
  authorizeParams?: Record<string, string>;
}

/** What the profile gets: the fields `profiles add` would set, computed from the answers. */
export interface PresetPlan {
  issuer: string;
  grant: Grant;
  scopes?: string[];
  audience?: string;
  resource?: string;
  authorizeParams?: Record<string, string>;
  /** How the client secret is sent, where the IdP documents one way only. */
  authMethod?: "client_secret_post";
  /** Non-secret facts kept in the profile: always `preset`; fixed endpoints for a server without discovery. */
  extra: Record<string, unknown>;
  /** Lines for the user: what the preset chose and why. */
  notes: string[];
}

/** A quirk's refusal text and the preset's fix for it. */
export interface PresetFix {
  /** Matches the IdP's error code or text, as mcp-auth reports it. */
  match: RegExp;
  /** The fix, for this profile (a command where there is one). */
  fix(profile: string): string;
}

/** A finding of doctor about a saved profile (no request needed). */
export interface PresetFinding {
  status: "pass" | "warn" | "fail";
  detail: string;
  fix?: string;
}

export interface Preset {
  id: string;
  title: string;
  summary: string;
  /** Where its facts are: docs/presets.md#id. */
  docs: string;
  /** The wizard's questions (and `init` flags) for this preset. */
  inputs: readonly InputSpec[];
  grants: readonly Grant[];
  /** Whether a client secret is needed for a grant ("required") or may be given ("optional"). */
  secret(grant: Grant): "required" | "optional" | "refused";
  plan(a: PresetAnswers): PresetPlan;
  /** Where to register the client (no dynamic registration on these IdPs): the portal steps. */
  setup(a: PresetAnswers): string[];
  /** A profile made some other way (`login URL`, `profiles add --issuer`) at this IdP. */
  matches(issuer: string): boolean;
  fixes: readonly PresetFix[];
  /** Doctor's checks of a saved profile against the IdP's quirks. */
  check?(p: PresetProfile, hasRefreshToken: boolean | undefined): PresetFinding[];
  /** Wraps the fetch of token-endpoint requests, for IdPs whose answers bend the standard (GitHub). */
  tokenFetch?(fetch: Fetch, tokenEndpoint: string): Fetch;
}

/** The profile fields a preset's checks read. */
export interface PresetProfile {
  name: string | null;
  issuer: string;
  grant: Grant;
  scopes?: string[];
  resource?: string;
  audience?: string;
  authorizeParams?: Record<string, string>;
}

export function definePreset(p: Preset): Preset {
  return p;
}

/**
 * `--domain dev-1.okta.com` or `--domain https://dev-1.okta.com`: the IdP's origin. A loopback http
 * origin is accepted for a test IdP (the usual https/loopback rule, checked again by addProfile).
 */
export function originOf(flag: string, value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`${flag} is required: ${what}`);
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `https://${value}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new UsageError(`${flag}: "${value.slice(0, 100)}" is not a host name or an https origin`);
  }
  if ((u.pathname !== "/" && u.pathname !== "") || u.search || u.hash || u.username || u.password) {
    throw new UsageError(`${flag} wants a host name (or an https origin), without a path: got "${value.slice(0, 100)}"`);
  }
  return u.origin;
}

/** Scopes as typed, split on spaces and commas, without duplicates. */
export function scopeList(scope: string[] | undefined): string[] {
  return [...new Set((scope ?? []).flatMap((s) => s.split(/[\s,]+/)).filter(Boolean))];
}

/** `extra` plus `add`, keeping the order of `base` first. */
export function withScopes(base: string[], add: readonly string[]): string[] {
  return [...new Set([...base, ...add])];
}

export const OIDC_SCOPES = ["openid", "profile", "email", "offline_access", "address", "phone"];

/** The questions every preset asks alike: the client id (in the vendor's words), the scopes, how to sign in, the MCP server. */
export const presetInputs = {
  clientId: (description: string, prompt: string) => defineInput({ name: "clientId", flag: "--client-id <id>", kind: "string", description, prompt, required: true }),
  scope: (dflt: string[]) => defineInput({ name: "scope", flag: "--scope <scope...>", kind: "list", description: "scopes to request", prompt: "Scopes (space-separated)", default: dflt }),
  grant: () => defineInput({ name: "grant", flag: "--grant <grant>", kind: "choice", choices: ["authorization_code", "device_code"], description: "how tokens are obtained", prompt: "How do you sign in", default: "authorization_code" }),
  mcpUrl: () => defineInput({ name: "mcpUrl", flag: "--mcp-url <url>", kind: "url", description: "the MCP server URL", prompt: "MCP server URL (empty: none)" }),
};
