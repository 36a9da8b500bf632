import { audiences, type Check, checkUrl, type ProviderContext, decodeToken, defineInput, defineProvider, describeEra, failed, issuerUrl, NetworkError, passed, probeServer, UsageError } from "../sdk.js";

/**
 * OctoPerf (docs/idp/octoperf.md): an MCP-native server with no API keys. Its
 * MCP endpoint is `<origin>/mcp`, its identity provider is bundled in the OctoPerf backend on the same
 * public origin, and clients register themselves anonymously (RFC 7591 at /auth/connect/register).
 * So "bootstrap" is the seed's verification step (/mcp/public/AGENTS.md reachable without auth), the
 * MCP-native discovery + DCR + PKCE login, and a check of what breaks self-hosted installs: tokens
 * whose issuer or audience is not the public origin ("every call returns 401").
 */
const inputs = [
  defineInput({ name: "url", flag: "--url <url>", kind: "url", default: "https://api.octoperf.com", description: "OctoPerf's public origin (SaaS, or your Enterprise host)", prompt: "OctoPerf URL", reach: true }),
  defineInput({ name: "browserCommand", flag: "--browser-command <cmd>", kind: "string", description: "open the sign-in URL with this command (`CMD <url>`; env BROWSER works too)" }),
  defineInput({ name: "printUrl", flag: "--print-url", kind: "boolean", description: "print the sign-in URL instead of opening a browser" }),
  defineInput({ name: "loginTimeout", flag: "--login-timeout <seconds>", kind: "number", default: 300, description: "how long to wait for the browser sign-in" }),
] as const;

/** The public origin a URL names (OctoPerf derives its issuer and audiences from it). */
function originOf(ctx: ProviderContext, url: string): string {
  return checkUrl(url, "--url", ctx.allowHttp, "resource").origin;
}

const sameOrigin = (value: string, origin: string) => URL.canParse(value) && new URL(value).origin === origin;

export const octoperf = defineProvider({
  id: "octoperf",
  title: "OctoPerf",
  summary: "OctoPerf MCP server: check it, register mcp-auth (DCR) and sign in (PKCE)",
  inputs,
  doctorHints: { publicUrl: "OctoPerf: its public origin" },
  matches: (x) => {
    const u = issuerUrl(x);
    if (u?.hostname === "api.octoperf.com" || u?.hostname.endsWith(".octoperf.com")) return true;
    return typeof x === "object" && typeof x.registration_endpoint === "string" && x.registration_endpoint.endsWith("/auth/connect/register");
  },

  async bootstrap(ctx, input, run) {
    const origin = originOf(ctx, input.url);
    const mcpUrl = `${origin}/mcp`;
    const checks: Check[] = [];

    // The seed's verification step: the public files are served without a token.
    const agents = `${origin}/mcp/public/AGENTS.md`;
    try {
      const res = await ctx.fetch(agents, { headers: { accept: "text/markdown, text/plain, */*" } });
      await res.arrayBuffer().catch(() => {});
      checks.push(
        res.ok
          ? passed("public MCP files", `${agents} answered ${res.status}`)
          : failed("public MCP files", `${agents} answered ${res.status}`, "the reverse proxy probably strips /mcp/public/: route /mcp and everything under it to the MCP server (port 8091), without authentication for /mcp/public/**"),
      );
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new NetworkError(`cannot reach OctoPerf at ${origin}: ${(e as Error).message}`, { hint: "check --url (the public origin, e.g. https://api.octoperf.com)" });
    }

    const plan = await run.planMcp({ mcpUrl, name: run.profile });
    if (plan.kind === "open") throw new UsageError(`${mcpUrl} answered without asking for a token: this is not an OctoPerf MCP server (it requires OAuth)`);
    const data = { ...plan.data, provider: "octoperf" };
    return {
      action: plan.registration === "reused" ? "reused" : "created",
      profile: data,
      ...(plan.clientSecret ? { clientSecret: plan.clientSecret } : {}),
      facts: [
        ["MCP server", mcpUrl],
        ["authorization server", data.issuer],
        ["client id", `${data.clientId} (${plan.registration === "reused" ? "registered before" : plan.registration === "dcr" ? "registered just now" : plan.registration})`],
      ],
      checks,
      notes: plan.discovery.notes.map((n) => `note: ${n}`),
      login: { browser: !input.printUrl, browserCommand: input.browserCommand, timeoutSec: input.loginTimeout },
    };
  },

  /** The origin rules of seed 004: issuer and audiences derive from the public origin, or every call is refused. */
  async verify(ctx, input, result, token) {
    if (!token || !result.profile) return [];
    const origin = originOf(ctx, input.url);
    const fix = `make OctoPerf mint tokens for its public origin ${origin}: set the backend's and the MCP server's server.scheme, server.hostname and server.public.port to it (not an internal name such as http://enterprise-edition:8090)`;
    const checks: Check[] = [];
    const mcpUrl = result.profile.mcpUrl!;
    let accepted: boolean | undefined;
    try {
      const r = await probeServer(ctx, mcpUrl, `Bearer ${token}`);
      accepted = r.era.era !== "unknown";
      checks.push(
        accepted
          ? passed("MCP server accepts the token", describeEra(r.era))
          : failed("MCP server accepts the token", `${r.era.detail}${r.wwwAuthenticate ? ` (${r.wwwAuthenticate})` : ""}`, r.status === 401 ? fix : "check the MCP server's logs"),
      );
    } catch (e) {
      checks.push(failed("MCP server accepts the token", (e as Error).message, "check that the MCP server is up"));
    }
    // An origin mismatch is the seed's "every call returns 401"; while the server still accepts the token it is only a warning.
    const finding = (what: string, ok: boolean, good: string, bad: string): Check =>
      ok ? passed(what, good) : accepted ? { ok: true, status: "warn", what, detail: bad, fix } : failed(what, `${bad}: the MCP server answers 401 to every call`, fix);
    const decoded = decodeToken(token);
    if (decoded.kind === "jwt") {
      const iss = typeof decoded.claims.iss === "string" ? decoded.claims.iss : "";
      checks.unshift(finding("token issuer is the public origin", sameOrigin(iss, origin), iss, `the token's iss is ${iss || "missing"}, but clients reach OctoPerf at ${origin}`));
      const aud = audiences(decoded.claims);
      checks.splice(1, 0, finding("token audience is the public origin", aud.some((a) => sameOrigin(a, origin)), aud.join(", "), `the token's aud is ${aud.join(", ") || "empty"}, not derived from ${origin}`));
    }
    return checks;
  },
});
