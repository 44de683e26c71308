import { describe, expect, it } from 'vitest';
import { AF_INET, AF_INET6, decodeSockaddr, encodeSockaddr, formatIPv6, SOCKADDR_IN6_SIZE, SOCKADDR_IN_SIZE } from '../../src/srt/sockaddr.js';

/** Bytes as Linux lays them out (x86-64): family host-order u16, port big-endian. */
function sockaddrIn(ip: number[], port: number): Uint8Array {
  const b = new Uint8Array(SOCKADDR_IN6_SIZE); // libsrt's sockaddr_any is at least this long
  b[0] = AF_INET;
  b[2] = port >> 8;
  b[3] = port & 0xff;
  b.set(ip, 4);
  return b;
}

function sockaddrIn6(ip: number[], port: number, scope = 0): Uint8Array {
  const b = new Uint8Array(SOCKADDR_IN6_SIZE);
  b[0] = AF_INET6;
  b[2] = port >> 8;
  b[3] = port & 0xff;
  b.set(ip, 8);
  new DataView(b.buffer).setUint32(24, scope, true);
  return b;
}

describe('decodeSockaddr', () => {
  it('decodes IPv4 with a big-endian port', () => {
    expect(decodeSockaddr(sockaddrIn([127, 0, 0, 1], 9000))).toEqual({ address: '127.0.0.1', port: 9000, family: 4 });
    expect(decodeSockaddr(sockaddrIn([198, 51, 100, 254], 0xfffe))).toEqual({ address: '198.51.100.254', port: 65534, family: 4 });
    // A bare 16-byte sockaddr_in is enough for IPv4.
    expect(decodeSockaddr(sockaddrIn([10, 1, 2, 3], 1).subarray(0, SOCKADDR_IN_SIZE))).toEqual({ address: '10.1.2.3', port: 1, family: 4 });
  });

  it('decodes IPv6 to RFC 5952 text', () => {
    const loop = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    expect(decodeSockaddr(sockaddrIn6(loop, 443))).toEqual({ address: '::1', port: 443, family: 6 });
    const doc = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0xbc, 0, 0x01];
    expect(decodeSockaddr(sockaddrIn6(doc, 9000))).toEqual({ address: '2001:db8::abc:1', port: 9000, family: 6 });
    const full = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6];
    expect(decodeSockaddr(sockaddrIn6(full, 1))!.address).toBe('2001:db8:1:2:3:4:5:6');
    expect(decodeSockaddr(sockaddrIn6(new Array(16).fill(0), 1))!.address).toBe('::');
  });

  it('shows an IPv4-mapped IPv6 peer as IPv4', () => {
    const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 33];
    expect(decodeSockaddr(sockaddrIn6(mapped, 5000))).toEqual({ address: '192.0.2.33', port: 5000, family: 4 });
  });

  it('rejects unknown families and short buffers', () => {
    const b = sockaddrIn([1, 2, 3, 4], 5);
    b[0] = 1; // AF_UNIX
    expect(decodeSockaddr(b)).toBeUndefined();
    expect(decodeSockaddr(new Uint8Array(8))).toBeUndefined();
    expect(decodeSockaddr(sockaddrIn6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 1).subarray(0, 20))).toBeUndefined();
  });
});

describe('formatIPv6', () => {
  it('compresses the longest zero run, the first of equal runs, and never a single group', () => {
    const groups = (g: number[]) => new Uint8Array(g.flatMap((x) => [x >> 8, x & 0xff]));
    expect(formatIPv6(groups([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]))).toBe('2001:db8::1:0:0:1');
    expect(formatIPv6(groups([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]))).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIPv6(groups([0x2001, 0, 0, 1, 0, 0, 0, 1]))).toBe('2001:0:0:1::1');
    expect(formatIPv6(groups([0xfe80, 0, 0, 0, 0, 0, 0, 0]))).toBe('fe80::');
  });
});

describe('encodeSockaddr', () => {
  it('round-trips IPv4 and IPv6, including v4-embedded text and brackets', () => {
    const v4 = encodeSockaddr('127.0.0.1', 9000);
    expect(v4.length).toBe(SOCKADDR_IN_SIZE);
    expect(v4.readUInt16LE(0)).toBe(AF_INET);
    expect(v4.readUInt16BE(2)).toBe(9000);
    expect(decodeSockaddr(v4)).toEqual({ address: '127.0.0.1', port: 9000, family: 4 });

    for (const text of ['::1', '2001:db8::abc:1', '::', 'fe80::1:2', '2001:db8:1:2:3:4:5:6']) {
      const b = encodeSockaddr(text, 1234);
      expect(b.length).toBe(SOCKADDR_IN6_SIZE);
      expect(decodeSockaddr(b)).toEqual({ address: text, port: 1234, family: 6 });
    }
    expect(decodeSockaddr(encodeSockaddr('[::1]', 80))).toEqual({ address: '::1', port: 80, family: 6 });
    expect(decodeSockaddr(encodeSockaddr('::ffff:10.0.0.7', 80))).toEqual({ address: '10.0.0.7', port: 80, family: 4 });
    expect(decodeSockaddr(encodeSockaddr('64:ff9b::192.0.2.1', 80))!.address).toBe('64:ff9b::c000:201');
    expect(encodeSockaddr('fe80::1%3', 1).readUInt32LE(24)).toBe(3);
  });

  it('refuses host names and bad ports', () => {
    expect(() => encodeSockaddr('localhost', 1)).toThrow(/not an IP/);
    expect(() => encodeSockaddr('127.0.0.1', 70000)).toThrow(/port/);
  });
});
