import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ROOT, runProcess, user, type RunResult, type Sandboxed } from "./helpers/cli.js";
import { startCiIssuer, startFederatedAs, CI_SUBJECT, type CiIssuer, type FederatedAs } from "./helpers/federation.js";
import { readmeCommands, words } from "./helpers/readme.js";
import { useSandbox } from "./helpers/sandbox.js";
import { startKeycloak, type KeycloakSim } from "./simulators/keycloak.js";
import { startOci, type OciSim } from "./simulators/oci.js";
import { startOctoPerf, type OctoPerfSim } from "./simulators/octoperf.js";
import { startOpenProject, type OpenProjectSim } from "./simulators/openproject.js";
import { startThunder, type ThunderSim } from "./simulators/thunder.js";
import { startGoogle } from "./simulators/google.js";
import { startEnterprise, type EnterpriseSetup } from "./simulators/enterprise-idp.js";
import type { VendorIdp } from "./simulators/vendor-idp.js";
import { freePort } from "./helpers/util.js";

/**
 * Every command the README shows, run as a user would (the built CLI, a temp HOME), section by section
 * so state builds up as the README walks through it. The README's example hosts become real local
 * servers: idp.example.com and mcp.example.com the sandbox (a real oidc-provider and MCP server),
 * auth.example.com the Keycloak simulator (or, for federation, an RFC 7523 server trusting a
 * GitHub-style CI issuer), idcs-… the OCI simulator, openproject/octoperf.example.com theirs, and
 * Thunder's default URL the Thunder simulator. Placeholders (ID, CLIENT_ID, $SECRET, NAME, PROFILE, …)
 * become the set-up's concrete values; fixed ports (8765) become free ones. Browser sign-ins go
 * through headless Chromium (test/helpers/browser.mjs), or a plain fetch where the server approves
 * at once. The last test fails when the README gains a command that is neither run here nor excluded
 * with a reason.
 */
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const CHROMIUM = `${process.execPath} ${join(ROOT, "test", "helpers", "browser.mjs")}`;
const FETCH_BROWSER = `${process.execPath} ${join(ROOT, "test", "helpers", "fetch-browser.mjs")}`;
const hasChromium = existsSync("/usr/bin/chromium") || Boolean(process.env.CI);
// Claude Code's CLI is not on PATH here, so `add-client claude` edits ~/.claude.json itself
// (test/clients-e2e.test.ts runs the real `claude`).
const PATH = (process.env.PATH ?? "").split(":").filter((d) => !d.includes("node_modules")).join(":");

/** README commands deliberately not run, each with its reason. */
const EXCLUDED: Record<string, string> = {
  "mcp-auth …": "a placeholder for any command, not a command",
  "mcp-auth bootstrap <idp>": "the syntax summary; every concrete `bootstrap <idp>` line below it is run",
  "mcp-auth add-client": "names the command in prose; every concrete add-client line is run",
  "mcp-auth bootstrap octoperf": "the SaaS default https://api.octoperf.com cannot be reached here; the Enterprise form with --url is run",
};

/** Every README command run below (filled as the steps are declared). */
const ran = new Set<string>();


interface Invocation {
  args: string[];
  stdoutFile?: string;
  stdinFile?: string;
}

/**
 * A README command line → argv for the CLI: `map` replaces whole words (placeholders; an array is
 * several words) and, inside other words, example hosts (keys with a dot, longest first); `~` is the
 * user's HOME; `[…]` marks an optional part that is given; `> FILE` and `< FILE` are the shell's
 * redirections, relative to the working directory.
 */
function toArgv(readme: string, map: Record<string, string | string[]>, u: Sandboxed, cwd: string): Invocation {
  const keys = Object.keys(map).sort((a, b) => b.length - a.length);
  const out: Invocation = { args: [] };
  const ws = words(readme).slice(1);
  for (let i = 0; i < ws.length; i++) {
    let w = ws[i]!.replace(/^\[/, "").replace(/\]$/, "");
    if (w === ">" || w === "<") {
      const target = map[ws[i + 1]!];
      const file = toPath(typeof target === "string" ? target : ws[i + 1]!, u, cwd);
      if (w === ">") out.stdoutFile = file;
      else out.stdinFile = file;
      i++;
      continue;
    }
    const whole = map[w];
    if (Array.isArray(whole)) {
      out.args.push(...whole);
      continue;
    }
    if (whole !== undefined) w = whole;
    else for (const k of keys) if (k.includes(".") && w.includes(k) && typeof map[k] === "string") w = w.split(k).join(map[k] as string);
    if (w.startsWith("~/")) w = join(u.home, w.slice(2));
    out.args.push(w);
  }
  return out;
}
function toPath(p: string, u: Sandboxed, cwd: string): string {
  return p.startsWith("~/") ? join(u.home, p.slice(2)) : p.startsWith("/") ? p : join(cwd, p);
}

interface Step {
  /** Exactly as readmeCommands() extracts it from the README. */
  readme: string;
  /** Appended arguments (a browser command, a simulator's URL for a default that names a real host). */
  extra?: () => string[];
  input?: () => string;
  env?: () => NodeJS.ProcessEnv;
  code?: number;
  /** The state the README's line assumes, made first. */
  before?: () => Promise<void>;
  check?: (r: RunResult) => void | Promise<void>;
}

interface Section {
  user: () => Sandboxed;
  map: () => Record<string, string | string[]>;
  cwd?: () => string;
}

/** Runs one README command in a section's user, as the shell would. */
async function runReadme(s: Section, step: Step): Promise<RunResult> {
  const u = s.user();
  const cwd = s.cwd?.() ?? u.home;
  const inv = toArgv(step.readme, s.map(), u, cwd);
  const input = inv.stdinFile ? readFileSync(inv.stdinFile, "utf8") : step.input?.();
  const r = await runProcess(process.execPath, [BIN, ...inv.args, ...(step.extra?.() ?? [])], { ...u.env, ...step.env?.() }, input, 60_000, cwd);
  if (inv.stdoutFile) {
    mkdirSync(dirname(inv.stdoutFile), { recursive: true });
    writeFileSync(inv.stdoutFile, r.stdout);
  }
  return r;
}

