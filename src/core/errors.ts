/**
 * Errors with stable machine-readable codes. The same code appears in `--json` error events and decides
 * the exit code, in exactly one place: `exitCodeFor`.
 */

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  timeout: 3,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Error codes and the exit code each one maps to. Codes are part of the public interface: never rename. */
export const ErrorCodes = {
  // usage and data errors (exit 2)
  E_USAGE: ExitCode.usage,
  E_BAD_OPTION: ExitCode.usage,
  E_PARSE: ExitCode.usage,
  E_NOT_OBJECT: ExitCode.usage,
  E_BAD_KEY: ExitCode.usage,
  E_DUPLICATE_KEY: ExitCode.usage,
  E_BAD_COLLECTION: ExitCode.usage,
  E_BAD_FORMAT: ExitCode.usage,
  /** A document in the user's file or in `put` input carries `_deleted`, `_meta`, `_rev` or `_attachments`. */
  E_RESERVED_FIELD: ExitCode.usage,
  E_TLS_FILE: ExitCode.usage,
  E_TOKEN_FILE: ExitCode.usage,
  /** The signaling server refused our credentials (HTTP 401/403 at the WebSocket upgrade). */
  E_AUTH: ExitCode.usage,
  /** A topic secret that is missing, empty or unreadable, or given twice. */
  E_SECRET: ExitCode.usage,
  /** An allowlist (`--allow-peers`) that is missing, unreadable, empty or holds a malformed device id. */
  E_ALLOWLIST: ExitCode.usage,
  /** A device identity file (`<sidecar>.identity.pem`) that cannot be read or parsed; it is never overwritten. */
  E_IDENTITY: ExitCode.usage,
  /** Encryption at rest (docs/STORES.md): the key file is missing, empty or unreadable. */
  E_KEY_FILE: ExitCode.usage,
  /** The store is encrypted and no key was given (`--key-file` or `P2PSYNC_ENCRYPTION_KEY`). */
  E_KEY_REQUIRED: ExitCode.usage,
  /** The key does not open the store's keyring (its AEAD tag fails): a wrong key. */
  E_WRONG_KEY: ExitCode.usage,
  /** A stored value does not decrypt (tampered, moved to another document or field, or from another store). */
  E_DECRYPT: ExitCode.usage,
  /** The store's keyring file (`<sidecar>.keys`) is damaged or of an unknown version. */
  E_KEYRING: ExitCode.usage,
  /** `--conflict-handler`: the module cannot be loaded or lacks the functions (at start-up); at run time its error events. */
  E_CONFLICT_HANDLER: ExitCode.usage,
  /** `p2psync conflicts show|resolve` named a document without kept versions, or a version that does not exist. */
  E_NO_CONFLICT: ExitCode.usage,
  // timeouts and unreachable services (exit 3)
  E_TIMEOUT: ExitCode.timeout,
  E_UNREACHABLE: ExitCode.timeout,
  // runtime failures (exit 1)
  E_ADDR_IN_USE: ExitCode.failure,
  E_IO: ExitCode.failure,
  E_LOCKED: ExitCode.failure,
  /** A `put` or `rm` kept losing to concurrent writers of the same documents; running it again is safe. */
  E_BUSY: ExitCode.failure,
  E_SIDECAR: ExitCode.failure,
  /** `p2psync get` / `rm` named a document that does not exist (like grep finding nothing: exit 1). */
  E_NOT_FOUND: ExitCode.failure,
  E_PEER: ExitCode.failure,
  E_PROTOCOL: ExitCode.failure,
  E_SIGNALING: ExitCode.failure,
  E_INTERNAL: ExitCode.failure,
} as const satisfies Record<string, ExitCode>;
export type ErrorCode = keyof typeof ErrorCodes;

export class P2PSyncError extends Error {
  override readonly name = 'P2PSyncError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Structured detail for `--json` error events (file, line, column, key, ...). */
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function exitCodeFor(err: unknown): ExitCode {
  return err instanceof P2PSyncError ? ErrorCodes[err.code] : ExitCode.failure;
}

/** Turns anything thrown into a P2PSyncError, keeping the original as `cause`. */
export function toP2PSyncError(err: unknown, fallback: ErrorCode = 'E_INTERNAL'): P2PSyncError {
  if (err instanceof P2PSyncError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new P2PSyncError(fallback, message, {}, { cause: err });
}
