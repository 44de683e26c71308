import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeAmf0, encodeAmf0, type AmfObject, type AmfValue } from '../../src/protocol/amf/amf0.js';
import { ProtocolError } from '../../src/lib/errors.js';
import { protocolError } from '../helpers/protocol-error.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const str = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
const ONE = '3ff0000000000000'; // float64 1.0

/** Structural equality with Object.is for numbers and Date times (NaN, -0), prototype-blind. */
function amfEqual(a: AmfValue, b: AmfValue): boolean {
  if (typeof a === 'number') return typeof b === 'number' && Object.is(a, b);
  if (a instanceof Date) return b instanceof Date && Object.is(a.getTime(), b.getTime());
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => amfEqual(v, b[i]));
  }
  if (a !== null && typeof a === 'object') {
    if (b === null || typeof b !== 'object' || Array.isArray(b) || b instanceof Date) return false;
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && amfEqual(a[k], b[k]));
  }
  return a === b;
}

const amfLeaf: fc.Arbitrary<AmfValue> = fc.oneof(
  fc.double(), // includes NaN, -0, +/-Infinity
  fc.integer(),
  fc.boolean(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constant(null),
  fc.constant(undefined),
  fc.date({ noInvalidDate: false }),
);

const { amfValue } = fc.letrec<{ amfValue: AmfValue }>((tie) => ({
  amfValue: fc.oneof(
    { depthSize: 'small', maxDepth: 6, depthIdentifier: 'amf' },
    amfLeaf,
    fc.array(tie('amfValue'), { maxLength: 6, depthIdentifier: 'amf' }),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 12 }), tie('amfValue'), {
      maxKeys: 6,
      depthIdentifier: 'amf',
    }) as fc.Arbitrary<AmfObject>,
  ),
}));

