import { afterEach, describe, expect, it } from "vitest";
import { providerFor, providers } from "../../src/plugins.js";
import { keycloak } from "../../src/providers/keycloak/index.js";
import { thunder } from "../../src/providers/thunder.js";
import type { IssuerMetadata } from "../../src/core/provider.js";
import { startKeycloak, type KeycloakSim } from "../simulators/keycloak.js";
import { startThunder, type ThunderSim } from "../simulators/thunder.js";

/** `matches(issuer | metadata)`: which provider an issuer belongs to, for doctor and discovery. */
const okta: IssuerMetadata = { issuer: "https://dev-1.okta.com/oauth2/default", token_endpoint: "https://dev-1.okta.com/oauth2/default/v1/token", jwks_uri: "https://dev-1.okta.com/oauth2/default/v1/keys" };
const oci: IssuerMetadata = { issuer: "https://idcs-abc.identity.oraclecloud.com", token_endpoint: "https://idcs-abc.identity.oraclecloud.com/oauth2/v1/token", jwks_uri: "https://idcs-abc.identity.oraclecloud.com/admin/v1/SigningCert/jwk" };
const thunderLike: IssuerMetadata = { issuer: "https://idp.example.com", token_endpoint: "https://idp.example.com/oauth2/token", jwks_uri: "https://idp.example.com/oauth2/jwks" };

describe("provider.matches", () => {
  it.each([
    ["http://thunder.openchoreo.localhost:8080", "thunder"],
    ["https://thunder.example.com/", "thunder"],
    ["https://asgardeo-thunder.internal", "thunder"],
    ["https://auth.example.com/realms/kcp", "keycloak"],
    ["https://auth.example.com/realms/kcp/", "keycloak"],
    ["https://sso.example.com/auth/realms/master", "keycloak"], // Keycloak < 17 kept the /auth prefix
    ["https://thunderbird.example.com", undefined],
    ["https://auth.example.com/realms", undefined],
    ["https://auth.example.com/realms/kcp/protocol/openid-connect", undefined],
    ["https://accounts.google.com", undefined],
    ["not a url", undefined],
    [thunderLike, "thunder"],
    [{ ...thunderLike, jwks_uri: undefined, registration_endpoint: "https://idp.example.com/oauth2/dcr/register" }, "thunder"],
    [{ ...thunderLike, jwks_uri: "https://idp.example.com/keys" }, undefined],
    [okta, undefined],
    [oci, "oci"],
  ] as Array<[string | IssuerMetadata, string | undefined]>)("%j → %s", (x, id) => {
    expect(providerFor(x)?.id).toBe(id);
    // at most one provider claims an issuer
    expect(providers.filter((p) => p.matches(x)).length).toBeLessThanOrEqual(1);
  });
});

describe("provider.matches on the simulators' real discovery documents", () => {
  let t: ThunderSim | undefined;
  let k: KeycloakSim | undefined;
  afterEach(async () => {
    await t?.close();
    await k?.close();
    t = k = undefined;
  });

  it("names Thunder on 127.0.0.1 from its metadata, and Keycloak from its issuer", async () => {
    t = await startThunder();
    k = await startKeycloak({ realms: ["kcp"] });
    const tm = (await (await fetch(`${t.url}/.well-known/openid-configuration`)).json()) as IssuerMetadata;
    const km = (await (await fetch(`${k.url}/realms/kcp/.well-known/openid-configuration`)).json()) as IssuerMetadata;
    expect(thunder.matches(tm)).toBe(true);
    expect(thunder.matches(tm.issuer)).toBe(false); // a bare loopback URL says nothing
    expect(keycloak.matches(tm)).toBe(false);
    expect(keycloak.matches(km)).toBe(true);
    expect(keycloak.matches(km.issuer)).toBe(true);
    expect(thunder.matches(km)).toBe(false);
  });
});
