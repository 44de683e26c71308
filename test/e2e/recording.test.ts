import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flowYaml, publishKey, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { decodeAll, probeDuration, probeStreams, probeVideoPackets, publish, waitFor } from '../helpers/ffmpeg.js';
import { parsePrometheusText } from '../helpers/prometheus-text.js';
import { apiClient } from '../helpers/api-client.js';

const execFileAsync = promisify(execFile);

const TOKEN = 'frt_recording-tests-token-000000000000000000';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const API = `api:
  listen: "127.0.0.1:0"
  tokens: [{ name: ops, scope: write, sha256: ${sha256(TOKEN)} }]
`;

interface Recording {
  id: string;
  flowId: string;
  sessionId: string;
  format: string;
  status: string;
  file: string;
  durationMs: number;
  durationSeconds: number;
  bytes: number;
  error: string | null;
  download: string;
}

function recordingFlow(id: string, recording: Record<string, unknown>): string {
  return flowYaml(id, { recording: { mode: 'automatic', timeoutSeconds: 0, ...recording } });
}

describe('flow recording', () => {
  let daemon: InProcessDaemon;
  let base: string;

  const api = apiClient(() => base, TOKEN);
  const recordingsOf = async (flowId: string) => (await api<Recording[]>(`/v1/flows/${flowId}/recordings`)).result;
  const fileOf = (r: Recording) => join(daemon.dir, 'data', 'recordings', r.file);

  beforeAll(async () => {
    daemon = await startInProcess(
      `${API}flows:
${recordingFlow('rec-mp4', { format: 'mp4' })}${recordingFlow('rec-ts', { format: 'mpegts' })}${recordingFlow('rec-flv', { format: 'flv' })}${recordingFlow('rec-gap', { format: 'mp4', timeoutSeconds: 3 })}${recordingFlow('rec-switch', { format: 'mp4', timeoutSeconds: 4 })}${recordingFlow('mp3-mp4', { format: 'mp4' })}${recordingFlow('mp3-flv', { format: 'flv' })}${flowYaml('rec-late')}`,
      '',
      undefined,
      { storageExtra: ', minFreeSpace: 0' },
    );
    base = `http://127.0.0.1:${daemon.app.apiPort()}`;
  });
  afterAll(async () => {
    await daemon?.close();
  });

  it('10 s pushed to each format: H.264 + AAC files that play for 10 s (within 1 s)', async () => {
    const formats = ['mp4', 'ts', 'flv'];
    const pubs = formats.map((f) => publish(daemon.url(publishKey(`rec-${f}`)), { seconds: 10 }));
    const results = await Promise.all(pubs.map((p) => p.done));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    for (const f of formats) {
      const flowId = `rec-${f}`;
      let list: Recording[] = [];
      await waitFor(() => list.length === 1 && list[0]!.status === 'ready', `${flowId}'s recording to be ready`, 15_000, async () => {
        list = await recordingsOf(flowId);
      });
      const rec = list[0]!;
      expect(rec.format).toBe(f === 'ts' ? 'mpegts' : f);
      expect(rec.file).toMatch(new RegExp(`^${flowId}/${flowId}_\\d{4}-\\d\\d-\\d\\d_\\d\\d-\\d\\d-\\d\\d\\.${f}$`));
      const streams = await probeStreams(fileOf(rec));
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(streams.find((s) => s.codec_type === 'video')).toMatchObject({ width: 640, height: 360 });
      const { format, videoSpan } = await probeDuration(fileOf(rec));
      expect(videoSpan, `${f} video span`).toBeGreaterThan(9);
      expect(videoSpan, `${f} video span`).toBeLessThan(11);
      expect(Math.abs((format ?? 0) - 10), `${f} container duration ${format}`).toBeLessThan(1);
      expect(Math.abs(rec.durationSeconds - 10)).toBeLessThan(1);
      expect(rec.bytes).toBe((await stat(fileOf(rec))).size);
      expect((await decodeAll(fileOf(rec))).code).toBe(0);
      expect(rec).toMatchObject({ note: null, error: null });
    }
    // Metrics: each recorded flow has its recorder's series; the disk's free space is known.
    const families = new Map(parsePrometheusText(await (await fetch(`${base}/metrics`)).text()).map((f) => [f.name, f]));
    expect(families.get('flowrelay_flow_recording')?.samples.map((x) => x.labels.flow).sort()).toEqual(['mp3-flv', 'mp3-mp4', 'rec-flv', 'rec-gap', 'rec-mp4', 'rec-switch', 'rec-ts']);
    expect(families.get('flowrelay_flow_recording_failed')?.samples.every((x) => x.value === 0)).toBe(true);
    expect(families.get('flowrelay_flow_recording_dropped_frames_total')?.samples.every((x) => x.value === 0)).toBe(true);
    expect(families.get('flowrelay_recordings_free_bytes')?.samples[0]?.value).toBeGreaterThan(0);
  });

  it('downloads whole or by byte range, and deletes', async () => {
    const [rec] = await recordingsOf('rec-mp4');
    const bytes = await readFile(fileOf(rec!));
    const whole = await fetch(`${base}${rec!.download}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(whole.headers.get('content-type')).toBe('video/mp4');
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);

    const part = await fetch(`${base}${rec!.download}`, { headers: { authorization: `Bearer ${TOKEN}`, range: 'bytes=100-1099' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-1099/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 1100))).toBe(true);

    const tail = await fetch(`${base}${rec!.download}`, { headers: { authorization: `Bearer ${TOKEN}`, range: 'bytes=-500' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 500))).toBe(true);

    const beyond = await fetch(`${base}${rec!.download}`, { headers: { authorization: `Bearer ${TOKEN}`, range: `bytes=${bytes.length}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${bytes.length}`);

    const one = await api<Recording>(`/v1/recordings/${rec!.id}`);
    expect(one.result).toMatchObject({ id: rec!.id, status: 'ready', flowId: 'rec-mp4' });

    const deleted = await api(`/v1/recordings/${rec!.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    await expect(stat(fileOf(rec!))).rejects.toThrow();
    expect((await api(`/v1/recordings/${rec!.id}`)).status).toBe(404);
    expect(await recordingsOf('rec-mp4')).toEqual([]);
    expect((await api('/v1/flows/nope/recordings')).errors[0]?.code).toBe('not_found');
  });

  it('recording is switched off and on through the API, in place (the flow is not restarted)', async () => {
    const flow = daemon.app.registry.get('rec-ts')!;
    const off = await api<{ recording: { mode: string; status: { state: string } } }>('/v1/flows/rec-ts', { method: 'PATCH', json: { recording: { mode: 'off' } } });
    expect(off.status).toBe(200);
    expect(off.result.recording).toMatchObject({ mode: 'off', status: { state: 'off' } });
    expect(daemon.app.registry.get('rec-ts')).toBe(flow);
    expect(flow.recorder).toBeUndefined();
    const on = await api<{ recording: { mode: string; format: string; status: { state: string } } }>('/v1/flows/rec-ts', {
      method: 'PATCH',
      json: { recording: { mode: 'automatic', format: 'flv', timeoutSeconds: 0 } },
    });
    expect(on.result.recording).toMatchObject({ mode: 'automatic', format: 'flv', status: { state: 'idle', format: 'flv' } });
    expect(daemon.app.registry.get('rec-ts')).toBe(flow);
  });

  it('recording switched on while the flow is live starts at the cached keyframe, each frame once', async () => {
    const flow = daemon.app.registry.get('rec-late')!;
    const publisher = publish(daemon.url(publishKey('rec-late')), { seconds: 8, gop: 50 });
    // 3 s in: the cached GOP is one second old.
    await waitFor(() => flow.hub.counters.videoFrames >= 75, 'three seconds published');
    const on = await api('/v1/flows/rec-late', { method: 'PATCH', json: { recording: { mode: 'automatic', format: 'mp4', timeoutSeconds: 0 } } });
    expect(on.status).toBe(200);
    expect((await publisher.done).code).toBe(0);
    let list: Recording[] = [];
    await waitFor(() => list.length === 1 && list[0]!.status === 'ready', 'recording ready', 15_000, async () => {
      list = await recordingsOf('rec-late');
    });
    const packets = await probeVideoPackets(fileOf(list[0]!));
    expect(packets[0]?.flags).toMatch(/^K/);
    const dts = packets.map((p) => Number(p.dts_time));
    expect(dts.filter((d, i) => i > 0 && d <= dts[i - 1]!)).toEqual([]);
    // From the cached keyframe at 2 s to the end at 8 s: 150 frames, none twice.
    expect(packets.length).toBeGreaterThanOrEqual(145);
    expect(packets.length).toBeLessThanOrEqual(150);
  });

  it('a publisher back within timeoutSeconds continues the recording; after a longer gap a new one starts', async () => {
    const flowId = 'rec-gap';
    const flow = daemon.app.registry.get(flowId)!;
    expect((await publish(daemon.url(publishKey(flowId)), { seconds: 3 }).done).code).toBe(0);
    await waitFor(() => !flow.hub.live, 'the first publisher to leave');
    expect(flow.recorder?.report().state).toBe('waiting_for_reconnect');
    // Back at once: well inside the 3 s timeout.
    expect((await publish(daemon.url(publishKey(flowId)), { seconds: 3 }).done).code).toBe(0);
    await waitFor(() => !flow.hub.live, 'the second publisher to leave');
    let list = await recordingsOf(flowId);
    expect(list).toHaveLength(1);
    // Now a gap longer than the timeout: the first recording is completed...
    await waitFor(() => list[0]?.status === 'ready', 'the recording to be completed after the timeout', 10_000, async () => {
      list = await recordingsOf(flowId);
    });
    expect(list[0]!.durationSeconds).toBeGreaterThan(5);
    // ...and the next publisher starts a second one.
    expect((await publish(daemon.url(publishKey(flowId)), { seconds: 3 }).done).code).toBe(0);
    await waitFor(() => list.length === 2 && list.every((r) => r.status === 'ready'), 'a second recording', 10_000, async () => {
      list = await recordingsOf(flowId);
    });
    expect(list[0]!.sessionId).not.toBe(list[1]!.sessionId);
    const spans = await Promise.all(list.map(async (r) => (await probeDuration(fileOf(r))).videoSpan));
    expect(spans[0]).toBeGreaterThan(5);
    expect(spans[1]).toBeGreaterThan(2);
    expect(spans[1]).toBeLessThan(4);
  });

  it('an audio-only encoder back within timeoutSeconds after a video one: its own MP4 file, with its audio', async () => {
    const flowId = 'rec-switch';
    const flow = daemon.app.registry.get(flowId)!;
    expect((await publish(daemon.url(publishKey(flowId)), { seconds: 3 }).done).code).toBe(0);
    await waitFor(() => !flow.hub.live, 'the video publisher to leave');
    await execFileAsync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '3', '-c:a', 'aac', '-f', 'flv', daemon.url(publishKey(flowId))]);
    let list = await recordingsOf(flowId);
    await waitFor(() => list.length === 2 && list.every((r) => r.status === 'ready'), 'both files completed after the timeout', 15_000, async () => {
      list = await recordingsOf(flowId);
    });
    const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'json', fileOf(list[1]!)]);
    const streams = (JSON.parse(stdout) as { streams: { codec_name: string; nb_read_packets: string }[] }).streams;
    expect(streams.map((st) => st.codec_name)).toEqual(['aac']);
    // 3 s of 44.1 kHz AAC is 129 frames; the whole of it, the first second included.
    expect(Number(streams[0]!.nb_read_packets)).toBeGreaterThan(120);
  });

  it('a stream whose codecs a format cannot carry: an MP3-only publish fails the mp4 recording with the reason (no empty ready file); flv keeps it', async () => {
    const mp3 = async (flowId: string) => {
      await execFileAsync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '2.5', '-c:a', 'libmp3lame', '-f', 'flv', daemon.url(publishKey(flowId))]);
      let list: Recording[] = [];
      await waitFor(() => list.length === 1 && list[0]!.status !== 'recording', `${flowId}'s recording to end`, 15_000, async () => {
        list = await recordingsOf(flowId);
      });
      return list[0]!;
    };
    const inMp4 = await mp3('mp3-mp4');
    expect(inMp4).toMatchObject({ status: 'failed', bytes: 0, error: expect.stringMatching(/^nothing recorded: \d+ frames mp4 cannot carry \(it takes H\.264 or HEVC video and AAC audio\)/) });
    const inFlv = await mp3('mp3-flv');
    expect(inFlv).toMatchObject({ status: 'ready', note: null });
    expect((await probeStreams(fileOf(inFlv))).map((st) => st.codec_name)).toEqual(['mp3']);
  });
});
