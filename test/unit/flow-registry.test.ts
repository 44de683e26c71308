import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { FlowRegistry } from '../../src/core/flow-registry.js';
import { Flow, SILENT_PUBLISHER_REPLACE_MS, type FlowSpec, type InputSpec, type PushInputSpec } from '../../src/core/flow.js';
import type { ConnectionReport, FlowOutput, FlowPartsFactory, FlowPullInput } from '../../src/core/flow-parts.js';
import type { OutputConfig } from '../../src/config/schema.js';
import { IDLE_TIMEOUT_REASON, nextPushStatus } from '../../src/core/input-status.js';
import { FakeClock } from '../helpers/fake-clock.js';
import type { HubReader, HubSourceOwner, SourceHandle } from '../../src/core/stream-hub.js';
import type { MediaMessage } from '../../src/core/media.js';

const logger = pino({ level: 'silent' });

const KEYFRAME = Buffer.from([0x17, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x65]);

/** A fresh spec object every call, so "unchanged" is judged by value, not identity. */
function spec(id: string, over: Partial<FlowSpec> = {}): FlowSpec {
  return {
    id,
    name: `Flow ${id}`,
    enabled: true,
    inputs: [{ name: 'main', type: 'rtmp-push', streamKey: `${id}-publish-0123456789abcdef` }],
    outputs: [],
    playbackKey: `${id}-play-0123456789abcdef`,
    limits: { bitrateTolerance: 0.1, bitrateGraceSeconds: 5, bitrateWindowSeconds: 2, bitrateAction: 'disconnect', cidrs: [] },
    recording: { mode: 'off', format: 'mp4', segmentSeconds: 3600, timeoutSeconds: 30, path: '{flowId}/{flowId}_{date}_{time}' },
    failover: { afterMs: 1000, revert: false, revertAfterMs: 10_000 },
    ...over,
  };
}

/** Outputs and pull inputs that only record what the flow asked of them. */
class RecordingParts implements FlowPartsFactory {
  readonly events: string[] = [];
  createOutput(o: OutputConfig): FlowOutput {
    return this.part(`output ${o.name}`);
  }
  createPullInput(i: { name: string }): FlowPullInput {
    return this.part(`pull ${i.name}`);
  }
  createOwnPortInput(i: { name: string }): FlowPullInput {
    return this.part(`own-port ${i.name}`);
  }
  private part(label: string): FlowOutput & FlowPullInput {
    const events = this.events;
    return {
      name: label,
      start: () => void events.push(`start ${label}`),
      close: () => void events.push(`close ${label}`),
      report: () => ({}) as ConnectionReport,
    };
  }
}

const parts = (): RecordingParts => new RecordingParts();

function output(name: string, url = 'rtmp://127.0.0.1:1/live/x'): OutputConfig {
  return {
    name,
    type: 'rtmp',
    url,
    enabled: true,
    tls: { verify: true },
    reconnect: { initialDelayMs: 1000, maxDelayMs: 30000, resetAfterMs: 60000, failAfter: 5, giveUp: false },
    connectTimeoutMs: 10000,
    handshakeTimeoutMs: 10000,
    idleDisconnectMs: 30000,
    maxBacklog: 8 << 20,
  };
}

function input(name: string, streamKey: string): PushInputSpec {
  return { name, type: 'rtmp-push', streamKey };
}

class RecordingReader implements HubReader {
  readonly delivered: MediaMessage[] = [];
  readonly closed: string[] = [];
  ended = 0;
  deliver(message: MediaMessage): void {
    this.delivered.push(message);
  }
  sourceStarted(): void {}
  sourceEnded(): void {
    this.ended += 1;
  }
  hubClosed(reason: string): void {
    this.closed.push(reason);
  }
}

class Owner implements HubSourceOwner {
  readonly kicks: string[] = [];
  kick(reason: string): void {
    this.kicks.push(reason);
  }
}

function publishOk(flow: Flow, inputName: string, owner: HubSourceOwner = new Owner(), address = '192.0.2.10'): SourceHandle {
  const result = flow.publish(inputName, owner, address);
  if (!result.ok) throw new Error(`publish refused: ${result.reason}`);
  return result.source;
}

