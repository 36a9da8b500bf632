import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CI_SUBJECT, startCiIssuer, startFederatedAs, type CiIssuer, type FederatedAs } from "./helpers/federation.js";
import { user, type RunResult, type Sandboxed } from "./helpers/cli.js";
import { inProcessUser } from "./helpers/in-process.js";

/**
 * Identity federation against a GitHub-Actions-like CI issuer and an authorization server that
 * trusts it for one subject (test/helpers/federation.ts): the CI's token replaces the client secret.
 * The first test runs the CLI as a process, end to end; the others in-process (inProcessUser).
 */
let ci: CiIssuer;
let as: FederatedAs;
let asSecret: FederatedAs;
let u: Sandboxed;
const MCP = "https://mcp.example.com/mcp";

beforeAll(async () => {
  ci = await startCiIssuer();
  as = await startFederatedAs({ trust: { issuer: ci.issuer, jwks: ci.jwks, subject: CI_SUBJECT }, clientId: "ci-client" });
  asSecret = await startFederatedAs({ trust: { issuer: ci.issuer, jwks: ci.jwks, subject: CI_SUBJECT }, clientId: "te-client", exchangeClientSecret: "te-secret-value" });
});
afterAll(async () => {
  await Promise.all([ci.close(), as.close(), asSecret.close()]);
});
afterEach(() => {
  u?.cleanup();
  ci.subject = CI_SUBJECT;
  ci.lifetime = 300;
});

function allFiles(dir: string): string {
  let text = "";
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) text += readFileSync(join(e.parentPath, e.name), "utf8");
  return text;
}

/** No CI token (nor the runner's request token) in the config dir or in any output. */
function expectNoLeak(rs: RunResult[]) {
  const out = rs.map((r) => r.stdout + r.stderr).join("\n");
  const stored = allFiles(u.configDir);
  for (const secret of [...ci.issued, ci.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN]) {
    expect(out).not.toContain(secret);
    expect(stored).not.toContain(secret);
  }
}

const adHoc = (issuer: string, extra: string[] = []) => ["token", "--issuer", issuer, "--client-id", "ci-client", "--resource", MCP, ...extra];

describe("identity federation: client assertion (RFC 7523 §2.2)", () => {
  it("profile-less: the GitHub Actions ID token, with the issuer as audience, gets a token; nothing is cached or leaked", async () => {
    u = user({ MCP_AUTH_STORE: "file", ...ci.env });
    const before = ci.requests;
    const r1 = await u.run(adHoc(as.issuer, ["--assertion-from", "github-actions"]));
    expect(r1.stderr).toBe("");
    expect(r1.code).toBe(0);
    expect(r1.stdout.trim()).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    const seen = as.requests.at(-1)!;
    expect(seen.grant).toBe("client_credentials");
    expect(seen.resource).toBe(MCP);
    // The audience defaulted to the authorization server's issuer identifier (RFC 7523 §3).
    const claims = JSON.parse(Buffer.from(seen.assertion!.split(".")[1]!, "base64url").toString());
    expect(claims.aud).toBe(as.issuer);
    // A second run asks GitHub for a new CI token: assertions (and federated tokens) are never cached.
    const r2 = await u.run(adHoc(as.issuer, ["--assertion-from", "github-actions"]));
    expect(r2.code).toBe(0);
    expect(r2.stdout).not.toBe(r1.stdout);
    expect(ci.requests - before).toBe(2);
    expectNoLeak([r1, r2]);
  });

  it("refuses a wrong subject, a wrong audience and an expired CI token with exit 4 and the reason", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file", ...ci.env });
    ci.subject = "repo:octo-org/other-repo:ref:refs/heads/main";
    const sub = await u.run(adHoc(as.issuer, ["--assertion-from", "github-actions"]));
    expect(sub.code).toBe(4);
    expect(sub.stderr).toContain("invalid_client");
    expect(sub.stderr).toContain("subject repo:octo-org/other-repo:ref:refs/heads/main is not trusted");
    // The hint shows the claims the trust must match (never the token).
    expect(sub.stderr).toContain(`iss=${ci.issuer}`);
    ci.subject = CI_SUBJECT;

    const aud = await u.run(adHoc(as.issuer, ["--assertion-from", "github-actions:api://AzureADTokenExchange"]));
    expect(aud.code).toBe(4);
    expect(aud.stderr).toMatch(/audience .*AzureADTokenExchange.* does not name this authorization server/);

    ci.lifetime = -30;
    const exp = await u.run(adHoc(as.issuer, ["--assertion-from", "github-actions"]));
    expect(exp.code).toBe(4);
    expect(exp.stderr).toMatch(/the CI token from GitHub Actions ID token .*expired/);
    expectNoLeak([sub, aud, exp]);
  });

  it("a saved profile reads the token from a file (a Kubernetes projected token) anew on every request", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const file = join(u.home, "token");
    writeFileSync(file, await ci.mint(as.issuer));
    const add = await u.run(["profiles", "add", "k8s", "--issuer", as.issuer, "--client-id", "ci-client", "--resource", MCP, "--assertion-from", `file:${file}`]);
    expect(add.code, add.stderr).toBe(0);
    const cfg = readFileSync(join(u.configDir, "config.json"), "utf8");
    expect(JSON.parse(cfg).profiles.k8s.assertion).toEqual({ from: `file:${file}`, federation: "client-assertion" });
    expect(JSON.parse(cfg).profiles.k8s.secretStore).toBeUndefined();
    const r1 = await u.run(["token", "--profile", "k8s", "--force-refresh"]);
    expect(r1.code, r1.stderr).toBe(0);
    writeFileSync(file, await ci.mint(as.issuer)); // the kubelet rotated it
    const r2 = await u.run(["token", "--profile", "k8s", "--force-refresh"]);
    expect(r2.code, r2.stderr).toBe(0);
    const [a, b] = as.requests.slice(-2).map((x) => x.assertion);
    expect(a).not.toBe(b);
    expect(b).toBe(readFileSync(file, "utf8"));
    expectNoLeak([add, r1, r2]);
  });

  it("env:VAR (GitLab id_tokens) works, and a JWT given in place of a source is refused without being echoed", async () => {
    const jwt = await ci.mint(as.issuer);
    u = inProcessUser({ MCP_AUTH_STORE: "file", GITLAB_OIDC_TOKEN: jwt });
    const ok = await u.run(adHoc(as.issuer, ["--assertion-from", "env:GITLAB_OIDC_TOKEN"]));
    expect(ok.code, ok.stderr).toBe(0);
    const pasted = await u.run(adHoc(as.issuer, ["--assertion-from", jwt]));
    expect(pasted.code).toBe(2);
    expect(pasted.stderr).toContain("not the token itself");
    expect(pasted.stderr).not.toContain(jwt);
  });

  it("without id-token permission the job gets a usage error that says what to add", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file" });
    const r = await u.run(adHoc(as.issuer, ["--assertion-from", "github-actions"]));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("id-token: write");
  });
});

