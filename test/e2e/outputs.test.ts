import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { ConnectionReport } from '../../src/core/flow-parts.js';
import { flowYaml, outputTo, playKey, publishKey, reconfigure, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { play, probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';
import { blackHole, tcpStatesTo, throttlingProxy } from '../helpers/tcp-tools.js';

const execFileAsync = promisify(execFile);

function report(daemon: InProcessDaemon, flowId: string, output: string): ConnectionReport {
  return daemon.app.registry.get(flowId)!.outputs.get(output)!.output.report();
}

/** Fast retries so failure paths show within a test's time. */
const FAST_RETRY = { initialDelayMs: 100, maxDelayMs: 1000, failAfter: 2 };

describe('rtmp outputs', () => {
  it('rtmps:// works with verification against a private CA and fails clearly when the CA is not trusted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-out-tls-'));
    const cert = join(dir, 'tls.crt');
    const key = join(dir, 'tls.key');
    await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=flowrelay test CA', '-addext', 'subjectAltName=IP:127.0.0.1']);
    // The daemon is its own TLS destination: its RTMPS listener serves flow "dest".
    const tlsPort = 0;
    const daemon = await startInProcess(
      `flows:\n${flowYaml('dest')}${flowYaml('spare')}`,
      `, tls: { listen: "127.0.0.1:${tlsPort}", cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }`,
    );
    try {
      const port = daemon.app.addresses().find((a) => a.protocol === 'rtmps')!.address.port;
      const url = `rtmps://127.0.0.1:${port}/live`;
      await reconfigure(daemon, `${flowYaml('src', {
        outputs: [
          { name: 'trusted', type: 'rtmp', url, streamKey: publishKey('dest'), tls: { ca: cert }, idleDisconnectMs: 1000 },
          { name: 'untrusted', type: 'rtmp', url, streamKey: publishKey('spare'), reconnect: FAST_RETRY },
        ],
      })}${flowYaml('dest')}${flowYaml('spare')}`);

      const out = join(dir, 'dest.flv');
      const player = play(daemon.url(playKey('dest')), out);
      const publisher = publish(daemon.url(publishKey('src')), { seconds: 4 });
      await waitFor(() => daemon.app.registry.get('dest')!.hub.counters.videoFrames > 25, 'media through the verified TLS output');
      expect(report(daemon, 'src', 'trusted').status).toBe('connected');
      await waitFor(() => report(daemon, 'src', 'untrusted').status === 'failed_to_connect', 'untrusted output fails');
      const untrusted = report(daemon, 'src', 'untrusted');
      expect(untrusted.lastError).toMatch(/certificate/i);
      const pub = await publisher.done;
      expect(pub.code, pub.stderr).toBe(0);
      // The output disconnects a second after its input ended; the player sees the end.
      expect((await player.done).code).toBe(0);
      const streams = await probeStreams(out);
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(videoFrames(streams)).toBeGreaterThan(50);
      expect(report(daemon, 'src', 'trusted').status).toBe('idle');

      expect(daemon.app.registry.get('spare')!.hub.counters.messagesIn).toBe(0);
    } finally {
      await daemon.close();
    }
  });

  it('a destination that accepts TCP and never answers: handshake timeouts, failed_to_connect, no leaked sockets', async () => {
    const hole = await blackHole();
    const daemon = await startInProcess(
      `flows:\n${flowYaml('src', {
        outputs: [{ name: 'stuck', type: 'rtmp', url: `rtmp://127.0.0.1:${hole.port}/live`, streamKey: 'x', handshakeTimeoutMs: 1000, connectTimeoutMs: 1000, reconnect: FAST_RETRY }],
      })}`,
    );
    try {
      const publisher = publish(daemon.url(publishKey('src')), { seconds: 8 });
      await waitFor(() => hole.accepted() >= 4, 'four attempts', 20_000);
      const r = report(daemon, 'src', 'stuck');
      expect(r.status).toBe('failed_to_connect');
      expect(r.lastError).toMatch(/handshake/i);
      expect(r.attempts).toBeGreaterThanOrEqual(4);
      // Every attempt but the one in flight was closed by us.
      expect(hole.open()).toBeLessThanOrEqual(1);
      expect((await publisher.done).code).toBe(0);
    } finally {
      await daemon.close();
    }
    await waitFor(() => hole.open() === 0, 'all sockets closed after shutdown');
    await hole.close();
  });

  it('a destination that reads very slowly: bounded queue, drops counted, other outputs and players keep pace', async () => {
    const daemon = await startInProcess(`flows:\n${flowYaml('slow')}${flowYaml('fast')}`);
    const proxy = await throttlingProxy(daemon.port, 256 * 1024, 50_000);
    try {
      await reconfigure(daemon, `${flowYaml('src', {
        outputs: [
          outputTo('thin', proxy.port, 'slow', { maxBacklog: '256Ki' }),
          outputTo('wide', daemon.port, 'fast'),
        ],
      })}${flowYaml('slow')}${flowYaml('fast')}`);
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-out-slow-'));
      const srcPlayer = play(daemon.url(playKey('src')), join(dir, 'src.flv'));
      const fastPlayer = play(daemon.url(playKey('fast')), join(dir, 'fast.flv'));
      await waitFor(() => daemon.app.registry.get('src')!.hub.readerCount >= 3, 'players and outputs attached');
      const seconds = 8;
      const pub = await publish(daemon.url(publishKey('src')), { seconds, width: 1280, height: 720, lossless: true }).done;
      expect(pub.code, pub.stderr).toBe(0);

      const thin = report(daemon, 'src', 'thin');
      expect(thin.framesDropped).toBeGreaterThan(0);
      expect(thin.skips).toBeGreaterThan(0);
      const wide = report(daemon, 'src', 'wide');
      expect(wide.framesDropped).toBe(0);
      for (const [name, proc] of [['src.flv', srcPlayer], ['fast.flv', fastPlayer]] as const) {
        expect((await proc.done).code).toBe(0);
        expect(videoFrames(await probeStreams(join(dir, name)))).toBeGreaterThanOrEqual(seconds * 25 - 3);
      }
    } finally {
      await daemon.close();
      await proxy.close();
    }
  });

  it('a destination that stops reading while its connection stays up is reconnected, with the reason in lastError', async () => {
    await withStalledOutput(FAST_RETRY, async (daemon) => {
      await waitFor(() => report(daemon, 'src', 'stuck').attempts >= 2, 'a new connection attempt', 10_000);
      expect(report(daemon, 'src', 'stuck').skips).toBeGreaterThan(0);
    });
  });

  it('a stalled destination\'s connection is reset, not closed behind its unread backlog', async () => {
    // The next attempt waits 10 s, so the stalled connection is the only one to the proxy meanwhile.
    await withStalledOutput({ initialDelayMs: 10_000, maxDelayMs: 10_000, failAfter: 2 }, async (_daemon, proxyPort) => {
      await waitFor(() => !tcpStatesTo(proxyPort).includes('ESTABLISHED'), 'the stalled connection closed', 5_000);
      // A graceful close would leave the socket in FIN_WAIT1 holding megabytes the
      // destination does not read, and the destination holding the stream key, for minutes.
      expect(tcpStatesTo(proxyPort)).toEqual([]);
    });
  });

  it('a destination that drops an output while its input is away leaves it idle, without a reconnecting status or warning', async () => {
    const logs: Record<string, unknown>[] = [];
    // The destination (this daemon's sink flow) drops a publisher after 2 s without media.
    const daemon = await startInProcess(`flows:\n${flowYaml('sink')}`, ', idleTimeoutMs: 2000', logs);
    try {
      await reconfigure(daemon, `${flowYaml('src', { outputs: [outputTo('out', daemon.port, 'sink', { idleDisconnectMs: 60_000, reconnect: FAST_RETRY })] })}${flowYaml('sink')}`);
      const statuses: string[] = [];
      daemon.app.registry.get('src')!.outputs.get('out')!.output.onStatusChange?.((status) => void statuses.push(status));
      const publisher = publish(daemon.url(publishKey('src')), { seconds: 3 });
      await waitFor(() => report(daemon, 'src', 'out').status === 'connected', 'the output connected', 15_000);
      await publisher.done;
      await waitFor(() => report(daemon, 'src', 'out').status === 'idle', 'the output idle once the destination dropped it', 15_000);
      expect(statuses).not.toContain('reconnecting');
      expect(logs.filter((l) => l.msg === 'connection lost; reconnecting')).toEqual([]);
      expect(report(daemon, 'src', 'out').lastError).toMatch(/.+/);
    } finally {
      await daemon.close();
    }
  });

  it('an output\'s bitrate is measured from its connection on, and is 0 once the destination is gone', async () => {
    const daemon = await startInProcess(`flows:\n${flowYaml('sink')}`);
    try {
      await reconfigure(daemon, `${flowYaml('src', { outputs: [outputTo('out', daemon.port, 'sink', { reconnect: FAST_RETRY })] })}${flowYaml('sink')}`);
      const publisher = publish(daemon.url(publishKey('src')), { seconds: 30 });
      try {
        await waitFor(() => report(daemon, 'src', 'out').bitrate > 0, 'the output\'s rate measured', 15_000);
        // The sink flow is removed: the destination refuses; nothing is sent from then on.
        await reconfigure(daemon, flowYaml('src', { outputs: [outputTo('out', daemon.port, 'sink', { reconnect: FAST_RETRY })] }));
        await waitFor(() => !['connected', 'reconnected'].includes(report(daemon, 'src', 'out').status), 'the output to lose its destination');
        expect(report(daemon, 'src', 'out').bitrate).toBe(0);
      } finally {
        publisher.proc.kill('SIGKILL');
      }
    } finally {
      await daemon.close();
    }
  });

  it('outputs added, changed and removed on reload take effect alone; a removed one disconnects within a second', async () => {
    const sinks = ['keep', 'drop', 'move', 'moved', 'new'];
    const sinkFlows = sinks.map((id) => flowYaml(id)).join('');
    const daemon = await startInProcess(`flows:\n${sinkFlows}`);
    try {
      await reconfigure(daemon, `${flowYaml('src', { outputs: [outputTo('keep', daemon.port, 'keep'), outputTo('drop', daemon.port, 'drop'), outputTo('move', daemon.port, 'move')] })}${sinkFlows}`);
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-out-reload-'));
      const player = play(daemon.url(playKey('src')), join(dir, 'src.flv'));
      const keepPlayer = play(daemon.url(playKey('keep')), join(dir, 'keep.flv'));
      const src = daemon.app.registry.get('src')!;
      await waitFor(() => src.hub.readerCount === 4, 'player and outputs attached');
      const seconds = 8;
      const publisher = publish(daemon.url(publishKey('src')), { seconds });
      const hub = (id: string) => daemon.app.registry.get(id)!.hub;
      await waitFor(() => hub('drop').live && hub('move').live && hub('keep').live, 'outputs delivering');
      const keepOutput = src.outputs.get('keep')!.output;

      await reconfigure(daemon, `${flowYaml('src', { outputs: [outputTo('keep', daemon.port, 'keep'), outputTo('move', daemon.port, 'moved'), outputTo('new', daemon.port, 'new')] })}${sinkFlows}`);
      const removedAt = Date.now();
      await waitFor(() => !hub('drop').live, 'removed output disconnected', 1_000);
      expect(Date.now() - removedAt).toBeLessThan(1_000);
      await waitFor(() => hub('moved').live && hub('new').live, 'changed and added outputs delivering');
      expect(hub('move').live).toBe(false);
      // Same input, same untouched output object, and it kept its one connection.
      expect(daemon.app.registry.get('src')).toBe(src);
      expect(src.outputs.get('keep')!.output).toBe(keepOutput);
      expect(keepOutput.report().reconnects).toBe(0);
      expect(src.inputs.get('main')!.publishes).toBe(1);

      expect((await publisher.done).code).toBe(0);
      expect((await player.done).code).toBe(0);
      expect(videoFrames(await probeStreams(join(dir, 'src.flv')))).toBeGreaterThanOrEqual(seconds * 25 - 2);
      keepPlayer.proc.kill('SIGINT');
      await keepPlayer.done;
      expect(videoFrames(await probeStreams(join(dir, 'keep.flv')))).toBeGreaterThanOrEqual(seconds * 25 - 30);
    } finally {
      await daemon.close();
    }
  });

  it('50 outputs on one flow to local sinks all receive the stream', async () => {
    const sinks = Array.from({ length: 50 }, (_, i) => `sink-${i}`);
    const daemon = await startInProcess(`flows:\n${sinks.map((id) => flowYaml(id)).join('')}`);
    try {
      await reconfigure(
        daemon,
        `${flowYaml('src', { outputs: sinks.map((id) => outputTo(id, daemon.port, id)) })}${sinks.map((id) => flowYaml(id)).join('')}`,
      );
      const publisher = publish(daemon.url(publishKey('src')), { seconds: 5 });
      await waitFor(() => sinks.every((id) => daemon.app.registry.get(id)!.hub.counters.videoFrames >= 50), 'every sink receives video', 30_000);
      expect((await publisher.done).code).toBe(0);
      for (const id of sinks) {
        expect(report(daemon, 'src', id).status).toBe('connected');
        expect(report(daemon, 'src', id).bytes).toBeGreaterThan(100_000);
      }
    } finally {
      await daemon.close();
    }
  });
});

/**
 * Flow src's output `stuck` publishes to flow sink through a proxy that forwards 256 KiB,
 * then next to nothing: a hung ingest behind a live TCP connection. Runs `then` once the
 * output has noticed the stall (STALL_MS, 15 s, after it stopped draining).
 */
async function withStalledOutput(reconnect: object, then: (daemon: InProcessDaemon, proxyPort: number) => Promise<void>): Promise<void> {
  // The sink flow must not time its publisher out first (rtmp.idleTimeoutMs): the hung
  // ingest keeps its connection open and says nothing.
  const daemon = await startInProcess(`flows:\n${flowYaml('sink')}`, ', idleTimeoutMs: 120000');
  const proxy = await throttlingProxy(daemon.port, 256 * 1024, 1);
  try {
    await reconfigure(daemon, `${flowYaml('src', { outputs: [outputTo('stuck', proxy.port, 'sink', { maxBacklog: '64Ki', reconnect })] })}${flowYaml('sink')}`);
    const publisher = publish(daemon.url(publishKey('src')), { seconds: 40, lossless: true });
    try {
      await waitFor(() => report(daemon, 'src', 'stuck').status === 'connected', 'the output connected', 15_000);
      await waitFor(() => (report(daemon, 'src', 'stuck').lastError ?? '').includes('stopped reading'), 'the output to notice the stall', 30_000);
      await then(daemon, proxy.port);
    } finally {
      publisher.proc.kill('SIGKILL');
    }
  } finally {
    await daemon.close();
    await proxy.close();
  }
}