describe('FlowRegistry.apply', () => {
  it('adds flows', () => {
    const registry = new FlowRegistry(logger, parts());
    const result = registry.apply([spec('a'), spec('b')]);
    expect(result).toMatchObject({ outputs: {}, added: ['a', 'b'], removed: [], restarted: [], updated: [] });
    expect(registry.list().map((f) => f.id)).toEqual(['a', 'b']);
    expect(registry.get('a')?.spec).toEqual(spec('a'));
    expect(registry.get('c')).toBeUndefined();
  });

  it('leaves flows whose spec did not change alone', () => {
    const registry = new FlowRegistry(logger, parts());
    registry.apply([spec('a'), spec('b')]);
    const a = registry.get('a')!;
    const hub = a.hub;
    const result = registry.apply([spec('a'), spec('b')]);
    expect(result).toMatchObject({ outputs: {}, added: [], removed: [], restarted: [], updated: [] });
    expect(registry.get('a')).toBe(a);
    expect(registry.get('a')!.hub).toBe(hub);
  });

  it('removes flows, closes their hubs, and stops resolving their keys', () => {
    const registry = new FlowRegistry(logger, parts());
    registry.apply([spec('a'), spec('b')]);
    const b = registry.get('b')!;
    const reader = new RecordingReader();
    b.hub.addReader(reader);
    const owner = new Owner();
    publishOk(b, 'main', owner);

    const result = registry.apply([spec('a')]);
    expect(result).toMatchObject({ outputs: {}, added: [], removed: ['b'], restarted: [], updated: [] });
    expect(registry.get('b')).toBeUndefined();
    expect(reader.closed).toEqual(['flow removed from config']);
    expect(owner.kicks).toEqual(['flow removed from config']);
    expect(b.hub.live).toBe(false);
    expect(registry.findPublishTarget('b-publish-0123456789abcdef')).toBeUndefined();
    expect(registry.findPlayTarget('b-play-0123456789abcdef')).toBeUndefined();
    // The other flow still resolves.
    expect(registry.findPublishTarget('a-publish-0123456789abcdef')?.flow.id).toBe('a');
  });

  it('updates a name-only change in place: same Flow, same hub, nothing interrupted', () => {
    const registry = new FlowRegistry(logger, parts());
    registry.apply([spec('a')]);
    const flow = registry.get('a')!;
    const hub = flow.hub;
    const reader = new RecordingReader();
    hub.addReader(reader);
    const owner = new Owner();
    const source = publishOk(flow, 'main', owner);

    const result = registry.apply([spec('a', { name: 'Renamed' })]);
    expect(result).toMatchObject({ outputs: {}, added: [], removed: [], restarted: [], updated: ['a'] });
    expect(registry.get('a')).toBe(flow);
    expect(flow.hub).toBe(hub);
    expect(flow.spec.name).toBe('Renamed');
    expect(reader.closed).toEqual([]);
    expect(owner.kicks).toEqual([]);
    expect(hub.live).toBe(true);
    source.push('video', 0, KEYFRAME);
    expect(reader.delivered).toHaveLength(1);
    expect(registry.findPublishTarget('a-publish-0123456789abcdef')?.flow).toBe(flow);
    expect(flow.inputs.get('main')?.status).toBe('connected');
  });

  it('a changed stream key restarts only that input: same Flow and hub, players stay, the publisher is disconnected, the old key is gone', () => {
    const registry = new FlowRegistry(logger, parts());
    registry.apply([spec('a')]);
    const flow = registry.get('a')!;
    const hub = flow.hub;
    const reader = new RecordingReader();
    hub.addReader(reader);
    const owner = new Owner();
    const source = publishOk(flow, 'main', owner);

    const result = registry.apply([spec('a', { inputs: [input('main', 'a-new-publish-key-0000000000')] })]);
    expect(result).toMatchObject({ added: [], removed: [], restarted: [], updated: ['a'], inputs: { a: { added: [], removed: [], restarted: ['main'] } } });
    expect(registry.get('a')).toBe(flow);
    expect(flow.hub).toBe(hub);
    expect(owner.kicks).toEqual(['input configuration changed']);
    source.detach('kicked'); // what the kicked publisher's session does
    expect(hub.live).toBe(false);
    expect(reader.closed).toEqual([]);
    expect(reader.ended).toBe(1);
    expect(registry.findPublishTarget('a-publish-0123456789abcdef')).toBeUndefined();
    expect(registry.findPublishTarget('a-new-publish-key-0000000000')?.flow).toBe(flow);
    // The input starts over idle and accepts the next publisher; the reader sees it start.
    expect(flow.inputs.get('main')?.status).toBe('idle');
    publishOk(flow, 'main');
    expect(hub.live).toBe(true);
  });

  it('changes an input in place, and adds a backup in place; restarts on a playback key change or an enabled change', () => {
    const registry = new FlowRegistry(logger, parts());
    registry.apply([spec('a'), spec('b'), spec('c'), spec('d')]);
    const before = ['a', 'b', 'c', 'd'].map((id) => registry.get(id)!);
    const result = registry.apply([
      spec('a', { playbackKey: 'a-other-play-key-000000000' }),
      spec('b', { inputs: [input('main', 'b-new-key-0123456789abcdef')] }),
      spec('c', { enabled: false }),
      spec('d', { inputs: [input('main', 'd-publish-0123456789abcdef'), input('backup', 'd-backup-0123456789abcdef')] }),
    ]);
    expect(result.restarted).toEqual(['a', 'c']);
    expect(result.updated).toEqual(['b', 'd']);
    expect(result.inputs.b).toEqual({ added: [], removed: [], restarted: ['main'] });
    expect(result.inputs.d).toEqual({ added: ['backup'], removed: [], restarted: [] });
    expect(registry.get('a')).not.toBe(before[0]);
    expect(registry.get('b')).toBe(before[1]);
    expect(registry.get('c')).not.toBe(before[2]);
    expect(registry.get('d')).toBe(before[3]);
    expect(registry.get('d')!.failover).toBeDefined();
    expect(registry.findPlayTarget('a-play-0123456789abcdef')).toBeUndefined();
    expect(registry.findPlayTarget('a-other-play-key-000000000')?.id).toBe('a');
    expect(registry.findPublishTarget('b-new-key-0123456789abcdef')).toMatchObject({ inputName: 'main' });
    expect(registry.findPublishTarget('b-publish-0123456789abcdef')).toBeUndefined();
    expect(registry.findPublishTarget('d-backup-0123456789abcdef')).toMatchObject({ inputName: 'backup' });
  });

  it('a backup added to a live one-input flow: the primary goes behind the switch without a break, and fails over to the backup', () => {
    const clock = new FakeClock();
    const main = input('main', 'g-main-0123456789abcdef');
    const flow = new Flow(spec('g', { inputs: [main] }), logger, parts(), {}, () => clock.now(), undefined, clock);
    const reader = new RecordingReader();
    flow.hub.addReader(reader);
    const primaryOwner = new Owner();
    const primary = publishOk(flow, 'main', primaryOwner);
    primary.push('video', 0, KEYFRAME);
    expect(flow.updateInputs([main, input('backup', 'g-backup-0123456789abcdef')])).toEqual({ added: ['backup'], removed: [], restarted: [] });
    expect(flow.failover!.report()).toMatchObject({ active: 'main', inputs: [{ name: 'main', live: true }, { name: 'backup', live: false }] });
    primary.push('video', 40, KEYFRAME);
    expect(reader.delivered.map((m) => m.timestamp)).toEqual([0, 40]);
    expect(reader.ended).toBe(0);
    expect(primaryOwner.kicks).toEqual([]);
    // The backup publishes; the primary falls silent: the flow fails over to the backup.
    const backup = publishOk(flow, 'backup');
    for (let t = 0; t < 3_000; t += 100) {
      clock.advance(100);
      backup.push('video', t, KEYFRAME);
    }
    expect(flow.failover!.report()).toMatchObject({ active: 'backup', switches: 1 });
    expect(reader.ended).toBe(0);
    // The primary's publisher leaving is seen by the switch, not as the end of the flow.
    primary.detach('gone');
    expect(flow.inputLive('main')).toBe(false);
    expect(reader.ended).toBe(0);
    flow.close('done');
  });

  it('a backup added to a flow whose one input pulls restarts that pull on its side of the switch', () => {
    const pull = { name: 'main', type: 'rtmp-pull', url: 'rtmp://127.0.0.1:1/live/x' } as unknown as InputSpec;
    const recorded = parts();
    const flow = new Flow(spec('p', { inputs: [pull] }), logger, recorded);
    flow.start();
    expect(flow.updateInputs([pull, input('backup', 'p-backup-0123456789abcdef')])).toEqual({ added: ['backup'], removed: [], restarted: ['main'] });
    expect(recorded.events).toEqual(['start pull main', 'close pull main', 'start pull main']);
    expect(flow.failover).toBeDefined();
    flow.close('done');
  });

  it('changes failover timings in place: the flow and its live publishers stay', () => {
    const registry = new FlowRegistry(logger, parts());
    const inputs = [input('main', 'f-main-0123456789abcdef'), input('backup', 'f-backup-0123456789abcdef')];
    registry.apply([spec('f', { inputs })]);
    const flow = registry.get('f')!;
    const primary = new Owner();
    publishOk(flow, 'main', primary).push('video', 0, KEYFRAME);
    const failover = { afterMs: 60_000, revert: true, revertAfterMs: 5_000 };
    expect(registry.apply([spec('f', { inputs, failover })])).toMatchObject({ updated: ['f'], restarted: [] });
    expect(registry.get('f')).toBe(flow);
    expect(flow.spec.failover).toEqual(failover);
    expect(primary.kicks).toEqual([]);
    flow.close('done');
  });

  it('new failover timings apply to the running switch', () => {
    const clock = new FakeClock();
    const inputs = [input('main', 'f-main-0123456789abcdef'), input('backup', 'f-backup-0123456789abcdef')];
    const flow = new Flow(spec('f', { inputs }), logger, parts(), {}, () => clock.now(), undefined, clock);
    publishOk(flow, 'main').push('video', 0, KEYFRAME);
    const backup = publishOk(flow, 'backup');
    flow.updateFailover({ afterMs: 60_000, revert: false, revertAfterMs: 10_000 });
    // The primary goes silent while the backup sends: the old afterMs (1 s) would switch.
    for (let t = 0; t < 5_000; t += 100) {
      clock.advance(100);
      backup.push('video', t, KEYFRAME);
    }
    expect(flow.failover!.report()).toMatchObject({ active: 'main', switches: 0 });
    flow.updateFailover({ afterMs: 1_000, revert: false, revertAfterMs: 10_000 });
    for (let t = 5_000; t < 7_000; t += 100) {
      clock.advance(100);
      backup.push('video', t, KEYFRAME);
    }
    expect(flow.failover!.report()).toMatchObject({ active: 'backup', switches: 1 });
    flow.close('done');
  });

  it('a flow whose parts cannot be built stays stopped and is reported; the other flows are applied', () => {
    class BrokenOutputs extends RecordingParts {
      override createOutput(o: OutputConfig): FlowOutput {
        if (o.name === 'broken') throw new Error('cannot build output broken');
        return super.createOutput(o);
      }
    }
    const registry = new FlowRegistry(logger, new BrokenOutputs());
    registry.apply([spec('a')]);
    const a = registry.get('a')!;
    const result = registry.apply([spec('a', { outputs: [output('broken')] }), spec('b'), spec('c', { outputs: [output('broken')] })]);
    expect(result).toMatchObject({ added: ['b'], updated: [], failed: [{ id: 'a', error: 'cannot build output broken' }, { id: 'c', error: 'cannot build output broken' }] });
    expect(registry.get('a')).toBeUndefined();
    expect(a.hub.readerCount).toBe(0);
    expect(registry.get('c')).toBeUndefined();
    expect(registry.get('b')).toBeDefined();
    expect(registry.findPublishTarget('b-publish-0123456789abcdef')).toBeDefined();
    expect(registry.findPublishTarget('a-publish-0123456789abcdef')).toBeUndefined();
    // Fixed, the next apply starts it.
    expect(registry.apply([spec('a'), spec('b'), spec('c')])).toMatchObject({ added: ['a', 'c'], failed: [] });
  });

  it('a name change together with another change is a restart, not an update', () => {
    const registry = new FlowRegistry(logger, parts());
    registry.apply([spec('a')]);
    const result = registry.apply([spec('a', { name: 'X', playbackKey: 'a-changed-play-key-0000000' })]);
    expect(result).toMatchObject({ outputs: {}, added: [], removed: [], restarted: ['a'], updated: [] });
  });

  it('reports adds, removes, restarts and updates of one apply together', () => {
    const registry = new FlowRegistry(logger, parts());
    registry.apply([spec('a'), spec('b'), spec('c'), spec('d')]);
    const result = registry.apply([
      spec('a'),
      spec('b', { name: 'B!' }),
      spec('c', { playbackKey: 'c-new-play-key-00000000000' }),
      spec('e'),
    ]);
    expect(result).toMatchObject({ outputs: {}, added: ['e'], removed: ['d'], restarted: ['c'], updated: ['b'] });
    expect(registry.list().map((f) => f.id).sort()).toEqual(['a', 'b', 'c', 'e']);
  });

  it('moves a key from one flow to another in one apply', () => {
    const registry = new FlowRegistry(logger, parts());
    const shared = 'shared-key-0123456789abcdef';
    registry.apply([spec('a', { inputs: [input('main', shared)] }), spec('b')]);
    expect(registry.findPublishTarget(shared)?.flow.id).toBe('a');
    registry.apply([spec('a'), spec('b', { inputs: [input('main', shared)] })]);
    expect(registry.findPublishTarget(shared)?.flow.id).toBe('b');
  });

  it('close() closes every flow and forgets every key', () => {
    const registry = new FlowRegistry(logger, parts());
    registry.apply([spec('a'), spec('b')]);
    const readers = ['a', 'b'].map((id) => {
      const r = new RecordingReader();
      registry.get(id)!.hub.addReader(r);
      return r;
    });
    registry.close('daemon stopping');
    expect(readers.map((r) => r.closed)).toEqual([['daemon stopping'], ['daemon stopping']]);
    expect(registry.list()).toEqual([]);
    expect(registry.findPublishTarget('a-publish-0123456789abcdef')).toBeUndefined();
    expect(registry.findPlayTarget('a-play-0123456789abcdef')).toBeUndefined();
  });
});

