import { generateKeyPairSync } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { mergeEnv } from "../../src/providers/oci/env-file.js";
import { oci } from "../../src/providers/oci/index.js";
import { user, type Sandboxed } from "../helpers/cli.js";
import { inProcessUser } from "../helpers/in-process.js";
import { createTestContext, type TestContext } from "../helpers/context.js";
import { IDCS_ISSUER, startOci, type OciSim } from "../simulators/oci.js";

/** `mcp-auth bootstrap oci` against the OCI IAM simulator (test/simulators/oci.ts, docs/idp/oci.md). */
const ADMIN_SECRET = "admin-app-secret";
let s: OciSim | undefined;
let u: Sandboxed | undefined;
afterEach(async () => {
  await s?.close();
  u?.cleanup();
  s = u = undefined;
});

/** In-process (inProcessUser) unless asked: the first test runs bootstrap and token as the real process. */
async function setup(asProcess = false) {
  s = await startOci({ adminClientId: "admin-app", adminClientSecret: ADMIN_SECRET });
  u = (asProcess ? user : inProcessUser)({ MCP_AUTH_STORE: "file", ADMIN_SECRET, ...s.env });
}
function bootstrap(args: string[], env: NodeJS.ProcessEnv = {}) {
  return u!.run(["bootstrap", "oci", "--domain-url", s!.url, "--admin-client-id", "admin-app", "--admin-client-secret-env", "ADMIN_SECRET", "--name", "MCP server", ...args], { env });
}
function storedSecret(profile = "oci"): string | undefined {
  return JSON.parse(readFileSync(join(u!.configDir, "secrets.json"), "utf8")).secrets[`client-secret:${profile}`];
}

