import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { playKey, publishKey, startInProcess } from '../helpers/daemon.js';
import { play, probeStreams, publish, videoFrames, waitFor, type Proc } from '../helpers/ffmpeg.js';
import { RawRtmp } from '../helpers/raw-rtmp.js';
import { publishSrt, recordSrt, srtUrl } from '../helpers/srt-tools.js';

/** A flow with an RTMP push input and extra per-flow limits. */
function limitedFlow(id: string, limits: string): string {
  return `  - id: ${id}
    inputs: [{ name: main, type: rtmp-push, streamKey: "${publishKey(id)}" }]
    playback: { key: "${playKey(id)}" }
    limits: ${limits}
`;
}

/** ffmpeg publishing constant-bitrate H.264 (x264 NAL-HRD CBR pads to the rate). */
function publishCbr(url: string, seconds: number, bitrate: string): Proc {
  const proc = spawn('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25',
    '-b:v', bitrate, '-minrate', bitrate, '-maxrate', bitrate, '-bufsize', bitrate, '-x264-params', 'nal-hrd=cbr',
    '-f', 'flv', url,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-5000)));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { proc, done };
}

describe('per-flow CIDR allow lists', () => {
  it('RTMP: a publisher from 127.0.0.2 is refused for a flow allowing only 127.0.0.1/32; one from 127.0.0.1 is accepted', async () => {
    const daemon = await startInProcess(`flows:\n${limitedFlow('local', '{ cidrs: ["127.0.0.1/32", "::1/128"] }')}`);
    try {
      const outsider = await RawRtmp.open(daemon.port, '127.0.0.2');
      await outsider.publish(publishKey('local'));
      expect(await outsider.closedWithin(5_000)).toBe(true);
      expect(outsider.receivedText()).toContain('NetStream.Publish.BadName');
      const flow = daemon.app.registry.get('local')!;
      expect(flow.refusals.forbidden).toBe(1);
      const ok = await publish(daemon.url(publishKey('local')), { seconds: 2 }).done;
      expect(ok.code, ok.stderr).toBe(0);
      expect(flow.inputs.get('main')!.publishes).toBe(1);
    } finally {
      await daemon.close();
    }
  });

  it('SRT: a caller outside the flow\'s list is refused in the handshake (1403); inside it is accepted', async () => {
    const logs: Record<string, unknown>[] = [];
    const pass = 'correct horse battery staple';
    const srtFlow = (id: string, cidrs: string) => `  - id: ${id}
    inputs: [{ name: main, type: srt-listener, streamKey: "srt-key-${id}-0123456789", passphrase: "${pass}" }]
    limits: { cidrs: ${cidrs} }
`;
    const daemon = await startInProcess(`srt: { listen: "127.0.0.1:0" }\nflows:\n${srtFlow('elsewhere', '["127.0.0.2/32"]')}${srtFlow('here', '["10.0.0.0/8", "127.0.0.1/32"]')}`, '', logs);
    try {
      const port = daemon.app.srtPort()!;
      const url = (id: string) => srtUrl(port, { mode: 'caller', passphrase: pass, streamId: `#!::r=${id},m=publish,s=srt-key-${id}-0123456789` });
      const refused = await publishSrt(url('elsewhere'), 2).done;
      expect(refused.code).not.toBe(0);
      expect(logs.some((l) => l.msg === 'srt caller refused' && l.reason === 1403)).toBe(true);
      expect(daemon.app.listeners().find((l) => l.protocol === 'srt')!.refusals).toEqual({ flow_address_denied: 1 });
      const accepted = publishSrt(url('here'), 3);
      await waitFor(() => daemon.app.registry.get('here')!.hub.live, 'allowed caller publishing', 10_000);
      expect((await accepted.done).code).toBe(0);
    } finally {
      await daemon.close();
    }
  });
});

