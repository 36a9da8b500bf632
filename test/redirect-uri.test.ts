import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loopbackRedirect, loopbackRedirectProblem, redirectMismatch } from "../src/oauth/redirect-uri.js";
import { listenOn, loopbackListeners } from "../src/oauth/loopback.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { useSandbox } from "./helpers/sandbox.js";
import { freePort } from "./helpers/util.js";
import { devBrowser as browser } from "./helpers/dev-browser.js";

/** Exact loopback redirect URIs (`--redirect-uri`), against the real oidc-provider of the sandbox. */
const sb = useSandbox();
let tc: TestContext | undefined;
afterEach(() => tc?.cleanup());

describe("which redirect URIs mcp-auth can listen for", () => {
  it.each([
    ["http://localhost:3118/callback", ["127.0.0.1", "::1"], 3118, "/callback"],
    ["http://127.0.0.1:8080/oauth/cb", ["127.0.0.1"], 8080, "/oauth/cb"],
    ["http://[::1]:9000/", ["::1"], 9000, "/"],
  ])("%s: listens on %j port %i path %s", (uri, hosts, port, path) => {
    expect(loopbackRedirect(uri)).toEqual({ uri, hosts, port, path });
  });

  it.each([
    ["https://localhost:3118/callback", "plain http://"],
    ["http://example.com:3118/callback", "its host must be localhost, 127.0.0.1 or [::1]"],
    ["http://192.168.1.2:3118/callback", "its host must be"],
    ["http://localhost/callback", "names no port"],
    ["http://localhost:0/callback", "out of range"],
    ["http://localhost:3118/callback#x", "fragment"],
    ["http://localhost:3118/callback?x=1", "query"],
    ["http://user@localhost:3118/cb", "user name"],
    ["http://localhost:3118", "normal form, http://localhost:3118/"],
    ["http://LocalHost:3118/cb", "normal form, http://localhost:3118/cb"],
    ["http://localhost:3118/cb\r\nX: y", "control characters"],
    ["localhost:3118/cb", "plain http://"],
    ["not-a-uri", "not an absolute URI"],
    ["http://localhost:80/cb", "normal form, http://localhost/cb"],
  ])("%j is refused: %s", (uri, why) => {
    expect(loopbackRedirectProblem(uri)).toContain(why);
    expect(() => loopbackRedirect(uri)).toThrow(/--redirect-uri .* cannot be used/);
  });
});

describe("a machine without IPv6 loopback (::1 refused with EADDRNOTAVAIL, played by the listen function)", () => {
  const noV6 = (port: number, host: "127.0.0.1" | "::1", flag: string) =>
    host === "::1" ? Promise.reject(Object.assign(new Error("listen EADDRNOTAVAIL: address not available ::1"), { code: "EADDRNOTAVAIL" })) : listenOn(port, host, flag);

  it("localhost: listens on 127.0.0.1 and says that ::1 is missing", async () => {
    const port = await freePort();
    const warned: string[] = [];
    const l = await loopbackListeners({ port: 0, redirect: loopbackRedirect(`http://localhost:${port}/cb`), warn: (w) => warned.push(w) }, noV6);
    try {
      expect(l.servers).toHaveLength(1);
      expect(l.redirectUri).toBe(`http://localhost:${port}/cb`);
      expect(warned).toEqual([`this machine has no IPv6 loopback (::1), so the login listens on 127.0.0.1:${port} only; a browser that resolves localhost to ::1 will not reach it`]);
    } finally {
      for (const s of l.servers) s.close();
    }
  });

  it("[::1]: a usage error saying so, naming the other loopbacks", async () => {
    const err = (await loopbackListeners({ port: 0, redirect: loopbackRedirect("http://[::1]:9/cb") }, noV6).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { hint?: string; exitCode?: number };
    expect(err).toMatchObject({ message: "cannot listen on [::1]:9 for the login redirect: this machine has no IPv6 loopback (EADDRNOTAVAIL)", exitCode: 2 });
    expect(err.hint).toContain("127.0.0.1 or localhost");
  });

  it("a port in use on 127.0.0.1: a usage error naming the redirect URI's port; nothing left listening", async () => {
    const taken = await listenOn(0, "127.0.0.1", "--port");
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(loopbackListeners({ port: 0, redirect: loopbackRedirect(`http://localhost:${port}/cb`) })).rejects.toThrow(`port ${port} on 127.0.0.1 is in use`);
    } finally {
      taken.close();
    }
  });
});

