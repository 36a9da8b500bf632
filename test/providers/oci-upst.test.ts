import { createPrivateKey, createPublicKey } from "node:crypto";
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createLocalJWKSet, decodeJwt, jwtVerify } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { user, type Sandboxed } from "../helpers/cli.js";
import { inProcessUser } from "../helpers/in-process.js";
import { IDCS_ISSUER, startOci, type OciSim } from "../simulators/oci.js";
import { freePort } from "../helpers/util.js";

/**
 * `mcp-auth token --exchange oci-upst` end to end against the OCI IAM simulator, as seed 003 does it:
 * a user signs in with the app `bootstrap oci --token-exchange` made (authorization code + PKCE), and
 * that user's access token is exchanged for a UPST (docs/idp/oci.md §6). One test runs the CLI as a
 * process; the others run it in-process (the simulator's browser is still its own process).
 */
let s: OciSim | undefined;
let u: Sandboxed | undefined;
afterEach(async () => {
  await s?.close();
  u?.cleanup();
  s = u = undefined;
});


/** The app with the trust (or not), and a profile "oci" whose user (alice) has logged in. */
async function setup(trust = true, upstTtlSec?: number, asProcess = false) {
  s = await startOci({ adminClientId: "admin-app", adminClientSecret: "admin-app-secret", upstTtlSec });
  const env = { MCP_AUTH_STORE: "file", ADMIN_SECRET: "admin-app-secret", ...s.env };
  // In-process, the browser command is run as the real opener runs it: the URL as its last argument.
  const [cmd, ...args] = s.browserCommand.split(" ");
  const onBrowse = (url: string) => new Promise<void>((resolve, reject) => execFile(cmd!, [...args, url], { env: u!.env }, (e) => (e ? reject(e) : resolve())));
  u = asProcess ? user(env) : inProcessUser(env, { onBrowse });
  const port = await freePort();
  const r = await u.run(["bootstrap", "oci", "--domain-url", s.url, "--admin-client-id", "admin-app", "--admin-client-secret-env", "ADMIN_SECRET", "--name", "MCP server", "--profile", "app", "--redirect-uri", `http://127.0.0.1:${port}/callback`, ...(trust ? ["--token-exchange"] : [])]);
  expect(r.code, r.stderr).toBe(0);
  const app = s.app("MCP server")!;
  const add = await u.run(["profiles", "add", "oci", "--kind", "oci", "--issuer", s.url, "--client-id", app.name, "--client-secret-env", "S", "--grant", "authorization_code", "--redirect-port", String(port)], { env: { S: app.clientSecret } });
  expect(add.code, add.stderr).toBe(0);
  // A person approving in the browser: the domain's signed-in user consents, the browser follows the redirect.
  const login = await u.run(["login", "--profile", "oci", "--browser-command", s.browserCommand]);
  expect(login.code, login.stderr).toBe(0);
  return app;
}
const secrets = () => JSON.parse(readFileSync(join(u!.configDir, "secrets.json"), "utf8")).secrets as Record<string, string>;
const derOf = (pem: string) => createPublicKey(createPrivateKey(pem)).export({ format: "der", type: "spki" }).toString("base64");
const exchange = (...args: string[]) => u!.run(["token", "--profile", "oci", "--exchange", "oci-upst", ...args]);

