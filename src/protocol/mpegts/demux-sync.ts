/**
 * Cuts an arbitrarily sliced byte stream into 188-byte MPEG-TS packets (ISO/IEC 13818-1,
 * 2.4.3.2: every packet starts with sync_byte 0x47).
 *
 * A packet is accepted only when the byte right after it is the next sync byte (or the
 * stream has ended). That look-ahead costs at most one packet of delay, and it is what
 * keeps a packet with garbage spliced into its middle from reaching the PES layer: such a
 * packet is discarded and the continuity counter of the next one reports the hole. It
 * also makes the output independent of how the input was sliced.
 */
import { TS_PACKET_SIZE } from './types.js';

const SYNC = 0x47;

export class TsPacketSync {
  /** Bytes not yet consumed; always a private copy (callers may reuse their buffers). */
  private pending: Buffer = Buffer.alloc(0);
  private synced = false;
  private searching = false;

  constructor(
    private readonly onPacket: (packet: Buffer) => void,
    /** The stream lost packet alignment; bytes are being skipped to find it again. */
    private readonly onResync: () => void,
  ) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let buf: Buffer;
    // The common live case (SRT's 1316-byte messages): one held-back packet and a chunk
    // that starts on a packet boundary. Release the packet without copying the chunk.
    if (this.synced && this.pending.length === TS_PACKET_SIZE && chunk[0] === SYNC) {
      this.onPacket(this.pending);
      this.pending = Buffer.alloc(0);
      buf = chunk;
    } else {
      buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    }
    const used = this.scan(buf, false);
    // Copy the remainder: the caller may overwrite its buffer after push() returns.
    this.pending = Buffer.from(buf.subarray(used));
  }

  /** End of stream: the last packet needs no look-ahead; a partial one is dropped. */
  flush(): void {
    const buf = this.pending;
    this.pending = Buffer.alloc(0);
    this.scan(buf, true);
  }

  /** Emits every packet it can; returns the offset of the first unconsumed byte. */
  private scan(buf: Buffer, atEnd: boolean): number {
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      if (buf[pos] !== SYNC) {
        this.lose();
        const next = buf.indexOf(SYNC, pos + 1);
        if (next < 0) return len;
        pos = next;
      }
      const end = pos + TS_PACKET_SIZE;
      if (end > len || (end === len && !atEnd)) return atEnd ? len : pos;
      if (end < len && buf[end] !== SYNC) {
        // A 0x47 not followed by another one a packet later: garbage, or a damaged
        // packet. Skip it and look for the next plausible start.
        this.lose();
        const next = buf.indexOf(SYNC, pos + 1);
        if (next < 0) return len;
        pos = next;
        continue;
      }
      this.synced = true;
      this.searching = false;
      this.onPacket(buf.subarray(pos, end));
      pos = end;
    }
    return pos;
  }

  /** One resync per run of skipped bytes, however long and however it was sliced. */
  private lose(): void {
    this.synced = false;
    if (!this.searching) {
      this.searching = true;
      this.onResync();
    }
  }
}
