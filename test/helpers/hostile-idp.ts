import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll } from "vitest";

/**
 * A small, scriptable OAuth server on 127.0.0.1:0 that says whatever a test wants: RFC 8414 /
 * OpenID discovery, a token endpoint and a revocation endpoint. For the answers a real IdP never
 * gives (tokens with shell metacharacters, absurd lifetimes, metadata pointing elsewhere, stalls).
 */
export interface TokenAnswer {
  status?: number;
  body: unknown;
  /** Wait this long before answering (a stalled server). */
  delayMs?: number;
  /** Answer only once this settles (a stall that a test with a clock of its own ends). */
  until?: Promise<unknown>;
}

export interface SeenRequest {
  method: string;
  path: string;
  body: string;
}

export interface HostileIdp {
  issuer: string;
  /** The discovery document served (mutable; `undefined` values are left out). */
  metadata: Record<string, unknown>;
  /** What the token endpoint answers, given the form it received. */
  token: (form: URLSearchParams) => TokenAnswer;
  /** What the device authorization endpoint (/device) answers. */
  device: () => unknown;
  requests: SeenRequest[];
  /** Back to a well-behaved server (default metadata, a plain Bearer token). */
  reset(): void;
  close(): Promise<void>;
}

export const GOOD_TOKEN = "good-access-token-0123456789";

export async function startHostileIdp(): Promise<HostileIdp> {
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const defaults = () => ({
    issuer,
    token_endpoint: `${issuer}/token`,
    revocation_endpoint: `${issuer}/revoke`,
    grant_types_supported: ["client_credentials", "refresh_token"],
    token_endpoint_auth_methods_supported: ["client_secret_basic"],
  });
  const goodDevice = () => ({ device_code: "dc", user_code: "ABCD-EFGH", verification_uri: `${issuer}/activate`, expires_in: 60, interval: 1 });
  const idp: HostileIdp = {
    issuer,
    metadata: defaults(),
    token: () => ({ body: { access_token: GOOD_TOKEN, token_type: "Bearer", expires_in: 300 } }),
    device: () => goodDevice(),
    requests: [],
    reset() {
      idp.metadata = defaults();
      idp.token = () => ({ body: { access_token: GOOD_TOKEN, token_type: "Bearer", expires_in: 300 } });
      idp.device = () => goodDevice();
      idp.requests = [];
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const path = new URL(req.url ?? "/", issuer).pathname;
      idp.requests.push({ method: req.method ?? "GET", path, body });
      const json = (status: number, value: unknown) => {
        if (res.destroyed) return;
        res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(value));
      };
      if (path === "/.well-known/openid-configuration" || path === "/.well-known/oauth-authorization-server") return json(200, idp.metadata);
      if (path === "/token" && req.method === "POST") {
        const a = idp.token(new URLSearchParams(body));
        if (a.until) void a.until.then(() => json(a.status ?? 200, a.body));
        else if (a.delayMs) setTimeout(() => json(a.status ?? 200, a.body), a.delayMs).unref();
        else json(a.status ?? 200, a.body);
        return;
      }
      if (path === "/device" && req.method === "POST") return json(200, idp.device());
      if (path === "/revoke" && req.method === "POST") return void res.writeHead(200).end();
      json(404, { error: "not_found" });
    });
  });
  return idp;
}

/** One hostile IdP per test file, reset to good behaviour after each test. */
export function useHostileIdp(): HostileIdp {
  let current: HostileIdp | undefined;
  beforeAll(async () => {
    current = await startHostileIdp();
  });
  afterAll(async () => {
    await current?.close();
  });
  afterEach(() => current?.reset());
  return new Proxy({} as HostileIdp, {
    get(_t, prop) {
      if (!current) throw new Error("the hostile IdP is not started yet (use it inside a test)");
      const v = Reflect.get(current, prop);
      return typeof v === "function" ? v.bind(current) : v;
    },
    set(_t, prop, value) {
      if (!current) throw new Error("the hostile IdP is not started yet (use it inside a test)");
      return Reflect.set(current, prop, value);
    },
  });
}

/** An unsigned JWT-shaped token with the given claims (we never verify access tokens; servers do). */
export function fakeJwt(claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${b64({ alg: "none", typ: "at+jwt" })}.${b64(claims)}.sig`;
}
