import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { UsageError } from "../errors.js";
import type { Counts } from "./mcp.js";

/**
 * The sandbox: a real OpenID provider (oidc-provider) and a small MCP server that demands its JWTs,
 * both on 127.0.0.1. It is what a newcomer runs first and what the test suite runs against.
 *
 * IdP clients:
 *   sandbox-m2m  confidential, client credentials (secret SANDBOX_SECRET unless given)
 *   sandbox-cli  public native client: authorization code + PKCE, refresh (rotating), device code
 *   open dynamic client registration at /reg
 * Access tokens are RS256 JWTs (typ at+jwt) whose audience is the requested resource, by default the
 * MCP server's URL. The MCP server checks signature, iss, aud and exp, and publishes RFC 9728 metadata.
 */
export const SANDBOX_SECRET = "sandbox-secret";

export interface SandboxOptions {
  /** IdP port (0 = random). */
  port?: number;
  /** MCP server port (0 = random). */
  mcpPort?: number;
  /** Access token lifetime in seconds. */
  tokenTtl?: number;
  clientSecret?: string;
  quiet?: boolean;
  /**
   * The device flow's polling interval in seconds, sent as `interval` (RFC 8628 §3.2). oidc-provider
   * sends none, which means 5 s; tests ask for 1 so an approved device login is not held 5 s.
   */
  deviceInterval?: number;
  /** The MCP server's era (default legacy; `mcp-auth sandbox` defaults to both). */
  protocol?: import("./mcp.js").SandboxProtocol;
}

export type { Counts } from "./mcp.js";

export interface Sandbox {
  issuer: string;
  mcpUrl: string;
  clients: { m2m: { clientId: string; clientSecret: string }; cli: { clientId: string } };
  counts: Counts;
  /** Token endpoint requests by grant_type. */
  grants: Record<string, number>;
  /** Token endpoint error answers, by "grant_type error" (e.g. "refresh_token invalid_grant"). */
  grantErrors: Record<string, number>;
  resetCounts(): void;
  /**
   * Registers a client through the open DCR endpoint (RFC 7591), e.g. a private_key_jwt client with
   * `jwks` holding the public key `mcp-auth profiles add … --generate-key` printed.
   */
  registerClient(metadata: Record<string, unknown>): Promise<{ client_id: string } & Record<string, unknown>>;
  /** Make the IdP answer every request with this (for failure tests), or undo with undefined. */
  breakIdp(mode: "500" | "html" | "bad-json" | "stall" | undefined): void;
  close(): Promise<void>;
}

function zero(): Counts {
  return { total: 0, discovery: 0, token: 0, device: 0, revocation: 0, registration: 0, mcp: 0 };
}

function quietOidcProvider(toStderr: boolean): () => void {
  const original = { info: console.info, warn: console.warn };
  const filter =
    (fallback: (...args: unknown[]) => void) =>
    (...args: unknown[]): void => {
      if (typeof args[0] === "string" && args[0].includes("oidc-provider ")) {
        if (toStderr) process.stderr.write(`${args[0]}\n`);
        return;
      }
      fallback.apply(console, args);
    };
  console.info = filter(original.info);
  console.warn = filter(original.warn);
  return () => {
    console.info = original.info;
    console.warn = original.warn;
  };
}

async function listen(server: Server, port: number, flag: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(e.code === "EADDRINUSE" ? new UsageError(`port ${port} on 127.0.0.1 is already in use (another sandbox?)`, { hint: `stop it, pick another with ${flag} N, or leave ${flag} out for a free port` }) : e),
    );
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