describe('FlowRegistry key lookup', () => {
  const registry = new FlowRegistry(logger, parts());
  registry.apply([
    spec('a', { inputs: [input('main', 'a-main-key-0123456789'), input('backup', 'a-backup-key-0123456789')] }),
    spec('b'),
  ]);

  it('finds the flow and input for a stream key', () => {
    const main = registry.findPublishTarget('a-main-key-0123456789');
    expect(main?.flow).toBe(registry.get('a'));
    expect(main?.inputName).toBe('main');
    expect(registry.findPublishTarget('a-backup-key-0123456789')?.inputName).toBe('backup');
    expect(registry.findPublishTarget('b-publish-0123456789abcdef')?.flow).toBe(registry.get('b'));
  });

  it('finds the flow for a playback key', () => {
    expect(registry.findPlayTarget('a-play-0123456789abcdef')).toBe(registry.get('a'));
    expect(registry.findPlayTarget('b-play-0123456789abcdef')).toBe(registry.get('b'));
  });

  it('rejects a wrong key, a same-length key with different bytes, a prefix, a case change and the empty key', () => {
    const right = 'a-main-key-0123456789';
    const sameLength = 'a-main-key-0123456780';
    expect(sameLength.length).toBe(right.length);
    for (const k of ['nope', sameLength, right.slice(0, -1), `${right}x`, right.toUpperCase(), ` ${right}`, '']) {
      expect(registry.findPublishTarget(k)).toBeUndefined();
    }
    const play = 'a-play-0123456789abcdef';
    for (const k of ['nope', `${play.slice(0, -1)}0`, play.slice(1), '']) {
      expect(registry.findPlayTarget(k)).toBeUndefined();
    }
  });

  it('keeps the publish and play indexes apart', () => {
    expect(registry.findPublishTarget('a-play-0123456789abcdef')).toBeUndefined();
    expect(registry.findPlayTarget('a-main-key-0123456789')).toBeUndefined();
  });

  it('compares non-ASCII keys by their bytes', () => {
    const r = new FlowRegistry(logger, parts());
    r.apply([spec('u', { inputs: [input('main', 'clé-ünïcødé-0123456789')], playbackKey: 'plé-ünïcødé-0123456789' })]);
    expect(r.findPublishTarget('clé-ünïcødé-0123456789')?.inputName).toBe('main');
    expect(r.findPublishTarget('cle-unicode-0123456789')).toBeUndefined();
    expect(r.findPlayTarget('plé-ünïcødé-0123456789')?.id).toBe('u');
  });
});

