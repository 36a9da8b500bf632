import type * as OC from "openid-client";
import { AuthError, UsageError } from "../errors.js";
import { openid } from "./client.js";
import { checkBrowserLogin, exchange, notThisLogin } from "./loopback.js";
import { markControl, registerSecret } from "../io/sanitize.js";

/**
 * Authorization code + PKCE (S256) without a listener: the person opens the URL in a browser on any
 * machine, signs in, and pastes back the address the browser was sent to (or just its code). Works
 * with any authorization server that allows the loopback redirect a native app registers: the
 * redirect goes to `redirectUri` on the browser's machine, where nothing answers, so the browser
 * shows an error page whose address bar holds the code (docs/headless-login.md).
 *
 * The pasted address gets the checks a loopback callback gets: `state`, then RFC 9207 `iss`, then
 * `error=`; openid-client checks them again on the code exchange, with the PKCE verifier.
 */
export interface PasteOptions {
  params: Record<string, string>;
  /** Sent as redirect_uri and on the code exchange (the path the pasted parameters are put on). */
  redirectUri: string;
  /** Shows the URL to the user. */
  show(url: string): Promise<void>;
  /** Reads the pasted line (the terminal, or piped stdin). */
  read(): Promise<string>;
}

/** Longer than any authorization response seen (codes of a few KB, plus state, iss, session_state). */
export const MAX_PASTE = 16 * 1024;

export async function pasteLogin(config: OC.Configuration, o: PasteOptions): Promise<OC.TokenEndpointResponse> {
  const client = await openid();
  checkBrowserLogin(config);
  const verifier = client.randomPKCECodeVerifier();
  registerSecret(verifier);
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    ...o.params,
    redirect_uri: o.redirectUri,
    response_type: "code",
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
  });
  await o.show(url.href);
  const callback = pastedCallback(await o.read(), o.redirectUri, state, config.serverMetadata());
  return exchange(client, config, callback, verifier, state, o.params.resource);
}

/**
 * The pasted line → the callback URL it stands for, on `redirectUri`, or a one-line error. Accepted:
 * the whole address (with or without `http://`, as some address bars copy it), its query string, or
 * the bare code. A bare code carries no state or iss to check; PKCE still binds it to this login,
 * so a code from any other login fails the exchange.
 */
export function pastedCallback(raw: string, redirectUri: string, state: string, metadata: OC.ServerMetadata): URL {
  if (raw.length > MAX_PASTE) throw new UsageError(`the pasted text is longer than ${MAX_PASTE} characters: not an address the browser was sent to`, { hint: "paste only the address from the browser's address bar" });
  const line = raw.trim().replace(/^["'<]+|["'>]+$/g, "");
  if (!line) throw new UsageError("nothing was pasted", { hint: "paste the address the browser was sent to after signing in, then press Enter" });
  const callback = new URL(redirectUri);
  const query = line.includes("?") ? line.slice(line.indexOf("?") + 1) : /(^|&)(code|error|state)=/.test(line) ? line : undefined;
  if (query === undefined) {
    // An address without its query (a scheme, or a host with a dot or port before the path)…
    if (/:\/\/|^[^/]*[.:][^/]*\//.test(line)) throw new UsageError("the pasted address has no code", { hint: `copy the whole address from the browser's address bar: ${markControl(redirectUri)}?code=…` });
    // …else a bare code: printable, no spaces (Google's start "4/").
    if (!/^[\x21-\x7e]+$/.test(line)) throw new UsageError("the pasted text is neither the address the browser was sent to nor a code", { hint: `copy the whole address from the browser's address bar: ${markControl(redirectUri)}?code=…` });
    registerSecret(line);
    callback.searchParams.set("code", line);
    callback.searchParams.set("state", state);
    // The server's promise of RFC 9207 iss holds for the address, which was not pasted.
    if (metadata.authorization_response_iss_parameter_supported) callback.searchParams.set("iss", metadata.issuer);
    return callback;
  }
  const params = new URLSearchParams(query.split("#")[0]);
  for (const [k, v] of params) callback.searchParams.append(k, v);
  const code = callback.searchParams.get("code");
  if (code) registerSecret(code);
  if (!code && !callback.searchParams.get("error")) {
    const signInUrl = callback.searchParams.has("code_challenge") || callback.searchParams.has("response_type");
    throw new UsageError(`the pasted address has no code${signInUrl ? ": it is the sign-in URL, not the address the browser was sent to after signing in" : ""}`, { hint: "sign in first, then paste the address the browser ends on" });
  }
  const problem = notThisLogin(callback, state, metadata);
  if (problem) throw new AuthError(`the pasted address ${problem}; refusing it`, { hint: "paste the address from this login's sign-in, or run the login again" });
  return callback;
}
