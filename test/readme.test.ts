import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../src/cli.js";
import { ROOT } from "./helpers/cli.js";
import { readmeCommands, words } from "./helpers/readme.js";

export { readmeCommands };

/**
 * The README's commands against the real command tree: every `mcp-auth …` it shows (in shell blocks
 * and in inline code) must name commands that exist and only flags those commands (or the program)
 * accept. Catches documentation that drifts from the CLI.
 */
const README = readFileSync(join(ROOT, "README.md"), "utf8");

function problems(program: Command, line: string): string[] {
  const argv = words(line).slice(1);
  if (argv[0] === "…") return []; // "mcp-auth …": a placeholder for any command
  let cmd = program;
  const chain: Command[] = [program];
  const issues: string[] = [];
  let pathDone = false;
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === "--") break; // what follows is another program's command line (mcp-auth exec … -- CMD ARGS)
    if (w.startsWith("-") && w !== "-" && !/^-\d/.test(w)) {
      const flag = w.split("=")[0]!;
      if (flag === "--help" || flag === "-h") continue;
      const opt = chain.flatMap((c) => c.options).find((o) => o.long === flag || o.short === flag);
      if (!opt) issues.push(`${chain.map((c) => c.name()).join(" ")}: unknown flag ${flag}`);
      else if ((opt.required || opt.optional) && !w.includes("=") && !opt.variadic) i++; // its value
      else if (opt.variadic) while (argv[i + 1] && !argv[i + 1]!.startsWith("-")) i++;
      continue;
    }
    if (pathDone) continue;
    const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
    if (sub) {
      cmd = sub;
      chain.push(sub);
    } else pathDone = true;
  }
  if (cmd === program && !argv.some((w) => ["--help", "-h", "--version", "-V"].includes(w))) issues.push(`no such command: ${argv.find((w) => !w.startsWith("-")) ?? ""}`);
  return issues;
}

describe("README", () => {
  const commands = readmeCommands(README);

  it("shows a good number of commands (the extraction works)", () => {
    expect(commands.length).toBeGreaterThan(40);
    expect(commands).toContain("mcp-auth token --profile sandbox");
  });

  it("every mcp-auth command it shows exists, with flags the command accepts", () => {
    const program = buildProgram(() => {
      throw new Error("not run");
    });
    const bad = commands.flatMap((c) => problems(program, c).map((p) => `${c}\n    → ${p}`));
    expect(bad).toEqual([]);
  });

  it("the checker itself catches a wrong flag and a wrong command", () => {
    const program = buildProgram(() => {
      throw new Error("not run");
    });
    expect(problems(program, "mcp-auth token --profil x")).toEqual(["mcp-auth token: unknown flag --profil"]);
    expect(problems(program, "mcp-auth tokn")).toEqual(["no such command: tokn"]);
    expect(problems(program, "mcp-auth --store file profiles add x --mcp-url https://m.invalid/mcp")).toEqual([]);
  });
});
