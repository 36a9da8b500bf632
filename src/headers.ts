import { UsageError } from "./errors.js";

/**
 * Custom request headers beside OAuth (`--header 'Name: value'`, `--header-env Name=VAR`), for MCP
 * servers or gateways that want an API key, a tenant or a routing header next to the bearer token
 * (docs/enterprise.md "Custom headers"). Only node built-ins: the cached-token fast path (src/fast.ts)
 * loads it.
 *
 * `--header-env` names a variable, never a value: what goes into a client's config file is the
 * reference, and the value is read from the environment of the process that sends the request (the
 * proxy, or the helper the client runs), each time it starts.
 */
export type HeaderSpec = { name: string; value: string } | { name: string; env: string };

/**
 * Headers mcp-auth or the MCP transport own: the bearer token, what HTTP itself frames, and the MCP
 * protocol's own headers (Streamable HTTP 2025-11-25 and the 2026-07-28 request headers). An extra
 * header never replaces one of them.
 */
const RESERVED = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "host",
  "content-length",
  "content-type",
  "content-encoding",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "expect",
  "accept",
  "last-event-id",
  "mcp-session-id",
  "mcp-protocol-version",
  "mcp-method",
  "mcp-name",
]);

/** RFC 9110 §5.6.2 token: the characters a field name may have. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** RFC 9110 §5.5: visible characters, spaces and tabs; no CR, LF, NUL or other controls. */
const VALUE = /^[\t\x20-\x7e\x80-\uffff]*$/;
const MAX_VALUE = 8192;

function checkName(name: string, flag: string): string {
  if (!TOKEN.test(name)) throw new UsageError(`${flag}: ${JSON.stringify(name)} is not a header name (letters, digits and !#$%&'*+.^_\`|~- only)`);
  const lower = name.toLowerCase();
  if (RESERVED.has(lower) || lower.startsWith("mcp-param-") || lower.startsWith("sec-")) {
    throw new UsageError(`${flag}: mcp-auth or the MCP transport sets ${name} itself; an extra header cannot replace it`, {
      hint: lower === "authorization" ? "the profile's token is the Authorization header; for a second credential the server names another header (e.g. X-Api-Key)" : undefined,
    });
  }
  return name;
}

/** A header value is sent as it is: refused when it could end the header line or smuggle another. */
export function checkHeaderValue(name: string, value: string, what: string): string {
  const v = value.trim();
  if (!VALUE.test(v)) throw new UsageError(`${what}: the value of ${name} contains a line break or a control character`);
  if (v.length > MAX_VALUE) throw new UsageError(`${what}: the value of ${name} is longer than ${MAX_VALUE} characters`);
  return v;
}

/**
 * `--header 'Name: value'` (also `Name:value`).
 * @example
 * parseHeader("X-Tenant: acme"); // → { name: "X-Tenant", value: "acme" }
 */
export function parseHeader(raw: string, flag = "--header"): HeaderSpec {
  const i = raw.indexOf(":");
  if (i <= 0) throw new UsageError(`${flag} ${JSON.stringify(raw)}: expected "Name: value"`, { hint: "for a secret value, name a variable instead: --header-env Name=VAR" });
  const name = checkName(raw.slice(0, i).trim(), flag);
  return { name, value: checkHeaderValue(name, raw.slice(i + 1), flag) };
}

/**
 * `--header-env Name=VAR`: the header's value is read from $VAR when the request is sent.
 * @example
 * parseHeaderEnv("X-Api-Key=ACME_KEY"); // → { name: "X-Api-Key", env: "ACME_KEY" }
 */
export function parseHeaderEnv(raw: string, flag = "--header-env"): HeaderSpec {
  const i = raw.indexOf("=");
  if (i <= 0) throw new UsageError(`${flag} ${JSON.stringify(raw)}: expected Name=VAR (the variable that holds the value)`);
  const name = checkName(raw.slice(0, i).trim(), flag);
  const env = raw.slice(i + 1).trim();
  if (!ENV_NAME.test(env)) throw new UsageError(`${flag} ${name}=${JSON.stringify(env)}: expected the name of an environment variable, not a value`);
  return { name, env };
}

/** Both flags' values as specs, each name at most once. */
export function headerSpecs(headers: readonly string[] = [], headerEnvs: readonly string[] = []): HeaderSpec[] {
  const specs = [...headers.map((h) => parseHeader(h)), ...headerEnvs.map((h) => parseHeaderEnv(h))];
  const seen = new Set<string>();
  for (const s of specs) {
    const k = s.name.toLowerCase();
    if (seen.has(k)) throw new UsageError(`header ${s.name} is given twice`);
    seen.add(k);
  }
  return specs;
}

/**
 * The headers to send, their env values read now. A variable that is unset or empty is an error naming
 * it, never an empty header. `onSecret` is told each value read from the environment (to redact it).
 */
export function resolveHeaders(specs: readonly HeaderSpec[], env: NodeJS.ProcessEnv, onSecret?: (value: string) => void): Array<[string, string]> {
  return specs.map((s) => {
    if ("value" in s) return [s.name, s.value];
    const v = env[s.env];
    if (!v) throw new UsageError(`header ${s.name}: $${s.env} is not set`, { hint: `export ${s.env} in the environment the MCP client (or mcp-auth) starts from` });
    const value = checkHeaderValue(s.name, v, `$${s.env}`);
    onSecret?.(value);
    return [s.name, value];
  });
}

/** The flags that give these specs again (an entry's argv). */
export function headerArgs(specs: readonly HeaderSpec[]): string[] {
  return specs.flatMap((s) => ("value" in s ? ["--header", `${s.name}: ${s.value}`] : ["--header-env", `${s.name}=${s.env}`]));
}
