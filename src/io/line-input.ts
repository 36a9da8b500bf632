import { ExitCode, SilentError } from "../errors.js";

/**
 * One pasted line from stdin, however long. A terminal in its usual (canonical) mode cuts a typed
 * line at 1024 bytes on macOS and 4096 on Linux, shorter than some authorization responses, so a
 * terminal is read in raw mode, unechoed (the line holds an authorization code). Whatever comes
 * after `max` characters is read to the end of the line and dropped, so nothing pasted is left
 * for the shell to run once mcp-auth exits; the caller sees a line of max + 1 characters and
 * refuses it. Ctrl-C ends the run (exit 130), Ctrl-D or the end of piped input ends the line.
 */
export type LineStream = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };

export function readLine(input: LineStream, o: { max: number; err: NodeJS.WritableStream }): Promise<string> {
  const raw = Boolean(input.isTTY && typeof input.setRawMode === "function");
  return new Promise((resolve, reject) => {
    // Piped input already read to its end (e.g. by --client-secret-stdin): nothing more will come.
    if ((input as { readableEnded?: boolean }).readableEnded) return resolve("");
    let line = "";
    let escape = false;
    const keep = (s: string) => {
      if (line.length <= o.max) line += s.slice(0, o.max + 1 - line.length);
    };
    const done = (e?: unknown) => {
      input.removeListener("data", onData);
      input.removeListener("end", onEnd);
      input.removeListener("error", onEnd);
      if (raw) input.setRawMode!(false);
      input.pause();
      if (raw) o.err.write("\n");
      if (e) reject(e);
      else resolve(line);
    };
    const onData = (chunk: Buffer | string) => {
      for (const c of chunk.toString()) {
        // Escape sequences (arrow keys, bracketed-paste markers) are not part of what was pasted.
        if (escape) {
          if (/[A-Za-z~]/.test(c)) escape = false;
          continue;
        }
        if (c === "\x1b") escape = true;
        else if (c === "\r" || c === "\n") return done();
        else if (raw && c === "\x03") {
          o.err.write("\nmcp-auth: interrupted");
          return done(new SilentError(ExitCode.INTERRUPTED));
        } else if (raw && c === "\x04") return done();
        else if (raw && (c === "\x7f" || c === "\b")) line = line.slice(0, -1);
        else if (raw && c === "\x15") line = "";
        else keep(c);
      }
    };
    const onEnd = () => done();
    input.on("data", onData);
    input.once("end", onEnd);
    input.once("error", onEnd);
    if (raw) input.setRawMode!(true);
    input.resume();
  });
}
