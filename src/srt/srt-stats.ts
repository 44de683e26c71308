import type { TransportStats } from '../core/flow-parts.js';
import type { SrtConnection } from './connection.js';

/** The SRT statistics operators watch, named for the status output. */
export function srtTransportStats(connection: SrtConnection): TransportStats {
  const s = connection.stats();
  return {
    rttMs: s.msRTT,
    receiveRateMbps: s.mbpsRecvRate,
    sendRateMbps: s.mbpsSendRate,
    packetsLostReceiving: s.pktRcvLossTotal,
    packetsLostSending: s.pktSndLossTotal,
    packetsRetransmitted: s.pktRetransTotal,
    packetsDroppedReceiving: s.pktRcvDropTotal,
    packetsDroppedSending: s.pktSndDropTotal,
    messagesRefusedSending: s.sendDrops,
    latencyMs: s.rcvLatencyMs,
    peerLatencyMs: s.peerLatencyMs,
  };
}
