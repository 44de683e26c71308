import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FlowRegistry } from '../../src/core/flow-registry.js';
import type { Flow } from '../../src/core/flow.js';
import { CidrList } from '../../src/policy/cidr.js';
import { ConnectionAdmission } from '../../src/policy/connection-admission.js';
import { SrtIngest } from '../../src/srt/srt-ingest.js';
import type { SrtRuntime } from '../../src/srt/runtime.js';
import { SrtReject, type SrtHandshake, type SrtListenOptions } from '../../src/srt/types.js';

const PLAY_KEY = 'play-key-0123456789abcdef';

/**
 * SrtIngest's bookkeeping of refusals, without libsrt: the runtime's part (calling
 * onHandshake inside the handshake, then onRejected with the same object on a later
 * tick) is covered end to end in test/e2e/srt.test.ts and limits.test.ts. Here the flows
 * change between the two calls, which the real runtime cannot be made to do on cue.
 */
describe('SrtIngest refusal counting', () => {
  function setup() {
    const flows = new Map<string, Flow>();
    flows.set('show', { id: 'show', spec: { enabled: true, playbackKey: PLAY_KEY, inputs: [] } } as unknown as Flow);
    const registry = { get: (id: string) => flows.get(id) } as unknown as FlowRegistry;
    let options: SrtListenOptions | undefined;
    const runtime = {
      listen(o: SrtListenOptions) {
        options = o;
        return { port: 9000, close: async () => {} };
      },
    } as unknown as SrtRuntime;
    const admission = new ConnectionAdmission({ maxConnections: 10, maxConnectionsPerAddress: 10, allow: CidrList.parse([]), deny: CidrList.parse([]) });
    const ingest = new SrtIngest(runtime, registry, { host: '127.0.0.1', port: 0, latencyMs: 120 }, admission, pino({ level: 'silent' }));
    ingest.start();
    return { flows, listener: options!, ingest };
  }

  it('counts a refusal as the handshake decided it, even when the flows changed before it is counted', () => {
    const { flows, listener, ingest } = setup();
    const handshake: SrtHandshake = { peer: { address: '127.0.0.1', port: 5000, family: 4 }, streamId: '#!::r=show,m=request,s=wrong-key-0123456789' };
    const decision = listener.onHandshake!(handshake);
    expect(decision).toEqual({ accept: false, reason: SrtReject.Unauthorized });
    // The flow is removed before the runtime reports the refusal: routing again now would say not_found.
    flows.delete('show');
    listener.onRejected!(handshake, SrtReject.Unauthorized);
    expect(ingest.report().refusals).toEqual({ wrong_key: 1 });
  });

  it('counts a refusal the runtime made without asking (no verdict) as "refused"', () => {
    const { listener, ingest } = setup();
    listener.onRejected!({ peer: { address: '', port: 0, family: 4 }, streamId: '' }, 1000);
    expect(ingest.report().refusals).toEqual({ refused: 1 });
  });

  it('a handshake that was accepted leaves nothing to count', () => {
    const { listener, ingest } = setup();
    const handshake: SrtHandshake = { peer: { address: '127.0.0.1', port: 5001, family: 4 }, streamId: `#!::r=show,m=request,s=${PLAY_KEY}` };
    expect(listener.onHandshake!(handshake)).toEqual({ accept: true });
    expect(ingest.report().refusals).toEqual({});
  });
});
