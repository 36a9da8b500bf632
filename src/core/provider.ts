import type { Context } from "../context.js";
import type { CacheIdentity, Profile, ProfileData, ProfileKey } from "../profile.js";
import type { Applied } from "../store/apply.js";
import type { FileChange } from "../store/plan.js";
import type { Check } from "./checks.js";
import type { ClientWriter } from "./client.js";
import type { InputSpec, InputValues } from "./inputs.js";
import type { LoginOptions } from "./login.js";
import type { McpPlan, McpSetupInput } from "./mcp-login.js";
import type { GetTokenOptions, TokenResult } from "./tokens.js";

/**
 * The plug-in boundary. Core defines these interfaces and never imports a plug-in: the registries
 * (src/plugins.ts) reach it through Context.plugins. Plug-ins import only src/sdk.ts
 * (.dependency-cruiser.cjs checks both directions).
 */
export interface Plugins {
  providers: readonly Provider<readonly InputSpec[]>[];
  clients: readonly ClientWriter[];
}

/**
 * What a provider may use while it bootstraps and verifies: HTTP, the clock, the environment, the
 * debug trace, prompts and the browser for a guided setup, and the profiles it may reuse. No token
 * cache, no config writes, and no printing: warnings are returned in BootstrapResult.warnings.
 */
export type ProviderContext = Pick<Context, "env" | "clock" | "now" | "fetch" | "fetchFrom" | "oauthEnv" | "debug" | "allowHttp" | "nonInteractive" | "browser"> & {
  io: Pick<Context["io"], "interactive" | "prompter">;
};

/**
 * One IdP = one module built with defineProvider, registered in src/plugins.ts. Its inputs are data
 * (core/inputs.ts): `mcp-auth bootstrap <id>`'s flags, help and completion are generated from them.
 * bootstrap() talks to the IdP and RETURNS what it created; core/bootstrap.ts saves the profile and
 * its secret, gets the first token and runs verify(). Providers never write config and never print.
 */
export interface Provider<S extends readonly InputSpec[] = readonly InputSpec[]> {
  id: string;
  title: string;
  /** One line for `mcp-auth bootstrap --help`. */
  summary: string;
  inputs: S;
  /** Is this issuer (or its metadata document) one of ours? For doctor and discovery. */
  matches(issuerOrMetadata: string | IssuerMetadata): boolean;
  bootstrap(ctx: ProviderContext, input: InputValues<S>, run: BootstrapRun): Promise<BootstrapResult>;
  /** Post-token checks (the token's audience…); runs after the first token. */
  verify?(ctx: ProviderContext, input: InputValues<S>, result: BootstrapResult, token?: string): Promise<Check[]>;
  /** Documented departures from the standards, each accepted only in the exact form declared here. */
  quirks?: ProviderQuirks;
  /**
   * What this provider keeps for a profile beyond the profile's own tokens and secret: cache entries
   * that go on logout, and secret-store accounts that go with the profile. Asked of every provider
   * for every profile (a profile's provider can be changed), so it must only name its own entries.
   */
  forget?(profile: { name: string; issuer: string; clientId: string }): { tokens: CacheIdentity[]; accounts: string[] };
  /** Tokens got by exchanging the profile's own (`mcp-auth token --exchange <id>`). */
  exchanges?: readonly TokenExchange[];
  /**
   * This IdP's words for doctor's generic fixes (core/doctor.ts): the setting or command that fixes a
   * finding here, e.g. where MCP is switched on. Shown for this IdP's issuer; with no known issuer,
   * every provider's hint for the finding is listed.
   */
  doctorHints?: DoctorHints;
}

/** The findings doctor asks providers about; a hint is one short clause naming the IdP. */
export interface DoctorHints {
  /** The MCP URL answered 404: where MCP is switched on. */
  mcpDisabled?: string;
  /** Metadata or tokens name another URL than the issuer: the IdP's public-URL setting. */
  publicUrl?: string;
  /** The MCP server's setting that must equal the token's iss. */
  serverIssuer?: string;
  /** The JWKS answered 401/403: how to make the signing keys public. */
  privateJwks?: string;
  /** The token lacks the audience the server expects (given the shell-quoted audience). */
  audience?: (audience: string) => string;
  /** The token lacks scopes the server asks for. */
  scope?: string;
}

/** `mcp-auth token --exchange <id>`: a token exchanged for the profile's own (an OCI session token…). */
export interface TokenExchange<R extends TokenResult = TokenResult> {
  id: string;
  /** What it gives, for messages ("an OCI session token"). */
  title: string;
  /** The result is not a Bearer token (the header formats are refused). */
  bearer: boolean;
  /** The exchange runs with the full Context: it uses the token cache and its locks as `token` does. */
  get(ctx: Context, profile: Profile, o: GetTokenOptions): Promise<R>;
  /** --oci-session-dir: writes the token and its key where the vendor's CLI reads them; returns what to tell the user. */
  writeSessionDir?(dir: string, t: R, profile: string): string;
}

