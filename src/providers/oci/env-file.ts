import { resolve } from "node:path";
import { McpAuthError, type FileChange, planFile } from "../../sdk.js";

/**
 * The `.env` Oracle's sample MCP server reads (docs/idp/oci.md §7: IAM_DOMAIN,
 * IAM_CLIENT_ID, IAM_CLIENT_SECRET, IAM_GUID, IAM_TOKENEXCHANGE_CLIENT_ID/SECRET). Merged, not
 * rewritten: a key already there is replaced on its own line (keeping `export ` and the line
 * ending), missing keys are appended, every other line and comment stays byte for byte. The file
 * holds a client secret because the user asked for it: mode 0600, content never shown in a plan.
 */
export type EnvValues = Record<string, string | undefined>;

export function mergeEnv(before: string | null, values: EnvValues): string {
  const text = before ?? "";
  const eol = /\r\n/.test(text) ? "\r\n" : "\n";
  const lines = text === "" ? [] : text.split(/(?<=\n)/); // each line keeps its own terminator
  const done = new Set<string>();
  const out = lines.map((line) => {
    const m = /^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)(\s*=)/.exec(line);
    if (!m || !Object.hasOwn(values, m[2]!) || values[m[2]!] === undefined) return line;
    done.add(m[2]!);
    const ending = /\r?\n$/.exec(line)?.[0] ?? "";
    return `${m[1]}${m[2]}${m[3]}${quote(values[m[2]!]!)}${ending}`;
  });
  const added = Object.entries(values).filter(([k, v]) => v !== undefined && !done.has(k));
  if (!added.length) return out.join("");
  let result = out.join("");
  if (result !== "" && !result.endsWith("\n")) result += eol;
  for (const [k, v] of added) result += `${k}=${quote(v!)}${eol}`;
  return result;
}

/**
 * Bare when it is plainly safe for dotenv parsers (python-dotenv, node), else double-quoted. A value
 * with `$` (the IdP chose it) is single-quoted: dotenv parsers expand `${VAR}` and `$VAR` in bare and
 * double-quoted values, so the server reading the file would send its own environment on in it.
 */
function quote(v: string): string {
  if (/^[A-Za-z0-9_.:/@+\-]*$/.test(v)) return v;
  if (/\$/.test(v)) {
    if (/['\\\x00-\x1f\x7f]/.test(v)) throw new McpAuthError("refusing to write a value with \"$\" and a quote, backslash or control character into the .env file: no dotenv quoting keeps it literal");
    return `'${v}'`;
  }
  return `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

export function planEnvFile(path: string, values: EnvValues): FileChange {
  return planFile(resolve(path), (before) => mergeEnv(before, values), { description: "MCP server settings for OCI IAM (holds a client secret)", mode: 0o600, sensitive: true });
}
