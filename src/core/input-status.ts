/**
 * Status of a push input, in the vocabulary operators know from hosted services.
 * Transitions are explicit so an impossible one is a bug caught at the call site.
 */
export type PushInputStatus = 'idle' | 'connected' | 'reconnected' | 'client_disconnect';

const ALLOWED: Record<PushInputStatus, readonly PushInputStatus[]> = {
  idle: ['connected'],
  connected: ['client_disconnect'],
  client_disconnect: ['reconnected'],
  reconnected: ['client_disconnect'],
};

export function nextPushStatus(from: PushInputStatus, event: 'publisher_connected' | 'publisher_left'): PushInputStatus {
  const to: PushInputStatus =
    event === 'publisher_left' ? 'client_disconnect' : from === 'idle' ? 'connected' : 'reconnected';
  if (!ALLOWED[from].includes(to)) throw new Error(`push input status cannot go from ${from} to ${to}`);
  return to;
}
