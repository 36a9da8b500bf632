import { UsageError } from "../errors.js";
import type { Profile } from "../profile.js";

/**
 * A profile's token goes only to its own server: a URL its `mcpUrl` or its http(s) `resource` covers.
 * `proxy --url`, `doctor --url` and `add-client --url` come from files a cloned repository can plant
 * (`.cursor/mcp.json`, `.vscode/mcp.json`, `.mcp.json`), so the URL alone never decides where a token
 * goes. `audience` is not a server: it is whatever name the IdP gives an API (Auth0 documents its
 * identifiers as logical names that are never called), so it covers nothing. Profile-less tokens
 * (`token --issuer …`) go to whoever ran the command, and `doctor --token-stdin` sends only the token
 * it was given: the rule binds what mcp-auth itself sends with a profile's token.
 */

/**
 * Does `base` cover `url`? Same origin (scheme, host, port; WHATWG URL lower-cases the host and drops
 * default ports) and a path equal to or under base's, segment by segment: `/mcp` covers `/mcp`,
 * `/mcp/` and `/mcp/sub`, not `/mcpx` or `/other/mcp`. Both are parsed as WHATWG URLs first, so dot
 * segments (`..`, `%2e%2e`) are resolved exactly as fetch will send them, and `..` cannot climb out.
 * Percent-encoded unreserved characters compare equal to themselves (RFC 3986 §6.2.2). Queries and
 * fragments are not part of the comparison, as in RFC 9728 §3.3 and the MCP SDK's resource check.
 */
export function covers(base: string | URL, url: string | URL): boolean {
  const b = httpUrl(base);
  const u = httpUrl(url);
  if (!b || !u || u.username || u.password || b.origin !== u.origin) return false;
  const bs = segments(b);
  const us = segments(u);
  if (us.length < bs.length || bs.some((s, i) => s !== us[i])) return false;
  // Below the base path: nothing a server might still decode into a separator or a dot segment
  // (`..%2F`, `%5C`, Tomcat's `..;`).
  return us.slice(bs.length).every((s) => !/%2F|%5C|%00/i.test(s) && ![".", ".."].includes(s.split(";")[0]!));
}

/** The URLs that name a profile's server: its mcpUrl and an http(s) resource indicator. */
export function serversOf(p: Pick<Profile, "mcpUrl" | "resource">): string[] {
  return [p.mcpUrl, p.resource].filter((s): s is string => typeof s === "string" && httpUrl(s) !== undefined);
}

export function profileCovers(p: Pick<Profile, "mcpUrl" | "resource">, url: string | URL): boolean {
  return serversOf(p).some((s) => covers(s, url));
}

/**
 * Refuses (exit 2) to use profile `p`'s token for `url` unless the profile covers it; the message names
 * the profile's server and the command that sets one up for `url`.
 */
export function assertCovers(p: Profile, url: URL, asker?: string): void {
  if (profileCovers(p, url)) return;
  const servers = serversOf(p);
  const target = asker ? `${url.href} (${asker})` : url.href;
  const login = `mcp-auth login ${shellWord(url.href)}`;
  if (!servers.length) {
    throw new UsageError(`profile "${p.name}" names no MCP server (no mcpUrl, no http(s) resource), so mcp-auth sends its token to none, ${target} included`, {
      hint: `set up a profile for that server: ${login}; or, if it is ${p.name}'s own server: mcp-auth profiles set ${p.name} --mcp-url ${shellWord(url.href)}`,
    });
  }
  throw new UsageError(`profile "${p.name}" is for ${servers.join(" and ")}, not ${target}: its token goes only to its own server`, {
    hint: `set up a profile for ${url.href}: ${login} (or mcp-auth profiles add NAME --mcp-url ${shellWord(url.href)})`,
  });
}

function httpUrl(v: string | URL): URL | undefined {
  try {
    const u = new URL(String(v));
    return u.protocol === "https:" || u.protocol === "http:" ? u : undefined;
  } catch {
    return undefined;
  }
}

/** Path segments without trailing empty ones (`/mcp/` is `/mcp`), each with its percent-encoding normalised. */
function segments(u: URL): string[] {
  const s = u.pathname.split("/").slice(1).map(normalise);
  while (s.length && s.at(-1) === "") s.pop();
  return s;
}

/** `%6D` → `m` (unreserved characters decoded), `%2f` → `%2F` (other escapes upper-cased). */
function normalise(segment: string): string {
  return segment.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${hex.toUpperCase()}`;
  });
}

/** One word of a command printed for the user to run: bare when safe, else single-quoted. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,~-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
