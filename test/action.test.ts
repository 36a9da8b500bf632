import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BIN, ROOT, runProcess } from "./helpers/cli.js";
import { CI_SUBJECT, startCiIssuer, startFederatedAs, type CiIssuer, type FederatedAs } from "./helpers/federation.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * The GitHub Action (action.yml → scripts/action.mjs) run as the runner would run its step: INPUT_*
 * variables, GITHUB_ENV / GITHUB_OUTPUT files, the ACTIONS_ID_TOKEN_* pair of a job with
 * `id-token: write`. The install step is replaced by MCP_AUTH_ACTION_BIN, pointed at this checkout
 * through a wrapper that records the command line mcp-auth was given.
 */
const sb = useSandbox();
let ci: CiIssuer;
let as: FederatedAs;
let dir: string;
const MCP = "https://mcp.example.com/mcp";

beforeAll(async () => {
  ci = await startCiIssuer();
  as = await startFederatedAs({ trust: { issuer: ci.issuer, jwks: ci.jwks, subject: CI_SUBJECT }, clientId: "ci-client" });
});
afterAll(async () => {
  await Promise.all([ci.close(), as.close()]);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  ci.subject = CI_SUBJECT;
});

async function runAction(inputs: Record<string, string>, extraEnv: NodeJS.ProcessEnv = {}) {
  dir = mkdtempSync(join(tmpdir(), "mcp-auth-action-"));
  const files = { env: join(dir, "github_env"), output: join(dir, "github_output"), argv: join(dir, "argv.log") };
  writeFileSync(files.env, "");
  writeFileSync(files.output, "");
  const wrapper = join(dir, "mcp-auth-wrapper.cjs");
  writeFileSync(wrapper, `require("node:fs").appendFileSync(${JSON.stringify(files.argv)}, JSON.stringify(process.argv.slice(2)) + "\\n");\nrequire(${JSON.stringify(BIN)});\n`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    MCP_AUTH_CONFIG_DIR: join(dir, "config"),
    MCP_AUTH_STORE: "file",
    GITHUB_ACTIONS: "true",
    GITHUB_ENV: files.env,
    GITHUB_OUTPUT: files.output,
    GITHUB_ACTION_PATH: ROOT,
    MCP_AUTH_ACTION_BIN: wrapper,
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase().replace(/-/g, "_")}`, v])),
    ...extraEnv,
  };
  const r = await runProcess(process.execPath, [join(ROOT, "scripts", "action.mjs")], env, undefined, 60_000, ROOT);
  return { ...r, githubEnv: readFileSync(files.env, "utf8"), githubOutput: readFileSync(files.output, "utf8"), argv: existsSync(files.argv) ? readFileSync(files.argv, "utf8") : "" };
}

/** Value of a `NAME<<DELIM … DELIM` block (GitHub's multiline syntax for GITHUB_ENV / GITHUB_OUTPUT). */
function block(text: string, name: string): string | undefined {
  const m = new RegExp(`^${name}<<(\\S+)\\n([\\s\\S]*?)\\n\\1$`, "m").exec(text);
  return m?.[2];
}

describe("GitHub Action", () => {
  it("federation: gets a token with the job's ID token, masks it before anything else, exports it and sets the output", async () => {
    const r = await runAction({ issuer: as.issuer, "client-id": "ci-client", resource: MCP, federation: "client-assertion", "env-name": "MCP_TOKEN" }, ci.env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const token = block(r.githubEnv, "MCP_TOKEN")!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(block(r.githubOutput, "token")).toBe(token);
    expect(r.githubOutput).toMatch(/^expires-at=\d+$/m);
    // The only place the token shows up in the log is the mask command, which comes first.
    const lines = r.stdout.split("\n");
    expect(lines.filter((l) => l.includes(token))).toEqual([`::add-mask::${token}`]);
    expect(r.stderr).not.toContain(token);
    expect(as.requests.at(-1)).toMatchObject({ grant: "client_credentials", resource: MCP });
    // No secret anywhere: not in mcp-auth's arguments, not in the log.
    for (const s of [...ci.issued, ci.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN]) {
      expect(r.argv + r.stdout + r.stderr).not.toContain(s);
    }
  });

  it("client secret (federation: none): the secret is masked and reaches mcp-auth only through its environment", async () => {
    const secret = sb.clients.m2m.clientSecret;
    const r = await runAction({ issuer: sb.issuer, "client-id": sb.clients.m2m.clientId, resource: sb.mcpUrl, federation: "none", "client-secret": secret });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe(`::add-mask::${secret}`);
    expect(r.argv).not.toContain(secret);
    expect(r.argv).toContain("--issuer");
    const token = block(r.githubEnv, "MCP_AUTH_TOKEN")!;
    expect(JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).aud).toBe(sb.mcpUrl);
  });

  it("an untrusted subject fails the step with exit 4 and the reason, and exports nothing", async () => {
    ci.subject = "repo:octo-org/octo-repo:pull_request";
    const r = await runAction({ issuer: as.issuer, "client-id": "ci-client", resource: MCP }, ci.env);
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/^::error title=mcp-auth::mcp-auth token failed \(exit 4\): .*subject repo:octo-org\/octo-repo:pull_request is not trusted/m);
    expect(r.githubEnv).toBe("");
    expect(r.githubOutput).toBe("");
  });

  it("refuses inconsistent inputs with exit 2 before running anything", async () => {
    const both = await runAction({ issuer: as.issuer, "client-id": "ci-client", federation: "client-assertion", "client-secret": "s3cret-value" });
    expect(both.code).toBe(2);
    expect(both.argv).toBe("");
    const badName = await runAction({ issuer: as.issuer, "client-id": "ci-client", "env-name": "GITHUB_TOKEN" });
    expect(badName.code).toBe(2);
  });

  it("action.yml calls the script with every input as an environment variable", () => {
    const yml = readFileSync(join(ROOT, "action.yml"), "utf8");
    expect(yml).toContain("using: composite");
    expect(yml).toContain('node "$GITHUB_ACTION_PATH/scripts/action.mjs"');
    for (const name of ["issuer", "client-id", "resource", "audience", "scope", "federation", "id-token-audience", "client-secret", "env-name"]) {
      expect(yml).toContain(`INPUT_${name.toUpperCase().replace(/-/g, "_")}: \${{ inputs.${name} }}`);
    }
  });
});
