import { execFileSync } from 'node:child_process';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FfmpegSupervisor, type FfmpegState } from '../../src/ffmpeg/supervisor.js';
import { systemClock } from '../../src/lib/clock.js';
import { waitFor } from '../helpers/ffmpeg.js';

const logger = pino({ level: 'silent' });
/** Marks this file's ffmpeg on its command line, so pgrep finds it and nothing else. */
const MARKER = `flowrelay-supervisor-test-${process.pid}`;
/** A real-time source that never ends, written nowhere: ffmpeg with steady progress. */
const ENDLESS = ['-loglevel', 'warning', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-metadata', `title=${MARKER}`, '-f', 'null', '-'];

function supervisor(args: string[], options: { maxRestarts?: number; staleMs?: number; initialDelayMs?: number } = {}) {
  const states: FfmpegState[] = [];
  const sup = new FfmpegSupervisor({
    path: () => 'ffmpeg',
    args: async () => args,
    secrets: [],
    clock: systemClock,
    logger,
    restart: { initialDelayMs: options.initialDelayMs ?? 300, maxDelayMs: 2000, jitter: 0.2, maxRestarts: options.maxRestarts },
    staleMs: options.staleMs ?? 30_000,
    onState: (state) => states.push(state),
  });
  return { sup, states };
}

describe('ffmpeg supervisor', () => {
  let server: Server;
  let base: string;
  const stalled: ServerResponse[] = [];

  beforeAll(async () => {
    // Answers with headers and then nothing: a source that hangs.
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'video/x-flv' });
      res.write(Buffer.from('464c5601050000000900000000', 'hex'));
      stalled.push(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const res of stalled) res.destroy();
    await new Promise((r) => server.close(r));
  });

  it('restarts an ffmpeg killed with SIGKILL after a backoff, and stops one with SIGINT', async () => {
    const { sup, states } = supervisor(ENDLESS);
    sup.start();
    await waitFor(() => sup.report().state === 'running', 'the first run', 15_000);
    const first = sup.report();
    expect(first.progress?.outTimeMs).toBeGreaterThan(0);
    const pid = Number(execFileSync('pgrep', ['-f', MARKER], { encoding: 'utf8' }).trim());
    process.kill(pid, 'SIGKILL');
    await waitFor(() => sup.report().state === 'backoff', 'the backoff after the kill');
    expect(sup.report().lastError).toMatch(/killed by SIGKILL/);
    expect(sup.report().nextAttemptAt).toBeInstanceOf(Date);
    await waitFor(() => sup.report().state === 'running' && sup.report().attempts === 2, 'the second run', 15_000);
    sup.stop();
    await waitFor(() => sup.report().state === 'stopped', 'the stop');
    expect(states).toEqual(['starting', 'running', 'backoff', 'starting', 'running', 'stopping', 'stopped']);
  });

  it('kills a run whose progress stalls, and retries it', async () => {
    const { sup } = supervisor(['-loglevel', 'warning', '-i', `${base}/hang.flv`, '-c', 'copy', '-f', 'null', '-'], { staleMs: 1500, initialDelayMs: 5000 });
    sup.start();
    await waitFor(() => sup.report().state === 'backoff', 'the watchdog to kill the stalled run', 15_000);
    expect(sup.report().lastError).toBe('ffmpeg made no progress for 1500 ms; killed');
    sup.stop();
    expect(sup.report().state).toBe('stopped');
  });

  it('gives up after maxRestarts failed runs in a row, with ffmpeg\'s own last words', async () => {
    const { sup, states } = supervisor(['-loglevel', 'error', '-i', '/nonexistent/input.mp4', '-f', 'null', '-'], { maxRestarts: 2, initialDelayMs: 100 });
    sup.start();
    await waitFor(() => sup.report().state === 'failed', 'the supervisor to give up', 15_000);
    expect(sup.report().attempts).toBe(3);
    expect(sup.report().lastError).toMatch(/ffmpeg exited with code \d+: .*No such file or directory/);
    expect(sup.report().log.join('\n')).toMatch(/nonexistent/);
    expect(states.filter((s) => s === 'starting')).toHaveLength(3);
  });
});
