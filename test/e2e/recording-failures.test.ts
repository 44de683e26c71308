import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { flowStatus } from '../../src/api/flow-views.js';
import { nodeRecordingFs, type RecordingFileSystem } from '../../src/recording/recording-fs.js';
import { REPO_ROOT, flowYaml, outputTo, playKey, publishKey, reconfigure, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { decodeAll, play, probeDuration, probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';
import { webhookReceiver } from '../helpers/webhook-receiver.js';

const SECRET = 'recording-webhook-secret-0123456789';

/**
 * The real file system, except that it holds only `limit` bytes of recordings: the write
 * that crosses the limit writes what fits and then fails with ENOSPC, as a real full disk
 * does, leaving a torn end.
 */
function fillingDisk(limit: number): RecordingFileSystem {
  let used = 0;
  return {
    ...nodeRecordingFs,
    async create(path) {
      const file = await nodeRecordingFs.create(path);
      return {
        ...file,
        append: async (buffers) => {
          const size = buffers.reduce((n, b) => n + b.length, 0);
          if (used + size > limit) {
            const fits = Buffer.concat(buffers).subarray(0, limit - used);
            used = limit;
            await file.append([fits]);
            throw Object.assign(new Error('no space left on device, write'), { code: 'ENOSPC' });
          }
          used += size;
          await file.append(buffers);
        },
        patch: (offset, bytes) => file.patch(offset, bytes),
        close: () => file.close(),
      };
    },
  };
}

describe('recording failures leave the live path alone', () => {
  let daemon: InProcessDaemon | undefined;
  afterEach(async () => {
    await daemon?.close();
    daemon = undefined;
  });

  it('a full disk fails the recording cleanly (status, index, event) while the flow keeps streaming to its output', async () => {
    const hooks = await webhookReceiver(SECRET);
    daemon = await startInProcess(`webhooks: [{ url: "${hooks.url}", secret: "${SECRET}", events: ["recording.started", "recording.failed"] }]\nflows:\n${flowYaml('sink')}`, '', undefined, {
      storageExtra: ', minFreeSpace: 0',
      app: { recordingFs: fillingDisk(600_000) },
    });
    await reconfigure(
      daemon,
      `${flowYaml('sink')}${flowYaml('full', { outputs: [outputTo('copy', daemon.port, 'sink', { idleDisconnectMs: 1000 })], recording: { mode: 'automatic', format: 'mp4', timeoutSeconds: 0 } })}`,
    );
    const flow = daemon.app.registry.get('full')!;
    const out = join(daemon.dir, 'sink.flv');
    const player = play(daemon.url(playKey('sink')), out);
    const pub = publish(daemon.url(publishKey('full')), { seconds: 6 });
    await waitFor(() => flow.recorder?.report().state === 'failed', 'the recording to fail', 15_000);
    const report = flow.recorder!.report();
    expect(report.lastError).toMatch(/disk full \(ENOSPC\)/);
    // The publisher is still on and the output still connected while the recording is dead.
    expect(flow.hub.live).toBe(true);
    expect((await pub.done).code).toBe(0);
    await player.done;
    const streams = await probeStreams(out);
    expect(videoFrames(streams)).toBeGreaterThan(125); // most of 150 frames: the output never stopped
    const { videoSpan } = await probeDuration(out);
    expect(videoSpan).toBeGreaterThan(5);

    // What GET /v1/flows/full/status shows.
    expect(flowStatus(flow, Date.now())).toMatchObject({ recording: { mode: 'automatic', state: 'failed', lastError: expect.stringMatching(/ENOSPC/) } });
    // The index on disk says the file failed, and why.
    let entries: Record<string, unknown>[] = [];
    await waitFor(() => entries[0]?.status === 'failed', 'the index to record the failure', 10_000, async () => {
      entries = await readIndex(daemon!);
    });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ flowId: 'full', status: 'failed', error: expect.stringMatching(/ENOSPC/) });
    // The file was cut back to its last whole fragment: it plays up to the failure.
    const failedFile = join(daemon.dir, 'data', 'recordings', String(entries[0]!.file));
    await waitFor(() => entries[0]?.bytes === 0 || (entries[0]?.bytes as number) < 600_000, 'the torn end to be cut', 10_000, async () => {
      entries = await readIndex(daemon!);
    });
    expect((await stat(failedFile)).size).toBe(entries[0]!.bytes);
    const failedStreams = await probeStreams(failedFile);
    expect(failedStreams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(videoFrames(failedStreams)).toBeGreaterThan(10);
    expect((await decodeAll(failedFile)).stderr).toBe('');
    // And the webhooks were told, signed.
    await waitFor(() => hooks.received.length >= 2, 'the recording events');
    await hooks.close();
    expect(hooks.received.every((r) => r.verified)).toBe(true);
    expect(hooks.received.map((r) => r.delivery.data)).toMatchObject([
      { type: 'recording.started', flowId: 'full', jobId: null, recordingId: entries[0]!.id, format: 'mp4' },
      { type: 'recording.failed', flowId: 'full', recordingId: entries[0]!.id, error: expect.stringMatching(/ENOSPC/) },
    ]);
  });

  it('a file deleted while it is written fails at once (not reported ready), and a new file follows while the publisher stays', async () => {
    daemon = await startInProcess(`flows:\n${flowYaml('gone', { recording: { mode: 'automatic', format: 'flv', timeoutSeconds: 0 } })}`, '', undefined, { storageExtra: ', minFreeSpace: 0' });
    const flow = daemon.app.registry.get('gone')!;
    const pub = publish(daemon.url(publishKey('gone')), { seconds: 22 });
    await waitFor(() => !!flow.recorder?.report().file, 'the recording', 15_000);
    const first = join(daemon.dir, 'data', 'recordings', flow.recorder!.report().file!);
    let size = 0;
    await waitFor(() => size > 0, 'bytes on disk', 10_000, async () => {
      size = (await stat(first).catch(() => undefined))?.size ?? 0;
    });
    await rm(first);
    let entries: Record<string, unknown>[] = [];
    await waitFor(() => flow.recorder!.report().state === 'failed', 'the deleted file to be noticed', 10_000);
    const report = flow.recorder!.report();
    expect(report.lastError).toMatch(/deleted while it was being written/);
    expect(report.nextAttemptAt).not.toBeNull();
    await waitFor(() => entries[0]?.status === 'failed', 'the index to say so', 10_000, async () => {
      entries = await readIndex(daemon!);
    });
    expect(entries[0]!.error).toMatch(/deleted/);

    // RETRY_INITIAL_MS (10 s) later, with the publisher still on, a new file is written.
    await waitFor(() => flow.recorder!.report().sessions === 2 && flow.recorder!.report().state === 'recording', 'a new file', 20_000);
    expect((await pub.done).code).toBe(0);
    await waitFor(() => entries.length === 2 && entries[1]!.status === 'ready', 'the second file ready', 15_000, async () => {
      entries = await readIndex(daemon!);
    });
    const second = join(daemon.dir, 'data', 'recordings', String(entries[1]!.file));
    expect(videoFrames(await probeStreams(second))).toBeGreaterThan(25);
  });

  it('below storage.minFreeSpace no recording starts, the status says why, and publishing still works', async () => {
    daemon = await startInProcess(`flows:\n${flowYaml('floor', { recording: { mode: 'automatic', format: 'mp4', timeoutSeconds: 0 } })}`, '', undefined, {
      // Far more than any test machine has free.
      storageExtra: ', minFreeSpace: "1000000Gi"',
    });
    const flow = daemon.app.registry.get('floor')!;
    const pub = publish(daemon.url(publishKey('floor')), { seconds: 2 });
    await waitFor(() => flow.hub.live, 'the publisher');
    const report = flow.recorder!.report();
    expect(report.state).toBe('low_disk_space');
    expect(report.lastError).toMatch(/low_disk_space: .* free in .*storage\.minFreeSpace is 1000000\.0 GiB/);
    expect((await pub.done).code).toBe(0);
    expect(flow.hub.counters.videoFrames).toBeGreaterThan(40);
    // Nothing was written.
    const files = await readdir(join(daemon.dir, 'data', 'recordings')).catch(() => [] as string[]);
    expect(files.filter((f) => f !== 'index.json' && f !== 'jobs.json')).toEqual([]);
  });
});

async function readIndex(daemon: InProcessDaemon): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(daemon.dir, 'data', 'recordings', 'index.json'), 'utf8');
  return (JSON.parse(text) as { recordings: Record<string, unknown>[] }).recordings;
}

/** A user and mount namespace of our own lets a test mount a read-only file system. */
const canUnshare = spawnSync('unshare', ['-rm', 'true']).status === 0;

describe.skipIf(!canUnshare)('recording on a read-only file system', () => {
  it('names the real reason (EROFS), not "no such file or directory"', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-rofs-'));
    const script = join(dir, 'create.mjs');
    await writeFile(script, `import { nodeRecordingFs } from ${JSON.stringify(join(REPO_ROOT, 'dist/recording/recording-fs.js'))};
import { describeWriteError } from ${JSON.stringify(join(REPO_ROOT, 'dist/recording/recording-session.js'))};
await nodeRecordingFs.create('/mnt/readonly/flow/2026/a.flv').then(() => console.log('created'), (err) => console.log(describeWriteError(err)));
`);
    const mountAndRun = `mkdir -p /mnt/readonly && mount -t tmpfs -o ro tmpfs /mnt/readonly && exec "$0" "$1"`;
    const run = spawnSync('unshare', ['-rm', 'sh', '-c', mountAndRun, process.execPath, script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe("EROFS: read-only file system, mkdir '/mnt/readonly/flow'");
    await rm(dir, { recursive: true });
  });
});