describe("bootstrap oci", () => {
  it("creates and activates the confidential app, makes the JWKS public, and the first token verifies", async () => {
    await setup(true);
    expect(s!.settings.signingCertPublicAccess).toBe(false);
    expect((await s!.fetch(`${s!.url}/admin/v1/SigningCert/jwk`)).status).toBe(401);

    const r = await bootstrap(["--mcp-url", "https://mcp.example.com"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('OCI IAM: created — profile "oci"');
    expect(r.stderr).toMatch(/✓ first token/);
    expect(r.stderr).toMatch(/✓ app active/);
    expect(r.stderr).toMatch(/✓ public JWKS: .*answers without a token/);

    // server side: what the 17 console steps would have made
    const app = s!.app("MCP server")!;
    expect(app).toMatchObject({ active: true, clientType: "confidential", isOAuthClient: true, basedOnTemplate: { value: "CustomWebAppTemplateId" }, redirectUris: ["https://mcp.example.com/oauth/callback"] });
    expect(app.allowedGrants).toEqual(expect.arrayContaining(["authorization_code", "client_credentials"]));
    expect(s!.requests.some((q) => q.method === "PUT" && q.path === `/admin/v1/AppStatusChanger/${app.id}`)).toBe(true);
    expect(s!.settings.signingCertPublicAccess).toBe(true);
    expect((await s!.fetch(`${s!.url}/admin/v1/SigningCert/jwk`)).status).toBe(200);
    expect(storedSecret()).toBe(app.clientSecret);
    expect(r.stderr).not.toContain(app.clientSecret);
    expect(r.stderr).not.toContain(ADMIN_SECRET);

    const cfg = JSON.parse(readFileSync(join(u!.configDir, "config.json"), "utf8"));
    expect(cfg.profiles.oci).toMatchObject({ provider: "oci", issuer: s!.url, clientId: app.name, grant: "client_credentials" });

    // The profile's issuer is the domain URL, whose discovery document names IDCS's issuer: token
    // discovers it and gets a token. As the sample server does: verify against the domain's public
    // JWKS; iss is IDCS's.
    const tok = await u!.run(["token", "--profile", "oci"]);
    expect(tok.code, tok.stderr).toBe(0);
    const jwks = createLocalJWKSet(await (await s!.fetch(`${s!.url}/admin/v1/SigningCert/jwk`)).json());
    const { payload } = await jwtVerify(tok.stdout.trim(), jwks, { issuer: IDCS_ISSUER });
    expect(payload.client_id).toBe(app.name);
  });

  it("re-running reuses the app (no duplicate, same secret); --rotate-secret really changes it", async () => {
    await setup();
    expect((await bootstrap([])).code).toBe(0);
    const first = s!.app("MCP server")!.clientSecret;
    const again = await bootstrap([]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("OCI IAM: reused");
    expect(again.stderr).toContain("client access (public JWKS): already enabled");
    expect(s!.apps.size).toBe(1);
    expect(s!.requests.filter((q) => q.method === "POST" && q.path === "/admin/v1/Apps")).toHaveLength(1);
    expect(storedSecret()).toBe(first);

    const rotated = await bootstrap(["--rotate-secret"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stderr).toContain("OCI IAM: rotated");
    const now = s!.app("MCP server")!.clientSecret;
    expect(now).not.toBe(first);
    expect(storedSecret()).toBe(now);
    expect(rotated.stderr).not.toContain(now);
    expect(s!.apps.size).toBe(1);
    // the old secret no longer works, the new one does (the first token check above used it)
    expect(rotated.stderr).toMatch(/✓ first token/);
    const old = await s!.fetch(`${s!.url}/oauth2/v1/token`, { method: "POST", headers: { authorization: `Basic ${Buffer.from(`${s!.app("MCP server")!.name}:${first}`).toString("base64")}` }, body: new URLSearchParams({ grant_type: "client_credentials" }) });
    expect(old.status).toBe(401);
  });

  it("a wrong admin secret is one line, exit 4, and the secret is never shown", async () => {
    await setup();
    const r = await bootstrap(["--debug"], { ADMIN_SECRET: "wrong-admin-secret-value" });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('OCI admin sign-in as client "admin-app" failed: HTTP 401: invalid_client: Client authentication failed.');
    expect(r.stderr).not.toContain("wrong-admin-secret-value");
    expect(s!.apps.size).toBe(0);
  });

  it("a SCIM 409 uniqueness error is one line with its detail and scimType, exit 2", async () => {
    await setup();
    s!.failNext("POST", "/admin/v1/Apps", 409, 'An App with the same displayName "MCP server" already exists.', "uniqueness");
    const r = await bootstrap([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('OCI creating app "MCP server" failed: HTTP 409: An App with the same displayName "MCP server" already exists. (scimType uniqueness)');
    expect(r.stderr).toContain("pass another --name");
    expect(r.stderr).not.toContain(ADMIN_SECRET);
  });

  it("the admin secret is read from stdin too, and --debug traces never show it or the app secret", async () => {
    await setup();
    const r = await u!.run(["bootstrap", "oci", "--domain-url", s!.url, "--admin-client-id", "admin-app", "--admin-client-secret-stdin", "--name", "MCP server", "--debug"], { input: `${ADMIN_SECRET}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("/admin/v1/Apps");
    expect(r.stderr + r.stdout).not.toContain(ADMIN_SECRET);
    expect(r.stderr + r.stdout).not.toContain(s!.app("MCP server")!.clientSecret);
  });
});

describe("bootstrap oci --token-exchange", () => {
  it("creates an active identity propagation trust for IDCS tokens listing the app, and reuses it on a re-run", async () => {
    await setup();
    const r = await bootstrap(["--token-exchange"]);
    expect(r.code, r.stderr).toBe(0);
    const app = s!.app("MCP server")!;
    expect(s!.trusts).toHaveLength(1);
    expect(s!.trusts[0]).toMatchObject({
      schemas: ["urn:ietf:params:scim:schemas:oracle:idcs:IdentityPropagationTrust"],
      type: "JWT",
      issuer: IDCS_ISSUER,
      publicKeyEndpoint: `${s!.url}/admin/v1/SigningCert/jwk`,
      active: true,
      subjectClaimName: "sub",
      subjectMappingAttribute: "username",
      subjectType: "User",
      clientClaimName: "iss",
      clientClaimValues: [IDCS_ISSUER],
      allowImpersonation: false,
      oauthClients: [app.name],
    });
    expect(r.stderr).toMatch(/token exchange: identity propagation trust \w+ \(created\)/);
    const again = await bootstrap(["--token-exchange"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/\(reused\)/);
    expect(s!.trusts).toHaveLength(1);
  });

  it("the app can then exchange a user's IDCS token for a UPST, as the seed's sample server does; before, it cannot", async () => {
    await setup();
    expect((await bootstrap([])).code).toBe(0);
    const app = s!.app("MCP server")!;
    const der = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "der", type: "spki" }).toString("base64");
    const exchange = async () =>
      s!.fetch(`${s!.url}/oauth2/v1/token`, {
        method: "POST",
        headers: { authorization: `Basic ${Buffer.from(`${app.name}:${app.clientSecret}`).toString("base64")}` },
        body: new URLSearchParams({
          grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
          requested_token_type: "urn:oci:token-type:oci-upst",
          subject_token: await s!.userToken("alice", app.name),
          subject_token_type: "jwt",
          public_key: der,
        }),
      });
    const before = await exchange();
    expect(before.status).toBe(400);
    expect((await before.json()).error).toBe("invalid_grant");
    expect((await bootstrap(["--token-exchange"])).code).toBe(0);
    const after = await exchange();
    expect(after.status).toBe(200);
    const body = await after.json();
    expect(typeof body.token).toBe("string");
    expect(body.access_token).toBeUndefined();
  });

  it("an existing, inactive trust for the issuer is activated and given the client, keeping its other clients", async () => {
    await setup();
    s!.trusts.push({ id: "t1", name: "For Token Exchange", type: "JWT", issuer: IDCS_ISSUER, active: false, oauthClients: ["someone-else"] });
    const r = await bootstrap(["--token-exchange"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("identity propagation trust t1 (updated)");
    expect(s!.trusts).toHaveLength(1);
    expect(s!.trusts[0]).toMatchObject({ active: true, oauthClients: ["someone-else", s!.app("MCP server")!.name], name: "For Token Exchange" });
  });
});

describe("bootstrap oci --env-file", () => {
  const SAMPLE = "# OCI MCP server sample\n\n# domain\nIAM_DOMAIN=old.example.com\nexport IAM_CLIENT_ID=old-id   \nPORT=8000 # the server's port\n# token exchange\nIAM_TOKENEXCHANGE_CLIENT_ID=old\nLOG_LEVEL=debug";

  it("merges the sample server's keys in place, keeps every other line byte for byte, 0600, backup kept", async () => {
    await setup();
    const env = join(u!.home, ".env");
    writeFileSync(env, SAMPLE, { mode: 0o644 });
    const r = await bootstrap(["--env-file", env]);
    expect(r.code, r.stderr).toBe(0);
    const app = { ...s!.app("MCP server")! }; // a copy: the simulator's record changes on rotation
    const host = new URL(s!.url).host;
    expect(readFileSync(env, "utf8")).toBe(
      `# OCI MCP server sample\n\n# domain\nIAM_DOMAIN=${host}\nexport IAM_CLIENT_ID=${app.name}\nPORT=8000 # the server's port\n# token exchange\nIAM_TOKENEXCHANGE_CLIENT_ID=${app.name}\nLOG_LEVEL=debug\n` +
        `IAM_CLIENT_SECRET=${app.clientSecret}\nIAM_GUID=${host.split(".")[0]}\nIAM_TOKENEXCHANGE_CLIENT_SECRET=${app.clientSecret}\n`,
    );
    expect(statSync(env).mode & 0o777).toBe(0o600);
    expect(r.stderr).toMatch(/holds the app's client secret \(mode 0600\) because --dotenv asked for it/);
    expect(r.stderr).toMatch(/env file: .*\.env \(update; previous version kept at /);
    expect(r.stderr).not.toContain(app.clientSecret);

    // A re-run with --rotate-secret replaces the secret lines only.
    const rotated = await bootstrap(["--env-file", env, "--rotate-secret"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const now = s!.app("MCP server")!.clientSecret;
    const text = readFileSync(env, "utf8");
    expect(text).toContain(`IAM_CLIENT_SECRET=${now}\n`);
    expect(text).not.toContain(app.clientSecret);
    expect(text.split("\n").filter((l) => l.startsWith("IAM_CLIENT_SECRET="))).toHaveLength(1);
    expect(text.startsWith("# OCI MCP server sample\n\n# domain\n")).toBe(true);
  });

  it("--dotenv writes a .env that does not exist yet; Node itself stops `--env-file <missing file>` (exit 9)", async () => {
    await setup(true); // what Node does with the real binary's argv
    const env = join(u!.home, ".env");
    // Node (20 to at least 26) reads `--env-file X` anywhere in argv, after the script path too, and
    // exits 9 before mcp-auth runs when X does not exist (nodejs/node#54232): no such flag can work.
    const intercepted = await bootstrap(["--env-file", env]);
    expect(intercepted.code).toBe(9);
    expect(intercepted.stderr).toContain(`${env}: not found`);
    const r = await bootstrap(["--dotenv", env]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(env, "utf8")).toContain(`IAM_CLIENT_SECRET=${s!.app("MCP server")!.clientSecret}\n`);
    expect(statSync(env).mode & 0o777).toBe(0o600);
    expect(r.stderr).toMatch(/holds the app's client secret \(mode 0600\) because --dotenv asked for it/);
  });

  it.each([
    ["new file", null, { A: "1" }, "A=1\n"],
    ["keeps CRLF and comments", "# c\r\nA=old\r\nB=2\r\n", { A: "new", C: "3" }, "# c\r\nA=new\r\nB=2\r\nC=3\r\n"],
    ["keeps export and spacing before =", "export A =old\n", { A: "x" }, "export A =x\n"],
    ["replaces every duplicate", "A=1\nA=2\n", { A: "3" }, "A=3\nA=3\n"],
    ["quotes what needs quoting", "", { A: 'a b"c' }, 'A="a b\\"c"\n'],
    ["undefined leaves a key alone", "A=keep\n", { A: undefined, B: undefined }, "A=keep\n"],
    ["a commented-out key is not a key", "# A=1\n", { A: "2" }, "# A=1\nA=2\n"],
  ] as const)("mergeEnv: %s", (_name, before, values, after) => {
    expect(mergeEnv(before, values)).toBe(after);
  });
});

describe("bootstrap oci: inputs, in-process", () => {
  let sim: OciSim;
  let t: TestContext | undefined;
  beforeAll(async () => {
    sim = await startOci();
  });
  afterAll(() => sim.close());
  afterEach(() => t?.cleanup());

  const cases: Array<{ name: string; args: (url: string) => string[]; env?: NodeJS.ProcessEnv; code: number; err: RegExp }> = [
    { name: "no domain", args: () => ["--admin-client-id", "admin-app", "--admin-client-secret-env", "S", "--name", "x"], env: { S: ADMIN_SECRET }, code: 2, err: /--domain-url is required/ },
    { name: "domain with a path", args: (url) => ["--domain-url", `${url}/oauth2`, "--admin-client-id", "admin-app", "--admin-client-secret-env", "S", "--name", "x"], env: { S: ADMIN_SECRET }, code: 2, err: /--domain-url must be the domain's origin only/ },
    { name: "no name", args: (url) => ["--domain-url", url, "--admin-client-id", "admin-app", "--admin-client-secret-env", "S"], env: { S: ADMIN_SECRET }, code: 2, err: /--name is required/ },
    { name: "no admin secret", args: (url) => ["--domain-url", url, "--admin-client-id", "admin-app", "--name", "x"], code: 2, err: /admin client's secret is needed/ },
    { name: "empty env var", args: (url) => ["--domain-url", url, "--admin-client-id", "admin-app", "--admin-client-secret-env", "NOPE", "--name", "x"], code: 2, err: /\$NOPE is empty or not set/ },
    { name: "both mcp-url and redirect-uri", args: (url) => ["--domain-url", url, "--admin-client-id", "admin-app", "--admin-client-secret-env", "S", "--name", "x", "--mcp-url", "https://a.example", "--redirect-uri", "https://a.example/cb"], env: { S: ADMIN_SECRET }, code: 2, err: /--redirect-uri and --mcp-url cannot be used together/ },
    { name: "plain http to a remote domain", args: () => ["--domain-url", "http://idcs-abc.identity.oraclecloud.com", "--admin-client-id", "admin-app", "--admin-client-secret-env", "S", "--name", "x"], env: { S: ADMIN_SECRET }, code: 2, err: /refusing plain http/ },
    { name: "no secret on argv", args: (url) => ["--domain-url", url, "--admin-client-id", "admin-app", "--admin-client-secret", ADMIN_SECRET, "--name", "x"], code: 2, err: /unknown option '--admin-client-secret'/ },
    { name: "wrong admin secret", args: (url) => ["--domain-url", url, "--admin-client-id", "admin-app", "--admin-client-secret-env", "S", "--name", "x"], env: { S: "not-the-secret" }, code: 4, err: /HTTP 401: invalid_client/ },
  ];
  it.each(cases)("$name → exit $code", async (c) => {
    t = createTestContext({ env: { ...sim.env, ...c.env }, global: { caFile: sim.caFile } });
    expect(await t.run(["bootstrap", "oci", ...c.args(sim.url)])).toBe(c.code);
    expect(t.stderr()).toMatch(c.err);
    expect(t.stdout()).toBe("");
    expect(t.stderr()).not.toContain("not-the-secret");
    expect(t.stderr()).not.toContain(ADMIN_SECRET);
  });

  it("a redirect URI given as such is registered as is; MCP_AUTH_ADMIN_CLIENT_SECRET is the default variable", async () => {
    t = createTestContext({ env: { ...sim.env, MCP_AUTH_ADMIN_CLIENT_SECRET: ADMIN_SECRET }, global: { caFile: sim.caFile } });
    expect(await t.run(["bootstrap", "oci", "--domain-url", sim.url, "--admin-client-id", "admin-app", "--name", "redirect app", "--redirect-uri", "http://localhost:5000/auth/callback", "--no-verify"])).toBe(0);
    expect(sim.app("redirect app")!.redirectUris).toEqual(["http://localhost:5000/auth/callback"]);
  });
});

describe("oci.matches", () => {
  it.each([
    ["https://idcs-0123abcd.identity.oraclecloud.com", true],
    ["https://idcs-0123abcd.identity.oraclecloud.com/", true],
    ["https://identity.oraclecloud.com/", false],
    ["https://idcs-x.identity.oraclecloud.com.evil.example", false],
    [{ issuer: "https://identity.oraclecloud.com/", token_endpoint: "https://idcs-ab.identity.oraclecloud.com/oauth2/v1/token" }, true],
    [{ issuer: "https://identity.oraclecloud.com/", token_endpoint: "https://evil.example/oauth2/v1/token" }, false],
  ] as const)("%j → %s", (x, want) => {
    expect(oci.matches(x)).toBe(want);
  });
});
