// The GitHub Action's logic (action.yml). Two modes:
//
//   action.mjs version   prints the mcp-auth-cli version to install: the one in the package.json next to
//                        action.yml. `uses: OWNER/mcp-auth@v0.2.0` and `@<commit SHA>` both carry that
//                        file, so both install the release they belong to, never "latest". A release
//                        tag that disagrees with it (the action is downloaded to _actions/OWNER/REPO/REF)
//                        is refused. github.action_ref is not used: inside a composite action it is empty,
//                        or the calling action's ref (actions/runner#2473).
//   action.mjs           runs that installed CLI's `mcp-auth token` with the inputs, then masks the token,
//                        exports it (GITHUB_ENV) and sets the step outputs (GITHUB_OUTPUT).
//
// Inputs come as INPUT_* environment variables; nothing secret is ever put on a command line. The
// runner obeys workflow commands (`::add-mask::`, `::stop-commands::`, `##[…]`) in any line a step
// prints, on stdout and stderr alike: so inputs with control characters are refused, masks are
// printed line by line, and text the action does not own (mcp-auth's messages, input values) is
// printed only between ::stop-commands:: and its end marker. Everything goes to stdout, in order.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";

const env = process.env;
const mode = process.argv[2] ?? "token";
const out = (line) => process.stdout.write(`${line}\n`);
/** Workflow-command data escaping (toolkit's escapeData): the runner unescapes %25, %0D, %0A. */
const escapeData = (s) => s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
const fail = (message, code = 1) => {
  // In `version` mode stdout is captured by the shell: the error must reach the log through stderr.
  (mode === "version" ? process.stderr : process.stdout).write(`::error title=mcp-auth::${escapeData(message)}\n`);
  process.exit(code);
};
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;

/** The version of mcp-auth-cli this copy of the action belongs to. */
function actionVersion() {
  const dir = env.GITHUB_ACTION_PATH;
  if (!dir) fail("GITHUB_ACTION_PATH is not set: run this as a GitHub Action step");
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  } catch (e) {
    fail(`cannot read the action's package.json: ${e.message}`);
  }
  const version = String(pkg?.version ?? "");
  if (pkg?.name !== "mcp-auth-cli" || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) fail("the action's package.json does not name an mcp-auth-cli release");
  const ref = /[\\/]_actions[\\/][^\\/]+[\\/][^\\/]+[\\/]([^\\/]+)$/.exec(dir)?.[1];
  const tagged = ref && /^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/.exec(ref)?.[1];
  if (tagged && tagged !== version) fail(`this action is used as @${ref} but belongs to mcp-auth-cli ${version}: pin a release tag (or its commit SHA) whose package.json has the same version`);
  return version;
}

/** `::add-mask::` per line (the runner masks only the one line a command takes), and the whole value too. */
function mask(value) {
  const lines = value.split(/\r\n|\r|\n/).map((l) => l.trim()).filter(Boolean);
  if (lines.length > 1) out(`::add-mask::${escapeData(value)}`);
  for (const line of lines) out(`::add-mask::${escapeData(line)}`);
}

/** Prints text the action does not own with workflow commands switched off around it. */
function verbatim(text) {
  const token = `mcp-auth-${randomBytes(16).toString("hex")}`;
  out(`::stop-commands::${token}`);
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  out(`::${token}::`);
}

if (mode === "version") {
  out(actionVersion());
  process.exit(0);
}
if (mode !== "token") fail(`unknown mode "${mode}"`, 2);

// Masks first: from here on the runner replaces the secret with *** in every log line.
const secret = env.INPUT_CLIENT_SECRET ?? "";
if (secret.trim()) mask(secret);

const input = (name) => (env[`INPUT_${name}`] ?? "").trim();
const plain = {};
for (const name of ["ISSUER", "CLIENT_ID", "RESOURCE", "AUDIENCE", "FEDERATION", "ID_TOKEN_AUDIENCE", "ENV_NAME"]) {
  plain[name] = input(name);
  if (CONTROL.test(plain[name])) fail(`the input ${name.toLowerCase().replace(/_/g, "-")} must not contain control characters (a line break, tab or escape)`, 2);
}
// Scopes are separated by any white space (a YAML block works); none may hold another control character.
const scopes = input("SCOPE").split(/\s+/).filter(Boolean);
if (scopes.some((s) => CONTROL.test(s))) fail("the input scope must not contain control characters", 2);

