import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, flowYaml, playKey, publishKey, spawnDaemon, startInProcess, tempConfig, type SpawnedDaemon } from '../helpers/daemon.js';
import { delay, play, probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';
import { RawRtmp } from '../helpers/raw-rtmp.js';

const execFileAsync = promisify(execFile);

describe('publisher loss', () => {
  it('a publisher killed with SIGKILL: players see the end, and the same key publishes again at once', async () => {
    const daemon = await startInProcess(`flows:\n${flowYaml('cam')}`);
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-kill-'));
      const flow = daemon.app.registry.get('cam')!;
      const player = play(daemon.url(playKey('cam')), join(dir, 'before.flv'));
      await waitFor(() => flow.hub.readerCount === 1, 'player attached');
      const first = publish(daemon.url(publishKey('cam')), { seconds: 30 });
      await waitFor(() => flow.hub.live, 'first publisher live');
      await delay(2_000);
      first.proc.kill('SIGKILL');

      // The player ends by itself (unpublish notification), with what it got so far.
      const played = await player.done;
      expect(played.code, played.stderr).toBe(0);
      expect(videoFrames(await probeStreams(join(dir, 'before.flv')))).toBeGreaterThan(10);
      await waitFor(() => !flow.hub.live, 'stale publisher released');
      expect(flow.inputs.get('main')?.status).toBe('client_disconnect');

      const second = await publish(daemon.url(publishKey('cam')), { seconds: 2 }).done;
      expect(second.code, second.stderr).toBe(0);
      expect(flow.inputs.get('main')?.status).toBe('client_disconnect');
      expect(flow.inputs.get('main')?.publishes).toBe(2);
      expect(flow.inputs.get('main')?.refusedBusy).toBe(0);
    } finally {
      await daemon.close();
    }
  });

  it('a frozen publisher (connection open, no media) is replaced by the next one with its key', async () => {
    // idleTimeoutMs is long: without the replacement the key would stay busy for a minute.
    const daemon = await startInProcess(`flows:\n${flowYaml('frozen')}`, ', idleTimeoutMs: 60000');
    const first = publish(daemon.url(publishKey('frozen')), { seconds: 60 });
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-frozen-'));
      const flow = daemon.app.registry.get('frozen')!;
      const state = () => flow.inputs.get('main')!;
      await waitFor(() => state().frames > 30, 'first publisher sending');
      // SIGSTOP: the process stops, its TCP connection stays up, as after a network drop.
      first.proc.kill('SIGSTOP');
      // Retry once a second, as encoders do: attempts within the silent window are refused as busy.
      let second = publish(daemon.url(publishKey('frozen')), { seconds: 6 });
      for (let attempt = 1; attempt < 10 && (await Promise.race([second.done, delay(1_500)])); attempt += 1) {
        await delay(1_000);
        second = publish(daemon.url(publishKey('frozen')), { seconds: 6 });
      }
      await waitFor(() => state().replacedSilent === 1, 'frozen publisher replaced');
      expect(state().refusedBusy).toBeGreaterThan(0);
      // The player ends with the second publisher and gets its media.
      const player = play(daemon.url(playKey('frozen')), join(dir, 'after.flv'));
      expect((await second.done).code).toBe(0);
      expect((await player.done).code).toBe(0);
      expect(videoFrames(await probeStreams(join(dir, 'after.flv')))).toBeGreaterThan(30);
      expect(state()).toMatchObject({ publishes: 2, replacedSilent: 1 });
    } finally {
      first.proc.kill('SIGKILL');
      await daemon.close();
    }
  });

  it('a frozen publisher is dropped after rtmp.idleTimeoutMs and its input reads ttl_exceeded', async () => {
    const daemon = await startInProcess(`flows:\n${flowYaml('stale')}`, ', idleTimeoutMs: 2000');
    const first = publish(daemon.url(publishKey('stale')), { seconds: 60 });
    try {
      const flow = daemon.app.registry.get('stale')!;
      await waitFor(() => flow.inputs.get('main')!.frames > 30, 'publisher sending');
      first.proc.kill('SIGSTOP');
      await waitFor(() => !flow.hub.live, 'frozen publisher dropped', 10_000);
      expect(flow.inputs.get('main')).toMatchObject({ status: 'ttl_exceeded', replacedSilent: 0 });
      expect((await publish(daemon.url(publishKey('stale')), { seconds: 1 }).done).code).toBe(0);
      expect(flow.inputs.get('main')?.status).toBe('client_disconnect');
    } finally {
      first.proc.kill('SIGKILL');
      await daemon.close();
    }
  });

  it('refuses a second publisher on a busy key with a clear status, without touching the first', async () => {
    const daemon = await startInProcess(`flows:\n${flowYaml('busy')}`, ', idleTimeoutMs: 3000');
    try {
      const flow = daemon.app.registry.get('busy')!;
      const first = publish(daemon.url(publishKey('busy')), { seconds: 5 });
      await waitFor(() => flow.hub.live, 'first publisher live');
      const second = await publish(daemon.url(publishKey('busy')), { seconds: 2 }).done;
      expect(second.code).not.toBe(0);
      expect(flow.inputs.get('main')?.refusedBusy).toBe(1);
      expect((await first.done).code).toBe(0);
    } finally {
      await daemon.close();
    }
  });
});

