import { createRequire } from 'node:module';
import type Koffi from 'koffi';
import { FlowrelayError } from '../lib/errors.js';
import { SRT_ERRNO } from './constants.js';
import { SOCKADDR_IN6_SIZE } from './sockaddr.js';

/**
 * libsrt 1.5 through koffi: the functions flowrelay uses, typed. Loading has no side
 * effect on module state; SrtRuntime (one per process) owns what this returns.
 *
 * Buffers and Int32Arrays are passed for `void *` / `int *`: koffi hands C the memory
 * itself (honouring subarray offsets), so what libsrt writes is visible in place.
 */

/** Order matters: the Debian OpenSSL flavour first, then GnuTLS, then anything that claims to be libsrt 1. */
export const LIBSRT_CANDIDATES = ['libsrt.so.1.5', 'libsrt-gnutls.so.1.5', 'libsrt.so.1', 'libsrt.so'] as const;

/** An SRT failure: `code` is the SRT error name (SRT_ECONNREJ, ...), or one of ours (SRT_CLOSED, ...). */
export class SrtError extends FlowrelayError {
  constructor(
    code: string,
    message: string,
    /** SRT_ERRNO value (e.g. 1002), -1 when not from libsrt. */
    readonly srtErrno: number,
    /** srt_getrejectreason for failed connects: < 1000 libsrt's own, >= 1000 the peer application's. */
    readonly rejectReason?: number,
  ) {
    super(code, message);
    this.name = 'SrtError';
  }
}

export function srtErrorName(errno: number): string {
  return SRT_ERRNO[errno] ?? `SRT_E${errno}`;
}

type AsyncCallback<R> = (err: unknown, result: R) => void;
interface AsyncFn<A extends unknown[], R> {
  (...args: A): R;
  async(...args: [...A, AsyncCallback<R>]): void;
}

/** int(void* opaque, SRTSOCKET ns, int hsversion, const struct sockaddr* peeraddr, const char* streamid) */
export type ListenHook = (opaque: bigint | null, ns: number, hsVersion: number, peer: bigint | null, streamId: string | null) => number;

export interface Libsrt {
  /** The file that was loaded (one of LIBSRT_CANDIDATES) and its version, e.g. "1.5.1". */
  readonly file: string;
  readonly version: string;

  srt_startup(): number;
  srt_setloglevel(level: number): void;
  srt_cleanup: AsyncFn<[], number>;
  srt_getversion(): number;
  srt_create_socket(): number;
  srt_bind(u: number, addr: Buffer, len: number): number;
  srt_listen(u: number, backlog: number): number;
  srt_accept(u: number, addr: Buffer, len: Int32Array): number;
  srt_listen_callback(u: number, hook: bigint, opaque: bigint): number;
  srt_connect(u: number, addr: Buffer, len: number): number;
  srt_close: AsyncFn<[number], number>;
  srt_getsockname(u: number, addr: Buffer, len: Int32Array): number;
  srt_getsockflag(u: number, opt: number, value: Buffer, len: Int32Array): number;
  srt_setsockflag(u: number, opt: number, value: Buffer, len: number): number;
  srt_sendmsg2(u: number, buf: Buffer, len: number, mctrl: null): number;
  srt_recvmsg(u: number, buf: Buffer, len: number): number;
  srt_getlasterror(errnoLoc: null): number;
  srt_getlasterror_str(): string;
  srt_bstats(u: number, perf: Buffer, clear: number): number;
  srt_getsockstate(u: number): number;
  srt_epoll_create(): number;
  srt_epoll_add_usock(eid: number, u: number, events: Int32Array): number;
  srt_epoll_update_usock(eid: number, u: number, events: Int32Array): number;
  srt_epoll_remove_usock(eid: number, u: number): number;
  srt_epoll_uwait: AsyncFn<[eid: number, events: Buffer, size: number, msTimeout: number], number>;
  srt_epoll_set(eid: number, flags: number): number;
  srt_epoll_release(eid: number): number;
  srt_getrejectreason(u: number): number;
  srt_setrejectreason(u: number, reason: number): number;
  srt_rejectreason_str(reason: number): string;

  /** A C pointer to `fn` for srt_listen_callback; release with unregisterHook once no call can come. */
  registerListenHook(fn: ListenHook): bigint;
  unregisterHook(hook: bigint): void;
  /** The bytes of the sockaddr libsrt passed to the listen hook (sockaddr_any: at least sizeof sockaddr_in6). */
  readSockaddr(ptr: bigint): Uint8Array;
}

/**
 * dlopen libsrt (first candidate that loads) and declare what we use. Does not call
 * srt_startup: the runtime does, once, and pairs it with srt_cleanup.
 */
