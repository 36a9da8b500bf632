/**
 * Everything mcp-auth prints for a person, on stderr and on stdout, passes through here: text a
 * server or a file sent (error descriptions, WWW-Authenticate, HTML titles, admin API messages, a
 * client config's server names, a token's claims) may carry terminal escape sequences, and a hostile
 * or careless server may echo a secret back. So control characters are stripped and every secret this
 * process knows of is replaced, in the forms it may travel in (plain, URL-encoded, and base64 as in
 * an HTTP Basic header). Machine output (a token, `--json`, the proxy's JSON-RPC) is written as is.
 */

const known = new Set<string>();
/** Environment variables that held a secret this run (kept out of child processes such as the browser). */
const secretEnvNames = new Set<string>(["MCP_AUTH_CLIENT_SECRET"]);

/** Secrets shorter than this are not scrubbed: replacing "a" everywhere would garble every line. */
const MIN_LENGTH = 4;

/** Remembers a secret so it is never printed. `clientId` adds the HTTP Basic forms of `id:secret`. */
export function registerSecret(value: string | undefined | null, o: { clientId?: string } = {}): void {
  if (!value || value.length < MIN_LENGTH) return;
  const forms = [value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2), b64(value)];
  if (o.clientId !== undefined) {
    forms.push(b64(`${o.clientId}:${value}`));
    // RFC 6749 §2.3.1: id and secret are form-encoded before the Basic encoding.
    forms.push(b64(`${formEncode(o.clientId)}:${formEncode(value)}`));
  }
  for (const f of forms) if (f.length >= MIN_LENGTH) known.add(f);
}

/** Remembers that an environment variable holds a secret (its value is registered too). */
export function registerSecretEnv(name: string, env: NodeJS.ProcessEnv): void {
  secretEnvNames.add(name);
  registerSecret(env[name]);
}

/** A copy of `env` without the variables that carry mcp-auth's secrets, for child processes. */
export function envWithoutSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || secretEnvNames.has(k) || /^MCP_AUTH_.*(SECRET|PASSWORD|TOKEN)/i.test(k) || known.has(v)) continue;
    out[k] = v;
  }
  return out;
}

function b64(s: string): string {
  return Buffer.from(s, "utf8").toString("base64");
}

function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, "+");
}

// C0 controls but \t and \n, DEL, and C1 controls (0x80-0x9f: CSI and OSC have 8-bit forms).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// A whole escape sequence (CSI … final byte, OSC … BEL/ST, as OSC 8 links and OSC 52 clipboard writes
// use), so no stray "[2J" is left behind.
// eslint-disable-next-line no-control-regex
const ESCAPE_SEQUENCE = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u009b[0-?]*[ -/]*[@-~]|\u009d[^\u0007\u001b\u009c]*(?:\u0007|\u001b\\|\u009c)?/g;
// Bidirectional overrides, embeddings, isolates and marks: they reorder what the terminal shows, so a
// value could read as something else ("Trojan Source", CVE-2021-42574).
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// The colours of mcp-auth's own painter (src/io/terminal.ts): the only sequences kept on output.
// eslint-disable-next-line no-control-regex
const OWN_COLOURS = /(\u001b\[(?:0|1|2|31|32|33)m)/;

/**
 * Server text kept or quoted in a message: every control character (C0, DEL, C1) becomes "?", so a
 * value stays recognisable but can never drive the terminal.
 */
export function markControl(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, "?");
}

/** Removes terminal control sequences, control characters (keeps newlines and tabs) and bidi controls. */
export function stripControl(text: string): string {
  return text.replace(ESCAPE_SEQUENCE, "").replace(CONTROL, "").replace(BIDI, "");
}

/** One value shown inside a line of human output (a server name, a URL, a claim): no control, no line break. */
export function oneLine(text: string): string {
  return stripControl(text).replace(/[\n\t]+/g, " ");
}

/** Replaces every known secret with "[redacted]". */
export function scrubSecrets(text: string): string {
  if (!known.size) return text;
  // Longest first, so a secret that contains another is replaced whole.
  for (const s of [...known].sort((a, b) => b.length - a.length)) {
    if (text.includes(s)) text = text.split(s).join("[redacted]");
  }
  return text;
}

/** What may reach a terminal or a log: no control sequences, no known secrets. */
export function sanitize(text: string): string {
  return scrubSecrets(stripControl(text));
}

/**
 * Human output on a colour terminal (src/io/terminal.ts `print`): `sanitize`, except that the colour
 * codes of mcp-auth's own painter survive; the values painted were cleaned by their callers.
 */
export function sanitizeOutput(text: string): string {
  return text
    .split(OWN_COLOURS)
    .map((part, i) => (i % 2 ? part : sanitize(part)))
    .join("");
}

/** For tests, where one process runs many commands: forget everything registered. */
export function resetSecrets(): void {
  known.clear();
  secretEnvNames.clear();
  secretEnvNames.add("MCP_AUTH_CLIENT_SECRET");
}
