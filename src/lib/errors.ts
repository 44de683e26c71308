/**
 * Errors that cross module boundaries carry a stable `code` so callers (and later the
 * HTTP API, which maps codes to statuses in one place) never match on message text.
 */
export class FlowrelayError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FlowrelayError';
  }
}

/**
 * Raised by the sans-I/O codecs for bytes that violate the protocol or a cap.
 * It always closes exactly one connection, never the daemon.
 */
export class ProtocolError extends FlowrelayError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}
