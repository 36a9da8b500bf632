/**
 * The cached-token fast path, bundled on its own as dist/fast.cjs and loaded by bin/mcp-auth.js
 * before anything else. It answers `mcp-auth token` from the cache using node built-ins only; any
 * flag it does not know, any doubt, and it returns false and the full CLI takes over.
 */
import { writeSync } from "node:fs";
import { profileCovers } from "./core/covers.js";
import { formatToken, isFormat, type Format } from "./format.js";
import { paths } from "./paths.js";
import { readCachedToken } from "./store/tokens.js";
import { readConfigSync, secretFingerprint, selectProfile, splitScopes, type CacheIdentity } from "./target.js";

const VALUE_FLAGS: Record<string, string> = {
  "--profile": "profile",
  "-p": "profile",
  "--provider": "provider",
  "--format": "format",
  "-f": "format",
  "--min-ttl": "minTtl",
  "--env-name": "envName",
  "--issuer": "issuer",
  "--client-id": "clientId",
  "--scope": "scope",
  "--resource": "resource",
  "--audience": "audience",
  "--client-secret-env": "secretEnv",
};

// fs.writeSync(1) rather than process.stdout: creating the stdout stream costs more than the rest of this file.
export function tryCachedToken(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void = (s) => void writeSync(1, s)): boolean {
  let text: string;
  try {
    // Global flags a client's headersHelper puts before `token` (src/clients/claude.ts).
    let dirFlag: string | undefined;
    let start = 0;
    for (;;) {
      const a = argv[start];
      if (a === "--non-interactive") start += 1;
      else if (a === "--config-dir" && argv[start + 1]) (dirFlag = argv[start + 1]), (start += 2);
      else if (a === "--store" && argv[start + 1] && argv[start + 1] !== "memory") start += 2;
      else break;
    }
    if (argv[start] !== "token") return false;
    const o: Record<string, string> = {};
    const scopes: string[] = [];
    for (let i = start + 1; i < argv.length; i++) {
      const arg = argv[i]!;
      const eq = arg.indexOf("=");
      const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
      const name = VALUE_FLAGS[flag];
      if (!name) return false;
      const value = flag !== arg ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) return false;
      if (name === "scope") scopes.push(value);
      else o[name] = value;
    }
    const format = (o.format ?? "raw") as Format;
    if (!isFormat(format)) return false;
    // --env-name with another format deserves a warning: the full CLI gives it.
    if (o.envName !== undefined && format !== "env" && format !== "github") return false;
    const minTtl = o.minTtl === undefined ? 60 : Number(o.minTtl);
    if (!Number.isFinite(minTtl) || minTtl < 0) return false;
    if (env.MCP_AUTH_STORE === "memory") return false;

    const p = paths(env, undefined, dirFlag);
    const cfg = readConfigSync(p.config);
    if (cfg.settings?.store === "memory") return false;
    let id: CacheIdentity;
    if (o.issuer) {
      const secret = env[o.secretEnv ?? "MCP_AUTH_CLIENT_SECRET"];
      if (!o.clientId || o.profile || o.provider || !secret) return false;
      id = { issuer: o.issuer, clientId: o.clientId, scopes: splitScopes(scopes), resource: o.resource, audience: o.audience, profile: null, secretFingerprint: secretFingerprint(secret) };
    } else {
      if (o.clientId || scopes.length || o.resource || o.audience) return false;
      const prof = selectProfile(cfg, { profile: o.profile, provider: o.provider }, env);
      // A Claude Code headersHelper asking for another server's token: the full CLI refuses it (src/commands/token.ts).
      const asked = env.CLAUDE_CODE_MCP_SERVER_URL;
      if (asked !== undefined && !profileCovers(prof, asked)) return false;
      id = { ...prof, profile: prof.name };
    }
    // Trust checks cost a few stat calls: config dir and config.json (readConfigSync), tokens dir and
    // the record, opened without following a symlink and checked by fstat (readCachedToken). Any
    // refusal lands in the catch below: the full CLI then reports it (exit 5).
    const rec = readCachedToken(p, id);
    const now = Date.now() / 1000;
    if (!rec?.access_token || rec.expires_at - now < minTtl) return false;
    text = formatToken({ ...rec, access_token: rec.access_token }, format, { envName: o.envName, now: Math.floor(now), env });
  } catch {
    return false;
  }
  try {
    out(text);
  } catch (e) {
    // A closed pipe (`mcp-auth token | head -c0`) is the reader's choice, not our failure.
    if ((e as NodeJS.ErrnoException).code !== "EPIPE") throw e;
  }
  return true;
}