export function loadLibsrt(candidates: readonly string[] = LIBSRT_CANDIDATES): Libsrt {
  // Loaded here, not at import: a daemon without SRT never maps koffi's native addon.
  const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
  let lib: ReturnType<typeof koffi.load> | undefined;
  let file = '';
  const failures: string[] = [];
  for (const candidate of candidates) {
    try {
      lib = koffi.load(candidate);
      file = candidate;
      break;
    } catch (err) {
      failures.push(`${candidate}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!lib) {
    throw new FlowrelayError('SRT_UNAVAILABLE', `libsrt 1.5 was not found (install libsrt1.5-openssl): ${failures[0] ?? 'no candidate'}`);
  }

  const f = (decl: string) => lib.func(decl);
  // Anonymous types only: koffi's type names are process-wide and a second runtime (tests) would clash.
  const hookType = koffi.proto('int', ['void *', 'int', 'int', 'const void *', 'const char *']);
  const sockaddrBytes = koffi.array('uint8_t', SOCKADDR_IN6_SIZE, 'Typed');

  const api = {
    file,
    version: '',
    srt_startup: f('int srt_startup(void)'),
    srt_setloglevel: f('void srt_setloglevel(int ll)'),
    srt_cleanup: f('int srt_cleanup(void)'),
    srt_getversion: f('uint32_t srt_getversion(void)'),
    srt_create_socket: f('int srt_create_socket(void)'),
    srt_bind: f('int srt_bind(int u, const void *name, int namelen)'),
    srt_listen: f('int srt_listen(int u, int backlog)'),
    srt_accept: f('int srt_accept(int u, void *addr, int *addrlen)'),
    srt_listen_callback: lib.func('srt_listen_callback', 'int', ['int', koffi.pointer(hookType), 'void *']),
    srt_connect: f('int srt_connect(int u, const void *name, int namelen)'),
    srt_close: f('int srt_close(int u)'),
    srt_getsockname: f('int srt_getsockname(int u, void *name, int *namelen)'),
    srt_getsockflag: f('int srt_getsockflag(int u, int opt, void *optval, int *optlen)'),
    srt_setsockflag: f('int srt_setsockflag(int u, int opt, const void *optval, int optlen)'),
    srt_sendmsg2: f('int srt_sendmsg2(int u, const void *buf, int len, void *mctrl)'),
    srt_recvmsg: f('int srt_recvmsg(int u, void *buf, int len)'),
    srt_getlasterror: f('int srt_getlasterror(int *errno_loc)'),
    srt_getlasterror_str: f('const char *srt_getlasterror_str(void)'),
    srt_bstats: f('int srt_bstats(int u, void *perf, int clear)'),
    srt_getsockstate: f('int srt_getsockstate(int u)'),
    srt_epoll_create: f('int srt_epoll_create(void)'),
    srt_epoll_add_usock: f('int srt_epoll_add_usock(int eid, int u, const int *events)'),
    srt_epoll_update_usock: f('int srt_epoll_update_usock(int eid, int u, const int *events)'),
    srt_epoll_remove_usock: f('int srt_epoll_remove_usock(int eid, int u)'),
    srt_epoll_uwait: f('int srt_epoll_uwait(int eid, void *fdsSet, int fdsSize, int64_t msTimeOut)'),
    srt_epoll_set: f('int32_t srt_epoll_set(int eid, int32_t flags)'),
    srt_epoll_release: f('int srt_epoll_release(int eid)'),
    srt_getrejectreason: f('int srt_getrejectreason(int sock)'),
    srt_setrejectreason: f('int srt_setrejectreason(int sock, int value)'),
    srt_rejectreason_str: f('const char *srt_rejectreason_str(int id)'),
    registerListenHook: (fn: ListenHook) => koffi.register(fn, koffi.pointer(hookType)),
    unregisterHook: (hook: bigint) => koffi.unregister(hook),
    readSockaddr: (ptr: bigint) => koffi.decode(ptr, sockaddrBytes) as Uint8Array,
  } as unknown as Libsrt & { version: string };

  const v = api.srt_getversion();
  const [major, minor, patch] = [(v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  api.version = `${major}.${minor}.${patch}`;
  if (major !== 1 || minor < 5) {
    throw new FlowrelayError('SRT_UNAVAILABLE', `libsrt 1.5 was not found (install libsrt1.5-openssl): ${file} is libsrt ${api.version}`);
  }
  return api;
}

/**
 * The error of the libsrt call that just failed ON THIS THREAD. Only valid right after a
 * synchronous call: srt_getlasterror is thread-local, so after an `.async` call the value
 * belongs to a worker thread (pitfall 3).
 */
export function lastError(lib: Libsrt, what: string): SrtError {
  const errno = lib.srt_getlasterror(null);
  const text = lib.srt_getlasterror_str();
  return new SrtError(srtErrorName(errno), `${what}: ${text}`, errno);
}
