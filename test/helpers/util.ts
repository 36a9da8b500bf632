import { createServer } from "node:net";

/** A port that was free on 127.0.0.1 a moment ago (for servers that must be told their port up front). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Polls `what` every 100 ms until it matches `pattern` (a terminal screen, a log), or throws with the last value. */
export async function until(what: () => string, pattern: RegExp, tries = 300): Promise<string> {
  let last = "";
  for (let i = 0; i < tries; i++) {
    last = what();
    if (pattern.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never saw ${pattern} in:\n${last}`);
}
