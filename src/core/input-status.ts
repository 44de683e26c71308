/**
 * Status of a push input, in the vocabulary operators know from hosted services.
 * Transitions are explicit so an impossible one is a bug caught at the call site.
 * `ttl_exceeded` is a publisher the relay dropped itself, for sending no media for
 * `rtmp.idleTimeoutMs` or an SRT input's `idleTimeoutMs` (its connection outlived its
 * time to live without data);
 * `client_disconnect` is every other end of a publisher's connection.
 */
export type PushInputStatus = 'idle' | 'connected' | 'reconnected' | 'client_disconnect' | 'ttl_exceeded';

export type PushInputEvent = 'publisher_connected' | 'publisher_left' | 'publisher_timed_out';

/** The reason a publisher's connection gives when the relay dropped it for sending no media. */
export const IDLE_TIMEOUT_REASON = 'idle_timeout';

const ALLOWED: Record<PushInputStatus, readonly PushInputStatus[]> = {
  idle: ['connected'],
  connected: ['client_disconnect', 'ttl_exceeded'],
  client_disconnect: ['reconnected'],
  ttl_exceeded: ['reconnected'],
  reconnected: ['client_disconnect', 'ttl_exceeded'],
};

export function nextPushStatus(from: PushInputStatus, event: PushInputEvent): PushInputStatus {
  const to: PushInputStatus =
    event === 'publisher_left' ? 'client_disconnect' : event === 'publisher_timed_out' ? 'ttl_exceeded' : from === 'idle' ? 'connected' : 'reconnected';
  if (!ALLOWED[from].includes(to)) throw new Error(`push input status cannot go from ${from} to ${to}`);
  return to;
}
