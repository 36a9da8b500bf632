import { beforeAll } from "vitest";
import { resetSecrets } from "../src/io/sanitize.js";
import { resetMemoryStore } from "../src/store/secrets.js";
import { forgetTrustChecks } from "../src/store/trust.js";

/**
 * A worker runs many test files in one process (vitest.config.mts: isolate false), and the CLI keeps
 * a little per-process state: the secrets it scrubs from output, the memory secret store, the config
 * dirs it has checked. Each file starts with none of it, as each CLI run starts in a new process.
 */
beforeAll(() => {
  resetSecrets();
  resetMemoryStore();
  forgetTrustChecks();
});
