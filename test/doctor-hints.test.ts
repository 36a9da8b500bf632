import { describe, expect, it } from "vitest";
import { providerHints } from "../src/core/doctor.js";
import { providers } from "../src/plugins.js";

/** Each IdP's words for doctor's generic fixes live in its provider; doctor picks by the issuer. */
describe("doctor's provider hints", () => {
  const cases: Array<[string, string | undefined, Parameters<typeof providerHints>[2], string[]]> = [
    ["an unknown issuer lists every IdP's hint", "https://idp.example", (h) => h.publicUrl, ["Keycloak: KC_HOSTNAME", "OctoPerf: its public origin"]],
    ["no issuer at all lists every IdP's hint", undefined, (h) => h.mcpDisabled, ["OpenProject: Administration → experimental features"]],
    ["a Keycloak issuer gets Keycloak's words only", "https://kc.example/realms/kcp", (h) => h.publicUrl, ["Keycloak: KC_HOSTNAME"]],
    ["an OCI domain gets OCI's JWKS setting", "https://idcs-0123456789abcdef0123456789abcdef.identity.oraclecloud.com", (h) => h.privateJwks, ["OCI IAM: identity domain → Settings → Configure client access → allow access to the signing certificate"]],
    ["an IdP without a hint for the finding gets none", "https://kc.example/realms/kcp", (h) => h.mcpDisabled, []],
    ["a hint may take the finding's value", "https://kc.example/realms/kcp", (h) => h.audience?.("'a b'"), ["e.g. mcp-auth bootstrap keycloak --audience 'a b' (kcp: ensure oauth_audience matches the client's audience)"]],
  ];
  it.each(cases)("%s", (_what, issuer, pick, expected) => {
    expect(providerHints(providers, issuer, pick)).toEqual(expected);
  });
});
