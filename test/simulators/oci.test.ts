import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDCS_ISSUER, startOci, type OciSim } from "./oci.js";

/**
 * The OCI simulator's UPST exchange contract (docs/idp/oci.md §6, §7, §8):
 * what it accepts and the OAuth error shape and status of each refusal.
 */
let s: OciSim;
let client = { id: "", secret: "" };
const der = (bits: number, type: "rsa" | "ec" = "rsa") =>
  (type === "rsa" ? generateKeyPairSync("rsa", { modulusLength: bits }) : generateKeyPairSync("ec", { namedCurve: "P-256" })).publicKey.export({ format: "der", type: "spki" }).toString("base64");
const GOOD_KEY = der(2048);

beforeAll(async () => {
  s = await startOci();
  const admin = (await (await s.fetch(`${s.url}/oauth2/v1/token`, { method: "POST", headers: { authorization: `Basic ${Buffer.from("admin-app:admin-app-secret").toString("base64")}` }, body: new URLSearchParams({ grant_type: "client_credentials", scope: "urn:opc:idm:__myscopes__" }) })).json()) as { access_token: string };
  const scim = (path: string, body: unknown) => s.fetch(`${s.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${admin.access_token}`, "content-type": "application/scim+json" }, body: JSON.stringify(body) });
  const app = (await (await scim("/admin/v1/Apps", { schemas: ["urn:ietf:params:scim:schemas:oracle:idcs:App"], displayName: "te", basedOnTemplate: { value: "CustomWebAppTemplateId" }, isOAuthClient: true, active: true, allowedGrants: ["client_credentials"] })).json()) as { name: string; clientSecret: string };
  client = { id: app.name, secret: app.clientSecret };
  await scim("/admin/v1/IdentityPropagationTrusts", { schemas: ["urn:ietf:params:scim:schemas:oracle:idcs:IdentityPropagationTrust"], name: "t", type: "JWT", issuer: IDCS_ISSUER, active: true, oauthClients: [client.id] });
});
afterAll(() => s.close());

async function exchange(over: Record<string, string | undefined>, auth = `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString("base64")}`) {
  const form: Record<string, string> = {};
  const base: Record<string, string | undefined> = {
    grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
    requested_token_type: "urn:oci:token-type:oci-upst",
    subject_token: await s.userToken("alice", client.id),
    subject_token_type: "jwt",
    public_key: GOOD_KEY,
    ...over,
  };
  for (const [k, v] of Object.entries(base)) if (v !== undefined) form[k] = v;
  const res = await s.fetch(`${s.url}/oauth2/v1/token`, { method: "POST", headers: { authorization: auth }, body: new URLSearchParams(form) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("OCI simulator: UPST token exchange (§6)", () => {
  it("answers {token} (not access_token) for a valid request", async () => {
    const r = await exchange({});
    expect(r.status).toBe(200);
    expect(Object.keys(r.body)).toEqual(["token"]);
    expect(s.exchanges.at(-1)).toMatchObject({ clientId: client.id, subject: "alice", publicKeyDer: GOOD_KEY });
  });

  it.each([
    ["the RFC 8693 URN instead of the literal jwt", { subject_token_type: "urn:ietf:params:oauth:token-type:jwt" }, 400, "invalid_request"],
    ["another requested token type", { requested_token_type: "urn:oci:token-type:oci-rpst" }, 400, "invalid_request"],
    ["no subject token", { subject_token: undefined }, 400, "invalid_request"],
    ["a PEM-armoured public key", { public_key: `-----BEGIN PUBLIC KEY-----\n${GOOD_KEY}\n-----END PUBLIC KEY-----` }, 400, "invalid_request"],
    ["an RSA-1024 key", { public_key: der(1024) }, 400, "invalid_request"],
    ["an EC key", { public_key: der(0, "ec") }, 400, "invalid_request"],
    ["a subject token not signed by the domain", { subject_token: "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkZW50aXR5Lm9yYWNsZWNsb3VkLmNvbS8ifQ." }, 400, "invalid_grant"],
  ])("refuses %s: HTTP %#", async (_what, over, status, error) => {
    const r = await exchange(over);
    expect(r.status).toBe(status);
    expect(r.body.error).toBe(error);
    expect(typeof r.body.error_description).toBe("string");
  });

  it("refuses a wrong client secret with 401 invalid_client", async () => {
    const r = await exchange({}, `Basic ${Buffer.from(`${client.id}:wrong`).toString("base64")}`);
    expect(r).toMatchObject({ status: 401, body: { error: "invalid_client" } });
  });

  it("refuses a client not listed in an active trust with 400 invalid_grant", async () => {
    const trust = s.trusts[0]!;
    trust.active = false;
    try {
      expect(await exchange({})).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    } finally {
      trust.active = true;
    }
  });
});
