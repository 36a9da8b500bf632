import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCompositeAction, type ActionRun } from "./helpers/actions-runner.js";
import { BIN, ROOT } from "./helpers/cli.js";
import { CI_SUBJECT, startCiIssuer, startFederatedAs, type CiIssuer, type FederatedAs } from "./helpers/federation.js";
import { useSandbox } from "./helpers/sandbox.js";

/**
 * The GitHub Action (action.yml → scripts/action.mjs), its steps run as the runner runs them
 * (test/helpers/actions-runner.ts): the `env:` of each step from the inputs, `bash -eo pipefail`, the
 * GITHUB_ENV / GITHUB_OUTPUT files, the ACTIONS_ID_TOKEN_* pair of a job with `id-token: write`, and
 * the runner's own reading of every printed line for workflow commands. `npm` on PATH is a stand-in
 * that records its command line and "installs" this checkout (bin/mcp-auth.js behind a wrapper that
 * records the command line mcp-auth was given) where the real one would put the package.
 */
const sb = useSandbox();
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
let ci: CiIssuer;
let as: FederatedAs;
let hostileAs: FederatedAs;
let dir: string;
const MCP = "https://mcp.example.com/mcp";
// Printable, so mcp-auth accepts it as a client id; in a log line each part would be a workflow command.
const HOSTILE_CLIENT = "ci##[warning]planted ::notice::x ##[add-mask]y";

beforeAll(async () => {
  ci = await startCiIssuer();
  as = await startFederatedAs({ trust: { issuer: ci.issuer, jwks: ci.jwks, subject: CI_SUBJECT }, clientId: "ci-client" });
  hostileAs = await startFederatedAs({ trust: { issuer: ci.issuer, jwks: ci.jwks, subject: CI_SUBJECT }, clientId: HOSTILE_CLIENT });
});
afterAll(async () => {
  await Promise.all([ci.close(), as.close(), hostileAs.close()]);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  ci.subject = CI_SUBJECT;
});

const FAKE_NPM = `#!/usr/bin/env node
// Records its command line; for \`install --global --prefix P mcp-auth-cli@V\` lays out P as npm does.
const fs = require("node:fs"), path = require("node:path");
const args = process.argv.slice(2);
fs.appendFileSync(process.env.NPM_LOG, JSON.stringify(args) + "\\n");
const prefix = args[args.indexOf("--prefix") + 1];
const spec = args.find((a) => a.startsWith("mcp-auth-cli@"));
if (args[0] !== "install" || !args.includes("--global") || !prefix || !spec) process.exit(1);
const pkg = path.join(prefix, "lib", "node_modules", "mcp-auth-cli");
fs.mkdirSync(path.join(pkg, "bin"), { recursive: true });
fs.writeFileSync(path.join(pkg, "package.json"), JSON.stringify({ name: "mcp-auth-cli", version: process.env.NPM_INSTALLS || spec.slice("mcp-auth-cli@".length) }));
fs.writeFileSync(path.join(pkg, "bin", "mcp-auth.js"), 'require("node:fs").appendFileSync(process.env.ARGV_LOG, JSON.stringify(process.argv.slice(2)) + "\\\\n");\\nrequire(' + JSON.stringify(process.env.CHECKOUT_BIN) + ");\\n");
`;

interface Run extends ActionRun {
  githubEnv: string;
  githubOutput: string;
  /** mcp-auth's command line, as the installed wrapper recorded it ("" if it never ran). */
  argv: string;
  /** npm's command lines. */
  npm: string[][];
}

/**
 * Runs the action. `ref` lays the checkout out where the runner downloads `uses: OWNER/REPO@REF`
 * (`_actions/OWNER/REPO/REF`); without it the action is the checkout itself (`uses: ./`).
 */
