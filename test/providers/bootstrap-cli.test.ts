import { parse } from "smol-toml";
import { afterEach, describe, expect, it } from "vitest";
import { user, type Sandboxed } from "../helpers/cli.js";
import { startKeycloak, type KeycloakSim } from "../simulators/keycloak.js";

/** The bootstrap command as generated from the providers' inputs, run as a user would. */
let u: Sandboxed | undefined;
let k: KeycloakSim | undefined;
afterEach(async () => {
  await k?.close();
  u?.cleanup();
  u = k = undefined;
});

describe("bootstrap --help is generated from the provider's inputs", () => {
  it("thunder: every input's flag with its help, secrets only as -stdin/-env, hidden switches hidden", async () => {
    u = user();
    const r = await u.run(["bootstrap", "thunder", "--help"]);
    expect(r.code).toBe(0);
    const help = r.stdout.replace(/\s+/g, " ");
    for (const line of [
      "--url <url> Thunder's public URL (also the token issuer) (default: \"http://thunder.openchoreo.localhost:8080\")",
      "--admin-user <name> admin user (needs the 'system' permission) (default: \"admin\")",
      "--admin-password-stdin read the Thunder admin password from stdin",
      "--admin-password-env <VAR> read the Thunder admin password from $VAR",
      '--grant <grant> the application: client_credentials (CI, services) or authorization_code (people, PKCE) (choices: "client_credentials", "authorization_code", default: "client_credentials")',
      "--redirect-port <port> loopback port registered for authorization_code (default: 33418)",
      "--rotate-secret if the client exists, issue it a new client secret",
      "--admin-app-id <id> application to run the admin sign-in flow with (found on its own up to Thunder 0.44)",
      "--admin-token-env <VAR> read the admin access token carrying 'system' (skips the sign-in) from $VAR",
      "--flow-secret-env <VAR> read the flow secret of the --admin-app-id application (ThunderID ≥ 0.47) from $VAR",
      '--name <name> name of the application to create (default: "MCP client")',
      "--client-id <id> OAuth client id of the new application (default mcp_client, or mcp_cli for authorization_code)",
      "--validity <seconds> access token lifetime (default: 3600)",
      '--profile <name> name of the profile to save (default: "thunder")',
    ]) {
      expect(help).toContain(line);
    }
    expect(help).not.toContain("--api-casing");
    expect(help).not.toMatch(/ --app-id /); // the old name still works, unlisted
    expect(help).not.toMatch(/--admin-password </);
  });

  it("keycloak: the service account's secret has -stdin/-env flags and names its default variable", async () => {
    u = user();
    const r = await u.run(["bootstrap", "keycloak", "--help"]);
    const help = r.stdout.replace(/\s+/g, " ");
    expect(help).toContain("--admin-client-secret-stdin");
    expect(help).toContain("--admin-client-secret-env <VAR> read the service-account client's secret from $VAR (default MCP_AUTH_ADMIN_CLIENT_SECRET)");
    expect(help).toContain("--mcp-host <host...>");
  });

  it("a missing required input is one usage line (exit 2), before any request", async () => {
    u = user();
    const r = await u.run(["bootstrap", "keycloak", "--url", "https://kc.invalid"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("error: --realm is required (realm the MCP server trusts)");
  });
});

describe("keycloak --print-server-config writes TOML, never interpolated text", () => {
  it("an audience with a quote and newlines stays one string: require_oauth cannot be turned off", async () => {
    k = await startKeycloak({ realms: ["kcp"] });
    u = user({ MCP_AUTH_STORE: "file", ADMIN_PW: "admin" });
    const audience = 'x"\nrequire_oauth = false\n#';
    const r = await u.run(["bootstrap", "keycloak", "--url", k.url, "--admin-password-env", "ADMIN_PW", "--realm", "kcp", "--audience", audience, "--print-server-config", "--no-verify"]);
    expect(r.code, r.stderr).toBe(0);
    const config = parse(r.stdout);
    expect(config).toEqual({ require_oauth: true, authorization_url: `${k.url}/realms/kcp`, oauth_audience: audience, oauth_scopes: ["profile", "email", "roles", "web-origins", "acr", "basic", "mcp-audience"] });
    // the copy shown on stderr (without --print-server-config) is the same TOML
    const shown = await u.run(["bootstrap", "keycloak", "--url", k.url, "--admin-password-env", "ADMIN_PW", "--realm", "kcp", "--audience", audience, "--no-verify"]);
    expect(shown.code, shown.stderr).toBe(0);
    const block = shown.stderr.split("config.toml (--print-server-config prints it alone):\n")[1]!.split("\n").filter((l) => l.startsWith("  ")).map((l) => l.slice(2));
    expect(parse(block.join("\n"))).toEqual(config);
  });
});
