// `npm run bench`: what a cached `mcp-auth token` costs next to starting Node, in the same run, and
// what a token that needs one request to the IdP costs (client credentials on a cache miss, a
// refresh), with and without NODE_EXTRA_CA_CERTS; plus peak memory and the IdP requests of the cold,
// warm, cached and parallel cases. Prints a report; asserts nothing (timings depend on the machine).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startSandboxProcess } from "./bench-sandbox.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "bin", "mcp-auth.js");
const runs = Number(process.env.BENCH_RUNS ?? 40);
const home = mkdtempSync(join(tmpdir(), "mcp-auth-bench-"));
const baseEnv = { ...process.env, HOME: home, MCP_AUTH_CONFIG_DIR: join(home, "cfg"), MCP_AUTH_STORE: "file", NO_COLOR: "1" };
delete baseEnv.DBUS_SESSION_BUS_ADDRESS;

// The sandbox runs as its own process so the timed runs below measure the CLI alone.
const { sandbox, info } = await startSandboxProcess(bin, baseEnv);

const cli = (args, env = baseEnv) => spawnSync(process.execPath, [bin, ...args], { env, encoding: "utf8" });
const requests = (r) => (r.stderr.match(/^debug > (GET|POST) /gm) ?? []).length;
function expireCache() {
  const dir = join(home, "cfg", "tokens");
  for (const f of readdirSync(dir)) {
    const rec = JSON.parse(readFileSync(join(dir, f), "utf8"));
    rec.expires_at = 0;
    writeFileSync(join(dir, f), JSON.stringify(rec));
  }
}

