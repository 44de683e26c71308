import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TlsPair } from '../../src/rtmp/tls-pair.js';
import { TlsReloader, type WatchDir } from '../../src/rtmp/tls-reloader.js';
import { FakeClock } from '../helpers/fake-clock.js';

const execFileAsync = promisify(execFile);

let root: string;
const pairs: Record<'a' | 'b', TlsPair> = {} as Record<'a' | 'b', TlsPair>;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'flowrelay-tls-reloader-'));
  for (const name of ['a', 'b'] as const) {
    const cert = join(root, `${name}.crt`);
    const key = join(root, `${name}.key`);
    await execFileAsync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=cert-${name}`]);
    pairs[name] = { cert: await readFile(cert), key: await readFile(key) };
  }
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Harness {
  dir: string;
  certPath: string;
  keyPath: string;
  clock: FakeClock;
  logs: Record<string, unknown>[];
  applied: SecureContextOptions[];
  reloader: TlsReloader;
  /** Fires a directory event as fs.watch would (only with the fake watcher). */
  fire: (filename: string | null) => void;
  watchersClosed: () => number;
}

const open: TlsReloader[] = [];
afterEach(() => {
  for (const r of open.splice(0)) r.close();
});

let n = 0;
async function harness(opts: { realWatch?: boolean } = {}): Promise<Harness> {
  const dir = join(root, `case-${n++}`);
  await mkdir(dir);
  const certPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  await writeFile(certPath, pairs.a.cert);
  await writeFile(keyPath, pairs.a.key);
  const clock = new FakeClock();
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const applied: SecureContextOptions[] = [];
  const listeners: ((filename: string | null) => void)[] = [];
  let closed = 0;
  const fakeWatch: WatchDir = (_dir, onChange) => {
    listeners.push(onChange);
    return { close: () => void (closed += 1) };
  };
  const reloader = new TlsReloader(
    { certPath, keyPath },
    pairs.a,
    { setSecureContext: (o) => void applied.push(o) },
    { logger, clock, ...(opts.realWatch ? {} : { watchDir: fakeWatch }) },
  );
  open.push(reloader);
  reloader.start();
  // The poll's baseline stat is asynchronous; once it is taken, the next poll is the one timer.
  await vi.waitFor(() => expect(clock.pending).toBe(1));
  return { dir, certPath, keyPath, clock, logs, applied, reloader, fire: (f) => listeners.forEach((l) => l(f)), watchersClosed: () => closed };
}

const certOf = (o: SecureContextOptions | undefined): Buffer | undefined => o?.cert as Buffer | undefined;
const messages = (logs: Record<string, unknown>[], msg: string) => logs.filter((l) => l.msg === msg);

/** certbot-style: write under temporary names, then rename over the live names. */
async function replaceByRename(h: Harness, pair: TlsPair): Promise<void> {
  await writeFile(`${h.certPath}.tmp`, pair.cert);
  await writeFile(`${h.keyPath}.tmp`, pair.key);
  await rename(`${h.certPath}.tmp`, h.certPath);
  await rename(`${h.keyPath}.tmp`, h.keyPath);
}

describe('TlsReloader', () => {
  it('waits for the changes to settle, then applies the new pair once', async () => {
    const h = await harness();
    await writeFile(h.certPath, pairs.b.cert);
    h.fire('tls.crt');
    h.clock.advance(300);
    // The key arrives in a second step: the debounce restarts, nothing is read in between.
    await writeFile(h.keyPath, pairs.b.key);
    h.fire('tls.key');
    h.clock.advance(300);
    await h.reloader.idle();
    expect(h.applied).toHaveLength(0);
    h.clock.advance(200);
    await h.reloader.idle();
    expect(h.applied).toHaveLength(1);
    expect(certOf(h.applied[0])!.equals(pairs.b.cert)).toBe(true);
    const [reloaded] = messages(h.logs, 'rtmps certificate reloaded');
    expect(reloaded).toMatchObject({ subject: 'CN=cert-b', certPath: h.certPath, keyPath: h.keyPath });
    expect(typeof reloaded!.validTo).toBe('string');
    expect(messages(h.logs, 'rtmps certificate reload failed; keeping the current certificate')).toHaveLength(0);
  });

  it('ignores events for unrelated files and reloads nothing when the content is unchanged', async () => {
    const h = await harness();
    h.fire('access.log');
    expect(h.clock.pending).toBe(1);
    h.fire('tls.crt');
    expect(h.clock.pending).toBe(2);
    h.clock.advance(500);
    expect(await h.reloader.check()).toBe('unchanged');
    expect(h.applied).toHaveLength(0);
    expect(h.logs.filter((l) => (l.level as number) >= 40)).toHaveLength(0);
  });

  it('does not postpone a reload forever while events keep coming', async () => {
    const h = await harness();
    await replaceByRename(h, pairs.b);
    for (let i = 0; i < 20; i++) {
      h.fire('tls.crt');
      h.clock.advance(400);
    }
    await h.reloader.idle();
    expect(h.applied).toHaveLength(1);
  });

  it('keeps the running certificate when the pair does not load, reports it once, and retries on the next change', async () => {
    const h = await harness();
    // A renewal caught halfway: the new certificate with the old key.
    await writeFile(h.certPath, pairs.b.cert);
    h.fire('tls.crt');
    h.clock.advance(500);
    await h.reloader.idle();
    expect(h.applied).toHaveLength(0);
    const failed = messages(h.logs, 'rtmps certificate reload failed; keeping the current certificate');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ level: 50, certPath: h.certPath, keyPath: h.keyPath, reason: 'key values mismatch' });

    // The same bad pair again (an unrelated event, a poll) is not reported twice.
    h.fire('tls.crt');
    h.clock.advance(500);
    await h.reloader.idle();
    expect(messages(h.logs, 'rtmps certificate reload failed; keeping the current certificate')).toHaveLength(1);

    // A key that is not PEM at all: reported with OpenSSL's reason.
    await writeFile(h.keyPath, 'not a key\n');
    h.fire('tls.key');
    h.clock.advance(500);
    await h.reloader.idle();
    expect(messages(h.logs, 'rtmps certificate reload failed; keeping the current certificate')).toHaveLength(2);
    expect(h.applied).toHaveLength(0);

    // A missing file is a failure like any other.
    await rm(h.keyPath);
    h.fire('tls.key');
    h.clock.advance(500);
    await h.reloader.idle();
    expect(messages(h.logs, 'rtmps certificate reload failed; keeping the current certificate')[2]).toMatchObject({ code: 'ENOENT' });

    // The key that matches arrives: the next change applies it.
    await writeFile(h.keyPath, pairs.b.key);
    h.fire('tls.key');
    h.clock.advance(500);
    await h.reloader.idle();
    expect(h.applied).toHaveLength(1);
    expect(certOf(h.applied[0])!.equals(pairs.b.cert)).toBe(true);
  });

  it('sees a rename-replace through the real directory watcher', async () => {
    const h = await harness({ realWatch: true });
    await replaceByRename(h, pairs.b);
    // The watcher's event schedules the debounce timer next to the poll.
    await vi.waitFor(() => expect(h.clock.pending).toBe(2), { timeout: 5_000 });
    h.clock.advance(500);
    await h.reloader.idle();
    expect(h.applied).toHaveLength(1);
    expect(certOf(h.applied[0])!.equals(pairs.b.cert)).toBe(true);
    expect(messages(h.logs, 'rtmps certificate reloaded')[0]).toMatchObject({ subject: 'CN=cert-b' });
  });

  it('sees a certbot-style symlink swap through the real directory watcher', async () => {
    const dir = join(root, `symlinks-${n++}`);
    await mkdir(join(dir, 'archive'), { recursive: true });
    await mkdir(join(dir, 'live'));
    for (const [i, pair] of [[1, pairs.a], [2, pairs.b]] as const) {
      await writeFile(join(dir, 'archive', `cert${i}.pem`), pair.cert);
      await writeFile(join(dir, 'archive', `key${i}.pem`), pair.key);
    }
    const certPath = join(dir, 'live', 'cert.pem');
    const keyPath = join(dir, 'live', 'key.pem');
    await symlink('../archive/cert1.pem', certPath);
    await symlink('../archive/key1.pem', keyPath);
    const clock = new FakeClock();
    const applied: SecureContextOptions[] = [];
    const reloader = new TlsReloader({ certPath, keyPath }, pairs.a, { setSecureContext: (o) => void applied.push(o) }, { logger: pino({ level: 'silent' }), clock });
    open.push(reloader);
    reloader.start();
    await vi.waitFor(() => expect(clock.pending).toBe(1));
    for (const [link, target] of [[certPath, '../archive/cert2.pem'], [keyPath, '../archive/key2.pem']] as const) {
      await symlink(target, `${link}.new`);
      await rename(`${link}.new`, link);
    }
    await vi.waitFor(() => expect(clock.pending).toBe(2), { timeout: 5_000 });
    clock.advance(500);
    await reloader.idle();
    expect(applied).toHaveLength(1);
    expect(certOf(applied[0])!.equals(pairs.b.cert)).toBe(true);
  });

  it('falls back to polling mtime and size when the watcher stays silent', async () => {
    const h = await harness();
    await replaceByRename(h, pairs.b);
    h.clock.advance(29_999);
    expect(h.clock.pending).toBe(1);
    h.clock.advance(1);
    // The poll's stat is asynchronous; a changed signature schedules the debounced check.
    await vi.waitFor(() => expect(h.clock.pending).toBe(2));
    h.clock.advance(500);
    await h.reloader.idle();
    expect(h.applied).toHaveLength(1);
  });

  it('close() stops watchers and timers, is idempotent, and ignores later events', async () => {
    const h = await harness();
    h.fire('tls.crt');
    expect(h.clock.pending).toBe(2);
    h.reloader.close();
    h.reloader.close();
    expect(h.clock.pending).toBe(0);
    expect(h.watchersClosed()).toBe(1);
    h.fire('tls.crt');
    expect(h.clock.pending).toBe(0);
    await replaceByRename(h, pairs.b);
    expect(await h.reloader.check()).toBe('closed');
    expect(h.applied).toHaveLength(0);
  });
});
