import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { AuthError, NetworkError, UsageError } from "../errors.js";
import { markControl, registerSecret } from "../io/sanitize.js";
import { checkUrl, type ServerMetadata } from "./urls.js";
import type { Fetch } from "./http.js";

/**
 * Client registration for an MCP-native setup, in the order of the MCP authorization spec
 * (2025-11-25, "Client registration priority"; docs/mcp-authorization.md): a Client ID
 * Metadata Document when the server supports it and the user has one, else RFC 7591 dynamic client
 * registration. mcp-auth registers as what it is: a native app with a loopback redirect and no secret
 * (`application_type: native` is required from the 2026-07-28 revision on).
 */
export interface Registration {
  client_id: string;
  /** Only when a server insists on making the client confidential. */
  client_secret?: string;
  token_endpoint_auth_method: "none" | "client_secret_basic" | "client_secret_post";
  redirect_uri: string;
  how: "dcr" | "cimd";
}

const clean = (s: string) => markControl(s).slice(0, 300);

/**
 * A Client ID Metadata Document URL as the spec requires of a client_id: https with a path
 * ("The `client_id` URL MUST use the "https" scheme and contain a path component").
 */
export function checkClientMetadataUrl(raw: string): string {
  const u = checkUrl(raw, "--client-metadata-url", false, "endpoint");
  if (u.protocol !== "https:" || u.pathname === "/" || u.pathname === "") {
    throw new UsageError(`--client-metadata-url must be an https URL with a path (it becomes the client_id), got ${u.href}`);
  }
  return u.href;
}

export interface DcrInput {
  redirectUri: string;
  scope?: string;
  /** Also ask for the device-code grant. */
  device?: boolean;
}

/** RFC 7591 §3.1: POST the client's metadata as JSON; §3.2.1 the answer, §3.2.2 the error. */
export async function registerClient(env: { fetch: Fetch; allowHttp: boolean }, metadata: ServerMetadata, input: DcrInput): Promise<Registration> {
  const endpoint = metadata.registration_endpoint;
  if (typeof endpoint !== "string") throw new UsageError(`the authorization server ${clean(String(metadata.issuer))} offers no dynamic client registration`);
  checkUrl(endpoint, "registration_endpoint", env.allowHttp, "endpoint");
  const body = {
    // Unique: Thunder refuses a second application of the same name (research §1.7), and an admin
    // auditing registered clients (OctoPerf) can tell which machine each one is.
    client_name: `mcp-auth on ${hostname().slice(0, 40)} ${randomBytes(3).toString("hex")}`,
    application_type: "native",
    redirect_uris: [input.redirectUri],
    grant_types: ["authorization_code", "refresh_token", ...(input.device ? ["urn:ietf:params:oauth:grant-type:device_code"] : [])],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
    ...(input.scope ? { scope: input.scope } : {}),
  };
  const res = await env.fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body),
  });
  let json: Record<string, unknown> | undefined;
  try {
    const parsed = (await res.json()) as unknown;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  const host = new URL(endpoint).host;
  const desc = typeof json?.error_description === "string" ? clean(json.error_description) : "";
  if (res.status === 403 && /Policy 'Trusted Hosts' rejected/.test(desc)) {
    // Keycloak's anonymous-registration policy (research §2.4): the redirect URI's host, or this machine, is not trusted.
    const what = /Host not trusted/.test(desc) ? "this machine's address" : `${new URL(input.redirectUri).hostname} (the loopback redirect's host)`;
    throw new AuthError(`Keycloak refused the registration: ${desc}`, {
      hint: `add ${what} to the realm's Trusted Hosts policy (Realm settings → Client registration → Trusted Hosts), or create the client with mcp-auth bootstrap keycloak and pass --client-id`,
      code: "registration_refused",
    });
  }
  if (res.status === 401 || res.status === 403) {
    // Thunder (OpenChoreo) and Keycloak with its default policies answer 401/403 to anonymous DCR.
    const why = typeof json?.error_description === "string" ? `: ${clean(json.error_description)}` : typeof json?.error === "string" ? `: ${clean(json.error)}` : "";
    throw new AuthError(`${host} refused dynamic client registration (HTTP ${res.status}${why}): it needs an initial access token or an admin-created client`, {
      hint: "pass --client-id of a client its admin registered (Thunder/OpenChoreo: mcp-auth bootstrap thunder; Keycloak: mcp-auth bootstrap keycloak)",
      code: "registration_refused",
    });
  }
  if (res.status >= 400) {
    const err = typeof json?.error === "string" ? clean(json.error) : `HTTP ${res.status}`;
    const desc = typeof json?.error_description === "string" ? `: ${clean(json.error_description)}` : "";
    const Err = res.status >= 500 ? NetworkError : AuthError;
    throw new Err(`dynamic client registration at ${host} failed: ${err}${desc}`, { hint: "pass --client-id of a client registered by the server's admin" });
  }
  const id = json?.client_id;
  if (typeof id !== "string" || !/^[\x21-\x7e]{1,256}$/.test(id)) throw new NetworkError(`dynamic client registration at ${host} answered ${res.status} without a usable client_id`);
  const secret = typeof json?.client_secret === "string" && json.client_secret ? json.client_secret : undefined;
  if (secret) registerSecret(secret, { clientId: id }); // scrubbed from everything printed from now on
  const method = json?.token_endpoint_auth_method;
  return {
    client_id: id,
    ...(secret ? { client_secret: secret } : {}),
    token_endpoint_auth_method: secret ? (method === "client_secret_post" ? "client_secret_post" : "client_secret_basic") : "none",
    redirect_uri: input.redirectUri,
    how: "dcr",
  };
}
