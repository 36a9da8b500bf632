/**
 * Test helper: runs the real `kubernetes-mcp-server` binary (npm devDependency,
 * v0.0.66) as an OAuth-protected MCP server over streamable HTTP.
 *
 * What the server checks (read in containers/kubernetes-mcp-server,
 * pkg/http/authorization.go `AuthorizationMiddleware`, pkg/oauth/state.go
 * `CreateOIDCProviderAndClient`, and pkg/config/config.go `Validate`, at commit
 * 55749981; the binary is v0.0.66 = fcd9bbe6, and its behaviour below was confirmed by running it):
 *  - At startup it runs OIDC discovery (go-oidc `NewProvider`) on `authorization_url`. If the
 *    issuer is down or its `issuer` field differs from the URL *as a string* (a trailing slash or
 *    localhost vs 127.0.0.1 is enough), the process exits 1. So the IdP must be up first.
 *    Plain http issuers are accepted (with a warning log). No certificate_authority is needed for http.
 *  - Every request except /healthz, /metrics, /stats and /.well-known/* needs `Authorization: Bearer <jwt>`.
 *    The server parses the JWT (alg "none" is rejected), validates exp/nbf and `aud` ∋ `oauth_audience` offline,
 *    then runs go-oidc `Verifier{ClientID: oauth_audience}`. That step checks `iss` and the signature
 *    against the issuer's jwks_uri.
 *  - 401 responses carry `WWW-Authenticate: Bearer realm="Kubernetes MCP Server", audience="<aud>",
 *    error="missing_token"|"invalid_token"`. There is no `resource_metadata` parameter, but
 *    /.well-known/oauth-protected-resource[/mcp] is served with authorization_servers = [its own origin]
 *    (v0.0.66; it passes the IdP's /.well-known/oauth-authorization-server through).
 *  - The MCP endpoint is exactly `/mcp`; `/mcp/` returns 404.
 * A dummy kubeconfig (https://127.0.0.1:1) is enough: failing API discovery is only logged.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, readdir, readlink, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export interface KubernetesMcp {
  /** The MCP endpoint, e.g. http://127.0.0.1:41234/mcp */
  url: string;
  stop(): Promise<void>;
  /** Everything the server wrote to stdout/stderr so far (it logs to stdout in HTTP mode). */
  logs(): string;
}

export interface StartKubernetesMcpOptions {
  /** OIDC issuer, must match the IdP's `issuer` exactly (no trailing slash if the IdP has none). */
  issuer: string;
  /** Value for `oauth_audience`: tokens must have it in `aud`. */
  audience: string;
  /** Readiness deadline (default 20 s). */
  timeoutMs?: number;
  /** Extra TOML lines appended to the generated config. */
  extraToml?: string;
}

const BINARY_MAP: Record<string, { name: string; suffix: string }> = {
  darwin_x64: { name: "kubernetes-mcp-server-darwin-amd64", suffix: "" },
  darwin_arm64: { name: "kubernetes-mcp-server-darwin-arm64", suffix: "" },
  linux_x64: { name: "kubernetes-mcp-server-linux-amd64", suffix: "" },
  linux_arm64: { name: "kubernetes-mcp-server-linux-arm64", suffix: "" },
  win32_x64: { name: "kubernetes-mcp-server-windows-amd64", suffix: ".exe" },
  win32_arm64: { name: "kubernetes-mcp-server-windows-arm64", suffix: ".exe" },
};

/**
 * Finds the platform binary the same way the package's launcher (kubernetes-mcp-server/bin/index.js) does:
 * require.resolve('<platform-pkg>/bin/<platform-pkg><suffix>'). We resolve from the launcher
 * package's own location so that a non-hoisted optional dependency is found too.
 * KUBERNETES_MCP_SERVER_BIN overrides this.
 */
export function resolveKubernetesMcpBinary(): string {
  const override = process.env.KUBERNETES_MCP_SERVER_BIN;
  if (override) return override;
  const key = `${process.platform}_${process.arch}`;
  const binary = BINARY_MAP[key];
  if (!binary) throw new Error(`kubernetes-mcp-server: no prebuilt binary for ${key}`);
  // vitest defines __filename in test modules (also valid under CJS); plain Node ESM falls back to cwd.
  // (import.meta is avoided so this file typechecks whatever `module` setting the tsconfig uses.)
  const here = typeof __filename === "string" ? __filename : path.join(process.cwd(), "index.js");
  const req = createRequire(here);
  const spec = `${binary.name}/bin/${binary.name}${binary.suffix}`;
  try {
    const launcherReq = createRequire(req.resolve("kubernetes-mcp-server/package.json"));
    return launcherReq.resolve(spec);
  } catch {
    try {
      return req.resolve(spec);
    } catch (err) {
      throw new Error(
        `kubernetes-mcp-server: cannot resolve ${spec} (is the optional dependency installed?): ${(err as Error).message}`,
      );
    }
  }
}

/** TOML basic strings accept JSON string escapes (\" \\ \n \uXXXX ...). */
const tomlString = (s: string): string => JSON.stringify(s);

