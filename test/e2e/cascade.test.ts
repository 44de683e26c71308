import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfigText } from '../../src/config/load.js';
import { flowYaml, playKey, publishKey, startInProcess, tempConfig, type InProcessDaemon } from '../helpers/daemon.js';
import { play, probeDuration, probeStreams, publish, videoFrames, waitFor, type Proc } from '../helpers/ffmpeg.js';
import { freePort } from '../helpers/peers.js';
import { rtmpsListener, selfSignedCert } from '../helpers/tls-cert.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** A flow whose input reads another flow (of this daemon, or of `node`). */
function cascadeFlow(id: string, input: Record<string, unknown>): string {
  return `  - id: ${id}\n    inputs: [${JSON.stringify({ name: 'up', type: 'flow', ...input })}]\n    playback: { key: "${playKey(id)}" }\n`;
}

/** Plays `url` for `seconds` into a file and checks what came out. */
async function playable(url: string, file: string, seconds: number): Promise<void> {
  const result = await play(url, file, ['-t', String(seconds)]).done;
  expect(result.code, result.stderr).toBe(0);
  const streams = await probeStreams(file);
  expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
  expect(videoFrames(streams)).toBeGreaterThan(seconds * 25 * 0.6);
  expect((await probeDuration(file)).videoSpan).toBeGreaterThan(seconds * 0.6);
}

