import { PassThrough } from "node:stream";
import type { Command } from "commander";
import { afterEach, describe, expect, it } from "vitest";
import { buildProgram } from "../src/cli.js";
import { createTestContext, type TestContext } from "./helpers/context.js";
import { useSandbox } from "./helpers/sandbox.js";

/** Every command's --help, as a newcomer reads it: examples, the global flags, no contradictions. */
function commandPaths(): string[][] {
  const program = buildProgram(() => {
    throw new Error("no context for help");
  });
  const paths: string[][] = [];
  const visit = (c: Command, path: string[]) => {
    paths.push(path);
    for (const s of c.commands) visit(s, [...path, s.name()]);
  };
  for (const c of program.commands) visit(c, [c.name()]);
  return paths;
}

let t: TestContext | undefined;
afterEach(() => {
  t?.cleanup();
  t = undefined;
});

async function help(path: string[]): Promise<string> {
  t = createTestContext();
  expect(await t.run([...path, "--help"])).toBe(0);
  return t.stdout();
}

describe("--help of every command", () => {
  const paths = commandPaths();

  it("covers the whole command tree", () => {
    expect(paths.map((p) => p.join(" "))).toEqual(expect.arrayContaining(["token", "login", "profiles add", "profiles rename", "profiles set", "bootstrap thunder", "sandbox", "status", "doctor"]));
  });

  it.each(paths.map((p) => [p.join(" "), p] as const))("%s: examples and the global flags", async (_name, path) => {
    const text = await help([...path]);
    expect(text).toMatch(/\nExamples:\n {2}mcp-auth /);
    // Examples show this very command.
    expect(text).toContain(`mcp-auth ${path.length > 1 && path[0] !== "bootstrap" && path[0] !== "profiles" ? path[0] : path.join(" ")}`);
    expect(text).toContain("Global Options:");
    for (const flag of ["--timeout <seconds>", "--debug", "--store <kind>"]) expect(text).toContain(flag);
  });

  it("--store lists all its choices", async () => {
    const text = (await help(["token"])).replace(/\s+/g, " ");
    expect(text).toMatch(/--store <kind> secret store .*choices: "keychain", "file", "memory", "auto"/);
  });

  it("sandbox --port shows one default", async () => {
    const text = (await help(["sandbox"])).replace(/\s+/g, " ");
    const port = text.match(/--port <port> ([^-]*)/)![1]!;
    expect(port.match(/default/g)).toHaveLength(1);
  });
});

// ---- every example in every --help: parses against the command tree, and runs where it can ----