describe('AMF0 known byte vectors', () => {
  const vectors: Array<[string, AmfValue, string]> = [
    ['number', 1, `00 ${ONE}`],
    ['negative zero', -0, '00 8000000000000000'],
    ['true', true, '01 01'],
    ['false', false, '01 00'],
    ['string', 'ab', '02 0002 6162'],
    ['empty string', '', '02 0000'],
    ['utf-8 string', 'é', '02 0002 c3a9'],
    ['null', null, '05'],
    ['undefined', undefined, '06'],
    ['object', { a: 1 }, `03 0001 61 00 ${ONE} 000009`],
    ['empty object', {}, '03 000009'],
    ['strict array', [1, 'x'], `0a 00000002 00 ${ONE} 02 0001 78`],
    ['date', new Date(0), '0b 0000000000000000 0000'],
  ];
  for (const [name, value, bytes] of vectors) {
    it(`encodes and decodes ${name}`, () => {
      expect(encodeAmf0([value]).toString('hex')).toBe(hex(bytes).toString('hex'));
      const decoded = decodeAmf0(hex(bytes));
      expect(decoded).toHaveLength(1);
      expect(amfEqual(decoded[0], value)).toBe(true);
    });
  }

  it('concatenates several values and decodes until the buffer ends', () => {
    const buf = encodeAmf0(['connect', 1, null]);
    expect(buf.toString('hex')).toBe(hex(`02 0007 ${str('connect')} 00 ${ONE} 05`).toString('hex'));
    expect(decodeAmf0(buf)).toEqual(['connect', 1, null]);
    expect(decodeAmf0(Buffer.alloc(0))).toEqual([]);
  });

  it('encodes strings longer than 65535 UTF-8 bytes as long strings (marker 12)', () => {
    const s = 'é'.repeat(40_000); // 80,000 bytes, 40,000 UTF-16 units
    const buf = encodeAmf0([s]);
    expect(buf[0]).toBe(0x0c);
    expect(buf.readUInt32BE(1)).toBe(80_000);
    expect(decodeAmf0(buf)).toEqual([s]);
    expect(encodeAmf0(['x'.repeat(65_535)])[0]).toBe(0x02);
    expect(encodeAmf0(['x'.repeat(65_536)])[0]).toBe(0x0c);
  });

  it('decodes a short long string', () => {
    expect(decodeAmf0(hex('0c 00000002 6869'))).toEqual(['hi']);
  });

  it('decodes an ECMA array to a plain object and ignores a lying count', () => {
    const body = `0001 61 00 ${ONE} 0001 62 02 0001 63 000009`;
    for (const count of ['00000000', '00000002', 'ffffffff']) {
      const [v] = decodeAmf0(hex(`08 ${count} ${body}`));
      expect(Array.isArray(v)).toBe(false);
      expect({ ...(v as AmfObject) }).toEqual({ a: 1, b: 'c' });
    }
  });

  it('decodes a date with a non-zero time zone field', () => {
    const [d] = decodeAmf0(hex('0b 4270000000000000 fe20'));
    expect(d).toBeInstanceOf(Date);
    expect((d as Date).getTime()).toBe(0x1000000000000 / 16 / 16); // 2^40
  });

  it('reads any non-zero boolean byte as true', () => {
    expect(decodeAmf0(hex('01 02 01 ff 01 00'))).toEqual([true, true, false]);
  });

  it('accepts a property with an empty name (not followed by the end marker)', () => {
    const [v] = decodeAmf0(hex(`03 0000 00 ${ONE} 000009`));
    expect({ ...(v as AmfObject) }).toEqual({ '': 1 });
    expect(amfEqual(decodeAmf0(encodeAmf0([{ '': 1 }]))[0], { '': 1 })).toBe(true);
  });

  it('round trips nested objects and arrays', () => {
    const value: AmfValue = {
      level: 'status',
      code: 'NetStream.Publish.Start',
      nested: { list: [1, 2, [3, { deep: true }]], when: new Date(1_700_000_000_000), none: null, undef: undefined },
      nan: NaN,
      inf: -Infinity,
    };
    const [decoded] = decodeAmf0(encodeAmf0([value]));
    expect(amfEqual(decoded, value)).toBe(true);
  });

  it('skips properties whose value is a function when encoding', () => {
    const withFn = { a: 1, f: () => 1 } as unknown as AmfObject;
    expect(encodeAmf0([withFn]).toString('hex')).toBe(encodeAmf0([{ a: 1 }]).toString('hex'));
  });

  it('refuses to encode cycles and non-AMF types with a ProtocolError', () => {
    const cyclic: AmfObject = {};
    cyclic['self'] = cyclic;
    expect(protocolError(() => encodeAmf0([cyclic])).code).toBe('AMF_UNENCODABLE');
    const arr: AmfValue[] = [];
    arr.push(arr);
    expect(protocolError(() => encodeAmf0([arr])).code).toBe('AMF_UNENCODABLE');
    expect(protocolError(() => encodeAmf0([10n as unknown as AmfValue])).code).toBe('AMF_UNENCODABLE');
    // The same object twice (not a cycle) is fine.
    const shared = { x: 1 };
    expect(() => encodeAmf0([{ a: shared, b: shared }])).not.toThrow();
  });
});

describe('AMF0 prototype safety', () => {
  it('decodes a __proto__ key as an own property without polluting prototypes', () => {
    const inner = `03 0001 78 00 ${ONE} 000009`; // { x: 1 }
    const buf = hex(`03 0009 ${str('__proto__')} ${inner} 0001 79 01 01 000009`);
    const [v] = decodeAmf0(buf);
    const obj = v as AmfObject;
    expect(Object.getPrototypeOf(obj)).toBeNull();
    expect(Object.keys(obj)).toEqual(['__proto__', 'y']);
    expect(Object.prototype.hasOwnProperty.call(obj, '__proto__')).toBe(true);
    expect((obj as Record<string, unknown>)['x']).toBeUndefined();
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
    // ECMA arrays go through the same path.
    const [e] = decodeAmf0(hex(`08 00000001 0009 ${str('__proto__')} ${inner} 000009`));
    expect(Object.getPrototypeOf(e)).toBeNull();
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
    // And it re-encodes as the property it is.
    expect(encodeAmf0([obj]).toString('hex')).toBe(buf.toString('hex'));
  });
});

