import type { Command } from "commander";
import type { Context } from "../context.js";
import { logout, type LogoutResult } from "../core/session.js";
import { McpAuthError } from "../errors.js";
import type { Profile } from "../profile.js";
import { profileFor, withProfileOptions, type Run } from "./shared.js";

export interface LogoutCommandOptions {
  profileArg?: string;
  profile?: string;
  provider?: string;
  revoke?: boolean;
  all?: boolean;
  force?: boolean;
}

export async function runLogout(ctx: Context, o: LogoutCommandOptions): Promise<void> {
  const cfg = ctx.config();
  const profiles: Profile[] = o.all ? Object.keys(cfg.profiles).map((n) => ({ name: n, ...cfg.profiles[n]! })) : [profileFor(ctx, o, o.profileArg)];
  let failure: McpAuthError | undefined;
  for (const p of profiles) {
    const r = await logout(ctx, p, {
      revoke: o.revoke,
      force: o.force,
      confirmForget: ctx.io.interactive
        ? (name, why) => ctx.io.prompter.confirm(`Revocation failed (${why}). Forget the tokens of "${name}" on this machine anyway?`, { default: false })
        : undefined,
    });
    report(ctx, p, r);
    failure ??= r.error;
  }
  if (failure) {
    throw new (failure.constructor as typeof McpAuthError)(failure.message, {
      cause: failure,
      code: failure.code,
      hint: "the tokens were kept so the revocation can be retried; pass --force to forget them here without revoking",
    });
  }
}

const NAMES = { refresh_token: "refresh token", access_token: "access token" } as const;

/** Says exactly what was revoked, what was not, and what was removed from this machine. */
function report(ctx: Context, p: Profile, r: LogoutResult): void {
  if (r.revocation === "no-endpoint") {
    ctx.warn(`${p.issuer} has no revocation endpoint; the tokens are only removed here`);
  } else if (r.revocation) {
    const revoked = r.revocation.filter((x) => x.result === "revoked").map((x) => NAMES[x.hint]);
    if (revoked.length) ctx.info(`Revoked at the IdP: the ${revoked.join(" and the ")} of "${p.name}".`);
    for (const x of r.revocation) {
      if (x.result === "unsupported") ctx.info(`The IdP does not revoke the ${NAMES[x.hint]} (it stays valid until it expires).`);
      if (x.result === "failed") ctx.warn(`NOT revoked: the ${NAMES[x.hint]} of "${p.name}" (${x.error?.message ?? "failed"})`);
    }
  }
  if (r.error) ctx.info(`Kept the tokens of "${p.name}" on this machine.`);
  else if (r.forgotten) ctx.info(r.had ? `Logged out of "${p.name}"${r.revocation && r.revocation !== "no-endpoint" && r.revocation.some((x) => x.result === "failed") ? " (forgotten here without revoking)" : ""}.` : `"${p.name}" had no cached tokens.`);
  for (const u of r.unchecked) ctx.warn(`could not check a secret store for leftover tokens (${u})`);
}

export function registerLogout(program: Command, getCtx: () => Context, run: Run<LogoutCommandOptions> = runLogout): void {
  const cmd = program
    .command("logout [profile]")
    .description("forget a profile's cached tokens (the profile and its client secret stay)")
    .option("--revoke", "also revoke the tokens at the IdP (when it has a revocation endpoint)")
    .option("--force", "with --revoke: forget the tokens here even if the IdP could not revoke them")
    .option("--all", "log out of every profile");
  withProfileOptions(cmd);
  cmd.action((name: string | undefined, o: LogoutCommandOptions) => run(getCtx(), { ...o, profileArg: name }));
}