describe('Flow.publish', () => {
  it('attaches a publisher and feeds the hub', () => {
    const flow = new Flow(spec('a'), logger, parts());
    const reader = new RecordingReader();
    flow.hub.addReader(reader);
    const source = publishOk(flow, 'main', new Owner(), '198.51.100.7');
    const state = flow.inputs.get('main')!;
    expect(state.status).toBe('connected');
    expect(state.remoteAddress).toBe('198.51.100.7');
    expect(state.connectedAt).toBeInstanceOf(Date);
    expect(state.publishes).toBe(1);
    source.push('video', 0, KEYFRAME);
    expect(reader.delivered.map((m) => m.payload)).toEqual([KEYFRAME]);
  });

  it('refuses a second publisher on an input as busy and counts it; a backup input has a publisher of its own', () => {
    const flow = new Flow(spec('a', { inputs: [input('main', 'k1-0123456789'), input('backup', 'k2-0123456789')] }), logger, parts());
    publishOk(flow, 'main');
    const second = flow.publish('main', new Owner(), '192.0.2.2');
    expect(second).toEqual({ ok: false, reason: 'busy', message: expect.any(String) });
    expect(flow.inputs.get('main')!.refusedBusy).toBe(1);
    // Primary and backup: the backup publishes alongside the primary.
    expect(flow.publish('backup', new Owner(), '192.0.2.3')).toMatchObject({ ok: true });
    expect(flow.publish('backup', new Owner(), '192.0.2.4')).toMatchObject({ ok: false, reason: 'busy' });
    expect(flow.inputs.get('backup')!.refusedBusy).toBe(1);
    // The refused attempts did not disturb the live publishers' state.
    expect(flow.inputs.get('main')!.status).toBe('connected');
    expect(flow.inputs.get('main')!.publishes).toBe(1);
    expect(flow.inputs.get('backup')!.status).toBe('connected');
    flow.close('done');
  });

  it('replaces a publisher that sent no media for SILENT_PUBLISHER_REPLACE_MS, never one that is sending', () => {
    let now = 10_000;
    const flow = new Flow(spec('a'), logger, parts(), {}, () => now);
    const reader = new RecordingReader();
    flow.hub.addReader(reader);
    const stale = new Owner();
    const first = publishOk(flow, 'main', stale, '192.0.2.1');
    first.push('video', 0, KEYFRAME);
    // Sending within the window: a newcomer is refused as busy, the first is untouched.
    now += SILENT_PUBLISHER_REPLACE_MS - 1;
    first.push('video', 33, KEYFRAME);
    now += SILENT_PUBLISHER_REPLACE_MS - 1;
    expect(flow.publish('main', new Owner(), '192.0.2.2')).toMatchObject({ ok: false, reason: 'busy' });
    expect(stale.kicks).toEqual([]);
    // Silent for the whole window (a half-open connection): the newcomer takes the input.
    now += 1;
    const second = publishOk(flow, 'main', new Owner(), '192.0.2.3');
    expect(stale.kicks).toEqual([expect.stringMatching(/^replaced by a new publisher after 3\.0 s without media/)]);
    const state = flow.inputs.get('main')!;
    expect(state).toMatchObject({ replacedSilent: 1, refusedBusy: 1, publishes: 2, remoteAddress: '192.0.2.3', status: 'reconnected' });
    // The old handle no longer reaches the hub; the new one does.
    first.push('video', 66, Buffer.from([0x17, 0x01, 0, 0, 0, 0xaa]));
    second.push('video', 0, KEYFRAME);
    expect(reader.delivered.map((m) => m.payload)).toEqual([KEYFRAME, KEYFRAME, KEYFRAME]);
    // A publisher that connected and has not sent media yet is given the same window.
    now += SILENT_PUBLISHER_REPLACE_MS - 1;
    expect(flow.publish('main', new Owner(), '192.0.2.4')).toMatchObject({ ok: false, reason: 'busy' });
    flow.close('done');
  });

  it('with failover, replaces a silent primary without touching the backup', () => {
    let now = 10_000;
    const flow = new Flow(spec('a', { inputs: [input('main', 'k1-0123456789'), input('backup', 'k2-0123456789')] }), logger, parts(), {}, () => now);
    const primary = new Owner();
    const backup = new Owner();
    publishOk(flow, 'main', primary).push('video', 0, KEYFRAME);
    publishOk(flow, 'backup', backup).push('video', 0, KEYFRAME);
    now += SILENT_PUBLISHER_REPLACE_MS;
    publishOk(flow, 'main', new Owner());
    expect(primary.kicks).toHaveLength(1);
    expect(backup.kicks).toEqual([]);
    expect(flow.inputLive('main') && flow.inputLive('backup')).toBe(true);
    expect(flow.inputs.get('backup')!).toMatchObject({ replacedSilent: 0, publishes: 1 });
    flow.close('done');
  });

  it('refuses publishing to a disabled flow, an unknown input, or a closed flow', () => {
    const disabled = new Flow(spec('a', { enabled: false }), logger, parts());
    expect(disabled.publish('main', new Owner(), 'x')).toMatchObject({ ok: false, reason: 'disabled' });
    expect(disabled.inputs.get('main')!.status).toBe('idle');

    const flow = new Flow(spec('b'), logger, parts());
    expect(flow.publish('nope', new Owner(), 'x')).toMatchObject({ ok: false, reason: 'unknown_input' });
    flow.close('gone');
    expect(flow.publish('main', new Owner(), 'x')).toMatchObject({ ok: false, reason: 'disabled' });
    expect(flow.hub.live).toBe(false);
  });

  it('moves status idle -> connected -> client_disconnect -> reconnected -> client_disconnect', () => {
    const flow = new Flow(spec('a'), logger, parts());
    const state = flow.inputs.get('main')!;
    expect(state.status).toBe('idle');
    const first = publishOk(flow, 'main');
    expect(state.status).toBe('connected');
    first.detach('publisher left');
    expect(state.status).toBe('client_disconnect');
    expect(state.remoteAddress).toBeUndefined();
    expect(state.connectedAt).toBeUndefined();
    expect(flow.hub.live).toBe(false);
    const second = publishOk(flow, 'main', new Owner(), '203.0.113.5');
    expect(state.status).toBe('reconnected');
    expect(state.remoteAddress).toBe('203.0.113.5');
    second.detach('left again');
    expect(state.status).toBe('client_disconnect');
    publishOk(flow, 'main');
    expect(state.status).toBe('reconnected');
    expect(state.publishes).toBe(3);
  });

  it('a publisher the relay dropped for sending no media reads ttl_exceeded, not client_disconnect', () => {
    const flow = new Flow(spec('a'), logger, parts());
    const state = flow.inputs.get('main')!;
    publishOk(flow, 'main').detach(IDLE_TIMEOUT_REASON);
    expect(state.status).toBe('ttl_exceeded');
    publishOk(flow, 'main');
    expect(state.status).toBe('reconnected');
  });

  it('detach is idempotent', () => {
    const flow = new Flow(spec('a'), logger, parts());
    const source = publishOk(flow, 'main');
    source.detach('one');
    expect(() => source.detach('two')).not.toThrow();
    expect(flow.inputs.get('main')!.status).toBe('client_disconnect');
  });

  it('an old handle detaching late does not end the next publisher', () => {
    const flow = new Flow(spec('a'), logger, parts());
    const first = publishOk(flow, 'main');
    first.detach('left');
    publishOk(flow, 'main');
    first.detach('late');
    expect(flow.hub.live).toBe(true);
    expect(flow.inputs.get('main')!.status).toBe('reconnected');
  });

  it('close kicks the publisher and closes the hub; close is idempotent', () => {
    const flow = new Flow(spec('a'), logger, parts());
    const owner = new Owner();
    publishOk(flow, 'main', owner);
    flow.close('bye');
    flow.close('again');
    expect(owner.kicks).toEqual(['bye']);
    expect(flow.hub.live).toBe(false);
  });
});