describe('connection limits', () => {
  it('300 connections that send nothing are closed by the handshake timeout; a real publisher in the middle streams normally', async () => {
    const daemon = await startInProcess(`flows:\n${limitedFlow('real', '{}')}`, ', handshakeTimeoutMs: 2000');
    const idle: RawRtmp[] = [];
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-idle-'));
      for (let i = 0; i < 150; i++) idle.push(await RawRtmp.open(daemon.port));
      const player = play(daemon.url(playKey('real')), join(dir, 'real.flv'));
      const publisher = publish(daemon.url(publishKey('real')), { seconds: 6 });
      for (let i = 0; i < 150; i++) idle.push(await RawRtmp.open(daemon.port));
      const closed = await Promise.all(idle.map((c) => c.closedWithin(10_000)));
      expect(closed.every(Boolean)).toBe(true);
      expect((await publisher.done).code).toBe(0);
      expect((await player.done).code).toBe(0);
      expect(videoFrames(await probeStreams(join(dir, 'real.flv')))).toBeGreaterThanOrEqual(6 * 25 - 2);
    } finally {
      for (const c of idle) c.destroy();
      await daemon.close();
    }
  });

  it('per-address and listener deny limits refuse the new connection and leave the others alone', async () => {
    const daemon = await startInProcess(`flows:\n${limitedFlow('capped', '{}')}`, ', maxConnectionsPerAddress: 3, deny: ["127.0.0.3"]');
    const held: RawRtmp[] = [];
    try {
      for (let i = 0; i < 3; i++) held.push(await RawRtmp.open(daemon.port, '127.0.0.2'));
      const fourth = await RawRtmp.open(daemon.port, '127.0.0.2');
      expect(await fourth.closedWithin(2_000)).toBe(true);
      const denied = await RawRtmp.open(daemon.port, '127.0.0.3');
      expect(await denied.closedWithin(2_000)).toBe(true);
      // The three admitted ones are still open, and other addresses still get in.
      expect(await Promise.all(held.map((c) => c.closedWithin(200)))).toEqual([false, false, false]);
      const ok = await publish(daemon.url(publishKey('capped')), { seconds: 1 }).done;
      expect(ok.code, ok.stderr).toBe(0);
      const [rtmp] = daemon.app.listeners();
      expect(rtmp).toMatchObject({ protocol: 'rtmp', connections: 3, maxConnectionsPerAddress: 3, refusals: { too_many_from_address: 1, address_denied: 1 } });
    } finally {
      for (const c of held) c.destroy();
      await daemon.close();
    }
  });

  it('SRT: a caller over srt.maxConnectionsPerAddress is refused in the handshake (1402); the admitted players keep theirs, and a freed slot is taken again', async () => {
    const logs: Record<string, unknown>[] = [];
    const daemon = await startInProcess(`srt: { listen: "127.0.0.1:0", maxConnectionsPerAddress: 2 }\nflows:\n${limitedFlow('busy', '{}')}`, '', logs);
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-cap-'));
      const flow = daemon.app.registry.get('busy')!;
      const srt = () => daemon.app.listeners().find((l) => l.protocol === 'srt')!;
      const playUrl = srtUrl(daemon.app.srtPort()!, { mode: 'caller', streamId: `#!::r=busy,m=request,s=${playKey('busy')}` });
      const publisher = publish(daemon.url(publishKey('busy')), { seconds: 12 });
      await waitFor(() => flow.hub.live, 'publisher live');
      const players = ['a', 'b'].map((name) => recordSrt(playUrl, join(dir, `${name}.ts`), 4));
      await waitFor(() => srt().connections === 2, 'two SRT players admitted');
      const third = await recordSrt(playUrl, join(dir, 'c.ts'), 2).done;
      expect(third.code).not.toBe(0);
      expect(logs.some((l) => l.msg === 'srt caller refused' && l.reason === 1402)).toBe(true);
      expect(srt()).toMatchObject({ connections: 2, maxConnectionsPerAddress: 2, refusals: { too_many_from_address: 1 } });
      for (const [i, name] of ['a', 'b'].entries()) {
        const done = await players[i]!.done;
        expect(done.code, done.stderr).toBe(0);
        expect(videoFrames(await probeStreams(join(dir, `${name}.ts`)))).toBeGreaterThan(2 * 25);
      }
      // Both players left: their slots are free again.
      await waitFor(() => srt().connections === 0, 'SRT slots released');
      const later = await recordSrt(playUrl, join(dir, 'later.ts'), 2).done;
      expect(later.code, later.stderr).toBe(0);
      expect(videoFrames(await probeStreams(join(dir, 'later.ts')))).toBeGreaterThan(25);
      expect(srt().refusals).toEqual({ too_many_from_address: 1 });
      expect((await publisher.done).code).toBe(0);
    } finally {
      await daemon.close();
    }
  });
});

describe('bitrate caps', () => {
  it('a ~6 Mbit/s publisher into a 2 Mbit/s cap is disconnected with bitrate_exceeded; a 1 Mbit/s one streams untouched', async () => {
    const logs: Record<string, unknown>[] = [];
    const cap = '{ maxBitrate: 2M, bitrateGraceSeconds: 3 }';
    const daemon = await startInProcess(`flows:\n${limitedFlow('heavy', cap)}${limitedFlow('light', cap)}`, '', logs);
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-cap-'));
      const seconds = 14;
      const lightPlayer = play(daemon.url(playKey('light')), join(dir, 'light.flv'));
      await waitFor(() => daemon.app.registry.get('light')!.hub.readerCount === 1, 'player attached');
      const started = Date.now();
      const heavy = publishCbr(daemon.url(publishKey('heavy')), seconds, '6M');
      const light = publishCbr(daemon.url(publishKey('light')), seconds, '1M');
      const heavyDone = await heavy.done;
      const heavyLasted = Date.now() - started;
      expect(heavyDone.code).not.toBe(0);
      // Grace (3 s) plus the measuring window (2 s) plus start-up; well before the 14 s the stream lasts.
      expect(heavyLasted).toBeLessThan(11_000);
      const exceeded = logs.find((l) => l.code === 'bitrate_exceeded')!;
      expect(exceeded).toMatchObject({ inputName: 'main', allowedBps: 2_200_000, action: 'disconnect' });
      expect(exceeded.measuredBps as number).toBeGreaterThan(4_000_000);
      expect(daemon.app.registry.get('heavy')!.inputs.get('main')!.lastViolation).toMatch(/^bitrate_exceeded/);

      const lightDone = await light.done;
      expect(lightDone.code, lightDone.stderr).toBe(0);
      expect((await lightPlayer.done).code).toBe(0);
      expect(videoFrames(await probeStreams(join(dir, 'light.flv')))).toBeGreaterThanOrEqual(seconds * 25 - 2);
      expect(daemon.app.registry.get('light')!.inputs.get('main')!.bitrateExceeded).toBe(0);
    } finally {
      await daemon.close();
    }
  });
});
