import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeAmf3Command,
  decodeCommand,
  decodeDataMessage,
  encodeCommand,
  stripSetDataFrame,
  type RtmpCommand,
} from '../../src/protocol/rtmp/command.js';
import { decodeAmf0, encodeAmf0, type AmfObject, type AmfValue } from '../../src/protocol/amf/amf0.js';
import { ProtocolError } from '../../src/lib/errors.js';
import { protocolError } from '../helpers/protocol-error.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const str = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
/** AMF0 string value: marker 02, u16 length, UTF-8 bytes. */
const amfStr = (s: string): string => `02 ${Buffer.byteLength(s).toString(16).padStart(4, '0')} ${str(s)}`;
/** Object property name: u16 length, UTF-8 bytes. */
const key = (s: string): string => `${s.length.toString(16).padStart(4, '0')} ${str(s)}`;

/** Plain-object view of decoded (null-prototype) objects, recursively, for toEqual. */
function plain(v: AmfValue): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

// The connect command OBS/FMLE-style encoders send first (RTMP spec 7.2.1.1).
const CONNECT_BYTES = hex(`
  ${amfStr('connect')}
  00 3ff0000000000000
  03
    ${key('app')} ${amfStr('live')}
    ${key('type')} ${amfStr('nonprivate')}
    ${key('flashVer')} ${amfStr('FMLE/3.0 (compatible; FMSc/1.0)')}
    ${key('tcUrl')} ${amfStr('rtmp://localhost/live')}
  000009
`);
const CONNECT: RtmpCommand = {
  name: 'connect',
  transactionId: 1,
  commandObject: {
    app: 'live',
    type: 'nonprivate',
    flashVer: 'FMLE/3.0 (compatible; FMSc/1.0)',
    tcUrl: 'rtmp://localhost/live',
  },
  args: [],
};

