// Child processes and /proc readings for the benchmark.
//
// Every child runs in a process group of its own (detached), so that one kill reaches
// what it started (nginx's workers), and is tracked so that an exit, Ctrl-C or SIGTERM
// of the bench kills it.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import process from 'node:process';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';

export const HOST = '127.0.0.1';
const TAIL = 8_000;

const live = new Set();
const tempDirs = new Set();
let hooked = false;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Removed at exit, however the bench ends. */
export function trackTempDir(dir) {
  tempDirs.add(dir);
}

export function killAll() {
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function installHooks() {
  if (hooked) return;
  hooked = true;
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, killing ${live.size} child process(es)\n`);
      killAll();
      process.exit(130);
    });
  }
}

/**
 * Spawns a tracked child in its own process group. stdout/stderr are kept (last 8 KB)
 * unless stdio says otherwise; `onLine` gets stdout lines.
 */
export function start(command, args, opts = {}) {
  installHooks();
  const stdio = opts.stdio ?? ['ignore', 'pipe', 'pipe'];
  const child = spawn(command, args, { detached: true, stdio, cwd: opts.cwd, env: opts.env ?? process.env });
  child.tail = '';
  child.label = opts.label ?? command;
  live.add(child);
  const keep = (d) => {
    child.tail = (child.tail + d.toString()).slice(-TAIL);
  };
  let partial = '';
  child.stdout?.on('data', (d) => {
    keep(d);
    if (!opts.onLine) return;
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const l of lines) opts.onLine(l);
  });
  child.stderr?.on('data', keep);
  child.stdin?.on('error', () => undefined);
  child.exited = new Promise((resolve) => {
    child.once('error', (err) => {
      keep(`\n${err.message}\n`);
      live.delete(child);
      resolve({ code: -1, signal: null });
    });
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  return child;
}

export function killGroup(child, sig) {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // ESRCH: gone already.
  }
}

/** SIGTERM to the group, SIGKILL after graceMs; resolves when the leader has exited. */
export async function stop(child, graceMs = 2_000) {
  if (!child || child.pid === undefined) return;
  if (child.exitCode === null && child.signalCode === null) {
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    await child.exited;
    clearTimeout(timer);
  }
  killGroup(child, 'SIGKILL');
}

export async function stopAll(children, graceMs = 1_000) {
  await Promise.all(children.map((c) => stop(c, graceMs)));
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST);
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1_000, () => done(false));
  });
}

/** Resolves when 127.0.0.1:port accepts TCP; throws after timeoutMs or when the child exits. */
export async function waitForPort(port, child, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${child.label} exited before listening:\n${child.tail}`);
    if (Date.now() > deadline) throw new Error(`${child.label} did not accept TCP on ${port} within ${timeoutMs} ms:\n${child.tail}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------
// /proc

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

function statFields(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The pid and all its live descendants. */
export function procTree(rootPid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(name);
    if (!f) continue;
    const ppid = Number(f[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [];
  const stack = [rootPid];
  while (stack.length > 0 && out.length < 10_000) {
    const pid = stack.pop();
    out.push(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return out;
}

/**
 * CPU seconds (user + system, all threads; plus reaped children's) summed over pids.
 * Per process: a process that exits within a window takes its ticks with it, unless
 * its parent in the tree reaped it (then they are in cutime/cstime).
 */
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (!f) continue;
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks / CLK_TCK;
}

/**
 * CPU seconds from the scheduler's own accounting (/proc/PID/task/TID/schedstat, in ns),
 * summed over every thread of pids: finer than the 10 ms ticks of /proc/PID/stat, which
 * matters for windows where a server uses a few tenths of a second. Threads that exit
 * within a window take their time with them, so callers keep the tick count too.
 */
export function schedSeconds(pids) {
  let ns = 0;
  for (const pid of pids) {
    let tids;
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
  }
  return ns / 1e9;
}

/** Both CPU counts for pids: { sched, ticks } in seconds. */
export function cpuSample(pids) {
  return { sched: schedSeconds(pids), ticks: cpuSeconds(pids) };
}

/** CPU seconds between two cpuSample()s: the scheduler's count unless it lost a thread's time (then the ticks'). */
export function cpuDelta(a, b) {
  const sched = b.sched - a.sched;
  const ticks = b.ticks - a.ticks;
  // Ticks are +-10 ms per process; a scheduler count far below them means threads exited.
  return { cpu: sched > 0 && sched >= ticks - 0.05 ? sched : ticks, sched, ticks };
}

/** { rss, hwm } in bytes, summed over pids (VmRSS now, VmHWM = each process's peak). */
export function memory(pids) {
  let rss = 0;
  let hwm = 0;
  for (const pid of pids) {
    let text;
    try {
      text = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    rss += kb(text, 'VmRSS');
    hwm += kb(text, 'VmHWM');
  }
  return { rss, hwm };
}

function kb(text, key) {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Samples a process tree's resident memory every intervalMs until stopped; the tree is
 * re-read every few samples (nginx may replace a worker).
 */
export function rssSampler(rootPid, intervalMs = 250) {
  let pids = procTree(rootPid);
  let n = 0;
  let peak = memory(pids).rss;
  const timer = setInterval(() => {
    if (++n % 8 === 0) pids = procTree(rootPid);
    peak = Math.max(peak, memory(pids).rss);
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const now = memory(pids);
      return { peakRss: Math.max(peak, now.rss), hwm: now.hwm };
    },
  };
}

/**
 * TCP connections to 127.0.0.1:port seen from the client side (`ss -ti`): local port ->
 * { received, sent } byte counters from the kernel's tcp_info. Counting in the kernel
 * works for any reader (rtmpdump or ours) and counts RTMP bytes as they left the server.
 */
export function clientSockets(port) {
  const r = spawnSync('ss', ['-tinH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8', timeout: 5_000 });
  if (r.status !== 0) throw new Error(`ss failed: ${r.stderr || r.error?.message}`);
  const out = new Map();
  let current = null;
  const head = new RegExp(`127\\.0\\.0\\.1:(\\d+)\\s+127\\.0\\.0\\.1:${port}\\b`);
  for (const line of r.stdout.split('\n')) {
    const h = head.exec(line);
    if (h && !/^\s/.test(line)) {
      current = Number(h[1]);
      out.set(current, { received: 0, sent: 0 });
      continue;
    }
    if (current === null) continue;
    const rec = /bytes_received:(\d+)/.exec(line);
    const snt = /bytes_sent:(\d+)/.exec(line);
    const entry = out.get(current);
    if (rec) entry.received = Number(rec[1]);
    if (snt) entry.sent = Number(snt[1]);
  }
  return out;
}
