// The servers under test, each a child process on a free 127.0.0.1 port with a minimal
// config: nginx-rtmp (Debian's module), node-media-server 4.x and 2.7.x, and flowrelay
// from the built dist/. Same approach as test/helpers/peers.ts, cut down.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { URL, fileURLToPath } from 'node:url';
import { HOST, freePort, start, stop, trackTempDir, waitForPort } from './procs.mjs';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NMS_RUNNER = fileURLToPath(new URL('../nms-runner.mjs', import.meta.url));
/** FLOWRELAY_BIN benchmarks another build's launcher (default: this checkout's bin/flowrelay). */
export const FLOWRELAY = process.env.FLOWRELAY_BIN ? resolve(process.env.FLOWRELAY_BIN) : join(ROOT, 'bin', 'flowrelay');

/** Fixed in the generated flowrelay config; nginx and NMS use one stream name for both. */
export const PUBLISH_KEY = 'bench-publish-key-0001';
export const PLAY_KEY = 'bench-play-key-000001';
const STREAM = 'bench';

export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), `flowrelay-bench-${prefix}-`));
  trackTempDir(dir);
  return dir;
}

// ---------------------------------------------------------------------------
// nginx-rtmp

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findNginx() {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) if (executable(join(d, 'nginx'))) return join(d, 'nginx');
  return null;
}

export function findRtmpModule() {
  for (const p of ['/usr/lib/nginx/modules/ngx_rtmp_module.so', '/usr/lib64/nginx/modules/ngx_rtmp_module.so']) if (existsSync(p)) return p;
  const available = '/usr/share/nginx/modules-available';
  let confs = [];
  try {
    confs = readdirSync(available).filter((f) => f.endsWith('.conf'));
  } catch {
    return null;
  }
  for (const f of confs) {
    for (const m of readFileSync(join(available, f), 'utf8').matchAll(/^\s*load_module\s+"?([^";\s]*rtmp[^";\s]*)"?\s*;/gm)) {
      const p = isAbsolute(m[1]) ? m[1] : resolve('/usr/share/nginx', m[1]);
      if (existsSync(p)) return p;
    }
  }
  return null;
}

function nginxVersion(nginx) {
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr ?? '');
  return m ? m.slice(1).map(Number) : null;
}

async function startNginx() {
  const nginx = findNginx();
  const module = findRtmpModule();
  if (!nginx || !module) throw new Error('nginx or libnginx-mod-rtmp is not installed (scripts/setup.sh --test-peers installs both)');
  const dir = tempDir('nginx');
  const port = await freePort();
  const q = JSON.stringify;
  // worker_processes 1: nginx-rtmp keeps live streams per worker, so a publisher and a
  // player on different workers would not meet. Logs at "error" like the other servers.
  writeFileSync(
    join(dir, 'nginx.conf'),
    `load_module ${q(module)};
worker_processes 1;
pid ${q(join(dir, 'nginx.pid'))};
error_log ${q(join(dir, 'error.log'))} error;
events {}
rtmp {
  access_log off;
  server {
    listen ${HOST}:${port};
    chunk_size 4096;
    application live { live on; record off; }
  }
}
`,
  );
  const v = nginxVersion(nginx);
  const eFlag = v && (v[0] > 1 || (v[0] === 1 && (v[1] > 19 || (v[1] === 19 && v[2] >= 5))));
  const args = ['-p', dir, ...(eFlag ? ['-e', join(dir, 'error.log')] : []), '-c', 'nginx.conf', '-g', 'daemon off; master_process on;'];
  const child = start(nginx, args, { cwd: dir, label: 'nginx' });
  await waitForPort(port, child);
  return peer('nginx-rtmp', `nginx-rtmp ${v ? v.join('.') : '?'}`, port, child, STREAM, STREAM);
}

// ---------------------------------------------------------------------------
// node-media-server

