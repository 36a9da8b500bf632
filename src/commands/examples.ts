import type { Command } from "commander";
import { providers } from "../plugins.js";
import { flagName, secretFlags } from "../core/inputs.js";

/**
 * Examples for every command's --help, by command path. Commands that write their own (token, doctor,
 * decode, status, add-client) are not repeated here; test/help.test.ts checks that none is left without.
 */
const EXAMPLES: Record<string, string[]> = {
  login: [
    "mcp-auth login dev",
    "mcp-auth login https://mcp.example.com/mcp   # discover, register, sign in, save profile mcp.example.com",
    "mcp-auth login dev --scope files:write       # step up: add a scope and sign in again",
    "mcp-auth login dev --device                  # SSH, WSL: no local browser",
    "mcp-auth login dev --paste                   # sign in on any machine, paste back the address",
    "mcp-auth login dev --no-browser              # print the URL instead",
  ],
  logout: ["mcp-auth logout dev", "mcp-auth logout dev --revoke", "mcp-auth logout --all"],
  profiles: ["mcp-auth profiles list", "mcp-auth profiles show", "mcp-auth profiles set dev --scope \"openid mcp:read\"", "mcp-auth profiles rename dev staging"],
  "profiles add": [
    "mcp-auth profiles add dev --issuer https://idp.example.com --client-id mcp-cli --grant authorization_code --scope openid mcp:read",
    "printf %s \"$SECRET\" | mcp-auth profiles add ci --issuer https://idp.example.com --client-id ci --client-secret-stdin --resource https://mcp.example.com/mcp",
    "mcp-auth profiles add work --mcp-url https://mcp.example.com/mcp   # discover the authorization server, register",
    "mcp-auth profiles add ci --issuer https://idp.example.com --client-auth private-key-jwt --generate-key",
    "mcp-auth profiles add work --preset entra --tenant TENANT_ID --client-id APP_ID --scope api://APP/.default   # also google, okta, auth0, github",
  ],
  "profiles list": ["mcp-auth profiles list", "mcp-auth profiles list --json", "mcp-auth profiles list -q"],
  "profiles show": ["mcp-auth profiles show            # the default profile", "mcp-auth profiles show dev --json"],
  "profiles use": ["mcp-auth profiles use dev"],
  "profiles remove": ["mcp-auth profiles remove old-dev"],
  "profiles rename": ["mcp-auth profiles rename dev staging"],
  "profiles rotate-key": ["mcp-auth profiles rotate-key ci            # prints the new public JWK to register", "mcp-auth profiles rotate-key ci --alg RS256 --json"],
  "profiles set": ["mcp-auth profiles set dev --scope openid mcp:read mcp:write", "mcp-auth profiles set dev --resource https://mcp.example.com/mcp", "mcp-auth profiles set dev --audience \"\"          # clear a field", "mcp-auth profiles set ci --client-secret-env NEW_SECRET"],
  sandbox: ["mcp-auth sandbox --save", "mcp-auth sandbox --port 9000 --token-ttl 120", "mcp-auth sandbox --json"],
  bootstrap: ["mcp-auth bootstrap thunder --admin-password-env THUNDER_ADMIN_PASSWORD", "mcp-auth bootstrap keycloak --url https://auth.example.com --realm mcp --admin-password-env KC_PASSWORD"],
  "bootstrap thunder": [
    "mcp-auth bootstrap thunder --admin-password-env THUNDER_ADMIN_PASSWORD",
    "mcp-auth bootstrap thunder --url https://thunder.example.com --grant authorization_code --profile thunder-me",
  ],
  "bootstrap keycloak": [
    "mcp-auth bootstrap keycloak --url https://auth.example.com --realm mcp --admin-password-env KC_PASSWORD",
    "mcp-auth bootstrap keycloak --url https://auth.example.com --realm mcp --admin-client-id ops --admin-client-secret-env KC_OPS_SECRET",
  ],
  "bootstrap oci": ["mcp-auth bootstrap oci --domain-url https://idcs-abc.identity.oraclecloud.com --admin-client-id admin-app --admin-client-secret-env OCI_ADMIN_SECRET --mcp-url http://localhost:8000"],
  "bootstrap openproject": ["mcp-auth bootstrap openproject --url https://openproject.example.com --api-token-env OP_TOKEN", "mcp-auth bootstrap openproject --url https://openproject.example.com --oauth"],
  completion: ["mcp-auth completion bash > ~/.local/share/bash-completion/completions/mcp-auth", "source <(mcp-auth completion zsh)"],
  proxy: ["mcp-auth proxy --profile dev", "mcp-auth proxy --profile dev --url https://mcp.example.com/mcp --transport sse"],
  "remove-client": ["mcp-auth remove-client claude --name dev", "mcp-auth remove-client cursor --name dev --dry-run"],
  clients: ["mcp-auth clients", "mcp-auth clients --json"],
};

/** `--help` examples for commands that have none of their own; bootstrap providers without an entry get generated ones. */
export function addExamples(program: Command): void {
  const visit = (cmd: Command, path: string[]) => {
    const key = path.join(" ");
    const lines = EXAMPLES[key] ?? (path[0] === "bootstrap" && path.length === 2 ? generatedBootstrapExample(path[1]!) : undefined);
    if (lines) cmd.addHelpText("after", `\nExamples:\n${lines.map((l) => `  ${l}`).join("\n")}`);
    for (const sub of cmd.commands) visit(sub, [...path, sub.name()]);
  };
  for (const c of program.commands) visit(c, [c.name()]);
}

/** A provider added later still gets an example: its required inputs, secrets from an environment variable. */
function generatedBootstrapExample(id: string): string[] | undefined {
  const p = providers.find((x) => x.id === id);
  if (!p) return undefined;
  const args = p.inputs
    .filter((s) => s.required && !s.hidden)
    .map((s) => (s.secret ? `${secretFlags(s).env} ${s.name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}` : `${flagName(s)} ${typeof s.default === "string" ? s.default : `<${s.name}>`}`));
  return [[`mcp-auth bootstrap ${id}`, ...args].join(" ")];
}
