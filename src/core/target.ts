import { UsageError } from "../errors.js";
import type { Context } from "../context.js";
import type { StoreKind } from "../store/secrets.js";
import { accounts } from "../store/tokens.js";
import { registerSecret, registerSecretEnv } from "../io/sanitize.js";
import { normalizeIssuer, secretFingerprint, splitScopes, type CacheIdentity, type Federation, type Grant, type Profile, type ProfileAssertion, type ProfileKey, type TokenAuthMethod } from "../profile.js";
import { assertionSetting } from "./assertion-source.js";
import { assertCommandSource, secretFromCommand } from "./secret-command.js";

/** Everything needed to get one token, whether from a saved profile or from CI flags. */
export interface Target extends CacheIdentity {
  grant: Grant;
  redirectPort?: number;
  /** Enterprise-managed authorization: the IdP profile whose ID token is exchanged, and the MCP server it is for. */
  enterprise?: { idp: string; mcpUrl?: string };
  /** Hand out the ID token instead of the access token (the cache record says which one it holds). */
  useIdToken?: boolean;
  /** The exact loopback redirect URI the IdP has registered for this client. */
  redirectUri?: string;
  authMethod?: TokenAuthMethod;
  /** Fixed OAuth endpoints for a server without a discovery document (OpenProject, GitHub). */
  endpoints?: { authorization_endpoint?: string; token_endpoint: string; device_authorization_endpoint?: string };
  /** Extra authorization-request parameters (the browser login only). */
  authorizeParams?: Record<string, string>;
  /** The IdP preset the profile was made with (src/presets/), for its quirks and fixes. */
  preset?: string;
  /** Never read or write the token cache for this target. */
  noCache?: boolean;
  /** The stored secret is itself the bearer token (a personal API token): no OAuth at all. */
  staticToken?: boolean;
  /** The client is one mcp-auth registered itself (RFC 7591), so a forgotten one can be registered again. */
  registered?: boolean;
  /** private_key_jwt: the profile's signing key. */
  key?: ProfileKey;
  /** Identity federation: the CI token replaces (or, for some token exchanges, accompanies) the secret. */
  assertion?: ProfileAssertion;
  /** Where the client secret comes from, if there is one. */
  secret: { from: "store"; kind: StoreKind; account: string } | { from: "value"; value: string } | { from: "command"; argv: string[] } | { from: "none" };
}

export function targetFromProfile(p: Profile): Target {
  return {
    profile: p.name,
    issuer: p.issuer,
    clientId: p.clientId,
    grant: p.grant,
    scopes: p.scopes,
    resource: p.resource,
    audience: p.audience,
    redirectPort: p.redirectPort,
    ...(p.redirectUri && { redirectUri: p.redirectUri }),
    ...(p.useIdToken && { useIdToken: true }),
    ...(p.enterprise && { enterprise: { idp: p.enterprise.idp, ...(p.mcpUrl && { mcpUrl: p.mcpUrl }) } }),
    authMethod: p.tokenEndpointAuthMethod,
    ...(typeof p.extra?.tokenEndpoint === "string" && {
      endpoints: {
        token_endpoint: p.extra.tokenEndpoint,
        ...(typeof p.extra.authorizationEndpoint === "string" && { authorization_endpoint: p.extra.authorizationEndpoint }),
        ...(typeof p.extra.deviceAuthorizationEndpoint === "string" && { device_authorization_endpoint: p.extra.deviceAuthorizationEndpoint }),
      },
    }),
    ...(p.authorizeParams !== undefined && { authorizeParams: p.authorizeParams }),
    ...(typeof p.extra?.preset === "string" && { preset: p.extra.preset }),
    ...(p.extra?.credential === "api-token" && { staticToken: true }),
    ...(p.extra?.registration === "dcr" && { registered: true }),
    ...(p.key && { key: p.key }),
    ...(p.assertion && { assertion: p.assertion }),
    secret: p.clientSecretCommand ? { from: "command", argv: p.clientSecretCommand } : p.secretStore ? { from: "store", kind: p.secretStore, account: accounts.clientSecret(p.name) } : { from: "none" },
  };
}

export interface AdHocOptions {
  issuer: string;
  clientId?: string;
  clientSecretEnv?: string;
  /** What a `--client-secret-cmd` command printed (run by the command layer: see commandSecret in commands/shared.ts). */
  commandSecret?: string;
  scope?: string[];
  resource?: string;
  audience?: string;
  /** Identity federation instead of a client secret. */
  assertionFrom?: string;
  federation?: Federation;
}

