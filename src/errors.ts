/**
 * Typed errors and the exit codes they map to. Only src/main.ts turns these into an exit code;
 * everything below the command layer throws.
 *
 * Exit codes (stable, documented in the README and `--help`):
 *   0 ok · 1 other failure · 2 usage · 3 network / IdP unreachable or malformed response
 *   4 authentication required or credentials refused · 5 a file cannot be parsed or changed under us
 *   130 interrupted (Ctrl-C)
 */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  NETWORK: 3,
  AUTH: 4,
  FILE: 5,
  INTERRUPTED: 130,
} as const;

export interface ErrorOptions {
  hint?: string;
  cause?: unknown;
  code?: string;
}

export class McpAuthError extends Error {
  readonly exitCode: number = ExitCode.FAILURE;
  readonly hint?: string;
  readonly code?: string;
  constructor(message: string, opts: ErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.hint = opts.hint;
    this.code = opts.code;
  }
}

/** Bad flags or arguments: exit 2. */
export class UsageError extends McpAuthError {
  override readonly exitCode = ExitCode.USAGE;
}

/** The IdP or server could not be reached, timed out, or answered something we cannot use: exit 3. */
export class NetworkError extends McpAuthError {
  override readonly exitCode = ExitCode.NETWORK;
}

/** Login needed, or the IdP refused our credentials/grant: exit 4. */
export class AuthError extends McpAuthError {
  override readonly exitCode = ExitCode.AUTH;
}

/** A file we must read or edit is unparsable or changed under us (left untouched): exit 5. */
export class FileError extends McpAuthError {
  override readonly exitCode = ExitCode.FILE;
}

/** The message was already printed; exit with the given code and print nothing more. */
export class SilentError extends McpAuthError {
  override readonly exitCode: number;
  constructor(exitCode: number = ExitCode.FAILURE) {
    super("");
    this.exitCode = exitCode;
  }
}
