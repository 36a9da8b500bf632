import type { Command } from "commander";
import { afterEach, describe, expect, it } from "vitest";
import { buildProgram } from "../src/cli.js";
import { createTestContext, type TestContext } from "./helpers/context.js";

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