describe("IdP answers that refuse the redirect URI (docs/redirect-uris.md)", () => {
  it.each([
    ["redirect_uri did not match any of the client's registered redirect_uris", "oidc-provider"],
    ["Invalid parameter: redirect_uri", "Keycloak"],
    ["invalid_grant: Incorrect redirect_uri", "Keycloak"],
    ["AADSTS50011: The redirect URI 'http://localhost:3118/callback' specified in the request does not match the redirect URIs configured for the application", "Microsoft Entra ID"],
    ["invalid_request: The provided value for the input parameter 'redirect_uri' is not valid. The expected value is a URI which matches a redirect URI registered for this client application.", "Microsoft Entra ID"],
    ["400 Bad Request The 'redirect_uri' parameter must be a Login redirect URI in the client app settings.", "Okta"],
    ["Error 400: redirect_uri_mismatch", "Google"],
    ["error=invalid_request&error_description=invalid redirect_uri", "an OAuth server"],
  ])("%j → %s", (text, idp) => {
    expect(redirectMismatch(text)).toBe(idp);
  });

  it.each(["invalid_client", "access_denied: the user said no", "invalid_scope: openid"])("%j is not a redirect refusal", (text) => {
    expect(redirectMismatch(text)).toBeUndefined();
  });
});

function profileOf(c: TestContext, name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(c.configDir, "config.json"), "utf8")).profiles[name];
}

describe("profiles add/set --redirect-uri", () => {
  const base = (issuer: string) => ["profiles", "add", "p", "--issuer", issuer, "--client-id", "c", "--grant", "authorization_code"];

  it("stores the URI as given; --redirect-port beside it is refused (exit 2)", async () => {
    tc = createTestContext();
    expect(await tc.run([...base("https://idp.invalid"), "--redirect-uri", "http://localhost:3118/callback"]), tc.stderr()).toBe(0);
    expect(profileOf(tc, "p")).toMatchObject({ redirectUri: "http://localhost:3118/callback" });
    expect(await tc.run([...base("https://idp.invalid"), "--force", "--redirect-uri", "http://localhost:3118/callback", "--redirect-port", "3118"])).toBe(2);
    expect(tc.stderr()).toContain("--redirect-port and --redirect-uri exclude each other");
  });

  it.each([
    ["https://localhost:3118/cb", "plain http://"],
    ["http://idp.example:3118/cb", "its host must be localhost"],
  ])("a URI mcp-auth cannot listen for (%s) is refused before anything is saved", async (uri, why) => {
    tc = createTestContext();
    expect(await tc.run([...base("https://idp.invalid"), "--redirect-uri", uri])).toBe(2);
    expect(tc.stderr()).toContain(why);
    expect(tc.stderr()).toContain("http://localhost:PORT/PATH");
  });

  it("profiles set: a URI replaces the fixed port, a port replaces the URI, \"\" clears it", async () => {
    tc = createTestContext();
    expect(await tc.run([...base("https://idp.invalid"), "--redirect-port", "8000"])).toBe(0);
    expect(await tc.run(["profiles", "set", "p", "--redirect-uri", "http://127.0.0.1:3118/cb"]), tc.stderr()).toBe(0);
    expect(profileOf(tc, "p")).toMatchObject({ redirectUri: "http://127.0.0.1:3118/cb" });
    expect(profileOf(tc, "p").redirectPort).toBeUndefined();
    expect(await tc.run(["profiles", "set", "p", "--redirect-port", "9000"]), tc.stderr()).toBe(0);
    expect(profileOf(tc, "p")).toMatchObject({ redirectPort: 9000 });
    expect(profileOf(tc, "p").redirectUri).toBeUndefined();
    expect(await tc.run(["profiles", "set", "p", "--redirect-uri", "http://localhost:1/x"])).toBe(0);
    expect(await tc.run(["profiles", "set", "p", "--redirect-uri", ""])).toBe(0);
    expect(profileOf(tc, "p").redirectUri).toBeUndefined();
  });

  it("login --redirect-uri with --port or --device: exit 2", async () => {
    tc = createTestContext();
    expect(await tc.run([...base("https://idp.invalid")])).toBe(0);
    expect(await tc.run(["login", "p", "--redirect-uri", "http://localhost:3118/cb", "--port", "3118"])).toBe(2);
    expect(tc.stderr()).toContain("--port and --redirect-uri exclude each other");
    expect(await tc.run(["login", "p", "--redirect-uri", "http://localhost:3118/cb", "--device"])).toBe(2);
  });
});

