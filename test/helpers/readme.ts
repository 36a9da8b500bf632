/** Reading the README's commands, for test/readme.test.ts (they exist) and test/readme-run.test.ts (they run). */

/** Shell words of one command line: quotes grouped, no expansion. */
export function words(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** Every `mcp-auth …` invocation in the README, as written. */
export function readmeCommands(md: string): string[] {
  const found: string[] = [];
  const scan = (text: string) => {
    for (const piece of text.split(/\|\||&&|[|;]|\$\(|\)|`/)) {
      const m = /(?:^|\s)(?:npx\s+(?:-y\s+)?(?:mcp-auth-cli|mcp-auth)|mcp-auth)\s+(.*)$/.exec(piece.trim());
      if (m && !/^[A-Za-z_]+=/.test(m[1]!)) found.push(`mcp-auth ${m[1]!.trim()}`);
    }
  };
  for (const block of md.matchAll(/```(?:sh|bash|shell|console|yaml|yml)\n([\s\S]*?)```/g)) {
    const joined = block[1]!.replace(/\\\n\s*/g, " ");
    for (const raw of joined.split("\n")) scan(raw.replace(/\s+#\s.*$/, "").replace(/^\s*#.*$/, ""));
  }
  for (const inline of md.replace(/```[\s\S]*?```/g, "").matchAll(/`((?:npx\s+)?mcp-auth\s[^`]+)`/g)) scan(inline[1]!);
  return [...new Set(found)];
}

