import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { FlowOutput } from '../../src/core/flow-parts.js';
import { SILENT_PUBLISHER_REPLACE_MS } from '../../src/core/flow.js';
import type { SrtRuntime } from '../../src/srt/runtime.js';
import type { SrtListenerOutput } from '../../src/srt/srt-listener-output.js';
import { playKey, publishKey, reconfigure, spawnDaemon, startInProcess, tempConfig } from '../helpers/daemon.js';
import { delay, play, probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';
import { freeUdpPort, publishSrt, publishUdp, recordSrt, sendTsOverUdp, srtLiveTransmitCaller, srtLiveTransmitListener, srtUrl } from '../helpers/srt-tools.js';

const execFileAsync = promisify(execFile);
const PASS = 'correct horse battery staple';
/** The shared SRT port on a free loopback port. */
const SHARED_SRT = 'srt: { listen: "127.0.0.1:0" }\n';
const SRT_KEY = 'srt-publish-key-0123456789';

/** A flow with an SRT listener input on the shared port. */
function srtFlow(id: string, extra = ''): string {
  return `  - id: ${id}
    inputs: [{ name: main, type: srt-listener, streamKey: "${SRT_KEY}-${id}", passphrase: "${PASS}", latencyMs: 200 }]
    playback: { key: "${playKey(id)}" }
${extra}`;
}

/**
 * Frames an SRT publish may lose at its very end: when the sender closes, libsrt (live
 * mode, no linger) drops what sits in the receiver's latency buffer: 200 ms here, 5 frames
 * at 25 fps, plus one.
 */
const SRT_TAIL_FRAMES = 6;

/** First audio and video timestamps of a file, in seconds. */
async function firstTimestamps(file: string): Promise<{ audio: number; video: number }> {
  const first = async (stream: string) => {
    const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-select_streams', stream, '-show_entries', 'packet=pts_time', '-read_intervals', '%+#1', '-of', 'csv=p=0', file]);
    // parseFloat: a packet line can end in a comma (side data).
    return Number.parseFloat(stdout.trim().split('\n')[0]!);
  };
  return { audio: await first('a:0'), video: await first('v:0') };
}

const publishTo = (port: number, flowId: string, key = `${SRT_KEY}-${flowId}`, passphrase = PASS) =>
  srtUrl(port, { mode: 'caller', streamId: `#!::r=${flowId},m=publish,s=${key}`, passphrase, latencyMs: 200 });

describe('SRT', () => {
  it('ffmpeg publishes MPEG-TS over SRT with a passphrase; an RTMP player gets a playable, in-sync stream; the event loop stays responsive', async () => {
    const daemon = await startInProcess(`${SHARED_SRT}flows:\n${srtFlow('cam')}`);
    try {
      const srtPort = await enableSrt(daemon);
      const hub = daemon.app.registry.get('cam')!.hub;
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-in-'));
      const player = play(daemon.url(playKey('cam')), join(dir, 'cam.flv'));
      await waitFor(() => hub.readerCount === 1, 'player attached');
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      const seconds = 6;
      const publisher = publishSrt(publishTo(srtPort, 'cam'), seconds);
      const input = daemon.app.registry.get('cam')!.inputs.get('main')!;
      await waitFor(() => input.transportStats !== undefined, 'srt publisher attached');
      const stats = input.transportStats!();
      // Both ends asked for 200 ms; SRT negotiates the larger of the two.
      expect(stats.latencyMs).toBeGreaterThanOrEqual(200);
      expect(stats.rttMs).toBeGreaterThanOrEqual(0);
      const pub = await publisher.done;
      loop.disable();
      expect(pub.code, pub.stderr).toBe(0);
      expect((await player.done).code).toBe(0);
      const streams = await probeStreams(join(dir, 'cam.flv'));
      const video = streams.find((s) => s.codec_type === 'video');
      expect(video?.codec_name).toBe('h264');
      expect([video?.width, video?.height]).toEqual([640, 360]);
      expect(streams.find((s) => s.codec_type === 'audio')?.codec_name).toBe('aac');
      expect(videoFrames(streams)).toBeGreaterThanOrEqual(seconds * 25 - SRT_TAIL_FRAMES);
      const first = await firstTimestamps(join(dir, 'cam.flv'));
      expect(Math.abs(first.audio - first.video)).toBeLessThan(0.1);
      // A timer's lateness while receiving: generous, it only catches a blocked loop.
      expect(loop.percentile(99) / 1e6).toBeLessThan(100);
    } finally {
      await daemon.close();
    }
  });

  it('wrong passphrase, unknown flow and wrong key are refused in the handshake; a correct caller is accepted right after', async () => {
    const logs: Record<string, unknown>[] = [];
    const daemon = await startInProcess(`${SHARED_SRT}flows:\n${srtFlow('guarded')}`, '', logs);
    try {
      const srtPort = await enableSrt(daemon);
      const hub = daemon.app.registry.get('guarded')!.hub;
      const wrongPass = await publishSrt(publishTo(srtPort, 'guarded', undefined, 'not the passphrase at all'), 2).done;
      const unknownFlow = await publishSrt(publishTo(srtPort, 'nosuchflow', `${SRT_KEY}-guarded`), 2).done;
      const wrongKey = await publishSrt(publishTo(srtPort, 'guarded', 'wrong-key-0123456789'), 2).done;
      for (const r of [wrongPass, unknownFlow, wrongKey]) expect(r.code).not.toBe(0);
      expect(hub.counters.sourceStarts).toBe(0);
      const refusals = logs.filter((l) => l.msg === 'srt caller refused').map((l) => l.reason);
      expect(refusals).toEqual(expect.arrayContaining([1404, 1401]));

      const good = publishSrt(publishTo(srtPort, 'guarded'), 3);
      await waitFor(() => hub.live, 'correct caller publishing', 10_000);
      expect((await good.done).code).toBe(0);
    } finally {
      await daemon.close();
    }
  });

  it('a second SRT publisher is refused as busy (1409) while the first sends, and replaces it once the first is frozen', async () => {
    const logs: Record<string, unknown>[] = [];
    const daemon = await startInProcess(`${SHARED_SRT}flows:\n${srtFlow('taken')}`, '', logs);
    const first = publishSrt(publishTo((await enableSrt(daemon)), 'taken'), 60);
    try {
      const srtPort = daemon.app.srtPort()!;
      const flow = daemon.app.registry.get('taken')!;
      const state = () => flow.inputs.get('main')!;
      await waitFor(() => state().frames > 30, 'first publisher sending', 10_000);
      expect((await publishSrt(publishTo(srtPort, 'taken'), 2).done).code).not.toBe(0);
      expect(logs.filter((l) => l.msg === 'srt caller refused').map((l) => l.reason)).toContain(1409);

      // Frozen: the process stops, the SRT connection lingers until libsrt's 5 s peer idle timeout.
      first.proc.kill('SIGSTOP');
      await waitFor(() => Date.now() - state().lastMediaAt >= SILENT_PUBLISHER_REPLACE_MS, 'first publisher silent');
      const second = publishSrt(publishTo(srtPort, 'taken'), 3);
      await waitFor(() => state().publishes === 2, 'second publisher attached', 10_000);
      expect((await second.done).code).toBe(0);
      expect(state().replacedSilent).toBe(1);
      expect(logs.some((l) => l.code === 'publisher_replaced')).toBe(true);
    } finally {
      first.proc.kill('SIGKILL');
      await daemon.close();
    }
  });

  it('an SRT publisher that stays connected but sends no media is dropped after the input\'s idleTimeoutMs (ttl_exceeded)', async () => {
    const logs: Record<string, unknown>[] = [];
    const flowYaml = `  - id: quiet
    inputs: [{ name: main, type: srt-listener, streamKey: "${SRT_KEY}-quiet", passphrase: "${PASS}", idleTimeoutMs: 1000 }]
`;
    const daemon = await startInProcess(`${SHARED_SRT}flows:\n${flowYaml}`, '', logs);
    try {
      const port = await enableSrt(daemon);
      const flow = daemon.app.registry.get('quiet')!;
      // A caller that completes the handshake and then sends nothing: libsrt's keepalives hold it open.
      const srt = (daemon.app as unknown as { srtRuntime(): SrtRuntime }).srtRuntime();
      const silent = srt.call({ host: '127.0.0.1', port, streamId: `#!::r=quiet,m=publish,s=${SRT_KEY}-quiet`, passphrase: PASS, latencyMs: 120, connectTimeoutMs: 3000 });
      const closed = new Promise<void>((resolve) => silent.once('closed', () => resolve()));
      await waitFor(() => flow.inputs.get('main')!.status === 'connected', 'the silent publisher attached', 10_000);
      await closed;
      expect(flow.inputs.get('main')!).toMatchObject({ status: 'ttl_exceeded', remoteAddress: undefined });
      expect(logs.some((l) => l.msg === 'srt publisher sent no media; closed' && l.idleTimeoutMs === 1000)).toBe(true);
    } finally {
      await daemon.close();
    }
  });

  it('two SRT publishers to two flows on the shared port at once', async () => {
    const daemon = await startInProcess(`${SHARED_SRT}flows:\n${srtFlow('left')}${srtFlow('right')}`);
    try {
      const srtPort = await enableSrt(daemon);
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-two-'));
      const players = ['left', 'right'].map((id) => play(daemon.url(playKey(id)), join(dir, `${id}.flv`)));
      await waitFor(() => ['left', 'right'].every((id) => daemon.app.registry.get(id)!.hub.readerCount === 1), 'players attached');
      const pubs = ['left', 'right'].map((id) => publishSrt(publishTo(srtPort, id), 4));
      for (const p of pubs) expect((await p.done).code).toBe(0);
      for (const [i, id] of ['left', 'right'].entries()) {
        expect((await players[i]!.done).code).toBe(0);
        expect(videoFrames(await probeStreams(join(dir, `${id}.flv`)))).toBeGreaterThanOrEqual(4 * 25 - SRT_TAIL_FRAMES);
      }
    } finally {
      await daemon.close();
    }
  });

  it('RTMP publish in, srt-listener output out: ffmpeg as SRT caller receives a playable TS', async () => {
    const daemon = await startInProcess('flows: []\n');
    try {
      await reconfigure(daemon, `  - id: studio
    inputs: [{ name: main, type: rtmp-push, streamKey: "${publishKey('studio')}" }]
    playback: { key: "${playKey('studio')}" }
    outputs: [{ name: edge, type: srt-listener, listen: "127.0.0.1:0", passphrase: "${PASS}" }]
`);
      const output = daemon.app.registry.get('studio')!.outputs.get('edge')!.output as FlowOutput & SrtListenerOutput;
      await waitFor(() => output.port !== undefined, 'srt listener output bound');
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-out-'));
      const publisher = publish(daemon.url(publishKey('studio')), { seconds: 9 });
      await delay(3_000);
      const recorder = recordSrt(srtUrl(output.port!, { mode: 'caller', passphrase: PASS }), join(dir, 'edge.ts'), 5, { keepTimestamps: true });
      await waitFor(() => (output.report().peers ?? []).length === 1, 'caller connected');
      expect(output.report().peers![0]!.address).toBe('127.0.0.1');
      expect((await recorder.done).code).toBe(0);
      await publisher.done;
      // The caller came 3 s into the stream: its timestamps start near zero all the same
      // (the output's own timeline, as for RTMP outputs), not at the flow's time. (ffmpeg's
      // MPEG-TS muxer puts its own 1.4 s in front.)
      const first = await firstTimestamps(join(dir, 'edge.ts'));
      expect(first.video).toBeLessThan(2.5);
      expect(first.audio).toBeLessThan(2.5);
      const streams = await probeStreams(join(dir, 'edge.ts'));
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(videoFrames(streams)).toBeGreaterThan(3 * 25);
      expect(output.report().frames).toBeGreaterThan(3 * 25);
    } finally {
      await daemon.close();
    }
  });

  it('SRT playback on the shared port with m=request and the playback key; a wrong key is refused', async () => {
    const daemon = await startInProcess(`${SHARED_SRT}flows:\n  - id: show\n    inputs: [{ name: main, type: rtmp-push, streamKey: "${publishKey('show')}" }]\n    playback: { key: "${playKey('show')}" }\n`);
    try {
      const srtPort = await enableSrt(daemon);
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-play-'));
      const publisher = publish(daemon.url(publishKey('show')), { seconds: 7 });
      await waitFor(() => daemon.app.registry.get('show')!.hub.live, 'publisher live');
      const wrong = await recordSrt(srtUrl(srtPort, { mode: 'caller', streamId: '#!::r=show,m=request,s=not-the-key-000000' }), join(dir, 'wrong.ts'), 2).done;
      expect(wrong.code).not.toBe(0);
      const player = await recordSrt(srtUrl(srtPort, { mode: 'caller', streamId: `#!::r=show,m=request,s=${playKey('show')}` }), join(dir, 'play.ts'), 4).done;
      expect(player.code, player.stderr).toBe(0);
      const streams = await probeStreams(join(dir, 'play.ts'));
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(videoFrames(streams)).toBeGreaterThan(2 * 25);
      await publisher.done;
    } finally {
      await daemon.close();
    }
  });

  it('damage in an SRT input\'s MPEG-TS shows in its status and metrics: continuity errors and a clock jump', async () => {
    // Two takes of an encoder back to back, the first an hour later on its clock (a restart
    // behind a gateway), relayed byte for byte by srt-live-transmit: the join breaks every
    // PID's continuity counter and steps the clock back an hour.
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-damage-'));
    const take = (file: string, offset: number) =>
      execFileAsync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
        '-t', '3', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-output_ts_offset', String(offset), '-f', 'mpegts', '-y', join(dir, file)]);
    await Promise.all([take('later.ts', 3600), take('now.ts', 0)]);
    const ts = Buffer.concat([await readFile(join(dir, 'later.ts')), await readFile(join(dir, 'now.ts'))]);
    const inPort = await freeUdpPort();
    const udpPort = await freeUdpPort();
    // srt-live-transmit takes URL options as they are, without decoding escapes.
    const SLT_PASS = 'damaged-stream-passphrase';
    const daemon = await startInProcess(`api: { listen: "127.0.0.1:0" }
flows:
  - id: damaged
    inputs: [{ name: main, type: srt-listener, listen: "127.0.0.1:${inPort}", passphrase: "${SLT_PASS}", latencyMs: 200 }]
    playback: { key: "${playKey('damaged')}" }
`);
    const relay = srtLiveTransmitCaller(udpPort, inPort, `passphrase=${SLT_PASS}&pbkeylen=16&latency=200`);
    try {
      const input = daemon.app.registry.get('damaged')!.inputs.get('main')!;
      // srt-live-transmit calls when its first datagram arrives; the first few may be lost on the way.
      await sendTsOverUdp(udpPort, ts, 5);
      await waitFor(() => (input.transportStats?.().tsTimestampJumps ?? 0) > 0, 'the jump seen', 5_000);
      const stats = input.transportStats!();
      expect(stats.tsTimestampJumps).toBe(1);
      expect(stats.tsContinuityErrors).toBeGreaterThanOrEqual(2);
      expect(input.frames).toBeGreaterThan(100);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.app.apiPort()}/metrics`)).text();
      expect(metrics).toContain('flowrelay_srt_ts_timestamp_jumps_total{flow="damaged",kind="input",name="main"} 1');
      expect(metrics).toMatch(/flowrelay_srt_ts_continuity_errors_total\{flow="damaged",kind="input",name="main"\} [1-9]/);
    } finally {
      relay.proc.kill('SIGKILL');
      await daemon.close();
    }
  });

  it('rogue UDP packets on the SRT port leave no trace in the daemon\'s output (libsrt would log each one to stderr)', async () => {
    const srtPort = await freeUdpPort();
    const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0" }\nsrt: { listen: "127.0.0.1:${srtPort}" }\nflows:\n${srtFlow('rogue')}`);
    const daemon = await spawnDaemon(cfg.file);
    const udp = createSocket('udp4');
    try {
      // Fake SRT v5 handshakes: control bit, type 0 (handshake), version 5, random rest.
      const rogue = () => {
        const b = randomBytes(64);
        b.writeUInt32BE(0x80000000, 0);
        b.writeUInt32BE(0, 8);
        b.writeUInt32BE(0, 12);
        b.writeUInt32BE(5, 16);
        b.writeUInt32BE(0xffffffff, 36);
        return b;
      };
      for (let i = 0; i < 300; i++) await new Promise<void>((resolve) => udp.send(rogue(), srtPort, '127.0.0.1', () => resolve()));
      // The port still serves a real publisher afterwards, and that is all the output shows.
      const pub = await publishSrt(publishTo(srtPort, 'rogue'), 2).done;
      expect(pub.code, pub.stderr).toBe(0);
      expect(daemon.lines.filter((l) => !l.startsWith('{'))).toEqual([]);
    } finally {
      udp.close();
      daemon.proc.kill('SIGKILL');
      await daemon.exited;
      await cfg.cleanup();
    }
  });

  it('an srt-listener input whose own port is taken reads failed_to_connect with the reason, and listens once the port is free', async () => {
    const taken = createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', r));
    const port = taken.address().port;
    const daemon = await startInProcess('flows: []\n');
    try {
      await reconfigure(daemon, `  - id: own\n    inputs: [{ name: main, type: srt-listener, listen: "127.0.0.1:${port}", passphrase: "${PASS}", latencyMs: 200 }]\n`);
      const flow = daemon.app.registry.get('own')!;
      const { inputStatus } = await import('../../src/api/flow-views.js');
      expect(inputStatus(flow, flow.spec.inputs[0]!, Date.now())).toMatchObject({ status: 'failed_to_connect', lastError: expect.stringMatching(/.+/), nextAttemptAt: expect.any(String) });
      // The other process lets go of the port: the input retries and takes it.
      await new Promise<void>((r) => taken.close(() => r()));
      await waitFor(() => inputStatus(flow, flow.spec.inputs[0]!, Date.now()).status === 'idle', 'the input listening after the port was freed', 10_000);
      const publisher = publishSrt(srtUrl(port, { mode: 'caller', passphrase: PASS, latencyMs: 200 }), 3);
      await waitFor(() => flow.hub.live, 'a publisher live on the retried port', 10_000);
      expect((await publisher.done).code).toBe(0);
    } finally {
      await daemon.close();
      try {
        taken.close();
      } catch {
        // Closed above.
      }
    }
  });

  it('a port handed from one flow\'s srt-listener to another flow\'s in one reload ends with the new one listening', async () => {
    const daemon = await startInProcess('flows: []\n');
    try {
      const port = await freeUdpPort();
      const ownPort = (on: number) => `    inputs: [{ name: main, type: srt-listener, listen: "127.0.0.1:${on}", passphrase: "${PASS}", latencyMs: 200 }]\n`;
      const rtmp = `    inputs: [{ name: main, type: rtmp-push, streamKey: "${publishKey('a')}" }]\n`;
      await reconfigure(daemon, `  - id: a\n${rtmp}  - id: b\n${ownPort(port)}`);
      await waitFor(() => daemon.app.registry.get('b')!.pullInputs.get('main')!.report().status === 'idle', 'b listening');
      // Both flows stay and change; a is applied first and takes the port while b still holds it.
      await reconfigure(daemon, `  - id: a\n${ownPort(port)}  - id: b\n${ownPort(await freeUdpPort())}`);
      const flow = daemon.app.registry.get('a')!;
      await waitFor(() => flow.pullInputs.get('main')!.report().status === 'idle', 'a listening on the port b had', 10_000);
      const publisher = publishSrt(srtUrl(port, { mode: 'caller', passphrase: PASS, latencyMs: 200 }), 3);
      await waitFor(() => flow.hub.live, 'a publisher live on the handed-over port', 10_000);
      expect((await publisher.done).code).toBe(0);
    } finally {
      await daemon.close();
    }
  });

  it('an srt-listener input on a port of its own, and an srt-listener output serving two callers at once', async () => {
    const daemon = await startInProcess('api: { listen: "127.0.0.1:0" }\nflows: []\n');
    try {
      // No stream id: on its own port, the passphrase is what admits the caller.
      const { flow, output, publisher } = await ownPortRelay(daemon, 2);
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-own-'));
      const callers = ['a', 'b'].map((name) => recordSrt(srtUrl(output.port!, { mode: 'caller' }), join(dir, `${name}.ts`), 4));
      await waitFor(() => (output.report().peers ?? []).length === 2, 'two callers served');
      const third = await recordSrt(srtUrl(output.port!, { mode: 'caller' }), join(dir, 'c.ts'), 2).done;
      expect(third.code).not.toBe(0);
      // Two callers at once are not a reconnect; the output reports when it began serving and what it sends.
      await waitFor(() => output.report().bitrate > 0, 'the output\'s bitrate measured');
      const report = output.report();
      expect(report).toMatchObject({ status: 'connected', reconnects: 0 });
      expect(report.connectedAt).toBeInstanceOf(Date);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.app.apiPort()}/metrics`)).text();
      // The callers as one series (a series per caller's port would make a new one each time).
      expect(metrics.match(/^flowrelay_srt_rtt_ms\{flow="own",kind="output",name="edge"\} /gm)).toHaveLength(1);
      expect(metrics).not.toMatch(/peer=/);
      for (const [i, name] of ['a', 'b'].entries()) {
        expect((await callers[i]!.done).code).toBe(0);
        const streams = await probeStreams(join(dir, `${name}.ts`));
        expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
        expect(videoFrames(streams)).toBeGreaterThan(2 * 25);
      }
      expect(flow.pullInputs.get('main')!.report().status).toBe('connected');
      expect((await publisher.done).code).toBe(0);
    } finally {
      await daemon.close();
    }
  });

  it('four callers started at once get the one place of an srt-listener output with maxCallers: 1; the others are refused', async () => {
    const daemon = await startInProcess('flows: []\n');
    try {
      const { output, publisher } = await ownPortRelay(daemon, 1);
      let most = 0;
      const watch = setInterval(() => (most = Math.max(most, (output.report().peers ?? []).length)), 5);
      // Started in one tick, their handshakes may all pass the output's check before any caller is connected.
      const srt = (daemon.app as unknown as { srtRuntime(): SrtRuntime }).srtRuntime();
      const calls = [1, 2, 3, 4].map(() => srt.call({ host: '127.0.0.1', port: output.port!, latencyMs: 120, connectTimeoutMs: 3000 }));
      const received = calls.map(() => 0);
      calls.forEach((call, i) => call.on('data', () => (received[i]! += 1)));
      await delay(2_000);
      clearInterval(watch);
      expect(most).toBe(1);
      expect(received.filter((n) => n > 0)).toHaveLength(1);
      expect(output.report()).toMatchObject({ attempts: 4, peers: [expect.anything()] });
      for (const call of calls) call.close();
      await publisher.done;
    } finally {
      await daemon.close();
    }
  });

  it('a changed srt-listener input and output listen again on the same ports after a reload', async () => {
    const daemon = await startInProcess('flows: []\n');
    try {
      const [inPort, outPort] = [await freeUdpPort(), await freeUdpPort()];
      const flowWith = (latencyMs: number, maxCallers: number) => `  - id: own
    inputs: [{ name: main, type: srt-listener, listen: "127.0.0.1:${inPort}", passphrase: "${PASS}", latencyMs: ${latencyMs} }]
    outputs: [{ name: edge, type: srt-listener, listen: "127.0.0.1:${outPort}", maxCallers: ${maxCallers} }]
`;
      await reconfigure(daemon, flowWith(120, 2));
      const flow = daemon.app.registry.get('own')!;
      const edge = () => flow.outputs.get('edge')!.output as FlowOutput & SrtListenerOutput;
      await waitFor(() => edge().port === outPort, 'srt listener output bound');
      const before = edge();
      // Both change: each is closed and started again on its port while the old listener closes.
      await reconfigure(daemon, flowWith(200, 3));
      expect(edge()).not.toBe(before);
      await waitFor(() => edge().port === outPort, 'the new srt listener output bound to the same port', 10_000);

      const publisher = publishSrt(srtUrl(inPort, { mode: 'caller', passphrase: PASS, latencyMs: 200 }), 6);
      await waitFor(() => flow.hub.live, 'own-port publisher live after the reload', 10_000);
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-reload-'));
      const caller = await recordSrt(srtUrl(outPort, { mode: 'caller' }), join(dir, 'edge.ts'), 3).done;
      expect(caller.code, caller.stderr).toBe(0);
      expect(videoFrames(await probeStreams(join(dir, 'edge.ts')))).toBeGreaterThan(25);
      expect(edge().report().lastError).toBeUndefined();
      expect(flow.pullInputs.get('main')!.report().lastError).toBeUndefined();
      await publisher.done;
    } finally {
      await daemon.close();
    }
  });

  it('srt-caller output to an ffmpeg SRT listener plays back', async () => {
    const daemon = await startInProcess('flows: []\n');
    try {
      const port = await freeUdpPort();
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-caller-out-'));
      const listener = recordSrt(srtUrl(port, { mode: 'listener', passphrase: PASS }), join(dir, 'remote.ts'), 4);
      await delay(500);
      await reconfigure(daemon, `  - id: studio
    inputs: [{ name: main, type: rtmp-push, streamKey: "${publishKey('studio')}" }]
    outputs: [{ name: remote, type: srt-caller, url: "srt://127.0.0.1:${port}", passphrase: "${PASS}", streamId: "studio" }]
`);
      const publisher = publish(daemon.url(publishKey('studio')), { seconds: 6 });
      const out = () => daemon.app.registry.get('studio')!.outputs.get('remote')!.output.report();
      await waitFor(() => out().status === 'connected', 'srt-caller output connected', 15_000);
      await delay(1_000);
      expect(out().transport?.latencyMs).toBeGreaterThanOrEqual(120);
      expect(out().transport?.sendRateMbps).toBeGreaterThan(0);
      expect((await listener.done).code).toBe(0);
      await publisher.done;
      const streams = await probeStreams(join(dir, 'remote.ts'));
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(videoFrames(streams)).toBeGreaterThan(3 * 25);
    } finally {
      await daemon.close();
    }
  });

  it('SRT outputs leave out MP3 audio MPEG-TS cannot carry: counted as dropped, not sent, warned of once, and still counted after a caller left', async () => {
    const logs: Record<string, unknown>[] = [];
    const daemon = await startInProcess('flows: []\n', '', logs);
    try {
      const port = await freeUdpPort();
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-mp3-'));
      const listener = recordSrt(srtUrl(port, { mode: 'listener' }), join(dir, 'remote.ts'), 3);
      await delay(500);
      await reconfigure(daemon, `  - id: studio
    inputs: [{ name: main, type: rtmp-push, streamKey: "${publishKey('studio')}" }]
    outputs:
      - { name: remote, type: srt-caller, url: "srt://127.0.0.1:${port}" }
      - { name: edge, type: srt-listener, listen: "127.0.0.1:0" }
`);
      // ffmpeg probes a video-only MPEG-TS for 5 s (its analyzeduration) before it writes.
      const publisher = execFileAsync('ffmpeg', [
        '-hide_banner', '-nostdin', '-loglevel', 'error', '-re',
        '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '10',
        '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25', '-c:a', 'libmp3lame', '-f', 'flv', daemon.url(publishKey('studio')),
      ]);
      const out = () => daemon.app.registry.get('studio')!.outputs.get('remote')!.output.report();
      await waitFor(() => out().status === 'connected', 'srt-caller output connected', 15_000);
      // A caller of the srt-listener output comes and goes: what it counted stays counted.
      const edge = daemon.app.registry.get('studio')!.outputs.get('edge')!.output as FlowOutput & SrtListenerOutput;
      expect((await recordSrt(srtUrl(edge.port!, { mode: 'caller' }), join(dir, 'edge.ts'), 1).done).code).toBe(0);
      await waitFor(() => (edge.report().peers ?? []).length === 0, 'the caller gone', 10_000);
      expect(edge.report().framesDropped).toBeGreaterThan(38);
      expect(edge.report().transport).toMatchObject({ packetsLostSending: expect.any(Number) });
      expect((await listener.done).code).toBe(0);
      await publisher;
      const streams = await probeStreams(join(dir, 'remote.ts'));
      expect(streams.map((s) => s.codec_name)).toEqual(['h264']);
      // 44.1 kHz MP3 is ~38 frames a second: every one the output saw is dropped, none sent.
      const report = out();
      expect(report.framesDropped).toBeGreaterThan(2 * 38);
      expect(report.frames).toBeLessThanOrEqual(10 * 25 + 1);
      const warnings = logs.filter((l) => l.leftOut !== undefined && l.outputName === 'remote');
      expect(warnings).toEqual([expect.objectContaining({ leftOut: 'MP3 audio', outputName: 'remote', msg: expect.stringMatching(/^SRT output leaves out MP3 audio/) })]);
    } finally {
      await daemon.close();
    }
  });

  it('an srt-caller input whose listener accepts but sends nothing fails its attempts (failAfter, giveUp), not connected then reconnected', async () => {
    const daemon = await startInProcess('flows: []\n');
    const srtPort = await freeUdpPort();
    // Listens for SRT callers; nothing ever arrives on its UDP side.
    const transmit = srtLiveTransmitListener(srtPort, await freeUdpPort());
    try {
      await reconfigure(daemon, `  - id: quiet
    inputs: [{ name: up, type: srt-caller, url: "srt://127.0.0.1:${srtPort}", reconnect: { initialDelayMs: 200, maxDelayMs: 1000, failAfter: 2, giveUp: true }, idleTimeoutMs: 1000 }]
`);
      const input = () => daemon.app.registry.get('quiet')!.pullInputs.get('up')!.report();
      const statuses: string[] = [];
      const poll = setInterval(() => statuses.push(input().status), 50);
      try {
        await waitFor(() => input().status === 'failed_to_connect', 'the attempts to fail', 15_000);
        const attempts = input().attempts;
        await delay(2_000);
        // Given up: no more attempts.
        expect(input().attempts).toBe(attempts);
      } finally {
        clearInterval(poll);
      }
      expect(statuses).not.toContain('connected');
      expect(statuses).not.toContain('reconnected');
      expect(input()).toMatchObject({ reconnects: 0, consecutiveFailures: 2, lastError: expect.stringMatching(/no media from upstream/) });
    } finally {
      transmit.proc.kill('SIGKILL');
      await daemon.close();
    }
  });

  it('srt-caller input from srt-live-transmit as listener plays back, and recovers when the remote restarts', async () => {
    const daemon = await startInProcess('flows: []\n');
    const srtPort = await freeUdpPort();
    const udpPort = await freeUdpPort();
    let transmit = srtLiveTransmitListener(srtPort, udpPort);
    const feed = publishUdp(udpPort, 40);
    try {
      await reconfigure(daemon, `  - id: remote
    inputs: [{ name: up, type: srt-caller, url: "srt://127.0.0.1:${srtPort}", latencyMs: 200, reconnect: { initialDelayMs: 300, maxDelayMs: 2000 }, idleTimeoutMs: 3000 }]
    playback: { key: "${playKey('remote')}" }
`);
      const flow = daemon.app.registry.get('remote')!;
      const input = () => flow.pullInputs.get('up')!.report();
      await waitFor(() => flow.hub.live && flow.hub.counters.videoFrames > 25, 'srt-caller input receiving', 20_000);
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-srt-caller-in-'));
      const before = play(daemon.url(playKey('remote')), join(dir, 'before.flv'));
      await delay(3_000);

      transmit.proc.kill('SIGKILL');
      await transmit.done;
      expect((await before.done).code).toBe(0);
      expect(videoFrames(await probeStreams(join(dir, 'before.flv')))).toBeGreaterThan(25);
      await waitFor(() => input().status === 'reconnecting' || input().status === 'failed_to_reconnect', 'input notices the remote is gone', 15_000);

      transmit = srtLiveTransmitListener(srtPort, udpPort);
      await waitFor(() => input().status === 'reconnected' && flow.hub.live, 'input reconnected', 20_000);
      const after = play(daemon.url(playKey('remote')), join(dir, 'after.flv'), ['-t', '3']);
      expect((await after.done).code).toBe(0);
      expect(videoFrames(await probeStreams(join(dir, 'after.flv')))).toBeGreaterThan(25);
    } finally {
      feed.proc.kill('SIGKILL');
      transmit.proc.kill('SIGKILL');
      await daemon.close();
    }
  });
});

/** The shared SRT port the daemon bound. */
/**
 * Flow `own`: an srt-listener input on a port of its own, with an ffmpeg publisher live on
 * it for 8 s (admitted by the passphrase alone), and an srt-listener output `edge`.
 */
async function ownPortRelay(daemon: Awaited<ReturnType<typeof startInProcess>>, maxCallers: number) {
  const inPort = await freeUdpPort();
  await reconfigure(daemon, `  - id: own
    inputs: [{ name: main, type: srt-listener, listen: "127.0.0.1:${inPort}", passphrase: "${PASS}", latencyMs: 200 }]
    outputs: [{ name: edge, type: srt-listener, listen: "127.0.0.1:0", maxCallers: ${maxCallers} }]
`);
  const flow = daemon.app.registry.get('own')!;
  const output = flow.outputs.get('edge')!.output as FlowOutput & SrtListenerOutput;
  await waitFor(() => output.port !== undefined, 'srt listener output bound');
  const publisher = publishSrt(srtUrl(inPort, { mode: 'caller', passphrase: PASS, latencyMs: 200 }), 8);
  await waitFor(() => flow.hub.live, 'own-port publisher live', 10_000);
  return { flow, output, publisher };
}

async function enableSrt(daemon: Awaited<ReturnType<typeof startInProcess>>): Promise<number> {
  const port = daemon.app.srtPort();
  if (port === undefined) throw new Error('the daemon was started without an srt section');
  return port;
}