function dummyKubeconfig(): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: dummy",
    "  cluster:",
    "    server: https://127.0.0.1:1",
    "    insecure-skip-tls-verify: true",
    "contexts:",
    "- name: dummy",
    "  context:",
    "    cluster: dummy",
    "    user: dummy",
    "current-context: dummy",
    "users:",
    "- name: dummy",
    "  user:",
    "    token: dummy-token",
    "",
  ].join("\n");
}

/** Binds 127.0.0.1:0, reads the port, closes. Only used where /proc is unavailable. */
async function pickFreePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", resolve);
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/**
 * Linux only: the server accepts port "0" but never logs the port it got. We find the
 * TCP socket in LISTEN state (st 0A) whose inode belongs to one of the child's fds.
 */
async function findListeningPort(pid: number): Promise<number | null> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* fd closed meanwhile */
    }
  }
  if (inodes.size === 0) return null;
  for (const table of ["tcp", "tcp6"]) {
    let text: string;
    try {
      text = await readFile(`/proc/${pid}/net/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && cols[3] === "0A" && inodes.has(cols[9]!)) {
        return parseInt(cols[1]!.split(":")[1]!, 16);
      }
    }
  }
  return null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startKubernetesMcp(opts: StartKubernetesMcpOptions): Promise<KubernetesMcp> {
  const binary = resolveKubernetesMcpBinary();
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const useProc = process.platform === "linux";
  const maxAttempts = useProc ? 1 : 3; // pick-a-free-port can race; retry on "address already in use"
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const port = useProc ? 0 : await pickFreePort();
    try {
      return await startOnce(binary, opts, port, timeoutMs);
    } catch (err) {
      lastError = err as Error;
      if (!/address already in use/i.test(lastError.message)) throw lastError;
    }
  }
  throw lastError!;
}

async function startOnce(
  binary: string,
  opts: StartKubernetesMcpOptions,
  port: number,
  timeoutMs: number,
): Promise<KubernetesMcp> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "k8s-mcp-"));
  const kubeconfig = path.join(dir, "kubeconfig");
  const configPath = path.join(dir, "config.toml");
  await writeFile(kubeconfig, dummyKubeconfig(), { mode: 0o600 });
  await writeFile(
    configPath,
    [
      `port = ${tomlString(String(port))}`,
      `bind_address = "127.0.0.1"`,
      `log_level = 2`, // auth failures are logged at V(1)
      `kubeconfig = ${tomlString(kubeconfig)}`,
      `cluster_provider_strategy = "kubeconfig"`, // don't auto-detect in-cluster
      `require_oauth = true`,
      `authorization_url = ${tomlString(opts.issuer)}`,
      `oauth_audience = ${tomlString(opts.audience)}`,
      opts.extraToml ?? "",
      "",
    ].join("\n"),
  );

  const t0 = Date.now();
  let output = "";
  const MAX_LOG = 1 << 20;
  const append = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    if (output.length > MAX_LOG) output = output.slice(-MAX_LOG);
  };
  const env = { ...process.env };
  delete env.KUBECONFIG;
  const child: ChildProcess = spawn(binary, ["--config", configPath], {
    cwd: dir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    windowsHide: true,
  });
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  let exitInfo: string | null = null;
  let spawnError: Error | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = `code=${code} signal=${signal}`;
      resolve();
    });
    child.once("error", (err) => {
      spawnError = err;
      exitInfo = `spawn error: ${err.message}`;
      resolve();
    });
  });
  // Don't leave an orphan if the test runner exits without calling stop().
  const killOnExit = () => {
    if (exitInfo === null) child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener("exit", killOnExit);
    if (exitInfo === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const fail = async (reason: string): Promise<never> => {
    const logs = output;
    await stop();
    throw new Error(`kubernetes-mcp-server ${reason} (binary ${binary})\n--- server output ---\n${logs}`);
  };

  const deadline = t0 + timeoutMs;
  let boundPort: number | null = port === 0 ? null : port;
  while (Date.now() < deadline) {
    if (spawnError || exitInfo !== null) {
      return fail(`exited before becoming ready (${exitInfo})`);
    }
    if (boundPort === null && child.pid !== undefined) boundPort = await findListeningPort(child.pid);
    if (boundPort !== null) {
      try {
        // /healthz is excluded from the OAuth middleware.
        const res = await fetch(`http://127.0.0.1:${boundPort}/healthz`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.ok && exitInfo === null) {
          return { url: `http://127.0.0.1:${boundPort}/mcp`, stop, logs: () => output };
        }
      } catch {
        /* not listening yet */
      }
    }
    await sleep(20);
  }
  return fail(`not ready within ${timeoutMs} ms`);
}

/** POSTs an MCP `initialize` JSON-RPC request (streamable HTTP) and reports the raw outcome. */
export async function mcpInitialize(
  url: string,
  token?: string,
): Promise<{ status: number; wwwAuthenticate: string | null; body: string }> {
  const headers: Record<string, string> = {
    Accept: "application/json, text/event-stream",
    "Content-Type": "application/json",
  };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "mcp-auth-test", version: "0.0.0" },
      },
    }),
    signal: AbortSignal.timeout(10_000),
  });
  // On 200 the server answers with one SSE `message` event and ends the response.
  const body = await res.text();
  return { status: res.status, wwwAuthenticate: res.headers.get("www-authenticate"), body };
}