describe('nextPushStatus', () => {
  it('follows the allowed transitions', () => {
    expect(nextPushStatus('idle', 'publisher_connected')).toBe('connected');
    expect(nextPushStatus('connected', 'publisher_left')).toBe('client_disconnect');
    expect(nextPushStatus('client_disconnect', 'publisher_connected')).toBe('reconnected');
    expect(nextPushStatus('reconnected', 'publisher_left')).toBe('client_disconnect');
    expect(nextPushStatus('connected', 'publisher_timed_out')).toBe('ttl_exceeded');
    expect(nextPushStatus('ttl_exceeded', 'publisher_connected')).toBe('reconnected');
    expect(nextPushStatus('reconnected', 'publisher_timed_out')).toBe('ttl_exceeded');
  });

  it('throws on impossible transitions', () => {
    expect(() => nextPushStatus('idle', 'publisher_left')).toThrow(/idle to client_disconnect/);
    expect(() => nextPushStatus('connected', 'publisher_connected')).toThrow(/connected to reconnected/);
    expect(() => nextPushStatus('reconnected', 'publisher_connected')).toThrow();
    expect(() => nextPushStatus('client_disconnect', 'publisher_left')).toThrow();
    expect(() => nextPushStatus('idle', 'publisher_timed_out')).toThrow(/idle to ttl_exceeded/);
    expect(() => nextPushStatus('ttl_exceeded', 'publisher_timed_out')).toThrow();
  });
});