async function startNms(version) {
  const dir = tempDir(`nms${version}`);
  const port = await freePort();
  // stdin is the runner's lifeline: it exits at EOF.
  const child = start(process.execPath, [NMS_RUNNER, version, String(port), dir], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'], label: `nms${version}` });
  await waitForPort(port, child);
  const pkg = version === '4' ? 'node-media-server' : 'node-media-server-2';
  const installed = JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  return peer(`nms${version}`, `node-media-server ${installed}`, port, child, STREAM, STREAM);
}

// ---------------------------------------------------------------------------
// flowrelay

/** A flowrelay config (JSON is YAML) with the RTMP listener on 127.0.0.1:rtmpPort. */
export function flowrelayConfig({ rtmpPort, dir, rtmp = {}, srt, flows, logLevel = 'warn' }) {
  return {
    rtmp: { listen: `${HOST}:${rtmpPort}`, ...rtmp },
    ...(srt ? { srt } : {}),
    storage: { dir: join(dir, 'data') },
    log: { level: logLevel },
    flows,
  };
}

export function benchFlow(id = 'bench', publishKey = PUBLISH_KEY, playKey = PLAY_KEY) {
  return { id, inputs: [{ name: 'main', type: 'rtmp-push', streamKey: publishKey }], playback: { key: playKey } };
}

export function writeConfig(dir, config, name = 'flowrelay.yaml') {
  const file = join(dir, name);
  writeFileSync(file, `${JSON.stringify(config, null, 1)}\n`);
  return file;
}

/** `bin/flowrelay check FILE`: { ok, output }. */
export function checkConfig(file) {
  const r = spawnSync(process.execPath, [FLOWRELAY, 'check', file], { encoding: 'utf8', timeout: 20_000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/**
 * Spawns `node bin/flowrelay run -c FILE`. Resolves with the child and the ms from
 * spawn to the "flowrelay started" log line (which needs log level info or lower), or
 * when the port accepts TCP if waitForLog is false.
 */
export async function spawnFlowrelay(file, { port, waitForLog = false, label = 'flowrelay', timeoutMs = 20_000 }) {
  let startedAt = 0;
  let resolveLog;
  const logged = new Promise((r) => (resolveLog = r));
  const t0 = performance.now();
  const child = start(process.execPath, [FLOWRELAY, 'run', '-c', file], {
    label,
    onLine: (line) => {
      if (startedAt === 0 && line.includes('"flowrelay started"')) {
        startedAt = performance.now();
        resolveLog();
      }
    },
  });
  if (waitForLog) {
    let timer;
    const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${label}: no "flowrelay started" within ${timeoutMs} ms:\n${child.tail}`)), timeoutMs)));
    const died = child.exited.then(() => {
      throw new Error(`${label} exited:\n${child.tail}`);
    });
    try {
      await Promise.race([logged, timeout, died]);
    } finally {
      clearTimeout(timer);
    }
  }
  if (port !== undefined) await waitForPort(port, child, timeoutMs);
  return { child, readyMs: startedAt ? startedAt - t0 : null };
}

async function startFlowrelay(name, rtmpExtra) {
  const dir = tempDir(name);
  const port = await freePort();
  const file = writeConfig(dir, flowrelayConfig({ rtmpPort: port, dir, rtmp: rtmpExtra, flows: [benchFlow()] }));
  const { child } = await spawnFlowrelay(file, { port, label: name });
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
  return peer(name, `flowrelay ${version}${rtmpExtra.mergeWritesMs ? ` (mergeWritesMs ${rtmpExtra.mergeWritesMs})` : ''}`, port, child, PUBLISH_KEY, PLAY_KEY);
}

/** True when this build's config schema accepts rtmp.mergeWritesMs. */
export function mergeWritesSupported(ms) {
  const dir = tempDir('check');
  const file = writeConfig(dir, flowrelayConfig({ rtmpPort: 1935, dir, rtmp: { mergeWritesMs: ms }, flows: [benchFlow()] }));
  return checkConfig(file);
}

function peer(name, description, port, child, publishName, playName) {
  return {
    name,
    description,
    port,
    child,
    pid: child.pid,
    publishUrl: `rtmp://${HOST}:${port}/live/${publishName}`,
    playUrl: `rtmp://${HOST}:${port}/live/${playName}`,
    stop: () => stop(child, 3_000),
  };
}

/** name -> starter. */
export const SERVERS = {
  'nginx-rtmp': startNginx,
  nms4: () => startNms('4'),
  nms2: () => startNms('2'),
  flowrelay: () => startFlowrelay('flowrelay', {}),
  'flowrelay-merge50': () => startFlowrelay('flowrelay-merge50', { mergeWritesMs: 50 }),
};
