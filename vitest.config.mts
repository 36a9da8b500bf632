import { relative } from "node:path";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Two projects. "e2e": the files whose cases mostly start the built CLI or real outside software
 * (a browser, the MCP clients, the keychain, npm, a README run, the GitHub Action runner), each
 * 5–50 s. "fast": everything else, in-process through createTestContext and small local servers;
 * `npm run test:fast` runs it while working. `npm test` (CI) runs both.
 */
const E2E = [
  // real software end to end
  "test/readme-run.test.ts", // every command of the README, in order
  "test/clients-e2e.test.ts", // the real MCP clients
  "test/clients-real.test.ts", // Copilot CLI, OpenCode … installed from npm, headless
  "test/login.test.ts", // Chromium logins
  "test/login-paste-e2e.test.ts", // Chromium + paste-back, through a pipe and tmux
  "test/mcp-login-e2e.test.ts", // Chromium + kubernetes-mcp-server
  "test/enterprise-proxy.test.ts", // the proxy across a real token expiry (ID-JAG)
  "test/exec-e2e.test.ts", // a real SDK stdio server under exec across two token expiries, signals
  "test/exec.test.ts", // exec's restarts, each a new stdio server process
  "test/serve-e2e.test.ts", // serve as a process, with the SDK client
  "test/one-refresher.test.ts", // serve, exec, proxy and token on one rotating refresh token, across three expiries
  "test/clients-stdio.test.ts", // exec entries, and the real Claude Code connecting to one
  "test/helpers/helpers.test.ts", // the test helpers' own Chromium/server checks
  "test/keychain.test.ts", // the real Secret Service
  "test/package.test.ts", // npm pack + install
  "test/action.test.ts", // the GitHub Action's steps as the runner runs them
  // the CLI as a process, many cases each
  "test/oauth-hardening.test.ts",
  "test/token.test.ts",
  "test/providers/keycloak.test.ts",
  "test/providers/thunder.test.ts",
  "test/providers/oci-upst.test.ts",
  "test/providers/oci.test.ts",
  "test/proxy.test.ts",
  "test/newcomer.test.ts",
  "test/files-hardening.test.ts",
  "test/output-safety.test.ts",
  "test/federation.test.ts",
  "test/private-key-jwt.test.ts",
  "test/private-key-jwt-keycloak.test.ts",
  "test/http-hardening.test.ts",
  "test/errors.test.ts",
  "test/clients-property.test.ts",
];

/**
 * The slowest files, slowest first (as measured on 2 cores; each project's own order): they start
 * first, so that none begins near the end and runs on alone. Vitest orders by the durations of the
 * last run when it has them, and by file size on a fresh clone (CI), which started some of these
 * late: about 10 s more per run. Files not listed follow in vitest's own order.
 */
const SLOWEST = [
  "test/clients-real.test.ts",
  "test/readme-run.test.ts",
  "test/clients-e2e.test.ts",
  "test/providers/oci-upst.test.ts",
  "test/keychain.test.ts",
  "test/action.test.ts",
  "test/exec-e2e.test.ts",
  "test/one-refresher.test.ts",
  "test/providers/keycloak.test.ts",
  "test/login.test.ts",
  "test/proxy.test.ts",
  "test/package.test.ts",
  "test/clients-property.test.ts",
  "test/private-key-jwt-keycloak.test.ts",
  "test/helpers/helpers.test.ts",
  "test/exec.test.ts",
  "test/mcp-login-e2e.test.ts",
  "test/newcomer.test.ts",
  "test/oauth-hardening.test.ts",
  "test/enterprise-proxy.test.ts",
  "test/providers/thunder.test.ts",
  // the fast project's
  "test/providers/openproject-create.test.ts",
  "test/init.test.ts",
  "test/clients-hostile.test.ts",
  "test/providers/oci-discovery.test.ts",
  "test/doctor.test.ts",
  "test/simulators/presets.test.ts",
];

class SlowestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = SLOWEST.indexOf(relative(f.project.config.root, f.moduleId).split("\\").join("/"));
      return i === -1 ? SLOWEST.length : i;
    };
    // Projects run one after the other: reorder within each, keeping vitest's order among the rest.
    const projects = new Map<string, TestSpecification[]>();
    for (const f of sorted) projects.set(f.project.name, [...(projects.get(f.project.name) ?? []), f]);
    return [...projects.values()].flatMap((group) =>
      group
        .map((f, i) => ({ f, i }))
        .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
        .map((x) => x.f),
    );
  }
}

export default defineConfig({
  test: {
    globalSetup: ["test/global-setup.ts"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // A worker keeps its loaded modules from one file to the next: re-importing src/ for each of 100
    // files cost a fifth of the run. Tests share no module state: no module mocks or global stubs, a
    // chdir is undone after each test, and the CLI's per-process state is reset per file (test/setup.ts).
    isolate: false,
    // Four workers on two cores: the end-to-end files spend much of their time waiting on other
    // processes (real clients, browsers, tokens that must really expire), which the others fill. (With
    // the temp files in memory and the headless shell, four beat three: 160-172 s against 186-194 s.)
    maxWorkers: 4,
    // The suite is CPU-bound on two cores: a worker's garbage collector helping itself with more
    // threads only competes with the other workers (CI=true runs: 351 -> 334 CPU seconds).
    execArgv: ["--single-threaded-gc"],
    sequence: { sequencer: SlowestFirst },
    projects: [
      { extends: true, test: { name: "fast", include: ["test/**/*.test.ts"], exclude: E2E } },
      { extends: true, test: { name: "e2e", include: E2E } },
    ],
  },
});
