import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startKeycloak, type KeycloakSim } from "./simulators/keycloak.js";
import type { Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";

/**
 * `bootstrap keycloak --client-auth private-key-jwt`: the client gets Keycloak's "Signed JWT"
 * authenticator with the public key as its JWKS; no client secret exists anywhere. The CLI runs in this
 * process (test/private-key-jwt.test.ts runs a key-signed token through the real binary).
 */
let k: KeycloakSim | undefined;
let u: Sandboxed | undefined;
afterEach(async () => {
  await k?.close();
  u?.cleanup();
  k = u = undefined;
});

const client = (id: string) => [...k!.realm("kcp").clients.values()].find((c) => c.clientId === id)!;
const bootstrap = (extra: string[] = []) =>
  u!.run(["bootstrap", "keycloak", "--url", k!.url, "--admin-password-env", "ADMIN_PW", "--realm", "kcp", "--create-client", "mcp-ci", "--client-auth", "private-key-jwt", ...extra]);

describe("bootstrap keycloak --client-auth private-key-jwt", () => {
  it("registers the public key on a Signed JWT client, stores no secret, and gets tokens with the key", async () => {
    k = await startKeycloak({ realms: ["kcp"] });
    u = inProcessUser({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    const r = await bootstrap();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("Signed JWT with key");

    const c = client("mcp-ci");
    expect(c.clientAuthenticatorType).toBe("client-jwt");
    expect(c.secret).toBeUndefined();
    expect(c.attributes["use.jwks.string"]).toBe("true");
    expect(c.attributes["use.jwks.url"]).toBe("false");
    expect(c.attributes["token.endpoint.auth.signing.alg"]).toBe("ES256");
    const jwks = JSON.parse(c.attributes["jwks.string"]!) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).not.toHaveProperty("d");

    const cfg = JSON.parse(readFileSync(join(u.configDir, "config.json"), "utf8"));
    const p = Object.values(cfg.profiles)[0] as { key: { kid: string }; secretStore?: string; tokenEndpointAuthMethod: string };
    expect(p.key.kid).toBe(jwks.keys[0]!.kid);
    expect(p.secretStore).toBeUndefined();
    expect(p.tokenEndpointAuthMethod).toBe("private_key_jwt");

    const t = await u.run(["token", "--provider", "keycloak", "--no-cache"]);
    expect(t.code, t.stderr).toBe(0);
    // Re-running keeps the key (idempotent): the registered JWKS does not change.
    expect((await bootstrap()).code).toBe(0);
    expect(client("mcp-ci").attributes["jwks.string"]).toBe(c.attributes["jwks.string"]);

    // A key rotated without telling Keycloak falls back to the old one; re-running the bootstrap
    // registers the new key, whose first token retires the old one.
    expect((await u.run(["profiles", "rotate-key", Object.keys(cfg.profiles)[0]!])).code).toBe(0);
    const during = await u.run(["token", "--provider", "keycloak", "--no-cache"]);
    expect(during.code, during.stderr).toBe(0);
    expect(during.stderr).toContain("using the previous key");
    const rerun = await bootstrap(); // its first token is the new key's
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toContain("was deleted");
    const after = await u.run(["token", "--provider", "keycloak", "--no-cache"]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toBe("");

    // Keycloak without the key: 400 invalid_client "Unable to load public key" → exit 4.
    client("mcp-ci").attributes["jwks.string"] = JSON.stringify({ keys: [] });
    const refused = await u.run(["token", "--provider", "keycloak", "--no-cache"]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain("Unable to load public key");
  });

  it("switches an existing client-secret client to Signed JWT", async () => {
    k = await startKeycloak({ realms: ["kcp"] });
    u = inProcessUser({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    const first = await u.run(["bootstrap", "keycloak", "--url", k.url, "--admin-password-env", "ADMIN_PW", "--realm", "kcp", "--create-client", "mcp-ci"]);
    expect(first.code, first.stderr).toBe(0);
    expect(client("mcp-ci").clientAuthenticatorType).toBe("client-secret");
    const r = await bootstrap();
    expect(r.code, r.stderr).toBe(0);
    expect(client("mcp-ci").clientAuthenticatorType).toBe("client-jwt");
    expect((await u.run(["token", "--provider", "keycloak", "--no-cache"])).code).toBe(0);
  });
});