/** One `it` per README command, in README order; they share the section's state. */
function steps(s: Section, list: Step[]): void {
  for (const step of list) {
    ran.add(step.readme);
    it(step.readme, async () => {
      await step.before?.();
      const r = await runReadme(s, step);
      if (process.env.README_RUN_DEBUG) console.log(`$ ${step.readme}\n[${r.code}] ${r.stdout}\n${r.stderr}`);
      expect(r.code, `${step.readme}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(step.code ?? 0);
      await step.check?.(r);
    });
  }
}

/**
 * Runs the CLI and waits for a line on stderr, then lets `then` act on it (a person copying a URL
 * into a browser) while the CLI keeps waiting; resolves with the CLI's result.
 */
function runWatching(u: Sandboxed, args: string[], wait: RegExp, then: (m: RegExpMatchArray) => Promise<void>, env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...u.env, ...env }, cwd: u.home, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let acted = false;
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => {
      stderr += d;
      const m = stderr.match(wait);
      if (m && !acted) {
        acted = true;
        then(m).catch(reject);
      }
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`timed out: ${args.join(" ")}\n${stderr}`));
    }, 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const jwtPayload = (token: string) => JSON.parse(Buffer.from(token.trim().split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
const file = (u: Sandboxed, p: string) => readFileSync(join(u.home, p), "utf8");
const config = (u: Sandboxed) => JSON.parse(readFileSync(join(u.configDir, "config.json"), "utf8"));
const secrets = (u: Sandboxed) => JSON.parse(readFileSync(join(u.configDir, "secrets.json"), "utf8")).secrets as Record<string, string>;

const sb = useSandbox();
const users: Sandboxed[] = [];
function newUser(env: NodeJS.ProcessEnv = {}): Sandboxed {
  const u = user({ MCP_AUTH_STORE: "file", PATH, ...env });
  users.push(u);
  return u;
}
afterAll(() => {
  for (const u of users) u.cleanup();
});

/** The sandbox's hosts and clients in the README's names. */
/**
 * Stand-ins for the 1Password and Vault CLIs (test/fixtures/secret-command/bin), first on PATH, with the
 * sandbox client's secret under the references the README uses.
 */
function secretManagers(u: Sandboxed): NodeJS.ProcessEnv {
  const values = join(u.home, "fake-secrets.json");
  writeFileSync(values, JSON.stringify({ "op://Platform/mcp-ci/credential": "sandbox-secret", "secret/mcp/ci#client_secret": "sandbox-secret" }));
  return { PATH: `${join(ROOT, "test", "fixtures", "secret-command", "bin")}:${PATH}`, FAKE_SECRETS: values };
}

const sandboxMap = (): Record<string, string | string[]> => ({
  "https://idp.example.com": sb.issuer,
  "https://mcp.example.com/mcp": sb.mcpUrl,
  "mcp.example.com": `127.0.0.1-${new URL(sb.mcpUrl).port}`, // the profile `login <url>` names after the host
  "mcp-ci": "sandbox-m2m",
  "mcp-cli": "sandbox-cli",
  "files:write": "mcp:write",
});

describe.skipIf(!hasChromium)("README: Try it: the sandbox", () => {
  let u: Sandboxed;
  let child: ReturnType<typeof spawn>;
  let out = "";
  beforeAll(async () => {
    u = newUser();
  });
  afterAll(() => {
    if (child?.exitCode === null) child.kill("SIGKILL");
  });
  const s: Section = { user: () => u, map: () => ({}) };

  ran.add("mcp-auth sandbox --save");
  it("mcp-auth sandbox --save (runs until Ctrl-C)", async () => {
    const inv = toArgv("mcp-auth sandbox --save", {}, u, u.home);
    child = spawn(process.execPath, [BIN, ...inv.args], { env: u.env, cwd: u.home, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    await expect.poll(() => out, { timeout: 30_000 }).toContain("Saved profiles 'sandbox' and 'sandbox-login'");
  });
  steps(s, [
    { readme: "mcp-auth token --profile sandbox", check: (r) => expect(jwtPayload(r.stdout).aud).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/) },
    { readme: "mcp-auth login sandbox-login", extra: () => ["--browser-command", CHROMIUM], check: (r) => expect(r.stderr).toContain('Logged in: profile "sandbox-login"') },
    { readme: "mcp-auth status", check: (r) => expect(r.stdout).toMatch(/sandbox-login/) },
  ]);
  it("Ctrl-C stops it", async () => {
    const closed = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
    child.kill("SIGINT");
    expect(await closed).toBe(0);
    expect(out).toContain("Stopping the sandbox.");
  });

  ran.add("mcp-auth sandbox --save --protocol 2026-07-28");
  ran.add("mcp-auth doctor --profile sandbox");
  it("mcp-auth sandbox --save --protocol 2026-07-28, then doctor reports the era", async () => {
    const v = newUser();
    let text = "";
    const p = spawn(process.execPath, [BIN, ...toArgv("mcp-auth sandbox --save --protocol 2026-07-28", {}, v, v.home).args], { env: v.env, cwd: v.home, stdio: ["ignore", "pipe", "pipe"] });
    p.stdout!.on("data", (d) => (text += d));
    p.stderr!.on("data", (d) => (text += d));
    try {
      await expect.poll(() => text, { timeout: 30_000 }).toContain("Saved profiles 'sandbox' and 'sandbox-login'");
      expect(text).toContain("speaks 2026-07-28 only");
      const r = await v.run(toArgv("mcp-auth doctor --profile sandbox", {}, v, v.home).args);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/MCP protocol era: speaks 2026-07-28/);
    } finally {
      const closed = new Promise((r) => p.once("close", r));
      p.kill("SIGINT");
      await closed;
    }
  });

  ran.add("mcp-auth sandbox");
  it("mcp-auth sandbox (without --save: prints the profiles add commands)", async () => {
    const other = newUser();
    const p = spawn(process.execPath, [BIN, "sandbox"], { env: other.env, cwd: other.home, stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    p.stdout!.on("data", (d) => (text += d));
    p.stderr!.on("data", (d) => (text += d));
    const closed = new Promise<number | null>((r) => p.once("close", (code) => r(code)));
    try {
      await expect.poll(() => text, { timeout: 30_000 }).toContain("Or restart with --save");
      p.kill("SIGINT");
      expect(await closed, text).toBe(0);
    } finally {
      p.kill("SIGKILL"); // never left running when an expectation failed
    }
    expect(text).toMatch(/profiles add sandbox --issuer http:\/\/127\.0\.0\.1:\d+ --client-id sandbox-m2m --client-secret-stdin/);
  });
});

describe("README: Install and set up: mcp-auth init", () => {
  let t: ThunderSim;
  let u: Sandboxed;
  beforeAll(async () => {
    t = await startThunder();
    u = newUser({ THUNDER_ADMIN_PASSWORD: "admin" });
  });
  afterAll(() => t?.close());
  steps({ user: () => u, map: sandboxMap }, [
    // No terminal here: init says which flags answer its questions (exit 2), writing nothing.
    { readme: "mcp-auth init", code: 2, check: (r) => expect(r.stderr).toContain("not an interactive terminal") },
    // Thunder's default URL (thunder.openchoreo.localhost:8080) is the simulator's.
    { readme: "mcp-auth init --provider thunder --admin-password-env THUNDER_ADMIN_PASSWORD --yes", extra: () => ["--url", t.url], check: (r) => expect(r.stderr).toContain('Created profile "thunder"') },
  ]);
  describe.skipIf(!hasChromium)("with a browser", () => {
    steps({ user: () => u, map: sandboxMap }, [
      {
        readme: "mcp-auth init --provider mcp --mcp-url https://mcp.example.com/mcp --login --clients claude --yes",
        env: () => ({ BROWSER: CHROMIUM }),
        check: () => expect(JSON.stringify(JSON.parse(file(u, ".claude.json")))).toContain(sb.mcpUrl),
      },
    ]);
  });
});

describe.skipIf(!hasChromium)("README: Start from an MCP server's URL", () => {
  let u: Sandboxed;
  beforeAll(() => {
    u = newUser();
  });
  steps({ user: () => u, map: () => ({ ...sandboxMap(), PROFILE: `127.0.0.1-${new URL(sb.mcpUrl).port}` }) }, [
    { readme: "mcp-auth login https://mcp.example.com/mcp", extra: () => ["--browser-command", CHROMIUM], check: (r) => expect(r.stderr).toContain(`saved as profile "127.0.0.1-${new URL(sb.mcpUrl).port}"`) },
    { readme: "mcp-auth token --profile mcp.example.com", check: (r) => expect(jwtPayload(r.stdout)).toMatchObject({ iss: sb.issuer, aud: sb.mcpUrl }) },
    { readme: "mcp-auth profiles add work --mcp-url https://mcp.example.com/mcp", check: () => expect(config(u).profiles.work).toMatchObject({ issuer: sb.issuer, mcpUrl: sb.mcpUrl }) },
    // Step-up by hand: PROFILE is the one `login <url>` saved; the sandbox's extra scope is mcp:write.
    { readme: "mcp-auth login PROFILE --scope files:write", extra: () => ["--browser-command", CHROMIUM] },
  ]);
  it("the step-up kept the scope", () => {
    expect(config(u).profiles[`127.0.0.1-${new URL(sb.mcpUrl).port}`].scopes).toContain("mcp:write");
  });
});

describe("README: Profiles", () => {
  let u: Sandboxed;
  beforeAll(() => {
    u = newUser();
  });
  const s: Section = { user: () => u, map: () => ({ ...sandboxMap(), NAME: "dev" }) };
  steps(s, [
    { readme: "mcp-auth profiles add ci --issuer https://idp.example.com --client-id mcp-ci  --client-secret-stdin --scope mcp:read --resource https://mcp.example.com/mcp", input: () => "sandbox-secret" },
    { readme: "mcp-auth profiles add ci2 --issuer https://idp.example.com --client-id mcp-ci --client-secret-env MY_SECRET", env: () => ({ MY_SECRET: "sandbox-secret" }) },
    {
      readme: "mcp-auth profiles add ci3 --issuer https://idp.example.com --client-id mcp-ci  --client-secret-cmd 'op read --no-newline op://Platform/mcp-ci/credential'",
      env: () => secretManagers(u),
      check: () => expect(config(u).profiles.ci3.clientSecretCommand).toEqual(["op", "read", "--no-newline", "op://Platform/mcp-ci/credential"]),
    },
    { readme: "mcp-auth profiles add me --issuer https://idp.example.com --client-id mcp-cli  --grant authorization_code --scope openid mcp:read --resource https://mcp.example.com/mcp" },
    { readme: "mcp-auth profiles list", check: (r) => expect(r.stdout).toMatch(/\*\s*ci\b/) },
    { readme: "mcp-auth profiles list --quiet", check: (r) => expect(r.stdout.split("\n").filter(Boolean).sort()).toEqual(["ci", "ci2", "ci3", "me"]) },
    { readme: "mcp-auth profiles show me", check: (r) => expect(r.stdout + r.stderr).not.toContain("sandbox-secret") },
    { readme: "mcp-auth profiles use me", check: () => expect(config(u).defaultProfile ?? config(u).default).toBe("me") },
    { readme: "mcp-auth profiles set me --scope openid mcp:write", check: () => expect(config(u).profiles.me.scopes).toEqual(["openid", "mcp:write"]) },
    { readme: "mcp-auth profiles rename me dev", check: () => expect(Object.keys(config(u).profiles).sort()).toEqual(["ci", "ci2", "ci3", "dev"]) },
    { readme: "mcp-auth profiles remove ci2", check: () => expect(secrets(u)["client-secret:ci2"]).toBeUndefined() },
    { readme: "mcp-auth status dev", check: (r) => expect(r.stdout).toContain("dev") },
    { readme: "mcp-auth profiles use NAME" },
  ]);
});

describe("README: Enterprise IdPs and hosted servers: Presets", () => {
  // The preset lines name the real vendors' hosts: saving a preset profile sends nothing, so they run
  // as shown. NAME is a Google preset profile against the Google simulator, for the lines that sign in.
  let u: Sandboxed;
  let google: VendorIdp;
  beforeAll(async () => {
    u = newUser();
    google = await startGoogle({ "sim.apps.googleusercontent.com": { secret: "GOCSPX-sim" } });
    const r = await runProcess(process.execPath, [BIN, "profiles", "add", "gsim", "--preset", "google", "--issuer", google.url, "--client-id", "sim.apps.googleusercontent.com", "--client-secret-env", "S"], { ...u.env, S: "GOCSPX-sim" }, undefined, 60_000, u.home);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => google?.close());
  const s: Section = { user: () => u, map: () => ({ NAME: "gsim" }) };
  const preset = (name: string) => config(u).profiles[name] as { issuer: string; extra: { preset: string }; resource?: string };
  steps(s, [
    {
      readme: "mcp-auth profiles add work --preset entra --tenant 0f3a1c2d-4b5e-4f60-8a7b-9c0d1e2f3a4b --client-id 11111111-2222-3333-4444-555555555555 --scope api://mcp-server/.default --mcp-url https://mcp.example.com/mcp", check: () => {
        expect(preset("work")).toMatchObject({ issuer: "https://login.microsoftonline.com/0f3a1c2d-4b5e-4f60-8a7b-9c0d1e2f3a4b/v2.0", extra: { preset: "entra" } });
        expect(preset("work").resource).toBeUndefined(); // Entra refuses RFC 8707 resource
      },
    },
    { readme: "mcp-auth profiles add gmail --preset google --client-id 1234-abc.apps.googleusercontent.com --client-secret-env GOOGLE_CLIENT_SECRET", env: () => ({ GOOGLE_CLIENT_SECRET: "GOCSPX-readme" }), check: () => expect(preset("gmail")).toMatchObject({ issuer: "https://accounts.google.com", authorizeParams: { access_type: "offline", prompt: "consent" } }) },
    { readme: "mcp-auth profiles add okta --preset okta --domain dev-123456.okta.com --client-id 0oa1b2c3d4 --auth-server default", check: () => expect(preset("okta").issuer).toBe("https://dev-123456.okta.com/oauth2/default") },
    { readme: "mcp-auth profiles add auth0 --preset auth0 --domain example.us.auth0.com --audience https://mcp.example.com/mcp --client-id AbC123", check: () => expect(preset("auth0")).toMatchObject({ issuer: "https://example.us.auth0.com", audience: "https://mcp.example.com/mcp" }) },
    { readme: "mcp-auth profiles add gh --preset github --client-id Iv23liAbCdEf", check: () => expect(preset("gh")).toMatchObject({ grant: "device_code", extra: { preset: "github", deviceAuthorizationEndpoint: "https://github.com/login/device/code" } }) },
    { readme: "mcp-auth profiles set NAME --authorize-param access_type=offline --authorize-param prompt=consent", check: () => expect(preset("gsim")).toMatchObject({ authorizeParams: { access_type: "offline", prompt: "consent" } }) },
    { readme: "mcp-auth login NAME", extra: () => ["--browser-command", FETCH_BROWSER], check: (r) => expect(r.stderr).toContain("refreshable") },
    { readme: "mcp-auth doctor --profile NAME", check: (r) => expect(r.stdout + r.stderr).toMatch(/Google quirks.*access_type=offline and prompt=consent; a refresh token is stored/) },
  ]);
});

describe.skipIf(!hasChromium)("README: Enterprise IdPs and hosted servers: redirect URIs, the ID token, extra headers", () => {
  // "dev" is a person's profile at the sandbox whose client (registered for these lines) allows exactly
  // two redirect URIs, on the free ports that stand for 8400: 127.0.0.1…/oauth/callback and localhost…/cb.
  // The slack and agentcore lines name real vendors' hosts: saving a profile sends nothing.
  let u: Sandboxed;
  let project: string;
  let exact: string;
  let viaLocalhost: string;
  let clientId: string;
  beforeAll(async () => {
    u = newUser();
    project = join(u.home, "project");
    mkdirSync(project);
    exact = `http://127.0.0.1:${await freePort()}/oauth/callback`;
    viaLocalhost = `http://localhost:${await freePort()}/cb`;
    clientId = (await sb.registerClient({ application_type: "web", token_endpoint_auth_method: "none", grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], redirect_uris: [exact, viaLocalhost] })).client_id;
    const r = await u.run(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", clientId, "--grant", "authorization_code", "--scope", "openid", "mcp:read", "--resource", sb.mcpUrl, "--mcp-url", sb.mcpUrl]);
    expect(r.code, r.stderr).toBe(0);
  });
  const s: Section = {
    user: () => u,
    cwd: () => project,
    map: () => ({ "http://127.0.0.1:8400/oauth/callback": exact, "http://localhost:8400/cb": viaLocalhost }),
  };
  const rpc = [
    { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "readme", version: "1" } } },
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", id: 2, method: "tools/list" },
  ]
    .map((m) => JSON.stringify(m))
    .join("\n");
  steps(s, [
    { readme: "mcp-auth profiles add slack --issuer https://slack.com --client-id ID --redirect-uri http://localhost:3118/callback", check: () => expect(config(u).profiles.slack).toMatchObject({ issuer: "https://slack.com", redirectUri: "http://localhost:3118/callback" }) },
    // Before the fix: the default profile "dev" sends the any-port 127.0.0.1 URI, which its client refuses.
    {
      readme: "mcp-auth doctor",
      code: 1,
      check: (r) => {
        expect(r.stdout).toContain("oidc-provider refused redirect_uri http://127.0.0.1:");
        expect(r.stdout).toContain("mcp-auth profiles set dev --redirect-uri URI");
      },
    },
    { readme: "mcp-auth profiles set dev --redirect-uri http://127.0.0.1:8400/oauth/callback", check: () => expect(config(u).profiles.dev.redirectUri).toBe(exact) },
    {
      readme: "mcp-auth login dev --redirect-uri http://localhost:8400/cb",
      extra: () => ["--browser-command", CHROMIUM],
      check: (r) => {
        expect(r.stderr).toContain('Logged in: profile "dev"');
        expect(config(u).profiles.dev.redirectUri).toBe(viaLocalhost); // saved once the login worked
      },
    },
    {
      readme: "mcp-auth profiles add agentcore --issuer https://cognito-idp.REGION.amazonaws.com/POOL_ID --client-id APP_CLIENT_ID --grant authorization_code --use-id-token",
      check: () => expect(config(u).profiles.agentcore).toMatchObject({ useIdToken: true, scopes: expect.arrayContaining(["openid"]) }),
    },
    // dev hands out the access token; once, its ID token: issued to dev's client, for the person.
    { readme: "mcp-auth token --profile dev --use-id-token", check: (r) => expect(jwtPayload(r.stdout)).toMatchObject({ iss: sb.issuer, aud: clientId, sub: "alice" }) },
    // (that the headers reach the server: test/headers.test.ts)
    { readme: "mcp-auth proxy --profile dev --header 'X-Tenant: acme' --header-env X-Api-Key=ACME_API_KEY", env: () => ({ ACME_API_KEY: "k-readme-1" }), input: () => `${rpc}\n`, check: (r) => {
      const ids = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { id?: number; result?: unknown });
      expect(ids.filter((m) => m.result).map((m) => m.id)).toEqual([1, 2]);
    } },
    {
      readme: "mcp-auth add-client claude --profile dev --header 'X-Tenant: acme' --header-env X-Api-Key=ACME_API_KEY",
      env: () => ({ ACME_API_KEY: "k-readme-1" }),
      check: () => {
        const entry = file(u, ".claude.json");
        expect(entry).toContain("X-Tenant: acme");
        expect(entry).toContain("X-Api-Key=ACME_API_KEY"); // the variable's name, never its value
        expect(entry).not.toContain("k-readme-1");
      },
    },
    {
      readme: "mcp-auth token --profile dev --format headers-json --header 'X-Tenant: acme'",
      check: (r) => {
        const h = JSON.parse(r.stdout) as Record<string, string>;
        expect(Object.keys(h)).toEqual(["X-Tenant", "Authorization"]);
        expect(h["X-Tenant"]).toBe("acme");
        expect(jwtPayload(h.Authorization!.replace(/^Bearer /, ""))).toMatchObject({ aud: sb.mcpUrl });
      },
    },
  ]);
});