/** The examples of one --help, as argv (after `mcp-auth`): comments, pipes in front, redirections and quotes handled as a shell would. */
function examplesOf(text: string): Array<{ line: string; argv: string[] }> {
  const block = text.split("\nExamples:\n")[1] ?? "";
  const out: Array<{ line: string; argv: string[] }> = [];
  for (const raw of block.split("\n")) {
    if (!/^ {2}\S/.test(raw)) break; // the block ends at the first line that is not an example
    let line = raw.trim().replace(/\s+#.*$/, "").replace(/^(?:[A-Z_]+=\S*\s+)+/, ""); // VAR=… in front
    if (line.startsWith("source <(")) line = line.slice("source <(".length, -1);
    line = line.slice(line.lastIndexOf("| mcp-auth ") >= 0 ? line.lastIndexOf("| mcp-auth ") + 2 : 0).replace(/\s+>\s*\S+$/, "");
    const words = [...line.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
    expect(words[0], raw).toBe("mcp-auth");
    out.push({ line: raw.trim(), argv: words.slice(1) });
  }
  return out;
}

/** Parses argv with the real program; its action is never reached (asking for the context stops it). */
async function parses(argv: string[]): Promise<true | string> {
  const reached = new Error("parsed");
  const sink = new PassThrough();
  const err: string[] = [];
  sink.on("data", () => {});
  const errSink = new PassThrough();
  errSink.on("data", (d) => err.push(String(d)));
  const program = buildProgram(() => {
    throw reached;
  }, { out: sink, err: errSink });
  try {
    await program.parseAsync(argv, { from: "user" });
    return true; // an action that needs no context (completion)
  } catch (e) {
    return e === reached ? true : `${(e as Error).message} ${err.join("")}`.trim();
  }
}

describe("the examples of every --help", () => {
  const all = commandPaths().map((p) => p.join(" "));

  it("each parses against the command tree: commands, arguments and flags that exist", async () => {
    const failures: string[] = [];
    let count = 0;
    for (const path of ["", ...all]) {
      t = createTestContext();
      expect(await t.run([...(path ? path.split(" ") : []), "--help"])).toBe(0);
      for (const ex of examplesOf(t.stdout())) {
        count++;
        const r = await parses(ex.argv);
        if (r !== true) failures.push(`${path || "(top)"}: ${ex.line}: ${r}`);
      }
      t.cleanup();
      t = undefined;
    }
    expect(failures).toEqual([]);
    expect(count).toBeGreaterThan(60);
  });

  it("a made-up flag or command in an example would be caught", async () => {
    expect(await parses(["token", "--profle", "dev"])).toMatch(/unknown option '--profle'/);
    expect(await parses(["bootstrap", "mcp"])).not.toBe(true);
    expect(await parses(["token", "--profile", "dev"])).toBe(true);
  });

  it("init --help names only commands that exist", async () => {
    t = createTestContext();
    expect(await t.run(["init", "--help"])).toBe(0);
    const named = [...t.stdout().replace(/\s+/g, " ").matchAll(/\b(bootstrap [a-z-]+|profiles [a-z-]+|login)\b/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(3);
    for (const c of new Set(named)) expect(all, c).toContain(c);
  });
});

describe("the examples of every --help, run against the sandbox", () => {
  const sb = useSandbox();
  /**
   * Examples that start a server (sandbox, proxy, exec, serve) or a sign-in, or reach an IdP's admin API, and the preset example whose
   * tenant placeholder is checked as a GUID (test/presets.test.ts runs real ones): parsed above, not run here.
   */
  const notRun = /^(sandbox|proxy|exec|serve|login|init|bootstrap)\b|^completion .*>|^profiles rotate-key|--generate-key|--transport|--exchange oci-upst|--tenant TENANT_ID/;

  it("each one that can runs against a real IdP and MCP server without a usage error", async () => {
    const results: string[] = [];
    let ran = 0;
    for (const path of ["", ...commandPaths().map((p) => p.join(" "))]) {
      const h = createTestContext();
      expect(await h.run([...(path ? path.split(" ") : []), "--help"])).toBe(0);
      const examples = examplesOf(h.stdout());
      h.cleanup();
      for (const ex of examples) {
        const argv = ex.argv.map((w) => w.replaceAll("https://idp.example.com", sb.issuer).replaceAll("https://mcp.example.com/mcp", sb.mcpUrl));
        if (notRun.test(argv.join(" ")) || argv.some((w) => /example\.com/.test(w))) continue;
        const secrets = { SECRET: "sandbox-secret", NEW_SECRET: "sandbox-secret", MCP_AUTH_CLIENT_SECRET: "sandbox-secret", PATH: "/nonexistent" };
        t = createTestContext({ env: secrets, stdin: /-stdin\b/.test(ex.line) ? "sandbox-secret" : undefined });
        // The profiles the examples name: dev (a browser login) and ci (client credentials), unless the example creates them.
        if (!/^profiles add (dev|ci)\b/.test(argv.join(" "))) {
          expect(await t.run(["profiles", "add", "dev", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code", "--mcp-url", sb.mcpUrl])).toBe(0);
          expect(await t.run(["profiles", "add", "ci", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "SECRET", "--mcp-url", sb.mcpUrl])).toBe(0);
          expect(await t.run(["profiles", "add", "old-dev", "--issuer", sb.issuer, "--client-id", "sandbox-cli", "--grant", "authorization_code"])).toBe(0);
          // The one Thunder profile `--provider thunder` picks (a Thunder-kind profile, here at the sandbox's IdP).
          expect(await t.run(["profiles", "add", "th", "--kind", "thunder", "--issuer", sb.issuer, "--client-id", "sandbox-m2m", "--client-secret-env", "SECRET", "--mcp-url", sb.mcpUrl])).toBe(0);
          expect(await t.run(["profiles", "use", "dev"])).toBe(0);
        }
        const code = await t.run(argv);
        ran++;
        const last = t.stderr().trim().split("\n").at(-1) ?? "";
        if (code === 2 || /unknown|not specified|must be/.test(last)) results.push(`${ex.line} → exit ${code}: ${last}`);
        t.cleanup();
        t = undefined;
      }
    }
    expect(results).toEqual([]);
    expect(ran).toBeGreaterThan(20);
  });
});
