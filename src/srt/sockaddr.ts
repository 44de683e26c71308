import { isIPv4, isIPv6 } from 'node:net';
import type { SrtPeer } from './types.js';

/**
 * `struct sockaddr_in` / `sockaddr_in6` on Linux, by hand: koffi hands pointers over as
 * BigInt and has no notion of a socket address (pitfall 6 in docs/notes). Layout, see
 * native/libsrt.md: `sa_family` is a host-order (little-endian on the targets we run on)
 * u16 at 0, the port is big-endian at 2, the IPv4 address at 4..8 (struct size 16), the
 * IPv6 address at 8..24 after a 4-byte flowinfo and before a u32 scope id (struct size 28).
 */
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;

/** Decodes the address libsrt passed us. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is shown as IPv4. */
export function decodeSockaddr(bytes: Uint8Array): SrtPeer | undefined {
  if (bytes.length < SOCKADDR_IN_SIZE) return undefined;
  const family = bytes[0]! | (bytes[1]! << 8);
  const port = (bytes[2]! << 8) | bytes[3]!;
  if (family === AF_INET) {
    return { address: `${bytes[4]}.${bytes[5]}.${bytes[6]}.${bytes[7]}`, port, family: 4 };
  }
  if (family === AF_INET6 && bytes.length >= SOCKADDR_IN6_SIZE) {
    const a = bytes.subarray(8, 24);
    if (isV4Mapped(a)) return { address: `${a[12]}.${a[13]}.${a[14]}.${a[15]}`, port, family: 4 };
    return { address: formatIPv6(a), port, family: 6 };
  }
  return undefined;
}

/** A `sockaddr_in` or `sockaddr_in6` for an IP literal (no host names: resolve them first). */
export function encodeSockaddr(address: string, port: number): Buffer {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid port ${port}`);
  if (isIPv4(address)) {
    const b = Buffer.alloc(SOCKADDR_IN_SIZE);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    address.split('.').forEach((part, i) => b.writeUInt8(Number(part), 4 + i));
    return b;
  }
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const zoneAt = bare.indexOf('%');
  const ip = zoneAt >= 0 ? bare.slice(0, zoneAt) : bare;
  const zone = zoneAt >= 0 ? bare.slice(zoneAt + 1) : '';
  if (!isIPv6(ip)) throw new RangeError(`not an IP address: ${address}`);
  const b = Buffer.alloc(SOCKADDR_IN6_SIZE);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  parseIPv6(ip).forEach((byte, i) => b.writeUInt8(byte, 8 + i));
  // Only numeric zones: an interface name would need if_nametoindex.
  if (/^\d+$/.test(zone)) b.writeUInt32LE(Number(zone), 24);
  return b;
}

function isV4Mapped(a: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}

/** RFC 5952 text: lower-case hex, no leading zeros, the longest run (>= 2) of zero groups as `::`. */
export function formatIPv6(a: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((a[i]! << 8) | a[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(':');
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** 16 bytes of a textual IPv6 address already validated by net.isIPv6 (may embed IPv4). */
function parseIPv6(ip: string): number[] {
  let text = ip;
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    const [p, q, r, t] = last.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((p << 8) | q).toString(16)}:${((r << 8) | t).toString(16)}`;
  }
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const cut = text.indexOf('::');
  const left = parse(cut >= 0 ? text.slice(0, cut) : text);
  const right = cut >= 0 ? parse(text.slice(cut + 2)) : [];
  const zeros = new Array<number>(8 - left.length - right.length).fill(0);
  const out: number[] = [];
  for (const g of [...left, ...zeros, ...right]) out.push(g >> 8, g & 0xff);
  return out;
}