describe("token --exchange oci-upst", () => {
  it("logout forgets the session token too; profiles remove also deletes the key it is bound to", async () => {
    await setup();
    const upst = (await exchange()).stdout.trim();
    expect(upst).toBeTruthy();
    const cached = () => readdirSync(join(u!.configDir, "tokens")).map((f) => readFileSync(join(u!.configDir, "tokens", f), "utf8")).filter((t) => t.includes("urn:oci:token-type:oci-upst"));
    expect(cached()).toHaveLength(1);
    const out = await u!.run(["logout", "oci"]);
    expect(out.code, out.stderr).toBe(0);
    expect(cached()).toHaveLength(0);
    expect(secrets()["oci-upst-key:oci"]).toBeTruthy(); // the profile's key stays with the profile
    const rm = await u!.run(["profiles", "remove", "oci"]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(secrets()["oci-upst-key:oci"]).toBeUndefined();
  });

  it("exchanges the signed-in user's token for a UPST bound to a key kept in the secret store, caches it, exchanges again only when asked for more life", async () => {
    const app = await setup(true, undefined, true); // the CLI as a process, end to end
    const r = await exchange();
    expect(r.code, r.stderr).toBe(0);
    const upst = r.stdout.trim();
    // The domain signed it (checked as the seed's sample server checks tokens: the domain's JWKS).
    const { payload } = await jwtVerify(upst, createLocalJWKSet(await (await s!.fetch(`${s!.url}/admin/v1/SigningCert/jwk`)).json()), { issuer: IDCS_ISSUER });
    // Server side: the app asked, with alice's access token (from the login) as the subject.
    expect(s!.exchanges).toHaveLength(1);
    expect(s!.exchanges[0]).toMatchObject({ clientId: app.name, subject: "alice", subjectClientId: app.name });
    expect(payload.sub).toBe("alice");
    // The UPST is bound to the public half of the key in the secret store, an RSA-2048 key.
    const pem = secrets()["oci-upst-key:oci"]!;
    expect(createPrivateKey(pem).asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(s!.exchanges[0]!.publicKeyDer).toBe(derOf(pem));
    const bound = await createPublicKeyFromJwk(String(payload.jwk));
    expect(bound).toBe(derOf(pem));
    expect(r.stderr).not.toContain("PRIVATE KEY");

    // Cached: no second exchange while it has life left.
    const again = await exchange();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe(upst);
    expect(s!.exchanges).toHaveLength(1);
    // Its own cache entry: the profile's plain token is still alice's access token.
    const plain = await u!.run(["token", "--profile", "oci"]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.trim()).not.toBe(upst);
    expect(decodeJwt(plain.stdout.trim())).toMatchObject({ client_id: app.name, sub: "alice", sub_type: "user" });

    // More life than it has left: exchanged again, with the same key.
    const longer = await exchange("--min-ttl", "7200");
    expect(longer.code, longer.stderr).toBe(0);
    expect(s!.exchanges).toHaveLength(2);
    expect(s!.exchanges[1]!.publicKeyDer).toBe(derOf(pem));
    const json = await exchange("--format", "json");
    expect(JSON.parse(json.stdout)).toMatchObject({ access_token: longer.stdout.trim(), profile: "oci" });
  });

  it("--debug traces show the exchange but neither the subject token, the UPST, the client secret nor the private key", async () => {
    const app = await setup();
    const r = await exchange("--debug");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("requested_token_type=urn%3Aoci%3Atoken-type%3Aoci-upst");
    expect(r.stderr).toContain("subject_token=%5Bredacted%5D");
    expect(r.stderr).toContain('{"token":"[redacted]"}');
    const upst = r.stdout.trim();
    expect(r.stderr).not.toContain(upst);
    expect(r.stderr).not.toContain(app.clientSecret);
    expect(r.stderr).not.toMatch(/eyJ[\w-]{20,}\.[\w-]{20,}/);
    expect(r.stderr).not.toContain("PRIVATE KEY");
  });

  it("a UPST about to expire is exchanged again on the next call", async () => {
    await setup(true, 30); // lives 30 s, less than the default --min-ttl of 60
    expect((await exchange()).code).toBe(0);
    expect((await exchange()).code).toBe(0);
    expect(s!.exchanges).toHaveLength(2);
  });

  it("--oci-session-dir writes the token and its private key as the OCI CLI reads them, 0600, matching the UPST", async () => {
    await setup();
    const dir = join(u!.home, ".oci", "sessions", "oci");
    const r = await exchange("--oci-session-dir", dir);
    expect(r.code, r.stderr).toBe(0);
    const upst = r.stdout.trim();
    expect(readFileSync(join(dir, "token"), "utf8")).toBe(upst);
    const pem = readFileSync(join(dir, "oci_api_key.pem"), "utf8");
    expect(pem).toBe(secrets()["oci-upst-key:oci"]);
    expect(await createPublicKeyFromJwk(String(decodeJwt(upst).jwk))).toBe(derOf(pem));
    for (const f of ["token", "oci_api_key.pem", "oci_api_key_public.pem"]) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(r.stderr).toContain(`security_token_file=${join(dir, "token")}`);
    expect(r.stderr).toContain(`key_file=${join(dir, "oci_api_key.pem")}`);
    expect(r.stderr).toContain("oci --auth security_token --profile oci");
    expect(r.stderr).not.toContain(upst);
    expect(r.stderr).not.toContain("PRIVATE KEY");

    // From the cache too, the files are written (the token file follows the token printed).
    const cached = await exchange("--oci-session-dir", dir);
    expect(cached.code).toBe(0);
    expect(s!.exchanges).toHaveLength(1);
    expect(readFileSync(join(dir, "token"), "utf8")).toBe(cached.stdout.trim());
  });

  it("a session dir that others can write to is refused (exit 5) and nothing is written there", async () => {
    await setup();
    const dir = join(u!.home, "shared");
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const r = await exchange("--oci-session-dir", dir);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(dir);
    expect(() => statSync(join(dir, "oci_api_key.pem"))).toThrow();
    expect(r.stdout).toBe("");
  });

  it("without the identity propagation trust: exit 4 with the domain's error and what to run, nothing cached", async () => {
    await setup(false);
    const r = await exchange();
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`token exchange (OCI UPST) at ${s!.host} refused: invalid_grant: No active identity propagation trust`);
    expect(r.stderr).toContain("mcp-auth bootstrap oci --token-exchange");
    expect(r.stdout).toBe("");
    const again = await exchange();
    expect(again.code).toBe(4);
    expect(s!.requests.filter((q) => q.path === "/oauth2/v1/token").length).toBeGreaterThanOrEqual(3);
  });

  it("a client secret the domain no longer accepts: exit 4, invalid_client, never the secret", async () => {
    const app = await setup();
    const old = app.clientSecret; // alice's token is cached from the login
    app.clientSecret = "rotated-elsewhere";
    const r = await exchange();
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("invalid_client");
    expect(r.stderr).not.toContain(old);
  });

  it("a client-credentials profile: its subject is the app, not a user; exit 4 saying which profile to use instead", async () => {
    const app = await setup();
    const r = await u!.run(["token", "--profile", "app", "--exchange", "oci-upst"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("refused: invalid_grant: The subject token does not identify a user.");
    expect(r.stderr).toContain('profile "app" gets its token by client credentials, so the subject is the app, not a user');
    expect(r.stderr).toContain(`--client-id ${app.name} --client-secret-stdin --grant authorization_code`);
    expect(s!.exchanges).toHaveLength(0);
  });

  it("refusals before any request: a profile of another IdP, a header format, a session dir without --exchange (exit 2)", async () => {
    await setup();
    const before = s!.requests.length;
    expect((await u!.run(["profiles", "add", "other", "--issuer", "https://idp.invalid", "--client-id", "x"])).code).toBe(0);
    const other = await u!.run(["token", "--profile", "other", "--exchange", "oci-upst"]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('--exchange oci-upst needs an OCI profile; profile "other" is of provider oidc');
    const header = await exchange("--format", "header");
    expect(header.code).toBe(2);
    expect(header.stderr).toContain("--format header does not apply to an OCI session token");
    const dirOnly = await u!.run(["token", "--profile", "oci", "--oci-session-dir", join(u!.home, "s")]);
    expect(dirOnly.code).toBe(2);
    expect(dirOnly.stderr).toContain("--oci-session-dir needs --exchange oci-upst");
    const kind = await u!.run(["token", "--profile", "oci", "--exchange", "aws"]);
    expect(kind.code).toBe(2);
    expect(s!.requests.length).toBe(before);
  });
});

/** The DER SPKI (base64) of the JWK a UPST carries in its `jwk` claim. */
async function createPublicKeyFromJwk(jwk: string): Promise<string> {
  return createPublicKey({ key: JSON.parse(jwk), format: "jwk" }).export({ format: "der", type: "spki" }).toString("base64");
}
