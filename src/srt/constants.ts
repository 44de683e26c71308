/**
 * libsrt 1.5 constants we use, each checked against /usr/include/srt/srt.h and
 * access_control.h (libsrt-openssl-dev 1.5.1) by compiling a probe; native/libsrt.md lists
 * them with the probe so they can be re-checked. Nothing here is read from the headers at
 * run time.
 */

/** enum SRT_SOCKOPT */
export const SRTO = {
  SNDSYN: 1,
  RCVSYN: 2,
  LATENCY: 23,
  PASSPHRASE: 26,
  PBKEYLEN: 27,
  CONNTIMEO: 36,
  RCVLATENCY: 43,
  PEERLATENCY: 44,
  STREAMID: 46,
  MESSAGEAPI: 48,
  PAYLOADSIZE: 49,
  TRANSTYPE: 50,
  IPV6ONLY: 54,
} as const;

/** enum SRT_TRANSTYPE */
export const SRTT_LIVE = 0;

/** enum SRT_EPOLL_OPT (level-triggered unless SRT_EPOLL_ET) */
export const SRT_EPOLL_IN = 0x1;
export const SRT_EPOLL_OUT = 0x4;
export const SRT_EPOLL_ERR = 0x8;
/** enum SRT_EPOLL_FLAGS: an empty container waits for the timeout instead of failing. */
export const SRT_EPOLL_ENABLE_EMPTY = 1;

/** enum SRT_SOCKSTATUS */
export const SRTS = {
  INIT: 1,
  OPENED: 2,
  LISTENING: 3,
  CONNECTING: 4,
  CONNECTED: 5,
  BROKEN: 6,
  CLOSING: 7,
  CLOSED: 8,
  NONEXIST: 9,
} as const;

/** enum SRT_ERRNO (1000 * major + minor) */
export const SRT_ERRNO: Readonly<Record<number, string>> = {
  [-1]: 'SRT_EUNKNOWN',
  0: 'SRT_SUCCESS',
  1000: 'SRT_ECONNSETUP',
  1001: 'SRT_ENOSERVER',
  1002: 'SRT_ECONNREJ',
  1003: 'SRT_ESOCKFAIL',
  1004: 'SRT_ESECFAIL',
  1005: 'SRT_ESCLOSED',
  2000: 'SRT_ECONNFAIL',
  2001: 'SRT_ECONNLOST',
  2002: 'SRT_ENOCONN',
  3000: 'SRT_ERESOURCE',
  3001: 'SRT_ETHREAD',
  3002: 'SRT_ENOBUF',
  3003: 'SRT_ESYSOBJ',
  4000: 'SRT_EFILE',
  4001: 'SRT_EINVRDOFF',
  4002: 'SRT_ERDPERM',
  4003: 'SRT_EINVWROFF',
  4004: 'SRT_EWRPERM',
  5000: 'SRT_EINVOP',
  5001: 'SRT_EBOUNDSOCK',
  5002: 'SRT_ECONNSOCK',
  5003: 'SRT_EINVPARAM',
  5004: 'SRT_EINVSOCK',
  5005: 'SRT_EUNBOUNDSOCK',
  5006: 'SRT_ENOLISTEN',
  5007: 'SRT_ERDVNOSERV',
  5008: 'SRT_ERDVUNBOUND',
  5009: 'SRT_EINVALMSGAPI',
  5010: 'SRT_EINVALBUFFERAPI',
  5011: 'SRT_EDUPLISTEN',
  5012: 'SRT_ELARGEMSG',
  5013: 'SRT_EINVPOLLID',
  5014: 'SRT_EPOLLEMPTY',
  5015: 'SRT_EBINDCONFLICT',
  6000: 'SRT_EASYNCFAIL',
  6001: 'SRT_EASYNCSND',
  6002: 'SRT_EASYNCRCV',
  6003: 'SRT_ETIMEOUT',
  6004: 'SRT_ECONGEST',
  7000: 'SRT_EPEERERR',
};

export const SRT_ECONNSETUP = 1000;
export const SRT_ENOSERVER = 1001;
export const SRT_ECONNREJ = 1002;
export const SRT_ESOCKFAIL = 1003;
export const SRT_ECONNLOST = 2001;
export const SRT_EINVPARAM = 5003;
export const SRT_EDUPLISTEN = 5011;
export const SRT_ELARGEMSG = 5012;
export const SRT_EBINDCONFLICT = 5015;
export const SRT_EASYNCSND = 6001;
export const SRT_EASYNCRCV = 6002;
export const SRT_ECONGEST = 6004;

/** enum SRT_REJECT_REASON (internal, < 1000) */
export const SRT_REJ_BADSECRET = 10;
export const SRT_REJ_UNSECURE = 11;
export const SRT_REJ_TIMEOUT = 16;
/** SRT_REJC_PREDEFINED: srt_setrejectreason refuses anything below it. */
export const SRT_REJC_PREDEFINED = 1000;
/** SRT_REJX_FALLBACK */
export const SRT_REJX_FALLBACK = 1000;
/** SRT_REJX_ISE: our own callback failed. */
export const SRT_REJX_ISE = 1500;
/** SRT_REJX_DOWN: the listener is closing. */
export const SRT_REJX_DOWN = 1503;

/** SRT_LIVE_DEF_PLSIZE: the default (and, unless raised, largest) live message. */
export const SRT_LIVE_DEF_PLSIZE = 1316;
/** SRT_LIVE_MAX_PLSIZE: the largest a peer may send us in live mode. */
export const SRT_LIVE_MAX_PLSIZE = 1456;

/** SRTO_STREAMID is at most 512 bytes. */
export const SRT_STREAMID_MAX = 512;

/**
 * struct CBytePerfMon (what srt_bstats fills): sizeof 496 on x86-64; the byte offsets of
 * the fields we read (offsetof, from the probe in native/libsrt.md).
 */
export const PERFMON_SIZE = 496;
export const PERFMON = {
  pktSndLossTotal: { offset: 24, type: 'int32' },
  pktRcvLossTotal: { offset: 28, type: 'int32' },
  pktRetransTotal: { offset: 32, type: 'int32' },
  /** Retransmitted packets received. A "local" field, but never cleared here (srt_bstats with clear 0), so a total. */
  pktRcvRetrans: { offset: 164, type: 'int32' },
  pktSndDropTotal: { offset: 64, type: 'int32' },
  pktRcvDropTotal: { offset: 68, type: 'int32' },
  byteSentTotal: { offset: 80, type: 'uint64' },
  byteRecvTotal: { offset: 88, type: 'uint64' },
  mbpsSendRate: { offset: 184, type: 'double' },
  mbpsRecvRate: { offset: 192, type: 'double' },
  msRTT: { offset: 328, type: 'double' },
  msRcvBuf: { offset: 388, type: 'int32' },
} as const;

/** struct SRT_EPOLL_EVENT { SRTSOCKET fd; int events; }: 8 bytes. */
export const EPOLL_EVENT_SIZE = 8;