describe("a browser login with an exact redirect URI (oidc-provider, a client registered for one URI)", () => {
  async function client(redirect: string) {
    const c = await sb.registerClient({ application_type: "web", token_endpoint_auth_method: "none", grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], redirect_uris: [redirect] });
    return c.client_id;
  }

  it.each([["127.0.0.1"], ["[::1]"]] as const)("localhost: the listener answers on both loopbacks (the browser came back on %s); the URI is sent exactly and saved", async (host) => {
    const redirect = `http://localhost:${await freePort()}/oauth/mcp-callback`;
    const id = await client(redirect);
    tc = createTestContext({ now: Date.now(), onBrowse: browser(host) });
    expect(await tc.run(["profiles", "add", "p", "--issuer", sb.issuer, "--client-id", id, "--grant", "authorization_code", "--scope", "openid", "--resource", sb.mcpUrl])).toBe(0);
    expect(await tc.run(["login", "p", "--redirect-uri", redirect, "--login-timeout", "20"]), tc.stderr()).toBe(0);
    expect(new URL(tc.browsed[0]!).searchParams.get("redirect_uri")).toBe(redirect);
    expect(tc.stderr()).toContain('Logged in: profile "p"');
    expect(profileOf(tc, "p")).toMatchObject({ redirectUri: redirect });
  });

  it("doctor names --redirect-uri when the IdP refuses the default redirect, and passes the registered one", async () => {
    const redirect = `http://localhost:${await freePort()}/cb`;
    const id = await client(redirect);
    tc = createTestContext({ now: Date.now() });
    expect(await tc.run(["profiles", "add", "p", "--issuer", sb.issuer, "--client-id", id, "--grant", "authorization_code", "--resource", sb.mcpUrl, "--mcp-url", sb.mcpUrl])).toBe(0);
    const doctor = async (): Promise<Array<{ id: string; status: string; detail?: string; fix?: string }>> => {
      const before = tc!.stdout().length;
      await tc!.run(["doctor", "--profile", "p", "--json"]);
      return JSON.parse(tc!.stdout().slice(before)).checks;
    };
    const bad = (await doctor()).find((c) => c.id === "as.redirect")!;
    expect(bad).toMatchObject({ status: "fail" });
    expect(bad.detail).toContain("oidc-provider refused redirect_uri http://127.0.0.1:");
    expect(bad.fix).toContain("mcp-auth profiles set p --redirect-uri URI");
    expect(await tc.run(["profiles", "set", "p", "--redirect-uri", redirect])).toBe(0);
    expect((await doctor()).find((c) => c.id === "as.redirect")).toMatchObject({ status: "pass" });
  });
});
