import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flowYaml, playKey, publishKey, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { decodeAll, probeDuration, probeStreams, publish, waitFor } from '../helpers/ffmpeg.js';
import { nginxRtmpAvailable, startNginxRtmp, type RtmpPeer } from '../helpers/peers.js';
import { apiClient, type ApiAnswer } from '../helpers/api-client.js';
import { deadPort, webhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { rtmpsListener, selfSignedCert } from '../helpers/tls-cert.js';

const TOKEN = 'frt_record-jobs-tests-token-00000000000000000';
const NOTIFY_SECRET = 'notify-secret-for-tests-0123456789';
const HOOK_SECRET = 'webhook-secret-for-tests-0123456789';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

interface Job {
  id: string;
  name: string;
  status: string;
  error: string | null;
  recordings: string[];
  notifySecret: string | null;
}

describe('record jobs', () => {
  let daemon: InProcessDaemon;
  let base: string;
  let notify: WebhookReceiver;
  let hooks: WebhookReceiver;

  const api: <T = Job>(path: string, init?: { method?: string; json?: unknown }) => Promise<ApiAnswer<T>> = apiClient(() => base, TOKEN);

  const jobEvents = (receiver: WebhookReceiver, jobId: string) =>
    receiver.received.filter((r) => 'jobId' in r.delivery.data && r.delivery.data.jobId === jobId).map((r) => r.delivery.data);

  beforeAll(async () => {
    notify = await webhookReceiver(NOTIFY_SECRET, '/notify');
    hooks = await webhookReceiver(HOOK_SECRET);
    daemon = await startInProcess(
      `api:
  listen: "127.0.0.1:0"
  tokens: [{ name: ops, scope: write, sha256: ${sha256(TOKEN)} }]
webhooks: [{ url: "${hooks.url}", secret: "${HOOK_SECRET}" }]
recordJobs: { waitSeconds: 2, timeoutSeconds: 1, maxActive: 4 }
flows: []
`,
      '',
      undefined,
      { storageExtra: ', minFreeSpace: 0' },
    );
    base = `http://127.0.0.1:${daemon.app.apiPort()}`;
  });
  afterAll(async () => {
    await daemon?.close();
    await notify?.close();
    await hooks?.close();
  });

  it('a URL that never goes live fails after the wait, and says so to notifyUrl and the webhooks', async () => {
    const url = `rtmp://127.0.0.1:${await deadPort()}/live/nothing-here`;
    const created = await api('/v1/record-jobs', { method: 'POST', json: { name: 'never live', url, notifyUrl: notify.url, notifySecret: NOTIFY_SECRET } });
    expect(created.status).toBe(201);
    expect(created.result).toMatchObject({ name: 'never live', status: 'waiting', format: 'mp4', waitSeconds: 2 });
    const id = created.result.id;
    let job = created.result;
    await waitFor(() => job.status === 'failed', 'the job to fail', 15_000, async () => {
      job = (await api(`/v1/record-jobs/${id}`)).result;
    });
    // With what the pull last ran into: here nobody listening.
    expect(job.error).toMatch(/^no stream arrived within 2 s; last error: .*ECONNREFUSED/);
    expect(job.recordings).toEqual([]);
    await waitFor(() => jobEvents(notify, id).length >= 1 && jobEvents(hooks, id).length >= 1, 'the failure to be notified');
    const expected = { type: 'record_job.status', jobId: id, name: 'never live', status: 'failed', previous: 'waiting', error: job.error };
    expect(jobEvents(notify, id)).toEqual([expected]);
    expect(jobEvents(hooks, id)).toEqual([expected]);
    expect(notify.received.every((r) => r.verified)).toBe(true);
  });

  it.skipIf(!nginxRtmpAvailable() && !process.env.CI)('a job on a live nginx-rtmp URL records a playable file and completes when the stream ends', async () => {
    const nginx: RtmpPeer = await startNginxRtmp();
    try {
      const url = `rtmp://127.0.0.1:${nginx.port}/live/show`;
      // The job starts first and waits for the stream.
      const created = await api('/v1/record-jobs', { method: 'POST', json: { name: 'the show', url, format: 'mpegts', notifyUrl: notify.url, notifySecret: NOTIFY_SECRET, waitSeconds: 30 } });
      expect(created.status).toBe(201);
      const id = created.result.id;
      const encoder = publish(url, { seconds: 8 });
      // A second job on the same stream, stopped while it records: it says stopped, and its file is whole.
      const second = (await api('/v1/record-jobs', { method: 'POST', json: { name: 'short', url, format: 'flv' } })).result;
      let other = second;
      await waitFor(() => other.status === 'recording', 'the second job to record', 20_000, async () => {
        other = (await api(`/v1/record-jobs/${second.id}`)).result;
      });
      const stopped = await api<Job & { removed: boolean }>(`/v1/record-jobs/${second.id}`, { method: 'DELETE' });
      expect(stopped.result).toMatchObject({ status: 'stopped', removed: false });
      expect(stopped.result.recordings).toHaveLength(1);
      const stoppedRec = (await api<{ status: string; file: string }>(`/v1/recordings/${stopped.result.recordings[0]}`)).result;
      expect(stoppedRec.status).toBe('ready');
      expect((await decodeAll(join(daemon.dir, 'data', 'recordings', stoppedRec.file))).code).toBe(0);
      expect((await encoder.done).code).toBe(0);
      let job = created.result;
      await waitFor(() => job.status === 'completed', 'the job to complete', 20_000, async () => {
        job = (await api(`/v1/record-jobs/${id}`)).result;
      });
      expect(job.recordings).toHaveLength(1);
      const rec = (await api<{ id: string; file: string; status: string; jobId: string; flowId: null }>(`/v1/recordings/${job.recordings[0]}`)).result;
      expect(rec).toMatchObject({ status: 'ready', jobId: id, flowId: null });
      expect(rec.file).toMatch(new RegExp(`^jobs/${id}/${id}_.*\\.ts$`));
      const file = join(daemon.dir, 'data', 'recordings', rec.file);
      const streams = await probeStreams(file);
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      const { videoSpan } = await probeDuration(file);
      expect(videoSpan).toBeGreaterThan(6);
      expect(videoSpan).toBeLessThan(9);
      expect((await decodeAll(file)).code).toBe(0);
      // The job's own events reached its notifyUrl, signed, in order.
      await waitFor(() => jobEvents(notify, id).some((e) => e.type === 'record_job.status' && e.status === 'completed'), 'the completion to be notified');
      expect(jobEvents(notify, id).map((e) => (e.type === 'record_job.status' ? `${e.type}:${e.status}` : e.type))).toEqual([
        'record_job.status:recording',
        'recording.started',
        'recording.ready',
        'record_job.status:completed',
      ]);
      expect(notify.received.every((r) => r.verified)).toBe(true);
      expect((await api<{ id: string }[]>(`/v1/recordings?jobId=${id}`)).result.map((r) => r.id)).toEqual(job.recordings);
    } finally {
      await nginx.stop();
    }
  });

  it('an rtmps:// job trusts a private CA with tls.ca; without it, the failure says why (the certificate)', async () => {
    const { dir: certDir, cert, key } = await selfSignedCert('flowrelay-job-tls-');
    const origin = await startInProcess(`flows:\n${flowYaml('secure')}`, rtmpsListener({ cert, key }));
    const encoder = publish(origin.url(publishKey('secure')), { seconds: 20 });
    try {
      await waitFor(() => origin.app.registry.get('secure')!.hub.live, 'the origin to be live');
      const tlsPort = origin.app.addresses().find((a) => a.protocol === 'rtmps')!.address.port;
      const url = `rtmps://127.0.0.1:${tlsPort}/live/${playKey('secure')}`;
      const trusted = (await api('/v1/record-jobs', { method: 'POST', json: { name: 'private ca', url, format: 'flv', tls: { ca: cert } } })).result;
      const untrusted = (await api('/v1/record-jobs', { method: 'POST', json: { name: 'system cas', url, format: 'flv' } })).result;
      let a = trusted;
      let b = untrusted;
      await waitFor(() => a.status === 'recording' && b.status === 'failed', 'one job recording, the other failed', 15_000, async () => {
        a = (await api(`/v1/record-jobs/${trusted.id}`)).result;
        b = (await api(`/v1/record-jobs/${untrusted.id}`)).result;
      });
      expect(b.error).toMatch(/^no stream arrived within 2 s; last error: .*self-signed certificate/);
      await api(`/v1/record-jobs/${trusted.id}`, { method: 'DELETE' });
    } finally {
      encoder.proc.kill('SIGKILL');
      await origin.close();
      await rm(certDir, { recursive: true, force: true });
    }
  });

  it('DELETE stops an active job, then removes it; bad requests and too many jobs are refused', async () => {
    const url = `rtmp://127.0.0.1:${await deadPort()}/live/later`;
    const jobs: string[] = [];
    for (let i = 0; i < 4; i++) {
      const created = await api('/v1/record-jobs', { method: 'POST', json: { name: `waiting ${i}`, url, waitSeconds: 600, ...(i === 0 && { notifyUrl: notify.url }) } });
      expect(created.status).toBe(201);
      jobs.push(created.result.id);
    }
    // With notifyUrl but no notifySecret, one is generated and shown (to write tokens) once created.
    expect((await api(`/v1/record-jobs/${jobs[0]}`)).result.notifySecret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const over = await api('/v1/record-jobs', { method: 'POST', json: { name: 'one too many', url } });
    expect(over.status).toBe(429);
    expect(over.errors[0]).toMatchObject({ code: 'limit_exceeded', message: expect.stringMatching(/recordJobs\.maxActive/) });

    const stopped = await api<Job & { removed: boolean }>(`/v1/record-jobs/${jobs[0]}`, { method: 'DELETE' });
    expect(stopped.result).toMatchObject({ status: 'stopped', removed: false });
    const removed = await api<Job & { removed: boolean }>(`/v1/record-jobs/${jobs[0]}`, { method: 'DELETE' });
    expect(removed.result).toMatchObject({ removed: true });
    expect((await api(`/v1/record-jobs/${jobs[0]}`)).status).toBe(404);
    for (const id of jobs.slice(1)) expect((await api(`/v1/record-jobs/${id}`, { method: 'DELETE' })).result.status).toBe('stopped');

    const bad = await api('/v1/record-jobs', { method: 'POST', json: { name: 'x', url: 'http://example.com/live.m3u8', format: 'avi' } });
    expect(bad.status).toBe(400);
    expect(bad.errors.map((e) => e.message)).toEqual([expect.stringMatching(/^url: .*rtmp:\/\//), expect.stringMatching(/^format: /)]);
    // Unknown keys are each named, as in the config file's errors.
    const unknown = await api('/v1/record-jobs', { method: 'POST', json: { name: 'x', url: 'rtmp://127.0.0.1:1/live/x', formt: 'mp4', durationSec: 5 } });
    expect(unknown.status).toBe(400);
    expect(unknown.errors.map((e) => e.message)).toEqual(expect.arrayContaining(['formt: unknown key "formt"', 'durationSec: unknown key "durationSec"']));
    const list = await api<Job[]>('/v1/record-jobs');
    expect(list.result.map((j) => j.id)).not.toContain(jobs[0]);
  });
});
