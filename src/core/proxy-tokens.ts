import type { Context } from "../context.js";
import { AuthError } from "../errors.js";
import type { Profile } from "../profile.js";
import { profileCovers } from "./covers.js";
import { saveScopes, withScopes } from "./profiles.js";
import { login } from "./session.js";
import { loginHint, targetFromProfile } from "./target.js";
import { getToken, type TokenResult } from "./tokens.js";

/**
 * The tokens `mcp-auth proxy` puts on its requests, from one profile. A server's 403
 * insufficient_scope may widen the profile (the MCP spec's step-up), but only within bounds: the
 * proxy asks only for URLs the profile covers (src/core/covers.ts), the scopes it adds are named on
 * stderr, and they are saved only once the IdP has granted them.
 */
export interface ProxyTokens {
  token(o: { forceRefresh: boolean }): Promise<TokenResult>;
  /** A token that also has `scopes`; the profile keeps them only if the IdP granted them. */
  stepUp(scopes: string[]): Promise<TokenResult>;
  /** URLs this profile's token may step up for. */
  covers(url: URL): boolean;
  loginHint: string;
}

export function proxyTokens(ctx: Context, profile: Profile, o: { minTtl: number; notice: (line: string) => void }): ProxyTokens {
  let target = targetFromProfile(profile);
  return {
    // No login from here: stdin belongs to the MCP client. The error says which command to run.
    token: ({ forceRefresh }) => getToken(ctx, target, { minTtl: o.minTtl, forceRefresh }),
    // Client credentials just ask again; a person signs in again in the browser (never through stdin).
    stepUp: async (scopes) => {
      const had = target.scopes ?? [];
      const wider = withScopes({ ...profile, scopes: target.scopes }, scopes);
      const added = wider.scopes!.filter((s) => !had.includes(s));
      const next = targetFromProfile(wider);
      const got = next.grant === "client_credentials" ? await getToken(ctx, next, { minTtl: o.minTtl, forceRefresh: true }) : (await login(ctx, wider, { browser: true, timeoutSec: 300 })).token;
      // The IdP decides what it grants (and may drop what it does not know): keep only a real step-up.
      // No `scope` in its answer means "as requested" (RFC 6749 §5.1).
      const granted = got.scope?.split(/\s+/);
      const missing = granted ? scopes.filter((s) => !granted.includes(s)) : [];
      if (missing.length) {
        throw new AuthError(`the IdP did not grant ${missing.join(" ")} to ${profile.name}'s client (granted: ${got.scope || "nothing"})`, { hint: "ask the IdP's admin to allow that scope for the client" });
      }
      if (added.length) {
        await saveScopes(ctx, profile.name, wider.scopes!);
        o.notice(`profile "${profile.name}" now also requests scope ${added.join(" ")} (granted by ${profile.issuer}; saved)`);
      }
      target = next;
      return got;
    },
    covers: (url) => profileCovers(profile, url),
    loginHint: loginHint(target),
  };
}
