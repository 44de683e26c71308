// Third-party RTMP servers as test peers: nginx with nginx-rtmp-module (Debian's
// libnginx-mod-rtmp, installed by scripts/setup.sh) and node-media-server (npm dev
// dependency). Each runs as a child process on 127.0.0.1 and can be stopped, killed
// mid-stream and restarted on the same port.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PeerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RtmpPeer {
  /** 'nginx-rtmp' or 'node-media-server'. */
  readonly name: string;
  /** The TCP port on 127.0.0.1; restart() keeps it. */
  readonly port: number;
  /** rtmp://127.0.0.1:PORT/APP/STREAM */
  url(app: string, stream: string): string;
  /** SIGTERM, then SIGKILL after 3 s; resolves when the process is gone. Idempotent; restart() works afterwards. */
  stop(): Promise<void>;
  /** SIGKILL now, to the peer and every process it started (nginx's workers). */
  kill(): void;
  /** Stops the peer if it is running and starts it again on the same port; resolves when the port accepts TCP. */
  restart(): Promise<void>;
  /** The current process's exit; a new promise after every restart(). Never rejects. */
  readonly exited: Promise<PeerExit>;
  /** The peer's recent output (nginx: and its error log, at level info): for assertion messages. */
  logs(): string;
}

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 3_000;
const START_TIMEOUT_MS = 10_000;
const OUTPUT_KEEP = 16_000;

/** Binds 127.0.0.1:0, reads the port the kernel chose, closes. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function canBind(port: number): Promise<boolean> {
  return new Promise((resolveBind) => {
    const server = net.createServer();
    server.once('error', () => resolveBind(false));
    server.listen(port, HOST, () => server.close(() => resolveBind(true)));
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolveConn) => {
    const socket = net.connect(port, HOST);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolveConn(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1_000, () => done(false));
  });
}

// Safety net: whatever a test forgets to stop dies with the test process. The peers
// run in process groups of their own, so neither the terminal's Ctrl-C nor vitest's
// SIGTERM to its fork workers (which ends them without an 'exit' event) reaches
// them. Exit listeners must be synchronous, hence SIGKILL and rmSync.
const running = new Set<ChildPeer>();
let exitHooksInstalled = false;
function killAllPeers(): void {
  for (const p of running) p.killForExit();
}
function onFatalSignal(sig: NodeJS.Signals): void {
  killAllPeers();
  // A `once` listener is gone by now: with no other listener, re-raise so the signal
  // ends the process as it would have without us.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}
function track(peer: ChildPeer): void {
  running.add(peer);
  if (!exitHooksInstalled) {
    exitHooksInstalled = true;
    process.once('exit', killAllPeers);
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, onFatalSignal);
  }
}

interface PeerSpec {
  name: string;
  port: number;
  /** Writes what the process needs into dir (called before every start); returns the command. */
  prepare(dir: string): Promise<{ command: string; args: string[]; stdin: 'ignore' | 'pipe' }>;
  /** Extra diagnostics, e.g. nginx's error log. */
  extraLogs?(dir: string): string;
}

class ChildPeer implements RtmpPeer {
  readonly name: string;
  readonly port: number;
  exited: Promise<PeerExit> = Promise.resolve({ code: null, signal: null });
  private child: ChildProcess | null = null;
  private output = '';

  constructor(
    private readonly spec: PeerSpec,
    private readonly dir: string,
  ) {
    this.name = spec.name;
    this.port = spec.port;
  }

  url(app: string, stream: string): string {
    return `rtmp://${HOST}:${this.port}/${app}/${stream}`;
  }

  logs(): string {
    const extra = this.spec.extraLogs?.(this.dir) ?? '';
    return `${this.output}${extra ? `\n${extra}` : ''}`;
  }

