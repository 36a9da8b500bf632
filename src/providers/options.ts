import type { Command } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { readSecret } from "../io/secret-input.js";

/** Options and checks every IdP bootstrap shares: the admin sign-in and the kind of client to create. */
export interface AdminOptions {
  adminUser: string;
  adminPasswordStdin?: boolean;
  adminPasswordEnv?: string;
}

export interface ClientOptions {
  grant: string;
  redirectPort: string;
  rotateSecret?: boolean;
}

export type ClientGrant = "client_credentials" | "authorization_code";

export function declareAdminOptions(cmd: Command, userHelp: string): Command {
  return cmd
    .option("--admin-user <name>", userHelp, "admin")
    .option("--admin-password-stdin", "read the admin password from stdin")
    .option("--admin-password-env <VAR>", "read the admin password from $VAR");
}

export function declareClientOptions(cmd: Command, what: string): Command {
  return cmd
    .option("--grant <grant>", `${what}: client_credentials (CI, services) or authorization_code (people, PKCE)`, "client_credentials")
    .option("--redirect-port <port>", "loopback port registered for authorization_code", "33418")
    .option("--rotate-secret", "if the client exists, issue it a new client secret");
}

/** The admin password from stdin, an environment variable, or (on a terminal) a hidden prompt. */
export async function adminPassword(ctx: Context, o: AdminOptions, idp: string, alternative = ""): Promise<string> {
  const v = await readSecret(ctx, { stdin: o.adminPasswordStdin, env: o.adminPasswordEnv }, "admin password", "admin-password");
  if (v) return v;
  if (!ctx.nonInteractive) {
    const p = await readSecret(ctx, { stdin: true }, `password of ${idp} user "${o.adminUser}"`, "admin-password");
    if (p) return p;
  }
  throw new UsageError(`the ${idp} admin password is needed`, { hint: `pass --admin-password-stdin or --admin-password-env VAR${alternative}` });
}

export function clientChoice(o: ClientOptions): { grant: ClientGrant; port: number } {
  if (o.grant !== "client_credentials" && o.grant !== "authorization_code") throw new UsageError(`--grant must be client_credentials or authorization_code, got "${o.grant}"`);
  const port = Number(o.redirectPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--redirect-port must be 1-65535, got "${o.redirectPort}"`);
  return { grant: o.grant, port };
}
