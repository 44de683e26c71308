/**
 * AMF0 (Adobe "Action Message Format -- AMF 0", 2006), the encoding of RTMP command and
 * data messages. Sans-I/O: Buffers in, values out.
 *
 * The decoder treats every byte as hostile: every length is checked against the bytes
 * that remain before anything is allocated, nesting is bounded (so recursion cannot
 * overflow the stack), the total number of properties and items is capped, and every
 * violation is a ProtocolError -- never a RangeError from a Buffer read.
 */
import { ProtocolError } from '../../lib/errors.js';

export type AmfValue = number | boolean | string | null | undefined | Date | AmfValue[] | AmfObject;
export interface AmfObject {
  [key: string]: AmfValue;
}
export interface AmfLimits {
  /** Maximum container (object / ECMA array / strict array) nesting. Default 16. */
  maxDepth?: number;
  /** Total object properties + array items across the whole buffer. Default 4096. */
  maxItems?: number;
}

// Type markers, AMF0 spec section 2.1.
const NUMBER = 0x00;
const BOOLEAN = 0x01;
const STRING = 0x02;
const OBJECT = 0x03;
const MOVIECLIP = 0x04;
const NULL = 0x05;
const UNDEFINED = 0x06;
const REFERENCE = 0x07;
const ECMA_ARRAY = 0x08;
const OBJECT_END = 0x09;
const STRICT_ARRAY = 0x0a;
const DATE = 0x0b;
const LONG_STRING = 0x0c;
const UNSUPPORTED = 0x0d;
const RECORDSET = 0x0e;
const XML_DOCUMENT = 0x0f;
const TYPED_OBJECT = 0x10;
const AVMPLUS = 0x11;

const UNSUPPORTED_NAMES: Readonly<Record<number, string>> = {
  [MOVIECLIP]: 'movieclip',
  [REFERENCE]: 'reference',
  [UNSUPPORTED]: 'unsupported',
  [RECORDSET]: 'recordset',
  [XML_DOCUMENT]: 'xml-document',
  [TYPED_OBJECT]: 'typed-object',
  [AVMPLUS]: 'avmplus (AMF3 switch)',
};

const DEFAULT_MAX_DEPTH = 16;
const DEFAULT_MAX_ITEMS = 4096;
/** Recursion bound whatever the caller asks for: the decoder and encoder recurse per level. */
const HARD_MAX_DEPTH = 256;

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

interface Cursor {
  readonly buf: Buffer;
  pos: number;
  items: number;
  readonly maxItems: number;
  readonly maxDepth: number;
}

function malformed(what: string, offset: number): ProtocolError {
  return new ProtocolError('AMF_MALFORMED', `AMF0: ${what} at offset ${offset}`);
}

function need(c: Cursor, n: number, what: string): void {
  const have = c.buf.length - c.pos;
  if (have < n) throw malformed(`truncated ${what} (need ${n} bytes, have ${have})`, c.pos);
}

function clampLimit(value: number | undefined, fallback: number, hardMax: number): number {
  if (value === undefined || Number.isNaN(value)) return fallback;
  return Math.max(0, Math.min(Math.floor(value), hardMax));
}

/** Decodes consecutive AMF0 values until the buffer ends. */
export function decodeAmf0(buf: Buffer, limits: AmfLimits = {}): AmfValue[] {
  const c: Cursor = {
    buf,
    pos: 0,
    items: 0,
    maxDepth: clampLimit(limits.maxDepth, DEFAULT_MAX_DEPTH, HARD_MAX_DEPTH),
    maxItems: clampLimit(limits.maxItems, DEFAULT_MAX_ITEMS, Number.MAX_SAFE_INTEGER),
  };
  const out: AmfValue[] = [];
  // Each top-level value consumes at least its marker byte, so this loop is bounded.
  while (c.pos < buf.length) out.push(readValue(c, 0));
  return out;
}

