import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * The `kid` header of a private_key_jwt assertion against the real oidc-provider: an IdP picks the
 * client's key by that header, so it must name the key the way the IdP registered it. A generated key
 * is named by its RFC 7638 thumbprint (the kid mcp-auth prints); an imported JWK keeps its own kid; an
 * imported PEM key has none unless --key-id names one; `profiles set --key-id KID | --no-key-id`
 * changes it later. oidc-provider, like Keycloak and Auth0, refuses an assertion whose kid matches no
 * registered key (invalid_client).
 */
const sb = useSandbox();
let t: TestContext | undefined;
afterEach(() => t?.cleanup());

const keyClient = (jwks: Record<string, unknown>[]) =>
  sb.registerClient({ token_endpoint_auth_method: "private_key_jwt", jwks: { keys: jwks }, grant_types: ["client_credentials"], response_types: [], redirect_uris: [], scope: "mcp:read" });

/** A fresh RSA key pair: its PEM (PKCS#8) file, its private JWK file, and its public JWK without kid. */
function rsaKey(dir: string, name: string, extra: Record<string, unknown> = {}) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = join(dir, `${name}.pem`);
  const jwk = join(dir, `${name}.jwk`);
  writeFileSync(pem, privateKey.export({ format: "pem", type: "pkcs8" }));
  writeFileSync(jwk, JSON.stringify({ ...privateKey.export({ format: "jwk" }), ...extra }));
  return { pem, jwk, pub: { ...publicKey.export({ format: "jwk" }), alg: "RS256", use: "sig" } as Record<string, unknown> };
}

function ctx(): TestContext {
  return (t = createTestContext({ now: Date.now() }));
}

const config = (c: TestContext) => readFileSync(join(c.configDir, "config.json"), "utf8");
const keyOf = (c: TestContext) => JSON.parse(config(c)).profiles.ci.key as Record<string, unknown>;

/** Runs a command that prints {profile, jwk} (--json) and returns the JWK. */
async function printedJwk(c: TestContext, argv: string[]): Promise<Record<string, unknown>> {
  const from = c.stdout().length;
  const code = await c.run(argv);
  expect(code, c.stderr()).toBe(0);
  return (JSON.parse(c.stdout().slice(from)) as { jwk: Record<string, unknown> }).jwk;
}

/** profiles add ci … --json, returning the public JWK it printed. */
const add = (c: TestContext, args: string[]) => printedJwk(c, ["profiles", "add", "ci", "--issuer", sb.issuer, "--client-auth", "private-key-jwt", "--json", "--force", ...args]);

async function tokenFor(c: TestContext, jwks: Record<string, unknown>[]): Promise<number> {
  const { client_id } = await keyClient(jwks);
  expect(await c.run(["profiles", "set", "ci", "--client-id", client_id])).toBe(0);
  return c.run(["token", "--profile", "ci", "--no-cache"]);
}

