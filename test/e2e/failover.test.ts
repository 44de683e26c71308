import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { playKey, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { delay, play, probeVideoPackets, publish, waitFor, type Proc } from '../helpers/ffmpeg.js';
import { nginxRtmpAvailable, startNginxRtmp, type RtmpPeer } from '../helpers/peers.js';
import { webhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const execFileAsync = promisify(execFile);
const PRIMARY_KEY = 'primary-key-0123456789';
const BACKUP_KEY = 'backup-key-0123456789';
const AFTER_MS = 1000;
/** Keyframe every 25 frames at 25 fps. */
const GOP_MS = 1000;
const HOOK_SECRET = 'failover-hook-secret-0123456789';

/** The width of every decoded video frame, in order: which encoder each part came from. */
async function frameWidths(file: string): Promise<number[]> {
  const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=width', '-of', 'csv=p=0', file], { maxBuffer: 16 * 1024 * 1024 });
  // A line per frame; side data can add lines without a width.
  return stdout.split('\n').map((line) => Number.parseInt(line, 10)).filter((w) => Number.isFinite(w));
}

/** Runs of equal values: [320, 320, 480] -> [320, 480]. */
function runs(values: number[]): number[] {
  return values.filter((v, i) => i === 0 || v !== values[i - 1]);
}

describe.skipIf(!nginxRtmpAvailable() && !process.env.CI)('primary/backup failover', () => {
  let nginx: RtmpPeer;
  let daemon: InProcessDaemon;
  let hooks: WebhookReceiver;
  const procs: Proc[] = [];

  const flowYaml = (id: string, revert: boolean) => `  - id: ${id}
    inputs:
      - { name: main, type: rtmp-push, streamKey: "${PRIMARY_KEY}-${id}" }
      - { name: backup, type: rtmp-push, streamKey: "${BACKUP_KEY}-${id}" }
    playback: { key: "${playKey(id)}" }
    failover: { afterMs: ${AFTER_MS}, revert: ${revert}, revertAfterMs: 3000 }
    recording: { mode: automatic, format: mpegts, timeoutSeconds: 0 }
    outputs: [{ name: nginx, type: rtmp, url: "rtmp://127.0.0.1:${nginx.port}/live/${id}", idleDisconnectMs: 0 }]
`;
  const primary = (id: string, seconds = 60) => {
    const p = publish(daemon.url(`${PRIMARY_KEY}-${id}`), { seconds, width: 320, height: 240 });
    procs.push(p);
    return p;
  };
  const backup = (id: string) => {
    const p = publish(daemon.url(`${BACKUP_KEY}-${id}`), { seconds: 60, width: 480, height: 270 });
    procs.push(p);
    return p;
  };
  /** The switch events of a flow as the webhook receiver got them, with when they were made. */
  const eventsOf = (id: string) =>
    hooks.received
      .filter((r) => 'flowId' in r.delivery.data && r.delivery.data.flowId === id)
      .map((r) => ({ ...r.delivery.data, at: Date.parse(r.delivery.createdAt) }));

  beforeAll(async () => {
    nginx = await startNginxRtmp();
    hooks = await webhookReceiver(HOOK_SECRET);
    daemon = await startInProcess(
      `webhooks: [{ url: "${hooks.url}", secret: "${HOOK_SECRET}", events: ["input.failover", "input.revert"] }]\nflows:\n${flowYaml('event', true)}${flowYaml('stall', false)}`,
      '',
      undefined,
      { storageExtra: ', minFreeSpace: 0' },
    );
  });
  afterAll(async () => {
    for (const p of procs) p.proc.kill('SIGKILL');
    await daemon?.close();
    await nginx?.stop();
    await hooks?.close();
  });

  it('the primary dies: the backup takes over within afterMs + one GOP; the primary returns and takes over again; nginx records one continuous stream', async () => {
    const flow = daemon.app.registry.get('event')!;
    const out = join(daemon.dir, 'event.flv');
    const player = play(`rtmp://127.0.0.1:${nginx.port}/live/event`, out, ['-rw_timeout', '5000000']);
    procs.push(player);
    // A player of the flow itself, attached across both switches.
    const direct = play(daemon.url(playKey('event')), join(daemon.dir, 'event-direct.flv'), ['-rw_timeout', '5000000']);
    procs.push(direct);
    const first = primary('event');
    await waitFor(() => flow.failover!.report().active === 'main', 'the primary to be active', 15_000);
    backup('event');
    await waitFor(() => flow.failover!.report().inputs[1]!.live, 'the backup to be live', 15_000);
    await delay(3000);

    const killedAt = Date.now();
    first.proc.kill('SIGKILL');
    await waitFor(() => flow.failover!.report().active === 'backup', 'the backup to take over', 10_000);
    await waitFor(() => eventsOf('event').length === 1, 'the failover event');
    const failover = eventsOf('event')[0]!;
    expect(failover).toMatchObject({ type: 'input.failover', from: 'main', to: 'backup', reason: 'disconnected' });
    expect(failover.at - killedAt).toBeLessThanOrEqual(AFTER_MS + GOP_MS + 1000);
    await delay(3000);

    primary('event');
    await waitFor(() => flow.failover!.report().active === 'main', 'the primary to take over again (revert)', 15_000);
    await waitFor(() => eventsOf('event').length === 2, 'the revert event');
    expect(eventsOf('event')[1]).toMatchObject({ type: 'input.revert', from: 'backup', to: 'main', reason: 'revert' });
    await delay(3000);
    for (const p of procs.filter((p) => p !== player && p !== direct)) p.proc.kill('SIGKILL');
    await player.done;
    // Each switch re-sends the new encoder's onMetaData. Stamped at time 0, as nginx-rtmp
    // does, FFmpeg reads it as metadata; at any other time it adds a phantom stream.
    const directResult = await direct.done;
    expect(directResult.stderr).not.toMatch(/New (subtitle|data) stream/);
    expect(runs(await frameWidths(join(daemon.dir, 'event-direct.flv')))).toEqual([320, 480, 320]);
    // Across each switch the next frame follows a frame duration (40 ms here) later, not
    // 1 ms: players and muxers working in frame units would read that as one time.
    const directDts = (await probeVideoPackets(join(daemon.dir, 'event-direct.flv'))).map((p) => Number(p.dts_time));
    for (let i = 1; i < directDts.length; i++) expect(directDts[i]! - directDts[i - 1]!, `gap before packet ${i}`).toBeGreaterThanOrEqual(0.02);

    // One continuous recording: primary, backup, primary again, in that order...
    expect(runs(await frameWidths(out))).toEqual([320, 480, 320]);
    // ...with timestamps that only move forward and no gap longer than afterMs + one GOP.
    const dts = (await probeVideoPackets(out)).map((p) => Number(p.dts_time));
    for (let i = 1; i < dts.length; i++) {
      expect(dts[i]! - dts[i - 1]!, `packet ${i}`).toBeGreaterThanOrEqual(0.02);
      expect(dts[i]! - dts[i - 1]!, `gap before packet ${i}`).toBeLessThanOrEqual((AFTER_MS + GOP_MS) / 1000);
    }
    expect(flow.failover!.report().switches).toBe(2);
    const { createMetrics } = await import('../../src/telemetry/metrics.js');
    const metrics = await createMetrics({ flows: () => [flow], now: Date.now, configOk: () => true, webhooks: () => [], recordingFreeBytes: () => undefined, tasks: () => [], listeners: () => [] }).metrics();
    expect(metrics).toMatch(/^flowrelay_flow_failover_switches_total\{flow="event"\} 2$/m);
    // Both encoders are gone by now: neither input is active.
    expect(metrics).toMatch(/^flowrelay_flow_failover_active\{flow="event",input="main"\} 0$/m);
    expect(metrics).toMatch(/^flowrelay_flow_failover_active\{flow="event",input="backup"\} 0$/m);
    // The flow's own recording is one file across both switches, with the three parts in it.
    await waitFor(() => flow.recorder!.report().state === 'idle', 'the recording to be completed');
    const index = JSON.parse(await readFile(join(daemon.dir, 'data', 'recordings', 'index.json'), 'utf8')) as { recordings: { flowId: string; file: string }[] };
    const entries = index.recordings.filter((r) => r.flowId === 'event');
    expect(entries).toHaveLength(1);
    expect(runs(await frameWidths(join(daemon.dir, 'data', 'recordings', entries[0]!.file)))).toEqual([320, 480, 320]);
  });

  it('a primary that stalls (connected, sending nothing) is failed over the same way', async () => {
    const flow = daemon.app.registry.get('stall')!;
    const stuck = primary('stall');
    await waitFor(() => flow.failover!.report().active === 'main', 'the primary to be active', 15_000);
    backup('stall');
    await waitFor(() => flow.failover!.report().inputs[1]!.live, 'the backup to be live', 15_000);
    await delay(2000);
    const stoppedAt = Date.now();
    stuck.proc.kill('SIGSTOP');
    try {
      await waitFor(() => flow.failover!.report().active === 'backup', 'the backup to take over from the stalled primary', 10_000);
      await waitFor(() => eventsOf('stall').length === 1, 'the failover event');
      const failover = eventsOf('stall')[0]!;
      expect(failover).toMatchObject({ from: 'main', to: 'backup', reason: 'stalled' });
      expect(failover.at - stoppedAt).toBeLessThanOrEqual(AFTER_MS + GOP_MS + 1000);
      // The stalled publisher is still connected: no revert without `revert`.
      expect(flow.failover!.report().inputs[0]!.live).toBe(true);
    } finally {
      stuck.proc.kill('SIGKILL');
    }
  });
});
