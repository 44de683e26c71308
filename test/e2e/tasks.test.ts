import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { flowYaml, playKey, publishKey, spawnDaemon, startInProcess, tempConfig, type InProcessDaemon } from '../helpers/daemon.js';
import { play, probeDuration, probeStreams, probeVideoPackets, publish, waitFor } from '../helpers/ffmpeg.js';
import { freePort, nginxRtmpAvailable, startNginxRtmp, type RtmpPeer } from '../helpers/peers.js';
import { apiClient, type ApiAnswer } from '../helpers/api-client.js';
import { killDaemonAndAwaitItsFfmpeg } from '../helpers/orphans.js';
import { deadPort, webhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { rtmpsListener, selfSignedCert } from '../helpers/tls-cert.js';

const execFileAsync = promisify(execFile);
const TOKEN = 'frt_tasks-tests-token-0000000000000000000000';
const CALLBACK_SECRET = 'task-callback-secret-0123456789';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();
// Tests poll the task API; only the rate-limit test keeps the default limit in play.
const apiSection = (extra = '  taskRequestsPerMinute: 100000\n') => `api:\n  listen: "127.0.0.1:0"\n  tokens: [{ name: ops, scope: write, sha256: ${sha256(TOKEN)} }]\n${extra}`;

interface TaskView {
  id: string;
  destination: string;
  run: { status: string; error: string | null; attempts: number; progress: { outTimeMs: number } | null; log: string[] };
}


describe.skipIf(!nginxRtmpAvailable() && !process.env.CI)('scheduled pull-to-push tasks', () => {
  let dir: string;
  let nginx: RtmpPeer;
  let callbacks: WebhookReceiver;
  const daemons: InProcessDaemon[] = [];

  const apiOf = (daemon: InProcessDaemon | App): (<T = TaskView>(path: string, init?: { method?: string; json?: unknown }) => Promise<ApiAnswer<T>>) => {
    const app = daemon instanceof App ? daemon : daemon.app;
    return apiClient(() => `http://127.0.0.1:${app.apiPort()}`, TOKEN);
  };

  const start = async (yaml: string, app: Record<string, unknown> = {}) => {
    const d = await startInProcess(yaml, '', undefined, { storageExtra: ', minFreeSpace: 0', app });
    daemons.push(d);
    return d;
  };
  const taskEvents = (id: string) => callbacks.received.filter((r) => 'taskId' in r.delivery.data && r.delivery.data.taskId === id).map((r) => r.delivery.data);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flowrelay-tasks-'));
    const gen = (file: string, freq: number) =>
      execFileAsync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', `sine=frequency=${freq}:sample_rate=44100`, '-t', '4', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-movflags', '+faststart', file]);
    await Promise.all([gen(join(dir, 'a.mp4'), 440), gen(join(dir, 'b.mp4'), 880)]);
    nginx = await startNginxRtmp();
    callbacks = await webhookReceiver(CALLBACK_SECRET, '/task-events');
  });
  afterAll(async () => {
    for (const d of daemons) await d.close().catch(() => undefined);
    await nginx?.stop();
    await callbacks?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a files task (from file 2 at 1 s, repeat 1) reaches nginx-rtmp with the expected length and timestamps that only rise', async () => {
    const daemon = await start(`${apiSection()}flows: []\n`);
    const api = apiOf(daemon);
    const destination = `rtmp://127.0.0.1:${nginx.port}/live/files`;
    const out = join(dir, 'files-recorded.flv');
    // The player ends 5 s after the stream stops (nginx-rtmp keeps the play open).
    const player = play(destination, out, ['-rw_timeout', '5000000']);
    const created = await api('/v1/tasks', {
      method: 'POST',
      json: { id: 'playlist', source: { type: 'files', urls: [join(dir, 'a.mp4'), join(dir, 'b.mp4')], repeat: 1, fileIndex: 1, offsetSeconds: 1 }, destination, startTime: inSeconds(1), endTime: inSeconds(60) },
    });
    expect(created.status).toBe(201);
    expect(created.result.run.status).toBe('scheduled');
    // The playlist runs out before endTime: the task completes and is removed from the API and the file.
    let gone = false;
    await waitFor(() => gone, 'the task to finish and be removed', 40_000, async () => {
      gone = (await api('/v1/tasks/playlist')).status === 404;
    });
    expect(await readFile(daemon.configFile, 'utf8')).not.toContain('playlist');
    await player.done;
    const streams = await probeStreams(out);
    expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    // b from 1 s (3 s), then a and b again (8 s).
    const { videoSpan } = await probeDuration(out);
    expect(videoSpan).toBeGreaterThan(10);
    expect(videoSpan).toBeLessThan(12.5);
    const packets = await probeVideoPackets(out);
    const dts = packets.map((p) => Number(p.dts_time));
    for (let i = 1; i < dts.length; i++) expect(dts[i]!, `packet ${i}`).toBeGreaterThan(dts[i - 1]!);
  });

  it('a files task with a relative path reads it from the config file\'s directory', async () => {
    const destination = `rtmp://127.0.0.1:${nginx.port}/live/relative`;
    const out = join(dir, 'relative-recorded.flv');
    const player = play(destination, out, ['-rw_timeout', '5000000']);
    const cfg = await tempConfig('');
    await mkdir(join(cfg.dir, 'media'));
    await copyFile(join(dir, 'a.mp4'), join(cfg.dir, 'media', 'a.mp4'));
    await writeFile(
      cfg.file,
      `${apiSection()}storage: { dir: ${JSON.stringify(join(cfg.dir, 'data'))}, minFreeSpace: 0 }\nrtmp: { listen: "127.0.0.1:0" }\nflows: []\ntasks:\n  - id: relative\n    source: { type: files, urls: [media/a.mp4] }\n    destination: "${destination}"\n    startTime: "${inSeconds(0.5)}"\n    endTime: "${inSeconds(60)}"\n`,
    );
    const app = await App.load({ configFile: cfg.file, logger: pino({ level: 'silent' }), announce: () => undefined });
    await app.start();
    try {
      const api = apiOf(app);
      expect((await api('/v1/tasks/relative')).result.destination).toBe(destination);
      let gone = false;
      await waitFor(() => gone, 'the task to play its file and be removed', 30_000, async () => {
        gone = (await api('/v1/tasks/relative')).status === 404;
      });
      await player.done;
      const { videoSpan } = await probeDuration(out);
      expect(videoSpan).toBeGreaterThan(3.5);
    } finally {
      await app.close('test done');
      await cfg.cleanup();
    }
  });

  it('a task starts on time, stops at its end, and is gone from the API and the file; a daemon restart in the middle carries it on', async () => {
    const port = await freePort();
    const cfg = await tempConfig(
      `rtmp: { listen: "127.0.0.1:${port}" }\n${apiSection()}flows:\n${flowYaml('src')}${flowYaml('dst')}tasks:\n  - id: relay\n    source: { type: live, protocol: rtmp, url: "rtmp://127.0.0.1:${port}/live/play-src-0123456789abc" }\n    destination: "rtmp://127.0.0.1:${port}/live/${publishKey('dst')}"\n    startTime: "${inSeconds(4)}"\n    endTime: "${inSeconds(16)}"\n`,
      ', minFreeSpace: 0',
    );
    const logger = pino({ level: 'silent' });
    let app = await App.load({ configFile: cfg.file, logger, announce: () => undefined });
    await app.start();
    const publishers: ReturnType<typeof publish>[] = [];
    try {
      publishers.push(publish(`rtmp://127.0.0.1:${port}/live/${publishKey('src')}`, { seconds: 30 }));
      const dst = () => app.registry.get('dst')!;
      expect((await apiOf(app)('/v1/tasks/relay')).result.run.status).toBe('scheduled');
      expect(dst().hub.live).toBe(false);
      await waitFor(() => dst().hub.live, 'the task to start pushing into dst', 15_000);
      // Restart the daemon in the middle: the task is still in the file and carries on.
      await app.close('restart');
      app = await App.load({ configFile: cfg.file, logger, announce: () => undefined });
      await app.start();
      // The encoder feeding src reconnects, as encoders do.
      publishers.push(publish(`rtmp://127.0.0.1:${port}/live/${publishKey('src')}`, { seconds: 30 }));
      await waitFor(() => dst().hub.live, 'the task to push again after the restart', 15_000);
      expect((await apiOf(app)('/v1/tasks/relay')).result.run.status).toBe('running');
      // At its end time it stops and disappears.
      await waitFor(() => !dst().hub.live, 'the task to stop at its end time', 20_000);
      let status = 0;
      await waitFor(() => status === 404, 'the task to be removed', 10_000, async () => {
        status = (await apiOf(app)('/v1/tasks/relay')).status;
      });
      expect(await readFile(cfg.file, 'utf8')).not.toMatch(/id: relay/);
    } finally {
      for (const p of publishers) p.proc.kill('SIGKILL');
      await app.close('test done');
      await cfg.cleanup();
    }
  });

  it('a live task whose source drops and comes back carries on: it is not completed and removed before its end time', async () => {
    const daemon = await start(`${apiSection()}flows:\n${flowYaml('blip-src')}${flowYaml('blip-dst')}`, { taskRetryDelayMs: () => 300 });
    const api = apiOf(daemon);
    const dst = daemon.app.registry.get('blip-dst')!.hub;
    const created = await api('/v1/tasks', {
      method: 'POST',
      json: { id: 'blip', source: { type: 'live', protocol: 'rtmp', url: daemon.url(playKey('blip-src')) }, destination: daemon.url(publishKey('blip-dst')), startTime: inSeconds(0.5), endTime: inSeconds(120), retry: { intervalSeconds: 60, count: 3 } },
    });
    expect(created.status).toBe(201);
    const first = publish(daemon.url(publishKey('blip-src')), { seconds: 4 });
    try {
      await waitFor(() => dst.live, 'the task pushing into blip-dst', 15_000);
      expect((await first.done).code).toBe(0);
      // The source's publisher is gone: the task's ffmpeg ends cleanly, and dst with it.
      await waitFor(() => !dst.live, 'blip-dst to lose its input', 10_000);
      const back = publish(daemon.url(publishKey('blip-src')), { seconds: 30 });
      try {
        await waitFor(() => dst.live, 'the task pushing again once the source is back', 20_000);
        const task = (await api('/v1/tasks/blip')).result;
        expect(task.run.status).toBe('running');
        expect(task.run.attempts).toBeGreaterThanOrEqual(2);
        expect(await readFile(daemon.configFile, 'utf8')).toMatch(/id: blip/);
      } finally {
        back.proc.kill('SIGKILL');
      }
    } finally {
      first.proc.kill('SIGKILL');
      await api('/v1/tasks/blip', { method: 'DELETE' });
    }
  });

  it('a task whose destination is down retries count times at the interval, then fails, with callbacks for each step', async () => {
    const daemon = await start(`${apiSection()}flows: []\n`, { taskRetryDelayMs: () => 300 });
    const api = apiOf(daemon);
    const destination = `rtmp://127.0.0.1:${await deadPort()}/live/nobody`;
    const created = await api('/v1/tasks', {
      method: 'POST',
      json: { id: 'doomed', source: { type: 'files', urls: [join(dir, 'a.mp4')], repeat: -1 }, destination, startTime: inSeconds(0.5), endTime: inSeconds(120), retry: { intervalSeconds: 60, count: 2 }, callbackUrl: callbacks.url, callbackSecret: CALLBACK_SECRET },
    });
    expect(created.status).toBe(201);
    let task = created.result;
    await waitFor(() => task.run.status === 'failed', 'the task to fail', 30_000, async () => {
      task = (await api('/v1/tasks/doomed')).result;
    });
    expect(task.run.attempts).toBe(3);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.app.apiPort()}/metrics`)).text();
    expect(metrics).toMatch(/^flowrelay_task_attempts_total\{task="doomed"\} 3$/m);
    expect(metrics).toMatch(/^flowrelay_task_running\{task="doomed"\} 0$/m);
    expect(task.run.error).toMatch(/ffmpeg exited with code/);
    await waitFor(() => taskEvents('doomed').some((e) => e.type === 'task.status' && e.status === 'failed'), 'the failure callback');
    expect(callbacks.received.every((r) => r.verified)).toBe(true);
    const steps = taskEvents('doomed').map((e) => (e.type === 'task.status' ? e.status : e.type === 'task.exit' ? `exit${e.attempt}` : e.type));
    expect(steps).toEqual(['running', 'exit1', 'retrying', 'running', 'exit2', 'retrying', 'running', 'exit3', 'failed']);
    expect((await api('/v1/tasks/doomed', { method: 'DELETE' })).status).toBe(200);
  });

  it('an rtmps:// destination\'s certificate is verified: an untrusted one fails the task, tls.ca makes it trusted', async () => {
    const { cert, key } = await selfSignedCert('flowrelay-task-tls-');
    const daemon = await startInProcess(`${apiSection()}flows:\n${flowYaml('untrusted')}${flowYaml('trusted')}`, rtmpsListener({ cert, key }), undefined, { storageExtra: ', minFreeSpace: 0', app: { taskRetryDelayMs: () => 300 } });
    daemons.push(daemon);
    const api = apiOf(daemon);
    const tlsPort = daemon.app.addresses().find((a) => a.protocol === 'rtmps')!.address.port;
    const task = (id: string, flow: string, tls?: unknown) => ({
      id, source: { type: 'files', urls: [join(dir, 'a.mp4')], repeat: -1 }, destination: `rtmps://127.0.0.1:${tlsPort}/live/${publishKey(flow)}`,
      startTime: inSeconds(0.5), endTime: inSeconds(60), retry: { intervalSeconds: 60, count: 0 }, ...(tls !== undefined && { tls }),
    });
    expect((await api('/v1/tasks', { method: 'POST', json: task('untrusted', 'untrusted') })).status).toBe(201);
    expect((await api('/v1/tasks', { method: 'POST', json: task('trusted', 'trusted', { ca: cert }) })).status).toBe(201);
    const trusted = daemon.app.registry.get('trusted')!;
    await waitFor(() => trusted.hub.counters.videoFrames > 25, 'the trusted task to stream', 20_000);
    let view = (await api('/v1/tasks/untrusted')).result;
    await waitFor(() => view.run.status === 'failed', 'the untrusted task to fail', 20_000, async () => {
      view = (await api('/v1/tasks/untrusted')).result;
    });
    expect(daemon.app.registry.get('untrusted')!.hub.counters.sourceStarts).toBe(0);
    expect(view.run.log.join('\n')).toMatch(/Cannot open connection tls:\/\//);
    for (const id of ['untrusted', 'trusted']) await api(`/v1/tasks/${id}`, { method: 'DELETE' });
  });

  it('two tasks to one destination created at the same moment: one is created, the other is already_exists (409)', async () => {
    const daemon = await start(`${apiSection('')}flows: []\n`);
    const api = apiOf(daemon);
    const base = { source: { type: 'live', protocol: 'rtmp', url: 'rtmp://127.0.0.1:1/live/x' }, destination: 'rtmp://127.0.0.1:2/live/same', startTime: inSeconds(3600), endTime: inSeconds(7200) };
    const both = await Promise.all(['one', 'two'].map((id) => api('/v1/tasks', { method: 'POST', json: { id, ...base } })));
    expect(both.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(both.find((r) => r.status === 409)!.errors[0]).toMatchObject({ code: 'already_exists', message: expect.stringMatching(/^destination: task "(one|two)" already pushes/) });
    expect((await api<unknown[]>('/v1/tasks')).result).toHaveLength(1);
  });

  it('refuses a second task to the same destination and illegal durations; limits the rate per token', async () => {
    const daemon = await start(`${apiSection('  taskRequestsPerMinute: 8\n')}flows: []\n`);
    const api = apiOf(daemon);
    const base = { source: { type: 'live', protocol: 'rtmp', url: 'rtmp://127.0.0.1:1/live/x' }, destination: 'rtmp://127.0.0.1:2/live/same', startTime: inSeconds(3600), endTime: inSeconds(7200) };
    expect((await api('/v1/tasks', { method: 'POST', json: { id: 'first', ...base } })).status).toBe(201);
    const dup = await api('/v1/tasks', { method: 'POST', json: { id: 'second', ...base } });
    expect(dup.status).toBe(409);
    expect(dup.errors[0]).toMatchObject({ code: 'already_exists', message: expect.stringMatching(/task "first"/) });
    const backwards = await api('/v1/tasks', { method: 'POST', json: { id: 'third', ...base, destination: 'rtmp://127.0.0.1:2/live/other', endTime: inSeconds(1800) } });
    expect(backwards.status).toBe(400);
    expect(backwards.errors[0]).toMatchObject({ code: 'illegal_duration', message: 'endTime: must be after startTime' });
    const past = await api('/v1/tasks', { method: 'POST', json: { id: 'fourth', ...base, destination: 'rtmp://127.0.0.1:2/live/other', startTime: inSeconds(-7200), endTime: inSeconds(-3600) } });
    expect(past.errors[0]).toMatchObject({ code: 'illegal_duration', message: 'endTime: must be in the future' });
    const badField = await api('/v1/tasks', { method: 'POST', json: { id: 'fifth', ...base, destination: 'http://example.com/x' } });
    expect(badField.status).toBe(400);
    expect(badField.errors[0]?.message).toMatch(/^destination: /);
    // PATCH is held to the same rules, and applies a change that keeps them.
    await api('/v1/tasks', { method: 'POST', json: { id: 'other', ...base, destination: 'rtmp://127.0.0.1:2/live/other' } });
    expect((await api('/v1/tasks/other', { method: 'PATCH', json: { destination: base.destination } })).errors[0]).toMatchObject({ code: 'already_exists' });
    const renamed = await api<TaskView & { name: string }>('/v1/tasks/other', { method: 'PATCH', json: { name: 'Other show' } });
    expect(renamed.status).toBe(200);
    expect(renamed.result.name).toBe('Other show');
    // 8 requests so far: the limit is reached, then 429.
    const limited = await api('/v1/tasks');
    expect(limited.status).toBe(429);
    expect(limited.errors[0]).toMatchObject({ code: 'limit_exceeded' });
  });

  it('no task ffmpeg outlives a daemon killed with SIGKILL', async () => {
    const marker = `live/orphan-${process.pid}`;
    const cfg = await tempConfig(
      `rtmp: { listen: "127.0.0.1:0" }\nflows: []\ntasks:\n  - id: orphan\n    source: { type: files, urls: ["${join(dir, 'a.mp4')}"], repeat: -1 }\n    destination: "rtmp://127.0.0.1:${nginx.port}/${marker}"\n    startTime: "${inSeconds(0)}"\n    endTime: "${inSeconds(600)}"\n`,
      ', minFreeSpace: 0',
    );
    try {
      await killDaemonAndAwaitItsFfmpeg(await spawnDaemon(cfg.file), marker, 'task ffmpeg');
    } finally {
      await cfg.cleanup();
    }
  });
});