const issuer = plain.ISSUER;
const clientId = plain.CLIENT_ID;
const federation = plain.FEDERATION || "client-assertion";
const envName = plain.ENV_NAME || "MCP_AUTH_TOKEN";
if (!issuer || !clientId) fail("the inputs issuer and client-id are required", 2);
if (!["client-assertion", "token-exchange", "none"].includes(federation)) fail("federation must be client-assertion, token-exchange or none", 2);
if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(envName) || /^(GITHUB_|RUNNER_|ACTIONS_)/.test(envName) || envName === "NODE_OPTIONS") fail(`env-name "${envName}" is not a usable variable name`, 2);
if (federation === "none" && !secret) fail("federation: none needs the client-secret input", 2);
if (federation === "client-assertion" && secret) fail("client-secret and federation: client-assertion exclude each other (the job's ID token is the credential)", 2);

const args = ["--non-interactive", "token", "--issuer", issuer, "--client-id", clientId, "--format", "json", "--no-cache"];
if (plain.RESOURCE) args.push("--resource", plain.RESOURCE);
if (plain.AUDIENCE) args.push("--audience", plain.AUDIENCE);
for (const s of scopes) args.push("--scope", s);
if (federation !== "none") {
  const aud = plain.ID_TOKEN_AUDIENCE;
  args.push("--assertion-from", aud ? `github-actions:${aud}` : "github-actions", "--federation", federation);
}
// The secret goes to the child in its environment only (MCP_AUTH_CLIENT_SECRET is mcp-auth's default).
const childEnv = { ...env };
for (const k of Object.keys(childEnv)) if (k.startsWith("INPUT_")) delete childEnv[k];
if (secret) {
  childEnv.MCP_AUTH_CLIENT_SECRET = secret;
  if (federation === "token-exchange") args.push("--client-secret-env", "MCP_AUTH_CLIENT_SECRET");
}

// The CLI the install step put in its own prefix, run by path: whatever else is on PATH is not used.
const version = actionVersion();
if (!env.RUNNER_TEMP) fail("RUNNER_TEMP is not set: run this as a GitHub Action step");
const prefix = join(env.RUNNER_TEMP, `mcp-auth-cli-${version}`);
const pkgDir = process.platform === "win32" ? join(prefix, "node_modules", "mcp-auth-cli") : join(prefix, "lib", "node_modules", "mcp-auth-cli");
let installed;
try {
  installed = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
} catch {
  /* below */
}
if (installed !== version) fail(`mcp-auth-cli ${version} is not installed in ${prefix} (the action's install step did not run?)`);

const child = spawn(process.execPath, [join(pkgDir, "bin", "mcp-auth.js"), ...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
let stdout = "";
let stderr = "";
child.stdout.on("data", (d) => (stdout += d));
child.stderr.on("data", (d) => (stderr += d));
child.on("error", (e) => fail(`cannot run mcp-auth: ${e.message}`));
child.on("close", (code) => {
  if (code !== 0) fail(`mcp-auth token failed (exit ${code}): ${stderr.trim() || "no message"}`, code ?? 1);
  let token;
  let expiresAt;
  try {
    const j = JSON.parse(stdout);
    token = j.access_token;
    expiresAt = j.expires_at;
  } catch {
    /* below */
  }
  // mcp-auth checks tokens (RFC 6750 b64token); one that could break a log line is refused here too.
  if (typeof token !== "string" || !token || CONTROL.test(token)) fail("mcp-auth printed no usable token");
  mask(token);
  const delimiter = `MCP_AUTH_${randomBytes(16).toString("hex")}`;
  const block = (name, value) => `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
  if (!env.GITHUB_ENV || !env.GITHUB_OUTPUT) fail("GITHUB_ENV and GITHUB_OUTPUT are not set: run this as a GitHub Action step");
  appendFileSync(env.GITHUB_ENV, block(envName, token));
  appendFileSync(env.GITHUB_OUTPUT, block("token", token) + (typeof expiresAt === "number" ? `expires-at=${expiresAt}\n` : ""));
  const expires = typeof expiresAt === "number" ? ` (expires ${new Date(expiresAt * 1000).toISOString()})` : "";
  verbatim(`${stderr.trim() ? `${stderr.trim()}\n` : ""}mcp-auth: token for ${clientId} at ${issuer} exported as ${envName}${expires}`);
});