export interface ProviderQuirks {
  /**
   * Discovery found metadata for `issuer` that names another issuer, which RFC 8414 §3.3 refuses.
   * Return the metadata to use when this is the IdP's documented behaviour (it is then used for
   * `issuer`); undefined when the issuer or document is not this IdP's; throw when it is this IdP's
   * but the document is not acceptable (nothing else is then tried).
   */
  metadataIssuer?(issuer: string, metadata: Record<string, unknown>): IssuerMetadata | undefined;
}

/** An RFC 8414 / OIDC discovery document (only what matching looks at is typed). */
export interface IssuerMetadata {
  issuer: string;
  token_endpoint?: string;
  [k: string]: unknown;
}

/**
 * The error code a provider's bootstrap throws with when the client exists and mcp-auth does not
 * hold its secret: the wizard then offers to issue a new one (--rotate-secret).
 */
export const SECRET_NOT_HELD = "secret-not-held";

/** What core hands a provider for one run, beyond its inputs. */
export interface BootstrapRun {
  /** The profile the result will be saved as. */
  profile: string;
  /** False with --no-verify: skip probes. */
  verify: boolean;
  vault: SecretVault;
  /**
   * MCP discovery and client registration for a server (core/mcp-login.ts), as profile data not saved
   * yet: for IdPs whose MCP server is the entry point (OctoPerf).
   */
  planMcp(input: McpSetupInput): Promise<McpPlan>;
  /**
   * Writes files the user asked for (an MCP server's .env): atomically, with a backup of the previous
   * version, refusing a file changed since it was planned. The only way a provider writes a file.
   */
  writeFiles(changes: FileChange[]): Applied[];
}

/**
 * The narrow part of the secret store a provider may touch. A secret the provider is about to give
 * the IdP (a rotation) is staged first, so a failure after the IdP accepted it never loses it;
 * core replaces the staged copy with the profile's secret once the profile is saved.
 */
export interface SecretVault {
  stage(secret: string): Promise<void>;
  /** The IdP never got the staged secret (its request failed): forget it. */
  unstage(): Promise<void>;
  /** Does the profile being written already hold a client secret for this client id? */
  holds(clientId: string): Promise<boolean>;
  /**
   * The signing key for a private_key_jwt client: the profile's current one when it is re-run for
   * the same client (idempotent), else a new ES256 key pair whose private half goes to the secret store.
   */
  signingKey(clientId: string): Promise<ProfileKey>;
}

export interface BootstrapResult {
  /**
   * What happened, for the summary: created / reused / rotated / configured (a profile for a client that
   * exists), or guided: nothing set up yet, the steps for an administrator are in `notes`.
   */
  action: "created" | "reused" | "rotated" | "configured" | "guided";
  /** The profile to save (core saves it under BootstrapRun.profile), if this run made a client for mcp-auth. */
  profile?: ProfileData;
  /** The client secret to store with the profile (and print only with --show-secret). */
  clientSecret?: string;
  /** Facts to report (app id, client id…), in order. Never secrets. */
  facts: Array<[string, string]>;
  /** Extra lines to show after the summary (next steps, server config…). */
  notes?: string[];
  /** Checks already made while bootstrapping (they need the admin session). */
  checks?: Check[];
  /** Data the user asked for on stdout (e.g. a server config file). */
  stdout?: string;
  /** Machine-readable extras for --json. */
  json?: Record<string, unknown>;
  /** Sign in (browser or device) once the profile is saved, for the first token (MCP-native servers). */
  login?: LoginOptions;
  /** Warnings for stderr (a file holding a secret, a step that fell back…); providers never print. */
  warnings?: string[];
}

/** The summary line's words for an action ("OpenProject: created"). */
export function actionWords(action: BootstrapResult["action"]): string {
  return action === "guided" ? "nothing set up yet; an administrator creates the application (the steps are below)" : action;
}

/**
 * @example
 * export const acme = defineProvider({
 *   id: "acme", title: "Acme", summary: "Acme IdP: create the MCP client", inputs: [urlInput, adminPasswordInput("Acme")] as const,
 *   matches: (x) => issuerUrl(x)?.hostname.endsWith(".acme.example") ?? false,
 *   async bootstrap(ctx, input, run) { return { action: "created", profile: data, clientSecret, facts: [["client id", data.clientId]] }; },
 * });
 */
export function defineProvider<const S extends readonly InputSpec[]>(p: Provider<S>): Provider<S> {
  return p;
}

/** The issuer URL of either form `matches` accepts, parsed; undefined when it is not a URL. */
export function issuerUrl(x: string | IssuerMetadata): URL | undefined {
  const s = typeof x === "string" ? x : x.issuer;
  return typeof s === "string" && URL.canParse(s) ? new URL(s) : undefined;
}