describe.skipIf(!hasChromium)("README: Enterprise IdPs and hosted servers: enterprise-managed authorization (ID-JAG)", () => {
  // acme.okta.example is the enterprise IdP of test/simulators/enterprise-idp.ts (a real oidc-provider
  // signing the person in, with the ID-JAG exchange), auth.chat.example the MCP server's authorization
  // server (the real oidc-provider with the JWT-bearer grant); the MCP server is never contacted.
  const MCP = "https://mcp.chat.invalid/mcp";
  let u: Sandboxed;
  let ent: EnterpriseSetup;
  beforeAll(async () => {
    u = newUser();
    ent = await startEnterprise({ mcpUrl: MCP });
  });
  afterAll(() => ent?.close());
  const s: Section = {
    user: () => u,
    map: () => ({ "https://acme.okta.example": ent.idp.issuer, IDP_CLIENT_ID: ent.idp.clientId, "https://auth.chat.example": ent.as.issuer, CHAT_CLIENT_ID: ent.as.clientId, "https://mcp.chat.example/mcp": MCP }),
  };
  steps(s, [
    { readme: "mcp-auth profiles add acme --issuer https://acme.okta.example --client-id IDP_CLIENT_ID --grant authorization_code --scope openid" },
    { readme: "mcp-auth profiles add chat --issuer https://auth.chat.example --client-id CHAT_CLIENT_ID --client-secret-env CHAT_SECRET --mcp-url https://mcp.chat.example/mcp --enterprise acme", env: () => ({ CHAT_SECRET: ent.as.clientSecret }) },
    {
      readme: "mcp-auth login --enterprise acme",
      extra: () => ["--browser-command", CHROMIUM],
      env: () => ({ CHAT_SECRET: ent.as.clientSecret }),
      check: (r) => {
        expect(r.stderr).toContain(`Signed in to the enterprise IdP ${ent.idp.issuer}`);
        expect(r.stderr).toContain("✓ chat: token valid for");
        expect(ent.idp.exchanges.at(-1)!.get("audience")).toBe(ent.as.issuer);
      },
    },
    { readme: "mcp-auth token --profile chat", env: () => ({ CHAT_SECRET: ent.as.clientSecret }), check: (r) => expect(jwtPayload(r.stdout)).toMatchObject({ iss: ent.as.issuer, aud: MCP }) },
  ]);
});

