import { ExitCode } from "./errors.js";

/**
 * What to undo when the user presses Ctrl-C half-way: a lock file to remove, a profile the wizard
 * saved before the sign-in it was waiting for. The process's SIGINT handler (src/cli.ts) runs these,
 * last registered first, before it exits 130; a prompt's own Ctrl-C (ExitPromptError) is undone by
 * whoever registered, on the way out.
 */
const undos: Array<() => Promise<void> | void> = [];

/** Registers `fn`; the returned function unregisters it (call it once the work is done or kept). */
export function onInterrupt(fn: () => Promise<void> | void): () => void {
  undos.push(fn);
  return () => {
    const i = undos.lastIndexOf(fn);
    if (i >= 0) undos.splice(i, 1);
  };
}

/** Runs every registered undo, newest first; one failing does not stop the others. */
export async function undoAll(): Promise<void> {
  for (const fn of undos.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      /* best effort: the process is exiting */
    }
  }
}

/**
 * Ctrl-C at a prompt (@inquirer's ExitPromptError, as the exit-code map in src/cli.ts tells it), or
 * while a paste is read in raw mode (src/io/line-input.ts), where the terminal sends no SIGINT.
 */
export function isInterrupt(e: unknown): boolean {
  return (e as Error | undefined)?.name === "ExitPromptError" || (e as { exitCode?: unknown } | undefined)?.exitCode === ExitCode.INTERRUPTED;
}