describe("doctor for a federated profile", () => {
  it("shows the CI token's claims and the issuer's keys, and names the refused subject", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file", ...ci.env });
    expect((await u.run(["profiles", "add", "gh", "--issuer", as.issuer, "--client-id", "ci-client", "--assertion-from", "github-actions"])).code).toBe(0);
    const good = await u.run(["doctor", "--profile", "gh", "--json"]);
    const checks = (JSON.parse(good.stdout) as { checks: Array<{ id: string; status: string; detail?: string }> }).checks;
    const byId = Object.fromEntries(checks.map((c) => [c.id, c]));
    expect(byId["federation.source"]!.status).toBe("pass");
    expect(byId["federation.source"]!.detail).toContain(`sub=${CI_SUBJECT}`);
    expect(byId["federation.source"]!.detail).toContain(`aud=${as.issuer}`);
    expect(byId["federation.issuer"]!.status).toBe("pass");
    expect(byId["token.obtain"]!.status).toBe("pass");

    ci.subject = "repo:octo-org/octo-repo:pull_request";
    const bad = await u.run(["doctor", "--profile", "gh", "--json"]);
    expect(bad.code).toBe(1);
    const obtain = (JSON.parse(bad.stdout) as { checks: Array<{ id: string; status: string; detail?: string; fix?: string }> }).checks.find((c) => c.id === "token.obtain")!;
    expect(obtain.status).toBe("fail");
    expect(obtain.detail).toContain("subject repo:octo-org/octo-repo:pull_request is not trusted");
    expect(obtain.fix).toContain("sub=repo:octo-org/octo-repo:pull_request");
    expectNoLeak([good, bad]);
  });
});

describe("identity federation: token exchange (RFC 8693)", () => {
  it("exchanges the CI token with no client authentication at all", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file", ...ci.env });
    const r = await u.run(adHoc(as.issuer, ["--assertion-from", "github-actions", "--federation", "token-exchange"]));
    expect(r.code, r.stderr).toBe(0);
    const seen = as.requests.at(-1)!;
    expect(seen.grant).toBe("urn:ietf:params:oauth:grant-type:token-exchange");
    expect(seen.subjectTokenType).toBe("urn:ietf:params:oauth:token-type:jwt");
    expect(seen.resource).toBe(MCP);
    ci.subject = "repo:evil/fork:ref:refs/heads/main";
    const bad = await u.run(adHoc(as.issuer, ["--assertion-from", "github-actions", "--federation", "token-exchange"]));
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain("invalid_request");
    expect(bad.stderr).toContain("subject repo:evil/fork:ref:refs/heads/main is not trusted");
    expectNoLeak([r, bad]);
  });

  it("a profile with a client secret on the exchange (an IdP that insists) and subject_token_type id_token", async () => {
    u = inProcessUser({ MCP_AUTH_STORE: "file", ...ci.env, TE_SECRET: "te-secret-value" });
    const add = await u.run([
      "profiles", "add", "te", "--issuer", asSecret.issuer, "--client-id", "te-client", "--client-secret-env", "TE_SECRET",
      "--assertion-from", "github-actions", "--federation", "token-exchange", "--subject-token-type", "id_token",
    ]);
    expect(add.code, add.stderr).toBe(0);
    const r = await u.run(["token", "--profile", "te"]);
    expect(r.code, r.stderr).toBe(0);
    expect(asSecret.requests.at(-1)!.subjectTokenType).toBe("urn:ietf:params:oauth:token-type:id_token");
    expect(readFileSync(join(u.configDir, "config.json"), "utf8")).not.toContain("te-secret-value");
    expectNoLeak([add, r]);
  });
});
