import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { expect } from "vitest";

/**
 * One add-client golden case, as the client tests run it for every client: put the fixture config in
 * place (mode 0640), `add-client`, compare the written bytes with the golden (UPDATE_GOLDENS=1 rewrites
 * it) and the file mode, add again (nothing changes), then `remove-client` gives the file back byte for
 * byte, or removes the file it created. Returns what was there and what add-client wrote.
 */
export async function addRemoveRoundTrip(o: {
  run: (argv: string[]) => Promise<{ code: number; err: string }>;
  client: string;
  scope: string;
  args?: string[];
  /** The client's config file for that scope. */
  file: string;
  /** The fixture to start from, or null for no file. */
  fixture: string | null;
  golden: string;
  /** Machine-specific paths to placeholders. */
  normalise: (text: string) => string;
}): Promise<{ original: string | null; written: string }> {
  const original = o.fixture ? readFileSync(o.fixture, "utf8") : null;
  if (original !== null) {
    mkdirSync(dirname(o.file), { recursive: true });
    writeFileSync(o.file, original, { mode: 0o640 });
  }
  const argv = ["add-client", o.client, "--profile", "dev.k8s", "--scope", o.scope, ...(o.args ?? [])];
  const add = await o.run(argv);
  expect(add.code, add.err).toBe(0);
  const written = readFileSync(o.file, "utf8");
  if (process.env.UPDATE_GOLDENS) writeFileSync(o.golden, o.normalise(written));
  expect(o.normalise(written)).toBe(readFileSync(o.golden, "utf8"));
  expect(statSync(o.file).mode & 0o777).toBe(original === null ? (o.scope === "project" ? 0o644 : 0o600) : 0o640);

  // Again: nothing changes.
  const again = await o.run(argv);
  expect(again.code).toBe(0);
  expect(again.err).toContain("already configured");
  expect(readFileSync(o.file, "utf8")).toBe(written);

  // remove-client gives the file back byte for byte (or removes the file it created).
  const rm = await o.run(["remove-client", o.client, "--name", "dev-k8s", "--scope", o.scope]);
  expect(rm.code, rm.err).toBe(0);
  if (original === null) expect(existsSync(o.file)).toBe(false);
  else expect(readFileSync(o.file, "utf8")).toBe(original);
  return { original, written };
}
