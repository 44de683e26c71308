import type { AmfObject, AmfValue } from '../protocol/amf/amf0.js';
import { encodeAmf0 } from '../protocol/amf/amf0.js';
import { encodeChunks } from '../protocol/rtmp/chunk-encoder.js';
import { encodeCommand } from '../protocol/rtmp/command.js';
import { ChunkStream, MessageType } from '../protocol/rtmp/message-types.js';

/** Command replies and status events a server sends (RTMP spec 7.2), already chunked. */
export function commandMessage(chunkSize: number, streamId: number, name: string, transactionId: number, commandObject: AmfValue, ...args: AmfValue[]): Buffer {
  return encodeChunks(
    { csid: ChunkStream.Command, typeId: MessageType.CommandAmf0, streamId, timestamp: 0, payload: encodeCommand({ name, transactionId, commandObject, args }) },
    chunkSize,
  );
}

export function resultMessage(chunkSize: number, transactionId: number, commandObject: AmfValue, ...args: AmfValue[]): Buffer {
  return commandMessage(chunkSize, 0, '_result', transactionId, commandObject, ...args);
}

export function onStatus(chunkSize: number, streamId: number, level: 'status' | 'error' | 'warning', code: string, description: string, extra: AmfObject = {}): Buffer {
  return commandMessage(chunkSize, streamId, 'onStatus', 0, null, { level, code, description, ...extra });
}

export function dataMessage(chunkSize: number, streamId: number, values: AmfValue[]): Buffer {
  return encodeChunks({ csid: ChunkStream.Data, typeId: MessageType.DataAmf0, streamId, timestamp: 0, payload: encodeAmf0(values) }, chunkSize);
}

export const CONNECT_PROPERTIES: AmfObject = { fmsVer: 'FMS/3,5,7,7009', capabilities: 31, mode: 1 };
