import { defineInput, GRANT_WORDS } from "../sdk.js";

/** Inputs every IdP bootstrap shares: the admin sign-in and the kind of client to create. */
export type ClientGrant = "client_credentials" | "authorization_code";

export function adminUserInput(help: string) {
  return defineInput({ name: "adminUser", flag: "--admin-user <name>", kind: "string", description: help, prompt: "Admin user", default: "admin" });
}

/**
 * The admin password: `--admin-password-stdin`, `--admin-password-env VAR`, or a hidden prompt on
 * a terminal. `askIf` lets a provider skip it when another sign-in (a service account) is chosen.
 */
export function adminPasswordInput(idp: string, o: { askIf?: (a: Record<string, unknown>) => boolean; missingHint?: string } = {}) {
  return defineInput({
    name: "adminPassword",
    flag: "--admin-password",
    kind: "string",
    secret: true,
    required: true,
    description: `${idp} admin password`,
    prompt: (a) => `Password of ${idp} user "${String(a.adminUser)}"`,
    askIf: o.askIf,
    missingHint: o.missingHint,
  });
}

/** A service account's client secret (stdin, $VAR — default MCP_AUTH_ADMIN_CLIENT_SECRET — or a hidden prompt). */
export function adminClientSecretInput(description: string, promptPrefix: string) {
  return defineInput({
    name: "adminClientSecret",
    flag: "--admin-client-secret",
    kind: "string",
    secret: true,
    required: true,
    env: "MCP_AUTH_ADMIN_CLIENT_SECRET",
    description,
    prompt: (a) => `${promptPrefix} "${String(a.adminClientId)}"`,
  });
}

export function grantInput(what: string) {
  return defineInput({
    name: "grant",
    flag: "--grant <grant>",
    kind: "choice",
    choices: ["client_credentials", "authorization_code"] as const,
    description: `${what}: client_credentials (CI, services) or authorization_code (people, PKCE)`,
    prompt: "Who will use the client?",
    default: "client_credentials",
    choiceNames: GRANT_WORDS,
  });
}

export const redirectPortInput = defineInput({
  name: "redirectPort",
  flag: "--redirect-port <port>",
  kind: "port",
  description: "loopback port registered for authorization_code",
  prompt: "Loopback port for the login redirect",
  default: 33418,
  askWhen: (a) => a.grant !== "client_credentials", // a machine-to-machine client has no redirect
});

/**
 * Not a question of the wizard: nothing is known to exist when it asks. A provider that finds the
 * client exists without a secret mcp-auth holds throws an error with `code: SECRET_NOT_HELD`, and the
 * wizard then asks whether to issue a new one (src/commands/init.ts).
 */
export { SECRET_NOT_HELD } from "../sdk.js";

export const rotateSecretInput = defineInput({
  name: "rotateSecret",
  flag: "--rotate-secret",
  kind: "boolean",
  description: "if the client exists, issue it a new client secret",
});