describe('cascading flows', () => {
  const procs: Proc[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const p of procs) p.proc.kill('SIGKILL');
    for (const c of closers.reverse()) await c().catch(() => undefined);
  });

  it('a flow reads another flow of the same daemon in-process', async () => {
    const daemon: InProcessDaemon = await startInProcess(`flows:\n${flowYaml('studio')}${cascadeFlow('mirror', { flow: 'studio' })}${cascadeFlow('mirror2', { flow: 'mirror' })}`);
    closers.push(() => daemon.close());
    procs.push(publish(daemon.url(publishKey('studio')), { seconds: 20 }));
    const mirror2 = daemon.app.registry.get('mirror2')!;
    await waitFor(() => mirror2.hub.live, 'the two-hop cascade to go live', 15_000);
    await playable(daemon.url(playKey('mirror2')), join(daemon.dir, 'mirror2.flv'), 4);
    // The very same payload Buffers reached the last flow: nothing was copied on the way.
    expect(mirror2.hub.counters.bytesIn).toBeGreaterThan(0);
    const report = mirror2.pullInputs.get('up')!.report();
    expect(report).toMatchObject({ status: 'connected', target: 'flow mirror' });
    // The input counts frames as the hub does: the replayed codec headers are no frames.
    expect(report.frames).toBe(mirror2.hub.counters.videoFrames + mirror2.hub.counters.audioFrames);
  });

  it('refuses a config whose cascades form a loop, naming it', () => {
    const text = `flows:\n${cascadeFlow('a', { flow: 'c' })}${cascadeFlow('b', { flow: 'a' })}${cascadeFlow('c', { flow: 'b' })}${cascadeFlow('self', { flow: 'self' })}`;
    const result = parseConfigText(text, 'loop.yaml', {});
    expect(result.ok).toBe(false);
    const messages = !result.ok ? result.issues.map((i) => `${i.line} ${i.path}: ${i.message}`) : [];
    expect(messages).toEqual([
      expect.stringMatching(/^\d+ flows\[\d\]\.inputs\[0\]\.flow: cascade loop: (a → c → b → a|b → a → c → b|c → b → a → c)/),
      expect.stringMatching(/flows\[3\]\.inputs\[0\]\.flow: cascade loop: self → self/),
    ]);
    const missing = parseConfigText(`flows:\n${cascadeFlow('a', { flow: 'nowhere' })}${cascadeFlow('b', { flow: 'x', node: 'nobody', key: 'k0123456789abcdef' })}`, 'm.yaml', {});
    expect(!missing.ok && missing.issues.map((i) => i.message)).toEqual([
      'no flow with id "nowhere" in this config (for another node\'s flow, set node)',
      'no peer named "nobody" in peers',
    ]);
  });

  it('an edge pulls the origin flow\'s srt-listener output over SRT', async () => {
    const srtPort = await freePort();
    const origin = await startInProcess(`flows:\n${flowYaml('feed', { outputs: [{ name: 'edges', type: 'srt-listener', listen: `127.0.0.1:${srtPort}`, passphrase: 'cascade-passphrase' }] })}`);
    closers.push(() => origin.close());
    const edge = await startInProcess(
      `peers: [{ name: origin, host: 127.0.0.1, protocol: srt, latencyMs: 400 }]\nflows:\n${cascadeFlow('feed', { flow: 'feed', node: 'origin', key: playKey('feed'), srtPort, passphrase: 'cascade-passphrase', reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } })}`,
    );
    closers.push(() => edge.close());
    procs.push(publish(origin.url(publishKey('feed')), { seconds: 30 }));
    await waitFor(() => edge.app.registry.get('feed')!.hub.live, 'the edge to pull over SRT', 20_000);
    // The peer's latency is the one the link runs with (the larger of the two sides').
    expect(edge.app.registry.get('feed')!.pullInputs.get('up')!.report().transport).toMatchObject({ latencyMs: 400 });
    await playable(edge.url(playKey('feed')), join(edge.dir, 'srt-edge.flv'), 4);
  });

  it('an edge pulls an origin over RTMPS whose certificate a private CA signed: peers[].tls.ca trusts it, tls: true does not', async () => {
    const { dir: certDir, cert, key } = await selfSignedCert('flowrelay-cascade-tls-');
    const origin = await startInProcess(`flows:\n${flowYaml('secure')}`, rtmpsListener({ cert, key }));
    closers.push(() => origin.close());
    const tlsPort = origin.app.addresses().find((a) => a.protocol === 'rtmps')!.address.port;
    const reconnect = { initialDelayMs: 200, maxDelayMs: 1000 };
    const edge = await startInProcess(
      `peers:\n  - { name: trusted, host: 127.0.0.1, rtmpPort: ${tlsPort}, tls: { ca: ${JSON.stringify(cert)} } }\n  - { name: untrusted, host: 127.0.0.1, rtmpPort: ${tlsPort}, tls: true }\nflows:\n` +
        cascadeFlow('via-ca', { flow: 'secure', node: 'trusted', key: playKey('secure'), reconnect }) +
        cascadeFlow('via-system', { flow: 'secure', node: 'untrusted', key: playKey('secure'), reconnect }),
    );
    closers.push(() => edge.close());
    procs.push(publish(origin.url(publishKey('secure')), { seconds: 30 }));
    await waitFor(() => edge.app.registry.get('via-ca')!.hub.live, 'the edge to pull over RTMPS', 20_000);
    await playable(edge.url(playKey('via-ca')), join(edge.dir, 'rtmps-edge.flv'), 3);
    const untrusted = edge.app.registry.get('via-system')!;
    expect(untrusted.hub.live).toBe(false);
    expect(untrusted.pullInputs.get('up')!.report().lastError).toMatch(/self-signed certificate/);
    // Trusting the CA in the peer's entry alone: the reload restarts the input that uses the peer.
    const text = await readFile(edge.configFile, 'utf8');
    await writeFile(edge.configFile, text.replace('tls: true', `tls: { ca: ${JSON.stringify(cert)} }`));
    expect(await edge.app.reload()).toMatchObject({ ok: true, changes: { inputs: { 'via-system': { restarted: ['up'] } } } });
    await waitFor(() => untrusted.hub.live, 'the edge to pull over RTMPS once its peer trusts the CA', 20_000);
    await rm(certDir, { recursive: true, force: true });
  });

  it('an origin and two edges on loopback: players on both edges play; the edges recover by themselves when the origin restarts', async () => {
    const originPort = await freePort();
    const origin = await tempConfig(`rtmp: { listen: "127.0.0.1:${originPort}" }\nflows:\n${flowYaml('show')}`);
    closers.push(origin.cleanup);
    const startOrigin = async () => {
      const app = await App.load({ configFile: origin.file, logger, announce: () => undefined });
      await app.start();
      return app;
    };
    let originApp = await startOrigin();
    closers.push(() => originApp.close('test done'));
    const edge = (name: string) =>
      startInProcess(
        `peers: [{ name: origin, host: 127.0.0.1, rtmpPort: ${originPort} }]\nflows:\n${cascadeFlow('show', { flow: 'show', node: 'origin', key: playKey('show'), reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } })}`,
      ).then((d) => {
        closers.push(() => d.close());
        return { name, d };
      });
    const edges = await Promise.all([edge('edge-1'), edge('edge-2')]);
    const encoder = () => {
      const p = publish(`rtmp://127.0.0.1:${originPort}/live/${publishKey('show')}`, { seconds: 60 });
      procs.push(p);
      return p;
    };
    let enc = encoder();
    for (const { d } of edges) await waitFor(() => d.app.registry.get('show')!.hub.live, 'the edges to pull the origin', 20_000);
    await Promise.all(edges.map(({ name, d }) => playable(d.url(playKey('show')), join(d.dir, `${name}-1.flv`), 4)));

    // The origin goes away (and its encoder with it)...
    await originApp.close('restart');
    enc.proc.kill('SIGKILL');
    for (const { d } of edges) await waitFor(() => !d.app.registry.get('show')!.hub.live, 'the edges to see the origin gone', 20_000);
    // ...and comes back on the same port; the encoder reconnects; nobody touches the edges.
    originApp = await startOrigin();
    enc = encoder();
    for (const { d } of edges) await waitFor(() => d.app.registry.get('show')!.hub.live, 'the edges to recover', 30_000);
    await Promise.all(edges.map(({ name, d }) => playable(d.url(playKey('show')), join(d.dir, `${name}-2.flv`), 4)));
    for (const { d } of edges) expect(d.app.registry.get('show')!.pullInputs.get('up')!.report().reconnects).toBeGreaterThanOrEqual(1);
  });
});
