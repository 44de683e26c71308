/**
 * Every API response has the same envelope, shaped like the hosted services operators
 * know: `{ success, errors: [{ code, message }], messages, result }`. Error codes are
 * stable strings that scripts may match on; messages are for people.
 */
export interface ApiError {
  code: string;
  message: string;
}

export interface Envelope<T> {
  success: boolean;
  errors: ApiError[];
  messages: string[];
  result: T | null;
}

export function ok<T>(result: T, messages: string[] = []): Envelope<T> {
  return { success: true, errors: [], messages, result };
}

export function failure(errors: ApiError[]): Envelope<never> {
  return { success: false, errors, messages: [], result: null };
}

/** The stable error codes, with their HTTP status. */
export const ERRORS = {
  unauthorized: 401,
  invalid_token: 401,
  forbidden: 403,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  /** The config file cannot be written (read-only mount): change it at its source. */
  config_not_writable: 409,
  /** The change is in the config file, but applying it failed (the state directory cannot be written). */
  not_applied: 500,
  validation_error: 400,
  /** A request body over 1 MiB. */
  payload_too_large: 413,
  /** A body that is not application/json. */
  unsupported_media_type: 415,
  /** A task whose endTime is not after its startTime, or not after now. */
  illegal_duration: 400,
  /** A limit such as recordJobs.maxActive is reached; try again later. */
  limit_exceeded: 429,
  /** The requested byte range is outside the file (downloads). */
  range_not_satisfiable: 416,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERRORS;