describe("README: Bootstrapping an IdP: Thunder", () => {
  let t: ThunderSim;
  let u: Sandboxed;
  beforeAll(async () => {
    t = await startThunder();
    u = newUser();
  });
  afterAll(() => t?.close());
  steps({ user: () => u, map: () => ({}) }, [
    // The default --url (thunder.openchoreo.localhost:8080) is the simulator's.
    { readme: "mcp-auth bootstrap thunder --admin-password-stdin", input: () => "admin", extra: () => ["--url", t.url], check: (r) => expect(r.stderr).toContain("✓ first token") },
    { readme: "mcp-auth token --provider thunder", check: (r) => expect(jwtPayload(r.stdout).iss).toBe(t.url) },
  ]);
});

describe("README: Bootstrapping an IdP: Keycloak", () => {
  let k: KeycloakSim;
  let u: Sandboxed;
  beforeAll(async () => {
    k = await startKeycloak({ realms: ["kcp"] });
    u = newUser({ KC_ADMIN_PASSWORD: "admin" });
  });
  afterAll(() => k?.close());
  const s: Section = {
    user: () => u,
    map: () => ({ "https://auth.example.com": k.url, "…": ["--url", k.url, "--realm", "kcp", "--admin-password-env", "KC_ADMIN_PASSWORD"] }),
  };
  steps(s, [
    { readme: "mcp-auth bootstrap keycloak --url https://auth.example.com --realm kcp --admin-password-env KC_ADMIN_PASSWORD  --mcp-host mcp.example.com --trust-loopback --audience kcp --create-client mcp-auth-ci", check: (r) => expect(r.stderr).toContain('✓ token audience: aud contains "kcp"') },
    {
      readme: "mcp-auth bootstrap keycloak --url https://auth.example.com --realm kcp --admin-password-env KC_ADMIN_PASSWORD  --mcp-host mcp.example.com --audience kcp --print-server-config > config.toml",
      check: () =>
        expect(parseToml(file(u, "config.toml"))).toMatchObject({ require_oauth: true, oauth_audience: "kcp", authorization_url: `${k.url}/realms/kcp`, server_url: "https://mcp.example.com", oauth_scopes: expect.arrayContaining(["mcp-audience"]) }),
    },
  ]);
  steps(s, [
    {
      readme: "mcp-auth bootstrap keycloak … --create-client mcp-ci --client-auth private-key-jwt",
      check: () => {
        expect(config(u).profiles["mcp-ci"] ?? Object.values(config(u).profiles).find((p) => (p as { clientId?: string }).clientId === "mcp-ci")).toBeTruthy();
        expect(Object.keys(secrets(u)).filter((k) => k.startsWith("client-secret:") && k.includes("mcp-ci"))).toEqual([]);
      },
    },
  ]);
});