describe('output changes', () => {
  it('adds, removes and restarts only the outputs that changed, keeping the flow and its input', () => {
    const recorder = new RecordingParts();
    const registry = new FlowRegistry(logger, recorder);
    registry.apply([spec('a', { outputs: [output('yt'), output('twitch'), output('fb')] })]);
    const flow = registry.get('a')!;
    const hub = flow.hub;
    expect(recorder.events).toEqual(['start output yt', 'start output twitch', 'start output fb']);
    recorder.events.length = 0;

    const result = registry.apply([spec('a', { outputs: [output('yt'), output('twitch', 'rtmp://127.0.0.1:2/live/y'), output('partner')] })]);
    expect(result).toMatchObject({ updated: ['a'], restarted: [], outputs: { a: { added: ['partner'], removed: ['fb'], restarted: ['twitch'] } } });
    expect(registry.get('a')).toBe(flow);
    expect(registry.get('a')!.hub).toBe(hub);
    expect(recorder.events).toEqual(['close output fb', 'close output twitch', 'start output twitch', 'start output partner']);
  });

  it('a disabled output is stopped like a removed one, and started again when enabled', () => {
    const recorder = new RecordingParts();
    const registry = new FlowRegistry(logger, recorder);
    registry.apply([spec('a', { outputs: [output('yt')] })]);
    registry.apply([spec('a', { outputs: [{ ...output('yt'), enabled: false }] })]);
    registry.apply([spec('a', { outputs: [output('yt')] })]);
    expect(recorder.events).toEqual(['start output yt', 'close output yt', 'start output yt']);
  });

  it('a disabled flow starts no outputs or pulls; closing a flow closes outputs before the hub', () => {
    const recorder = new RecordingParts();
    const registry = new FlowRegistry(logger, recorder);
    registry.apply([spec('off', { enabled: false, outputs: [output('yt')] })]);
    expect(recorder.events).toEqual([]);
    registry.apply([spec('on', { outputs: [output('yt')] })]);
    registry.close('test');
    expect(recorder.events).toEqual(['start output yt', 'close output yt']);
  });
});

