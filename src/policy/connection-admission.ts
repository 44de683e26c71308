import { admitByLists, normalizeAddress, type CidrList } from './cidr.js';

export interface AdmissionLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  allow: CidrList;
  deny: CidrList;
}

export type AdmissionVerdict = { ok: true; release(): void } | { ok: false; reason: 'address_denied' | 'too_many_connections' | 'too_many_from_address' };

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

  admit(remoteAddress: string | undefined): AdmissionVerdict {
    const address = normalizeAddress(remoteAddress ?? '');
    if (!admitByLists(address, this.limits.allow, this.limits.deny)) return this.refuse('address_denied');
    if (this.total >= this.limits.maxConnections) return this.refuse('too_many_connections');
    const mine = this.perAddress.get(address) ?? 0;
    if (mine >= this.limits.maxConnectionsPerAddress) return this.refuse('too_many_from_address');
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

  private refuse(reason: 'address_denied' | 'too_many_connections' | 'too_many_from_address'): AdmissionVerdict {
    this.refusals[reason] = (this.refusals[reason] ?? 0) + 1;
    return { ok: false, reason };
  }
}
