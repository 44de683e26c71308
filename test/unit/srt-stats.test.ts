import { describe, expect, it } from 'vitest';
import { PERFMON } from '../../src/srt/constants.js';
import type { SrtConnection } from '../../src/srt/connection.js';
import { srtTransportStats } from '../../src/srt/srt-stats.js';
import type { SrtStats } from '../../src/srt/types.js';

const stats = (over: Partial<SrtStats>): SrtConnection =>
  ({
    stats: () => ({
      msRTT: 0, mbpsRecvRate: 0, mbpsSendRate: 0, pktRcvLossTotal: 0, pktSndLossTotal: 0, pktRetransTotal: 0, pktRcvRetrans: 0,
      pktRcvDropTotal: 0, pktSndDropTotal: 0, byteRecvTotal: 0, byteSentTotal: 0, msRcvBuf: 0, rcvLatencyMs: 0, peerLatencyMs: 0,
      sendDrops: 0, messagesReceived: 0, bytesReceived: 0, ...over,
    }),
  }) as unknown as SrtConnection;

describe('SRT transport statistics', () => {
  it('count retransmits on both sides: packets an output sent again, and packets an input received again', () => {
    // A receiver's pktRetransTotal is always 0; libsrt counts what it got again in pktRcvRetrans.
    expect(srtTransportStats(stats({ pktRcvRetrans: 142, pktRcvLossTotal: 142 })).packetsRetransmitted).toBe(142);
    expect(srtTransportStats(stats({ pktRetransTotal: 9 })).packetsRetransmitted).toBe(9);
  });

  it('read pktRcvRetrans where libsrt 1.5 puts it (offsetof in CBytePerfMon, from the probe in native/libsrt.md)', () => {
    expect(PERFMON.pktRcvRetrans).toEqual({ offset: 164, type: 'int32' });
  });
});
