import { admitByLists, normalizeAddress, type CidrList } from './cidr.js';

export interface AdmissionLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  allow: CidrList;
  deny: CidrList;
}

export type AdmissionRefusal = 'address_denied' | 'too_many_connections' | 'too_many_from_address';

/** A listener's connections, as the status API and the metrics show them. */
export interface ListenerReport {
  /** 'rtmp' covers the RTMP and RTMPS listeners: they share one set of limits. */
  protocol: 'rtmp' | 'srt';
  addresses: { protocol: string; host: string; port: number }[];
  /** Connections holding a slot now. */
  connections: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** Connections refused since start, by reason. */
  refusals: Record<string, number>;
}

export type AdmissionVerdict = { ok: true; release(): void } | { ok: false; reason: AdmissionRefusal };

/**
 * Who may hold a connection to a listener: the allow/deny lists, then the total and
 * per-address caps. A refusal never touches connections already admitted. Each admitted
 * connection must call `release` exactly once when it closes.
 */
export class ConnectionAdmission {
  private total = 0;
  private readonly perAddress = new Map<string, number>();
  readonly refusals: Record<string, number> = {};

  constructor(private readonly limits: AdmissionLimits) {}

  get open(): number {
    return this.total;
  }

  report(protocol: ListenerReport['protocol'], addresses: ListenerReport['addresses']): ListenerReport {
    return {
      protocol,
      addresses,
      connections: this.total,
      maxConnections: this.limits.maxConnections,
      maxConnectionsPerAddress: this.limits.maxConnectionsPerAddress,
      refusals: { ...this.refusals },
    };
  }

  /**
   * Why a connection from this address would be refused now, or undefined. Counts and
   * holds nothing: SRT asks inside its handshake, and admits only once the connection is
   * up (libsrt may still refuse it after the handshake, and would not say so).
   */
  check(remoteAddress: string | undefined): AdmissionRefusal | undefined {
    const address = normalizeAddress(remoteAddress ?? '');
    if (!admitByLists(address, this.limits.allow, this.limits.deny)) return 'address_denied';
    if (this.total >= this.limits.maxConnections) return 'too_many_connections';
    if ((this.perAddress.get(address) ?? 0) >= this.limits.maxConnectionsPerAddress) return 'too_many_from_address';
    return undefined;
  }

  /** Counts a refusal decided elsewhere (for example by `check` in a handshake). */
  countRefusal(reason: string): void {
    this.refusals[reason] = (this.refusals[reason] ?? 0) + 1;
  }

  admit(remoteAddress: string | undefined): AdmissionVerdict {
    const refusal = this.check(remoteAddress);
    if (refusal) return this.refuse(refusal);
    const address = normalizeAddress(remoteAddress ?? '');
    const mine = this.perAddress.get(address) ?? 0;
    this.total += 1;
    this.perAddress.set(address, mine + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total -= 1;
        const left = (this.perAddress.get(address) ?? 1) - 1;
        if (left === 0) this.perAddress.delete(address);
        else this.perAddress.set(address, left);
      },
    };
  }

  private refuse(reason: AdmissionRefusal): AdmissionVerdict {
    this.countRefusal(reason);
    return { ok: false, reason };
  }
}
