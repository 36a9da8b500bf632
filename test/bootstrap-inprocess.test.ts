import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startThunder, type ThunderSim } from "./simulators/thunder.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

/**
 * `bootstrap thunder` in-process through createTestContext(), as a table: flags + a simulated Thunder
 * → exit code, stderr and stdout. The end-to-end file (test/providers/thunder.test.ts) runs the binary.
 */
let sim: ThunderSim;
let t: TestContext;
beforeAll(async () => {
  sim = await startThunder({ era: "D" });
});
afterAll(() => sim.close());
afterEach(() => t?.cleanup());

describe("bootstrap thunder: runs", () => {
  const cases: Array<{ name: string; args: string[]; env?: NodeJS.ProcessEnv; stdin?: string; code: number; err?: RegExp; out?: RegExp; asked?: number; interactive?: boolean; answers?: string[] }> = [
    { name: "no admin password and nobody to ask", args: [], code: 2, err: /admin password/ },
    { name: "password on stdin", args: ["--admin-password-stdin", "--name", "stdin app", "--client-id", "c1", "--profile", "p1"], stdin: "admin\n", code: 0, err: /Thunder: created — profile "p1"/ },
    { name: "wrong password", args: ["--admin-password-env", "PW"], env: { PW: "not-the-password" }, code: 4 },
    { name: "hidden prompt on a terminal", args: ["--name", "prompted app", "--client-id", "c2", "--profile", "p2"], interactive: true, answers: ["admin"], code: 0, asked: 1, err: /Thunder: created — profile "p2"/ },
    { name: "bad --grant", args: ["--admin-password-env", "PW", "--grant", "password"], env: { PW: "admin" }, code: 2, err: /Allowed choices are client_credentials, authorization_code/ },
    { name: "bad --redirect-port", args: ["--admin-password-env", "PW", "--redirect-port", "70000"], env: { PW: "admin" }, code: 2, err: /--redirect-port/ },
    { name: "bad profile name", args: ["--admin-password-env", "PW", "--profile", "a/b"], env: { PW: "admin" }, code: 2, err: /invalid profile name/ },
    { name: "--json on stdout", args: ["--admin-password-env", "PW", "--name", "json app", "--client-id", "c3", "--profile", "p3", "--json"], env: { PW: "admin" }, code: 0, out: /^\{"provider":"thunder","profile":"p3","action":"created"/ },
  ];
  it.each(cases)("$name", async (c) => {
    t = createTestContext({ env: c.env, stdin: c.stdin, interactive: c.interactive, answers: c.answers });
    expect(await t.run(["bootstrap", "thunder", "--url", sim.url, ...c.args])).toBe(c.code);
    if (c.err) expect(t.stderr()).toMatch(c.err);
    if (c.out) expect(t.stdout()).toMatch(c.out);
    else expect(t.stdout()).toBe("");
    expect(t.asked).toHaveLength(c.asked ?? 0);
    expect(t.stderr()).not.toContain("not-the-password");
  });

  it("saves the profile and the secret through core, and a re-run reuses the application", async () => {
    t = createTestContext({ env: { PW: "admin" } });
    expect(await t.run(["bootstrap", "thunder", "--url", sim.url, "--admin-password-env", "PW", "--name", "reuse app", "--client-id", "c4", "--profile", "r"])).toBe(0);
    const cfg = JSON.parse(readFileSync(join(t.configDir, "config.json"), "utf8"));
    expect(cfg.profiles.r).toMatchObject({ provider: "thunder", issuer: sim.url, grant: "client_credentials", secretStore: "file" });
    const secret = JSON.parse(readFileSync(join(t.configDir, "secrets.json"), "utf8")).secrets["client-secret:r"];
    expect(secret).toBeTruthy();
    expect(await t.run(["bootstrap", "thunder", "--url", sim.url, "--admin-password-env", "PW", "--name", "reuse app", "--client-id", "c4", "--profile", "r"])).toBe(0);
    expect(t.stderr()).toContain('Thunder: reused — profile "r"');
    expect(t.stderr()).not.toContain(secret);
  });
});