describe("README: Bootstrapping an IdP: Oracle OCI IAM", () => {
  // Found in the README rather than copied, so a rename there (the user's profile, the .env flag)
  // needs no edit here.
  const shown = readmeCommands(README);
  const pick = (re: RegExp) => shown.find((c) => re.test(c)) ?? `(no README line matches ${re})`;
  const bootstrapLine = pick(/^mcp-auth bootstrap oci /);
  const userProfile = /^mcp-auth profiles add (\S+) --kind oci /.exec(pick(/^mcp-auth profiles add \S+ --kind oci /))?.[1] ?? "oci";
  const appProfile = /--profile (\S+)/.exec(bootstrapLine)?.[1] ?? "oci";
  const dotenv = /--(?:dotenv|env-file) (\S+)/.exec(bootstrapLine)?.[1] ?? ".env";
  const sessionDir = /--oci-session-dir ~\/(\S+)/;
  let o: OciSim;
  let u: Sandboxed;
  let port: number;
  beforeAll(async () => {
    o = await startOci({ adminClientId: "admin-app", adminClientSecret: "admin-app-secret" });
    u = newUser({ OCI_ADMIN_SECRET: "admin-app-secret", ...o.env }); // the domain is reached through the simulator's proxy
    port = await freePort();
    // Node itself reads `--env-file X` anywhere in argv and exits 9 ("node: X: not found") before
    // mcp-auth runs when X does not exist yet (nodejs/node#54232): with that spelling (now a hidden
    // alias of --dotenv) the sample server's .env must already be there.
    if (bootstrapLine.includes("--env-file")) writeFileSync(join(u.home, dotenv), "# Oracle's sample MCP server\nPORT=8000\n");
  });
  afterAll(() => o?.close());
  const app = () => o.app("My MCP server");
  // The bootstrap's own (client-credentials) profile must not take the name the README gives the
  // user's profile: `profiles add` would exit 2 ("already exists").
  const appProfileHere = appProfile === userProfile ? "app" : appProfile;
  const clientId = () => (u && existsSync(join(u.configDir, "config.json")) ? (config(u).profiles[appProfileHere]?.clientId ?? "CLIENT_ID") : "CLIENT_ID");
  const s: Section = {
    user: () => u,
    map: () => ({ "https://idcs-….identity.oraclecloud.com": o.url, ID: "admin-app", CLIENT_ID: clientId(), "8765": String(port) }),
  };
  const tokenLine = pick(new RegExp(`^mcp-auth token --profile ${userProfile} --exchange oci-upst`));
  steps(s, [
    {
      readme: bootstrapLine,
      extra: () => (appProfileHere === appProfile ? [] : ["--profile", appProfileHere]),
      check: () => {
        expect(file(u, dotenv)).toContain(`IAM_CLIENT_SECRET=${app()!.clientSecret}`);
        expect(statSync(join(u.home, dotenv)).mode & 0o777).toBe(0o600);
        // What the README then asks the admin to do: register the profile's loopback redirect on the app.
        app()!.redirectUris.push(`http://127.0.0.1:${port}/callback`);
      },
    },
    { readme: pick(/^mcp-auth profiles add \S+ --kind oci /), input: () => app()!.clientSecret },
    // The simulated domain's signed-in user approves at once.
    { readme: `mcp-auth login ${userProfile}`, extra: () => ["--browser-command", o.browserCommand] },
    {
      readme: tokenLine,
      check: (r) => {
        const dir = sessionDir.exec(tokenLine)?.[1] ?? "";
        expect(file(u, join(dir, "token")).trim()).toBe(r.stdout.trim());
        expect(r.stderr).toMatch(/key_file=.*oci_api_key\.pem/);
      },
    },
  ]);
});

