// `npm run bench` (second part): what `mcp-auth proxy` adds to an MCP round trip, measured against
// calling the same server directly in the same run, and the proxy's memory over many requests.
// Prints a report; asserts nothing (timings depend on the machine).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startSandboxProcess } from "./bench-sandbox.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "bin", "mcp-auth.js");
const rounds = Number(process.env.BENCH_PROXY_ROUNDS ?? 200);
const volume = Number(process.env.BENCH_PROXY_REQUESTS ?? 10_000);
const home = mkdtempSync(join(tmpdir(), "mcp-auth-bench-proxy-"));
const env = { ...process.env, HOME: home, MCP_AUTH_CONFIG_DIR: join(home, "cfg"), MCP_AUTH_STORE: "file", NO_COLOR: "1" };
delete env.DBUS_SESSION_BUS_ADDRESS;

// The sandbox (IdP + MCP server) is its own process, so neither side of the comparison pays for it.
const { sandbox, info } = await startSandboxProcess(bin, env);

const tok = spawnSync(process.execPath, [bin, "token", "--profile", "sandbox"], { env, encoding: "utf8" });
if (tok.status !== 0) throw new Error(tok.stderr);

const direct = new Client({ name: "bench-direct", version: "0" });
await direct.connect(new StreamableHTTPClientTransport(new URL(info.mcpUrl), { requestInit: { headers: { Authorization: `Bearer ${tok.stdout.trim()}` } } }));
const viaTransport = new StdioClientTransport({ command: process.execPath, args: [bin, "proxy", "--profile", "sandbox"], env: { ...env, NODE_OPTIONS: process.env.BENCH_PROXY_NODE_OPTIONS ?? env.NODE_OPTIONS ?? "" }, stderr: "inherit" });
const proxied = new Client({ name: "bench-proxy", version: "0" });
await proxied.connect(viaTransport);

async function roundTrip(client) {
  const t = process.hrtime.bigint();
  const r = await client.listTools();
  if (!r.tools.length) throw new Error("no tools");
  return Number(process.hrtime.bigint() - t) / 1e6;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Warm both paths, then alternate them so that load from elsewhere on the machine hits both alike.
for (let i = 0; i < 20; i++) {
  await roundTrip(direct);
  await roundTrip(proxied);
}
const d = [];
const p = [];
for (let i = 0; i < rounds; i++) {
  d.push(await roundTrip(direct));
  p.push(await roundTrip(proxied));
}
const md = median(d);
const mp = median(p);

// Memory: VmRSS of the proxy process while it carries `volume` requests (8 in flight at a time).
const rssOf = (pid) => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN) / 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
};
const pid = viaTransport.pid;
// VmHWM here is the high-water mark of start-up plus the latency rounds, before the volume run.
const before = rssOf(pid);
const samples = [rssOf(pid).rss];
const started = Date.now();
for (let done = 0; done < volume; ) {
  const batch = Math.min(8, volume - done);
  await Promise.all(Array.from({ length: batch }, () => proxied.listTools()));
  done += batch;
  if (done % 1000 === 0) samples.push(rssOf(pid).rss);
}
const seconds = (Date.now() - started) / 1000;
const { peak } = rssOf(pid);

console.log(`mcp-auth proxy benchmark (${process.version}, ${process.platform}; sandbox MCP server, tools/list)`);
console.log(`${rounds} round trips, median: direct ${md.toFixed(2)} ms, via proxy ${mp.toFixed(2)} ms → overhead ${(mp - md).toFixed(2)} ms (ratio ${(mp / md).toFixed(2)}x)`);
console.log(`before the volume run: RSS ${before.rss.toFixed(1)} MB, peak so far ${before.peak.toFixed(1)} MB`);
console.log(`${volume} requests via the proxy in ${seconds.toFixed(1)} s: RSS ${samples.map((s) => s.toFixed(0)).join(" → ")} MB, peak ${peak.toFixed(1)} MB`);
console.log(`target: overhead <= 2 ms, peak RSS <= 80 MB → ${mp - md <= 2 && peak <= 80 ? "met" : "NOT met"}`);

await direct.close();
await proxied.close();
sandbox.kill("SIGTERM");
rmSync(home, { recursive: true, force: true });
