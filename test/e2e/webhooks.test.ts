import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhooks } from '../../src/telemetry/webhooks.js';
import { deadPort, webhookReceiver } from '../helpers/webhook-receiver.js';
import { flowYaml, outputTo, publishKey, reconfigure, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { delay, publish, waitFor } from '../helpers/ffmpeg.js';

const SECRET = 'webhook-secret-for-tests-0123456789';

describe('webhooks', () => {
  let daemon: InProcessDaemon;
  let live: Awaited<ReturnType<typeof webhookReceiver>>;
  let dead: string;
  let liveUrl: string;

  beforeAll(async () => {
    live = await webhookReceiver(SECRET, '/services/T000/SECRETPATHTOKEN?token=q');
    // With user info: sent as basic authentication.
    liveUrl = live.url.replace('http://', 'http://hook%20user:pa55word@');
    dead = `http://127.0.0.1:${await deadPort()}/gone`;
    daemon = await startInProcess(`api: { listen: "127.0.0.1:0" }
webhooks:
  - { url: "${dead}", secret: "${SECRET}", maxAttempts: 2, retryDelayMs: 20, maxQueue: 3, timeoutMs: 500 }
  - { url: "${liveUrl}", secret: "${SECRET}", events: ["*"], retryDelayMs: 20 }
flows:
${flowYaml('sink')}`);
    // The output needs the daemon's port: add the source flow once it is known.
    await reconfigure(daemon, `${flowYaml('sink')}${flowYaml('hooks', { outputs: [outputTo('o', daemon.port, 'sink')] })}`);
  });
  afterAll(async () => {
    await daemon?.close();
    await new Promise((r) => live?.server.close(r));
  });

  it('a receiver gets signed events in order; a dead receiver delays nothing and its failures are counted', async () => {
    const pub = publish(daemon.url(publishKey('hooks')), { seconds: 3 });
    await pub.done;
    const types = () => live.received.map((r) => `${r.delivery.type} ${('flowId' in r.delivery.data ? r.delivery.data.flowId : '')}`);
    // (The output stays connected to sink for its idleDisconnectMs after the publisher left.)
    await waitFor(() => types().includes('input.disconnected hooks'), 'the disconnect event', 15_000).catch((err: Error) => {
      throw new Error(`${err.message}; received: ${types().join(', ')}`);
    });

    expect(live.received.every((r) => r.verified)).toBe(true);
    expect(live.received.every((r) => r.headers.authorization === `Basic ${Buffer.from('hook user:pa55word').toString('base64')}`)).toBe(true);
    expect(live.received.every((r) => r.headers['x-flowrelay-event'] === r.delivery.type && r.headers['content-type'] === 'application/json')).toBe(true);
    const seqs = live.received.map((r) => r.delivery.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    const order = types();
    expect(order.slice(0, 2)).toEqual(['flow.created sink', 'flow.created hooks']);
    expect(order.indexOf('input.connected hooks')).toBeGreaterThan(0);
    expect(order.indexOf('input.connected hooks')).toBeLessThan(order.indexOf('input.disconnected hooks'));
    const outputEvents = live.received.filter((r) => r.delivery.type === 'output.status').map((r) => r.delivery.data);
    expect(outputEvents).toContainEqual(expect.objectContaining({ flowId: 'hooks', output: 'o', status: 'connected', previous: 'new_configuration_accepted' }));
    expect(order).toContain('input.connected sink');

    // The dead receiver: every event failed or was dropped, and the metrics say so.
    await delay(300);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.app.apiPort()}/metrics`)).text();
    // Receivers by their place in the list, shown by scheme and host: /metrics needs no token.
    const value = (name: string, receiver: number, url: string) =>
      Number(new RegExp(`^${name}\\{receiver="${receiver}",url="${url.replace(/[?.]/g, '\\$&')}/<path redacted>"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    const origin = (url: string) => new URL(url).origin;
    expect(value('flowrelay_webhook_failed_total', 0, origin(dead)) + value('flowrelay_webhook_dropped_total', 0, origin(dead))).toBeGreaterThan(0);
    expect(value('flowrelay_webhook_delivered_total', 0, origin(dead))).toBe(0);
    expect(value('flowrelay_webhook_delivered_total', 1, origin(live.url))).toBe(live.received.length);
    for (const secret of ['pa55word', 'hook%20user', 'SECRETPATHTOKEN', 'token=q', '/gone']) expect(metrics).not.toContain(secret);
  });
});

describe('webhook queue', () => {
  it('is bounded per receiver: a receiver that never answers keeps maxQueue events, drops the oldest and counts them', async () => {
    const sockets: import('node:net').Socket[] = [];
    const hung = createTcpServer((socket) => void sockets.push(socket)); // accepts, never answers
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/`;
    const hooks = new Webhooks(pino({ level: 'silent' }));
    hooks.configure([{ url, secret: SECRET, events: ['flow.created'], maxQueue: 3, timeoutMs: 60_000, maxAttempts: 1, retryDelayMs: 10 }]);
    try {
      const started = Date.now();
      for (let i = 0; i < 10; i++) hooks.emit({ type: 'flow.created', flowId: `f${i}` });
      hooks.emit({ type: 'flow.deleted', flowId: 'not-wanted' });
      expect(Date.now() - started).toBeLessThan(1_000); // emit never waits on the receiver
      await delay(100);
      // One in flight, three waiting, six dropped; the unwanted type was never queued.
      expect(hooks.stats()).toEqual([{ url, queued: 3, counters: { delivered: 0, failed: 0, dropped: 6, retries: 0 } }]);
    } finally {
      hooks.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => hung.close(r));
    }
  });

  it('a redirect is a failed delivery (not followed), an endless answer body is not read, and a refused connection names its reason; logs hide the URL\'s path', async () => {
    const { createServer: createHttpServer } = await import('node:http');
    const seen: string[] = [];
    const server = createHttpServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url?.startsWith('/redirect')) {
        res.writeHead(307, { location: '/elsewhere' }).end();
        return;
      }
      // 200, then a body that never ends: reading it whole would hold the daemon's memory.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024);
      const pump = setInterval(() => res.write(chunk), 5);
      res.on('close', () => clearInterval(pump));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const refused = `http://127.0.0.1:${await deadPort()}/services/T0/B0/SECRETPATH`;
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    const hooks = new Webhooks(logger);
    const settings = { secret: SECRET, events: ['flow.created'] as ['flow.created'], maxQueue: 10, timeoutMs: 5_000, maxAttempts: 1, retryDelayMs: 10 };
    hooks.configure([
      { ...settings, url: `${base}/redirect` },
      { ...settings, url: `${base}/endless` },
      { ...settings, url: refused },
    ]);
    try {
      hooks.emit({ type: 'flow.created', flowId: 'f' });
      await waitFor(() => hooks.stats().every((h) => h.counters.delivered + h.counters.failed === 1), 'every receiver to settle', 4_000);
      expect(hooks.stats().map((h) => h.counters)).toEqual([
        expect.objectContaining({ delivered: 0, failed: 1 }),
        expect.objectContaining({ delivered: 1, failed: 0 }),
        expect.objectContaining({ delivered: 0, failed: 1 }),
      ]);
      expect(seen.sort()).toEqual(['POST /endless', 'POST /redirect']);
      const failures = logs.filter((l) => l.msg === 'webhook delivery failed; giving up on this event');
      expect(failures).toHaveLength(2);
      expect(failures.map((l) => [l.url, l.err])).toEqual(expect.arrayContaining([
        [`${base}/<path redacted>`, 'HTTP 307 (a redirect, not followed: configure the receiver\'s final URL)'],
        [`${refused.slice(0, refused.indexOf('/services'))}/<path redacted>`, 'fetch failed: ECONNREFUSED'],
      ]));
      expect(JSON.stringify(logs)).not.toContain('SECRETPATH');
    } finally {
      hooks.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('a reload that changes a receiver\'s settings keeps its queue; the new settings apply', async () => {
    const sockets: import('node:net').Socket[] = [];
    const hung = createTcpServer((socket) => void sockets.push(socket));
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/`;
    const hooks = new Webhooks(pino({ level: 'silent' }));
    const settings = { url, secret: SECRET, events: ['*'] as const, maxQueue: 10, timeoutMs: 60_000, maxAttempts: 1, retryDelayMs: 10 };
    hooks.configure([{ ...settings, events: ['*'] }]);
    try {
      for (let i = 0; i < 5; i++) hooks.emit({ type: 'flow.created', flowId: `f${i}` });
      await delay(50);
      expect(hooks.stats()[0]).toMatchObject({ queued: 4 });
      hooks.configure([{ ...settings, events: ['*'], timeoutMs: 30_000, maxQueue: 2 }]);
      // Same receiver, same queue; the smaller maxQueue applies to what comes next.
      expect(hooks.stats()).toEqual([{ url, queued: 4, counters: { delivered: 0, failed: 0, dropped: 0, retries: 0 } }]);
      hooks.emit({ type: 'flow.created', flowId: 'f5' });
      expect(hooks.stats()[0]).toMatchObject({ queued: 4, counters: { dropped: 1 } });
    } finally {
      hooks.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => hung.close(r));
    }
  });

  it('an event sent to the webhooks and to a task\'s callback is one delivery: the same id and seq, and seq rises by one per event', async () => {
    const receiver = await webhookReceiver(SECRET);
    const callback = await webhookReceiver(SECRET, '/callback');
    const hooks = new Webhooks(pino({ level: 'silent' }));
    hooks.configure([{ url: receiver.url, secret: SECRET, events: ['*'], maxQueue: 10, timeoutMs: 5_000, maxAttempts: 3, retryDelayMs: 10 }]);
    const notifier = hooks.notifier(callback.url, SECRET);
    try {
      for (let i = 0; i < 3; i++) {
        const event = { type: 'task.status', taskId: 't', status: 'running', previous: 'scheduled', error: null, attempt: i } as const;
        hooks.emit(event);
        notifier.send(event);
      }
      await waitFor(() => receiver.received.length === 3 && callback.received.length === 3, 'both receivers got three events');
      expect(receiver.received.map((r) => r.delivery.seq)).toEqual([1, 2, 3]);
      expect(callback.received.map((r) => [r.delivery.seq, r.delivery.id])).toEqual(receiver.received.map((r) => [r.delivery.seq, r.delivery.id]));
    } finally {
      notifier.close();
      hooks.close();
      await receiver.close();
      await callback.close();
    }
  });
});