  async start(): Promise<void> {
    // After a kill or a stop, a socket of the previous process may linger for a moment.
    const deadline = Date.now() + 5_000;
    while (!(await canBind(this.port))) {
      if (Date.now() > deadline) throw new Error(`${this.name}: port ${this.port} is still in use`);
      await sleep(100);
    }
    await mkdir(this.dir, { recursive: true });
    const { command, args, stdin } = await this.spec.prepare(this.dir);
    this.output = '';
    // A process group of its own, so that kill() reaches nginx's workers too: a
    // SIGKILLed nginx master leaves its workers running, listening socket and all.
    const child = spawn(command, args, { cwd: this.dir, detached: true, stdio: [stdin, 'pipe', 'pipe'] });
    this.child = child;
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-OUTPUT_KEEP);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    // stdin is the NMS runner's lifeline (it exits at EOF); an EPIPE there is not ours to handle.
    child.stdin?.on('error', () => undefined);
    this.exited = new Promise<PeerExit>((resolveExit) => {
      child.once('error', (err) => {
        keep(Buffer.from(`\n${err.message}\n`));
        running.delete(this);
        resolveExit({ code: -1, signal: null });
      });
      child.once('exit', (code, signal) => {
        running.delete(this);
        resolveExit({ code, signal });
      });
    });
    track(this);