describe('what reaches the logs', () => {
  it('never logs a key that a mistyped URL put into the app name', async () => {
    const logs: Record<string, unknown>[] = [];
    const daemon = await startInProcess(`flows:\n${flowYaml('secret')}`, '', logs);
    try {
      const conn = await RawRtmp.open(daemon.port);
      await conn.handshake();
      conn.write(conn.command('connect', 1, { app: `live/${publishKey('secret')}`, tcUrl: 'rtmp://127.0.0.1/live' }));
      conn.write(conn.command('createStream', 2, null));
      conn.write(conn.command('publish', 0, null, 'wrong-key', 'live'));
      expect(await conn.closedWithin(5_000)).toBe(true);
      await waitFor(() => logs.some((l) => String(l.msg).startsWith('publish refused')), 'refusal logged');
      const text = JSON.stringify(logs);
      expect(text).not.toContain(publishKey('secret'));
      expect(text).toContain('"app":"live"');
    } finally {
      await daemon.close();
    }
  });
});

describe('config check and reload', () => {
  it('`check` reports every error with file, line and key, and exits 2', async () => {
    const cfg = await tempConfig(`rtmp:
  listen: 127.0.0.1:1935
  chunkSize: 99
flows:
  - id: Bad_Id
    inputs: [{ name: main, type: rtmp-push }]
  - id: ok
    inputs:
      - name: main
        type: rtmp-push
        bogus: 1
`);
    const result = await execFileAsync(process.execPath, [join(REPO_ROOT, 'bin/flowrelay'), 'check', cfg.file]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^${cfg.file}:4: rtmp\\.chunkSize: `));
    expect(lines[1]).toMatch(new RegExp(`^${cfg.file}:6: flows\\[0\\]\\.id: `));
    expect(lines[2]).toMatch(new RegExp(`^${cfg.file}:12: flows\\[1\\]\\.inputs\\[0\\]\\.bogus: unknown key`));
    await cfg.cleanup();
  });

  it('`check` accepts the bundled config', async () => {
    const { stdout } = await execFileAsync(process.execPath, [join(REPO_ROOT, 'bin/flowrelay'), 'check', join(REPO_ROOT, 'config/flowrelay.yaml')]);
    expect(stdout).toMatch(/ok \(1 flow\)/);
  });

  it('`check` checks every file it is given (a good one first does not hide a bad one); `run` and `token` refuse extra arguments', async () => {
    const bad = await tempConfig('flows:\n  - id: Bad_Id\n    inputs: [{ name: main, type: rtmp-push }]\n');
    const cli = (args: string[]) =>
      execFileAsync(process.execPath, [join(REPO_ROOT, 'bin/flowrelay'), ...args]).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
    const both = await cli(['check', join(REPO_ROOT, 'config/flowrelay.yaml'), bad.file]);
    expect(both.code).toBe(2);
    expect(both.stdout).toMatch(/ok \(1 flow\)/);
    expect(both.stderr).toContain(`${bad.file}:3: flows[0].id: `);
    expect(await cli(['run', '-c', bad.file, join(REPO_ROOT, 'config/flowrelay.yaml')])).toMatchObject({ code: 64, stderr: expect.stringMatching(/^flowrelay run: one config file, got 2/) });
    expect(await cli(['token', 'extra'])).toMatchObject({ code: 64, stderr: expect.stringMatching(/^flowrelay token: unexpected argument "extra"/) });
    await bad.cleanup();
  });

  let daemon: SpawnedDaemon | undefined;
  afterEach(() => {
    daemon?.proc.kill('SIGKILL');
    daemon = undefined;
  });

  it('a reload that changes only the failover timings keeps the live primary and its player streaming', async () => {
    const failoverFlow = (revertAfterMs: number) => `flows:
  - id: fo
    inputs:
      - { name: main, type: rtmp-push, streamKey: "${publishKey('fo')}" }
      - { name: backup, type: rtmp-push, streamKey: "${publishKey('fo-backup')}" }
    playback: { key: "${playKey('fo')}" }
    failover: { afterMs: 1000, revert: true, revertAfterMs: ${revertAfterMs} }
`;
    const local = await startInProcess(failoverFlow(3000));
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-fo-reload-'));
      const flow = local.app.registry.get('fo')!;
      const player = play(local.url(playKey('fo')), join(dir, 'fo.flv'));
      await waitFor(() => flow.hub.readerCount === 1, 'player attached');
      const primary = publish(local.url(publishKey('fo')), { seconds: 6 });
      await waitFor(() => flow.hub.counters.videoFrames > 25, 'primary live');
      const text = await readFile(local.configFile, 'utf8');
      await writeFile(local.configFile, text.replace('revertAfterMs: 3000', 'revertAfterMs: 5000'));
      expect(await local.app.reload()).toMatchObject({ ok: true, changes: { updated: ['fo'], restarted: [] } });
      expect(local.app.registry.get('fo')).toBe(flow);
      expect(flow.spec.failover.revertAfterMs).toBe(5000);
      expect((await primary.done).code).toBe(0);
      expect((await player.done).code).toBe(0);
      expect(videoFrames(await probeStreams(join(dir, 'fo.flv')))).toBeGreaterThanOrEqual(6 * 25 - 2);
    } finally {
      await local.close();
    }
  });

  it('a backup added by reload to a live one-input flow: no break for the player, and the flow fails over to it', async () => {
    const flowWith = (backup: boolean) => `flows:
  - id: grow
    inputs:
      - { name: main, type: rtmp-push, streamKey: "${publishKey('grow')}" }
${backup ? `      - { name: backup, type: rtmp-push, streamKey: "${publishKey('grow-backup')}" }\n` : ''}    playback: { key: "${playKey('grow')}" }
    failover: { afterMs: 1000 }
`;
    const local = await startInProcess(flowWith(false));
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-grow-'));
      const flow = local.app.registry.get('grow')!;
      const player = play(local.url(playKey('grow')), join(dir, 'grow.flv'));
      await waitFor(() => flow.hub.readerCount === 1, 'player attached');
      const primary = publish(local.url(publishKey('grow')), { seconds: 30, width: 320, height: 240 });
      await waitFor(() => flow.hub.counters.videoFrames > 25, 'primary live');
      await writeFile(local.configFile, (await readFile(local.configFile, 'utf8')).replace(flowWith(false), flowWith(true)));
      expect(await local.app.reload()).toMatchObject({ ok: true, changes: { updated: ['grow'], restarted: [] } });
      expect(local.app.registry.get('grow')).toBe(flow);
      const backup = publish(local.url(publishKey('grow-backup')), { seconds: 6, width: 480, height: 270 });
      await waitFor(() => flow.inputLive('backup'), 'backup live');
      await delay(1_000);
      primary.proc.kill('SIGKILL');
      await waitFor(() => flow.failover?.report().active === 'backup', 'failed over to the backup');
      expect((await backup.done).code).toBe(0);
      // One stream for the player from start to end: the primary's frames, then the backup's.
      expect((await player.done).code).toBe(0);
      const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=width', '-of', 'csv=p=0', join(dir, 'grow.flv')], { maxBuffer: 16 * 1024 * 1024 });
      const widths = stdout.split('\n').map((l) => Number.parseInt(l, 10)).filter((w) => Number.isFinite(w));
      expect(widths.filter((w, i) => i === 0 || w !== widths[i - 1])).toEqual([320, 480]);
      expect(widths.filter((w) => w === 320).length).toBeGreaterThan(50);
      expect(widths.filter((w) => w === 480).length).toBeGreaterThan(50);
    } finally {
      await local.close();
    }
  });

  it('a reload that changes storage.dir keeps the generated keys and the flows (it waits for a restart, with a warning)', async () => {
    const logs: Record<string, unknown>[] = [];
    const body = 'flows:\n  - id: gen\n    inputs: [{ name: main, type: rtmp-push }]\n';
    const local = await startInProcess(body, '', logs);
    try {
      const flow = local.app.registry.get('gen')!;
      const key = flow.spec.inputs[0]!.type === 'rtmp-push' ? flow.spec.inputs[0]!.streamKey : undefined;
      expect(key).toMatch(/.{16,}/);
      const elsewhere = join(local.dir, 'elsewhere');
      await writeFile(local.configFile, `storage: { dir: ${JSON.stringify(elsewhere)} }\nrtmp: { listen: "127.0.0.1:0" }\nlog: { level: warn }\n${body}`);
      const reloaded = await local.app.reload();
      expect(reloaded).toMatchObject({ ok: true, changes: { added: [], removed: [], restarted: [], updated: [] } });
      expect(local.app.registry.get('gen')).toBe(flow);
      expect(flow.spec.inputs[0]).toMatchObject({ streamKey: key });
      expect(logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('storage.dir changed; it takes effect at the next restart'))).toBe(true);
      expect(logs.some((l) => l.msg === 'log.level changed; it takes effect at the next restart')).toBe(true);
      await expect(readFile(join(elsewhere, 'secrets.json'))).rejects.toThrow(/ENOENT/);
      // The running daemon still publishes with the key it had.
      const publisher = await publish(local.url(key!), { seconds: 1 }).done;
      expect(publisher.code, publisher.stderr).toBe(0);
    } finally {
      await local.close();
    }
  });

  it('a file caught mid-save (emptied, or cut after "flows:") is refused while flows run; a flow removed by hand and put back keeps its generated keys', async () => {
    const genFlow = '  - id: gen\n    inputs: [{ name: main, type: rtmp-push }]\n';
    const local = await startInProcess(`flows:\n${flowYaml('keep')}${genFlow}`);
    try {
      const full = await readFile(local.configFile, 'utf8');
      const keyOf = (id: string) => {
        const input = local.app.registry.get(id)?.spec.inputs[0];
        return input?.type === 'rtmp-push' ? input.streamKey : undefined;
      };
      const genKey = keyOf('gen');
      expect(genKey).toMatch(/.{16,}/);
      const keep = local.app.registry.get('keep')!;
      const publisher = publish(local.url(publishKey('keep')), { seconds: 6 });
      await waitFor(() => keep.hub.live, 'publisher live');

      await writeFile(local.configFile, '');
      expect(await local.app.reload()).toMatchObject({
        ok: false,
        issues: [{ line: 1, path: 'flows', message: expect.stringMatching(/^the file lists no flows while 2 run .*write "flows: \[\]"$/) }],
      });
      const cut = full.slice(0, full.indexOf('flows:') + 'flows:'.length) + '\n';
      await writeFile(local.configFile, cut);
      expect(await local.app.reload()).toMatchObject({ ok: false, issues: [{ line: cut.split('\n').length - 1, path: 'flows' }] });
      // Both flows run on, the publisher untouched.
      expect(local.app.registry.get('keep')).toBe(keep);
      expect(keep.hub.live).toBe(true);
      expect(keep.hub.counters.sourceStarts).toBe(1);

      // A hand edit that drops a flow, then undone: the flow comes back with the same key.
      await writeFile(local.configFile, full.replace(genFlow, ''));
      expect(await local.app.reload()).toMatchObject({ ok: true, changes: { removed: ['gen'] } });
      await writeFile(local.configFile, full);
      expect(await local.app.reload()).toMatchObject({ ok: true, changes: { added: ['gen'] } });
      expect(keyOf('gen')).toBe(genKey);
      expect(keep.hub.counters.sourceStarts).toBe(1);

      // Removing every flow takes saying so.
      await writeFile(local.configFile, `${full.slice(0, full.indexOf('flows:'))}flows: []\n`);
      const emptied = await local.app.reload();
      expect(emptied.ok && [...emptied.changes.removed].sort()).toEqual(['gen', 'keep']);
      await publisher.done;
    } finally {
      await local.close();
    }
  });

  it('SIGHUP with a broken file keeps flows streaming; a good file then adds and removes flows', async () => {
    const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0" }\nflows:\n${flowYaml('keep')}${flowYaml('gone')}`);
    daemon = await spawnDaemon(cfg.file);
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-hup-'));
    const player = play(daemon.url(playKey('keep')), join(dir, 'keep.flv'));
    const publisher = publish(daemon.url(publishKey('keep')), { seconds: 8 });
    await daemon.waitForLine(/"msg":"publisher connected"/);

    await writeFile(cfg.file, `rtmp: { listen: "127.0.0.1:0" }\nflows:\n  - id: keep\n    nonsense: true\n`);
    daemon.proc.kill('SIGHUP');
    const rejected = await daemon.waitForLine(/config reload rejected/);
    expect(rejected).toMatch(/flowrelay\.yaml:4: flows\[0\]\.nonsense: unknown key/);

    // Fix the file: keep "keep" as it is, drop "gone", add "added".
    await writeFile(cfg.file, `storage: { dir: ${JSON.stringify(join(cfg.dir, 'data'))} }\nrtmp: { listen: "127.0.0.1:0" }\nflows:\n${flowYaml('keep')}${flowYaml('added')}`);
    daemon.proc.kill('SIGHUP');
    const reloaded = JSON.parse(await daemon.waitForLine(/"msg":"config reloaded"/)) as { added: string[]; removed: string[]; restarted: string[] };
    expect(reloaded).toMatchObject({ added: ['added'], removed: ['gone'], restarted: [] });
    const added = await publish(daemon.url(publishKey('added')), { seconds: 1 }).done;
    expect(added.code, added.stderr).toBe(0);
    const gone = await publish(daemon.url(publishKey('gone')), { seconds: 1 }).done;
    expect(gone.code).not.toBe(0);

    expect((await publisher.done).code).toBe(0);
    expect((await player.done).code).toBe(0);
    // The untouched flow streamed through both reloads without a gap.
    expect(videoFrames(await probeStreams(join(dir, 'keep.flv')))).toBeGreaterThanOrEqual(8 * 25 - 2);
    await cfg.cleanup();
  });

  it('a SIGHUP sent as soon as the process catches it, while the daemon loads, is held until start-up is done and then reloads', async () => {
    const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0" }\nflows:\n${flowYaml('early')}`);
    const proc = spawn(process.execPath, [join(REPO_ROOT, 'bin/flowrelay'), 'run', '-c', cfg.file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    // The kernel's mask of caught signals: SIGHUP is bit 1 (signal 1), set once run.ts has its handler.
    const catchesHup = async () => {
      const status = await readFile(`/proc/${proc.pid}/status`, 'utf8').catch(() => '');
      const mask = /^SigCgt:\s*([0-9a-f]+)/m.exec(status)?.[1];
      return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n;
    };
    for (let i = 0; i < 2_000 && !(await catchesHup()); i++) await delay(2);
    proc.kill('SIGHUP');
    await waitFor(() => output.includes('"msg":"flowrelay started"'), 'daemon started');
    await waitFor(() => output.includes('"msg":"config reloaded"'), 'the held SIGHUP reloaded');
    proc.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    await cfg.cleanup();
  });

  it('SIGTERM with a TCP connection to the RTMPS port that never starts TLS: exit 0 within 5 s', async () => {
    const cfg = await tempConfig('');
    const cert = join(cfg.dir, 'tls.crt');
    const key = join(cfg.dir, 'tls.key');
    await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1']);
    await writeFile(cfg.file, `storage: { dir: ${JSON.stringify(join(cfg.dir, 'data'))} }\nrtmp: { listen: "127.0.0.1:0", tls: { listen: "127.0.0.1:0", cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} } }\nflows:\n${flowYaml('t')}`);
    daemon = await spawnDaemon(cfg.file);
    const tlsLine = await daemon.waitForLine(/"protocol":"rtmps".*"msg":"listening"/);
    const tlsPort = (JSON.parse(tlsLine) as { port: number }).port;
    const idle = connect({ host: '127.0.0.1', port: tlsPort });
    idle.on('error', () => undefined);
    await new Promise((resolve) => idle.once('connect', resolve));
    daemon.proc.kill('SIGTERM');
    const exit = await Promise.race([daemon.exited, delay(5_000).then(() => 'still running' as const)]);
    expect(exit).toEqual({ code: 0, signal: null });
    idle.destroy();
    await cfg.cleanup();
  });

  it('SIGTERM with a publisher and players connected: exit 0 within 5 s', async () => {
    const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0" }\nflows:\n${flowYaml('term')}`);
    daemon = await spawnDaemon(cfg.file);
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-term-'));
    const publisher = publish(daemon.url(publishKey('term')), { seconds: 30 });
    await daemon.waitForLine(/"msg":"publisher connected"/);
    const players = [play(daemon.url(playKey('term')), join(dir, 'a.flv')), play(daemon.url(playKey('term')), join(dir, 'b.flv'))];
    await daemon.waitForLine(/"msg":"player connected"/);
    await delay(1_000);

    daemon.proc.kill('SIGTERM');
    const exit = await Promise.race([daemon.exited, delay(5_000).then(() => 'still running' as const)]);
    expect(exit).toEqual({ code: 0, signal: null });
    // Clients notice: the publisher fails, players end.
    await Promise.all([publisher.done, ...players.map((p) => p.done)]);
    await cfg.cleanup();
  });
});
