import { ENDPOINTS, type IssuerMetadata, markControl, NetworkError } from "../../sdk.js";

/**
 * The one departure from the discovery rules an OCI IAM identity domain needs (docs/idp/oci.md).
 *
 * A domain lives at https://idcs-<guid>.identity.oraclecloud.com, but its
 * /.well-known/openid-configuration names `"issuer": "https://identity.oraclecloud.com/"`, the value
 * every domain's tokens carry by default. RFC 8414 §3.3 and OpenID Connect Discovery §4.3 say to
 * refuse such a document, and so does mcp-auth for every other server; without this, `token`,
 * `login` and `--exchange oci-upst` all fail on a real domain.
 *
 * Why accept it rather than store the endpoints in the profile: a user types (or an MCP server's
 * metadata lists) the domain URL, and expects every path to it to work the same — a profile made by
 * `bootstrap oci`, one made by hand with `profiles add --issuer`, and `login <mcp-url>`. Fixed
 * endpoints would fix only the first, and would go stale if Oracle moved one.
 *
 * What makes it safe: the check is against facts the document cannot choose. Only an https URL whose
 * host is idcs-<guid>.identity.oraclecloud.com (no other port, no path) — the URL we fetched from,
 * whose certificate TLS checked — and only the exact documented issuer string. Every endpoint a
 * client could use must then be on that same host (a relative path, as Oracle's own example shows,
 * is resolved against it); anything else is refused outright, not passed on to the generic check.
 * Other URL fields (live domains add `secure_*` endpoints on a regional host) are dropped, so nothing
 * can call them later. The metadata keeps the documented issuer, so ID tokens are checked against the
 * `iss` the domain really puts in them.
 */
export const IDCS_HOST = /^idcs-[0-9a-z]+\.identity\.oraclecloud\.com$/i;
/** What "Retrieve OpenID Discovery Doc" names as issuer, and tokens carry unless the domain set its own. */
export const IDCS_TOKEN_ISSUER = "https://identity.oraclecloud.com/";

const refused = (domain: string, why: string) =>
  new NetworkError(markControl(`the OCI identity domain ${domain} serves metadata naming ${IDCS_TOKEN_ISSUER} as its issuer (as documented), but ${why}; refusing it`), {
    code: "metadata_refused",
    hint: "a real domain lists its endpoints on its own host: check the domain URL and the network path to it (proxy, DNS)",
  });

/**
 * The metadata to use for an OCI domain's discovery document, undefined when `fetchedFor` is not a
 * domain or the document names another issuer (the generic check then refuses it as usual).
 *
 * @example
 * idcsMetadata("https://idcs-0a1b.identity.oraclecloud.com", { issuer: "https://identity.oraclecloud.com/", token_endpoint: "https://idcs-0a1b.identity.oraclecloud.com:443/oauth2/v1/token" });
 * // → { issuer: "https://identity.oraclecloud.com/", token_endpoint: "https://idcs-0a1b.identity.oraclecloud.com/oauth2/v1/token" }
 */
export function idcsMetadata(fetchedFor: string, doc: Record<string, unknown>): IssuerMetadata | undefined {
  let domain: URL;
  try {
    domain = new URL(fetchedFor);
  } catch {
    return undefined;
  }
  const bare = domain.protocol === "https:" && domain.port === "" && !domain.username && !domain.password && !domain.search && !domain.hash && (domain.pathname === "/" || domain.pathname === "");
  if (!bare || !IDCS_HOST.test(domain.hostname) || doc.issuer !== IDCS_TOKEN_ISSUER) return undefined;

  const out: Record<string, unknown> = { issuer: IDCS_TOKEN_ISSUER };
  for (const [field, value] of Object.entries(doc)) {
    if (field === "issuer" || field === "mtls_endpoint_aliases") continue; // the issuer is set above; aliases are not offered by IDCS, never trusted here
    if (!(ENDPOINTS as readonly string[]).includes(field)) {
      // Keep data, drop URLs nothing here may call (secure_* endpoints, policy pages…).
      if (typeof value !== "string" || !/^[a-z][a-z0-9+.-]*:/i.test(value)) out[field] = value;
      continue;
    }
    if (typeof value !== "string") throw refused(domain.host, `its ${field} is not a string`);
    let url: URL;
    try {
      // A path ("/oauth2/v1/token", as in Oracle's example) is on the domain by construction; "//host" is not a path.
      url = value.startsWith("/") && !value.startsWith("//") ? new URL(value, domain.origin) : new URL(value);
    } catch {
      throw refused(domain.host, `its ${field} is not a URL`);
    }
    if (url.protocol !== "https:" || url.hostname.toLowerCase() !== domain.hostname.toLowerCase() || url.port !== "" || url.username || url.password) {
      throw refused(domain.host, `its ${field} points elsewhere (${url.protocol}//${url.host})`);
    }
    out[field] = url.href;
  }
  if (typeof out.token_endpoint !== "string") throw refused(domain.host, "it has no token_endpoint");
  return out as IssuerMetadata;
}