describe("README: Bootstrapping an IdP: OpenProject", () => {
  let op: OpenProjectSim;
  let u: Sandboxed;
  let port: number;
  let created: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    op = await startOpenProject();
    u = newUser();
    port = await freePort();
  });
  afterAll(() => op?.close());
  const s: Section = { user: () => u, map: () => ({ "https://openproject.example.com": op.url, ID: created?.clientId ?? "ID" }) };
  steps(s, [
    { readme: "mcp-auth bootstrap openproject --url https://openproject.example.com --oauth", check: (r) => expect(r.stderr).toContain('Scopes: tick "api_v3" and "mcp"') },
  ]);
  it("(the admin creates the application the steps describe, on a free redirect port)", () => {
    created = op.createApp({ name: "MCP client", redirectUris: [`http://127.0.0.1:${port}/callback`], scopes: ["api_v3", "mcp"] });
  });
  steps(s, [
    // --redirect-port: the README's port 33418 is a free one here.
    { readme: "mcp-auth bootstrap openproject --url https://openproject.example.com --oauth --client-id ID --client-secret-stdin", input: () => created.clientSecret, extra: () => ["--redirect-port", String(port)], check: (r) => expect(r.stderr).toContain("✓ client secret: accepted by /oauth/token") },
    // OpenProject's signed-in user approves at once.
    { readme: "mcp-auth login openproject", extra: () => ["--browser-command", FETCH_BROWSER] },
    { readme: "mcp-auth token --profile openproject", check: (r) => expect(r.stdout.trim()).not.toBe("") },
  ]);
  describe("a personal API token", () => {
    let v: Sandboxed;
    beforeAll(() => {
      v = newUser();
    });
    steps({ user: () => v, map: () => ({ "https://openproject.example.com": op.url }) }, [
      { readme: "mcp-auth bootstrap openproject --url https://openproject.example.com --api-token-stdin", input: () => op.createApiToken("alice") },
    ]);
  });
  describe("--create through the admin web UI", () => {
    let w: Sandboxed;
    let fresh: OpenProjectSim;
    beforeAll(async () => {
      fresh = await startOpenProject();
      fresh.users.push({ id: 3, login: "bot", admin: false } as (typeof fresh.users)[number]);
      w = newUser();
    });
    afterAll(() => fresh?.close());
    steps({ user: () => w, map: () => ({ "https://openproject.example.com": fresh.url }) }, [
      { readme: "mcp-auth bootstrap openproject --url https://openproject.example.com --create --admin-user admin  --admin-password-stdin --grant client_credentials --client-credentials-user bot", input: () => "admin-password" },
    ]);
  });
});

describe("README: Bootstrapping an IdP: OctoPerf", () => {
  let sim: OctoPerfSim;
  let u: Sandboxed;
  beforeAll(async () => {
    sim = await startOctoPerf();
    u = newUser();
  });
  afterAll(() => sim?.close());
  steps({ user: () => u, map: () => ({ "https://octoperf.example.com": sim.url }) }, [
    // The simulator's signed-in user approves at once.
    { readme: "mcp-auth bootstrap octoperf --url https://octoperf.example.com", extra: () => ["--browser-command", FETCH_BROWSER], check: (r) => expect(r.stderr).toContain("MCP server accepts the token") },
  ]);
});

