import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { taskSchema, type TaskConfig } from '../../src/config/schema-tasks.js';
import type { TaskEvent } from '../../src/core/flow-events.js';
import { systemClock } from '../../src/lib/clock.js';
import { TaskScheduler } from '../../src/tasks/task-scheduler.js';
import { flowYaml, publishKey, startInProcess } from '../helpers/daemon.js';
import { waitFor } from '../helpers/ffmpeg.js';
import { deadPort } from '../helpers/webhook-receiver.js';

const execFileAsync = promisify(execFile);
const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

/** A live task whose source refuses connections: ffmpeg fails at once and the task keeps retrying. */
async function failingTask(id: string, extra: Partial<Record<string, unknown>> = {}): Promise<TaskConfig> {
  return taskSchema.parse({
    id,
    source: { type: 'live', protocol: 'rtmp', url: `rtmp://127.0.0.1:${await deadPort()}/live/none` },
    destination: `rtmp://127.0.0.1:${await deadPort()}/live/${id}`,
    startTime: inSeconds(0),
    endTime: inSeconds(3600),
    retry: { intervalSeconds: 60, count: 10 },
    ...extra,
  });
}

describe('task scheduler', () => {
  let scheduler: TaskScheduler | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    scheduler?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const make = async (maxRunning: number, extra: { maxPlaylistEntries?: number } = {}) => {
    dir = await mkdtemp(join(tmpdir(), 'flowrelay-sched-'));
    const events: TaskEvent[] = [];
    const deleted: string[] = [];
    const logLines: string[] = [];
    scheduler = new TaskScheduler({
      clock: systemClock,
      logger: pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) }),
      ffmpegPath: () => 'ffmpeg',
      ffprobePath: () => 'ffprobe',
      workDir: dir,
      maxRunning: () => maxRunning,
      events: (e) => events.push(e),
      deleteTask: async (id) => void deleted.push(id),
      // Retries far apart: a failed task holds its slot while it waits to retry.
      retryDelayMs: () => 3_600_000,
      ...extra,
    });
    return { scheduler, events, deleted, logLines };
  };

  it('runs at most limits.maxRunningTasks at once; the next waits for a slot and starts when one frees', async () => {
    const { scheduler, events } = await make(1);
    const [a, b] = [await failingTask('a'), await failingTask('b')];
    scheduler.apply([a, b]);
    await waitFor(() => scheduler.get('a')?.report.status === 'retrying', 'task a to fail once and wait to retry', 15_000);
    expect(scheduler.get('b')?.report).toMatchObject({ status: 'scheduled', error: 'waiting: limits.maxRunningTasks tasks are running', attempts: 0 });
    // Removing a frees the slot: b starts.
    scheduler.apply([b]);
    await waitFor(() => scheduler.get('b')?.report.status === 'retrying', 'task b to run once its turn came', 15_000);
    expect(events.filter((e) => e.taskId === 'b' && e.type === 'task.status').map((e) => e.type === 'task.status' && e.status)).toEqual(['running', 'retrying']);
  });

  it('a task that fails for good frees its slot for a waiting one', async () => {
    const { scheduler, logLines } = await make(1);
    const [a, b] = [await failingTask('a', { retry: { intervalSeconds: 60, count: 0 } }), await failingTask('b')];
    scheduler.apply([a, b]);
    await waitFor(() => scheduler.get('a')?.report.status === 'failed', 'task a to fail (no retries)', 15_000);
    await waitFor(() => scheduler.get('b')?.report.status === 'retrying', 'task b to get the slot', 15_000);
    // Each line names its task once: a repeated key is refused by strict JSON ingesters.
    const statusLines = logLines.filter((l) => l.includes('"msg":"task status"'));
    expect(statusLines.length).toBeGreaterThan(0);
    for (const line of statusLines) expect(line.match(/"taskId":/g)).toHaveLength(1);
  });

  it('an unchanged task is left alone on apply; a changed one restarts; one already over is completed and deleted at once', async () => {
    const { scheduler, events, deleted } = await make(5);
    const a = await failingTask('a');
    scheduler.apply([a]);
    await waitFor(() => scheduler.get('a')?.report.status === 'retrying', 'task a to run', 15_000);
    scheduler.apply([{ ...a }]);
    expect(scheduler.get('a')?.report.attempts).toBe(1);
    // A new name or callback is taken in place: the run goes on.
    scheduler.apply([{ ...a, name: 'Renamed', callbackUrl: 'http://127.0.0.1:1/cb', callbackSecret: 'callback-secret-0123456789' }]);
    expect(scheduler.get('a')).toMatchObject({ config: { name: 'Renamed' }, report: { status: 'retrying', attempts: 1 } });
    scheduler.apply([{ ...a, retry: { intervalSeconds: 61, count: 10 } }]);
    expect(scheduler.get('a')?.report.status).toBe('scheduled');
    const over = await failingTask('over', { startTime: inSeconds(-7200), endTime: inSeconds(-3600) });
    scheduler.apply([over]);
    expect(deleted).toEqual(['over']);
    expect(events.filter((e) => e.taskId === 'over').map((e) => e.type === 'task.status' && e.status)).toEqual(['completed']);
  });

  it('a running task that is removed says stopped; attempt numbers in task.status match task.exit', async () => {
    const { scheduler, events } = await make(5);
    const a = await failingTask('a');
    scheduler.apply([a]);
    await waitFor(() => scheduler.get('a')?.report.status === 'retrying', 'task a to fail once', 15_000);
    scheduler.apply([]);
    const steps = events.filter((e) => e.taskId === 'a').map((e) => (e.type === 'task.status' ? `${e.status}#${e.attempt}` : `exit#${e.attempt}`));
    expect(steps).toEqual(['running#1', 'exit#1', 'retrying#1', 'stopped#1']);
  });

  it('a files task whose playlist was over before its end time completes and is deleted, without an ffmpeg run', async () => {
    const { scheduler, events, deleted } = await make(5);
    const file = join(dir!, 'two-seconds.mp4');
    await execFileAsync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-t', '2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', file]);
    const late = taskSchema.parse({
      id: 'late',
      source: { type: 'files', urls: [file] },
      destination: `rtmp://127.0.0.1:${await deadPort()}/live/late`,
      startTime: inSeconds(-60),
      endTime: inSeconds(3600),
    });
    scheduler.apply([late]);
    await waitFor(() => deleted.includes('late'), 'the task to complete and be deleted', 15_000);
    expect(events.filter((e) => e.taskId === 'late').map((e) => (e.type === 'task.status' ? e.status : e.type))).toEqual(['running', 'completed']);
  });

  it('a files task repeating until its end time runs list after list when one list is not enough', async () => {
    const daemon = await startInProcess(`flows:\n${flowYaml('looped')}`);
    try {
      // Lists of two entries: each run plays two seconds, and the task goes on with the next.
      const { scheduler, events, deleted } = await make(5, { maxPlaylistEntries: 2 });
      const file = join(dir!, 'one-second.mp4');
      await execFileAsync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-t', '1', '-c:v', 'libx264', '-g', '25', '-pix_fmt', 'yuv420p', file]);
      scheduler.apply([
        taskSchema.parse({
          id: 'loop',
          source: { type: 'files', urls: [file], repeat: -1 },
          destination: daemon.url(publishKey('looped')),
          startTime: inSeconds(0),
          endTime: inSeconds(9),
        }),
      ]);
      await waitFor(() => deleted.includes('loop'), 'the task to reach its end time', 20_000);
      const mine = events.filter((e) => e.taskId === 'loop');
      const exits = mine.filter((e) => e.type === 'task.exit');
      expect(exits.filter((e) => e.type === 'task.exit' && e.code === 0 && !e.stopped).length).toBeGreaterThanOrEqual(2);
      expect(mine.filter((e) => e.type === 'task.status').map((e) => e.type === 'task.status' && e.status)).toEqual(['running', 'completed']);
      expect(daemon.app.registry.get('looped')!.inputs.get('main')!.publishes).toBeGreaterThanOrEqual(3);
    } finally {
      await daemon.close();
    }
  });
});