describe("private_key_jwt: the assertion's kid names the key as the IdP registered it", () => {
  it("an imported PEM key registered without a kid: the assertion carries none, and the printed JWK has none", async () => {
    const c = ctx();
    const k = rsaKey(c.env.HOME!, "k");
    const printed = await add(c, ["--key-file", k.pem]);
    expect(printed).not.toHaveProperty("kid");
    expect(printed.n).toBe(k.pub.n);
    expect(await tokenFor(c, [k.pub])).toBe(0);
    expect(c.stderr()).not.toContain("invalid_client");
  });

  it("an imported JWK keeps its own kid, in the assertion and in the JWK printed", async () => {
    const c = ctx();
    const k = rsaKey(c.env.HOME!, "k", { kid: "ops-2026-key" });
    const printed = await add(c, ["--key-file", k.jwk]);
    expect(printed.kid).toBe("ops-2026-key");
    expect(await tokenFor(c, [{ ...k.pub, kid: "ops-2026-key" }])).toBe(0);
  });

  it("--key-id names an imported PEM key the way the IdP registered it", async () => {
    const c = ctx();
    const k = rsaKey(c.env.HOME!, "k");
    const printed = await add(c, ["--key-file", k.pem, "--key-id", "cred_8f2a"]);
    expect(printed.kid).toBe("cred_8f2a");
    expect(await tokenFor(c, [{ ...k.pub, kid: "cred_8f2a" }])).toBe(0);
  });

  it("a generated key keeps its printed thumbprint kid; profiles set --key-id / --no-key-id change what is sent", async () => {
    const c = ctx();
    const printed = await add(c, ["--generate-key"]);
    expect(printed.kid).toMatch(/^[\w-]{43}$/);
    const bare = { ...printed };
    delete bare.kid;
    // The IdP registered the key under the printed kid: works as it always did.
    expect(await tokenFor(c, [printed])).toBe(0);
    // The IdP registered it under its own id: refused until the profile sends that id.
    expect(await tokenFor(c, [{ ...bare, kid: "idp-made-id" }])).toBe(4);
    expect(c.stderr()).toContain("invalid_client");
    expect(await c.run(["profiles", "set", "ci", "--key-id", "idp-made-id"])).toBe(0);
    expect(await c.run(["token", "--profile", "ci", "--no-cache"])).toBe(0);
    // The IdP registered it without a kid: --no-key-id.
    expect(await tokenFor(c, [bare])).toBe(4);
    expect(await c.run(["profiles", "set", "ci", "--no-key-id"])).toBe(0);
    expect(await c.run(["token", "--profile", "ci", "--no-cache"])).toBe(0);
    expect(keyOf(c)).toMatchObject({ kid: printed.kid, keyId: null });
  });

  it("rotate-key gives the new key its thumbprint kid again, and the previous key keeps the kid it was sent with", async () => {
    const c = ctx();
    const k = rsaKey(c.env.HOME!, "k");
    await add(c, ["--key-file", k.pem, "--key-id", "old-one"]);
    expect(await tokenFor(c, [{ ...k.pub, kid: "old-one" }])).toBe(0);
    const fresh = await printedJwk(c, ["profiles", "rotate-key", "ci", "--json"]);
    expect(fresh.kid).toBe(keyOf(c).kid);
    expect(keyOf(c)).not.toHaveProperty("keyId");
    expect(keyOf(c).previous).toMatchObject({ keyId: "old-one" });
    // The IdP still has only the old key, under its own id: the previous key serves, with that id.
    expect(await c.run(["token", "--profile", "ci", "--no-cache"])).toBe(0);
    expect(c.stderr()).toContain("using the previous key");
  });

  it.each([
    ["--key-id without a key", ["profiles", "add", "x", "--issuer", "https://idp.mcp-auth.invalid", "--client-id", "c", "--key-id", "k1"], /--key-id and --no-key-id need --client-auth private-key-jwt/],
    ["a kid with a control character", ["profiles", "add", "x", "--issuer", "https://idp.mcp-auth.invalid", "--client-auth", "private-key-jwt", "--generate-key", "--key-id", "a\u001b[2Jb"], /--key-id must be 1-256 visible characters/],
    ["profiles set --key-id on a profile without a key", ["profiles", "set", "plain", "--key-id", "k1"], /profile "plain" has no private_key_jwt key/],
  ])("%s: exit 2, nothing changed", async (_name, argv, err) => {
    const c = ctx();
    expect(await c.run(["profiles", "add", "plain", "--issuer", "https://idp.mcp-auth.invalid", "--client-id", "c"])).toBe(0);
    const before = config(c);
    expect(await c.run(argv)).toBe(2);
    expect(c.stderr()).toMatch(err);
    expect(c.stderr()).not.toContain("\u001b[2J");
    expect(config(c)).toBe(before);
  });

  it("an imported JWK whose kid is not a short visible string is refused (exit 2)", async () => {
    const c = ctx();
    const k = rsaKey(c.env.HOME!, "k", { kid: 42 });
    expect(await c.run(["profiles", "add", "ci", "--issuer", sb.issuer, "--client-auth", "private-key-jwt", "--key-file", k.jwk])).toBe(2);
    expect(c.stderr()).toMatch(/"kid" must be 1-256 visible characters/);
  });
});
