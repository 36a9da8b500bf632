import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CommandProcessor, parseAction } from "./actions-runner.js";
import { ROOT } from "./cli.js";

/** The runner emulation's reading of output lines, against what actions/runner does with them. */
function run(lines: string[]) {
  const p = new CommandProcessor();
  for (const l of lines) p.line(l);
  return p;
}

describe("workflow commands as the runner reads them", () => {
  it.each([
    ["::add-mask::abc", ["add-mask"]],
    ["   ::add-mask::abc", ["add-mask"]], // leading blanks are trimmed (TryParseV2)
    ["text ::add-mask::abc", []], // the :: form must start the line
    ["text ##[add-mask]abc", ["add-mask"]], // the ##[ form works anywhere in it (TryParse)
    ["::not-a-command::x", []],
    ["::error title=t::a%0Ab", ["error"]],
  ])("%j → %j", (line, names) => {
    expect(run([line]).commands.map((c) => c.name)).toEqual(names);
  });

  it("unescapes command data, and masks from then on", () => {
    const p = run(["::add-mask::a%25b%0Ac", "x a%b\nc y", "a%b"]);
    expect(p.masks).toEqual(["a%b\nc"]);
    expect(p.log).toEqual(["x a%b\nc y", "a%b"].map((l) => l.replace("a%b\nc", "***")));
  });

  it("::stop-commands:: turns every command off until its own end marker", () => {
    const p = run(["::stop-commands::tok", "::add-mask::x", "##[warning]y", "::other::", "::tok::", "::add-mask::z"]);
    expect(p.commands.map((c) => c.name)).toEqual(["stop-commands", "add-mask"]);
    expect(p.log).toEqual(["::add-mask::x", "##[warning]y", "::other::"]);
  });
});

describe("parseAction", () => {
  it("reads this repository's action.yml: inputs with defaults, and every step", () => {
    const a = parseAction(readFileSync(join(ROOT, "action.yml"), "utf8"));
    expect(a.inputs.federation).toEqual({ default: "client-assertion" });
    expect(a.inputs["env-name"]).toEqual({ default: "MCP_AUTH_TOKEN" });
    expect(a.steps.map((s) => [s.name, s.shell])).toEqual([
      ["Install mcp-auth", "bash"],
      ["Get the token", "bash"],
    ]);
    expect(a.steps[1]!.env.INPUT_CLIENT_ID).toBe("${{ inputs.client-id }}");
  });

  it("refuses what it does not understand rather than guess", () => {
    expect(() => parseAction("runs:\n  using: composite\n  steps:\n    - uses: actions/checkout@v4\n")).toThrow(/not understood/);
  });
});
