import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { App, type AppOptions } from '../../src/app.js';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;

/**
 * A temp directory with a config file in it; storage goes there too. `storageExtra`: more
 * storage keys, e.g. ", minFreeSpace: 0" (tests record to temp dirs on disks of any size).
 */
export async function tempConfig(yamlBody: string, storageExtra = ''): Promise<{ dir: string; file: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'flowrelay-test-'));
  const file = join(dir, 'flowrelay.yaml');
  await writeFile(file, `storage: { dir: ${JSON.stringify(join(dir, 'data'))}${storageExtra} }\n${yamlBody}`);
  return { dir, file, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Standard test flows: keys are fixed so tests can build URLs. `extra`: more keys of the flow, e.g. outputs. */
export function flowYaml(id: string, extra: Record<string, unknown> = {}): string {
  const more = Object.entries(extra)
    .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}\n`)
    .join('');
  return `  - id: ${id}
    inputs: [{ name: main, type: rtmp-push, streamKey: "${publishKey(id)}" }]
    playback: { key: "${playKey(id)}" }
${more}`;
}

/** An rtmp output pushing to a flow of a daemon listening on `port`. */
export function outputTo(name: string, port: number, flowId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, type: 'rtmp', url: `rtmp://127.0.0.1:${port}/live`, streamKey: publishKey(flowId), ...extra };
}
export const publishKey = (id: string): string => `publish-${id}-0123456789`;
export const playKey = (id: string): string => `play-${id}-0123456789abc`;

export interface InProcessDaemon {
  app: App;
  /** The temp directory holding the config and storage (`<dir>/data`). */
  dir: string;
  port: number;
  configFile: string;
  url: (key: string) => string;
  close: () => Promise<void>;
}

/**
 * Runs the daemon inside the test process (real sockets, port 0). `rtmpExtra`: more rtmp
 * keys, e.g. ", chunkSize: 128"; `options.storageExtra`: more storage keys; `options.app`:
 * more App options (an injected recording file system).
 */
export async function startInProcess(
  yamlBody: string,
  rtmpExtra = '',
  logs?: Record<string, unknown>[],
  options: { storageExtra?: string; app?: Partial<AppOptions> } = {},
): Promise<InProcessDaemon> {
  const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0"${rtmpExtra} }\n${yamlBody}`, options.storageExtra);
  // With `logs`, every log record is parsed into that array so tests can assert on them.
  const logger = logs
    ? pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) })
    : pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const app = await App.load({ configFile: cfg.file, logger, announce: () => undefined, ...options.app });
  await app.start();
  const port = app.addresses()[0]!.address.port;
  return {
    app,
    dir: cfg.dir,
    port,
    configFile: cfg.file,
    url: (key) => `rtmp://127.0.0.1:${port}/live/${key}`,
    close: async () => {
      await app.close('test done');
      await cfg.cleanup();
    },
  };
}

export interface SpawnedDaemon {
  proc: ChildProcess;
  port: number;
  url: (key: string) => string;
  /** Every stdout/stderr line so far (JSON logs and announcements). */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLine: (pattern: RegExp, timeoutMs?: number) => Promise<string>;
}

/** Runs bin/flowrelay as a child process, for signal and CLI tests. */
export async function spawnDaemon(configFile: string): Promise<SpawnedDaemon> {
  const proc = spawn(process.execPath, [join(REPO_ROOT, 'bin/flowrelay'), 'run', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (l: string) => void }[] = [];
  const onLine = (line: string) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.pattern.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  createInterface({ input: proc.stdout! }).on('line', onLine);
  createInterface({ input: proc.stderr! }).on('line', onLine);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const waitForLine = (pattern: RegExp, timeoutMs = 10_000): Promise<string> => {
    const found = lines.find((l) => pattern.test(l));
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no log line matching ${pattern} within ${timeoutMs} ms; got:\n${lines.join('\n')}`)), timeoutMs);
      waiters.push({ pattern, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  };
  const listening = await Promise.race([
    // The RTMP listener's line: with an srt section, the SRT port logs "listening" first.
    waitForLine(/"protocol":"rtmp".*"msg":"listening"/),
    exited.then(({ code }) => { throw new Error(`daemon exited with ${code} before listening:\n${lines.join('\n')}`); }),
  ]);
  const port = (JSON.parse(listening) as { port: number }).port;
  return { proc, port, url: (key) => `rtmp://127.0.0.1:${port}/live/${key}`, lines, exited, waitForLine };
}

/** Replaces the flows of an in-process daemon's config file (the rest stays) and reloads it. */
export async function reconfigure(daemon: InProcessDaemon, flowsYaml: string): Promise<void> {
  const text = await readFile(daemon.configFile, 'utf8');
  const head = text.slice(0, text.indexOf('flows:'));
  await writeFile(daemon.configFile, `${head}flows:\n${flowsYaml}`);
  const result = await daemon.app.reload();
  if (!result.ok) throw new Error(result.issues.map((i) => `${i.line}: ${i.path}: ${i.message}`).join('\n'));
}