async function runAction(inputs: Record<string, string>, o: { env?: NodeJS.ProcessEnv; ref?: string; npmInstalls?: string } = {}): Promise<Run> {
  dir = mkdtempSync(join(tmpdir(), "mcp-auth-action-"));
  const files = { env: join(dir, "github_env"), output: join(dir, "github_output"), argv: join(dir, "argv.log"), npm: join(dir, "npm.log") };
  writeFileSync(files.env, "");
  writeFileSync(files.output, "");
  const bin = join(dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "npm"), FAKE_NPM);
  chmodSync(join(bin, "npm"), 0o755);
  let actionPath = ROOT;
  if (o.ref) {
    actionPath = join(dir, "runner", "_work", "_actions", "octo-org", "mcp-auth", o.ref);
    mkdirSync(dirname(actionPath), { recursive: true });
    symlinkSync(ROOT, actionPath);
  }
  const workspace = join(dir, "workspace");
  const runnerTemp = join(dir, "runner_temp");
  mkdirSync(workspace);
  mkdirSync(runnerTemp);
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${process.env.PATH}`,
    HOME: dir,
    MCP_AUTH_CONFIG_DIR: join(dir, "config"),
    MCP_AUTH_STORE: "file",
    CI: "true",
    GITHUB_ACTIONS: "true",
    GITHUB_ENV: files.env,
    GITHUB_OUTPUT: files.output,
    GITHUB_WORKSPACE: workspace,
    RUNNER_TEMP: runnerTemp,
    NPM_LOG: files.npm,
    ARGV_LOG: files.argv,
    CHECKOUT_BIN: BIN,
    ...(o.npmInstalls && { NPM_INSTALLS: o.npmInstalls }),
    ...o.env,
  };
  const r = await runCompositeAction({ actionPath, inputs, env, cwd: workspace });
  const read = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : "");
  return {
    ...r,
    githubEnv: read(files.env),
    githubOutput: read(files.output),
    argv: read(files.argv),
    npm: read(files.npm)
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as string[]),
  };
}

/** Value of a `NAME<<DELIM … DELIM` block (GitHub's multiline syntax for GITHUB_ENV / GITHUB_OUTPUT). */
function block(text: string, name: string): string | undefined {
  const m = new RegExp(`^${name}<<(\\S+)\\n([\\s\\S]*?)\\n\\1$`, "m").exec(text);
  return m?.[2];
}

/** The workflow commands the runner acted on, by name (the stop-commands end marker is not one). */
const commandNames = (r: ActionRun) => r.commands.map((c) => c.name);

describe("GitHub Action", () => {
  it("federation: gets a token with the job's ID token, masks it before anything else, exports it and sets the output", async () => {
    const r = await runAction({ issuer: as.issuer, "client-id": "ci-client", resource: MCP, federation: "client-assertion", "env-name": "MCP_TOKEN" }, { env: ci.env });
    expect(r.code, JSON.stringify(r.steps)).toBe(0);
    const token = block(r.githubEnv, "MCP_TOKEN")!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(block(r.githubOutput, "token")).toBe(token);
    expect(r.githubOutput).toMatch(/^expires-at=\d+$/m);
    // The token is a mask before any line could show it; the log never does.
    expect(r.commands[0]).toEqual({ name: "add-mask", properties: "", data: token });
    expect(r.log.join("\n")).not.toContain(token);
    expect(r.log).toContain(`mcp-auth: token for ci-client at ${as.issuer} exported as MCP_TOKEN (expires ${new Date(Number(/expires-at=(\d+)/.exec(r.githubOutput)![1]) * 1000).toISOString()})`);
    expect(as.requests.at(-1)).toMatchObject({ grant: "client_credentials", resource: MCP });
    // No secret anywhere: not in mcp-auth's arguments, not in the log.
    for (const s of [...ci.issued, ci.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN]) {
      expect(r.argv + r.steps.map((s) => s.stdout + s.stderr).join("")).not.toContain(s);
    }
  });

  it("installs the CLI release the action belongs to, never latest, with --ignore-scripts, and runs that copy", async () => {
    const r = await runAction({ issuer: as.issuer, "client-id": "ci-client" }, { env: ci.env });
    expect(r.code, JSON.stringify(r.steps)).toBe(0);
    expect(r.npm).toHaveLength(1);
    const [install] = r.npm;
    expect(install).toContain("--ignore-scripts");
    expect(install).toContain(`mcp-auth-cli@${VERSION}`);
    expect(install!.join(" ")).not.toMatch(/latest/);
    expect(install!.slice(0, 3)).toEqual(["install", "--global", "--prefix"]);
    expect(install![3]).toMatch(new RegExp(`runner_temp/mcp-auth-cli-${VERSION.replace(/\./g, "\\.")}$`));
    // The wrapper at the installed path is what ran (it recorded the command line).
    expect(r.argv).toContain('"token"');
  });

  it.each([
    { what: "a release tag", ref: `v${VERSION}` },
    { what: "a commit SHA", ref: "0123456789abcdef0123456789abcdef01234567" },
    { what: "a major-version tag", ref: "v0" },
    { what: "a branch", ref: "main" },
  ])("uses: OWNER/REPO@REF with $what installs the version in the action's package.json", async ({ ref }) => {
    const r = await runAction({ issuer: as.issuer, "client-id": "ci-client" }, { env: ci.env, ref });
    expect(r.code, JSON.stringify(r.steps)).toBe(0);
    expect(r.npm.map((a) => a.at(-1))).toEqual([`mcp-auth-cli@${VERSION}`]);
  });

  it("a release tag that is not the package.json version is refused before anything is installed", async () => {
    const r = await runAction({ issuer: as.issuer, "client-id": "ci-client" }, { env: ci.env, ref: "v99.1.0" });
    expect(r.code).not.toBe(0);
    expect(r.steps).toHaveLength(1);
    expect(r.npm).toEqual([]);
    expect(r.commands).toEqual([{ name: "error", properties: "title=mcp-auth", data: expect.stringMatching(new RegExp(`used as @v99\\.1\\.0 but belongs to mcp-auth-cli ${VERSION.replace(/\./g, "\\.")}`)) }]);
  });

  it("a CLI of another version at the install path is not run", async () => {
    const r = await runAction({ issuer: as.issuer, "client-id": "ci-client" }, { env: ci.env, npmInstalls: "0.0.1" });
    expect(r.code).toBe(1);
    expect(r.argv).toBe("");
    expect(commandNames(r)).toEqual(["error"]);
  });

  it("client secret (federation: none): the secret is masked and reaches mcp-auth only through its environment", async () => {
    const secret = sb.clients.m2m.clientSecret;
    const r = await runAction({ issuer: sb.issuer, "client-id": sb.clients.m2m.clientId, resource: sb.mcpUrl, federation: "none", "client-secret": secret });
    expect(r.code, JSON.stringify(r.steps)).toBe(0);
    expect(r.commands[0]).toEqual({ name: "add-mask", properties: "", data: secret });
    expect(r.argv).not.toContain(secret);
    expect(r.argv).toContain("--issuer");
    const token = block(r.githubEnv, "MCP_AUTH_TOKEN")!;
    expect(JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).aud).toBe(sb.mcpUrl);
  });

  it("a secret spanning lines is masked line by line, before anything else: no line of it reaches the log", async () => {
    // A pasted key or JSON, with the runner's own escape sequences in it. (No IdP takes it: RFC 6749
    // secrets are one line. What matters is that the log never shows it.)
    const secret = "first-line-of-the-secret\nsecond %0A line %25 of it\r\n  third-line-of-it  ";
    const r = await runAction({ issuer: sb.issuer, "client-id": sb.clients.m2m.clientId, federation: "none", "client-secret": secret });
    const lines = secret.split(/\r?\n/).map((l) => l.trim());
    // Each line is a mask of its own, exactly (the runner unescapes %25 and %0A in command data).
    for (const line of lines) expect(r.masks).toContain(line);
    expect(r.masks).toContain(secret);
    expect(commandNames(r).slice(0, 4)).toEqual(["add-mask", "add-mask", "add-mask", "add-mask"]);
    for (const line of lines) expect(r.log.join("\n")).not.toContain(line);
    expect(r.argv).not.toContain(lines[0]);
  });

  it("a client id that reads as workflow commands is printed with commands off: the runner obeys nothing in it", async () => {
    const r = await runAction({ issuer: hostileAs.issuer, "client-id": HOSTILE_CLIENT }, { env: ci.env });
    expect(r.code, JSON.stringify(r.steps)).toBe(0);
    expect(commandNames(r)).toEqual(["add-mask", "stop-commands"]);
    expect(r.log.some((l) => l.startsWith(`mcp-auth: token for ${HOSTILE_CLIENT} at ${hostileAs.issuer}`))).toBe(true);
  });

  it.each([
    { input: "client-id", value: "ci-client\n::stop-commands::pwned" },
    { input: "client-id", value: "ci-client\r::add-mask::x" },
    { input: "client-id", value: "ci\u001b]0;title\u0007" },
    { input: "issuer", value: "https://idp.example.invalid\n::warning::planted" },
    { input: "issuer", value: "https://idp.example.invalid/\u0085x" },
    { input: "resource", value: "https://mcp.example.invalid/\n::error::x" },
    { input: "scope", value: "openid \u001b[2J" },
  ])("a control character in the $input input is refused with exit 2 and one error, before mcp-auth runs", async ({ input, value }) => {
    const r = await runAction({ issuer: as.issuer, "client-id": "ci-client", [input]: value }, { env: ci.env });
    expect(r.code).toBe(2);
    expect(r.argv).toBe("");
    expect(r.commands).toEqual([{ name: "error", properties: "title=mcp-auth", data: `the input ${input} must not contain control characters${input === "scope" ? "" : " (a line break, tab or escape)"}` }]);
    expect(r.log.join("\n")).not.toMatch(/planted|pwned/);
  });

  it("scopes may be spread over lines (a YAML block): white space separates them", async () => {
    const r = await runAction({ issuer: as.issuer, "client-id": "ci-client", scope: "mcp:read\nmcp:write\n" }, { env: ci.env });
    expect(r.code, JSON.stringify(r.steps)).toBe(0);
    expect(JSON.parse(r.argv.trim())).toEqual(expect.arrayContaining(["--scope", "mcp:read", "--scope", "mcp:write"]));
  });

  it("an untrusted subject fails the step with exit 4 and the reason, and exports nothing", async () => {
    ci.subject = "repo:octo-org/octo-repo:pull_request";
    const r = await runAction({ issuer: as.issuer, "client-id": "ci-client", resource: MCP }, { env: ci.env });
    expect(r.code).toBe(4);
    expect(commandNames(r)).toEqual(["error"]);
    expect(r.commands[0]!.data).toMatch(/^mcp-auth token failed \(exit 4\): .*subject repo:octo-org\/octo-repo:pull_request is not trusted/);
    expect(r.githubEnv).toBe("");
    expect(r.githubOutput).toBe("");
  });

  it("refuses inconsistent inputs with exit 2 before running anything", async () => {
    const both = await runAction({ issuer: as.issuer, "client-id": "ci-client", federation: "client-assertion", "client-secret": "s3cret-value" });
    expect(both.code).toBe(2);
    expect(both.argv).toBe("");
    expect(both.masks).toEqual(["s3cret-value"]);
    const badName = await runAction({ issuer: as.issuer, "client-id": "ci-client", "env-name": "GITHUB_TOKEN" });
    expect(badName.code).toBe(2);
  });

  it("action.yml passes every input to the script as an environment variable, and has no version input", () => {
    const yml = readFileSync(join(ROOT, "action.yml"), "utf8");
    expect(yml).toContain("using: composite");
    expect(yml).toContain('node "$GITHUB_ACTION_PATH/scripts/action.mjs"');
    for (const name of ["issuer", "client-id", "resource", "audience", "scope", "federation", "id-token-audience", "client-secret", "env-name"]) {
      expect(yml).toContain(`INPUT_${name.toUpperCase().replace(/-/g, "_")}: \${{ inputs.${name} }}`);
    }
    expect(yml).not.toMatch(/^ {2}version:/m);
    expect(yml).toContain('"mcp-auth-cli@$version"');
  });
});
