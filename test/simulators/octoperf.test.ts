import { createHash, randomBytes } from "node:crypto";
import { createRemoteJWKSet, decodeJwt, jwtVerify } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { mcpInitialize, startKubernetesMcp } from "../helpers/k8s-mcp.js";
import { AGENTS_MD, startOctoPerf, type OctoPerfSim } from "./octoperf.js";

/**
 * The OctoPerf simulator keeps ../shared/research/idp-apis.md §5's contract and seed 004's origin
 * rule: discovery from the MCP endpoint's 401, anonymous DCR, PKCE login, JWTs whose iss/aud follow the
 * public origin, and the "every call returns 401" mismatch.
 */
let s: OctoPerfSim | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

const REDIRECT = "http://127.0.0.1:33418/callback";
const mcp = (token?: string) =>
  fetch(`${s!.url}/mcp`, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...(token && { authorization: `Bearer ${token}` }) }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} }) });

/** What an MCP client does: 401 → resource metadata → AS metadata → DCR → PKCE authorize → token. */
async function login(): Promise<{ access_token: string; refresh_token: string; clientId: string; tokenEndpoint: string }> {
  const challengeHeader = (await mcp()).headers.get("www-authenticate") ?? "";
  const prm = await (await fetch(/resource_metadata="([^"]+)"/.exec(challengeHeader)![1]!)).json();
  const as = prm.authorization_servers[0] as string;
  const meta = await (await fetch(`${as}/.well-known/oauth-authorization-server`)).json();
  const reg = await fetch(meta.registration_endpoint, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ client_name: "mcp-auth", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], token_endpoint_auth_method: "none" }) });
  expect(reg.status).toBe(201);
  const client = await reg.json();
  const verifier = randomBytes(32).toString("base64url");
  const authorize = new URL(meta.authorization_endpoint);
  for (const [k, v] of Object.entries({ response_type: "code", client_id: client.client_id, redirect_uri: REDIRECT, state: "st", code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256", resource: prm.resource })) authorize.searchParams.set(k, v);
  const back = new URL((await fetch(authorize, { redirect: "manual" })).headers.get("location")!);
  expect(back.searchParams.get("state")).toBe("st");
  const tok = await fetch(meta.token_endpoint, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ grant_type: "authorization_code", code: back.searchParams.get("code")!, redirect_uri: REDIRECT, client_id: client.client_id, code_verifier: verifier }) });
  expect(tok.status).toBe(200);
  return { ...(await tok.json()), clientId: client.client_id, tokenEndpoint: meta.token_endpoint };
}

describe("OctoPerf simulator (§5, seed 004)", () => {
  it("serves /mcp/public/AGENTS.md without a token; other public paths are 404; /mcp wants a token and names its metadata", async () => {
    s = await startOctoPerf();
    const agents = await fetch(`${s.url}/mcp/public/AGENTS.md`);
    expect(agents.status).toBe(200);
    expect(await agents.text()).toBe(AGENTS_MD);
    expect((await fetch(`${s.url}/mcp/public/nope.md`)).status).toBe(404);
    const r = await mcp();
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toBe(`Bearer resource_metadata="${s.url}/.well-known/oauth-protected-resource/mcp"`);
    const prm = await (await fetch(`${s.url}/.well-known/oauth-protected-resource/mcp`)).json();
    expect(prm).toMatchObject({ resource: `${s.url}/mcp`, authorization_servers: [s.url] });
    const meta = await (await fetch(`${s.url}/.well-known/oauth-authorization-server`)).json();
    expect(meta).toMatchObject({ issuer: s.url, registration_endpoint: `${s.url}/auth/connect/register`, code_challenge_methods_supported: ["S256"] });
  });

  it("discovery → anonymous DCR → PKCE login gives a JWT whose iss/aud are the public origin, and /mcp accepts it; refresh works", async () => {
    s = await startOctoPerf();
    const t = await login();
    const { payload } = await jwtVerify(t.access_token, createRemoteJWKSet(new URL(`${s.url}/auth/oauth2/jwks`)), { issuer: s.url, audience: s.url });
    expect(payload.sub).toBe(s.user);
    expect(s.clients.get(t.clientId)?.redirect_uris).toEqual([REDIRECT]);
    const ok = await mcp(t.access_token);
    expect(ok.status).toBe(200);
    expect((await ok.json()).result.serverInfo.name).toBe("octoperf-mcp");
    const refreshed = await fetch(t.tokenEndpoint, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: t.refresh_token, client_id: t.clientId }) });
    expect(refreshed.status).toBe(200);
  });

  it("the seed's mismatch: a backend minting with another origin makes every /mcp call 401 invalid_token naming iss", async () => {
    s = await startOctoPerf({ backendOrigin: "http://enterprise-edition:8090" });
    const t = await login();
    expect(decodeJwt(t.access_token)).toMatchObject({ iss: "http://enterprise-edition:8090", aud: ["http://enterprise-edition:8090"] });
    const r = await mcp(t.access_token);
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toMatch(/error="invalid_token", error_description="[^"]*The iss claim is not valid"/);
    s.setBackendOrigin(undefined);
    expect((await mcp((await login()).access_token)).status).toBe(200);
  });

  it.each([
    ["no PKCE", { code_challenge: undefined }, "invalid_request"],
    ["plain PKCE", { code_challenge_method: "plain" }, "invalid_request"],
  ] as const)("authorization without S256 PKCE is refused (%s)", async (_what, over, error) => {
    s = await startOctoPerf();
    const client = await (await fetch(`${s.url}/auth/connect/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ redirect_uris: [REDIRECT] }) })).json();
    const q: Record<string, string | undefined> = { response_type: "code", client_id: client.client_id, redirect_uri: REDIRECT, code_challenge: "x".repeat(43), code_challenge_method: "S256", ...over };
    const url = new URL(`${s.url}/auth/oauth2/authorize`);
    for (const [k, v] of Object.entries(q)) if (v !== undefined) url.searchParams.set(k, v);
    const back = new URL((await fetch(url, { redirect: "manual" })).headers.get("location")!);
    expect(back.searchParams.get("error")).toBe(error);
  });

  it("DCR without redirect URIs is 400 invalid_redirect_uri", async () => {
    s = await startOctoPerf();
    const r = await fetch(`${s.url}/auth/connect/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ client_name: "x" }) });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe("invalid_redirect_uri");
  });

  it("its tokens are accepted by the real kubernetes-mcp-server pointed at the simulator's issuer (and the mismatched ones refused)", async () => {
    s = await startOctoPerf();
    const k8s = await startKubernetesMcp({ issuer: s.url, audience: s.url });
    try {
      const good = await mcpInitialize(k8s.url, (await login()).access_token);
      expect(good.status, k8s.logs()).toBe(200);
      s.setBackendOrigin("http://enterprise-edition:8090");
      const bad = await mcpInitialize(k8s.url, (await login()).access_token);
      expect(bad.status).toBe(401);
    } finally {
      await k8s.stop();
    }
  }, 30_000);
});
