import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * An allow/deny list of IPv4 and IPv6 networks (node's BlockList does the matching).
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack socket reports for IPv4
 * peers) are matched as the IPv4 address they carry, so `10.0.0.0/8` covers them.
 */
export class CidrList {
  private readonly list = new BlockList();
  readonly size: number;

  private constructor(readonly entries: readonly string[]) {
    for (const entry of entries) {
      const { address, prefix, family } = parseCidr(entry);
      this.list.addSubnet(address, prefix, family);
    }
    this.size = entries.length;
  }

  /** Throws an Error naming the bad entry. */
  static parse(entries: readonly string[]): CidrList {
    return new CidrList(entries);
  }

  matches(address: string): boolean {
    const ip = normalizeAddress(address);
    if (isIPv4(ip)) return this.list.check(ip, 'ipv4');
    if (isIPv6(ip)) return this.list.check(ip, 'ipv6');
    return false;
  }
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a single address (a /32 or /128). */
export function parseCidr(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const parts = entry.trim().split('/');
  if (parts.length > 2) throw new Error(`"${entry}" is not an IPv4 or IPv6 address or network (one "/" at most)`);
  const [address = '', prefixText] = parts;
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (!family) throw new Error(`"${entry}" is not an IPv4 or IPv6 address or network`);
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? String(max)) || prefix > max) throw new Error(`"${entry}" has a prefix length outside 0..${max}`);
  return { address, prefix, family };
}

/** IPv4-mapped IPv6 text to plain IPv4; anything else unchanged. */
export function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/**
 * Listener-wide policy: a deny entry always refuses; a non-empty allow list admits only
 * what it matches. Empty lists admit everyone.
 */
export function admitByLists(address: string, allow: CidrList | undefined, deny: CidrList | undefined): boolean {
  if (deny && deny.matches(address)) return false;
  return !allow || allow.size === 0 || allow.matches(address);
}
