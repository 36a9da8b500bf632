// The GitHub Action's one step (action.yml): runs `mcp-auth token` with the inputs, then masks the
// token (::add-mask::), exports it (GITHUB_ENV) and sets the step outputs (GITHUB_OUTPUT).
// Inputs come as INPUT_* environment variables; nothing secret is ever put on a command line.
// MCP_AUTH_ACTION_BIN (tests) points at a checkout's bin/mcp-auth.js instead of the installed one.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";

const env = process.env;
const input = (name) => (env[`INPUT_${name}`] ?? "").trim();
const out = (line) => process.stdout.write(`${line}\n`);
const fail = (message, code = 1) => {
  out(`::error title=mcp-auth::${message.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A")}`);
  process.exit(code);
};

const issuer = input("ISSUER");
const clientId = input("CLIENT_ID");
const federation = input("FEDERATION") || "client-assertion";
const secret = env.INPUT_CLIENT_SECRET ?? "";
const envName = input("ENV_NAME") || "MCP_AUTH_TOKEN";
if (!issuer || !clientId) fail("the inputs issuer and client-id are required", 2);
if (!["client-assertion", "token-exchange", "none"].includes(federation)) fail(`federation must be client-assertion, token-exchange or none, not "${federation}"`, 2);
if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(envName) || /^(GITHUB_|RUNNER_|ACTIONS_)/.test(envName) || envName === "NODE_OPTIONS") fail(`env-name "${envName}" is not a usable variable name`, 2);
if (federation === "none" && !secret) fail("federation: none needs the client-secret input", 2);
if (federation === "client-assertion" && secret) fail("client-secret and federation: client-assertion exclude each other (the job's ID token is the credential)", 2);
if (secret) out(`::add-mask::${secret}`);

const args = ["--non-interactive", "token", "--issuer", issuer, "--client-id", clientId, "--format", "json", "--no-cache"];
if (input("RESOURCE")) args.push("--resource", input("RESOURCE"));
if (input("AUDIENCE")) args.push("--audience", input("AUDIENCE"));
for (const s of input("SCOPE").split(/\s+/).filter(Boolean)) args.push("--scope", s);
if (federation !== "none") {
  const aud = input("ID_TOKEN_AUDIENCE");
  args.push("--assertion-from", aud ? `github-actions:${aud}` : "github-actions", "--federation", federation);
}
// The secret goes to the child in its environment only (MCP_AUTH_CLIENT_SECRET is mcp-auth's default).
const childEnv = { ...env };
for (const k of Object.keys(childEnv)) if (k.startsWith("INPUT_")) delete childEnv[k];
if (secret) {
  childEnv.MCP_AUTH_CLIENT_SECRET = secret;
  if (federation === "token-exchange") args.push("--client-secret-env", "MCP_AUTH_CLIENT_SECRET");
}

const [cmd, pre] = env.MCP_AUTH_ACTION_BIN ? [process.execPath, [env.MCP_AUTH_ACTION_BIN]] : ["mcp-auth", []];
const child = spawn(cmd, [...pre, ...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
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
  if (typeof token !== "string" || !token) fail("mcp-auth printed no token");
  // Mask first: from here on the runner replaces the token with *** in every log line.
  out(`::add-mask::${token}`);
  const delimiter = `MCP_AUTH_${randomBytes(16).toString("hex")}`;
  const block = (name, value) => `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
  if (!env.GITHUB_ENV || !env.GITHUB_OUTPUT) fail("GITHUB_ENV and GITHUB_OUTPUT are not set: run this as a GitHub Action step");
  appendFileSync(env.GITHUB_ENV, block(envName, token));
  appendFileSync(env.GITHUB_OUTPUT, block("token", token) + (typeof expiresAt === "number" ? `expires-at=${expiresAt}\n` : ""));
  if (stderr.trim()) process.stderr.write(stderr);
  out(`mcp-auth: token for ${clientId} at ${issuer} exported as ${envName}${typeof expiresAt === "number" ? ` (expires ${new Date(expiresAt * 1000).toISOString()})` : ""}`);
});
