/**
 * RTMP command (types 20 and 17) and data (type 18) messages: AMF0 value sequences with
 * a fixed leading shape (RTMP spec 1.0, section 7.1.1 and 7.2). Sans-I/O.
 */
import { decodeAmf0, encodeAmf0, type AmfValue } from '../amf/amf0.js';
import { ProtocolError } from '../../lib/errors.js';

export interface RtmpCommand {
  name: string;
  transactionId: number;
  /** `null` when the message carries no third value. */
  commandObject: AmfValue;
  args: AmfValue[];
}

export interface DataMessage {
  name: string;
  values: AmfValue[];
}

export interface DecodeCommandOptions {
  /**
   * Servers send notifications without a transaction id (ffmpeg's RTMP server sends
   * onFCPublish as a bare name). A client may read a missing id as 0, since such
   * notifications need no answer; a server keeps the strict default.
   */
  missingTransactionIdAsZero?: boolean;
}

/** AMF0 command message (type 20): name, transaction id, command object, arguments. */
export function decodeCommand(payload: Buffer, options: DecodeCommandOptions = {}): RtmpCommand {
  const values = decodeAmf0(payload);
  const name = values[0];
  if (typeof name !== 'string') {
    throw new ProtocolError('RTMP_BAD_COMMAND', `command name is ${describe(values, 0)}, not a string`);
  }
  let transactionId = values[1];
  if (transactionId === undefined && options.missingTransactionIdAsZero) transactionId = 0;
  if (typeof transactionId !== 'number') {
    throw new ProtocolError(
      'RTMP_BAD_COMMAND',
      `transaction id of command '${truncate(name)}' is ${describe(values, 1)}, not a number`,
    );
  }
  return {
    name,
    transactionId,
    commandObject: values.length > 2 ? values[2] : null,
    args: values.slice(3),
  };
}

const AMF3_FORMAT_AMF0 = 0x00;
const AMF0_STRING_MARKER = 0x02;

/**
 * AMF3 command message (type 17). Its first byte selects the encoding and is 0 (AMF0) in
 * practice: what follows is decoded as a type 20 message. Some clients omit that byte;
 * since a command must start with an AMF0 string (marker 0x02) and 0x02 is not a valid
 * selector, that case is unambiguous and accepted.
 */
export function decodeAmf3Command(payload: Buffer, options: DecodeCommandOptions = {}): RtmpCommand {
  if (payload.length === 0) throw new ProtocolError('RTMP_BAD_COMMAND', 'empty AMF3 command message');
  const first = payload[0];
  if (first === AMF3_FORMAT_AMF0) return decodeCommand(payload.subarray(1), options);
  if (first === AMF0_STRING_MARKER) return decodeCommand(payload, options);
  throw new ProtocolError('RTMP_BAD_COMMAND', `AMF3 command message with format byte 0x${first?.toString(16)}`);
}

export function encodeCommand(cmd: RtmpCommand): Buffer {
  return encodeAmf0([cmd.name, cmd.transactionId, cmd.commandObject, ...cmd.args]);
}

/** AMF0 data message (type 18): a handler name ('@setDataFrame', 'onMetaData', ...) and values. */
export function decodeDataMessage(payload: Buffer): DataMessage {
  const values = decodeAmf0(payload);
  const name = values[0];
  if (typeof name !== 'string') {
    throw new ProtocolError('RTMP_BAD_DATA', `data message name is ${describe(values, 0)}, not a string`);
  }
  return { name, values: values.slice(1) };
}

/** The AMF0 string value '@setDataFrame': marker, u16 length 13, the 13 characters. */
const SET_DATA_FRAME = Buffer.from('\x02\x00\x0d@setDataFrame', 'latin1');

/**
 * Encoders send metadata as `'@setDataFrame' 'onMetaData' {...}`; players expect
 * `'onMetaData' {...}`. Slicing (rather than decoding and re-encoding) keeps the metadata
 * bytes exactly as the encoder sent them (ECMA array vs object, property order) and costs
 * nothing. Anything else is returned unchanged, as the same Buffer.
 */
export function stripSetDataFrame(payload: Buffer): Buffer {
  const n = SET_DATA_FRAME.length;
  if (payload.length <= n || payload[n] !== AMF0_STRING_MARKER) return payload;
  if (payload.compare(SET_DATA_FRAME, 0, n, 0, n) !== 0) return payload;
  return payload.subarray(n);
}

function describe(values: AmfValue[], index: number): string {
  if (index >= values.length) return 'missing';
  const v = values[index];
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  return `of type ${typeof v}`;
}

function truncate(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}...` : s;
}
