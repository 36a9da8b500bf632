import { UsageError } from "../errors.js";

/**
 * A command line typed as one string (`add-client … --stdio-command 'npx -y server --flag "a b"'`) as
 * the argument vector `mcp-auth exec` will run, without a shell: words split at whitespace, '…' taken
 * literally, "…" and a backslash outside quotes escaping the next character as POSIX sh does. Shell
 * syntax (pipes, redirections, $VARIABLES, `…`, ;, &) would not do what it says without a shell, so it
 * is refused unless quoted.
 */
export function splitCommand(line: string, flag = "--stdio-command"): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let i = 0;
  const fail = (why: string) => {
    throw new UsageError(`${flag}: ${why}`, { hint: "mcp-auth runs the command without a shell: quote special characters, or put a script around a pipeline" });
  };
  while (i < line.length) {
    const c = line[i]!;
    // A shell ends a command at a line break, as at ";": the next line would be a second command.
    if (c === "\n" || c === "\r") fail("a line break would end the command in a shell");
    if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) fail("unterminated ' quote");
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= line.length) fail('unterminated " quote');
        const d = line[i]!;
        if (d === '"') break;
        if (d === "\\" && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) {
          word += line[i + 1];
          i += 2;
        } else if (d === "$" || d === "`") fail(`${d} inside "…" would be expanded by a shell; use '…' to mean it literally`);
        else {
          word += d;
          i++;
        }
      }
      inWord = true;
      i++;
    } else if (c === "\\") {
      if (i + 1 >= line.length) fail("a trailing backslash");
      word += line[i + 1];
      inWord = true;
      i += 2;
    } else if ("|&;<>()$`*?[]{}~#".includes(c) && !(inWord && "#~".includes(c))) {
      fail(`"${c}" is shell syntax`);
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  if (!words.length) fail("no command given");
  // eslint-disable-next-line no-control-regex
  if (words.some((w) => /[\x00-\x08\x0a-\x1f\x7f]/.test(w))) fail("control characters in the command");
  return words;
}

/** The stdio server of add-client's --stdio-command [--env-name VAR], as `mcp-auth exec` will run it. */
export function stdioServer(command: string | undefined, envName: string | undefined): { argv: string[]; envName?: string } | undefined {
  if (envName !== undefined && command === undefined) throw new UsageError("--env-name only applies with --stdio-command");
  if (command === undefined) return undefined;
  if (envName !== undefined && !ENV_NAME.test(envName)) throw new UsageError(`--env-name "${envName}" is not an environment variable name (letters, digits and _)`);
  return { argv: splitCommand(command), ...(envName && envName !== "MCP_AUTH_TOKEN" && { envName }) };
}

/** A name `mcp-auth exec --env-name` accepts. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