describe('flow limits', () => {
  const owner = () => ({ kicked: [] as string[], kick(reason: string) { this.kicked.push(reason); } });

  it('refuses a publisher from an address outside limits.cidrs, and counts it', () => {
    const flow = new Flow(spec('a', { limits: { ...spec('a').limits, cidrs: ['127.0.0.1/32', '::1/128'] } }), logger, parts());
    expect(flow.publish('main', owner(), '127.0.0.2')).toMatchObject({ ok: false, reason: 'forbidden' });
    expect(flow.publish('main', owner(), '::ffff:127.0.0.2')).toMatchObject({ ok: false, reason: 'forbidden' });
    expect(flow.refusals.forbidden).toBe(2);
    const ok = flow.publish('main', owner(), '::ffff:127.0.0.1');
    expect(ok.ok).toBe(true);
    if (ok.ok) ok.source.detach('done');
    expect(flow.publish('main', owner(), '::1').ok).toBe(true);
  });

  it('kicks a publisher that stays above limits.maxBitrate past the grace period; warn only reports', () => {
    let now = 0;
    for (const action of ['disconnect', 'warn'] as const) {
      const limits = { ...spec('a').limits, maxBitrate: 2_000_000, bitrateAction: action };
      const flow = new Flow(spec('a', { limits }), logger, parts(), {}, () => now);
      const o = owner();
      const result = flow.publish('main', o, '127.0.0.1');
      if (!result.ok) throw new Error('refused');
      const frame = Buffer.alloc(30_000, 0); // 6 Mbit/s at 25 fps
      frame[0] = 0x27;
      frame[1] = 0x01;
      for (let i = 0; i < 25 * 12; i++, now += 40) result.source.push('video', now, frame);
      expect(flow.inputs.get('main')!.bitrateExceeded).toBeGreaterThan(0);
      expect(flow.inputs.get('main')!.lastViolation).toMatch(/^bitrate_exceeded: measured 6\.\d+ Mbit\/s, allowed 2\.20 Mbit\/s$/);
      expect(o.kicked.length > 0).toBe(action === 'disconnect');
    }
  });
});