describe('AMF0 malformed input', () => {
  // One top-level value that contains every type, so every proper prefix is truncated.
  const everything: AmfValue = {
    n: 1.5,
    b: true,
    s: 'hello',
    nul: null,
    u: undefined,
    d: new Date(1_600_000_000_000),
    arr: [1, 'two', { three: 3 }],
    obj: { nested: { deeper: 'yes' } },
    long: 'L'.repeat(70_000),
  };

  it('throws AMF_MALFORMED for every truncation of a valid encoding', () => {
    const full = encodeAmf0([everything]);
    const ecma = hex(`08 00000001 0001 61 02 0001 62 000009`);
    for (const buf of [full, ecma]) {
      for (let k = 1; k < buf.length; k++) {
        // Stride through the long string's bytes: they are all the same case.
        if (buf === full && k > 200 && k < full.length - 200 && k % 997 !== 0) continue;
        const err = protocolError(() => decodeAmf0(buf.subarray(0, k)));
        expect(err.code).toBe('AMF_MALFORMED');
        expect(err.message).toMatch(/offset \d+/);
      }
    }
  });

  it('names what was wrong and where', () => {
    expect(protocolError(() => decodeAmf0(hex('02 0005 6869'))).message).toMatch(/truncated string.*offset 3/);
    expect(protocolError(() => decodeAmf0(hex('00 3ff0'))).message).toMatch(/truncated number.*offset 1/);
    expect(protocolError(() => decodeAmf0(hex('03 0001 61 05'))).message).toMatch(/no object-end marker/);
    expect(protocolError(() => decodeAmf0(hex('05 09'))).message).toMatch(/object-end marker outside an object at offset 1/);
  });

  it('rejects lengths that exceed the buffer without allocating for them', () => {
    expect(protocolError(() => decodeAmf0(hex('0c ffffffff 00'))).code).toBe('AMF_MALFORMED');
    expect(protocolError(() => decodeAmf0(hex('02 ffff 00'))).code).toBe('AMF_MALFORMED');
    expect(protocolError(() => decodeAmf0(hex('03 ffff 61'))).code).toBe('AMF_MALFORMED');
  });

  it('rejects a huge strict-array count against a tiny buffer before building anything', () => {
    const err = protocolError(() => decodeAmf0(hex('0a ffffffff 05 05')));
    expect(err.code).toBe('AMF_MALFORMED');
    expect(err.message).toMatch(/count 4294967295 exceeds the 2 bytes left/);
  });

  it('rejects a strict-array count above maxItems even when the bytes are there', () => {
    const buf = Buffer.concat([hex('0a 00000064'), Buffer.alloc(100, 0x05)]);
    expect(decodeAmf0(buf)[0]).toHaveLength(100);
    expect(protocolError(() => decodeAmf0(buf, { maxItems: 99 })).message).toMatch(/maxItems 99/);
  });

  it('caps total properties and items across the whole buffer', () => {
    const big: AmfObject = {};
    for (let i = 0; i < 3000; i++) big[`k${i}`] = null;
    const two = encodeAmf0([big, big]); // 6000 properties in all
    expect(protocolError(() => decodeAmf0(two)).message).toMatch(/maxItems 4096/);
    expect(decodeAmf0(two, { maxItems: 6000 })).toHaveLength(2);
    expect(protocolError(() => decodeAmf0(two, { maxItems: 5999 })).code).toBe('AMF_MALFORMED');
  });

  it('stops a depth bomb at maxDepth without overflowing the stack', () => {
    const objects = Buffer.concat(Array.from({ length: 100_000 }, () => hex('03 0001 61')));
    const arrays = Buffer.concat(Array.from({ length: 100_000 }, () => hex('0a 00000001')));
    const ecma = Buffer.concat(Array.from({ length: 100_000 }, () => hex('08 00000000 0001 61')));
    for (const bomb of [objects, arrays, ecma]) {
      expect(protocolError(() => decodeAmf0(bomb)).message).toMatch(/maxDepth 16/);
      expect(protocolError(() => decodeAmf0(bomb, { maxDepth: 1e9 })).message).toMatch(/maxDepth 256/);
    }
  });

  it('honours maxDepth exactly', () => {
    const nested = (n: number): AmfValue => (n === 0 ? 1 : { a: nested(n - 1) });
    expect(() => decodeAmf0(encodeAmf0([nested(16)]))).not.toThrow();
    expect(protocolError(() => decodeAmf0(encodeAmf0([nested(17)]))).code).toBe('AMF_MALFORMED');
    expect(() => decodeAmf0(encodeAmf0([nested(2)]), { maxDepth: 2 })).not.toThrow();
    expect(() => decodeAmf0(encodeAmf0([nested(3)]), { maxDepth: 2 })).toThrow(ProtocolError);
    expect(() => decodeAmf0(encodeAmf0([1, 'x']), { maxDepth: 0 })).not.toThrow();
    expect(() => decodeAmf0(encodeAmf0([[]]), { maxDepth: 0 })).toThrow(ProtocolError);
  });

  it('throws AMF_UNSUPPORTED for reference, typed object, movieclip, recordset, xml and AMF3', () => {
    for (const marker of [0x04, 0x07, 0x0d, 0x0e, 0x0f, 0x10, 0x11]) {
      const err = protocolError(() => decodeAmf0(Buffer.from([marker, 0, 0, 0, 0])));
      expect(err.code).toBe('AMF_UNSUPPORTED');
      expect(err.message).toMatch(/offset 0/);
    }
    // Also when nested.
    expect(protocolError(() => decodeAmf0(hex('03 0001 61 07 0000 000009'))).code).toBe('AMF_UNSUPPORTED');
  });

  it('throws AMF_MALFORMED for unknown markers', () => {
    for (const marker of [0x12, 0x20, 0xff]) {
      expect(protocolError(() => decodeAmf0(Buffer.from([marker]))).code).toBe('AMF_MALFORMED');
    }
  });
});