export async function startSandbox(o: SandboxOptions = {}): Promise<Sandbox> {
  const ttl = o.tokenTtl ?? 3600;
  const secret = o.clientSecret ?? SANDBOX_SECRET;
  const idpServer = createServer();
  const mcpServer = createServer();
  const idpPort = await listen(idpServer, o.port ?? 0, "--port");
  const mcpPort = await listen(mcpServer, o.mcpPort ?? 0, "--mcp-port").catch((e: unknown) => {
    idpServer.close();
    throw e;
  });
  const issuer = `http://127.0.0.1:${idpPort}`;
  const mcpUrl = `http://127.0.0.1:${mcpPort}/mcp`;

  // oidc-provider prints notices about Node 20, dev keys and its default pages (some on stdout, which
  // must carry only data): the sandbox is exactly that kind of setup, so they go nowhere (or, with
  // quiet: false, to stderr).
  const restoreConsole = quietOidcProvider(o.quiet === false);
  const { default: Provider } = await import("oidc-provider");
  const provider = new Provider(issuer, providerConfig({ ttl, secret, mcpUrl }) as never);

  if (o.deviceInterval) provider.on("device_authorization.success", (ctx: { body: Record<string, unknown> }) => void (ctx.body.interval = o.deviceInterval));

  const idp = serveIdp(idpServer, provider, issuer);

  const { mountMcp } = await import("./mcp.js");
  mountMcp(mcpServer, { issuer, mcpUrl, counts: idp.counts, protocol: o.protocol ?? "legacy" });

  return {
    issuer,
    mcpUrl,
    clients: { m2m: { clientId: "sandbox-m2m", clientSecret: secret }, cli: { clientId: "sandbox-cli" } },
    counts: idp.counts,
    grants: idp.grants,
    grantErrors: idp.grantErrors,
    async registerClient(metadata) {
      const res = await fetch(`${issuer}/reg`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(metadata) });
      const body = (await res.json()) as { client_id: string } & Record<string, unknown>;
      if (res.status !== 201) throw new Error(`client registration failed: HTTP ${res.status} ${JSON.stringify(body)}`);
      return body;
    },
    resetCounts: idp.resetCounts,
    breakIdp: idp.breakIdp,
    async close() {
      restoreConsole();
      idp.breakIdp(undefined);
      for (const s of [idpServer, mcpServer]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}

/** oidc-provider's configuration for the sandbox: a machine client, a native (public) client, and tokens for the MCP server. */
function providerConfig({ ttl, secret, mcpUrl }: { ttl: number; secret: string; mcpUrl: string }) {
  return {
  clients: [
    { client_id: "sandbox-m2m", client_secret: secret, grant_types: ["client_credentials"], response_types: [], redirect_uris: [], scope: "mcp:read mcp:write" },
    {
      client_id: "sandbox-cli",
      application_type: "native",
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
      response_types: ["code"],
      redirect_uris: ["http://127.0.0.1/callback"], // native loopback: any port matches (RFC 8252 §7.3)
      scope: "openid offline_access mcp:read mcp:write",
    },
  ],
  scopes: ["openid", "offline_access", "mcp:read", "mcp:write"],
  pkce: { required: () => true },
  cookies: { keys: [randomBytes(16).toString("hex")] },
  findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub, name: sub }) }),
  ttl: { AccessToken: ttl, ClientCredentials: ttl, RefreshToken: 14 * 86400, DeviceCode: 600, Interaction: 600, Session: 3600, Grant: 14 * 86400 },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    registration: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string[]) => oneOf ?? mcpUrl,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx: unknown, resource: string) => ({
        scope: "mcp:read mcp:write",
        audience: resource,
        accessTokenTTL: ttl,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  // MCP clients do not ask for offline_access; give public clients refresh tokens anyway.
  issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(g: string): boolean }) => client.grantTypeAllowed("refresh_token"),
  rotateRefreshToken: true,
};
}

/** What the sandbox uses of an oidc-provider instance (the package ships no types: src/oidc-provider.d.ts). */
interface OidcApp {
  use(fn: (ctx: { status: number; body?: unknown; oidc?: { route?: string; params?: { grant_type?: string } } }, next: () => Promise<void>) => Promise<void>): unknown;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}

/** The IdP's HTTP side: oidc-provider behind counters per endpoint and grant, and the failures a test can switch on. */
function serveIdp(idpServer: Server, provider: OidcApp, issuer: string) {
  const counts = zero();
  const grants: Record<string, number> = {};
  const grantErrors: Record<string, number> = {};
  let broken: "500" | "html" | "bad-json" | "stall" | undefined;
  const stalled = new Set<ServerResponse>();
  // Count token requests per grant type once oidc-provider has parsed the body.
  provider.use(async (ctx, next) => {
    await next();
    const g = ctx.oidc?.route === "token" ? ctx.oidc.params?.grant_type : undefined;
    if (g) grants[g] = (grants[g] ?? 0) + 1;
    // oidc-provider has turned a refusal into its answer by now (its error handler runs inside the route).
    if (g && ctx.status >= 400) {
      const k = `${g} ${String((ctx.body as { error?: unknown } | undefined)?.error)}`;
      grantErrors[k] = (grantErrors[k] ?? 0) + 1;
    }
  });
  const handler = provider.callback();
  idpServer.on("request", (req: IncomingMessage, res: ServerResponse) => {
    counts.total++;
    const path = (req.url ?? "/").split("?")[0]!;
    if (path.startsWith("/.well-known/")) counts.discovery++;
    else if (path === "/token") counts.token++;
    else if (path === "/device/auth") counts.device++;
    else if (path === "/token/revocation") counts.revocation++;
    else if (path === "/reg") counts.registration++;
    if (broken === "500") return void res.writeHead(500, { "content-type": "text/plain" }).end("Internal Server Error");
    if (broken === "html") return void res.writeHead(502, { "content-type": "text/html" }).end("<html><body><h1>502 Bad Gateway</h1></body></html>");
    if (broken === "bad-json") return void res.writeHead(200, { "content-type": "application/json" }).end('{"issuer": "' + issuer + '", ');
    if (broken === "stall") return void stalled.add(res);
    handler(req, res);
  });
  return {
    counts,
    grants,
    grantErrors,
    resetCounts() {
      Object.assign(counts, zero());
      for (const k of Object.keys(grants)) delete grants[k];
      for (const k of Object.keys(grantErrors)) delete grantErrors[k];
    },
    /** Switches a failure on, or (undefined) off again: a stalled request is then cut. */
    breakIdp(mode: typeof broken) {
      broken = mode;
      if (!mode) for (const r of stalled) r.destroy();
    },
  };
}