    let gone = false;
    void this.exited.then(() => (gone = true));
    const readyBy = Date.now() + START_TIMEOUT_MS;
    while (!(await accepts(this.port))) {
      if (gone || Date.now() > readyBy) {
        const why = gone ? `exited (${JSON.stringify(await this.exited)})` : `did not accept TCP within ${START_TIMEOUT_MS} ms`;
        this.kill();
        await this.exited;
        throw new Error(`${this.name} on port ${this.port} ${why}:\n${this.logs()}`);
      }
      await sleep(50);
    }
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // ESRCH: the whole group is gone already.
    }
  }

  kill(): void {
    this.signal('SIGKILL');
  }

  /** Stops the process; keeps the directory for a restart. */
  private async halt(): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      this.signal('SIGTERM');
      const timer = setTimeout(() => this.signal('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    // Whatever the leader left behind in its group (nothing, normally).
    this.signal('SIGKILL');
    this.child = null;
  }

  async stop(): Promise<void> {
    await this.halt();
    await rm(this.dir, { recursive: true, force: true });
  }

  async restart(): Promise<void> {
    await this.halt();
    await this.start();
  }

  killForExit(): void {
    this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function launch(spec: PeerSpec, dirPrefix: string): Promise<RtmpPeer> {
  const dir = await mkdtemp(join(tmpdir(), dirPrefix));
  const peer = new ChildPeer(spec, dir);
  try {
    await peer.start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return peer;
}

// ---------------------------------------------------------------------------
// nginx-rtmp

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** nginx lives in /usr/sbin, which a non-root PATH often lacks. */
function findNginx(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    const p = join(d, 'nginx');
    if (executable(p)) return p;
  }
  return null;
}

// Debian's prefix, against which the relative paths in its modules-available/*.conf
// resolve (modules/ -> /usr/lib/nginx/modules). Ours is a temp dir, so they are made absolute.
const DEBIAN_NGINX_PREFIX = '/usr/share/nginx';
const MODULES_AVAILABLE = '/usr/share/nginx/modules-available';

function findRtmpModule(): string | null {
  for (const p of ['/usr/lib/nginx/modules/ngx_rtmp_module.so', '/usr/lib64/nginx/modules/ngx_rtmp_module.so']) {
    if (existsSync(p)) return p;
  }
  let confs: string[];
  try {
    confs = readdirSync(MODULES_AVAILABLE).filter((f) => f.endsWith('.conf'));
  } catch {
    return null;
  }
  for (const f of confs) {
    const text = readFileSync(join(MODULES_AVAILABLE, f), 'utf8');
    for (const m of text.matchAll(/^\s*load_module\s+"?([^";\s]*rtmp[^";\s]*)"?\s*;/gm)) {
      const p = isAbsolute(m[1]!) ? m[1]! : resolve(DEBIAN_NGINX_PREFIX, m[1]!);
      if (existsSync(p)) return p;
    }
  }
  return null;
}

/** True when an nginx binary and the RTMP module are installed (scripts/setup.sh installs both). */
export function nginxRtmpAvailable(): boolean {
  return findNginx() !== null && findRtmpModule() !== null;
}

/** `-e FILE` (nginx 1.19.5+): Ubuntu 22.04 and Debian 11 ship 1.18. */
function hasErrorLogFlag(nginx: string): boolean {
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr ?? '');
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return major > 1 || (major === 1 && (minor > 19 || (minor === 19 && patch >= 5)));
}

const APP_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function nginxConf(dir: string, modulePath: string, port: number, apps: string[]): string {
  const q = (s: string): string => JSON.stringify(s);
  const applications = apps.map((a) => `      application ${a} { live on; record off; }`).join('\n');
  // worker_processes 1: nginx-rtmp keeps live streams per worker, so a publisher and
  // a player on different workers would not meet. No `user`: as root the workers
  // switch to nginx's built-in default (nobody), which is fine as they open no files
  // (the master opens the logs). access_log: nginx-rtmp's default is the compiled-in
  // /var/log/nginx/access.log, which a non-root nginx cannot open and refuses to start.
  return `# written by test/helpers/peers.ts
load_module ${q(modulePath)};
worker_processes 1;
pid ${q(join(dir, 'nginx.pid'))};
error_log ${q(join(dir, 'error.log'))} info;
events {}
rtmp {
  access_log ${q(join(dir, 'access.log'))};
  server {
    listen ${HOST}:${port};
    chunk_size 4096;
${applications}
  }
}
`;
}

/**
 * nginx with nginx-rtmp-module: one `live` application per name in `apps` (default
 * ['live']), no HTTP server, everything (config, pid, error log) in a temp prefix dir.
 */
export async function startNginxRtmp(opts: { port?: number; apps?: string[] } = {}): Promise<RtmpPeer> {
  const nginx = findNginx();
  const modulePath = findRtmpModule();
  if (!nginx || !modulePath) {
    throw new Error('nginx or its RTMP module is not installed (scripts/setup.sh installs nginx and libnginx-mod-rtmp)');
  }
  const apps = opts.apps ?? ['live'];
  if (apps.length === 0) throw new Error('startNginxRtmp: apps is empty');
  for (const a of apps) if (!APP_NAME.test(a)) throw new Error(`startNginxRtmp: bad application name ${JSON.stringify(a)}`);
  const port = opts.port ?? (await freePort());
  const errorLogFlag = hasErrorLogFlag(nginx);
  return launch(
    {
      name: 'nginx-rtmp',
      port,
      prepare: async (dir) => {
        await writeFile(join(dir, 'nginx.conf'), nginxConf(dir, modulePath, port, apps));
        return {
          command: nginx,
          // -e: the log nginx writes to before it has read the config. Without it a
          // non-root nginx only warns that the compiled-in /var/log/nginx/error.log is
          // not writable, and goes on.
          args: [
            '-p', dir,
            ...(errorLogFlag ? ['-e', join(dir, 'error.log')] : []),
            '-c', 'nginx.conf',
            '-g', 'daemon off; master_process on;',
          ],
          stdin: 'ignore',
        };
      },
      extraLogs: (dir) => {
        try {
          return readFileSync(join(dir, 'error.log'), 'utf8').slice(-OUTPUT_KEEP);
        } catch {
          return '';
        }
      },
    },
    'flowrelay-nginx-',
  );
}

// ---------------------------------------------------------------------------
// node-media-server

const NMS_RUNNER = fileURLToPath(new URL('./nms-runner.mjs', import.meta.url));

/** node-media-server (RTMP only) in a child process: see nms-runner.mjs. */
export async function startNodeMediaServer(opts: { port?: number } = {}): Promise<RtmpPeer> {
  const port = opts.port ?? (await freePort());
  return launch(
    {
      name: 'node-media-server',
      port,
      prepare: async (dir) => {
        const data = join(dir, 'data');
        await mkdir(data, { recursive: true });
        // stdin is a pipe the runner watches: it exits when we are gone, however we went.
        return { command: process.execPath, args: [NMS_RUNNER, String(port), data], stdin: 'pipe' };
      },
    },
    'flowrelay-nms-',
  );
}