describe('AMF0 properties', () => {
  it('round trips arbitrary value trees', () => {
    fc.assert(
      fc.property(fc.array(amfValue, { maxLength: 4 }), (values) => {
        const decoded = decodeAmf0(encodeAmf0(values), { maxDepth: 64, maxItems: 1e6 });
        return decoded.length === values.length && decoded.every((v, i) => amfEqual(v, values[i]));
      }),
      { seed: 42, numRuns: 2000 },
    );
  });

  const hostileBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
    fc.uint8Array({ maxLength: 256 }),
    // Valid encodings, then truncated and with bytes overwritten, to get past the first marker.
    fc
      .tuple(
        amfValue,
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      )
      .map(([value, cut, edits]) => {
        const bytes = new Uint8Array(encodeAmf0([value]));
        for (const [at, byte] of edits) if (bytes.length > 0) bytes[at % bytes.length] = byte;
        return bytes.subarray(0, bytes.length === 0 ? 0 : cut % (bytes.length + 1));
      }),
  );

  it('either returns or throws ProtocolError on arbitrary bytes', () => {
    fc.assert(
      fc.property(hostileBytes, (bytes) => {
        try {
          decodeAmf0(Buffer.from(bytes));
        } catch (err) {
          return err instanceof ProtocolError;
        }
        return true;
      }),
      { seed: 42, numRuns: 2000 },
    );
  });
});
