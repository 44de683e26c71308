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
    // Sent again by us (outputs) or received again from the sender (inputs): libsrt counts
    // the two apart, and an input's own pktRetransTotal is always 0.
    packetsRetransmitted: s.pktRetransTotal + s.pktRcvRetrans,
    packetsDroppedReceiving: s.pktRcvDropTotal,
    packetsDroppedSending: s.pktSndDropTotal,
    messagesRefusedSending: s.sendDrops,
    latencyMs: s.rcvLatencyMs,
    peerLatencyMs: s.peerLatencyMs,
  };
}
