import { UsageError } from "../errors.js";

/**
 * Extra parameters for the authorization request (`--authorize-param KEY=VALUE`), e.g. Google's
 * `access_type=offline` and `prompt=consent`, without which it returns no refresh token
 * (docs/presets.md#google). They are added to the browser login's authorization URL only; the
 * parameters mcp-auth itself sends are refused, so a stored profile can never weaken PKCE or the
 * state check, nor send the code elsewhere.
 */

/** The parameters mcp-auth owns, with what to use instead where there is something. */
export const OWNED_AUTHORIZE_PARAMS: Readonly<Record<string, string | undefined>> = {
  state: undefined,
  code_challenge: undefined,
  code_challenge_method: undefined,
  redirect_uri: undefined,
  client_id: undefined,
  response_type: undefined,
  scope: "--scope",
  resource: "--resource",
  audience: "--audience",
};

/**
 * Credentials: they would sit in argv (visible in `ps`), config.json and the browser's history, and
 * none belongs on an authorization request.
 */
const CREDENTIALS = new Set(["client_secret", "client_assertion", "client_assertion_type", "code", "code_verifier", "assertion", "access_token", "refresh_token", "id_token_hint", "password", "subject_token", "actor_token"]);

const KEY = /^[A-Za-z0-9_.~-]{1,64}$/;
/** Printable text: no control, format or line/paragraph separator characters (they could hide in a URL shown to the user). */
const VALUE = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]{1,512}$/u;
export const MAX_AUTHORIZE_PARAMS = 16;

/** Why a key/value pair cannot be sent, or undefined when it can. */
function problem(key: string, value: string): string | undefined {
  if (!KEY.test(key)) return `"${key.slice(0, 64).replace(/[^\x21-\x7e]/g, "?")}" is not a parameter name (letters, digits, "_", ".", "~", "-"; at most 64)`;
  if (Object.hasOwn(OWNED_AUTHORIZE_PARAMS, key.toLowerCase())) {
    const instead = OWNED_AUTHORIZE_PARAMS[key.toLowerCase()];
    return `"${key}" is a parameter mcp-auth sends itself${instead ? `; use ${instead}` : ""}`;
  }
  if (CREDENTIALS.has(key.toLowerCase())) return `"${key}" carries a credential, which never goes on the command line, into config.json or into an authorization URL`;
  if (!VALUE.test(value)) return `the value of "${key}" must be 1 to 512 printable characters`;
  return undefined;
}

/** Parses repeated `KEY=VALUE` flags into a map (exit 2 on anything refused, naming the parameter). */
export function parseAuthorizeParams(values: readonly string[], flag = "--authorize-param"): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} wants KEY=VALUE, got "${v.slice(0, 80).replace(/[^\x20-\x7e]/g, "?")}"`, { hint: `e.g. ${flag} access_type=offline` });
    const key = v.slice(0, eq);
    const value = v.slice(eq + 1);
    const why = problem(key, value);
    if (why) throw new UsageError(`${flag} ${key.slice(0, 64).replace(/[^\x21-\x7e]/g, "?")}: refused: ${why}`);
    if (Object.hasOwn(out, key) && out[key] !== value) throw new UsageError(`${flag} ${key} is given twice with different values`);
    out[key] = value;
  }
  if (Object.keys(out).length > MAX_AUTHORIZE_PARAMS) throw new UsageError(`${flag}: at most ${MAX_AUTHORIZE_PARAMS} parameters`);
  return out;
}

/**
 * The stored parameters of a profile, checked again before use: config.json is a file on disk, and a
 * parameter mcp-auth owns must never reach the authorization URL from there either.
 */
export function checkAuthorizeParams(params: unknown, profile: string | null): Record<string, string> {
  if (params === undefined) return {};
  const bad = (why: string) => new UsageError(`profile "${profile ?? ""}" has unusable authorization parameters: ${why}`, { hint: `fix them with: mcp-auth profiles set ${profile ?? "NAME"} --authorize-param KEY=VALUE (or --authorize-param "" to clear them)` });
  if (!params || typeof params !== "object" || Array.isArray(params)) throw bad("not an object of strings");
  const entries = Object.entries(params as Record<string, unknown>);
  if (entries.length > MAX_AUTHORIZE_PARAMS) throw bad(`more than ${MAX_AUTHORIZE_PARAMS}`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (typeof v !== "string") throw bad(`"${k.slice(0, 64)}" is not a string`);
    const why = problem(k, v);
    if (why) throw bad(why);
    out[k] = v;
  }
  return out;
}