/** Profile-less mode for CI: client credentials from flags and an environment variable, no config. */
export function adHocTarget(o: AdHocOptions, env: NodeJS.ProcessEnv): Target {
  if (!o.clientId) throw new UsageError("--issuer needs --client-id");
  if (o.federation && !o.assertionFrom) throw new UsageError("--federation needs --assertion-from");
  if (o.assertionFrom) return federatedAdHocTarget({ ...o, clientId: o.clientId, assertionFrom: o.assertionFrom }, env);
  if (o.commandSecret !== undefined) {
    // Fingerprinted like any secret: a cached token is served only to a call whose command printed the same one.
    return { ...adHocBase(o as AdHocOptions & { clientId: string }), secretFingerprint: secretFingerprint(o.commandSecret), secret: { from: "value", value: o.commandSecret } };
  }
  const varName = o.clientSecretEnv ?? "MCP_AUTH_CLIENT_SECRET";
  const value = env[varName];
  if (!value) {
    throw new UsageError(`no client secret: $${varName} is not set`, {
      hint: o.clientSecretEnv ? `export ${varName} first` : "set MCP_AUTH_CLIENT_SECRET or pass --client-secret-env VAR",
    });
  }
  registerSecretEnv(varName, env);
  registerSecret(value, { clientId: o.clientId });
  return { ...adHocBase(o as AdHocOptions & { clientId: string }), secretFingerprint: secretFingerprint(value), secret: { from: "value", value } };
}

/** What every profile-less target is: client credentials for the flags' issuer, client, scopes, resource, audience. */
function adHocBase(o: AdHocOptions & { clientId: string }): Omit<Target, "secret"> {
  return { profile: null, issuer: normalizeIssuer(o.issuer), clientId: o.clientId, grant: "client_credentials", scopes: splitScopes(o.scope), resource: o.resource, audience: o.audience };
}

/**
 * Profile-less federation: no secret at all (a client secret only when --client-secret-env names one,
 * for IdPs that authenticate the client on a token exchange). Never cached: the CI identity is not
 * part of the cache identity, and another job on a shared runner must not get this job's token.
 */
function federatedAdHocTarget(o: AdHocOptions & { clientId: string; assertionFrom: string }, env: NodeJS.ProcessEnv): Target {
  const assertion = assertionSetting(o.assertionFrom, o.federation);
  let secret: Target["secret"] = { from: "none" };
  if (o.commandSecret !== undefined) {
    if (assertion.federation === "client-assertion") throw new UsageError("--client-secret-cmd and --federation client-assertion exclude each other: the CI token is the client credential");
    secret = { from: "value", value: o.commandSecret };
  } else if (o.clientSecretEnv) {
    if (assertion.federation === "client-assertion") throw new UsageError("--client-secret-env and --federation client-assertion exclude each other: the CI token is the client credential");
    const value = env[o.clientSecretEnv];
    if (!value) throw new UsageError(`no client secret: $${o.clientSecretEnv} is not set`, { hint: `export ${o.clientSecretEnv} first` });
    registerSecretEnv(o.clientSecretEnv, env);
    registerSecret(value, { clientId: o.clientId });
    secret = { from: "value", value };
  }
  return { ...adHocBase(o), assertion, noCache: true, secret };
}

export async function clientSecretOf(ctx: Context, t: Target): Promise<string | undefined> {
  if (t.secret.from === "value") return t.secret.value;
  if (t.secret.from === "none") return undefined;
  if (t.secret.from === "command") {
    // The command came from config.json: it runs only if that file is the user's own and private.
    const owner = `profile "${t.profile}"`;
    assertCommandSource(ctx.paths, owner, "run");
    return secretFromCommand(t.secret.argv, { env: ctx.env, owner, clientId: t.clientId });
  }
  const store = await ctx.secretsOf(t.secret.kind);
  const value = await store.get(t.secret.account);
  if (value === null) {
    throw new UsageError(`the client secret of profile "${t.profile}" is missing from the ${t.secret.kind} store`, {
      hint: `store it again: mcp-auth profiles add ${t.profile} … --client-secret-stdin --force`,
    });
  }
  registerSecret(value, { clientId: t.clientId });
  return value;
}

/** What to tell a user who must log in. */
export function loginHint(t: Target): string {
  return t.profile ? `run: mcp-auth login ${t.profile}` : "run: mcp-auth login (with a profile)";
}