describe('RTMP command messages', () => {
  it('encodes connect to the exact bytes encoders send', () => {
    expect(encodeCommand(CONNECT).toString('hex')).toBe(CONNECT_BYTES.toString('hex'));
  });

  it('decodes connect', () => {
    const cmd = decodeCommand(CONNECT_BYTES);
    expect(plain(cmd as unknown as AmfObject)).toEqual(CONNECT);
  });

  it('encodes and decodes publish with null command object and arguments', () => {
    const publish: RtmpCommand = { name: 'publish', transactionId: 5, commandObject: null, args: ['streamKey', 'live'] };
    const bytes = encodeCommand(publish);
    expect(bytes.toString('hex')).toBe(
      hex(`${amfStr('publish')} 00 4014000000000000 05 ${amfStr('streamKey')} ${amfStr('live')}`).toString('hex'),
    );
    expect(decodeCommand(bytes)).toEqual(publish);
  });

  it('round trips an _result with an info object', () => {
    const result: RtmpCommand = {
      name: '_result',
      transactionId: 1,
      commandObject: { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
      args: [{ level: 'status', code: 'NetConnection.Connect.Success', description: 'ok', objectEncoding: 0 }],
    };
    expect(plain(decodeCommand(encodeCommand(result)) as unknown as AmfObject)).toEqual(result);
  });

  it('reports a missing command object as null', () => {
    const cmd = decodeCommand(encodeAmf0(['onBWDone', 0]));
    expect(cmd).toEqual({ name: 'onBWDone', transactionId: 0, commandObject: null, args: [] });
  });

  it('rejects a first value that is not a string, or a second that is not a number', () => {
    for (const values of [[1, 1], [null], [], [{ name: 'x' }, 1]] as AmfValue[][]) {
      expect(protocolError(() => decodeCommand(encodeAmf0(values))).code).toBe('RTMP_BAD_COMMAND');
    }
    for (const values of [['connect'], ['connect', '1'], ['connect', null, {}]] as AmfValue[][]) {
      const err = protocolError(() => decodeCommand(encodeAmf0(values)));
      expect(err.code).toBe('RTMP_BAD_COMMAND');
      expect(err.message).toMatch(/transaction id of command 'connect'/);
    }
  });

  it('passes AMF errors through as ProtocolErrors', () => {
    expect(protocolError(() => decodeCommand(CONNECT_BYTES.subarray(0, 40))).code).toBe('AMF_MALFORMED');
    expect(protocolError(() => decodeCommand(hex(`${amfStr('x')} 00 3ff0000000000000 11 0a`))).code).toBe(
      'AMF_UNSUPPORTED',
    );
  });

  it('throws only ProtocolError for every truncation of connect', () => {
    // Cut right after the transaction id, what is left is a valid command without an object.
    const nameAndId = 3 + 'connect'.length + 9;
    expect(decodeCommand(CONNECT_BYTES.subarray(0, nameAndId)).commandObject).toBeNull();
    for (let k = 0; k < CONNECT_BYTES.length; k++) {
      if (k === nameAndId) continue;
      expect(protocolError(() => decodeCommand(CONNECT_BYTES.subarray(0, k)))).toBeInstanceOf(ProtocolError);
    }
  });
});

describe('AMF3 command messages (type 17)', () => {
  it('skips the leading format byte and decodes AMF0', () => {
    const payload = Buffer.concat([Buffer.from([0x00]), CONNECT_BYTES]);
    expect(plain(decodeAmf3Command(payload) as unknown as AmfObject)).toEqual(CONNECT);
  });

  it('accepts a payload from a client that left the format byte out', () => {
    expect(plain(decodeAmf3Command(CONNECT_BYTES) as unknown as AmfObject)).toEqual(CONNECT);
  });

  it('rejects an empty payload or an unknown format byte', () => {
    expect(protocolError(() => decodeAmf3Command(Buffer.alloc(0))).code).toBe('RTMP_BAD_COMMAND');
    expect(protocolError(() => decodeAmf3Command(Buffer.from([0x00]))).code).toBe('RTMP_BAD_COMMAND');
    expect(protocolError(() => decodeAmf3Command(Buffer.concat([hex('03'), CONNECT_BYTES]))).code).toBe(
      'RTMP_BAD_COMMAND',
    );
  });
});

// '@setDataFrame' 'onMetaData' <ECMA array, count hint 3> as OBS and ffmpeg send it.
const META_ECMA = hex(`
  08 00000003
    ${key('width')} 00 4094000000000000
    ${key('height')} 00 4086800000000000
    ${key('encoder')} ${amfStr('obs-output module')}
  000009
`);
const ON_META_DATA = hex(`${amfStr('onMetaData')} ${META_ECMA.toString('hex')}`);
const SET_DATA_FRAME = Buffer.concat([hex(amfStr('@setDataFrame')), ON_META_DATA]);

describe('data messages', () => {
  it('decodes a data message name and values', () => {
    const msg = decodeDataMessage(SET_DATA_FRAME);
    expect(msg.name).toBe('@setDataFrame');
    expect(plain(msg.values)).toEqual(['onMetaData', { width: 1280, height: 720, encoder: 'obs-output module' }]);
  });

  it('rejects a data message whose first value is not a string', () => {
    expect(protocolError(() => decodeDataMessage(encodeAmf0([1, 'x']))).code).toBe('RTMP_BAD_DATA');
    expect(protocolError(() => decodeDataMessage(Buffer.alloc(0))).code).toBe('RTMP_BAD_DATA');
  });

  it('strips @setDataFrame by slicing, keeping the ECMA array bytes as sent', () => {
    const stripped = stripSetDataFrame(SET_DATA_FRAME);
    expect(stripped.toString('hex')).toBe(ON_META_DATA.toString('hex'));
    expect(stripped.buffer).toBe(SET_DATA_FRAME.buffer); // a view, not a copy
    expect(stripped[13]).toBe(0x08); // still an ECMA array marker after 'onMetaData'
    const msg = decodeDataMessage(stripped);
    expect(msg.name).toBe('onMetaData');
    expect(plain(msg.values)).toEqual([{ width: 1280, height: 720, encoder: 'obs-output module' }]);
  });

  it('returns any other payload unchanged, as the same Buffer', () => {
    const others = [
      ON_META_DATA,
      Buffer.alloc(0),
      hex(amfStr('@setDataFrame')), // nothing after it
      Buffer.concat([hex(amfStr('@setDataFrameX')), ON_META_DATA]),
      Buffer.concat([hex(amfStr('@setDataFrame')), hex('05')]), // not followed by a string
      Buffer.concat([hex(`02 000d ${str('@setDataFrAme')}`), ON_META_DATA]),
      encodeAmf0(['onCuePoint', { name: 'x' }]),
    ];
    for (const payload of others) expect(stripSetDataFrame(payload)).toBe(payload);
  });
});

// A compact AmfValue arbitrary (the AMF0 suite has the full one).
const { amfValue } = fc.letrec<{ amfValue: AmfValue }>((tie) => ({
  amfValue: fc.oneof(
    { depthSize: 'small', maxDepth: 4, depthIdentifier: 'cmd' },
    fc.oneof(fc.integer(), fc.boolean(), fc.string({ maxLength: 20 }), fc.constant(null), fc.constant(undefined)),
    fc.array(tie('amfValue'), { maxLength: 4, depthIdentifier: 'cmd' }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('amfValue'), { maxKeys: 4, depthIdentifier: 'cmd' }) as fc.Arbitrary<AmfObject>,
  ),
}));

const onlyProtocolErrors = (fn: () => unknown): boolean => {
  try {
    fn();
  } catch (err) {
    return err instanceof ProtocolError;
  }
  return true;
};

describe('command properties', () => {
  it('round trips arbitrary commands', () => {
    fc.assert(
      fc.property(
        fc.record({
          name: fc.string({ unit: 'binary', maxLength: 30 }),
          transactionId: fc.oneof(fc.nat(), fc.double({ noNaN: true })),
          commandObject: amfValue,
          args: fc.array(amfValue, { maxLength: 4 }),
        }),
        (cmd) => {
          const back = decodeCommand(encodeCommand(cmd));
          expect(plain(back as unknown as AmfObject)).toEqual(plain(cmd as unknown as AmfObject));
          expect(Object.is(back.transactionId, cmd.transactionId)).toBe(true);
        },
      ),
      { seed: 42, numRuns: 2000 },
    );
  });

  const hostile: fc.Arbitrary<Buffer> = fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    // A valid name and transaction id, so the rest of the payload gets exercised.
    fc
      .tuple(fc.constantFrom(0, 1, 2), fc.uint8Array({ maxLength: 200 }))
      .map(([prefix, tail]) =>
        Buffer.concat([
          [Buffer.alloc(0), encodeAmf0(['connect', 1]), Buffer.concat([hex('00'), encodeAmf0(['play', 0])])][prefix]!,
          Buffer.from(tail),
        ]),
      ),
  );

  it('decoders either return or throw ProtocolError on arbitrary bytes', () => {
    fc.assert(
      fc.property(hostile, (buf) => {
        expect(onlyProtocolErrors(() => decodeCommand(buf))).toBe(true);
        expect(onlyProtocolErrors(() => decodeAmf3Command(buf))).toBe(true);
        expect(onlyProtocolErrors(() => decodeDataMessage(buf))).toBe(true);
        const stripped = stripSetDataFrame(buf);
        expect(stripped === buf || stripped.length === buf.length - 16).toBe(true);
      }),
      { seed: 42, numRuns: 2000 },
    );
  });

  it('stripSetDataFrame output decodes to the input minus its first value', () => {
    fc.assert(
      fc.property(fc.array(amfValue, { maxLength: 3 }), (rest) => {
        const payload = encodeAmf0(['@setDataFrame', 'onMetaData', ...rest]);
        const stripped = stripSetDataFrame(payload);
        expect(plain(decodeAmf0(stripped))).toEqual(plain(['onMetaData', ...rest]));
      }),
      { seed: 42, numRuns: 2000 },
    );
  });
});

describe('decodeCommand options', () => {
  it('reads a missing transaction id as 0 only when asked (clients reading server notifications)', () => {
    const bare = encodeAmf0(['onFCPublish']);
    expect(() => decodeCommand(bare)).toThrow(/transaction id/);
    expect(decodeCommand(bare, { missingTransactionIdAsZero: true })).toEqual({ name: 'onFCPublish', transactionId: 0, commandObject: null, args: [] });
    expect(decodeAmf3Command(Buffer.concat([Buffer.from([0]), bare]), { missingTransactionIdAsZero: true }).transactionId).toBe(0);
  });
});