const cold = cli(["token", "--profile", "sandbox", "--debug"]);
if (cold.status !== 0) throw new Error(cold.stderr);
const cached = cli(["token", "--profile", "sandbox", "--debug"]);
expireCache();
const warm = cli(["token", "--profile", "sandbox", "--debug"]);
expireCache();
const parallel = await Promise.all(
  Array.from({ length: 20 }, () =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, [bin, "token", "--profile", "sandbox", "--debug"], { env: baseEnv });
      let stderr = "";
      c.stderr.on("data", (d) => (stderr += d));
      c.on("close", (status) => resolve({ status, stderr }));
    }),
  ),
);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function time(cmd, args, env) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`${args.join(" ")}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}
/**
 * Median ms of `node -e 0` and of `mcp-auth token …` (or of `node ARGV` with `nodeArgv`), interleaved;
 * `before` runs untimed before each timed call.
 */
function measure(args, env, before = () => {}, nodeArgv = [bin, ...args]) {
  const base = [];
  const tok = [];
  for (let i = 0; i < 5; i++) (before(), time(process.execPath, nodeArgv, env)); // warm-up
  for (let i = 0; i < runs; i++) {
    base.push(time(process.execPath, ["-e", "0"], env));
    before();
    tok.push(time(process.execPath, nodeArgv, env));
  }
  return { b: median(base), t: median(tok) };
}
function compare(label, env, what = "cached", args = ["token", "--profile", "sandbox"], before) {
  const { b, t } = measure(args, env, before);
  console.log(`${label.padEnd(44)} node -e 0: ${b.toFixed(1).padStart(6)} ms   mcp-auth token (${what}): ${t.toFixed(1).padStart(6)} ms   ratio ${(t / b).toFixed(3)}x`);
  return t / b;
}
function peakRss(args) {
  const file = join(home, "rss");
  rmSync(file, { force: true });
  spawnSync(process.execPath, ["--require", join(root, "scripts", "rss-probe.cjs"), bin, ...args], { env: { ...baseEnv, MCP_AUTH_RSS_FILE: file } });
  return Number(readFileSync(file, "utf8").trim()) / 1024;
}

console.log(`mcp-auth benchmark (${runs} runs each, median; ${process.version}, ${process.platform})`);
console.log(`IdP requests: cold ${requests(cold)} (discovery + token), warm ${requests(warm)} (cached discovery), cached ${requests(cached)}, ` +
  `20 parallel on an expired cache ${parallel.reduce((n, r) => n + requests(r), 0)} (all ok: ${parallel.every((r) => r.status === 0)})`);
// NODE_EXTRA_CA_CERTS makes every Node start parse a CA bundle, which slows the baseline and hides
// our own cost: the verdict uses the run without it.
let ratio = compare("environment as is", baseEnv);
if (baseEnv.NODE_EXTRA_CA_CERTS) {
  const clean = { ...baseEnv };
  delete clean.NODE_EXTRA_CA_CERTS;
  ratio = compare("without NODE_EXTRA_CA_CERTS", clean);
}
// A refresh needs a refresh token: sign in to the sandbox's browser-login profile (oidc-provider's
// own pages, followed over plain HTTP by scripts/bench-browser.mjs).
const login = cli(["login", "sandbox-login", "--browser-command", `${process.execPath} ${join(root, "scripts", "bench-browser.mjs")}`]);
if (login.status !== 0) throw new Error(login.stderr);
const caBundle = "/etc/ssl/certs/ca-certificates.crt";
const withCa = existsSync(caBundle) ? { ...baseEnv, NODE_EXTRA_CA_CERTS: caBundle } : undefined;
const noCa = { ...baseEnv };
delete noCa.NODE_EXTRA_CA_CERTS;
const ratios = {};
for (const [label, env] of [["without NODE_EXTRA_CA_CERTS", noCa], ...(withCa ? [["with NODE_EXTRA_CA_CERTS (system CAs)", withCa]] : [])]) {
  ratios[`grant ${label}`] = compare(`${label}`, env, "client credentials, miss", ["token", "--profile", "sandbox"], expireCache);
  ratios[`refresh ${label}`] = compare(`${label}`, env, "refresh", ["token", "--profile", "sandbox-login"], expireCache);
}
// The floor under that: Node itself posting the same client-credentials request with node:http and
// nothing else (no config, cache, lock or checks). What is left between it and mcp-auth is mcp-auth's.
const floors = {};
{
  const cfg = join(home, "cfg");
  const p = JSON.parse(readFileSync(join(cfg, "config.json"), "utf8")).profiles.sandbox;
  const secret = JSON.parse(readFileSync(join(cfg, "secrets.json"), "utf8")).secrets["client-secret:sandbox"];
  const dir = join(cfg, "cache", "discovery");
  const endpoint = readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8"))).find((r) => r.issuer === p?.issuer)?.metadata?.token_endpoint;
  if (p && secret && endpoint) {
    const body = new URLSearchParams({ grant_type: "client_credentials", ...(p.scopes?.length ? { scope: p.scopes.join(" ") } : {}), ...(p.resource ? { resource: p.resource } : {}) }).toString();
    const auth = `Basic ${Buffer.from(`${encodeURIComponent(p.clientId)}:${encodeURIComponent(secret)}`).toString("base64")}`;
    const script = `const r=require("node:http").request(${JSON.stringify(endpoint)},{method:"POST",headers:{authorization:${JSON.stringify(auth)},"content-type":"application/x-www-form-urlencoded"}},(res)=>{let b="";res.on("data",(d)=>(b+=d));res.on("end",()=>process.exit(res.statusCode===200?0:1))});r.end(${JSON.stringify(body)});`;
    for (const [label, env] of [["without NODE_EXTRA_CA_CERTS", noCa], ...(withCa ? [["with NODE_EXTRA_CA_CERTS (system CAs)", withCa]] : [])]) {
      const { b, t } = measure([], env, () => {}, ["-e", script]);
      floors[label] = t / b;
      console.log(`${label.padEnd(44)} node -e 0: ${b.toFixed(1).padStart(6)} ms   bare node:http POST (the floor): ${t.toFixed(1).padStart(6)} ms   ratio ${(t / b).toFixed(3)}x`);
    }
  }
}
const rssCached = peakRss(["token", "--profile", "sandbox"]);
expireCache();
const rssFetch = peakRss(["token", "--profile", "sandbox"]);
expireCache();
const rssRefresh = peakRss(["token", "--profile", "sandbox-login"]);
console.log(`peak RSS: cached token ${rssCached.toFixed(1)} MB, client-credentials token from the IdP ${rssFetch.toFixed(1)} MB, refresh ${rssRefresh.toFixed(1)} MB`);
console.log(`target for the cached path: ratio <= 1.15x, peak RSS <= 60 MB → ${ratio <= 1.15 && rssCached <= 60 ? "met" : "NOT met"}`);
const fetchMet = Object.values(ratios).every((r) => r <= 2) && rssFetch <= 60 && rssRefresh <= 60;
console.log(`target for one request to the IdP: ratio <= 2x, peak RSS <= 60 MB → ${fetchMet ? "met" : "NOT met"}`);
for (const [label, f] of Object.entries(floors)) console.log(`  ${label}: the floor alone (Node, node:http and the IdP's answer) is ${f.toFixed(2)}x; mcp-auth adds ${(ratios[`grant ${label}`] - f).toFixed(2)}x on a client-credentials miss`);
sandbox.kill("SIGTERM");
rmSync(home, { recursive: true, force: true });
