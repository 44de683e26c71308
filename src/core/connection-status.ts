/**
 * Status of a connection we make (an output pushing, a pull input playing), in the
 * vocabulary operators know from hosted services, plus `idle` for "not connected because
 * there is nothing to carry". Transitions are explicit: an impossible one is a bug.
 */
export type ConnectionStatus =
  | 'new_configuration_accepted'
  | 'connected'
  | 'reconnecting'
  | 'reconnected'
  | 'failed_to_connect'
  | 'failed_to_reconnect'
  | 'idle';

const ALLOWED: Record<ConnectionStatus, readonly ConnectionStatus[]> = {
  new_configuration_accepted: ['connected', 'failed_to_connect', 'idle'],
  connected: ['reconnecting', 'idle'],
  // From idle, reconnecting is also the way back for a connection that never came up.
  reconnecting: ['reconnected', 'failed_to_reconnect', 'connected', 'failed_to_connect', 'idle'],
  reconnected: ['reconnecting', 'idle'],
  failed_to_connect: ['connected', 'idle'],
  failed_to_reconnect: ['reconnected', 'idle'],
  // Wanted again, a connection is reconnecting first, whatever its attempts then give.
  idle: ['reconnecting'],
};

/** The statuses in which the connection is up. */
export const CONNECTED_STATUSES: ReadonlySet<ConnectionStatus> = new Set(['connected', 'reconnected']);

export function canTransition(from: ConnectionStatus, to: ConnectionStatus): boolean {
  return from === to || ALLOWED[from].includes(to);
}

export interface ConnectionCounters {
  /** Connection attempts made, successful or not. */
  attempts: number;
  /** Times a connection was re-established after the first. */
  reconnects: number;
  /** Consecutive failed attempts since the last success. */
  consecutiveFailures: number;
  lastError: string | undefined;
  lastErrorAt: Date | undefined;
  connectedAt: Date | undefined;
  /** When the next attempt is due, while one is scheduled. */
  nextAttemptAt: Date | undefined;
}