/** `level` is the number of containers enclosing the value being read. */
function readValue(c: Cursor, level: number): AmfValue {
  const at = c.pos;
  need(c, 1, 'type marker');
  const marker = c.buf[c.pos] as number;
  c.pos += 1;
  switch (marker) {
    case NUMBER: {
      need(c, 8, 'number');
      const v = c.buf.readDoubleBE(c.pos);
      c.pos += 8;
      return v;
    }
    case BOOLEAN: {
      need(c, 1, 'boolean');
      const v = c.buf[c.pos] !== 0;
      c.pos += 1;
      return v;
    }
    case STRING: {
      need(c, 2, 'string length');
      const len = c.buf.readUInt16BE(c.pos);
      c.pos += 2;
      return readUtf8(c, len, 'string');
    }
    case LONG_STRING: {
      need(c, 4, 'long string length');
      const len = c.buf.readUInt32BE(c.pos);
      c.pos += 4;
      return readUtf8(c, len, 'long string');
    }
    case NULL:
      return null;
    case UNDEFINED:
      return undefined;
    case OBJECT:
      enterContainer(c, level, at);
      return readProperties(c, level + 1, at, 'object');
    case ECMA_ARRAY:
      enterContainer(c, level, at);
      // Section 2.10: the u32 is only a hint (encoders get it wrong); the 00 00 09
      // terminator is what ends the array, so the count is skipped, never allocated for.
      need(c, 4, 'ECMA array count');
      c.pos += 4;
      return readProperties(c, level + 1, at, 'ECMA array');
    case STRICT_ARRAY:
      enterContainer(c, level, at);
      return readStrictArray(c, level + 1, at);
    case DATE: {
      // Section 2.13: float64 ms since epoch, then s16 time zone (reserved, "should be 0").
      need(c, 10, 'date');
      const ms = c.buf.readDoubleBE(c.pos);
      c.pos += 10;
      return new Date(ms);
    }
    case OBJECT_END:
      throw malformed('object-end marker outside an object', at);
    default: {
      const name = UNSUPPORTED_NAMES[marker];
      if (name !== undefined) {
        throw new ProtocolError('AMF_UNSUPPORTED', `AMF0: unsupported ${name} marker 0x${hex(marker)} at offset ${at}`);
      }
      throw malformed(`unknown type marker 0x${hex(marker)}`, at);
    }
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function enterContainer(c: Cursor, level: number, at: number): void {
  if (level + 1 > c.maxDepth) throw malformed(`nesting deeper than maxDepth ${c.maxDepth}`, at);
}

function countItem(c: Cursor, at: number): void {
  c.items += 1;
  if (c.items > c.maxItems) throw malformed(`more than maxItems ${c.maxItems} properties and items`, at);
}

function readUtf8(c: Cursor, len: number, what: string): string {
  need(c, len, what);
  const s = c.buf.toString('utf8', c.pos, c.pos + len);
  c.pos += len;
  return s;
}

/** Object (2.5) and ECMA array (2.10) bodies: UTF-8 key / value pairs up to 00 00 09. */
function readProperties(c: Cursor, level: number, start: number, what: string): AmfObject {
  // A null prototype means a "__proto__" key is just an own property: no pollution.
  const obj = Object.create(null) as AmfObject;
  for (;;) {
    const at = c.pos;
    if (at >= c.buf.length) throw malformed(`${what} starting at offset ${start} has no object-end marker`, at);
    need(c, 2, `${what} property name length`);
    const keyLen = c.buf.readUInt16BE(c.pos);
    c.pos += 2;
    if (keyLen === 0) {
      if (c.pos >= c.buf.length) throw malformed(`${what} starting at offset ${start} has no object-end marker`, c.pos);
      if (c.buf[c.pos] === OBJECT_END) {
        c.pos += 1;
        return obj;
      }
      // An empty key followed by any other marker is a legal property named "".
    }
    const key = readUtf8(c, keyLen, `${what} property name`);
    countItem(c, at);
    obj[key] = readValue(c, level);
  }
}

function readStrictArray(c: Cursor, level: number, start: number): AmfValue[] {
  need(c, 4, 'strict array count');
  const count = c.buf.readUInt32BE(c.pos);
  c.pos += 4;
  // Every item takes at least one byte (its marker), so a count larger than what is
  // left is a lie; check it and the item cap before building anything.
  const remaining = c.buf.length - c.pos;
  if (count > remaining) {
    throw malformed(`strict array count ${count} exceeds the ${remaining} bytes left`, start);
  }
  if (count > c.maxItems - c.items) {
    throw malformed(`strict array count ${count} exceeds maxItems ${c.maxItems}`, start);
  }
  const arr: AmfValue[] = [];
  for (let i = 0; i < count; i++) {
    countItem(c, c.pos);
    arr.push(readValue(c, level));
  }
  return arr;
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

class Writer {
  private buf = Buffer.alloc(256);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len] = v;
    this.len += 1;
  }

  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.len);
    this.len += 2;
  }

  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.len);
    this.len += 4;
  }

  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.len);
    this.len += 8;
  }

  utf8(s: string, byteLength: number): void {
    this.ensure(byteLength);
    this.buf.write(s, this.len, byteLength, 'utf8');
    this.len += byteLength;
  }

  result(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

function unencodable(what: string): ProtocolError {
  return new ProtocolError('AMF_UNENCODABLE', `AMF0: cannot encode ${what}`);
}

/** Encodes each value in turn and concatenates the results. */
export function encodeAmf0(values: readonly AmfValue[]): Buffer {
  const w = new Writer();
  const ancestors = new Set<object>();
  for (const v of values) writeValue(w, v, ancestors);
  return w.result();
}

function writeValue(w: Writer, v: AmfValue, ancestors: Set<object>): void {
  switch (typeof v) {
    case 'number':
      w.u8(NUMBER);
      w.f64(v);
      return;
    case 'boolean':
      w.u8(BOOLEAN);
      w.u8(v ? 1 : 0);
      return;
    case 'string': {
      const n = Buffer.byteLength(v, 'utf8');
      if (n <= 0xffff) {
        w.u8(STRING);
        w.u16(n);
      } else {
        // Section 2.14: strings that do not fit a u16 length go out as long strings.
        w.u8(LONG_STRING);
        w.u32(n);
      }
      w.utf8(v, n);
      return;
    }
    case 'undefined':
      w.u8(UNDEFINED);
      return;
    case 'object':
      break;
    default:
      throw unencodable(`a value of type ${typeof v}`);
  }
  if (v === null) {
    w.u8(NULL);
    return;
  }
  if (v instanceof Date) {
    w.u8(DATE);
    w.f64(v.getTime());
    w.u16(0); // time zone: reserved, 0 per section 2.13
    return;
  }
  if (ancestors.has(v)) throw unencodable('a cyclic structure');
  if (ancestors.size >= HARD_MAX_DEPTH) throw unencodable(`nesting deeper than ${HARD_MAX_DEPTH}`);
  ancestors.add(v);
  if (Array.isArray(v)) {
    w.u8(STRICT_ARRAY);
    w.u32(v.length);
    for (let i = 0; i < v.length; i++) writeValue(w, v[i], ancestors);
  } else {
    w.u8(OBJECT);
    for (const key of Object.keys(v)) {
      const prop: unknown = v[key];
      if (typeof prop === 'function') continue;
      const n = Buffer.byteLength(key, 'utf8');
      if (n > 0xffff) throw unencodable(`a property name of ${n} bytes`);
      w.u16(n);
      w.utf8(key, n);
      writeValue(w, prop as AmfValue, ancestors);
    }
    w.u16(0);
    w.u8(OBJECT_END);
  }
  ancestors.delete(v);
}