describe("README: Tokens", () => {
  let u: Sandboxed;
  beforeAll(() => {
    u = newUser();
  });
  const env = () => ({ GITHUB_ENV: join(u.home, "github_env") });
  const s: Section = { user: () => u, map: sandboxMap };
  steps(s, [
    // The default profile: the first one created (the README's client-credentials "ci").
    { readme: "mcp-auth profiles add ci --issuer https://idp.example.com --client-id mcp-ci  --client-secret-stdin --scope mcp:read --resource https://mcp.example.com/mcp", input: () => "sandbox-secret" },
    { readme: "mcp-auth token", check: (r) => expect(jwtPayload(r.stdout)).toMatchObject({ iss: sb.issuer, aud: sb.mcpUrl }) },
    { readme: "mcp-auth token --format json", check: (r) => expect(Object.keys(JSON.parse(r.stdout)).sort()).toEqual(["access_token", "expires_at", "expires_in", "profile", "scope", "token_type"]) },
    { readme: "mcp-auth token --format header", check: (r) => expect(r.stdout).toMatch(/^Authorization: Bearer \S+\n$/) },
    { readme: "mcp-auth token --format headers-json", check: (r) => expect(JSON.parse(r.stdout).Authorization).toMatch(/^Bearer /) },
    { readme: "mcp-auth token --format env --env-name K8S_TOKEN", check: (r) => expect(r.stdout).toMatch(/^export K8S_TOKEN='[^']+'\n$/) },
    { readme: "mcp-auth token --format github", env, check: (r) => { expect(r.stdout).toContain("::add-mask::"); expect(file(u, "github_env")).toMatch(/MCP_AUTH_TOKEN/); } },
  ]);
});

describe("README: CI without a config file", () => {
  let u: Sandboxed;
  beforeAll(() => {
    u = newUser({ MCP_AUTH_CLIENT_SECRET: "sandbox-secret" });
  });
  const env = () => ({ GITHUB_ENV: join(u.home, "github_env") });
  steps({ user: () => u, map: sandboxMap }, [
    { readme: "mcp-auth token --issuer https://idp.example.com --client-id mcp-ci --scope mcp:read --format github", env, check: () => expect(file(u, "github_env")).toMatch(/MCP_AUTH_TOKEN/) },
    { readme: "mcp-auth token --issuer https://idp.example.com --client-id mcp-ci", check: (r) => expect(jwtPayload(r.stdout).iss).toBe(sb.issuer) },
    {
      readme: "mcp-auth token --issuer https://idp.example.com --client-id mcp-ci  --client-secret-cmd 'vault kv get -mount=secret -field=client_secret mcp/ci'",
      env: () => ({ ...secretManagers(u), MCP_AUTH_CLIENT_SECRET: "" }),
      check: (r) => expect(jwtPayload(r.stdout).iss).toBe(sb.issuer),
    },
    { readme: "mcp-auth token --issuer https://idp.example.com --client-id mcp-ci --format github", env },
  ]);
});

describe.skipIf(!hasChromium)("README: Logging in", () => {
  let u: Sandboxed;
  let port: number;
  beforeAll(async () => {
    u = newUser();
    port = await freePort();
  });
  const s: Section = { user: () => u, map: () => ({ ...sandboxMap(), "8765": String(port) }) };
  const browser = () => ["--browser-command", CHROMIUM];
  steps(s, [
    { readme: "mcp-auth profiles add me --issuer https://idp.example.com --client-id mcp-cli  --grant authorization_code --scope openid mcp:read --resource https://mcp.example.com/mcp" },
    { readme: "mcp-auth login me", extra: browser, check: (r) => expect(r.stderr).toContain('Logged in: profile "me"') },
    { readme: "mcp-auth login me --port 8765", extra: browser, check: (r) => expect(r.stderr).toContain(`http://127.0.0.1:${port}/callback`) },
  ]);
  ran.add("mcp-auth login me --no-browser");
  it("mcp-auth login me --no-browser (the person opens the printed URL)", async () => {
    const inv = toArgv("mcp-auth login me --no-browser", s.map(), u, u.home);
    const r = await runWatching(u, inv.args, /sign in:\n\s+(\S+)/, async (m) => {
      const b = await runProcess("sh", ["-c", `${CHROMIUM} "$0"`, m[1]!], { PATH: process.env.PATH, HOME: u.home });
      expect(b.code, b.stderr).toBe(0);
    });
    expect(r.code, r.stderr).toBe(0);
  });
  ran.add("mcp-auth login me --device");
  it("mcp-auth login me --device (the code typed on another device)", async () => {
    const inv = toArgv("mcp-auth login me --device", s.map(), u, u.home);
    const r = await runWatching(u, inv.args, /open (\S+) and enter the code: (\S+)/, async (m) => {
      const b = await runProcess("sh", ["-c", `${CHROMIUM} "$0"`, m[1]!], { PATH: process.env.PATH, HOME: u.home, BROWSER_USER_CODE: m[2]! });
      expect(b.code, b.stderr).toBe(0);
    });
    expect(r.code, r.stderr).toBe(0);
  });
  ran.add("mcp-auth login me --paste");
  it("mcp-auth login me --paste (signed in on another machine, the address pasted back)", async () => {
    const inv = toArgv("mcp-auth login me --paste", s.map(), u, u.home);
    const child = spawn(process.execPath, [BIN, ...inv.args], { env: u.env, cwd: u.home });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const closed = new Promise<number | null>((r) => child.on("close", r));
    await expect.poll(() => stderr, { timeout: 30_000 }).toMatch(/sign in:\n\s+\S+/);
    // The browser lands on the loopback callback, which nothing answers there; BROWSER_PASTE prints its address.
    const b = await runProcess("sh", ["-c", `${CHROMIUM} "$0"`, /sign in:\n\s+(\S+)/.exec(stderr)![1]!], { PATH: process.env.PATH, HOME: u.home, BROWSER_PASTE: "1" });
    expect(b.code, b.stderr).toBe(0);
    child.stdin.end(b.stdout);
    expect(await closed, stderr).toBe(0);
    expect(stderr).toContain('Logged in: profile "me"');
  });
  steps(s, [
    // Bare `login`: the default profile (me, the only one).
    { readme: "mcp-auth login", extra: browser },
    { readme: "mcp-auth logout me --revoke", check: (r) => expect(r.stderr).toMatch(/revoked/i) },
    {
      readme: "mcp-auth logout me --revoke --force",
      // Signed in again, and the IdP cannot be reached: the tokens are forgotten here anyway.
      before: async () => {
        expect((await u.run(["login", "me", "--browser-command", CHROMIUM])).code).toBe(0);
        sb.breakIdp("500");
      },
      check: async (r) => {
        sb.breakIdp(undefined);
        expect(r.stderr).toContain('Logged out of "me"');
        expect(JSON.parse((await u.run(["status", "me", "--json"])).stdout)[0]).toMatchObject({ profile: "me", token: "none" });
      },
    },
    { readme: "mcp-auth logout --all" },
  ]);
});

describe("README: Secretless CI", () => {
  let u: Sandboxed;
  let ci: CiIssuer;
  let as: FederatedAs;
  let ci2Id = "";
  beforeAll(async () => {
    u = newUser();
    ci = await startCiIssuer();
    as = await startFederatedAs({ trust: { issuer: ci.issuer, jwks: ci.jwks, subject: CI_SUBJECT }, clientId: "mcp-ci" });
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    writeFileSync(join(u.home, "key.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
  });
  afterAll(async () => {
    await ci?.close();
    await as?.close();
  });
  const s: Section = {
    user: () => u,
    map: () => ({ "https://idp.example.com": sb.issuer, "https://mcp.example.com/mcp": sb.mcpUrl, "https://auth.example.com/realms/mcp": as.issuer, ID: ci2Id }),
  };
  steps(s, [
    { readme: "mcp-auth profiles add ci --issuer https://idp.example.com --client-id mcp-ci --resource https://mcp.example.com/mcp  --client-auth private-key-jwt --generate-key", check: (r) => expect(r.stdout + r.stderr).toContain('"kty"') },
    {
      readme: "mcp-auth profiles add ci2 --issuer https://idp.example.com --client-auth private-key-jwt --key-file key.pem",
      check: async (r) => {
        // The IdP is given the public JWK printed and assigns the client id.
        const jwk = JSON.parse(/\{[\s\S]*\}/.exec(r.stdout)![0]);
        const reg = await sb.registerClient({ token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [jwk.jwk ?? jwk] }, grant_types: ["client_credentials"], response_types: [], redirect_uris: [], scope: "mcp:read mcp:write" });
        ci2Id = reg.client_id;
      },
    },
    { readme: "mcp-auth profiles set ci2 --client-id ID" },
    { readme: "mcp-auth profiles rotate-key ci" },
    {
      readme: "mcp-auth token --issuer https://auth.example.com/realms/mcp --client-id mcp-ci --assertion-from github-actions --format github",
      env: () => ({ ...ci.env, GITHUB_ENV: join(u.home, "github_env") }),
      check: () => expect(file(u, "github_env")).toMatch(/MCP_AUTH_TOKEN/),
    },
  ]);
  it("(the key-file profile gets a token signed with key.pem)", async () => {
    const r = await u.run(["token", "--profile", "ci2"]);
    expect(r.code, r.stderr).toBe(0);
    expect(jwtPayload(r.stdout)).toMatchObject({ iss: sb.issuer, client_id: ci2Id });
  });
});

describe.skipIf(!hasChromium)("README: doctor, decode, MCP clients, proxy (profile dev)", () => {
  let u: Sandboxed;
  let project: string;
  beforeAll(() => {
    u = newUser();
    project = join(u.home, "project");
    mkdirSync(project);
  });
  const s: Section = { user: () => u, map: () => ({ ...sandboxMap(), P: "dev", "…": ["--config-dir", u.configDir] }), cwd: () => project };
  const rpc = [
    { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "readme", version: "1" } } },
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", id: 2, method: "tools/list" },
  ]
    .map((m) => JSON.stringify(m))
    .join("\n");
  const answered = (r: RunResult) => {
    const ids = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { id?: number; result?: unknown });
    expect(ids.filter((m) => m.result).map((m) => m.id)).toEqual([1, 2]);
  };
  steps(s, [
    // The Profiles section's "dev": the person's profile "me", renamed, signed in, with its MCP URL.
    { readme: "mcp-auth profiles add me --issuer https://idp.example.com --client-id mcp-cli  --grant authorization_code --scope openid mcp:read --resource https://mcp.example.com/mcp" },
    { readme: "mcp-auth profiles rename me dev" },
  ]);
  it("(profiles set dev --mcp-url: the server the clients below connect to)", async () => {
    expect((await u.run(["profiles", "set", "dev", "--mcp-url", sb.mcpUrl])).code).toBe(0);
  });
  steps(s, [{ readme: "mcp-auth login", extra: () => ["--browser-command", CHROMIUM] }]);
  it("(token.txt: a token saved for doctor --token-stdin)", async () => {
    const t = await u.run(["token", "--profile", "dev"]);
    expect(t.code, t.stderr).toBe(0);
    writeFileSync(join(project, "token.txt"), t.stdout);
  });
  steps(s, [
    { readme: "mcp-auth doctor --profile dev", check: (r) => expect(r.stdout + r.stderr).toContain("✓") },
    { readme: "mcp-auth doctor --profile P", check: (r) => expect(r.stdout).toContain("token obtainable: for profile dev") },
    { readme: "mcp-auth doctor --url https://mcp.example.com/mcp --token-stdin < token.txt", check: (r) => expect(r.stdout).toContain("✓ MCP tools/list with the token") },
    { readme: "mcp-auth decode --profile dev", check: (r) => expect(r.stdout).toContain(sb.issuer) },
    { readme: "mcp-auth add-client claude --profile dev", check: () => expect(file(u, ".claude.json")).toContain("headersHelper") },
    { readme: "mcp-auth add-client claude --profile dev --scope project", check: () => expect(JSON.parse(readFileSync(join(project, ".mcp.json"), "utf8")).mcpServers.dev).toMatchObject({ type: "stdio", command: "mcp-auth" }) },
    { readme: "mcp-auth add-client cursor --profile dev", check: () => expect(file(u, ".cursor/mcp.json")).toContain("proxy") },
    { readme: "mcp-auth add-client vscode --profile dev --scope project --dry-run", check: () => expect(existsSync(join(project, ".vscode"))).toBe(false) },
    { readme: "mcp-auth add-client claude-desktop --profile dev", check: () => expect(file(u, ".config/Claude/claude_desktop_config.json")).toContain("proxy") },
    { readme: "mcp-auth clients", check: (r) => expect(r.stdout).toMatch(/Claude Desktop[\s\S]*dev/) },
    { readme: "mcp-auth remove-client cursor --name dev", check: () => expect(existsSync(join(u.home, ".cursor/mcp.json"))).toBe(false) }, // it did not exist before,
    // What the Claude Code entry's headersHelper runs ("…" is its --config-dir, the environment's here).
    { readme: "mcp-auth … token --format headers-json", extra: () => ["--profile", "dev"], check: (r) => expect(JSON.parse(r.stdout).Authorization).toMatch(/^Bearer /) },
    // An MCP client on stdio: initialize, initialized, tools/list, then stdin closes (exit 0).
    { readme: "mcp-auth proxy --profile dev [--url https://mcp.example.com/mcp]", input: () => `${rpc}\n`, check: answered },
    { readme: "mcp-auth proxy", input: () => `${rpc}\n`, check: answered },
  ]);

  // stdio servers and static-header clients: the README's servers are the SDK-built stdio server of
  // test/fixtures/stdio/ (it answers the same initialize and tools/list); "gh" is the profile "dev".
  const SERVER = join(ROOT, "test", "fixtures", "stdio", "token-server.mjs");
  const stdio: Section = { ...s, map: () => ({ ...s.map(), gh: "dev", node: process.execPath, "server.js": SERVER, "github-mcp-server": [process.execPath, SERVER], "my-server": [process.execPath, SERVER] }) };
  steps(stdio, [
    { readme: "mcp-auth exec --profile dev -- node server.js", input: () => `${rpc}\n`, check: answered },
    { readme: "mcp-auth exec --profile gh --env-name GITHUB_PERSONAL_ACCESS_TOKEN -- github-mcp-server stdio", input: () => `${rpc}\n`, check: answered },
    { readme: "mcp-auth exec --profile dev --format header -- my-server", input: () => `${rpc}\n`, check: answered },
    {
      readme: "mcp-auth add-client claude --profile gh --stdio-command 'github-mcp-server stdio' --env-name GITHUB_PERSONAL_ACCESS_TOKEN",
      check: () => expect(file(u, ".claude.json")).toMatch(/"exec",\s*"--profile",\s*"dev",\s*"--env-name",\s*"GITHUB_PERSONAL_ACCESS_TOKEN",\s*"--",\s*"github-mcp-server",\s*"stdio"\s*\]/),
    },
  ]);
  for (const readme of ["mcp-auth serve --profile dev", "mcp-auth serve --profile dev --port 8931 --client cursor"]) {
    ran.add(readme);
    it(readme, async () => {
      const port = String(await freePort());
      const args = toArgv(readme, { ...s.map(), "8931": port }, u, project).args;
      let child: ReturnType<typeof spawn> | undefined;
      let failed: unknown;
      let asked = false;
      const r = await new Promise<RunResult>((resolve) => {
        child = spawn(process.execPath, [BIN, ...args], { env: u.env, cwd: project, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stderr!.on("data", (d) => (stderr += d));
        child.stdout!.on("data", (d) => {
          stdout += d;
          if (stdout.includes("\n") && !asked && (asked = true)) void client(stdout).catch((e: unknown) => (failed = e)).finally(() => child!.kill("SIGTERM"));
        });
        child.on("close", (code) => resolve({ code, stdout, stderr }));
      });
      if (failed) throw failed;
      expect(r.code, r.stderr).toBe(0);
      async function client(stdout: string) {
        // The client's side: the URL and the header printed, an initialize through them.
        const printed = JSON.parse(stdout) as { url: string; headers: Record<string, string> };
        if (readme.includes("--port")) expect(printed.url).toBe(`http://127.0.0.1:${port}/mcp`);
        if (readme.includes("--client")) expect(JSON.parse(file(u, ".cursor/mcp.json")).mcpServers.dev).toEqual({ url: printed.url, headers: printed.headers });
        const init = await fetch(printed.url, { method: "POST", headers: { ...printed.headers, "content-type": "application/json", accept: "application/json, text/event-stream" }, body: rpc.split("\n")[0] });
        expect(init.status).toBe(200);
      }
    });
  }
});

