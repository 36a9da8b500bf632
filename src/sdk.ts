/**
 * The plug-in SDK: the one module an IdP provider (src/providers/) or an MCP client writer
 * (src/clients/) imports from mcp-auth. It re-exports the interfaces core defines and the helpers a
 * plug-in needs; .dependency-cruiser.cjs refuses any other import from a plug-in into the rest of
 * src/, so what plug-ins rely on is listed here and nowhere else.
 */

// The interfaces (core/provider.ts, core/client.ts).
export { defineProvider, issuerUrl, SECRET_NOT_HELD } from "./core/provider.js";
export type { BootstrapResult, BootstrapRun, DoctorHints, IssuerMetadata, Provider, ProviderContext, ProviderQuirks, SecretVault, TokenExchange } from "./core/provider.js";
export { appDataDir, bearer, configUrl, defineClientWriter, envHeaderEntry, exists, homeOf, joinFor, mcpAuthArgv, onPath, proxyServer, shQuote } from "./core/client.js";
export { hasOwnData } from "./core/client.js";
export type { ClaudeCli, ClientWriter, Entry, EntrySpec, Platform, Scope, Strategy } from "./core/client.js";
export { headerArgs } from "./headers.js";
export type { HeaderSpec } from "./headers.js";
export { defineInput } from "./core/inputs.js";
export type { InputSpec, InputValues } from "./core/inputs.js";
export { failed, passed } from "./core/checks.js";
export type { Check } from "./core/checks.js";
/** A JSON object as an admin API answers it, before it is checked field by field. */
export type Json = Record<string, unknown>;
export type { Context } from "./context.js";

// Errors and output hygiene: everything a server sends is hostile.
export { AuthError, FileError, McpAuthError, NetworkError, UsageError } from "./errors.js";
export { markControl, registerSecret } from "./io/sanitize.js";

// Profiles and tokens.
export { fnv1a64, GRANT_WORDS, normalizeIssuer } from "./profile.js";
export type { CacheIdentity, Profile, ProfileData, ProfileKey } from "./profile.js";
export { clientSecretOf, targetFromProfile, type Target } from "./core/target.js";
export { getToken, type GetTokenOptions, type TokenResult } from "./core/tokens.js";
export { audiences, decodeToken, peekClaims } from "./core/decode.js";
export { isBearer, tokenProblem } from "./format.js";

// OAuth and MCP.
export { checkUrl, ENDPOINTS } from "./oauth/urls.js";
export { loopbackRedirectProblem } from "./oauth/redirect-uri.js";
export { probeServer } from "./oauth/discovery.js";
export { exchangeForUpst, OCI_UPST } from "./oauth/exchange.js";
export { describeEra } from "./mcp/era.js";

// Files a plug-in plans (an IdP's .env file); BootstrapRun.writeFiles writes them, atomic and backed up.
export { planFile, type FileChange } from "./store/plan.js";
export { writeFileAtomic } from "./store/fsutil.js";
