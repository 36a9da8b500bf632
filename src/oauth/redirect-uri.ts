import { UsageError } from "../errors.js";

/**
 * Exact loopback redirect URIs (`--redirect-uri`). Pre-registered clients often allow exactly one
 * redirect — a fixed port, a path of their own, `localhost` rather than 127.0.0.1 — and the IdP
 * compares the whole string (docs/redirect-uris.md). mcp-auth can only receive a redirect it listens
 * for, so the URI must be plain http to a loopback host with an explicit port: RFC 8252 §7.3.
 */
export interface LoopbackRedirect {
  /** The URI exactly as given: what is sent as redirect_uri, byte for byte. */
  uri: string;
  /** The addresses to listen on: `localhost` means both loopbacks, since a browser may pick either. */
  hosts: Array<"127.0.0.1" | "::1">;
  port: number;
  /** The callback path the listener answers (what URL parsing makes of the given path). */
  path: string;
}

const SHAPE = "http://localhost:PORT/PATH, http://127.0.0.1:PORT/PATH or http://[::1]:PORT/PATH";

/** Why `uri` cannot be a loopback redirect URI mcp-auth listens for, or undefined when it can. */
export function loopbackRedirectProblem(uri: string): string | undefined {
  if (/[\s\u0000-\u001f\u007f]/.test(uri)) return "it contains spaces or control characters";
  if (!URL.canParse(uri)) return "it is not an absolute URI";
  const u = new URL(uri);
  if (u.protocol !== "http:") return `mcp-auth receives the redirect itself, on this machine, so it must be plain http:// (not ${u.protocol.replace(/:$/, "")})`;
  if (u.username || u.password) return "it carries a user name or password";
  if (uri.includes("#")) return "it contains a fragment (RFC 6749 §3.1.2)";
  if (u.search || uri.includes("?")) return "it has a query, which mcp-auth's listener cannot keep apart from the login's own parameters";
  if (!["localhost", "127.0.0.1", "[::1]"].includes(u.hostname)) return `its host must be localhost, 127.0.0.1 or [::1] (not ${u.hostname})`;
  // The authority as written: URL() drops a default port 80, but the IdP compares the text.
  const authority = /^http:\/\/([^/?#]*)/i.exec(uri)![1]!;
  const port = /:(\d+)$/.exec(authority)?.[1];
  if (!port) return "it names no port (the listener needs a fixed one: http://localhost:PORT/…)";
  if (Number(port) < 1 || Number(port) > 65535) return `port ${port} is out of range (1-65535)`;
  // The token request repeats the URI as a URL object prints it (openid-client): both requests must carry the same text.
  if (u.href !== uri) return `write it in its normal form, ${u.href} (the IdP compares the text, and the token request sends that form)`;
  return undefined;
}

/**
 * The listener a redirect URI asks for; a usage error (exit 2) naming the flag when it is not one
 * mcp-auth can receive.
 * @example
 * loopbackRedirect("http://localhost:3118/callback", "--redirect-uri");
 * // → { uri: "http://localhost:3118/callback", hosts: ["127.0.0.1", "::1"], port: 3118, path: "/callback" }
 */
export function loopbackRedirect(uri: string, flag = "--redirect-uri"): LoopbackRedirect {
  const problem = loopbackRedirectProblem(uri);
  if (problem) throw new UsageError(`${flag} ${JSON.stringify(uri)} cannot be used: ${problem}`, { hint: `pass the exact URI registered at the IdP, of the form ${SHAPE}` });
  const u = new URL(uri);
  const port = Number(/:(\d+)$/.exec(/^http:\/\/([^/?#]*)/i.exec(uri)![1]!)![1]);
  const hosts: LoopbackRedirect["hosts"] = u.hostname === "localhost" ? ["127.0.0.1", "::1"] : u.hostname === "[::1]" ? ["::1"] : ["127.0.0.1"];
  return { uri, hosts, port, path: u.pathname };
}

/**
 * The answer of an IdP that refused the redirect URI, recognised by its documented texts
 * (docs/redirect-uris.md): on the authorization endpoint's error page, or, when the URI differs between
 * the authorization and the token request, on the code exchange.
 */
const MISMATCH: Array<{ idp: string; pattern: RegExp }> = [
  { idp: "oidc-provider", pattern: /redirect_uri did not match any of the client's registered redirect_uris|invalid_redirect_uri/ },
  { idp: "Keycloak", pattern: /Invalid parameter: redirect_uri|Incorrect redirect_uri/ },
  { idp: "Microsoft Entra ID", pattern: /AADSTS50011|AADSTS500113|The provided value for the input parameter 'redirect_uri' is not valid/i },
  { idp: "Okta", pattern: /The 'redirect_uri' parameter must be a Login redirect URI|illegal_redirect_uri/i },
  { idp: "Google", pattern: /redirect_uri_mismatch/ },
  { idp: "an OAuth server", pattern: /invalid redirect_uri|redirect_uri (?:does not|doesn't|did not) match|redirect uri mismatch/i },
];

/** Which IdP's redirect-URI refusal `text` is, or undefined when it is not one. */
export function redirectMismatch(text: string): string | undefined {
  return MISMATCH.find((m) => m.pattern.test(text))?.idp;
}