describe("README: Shell completion, help", () => {
  let u: Sandboxed;
  beforeAll(() => {
    u = newUser();
    // Where the shells look (created as a user would, before redirecting into them).
    for (const d of [".local/share/bash-completion/completions", "zfunc", ".config/fish/completions"]) mkdirSync(join(u.home, d), { recursive: true });
  });
  steps({ user: () => u, map: () => ({ "${fpath[1]}/_mcp-auth": "~/zfunc/_mcp-auth" }) }, [
    { readme: "mcp-auth completion bash > ~/.local/share/bash-completion/completions/mcp-auth", check: () => expect(file(u, ".local/share/bash-completion/completions/mcp-auth")).toContain("complete") },
    { readme: 'mcp-auth completion zsh > "${fpath[1]}/_mcp-auth"', check: () => expect(file(u, "zfunc/_mcp-auth")).toContain("#compdef") },
    { readme: "mcp-auth completion fish > ~/.config/fish/completions/mcp-auth.fish", check: () => expect(file(u, ".config/fish/completions/mcp-auth.fish")).toContain("complete -c mcp-auth") },
    { readme: "mcp-auth --help", check: (r) => expect(r.stdout).toContain("Usage: mcp-auth") },
  ]);
});

describe("README: every command it shows", () => {
  it("is run above or excluded with a reason; the table names no command the README lacks", () => {
    const shown = readmeCommands(README);
    expect(shown.length).toBeGreaterThan(40);
    const missing = shown.filter((c) => !ran.has(c) && !(c in EXCLUDED));
    expect(missing, "README commands neither run in test/readme-run.test.ts nor excluded with a reason").toEqual([]);
    const stale = [...ran, ...Object.keys(EXCLUDED)].filter((c) => !shown.includes(c));
    expect(stale, "commands run here that the README no longer shows").toEqual([]);
    // Most are really run.
    expect(Object.keys(EXCLUDED).length).toBeLessThan(shown.length / 10);
  });
});
