import type { Socket } from 'node:net';

/** One socket's bytes waiting for the tick. */
interface Pending {
  buffers: Buffer[];
  bytes: number;
}

/**
 * Merged writes (`rtmp.mergeWritesMs`): instead of one write per message per player, each
 * player's messages wait up to the interval and leave in one write. One timer serves every
 * player of the server, so the cost does not grow with audiences. The trade is explicit:
 * fewer system calls for a delay bounded by the interval.
 *
 * Players that are in step receive the same shared message Buffers in the same order
 * (the wire cache makes them once), so their queues at a tick are identical. The merger
 * concatenates each distinct queue once per tick and hands every player of that queue
 * the same Buffer: per player and tick, one `write` of one Buffer, no copy and no writev.
 */
export class WriteMerger {
  private readonly pending = new Map<Socket, Pending>();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly intervalMs: number) {}

  /** Queues bytes for the socket; they are written at the next tick. */
  write(socket: Socket, bytes: Buffer): void {
    let queue = this.pending.get(socket);
    if (!queue) {
      queue = { buffers: [], bytes: 0 };
      this.pending.set(socket, queue);
    }
    queue.buffers.push(bytes);
    queue.bytes += bytes.length;
    this.timer ??= setTimeout(() => this.flush(), this.intervalMs).unref();
  }

  /** Bytes queued for a socket and not yet handed to it (part of its backlog). */
  queued(socket: Socket): number {
    return this.pending.get(socket)?.bytes ?? 0;
  }

  /** Writes everything queued now (also used when a player leaves). */
  flush(only?: Socket): void {
    if (only) {
      const queue = this.pending.get(only);
      this.pending.delete(only);
      if (queue) writeQueue(only, merge(queue));
      return;
    }
    this.timer = undefined;
    const batch = [...this.pending];
    this.pending.clear();
    const merged = new MergedQueues();
    for (const [socket, queue] of batch) writeQueue(socket, merged.get(queue));
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }
}

function writeQueue(socket: Socket, bytes: Buffer): void {
  if (!socket.destroyed) socket.write(bytes);
}

function merge(queue: Pending): Buffer {
  return queue.buffers.length === 1 ? queue.buffers[0]! : Buffer.concat(queue.buffers, queue.bytes);
}

/**
 * The concatenations made during one flush, found again by their parts: a queue whose
 * Buffers are the same objects in the same order as an earlier one reuses its result.
 */
class MergedQueues {
  /** First Buffer of a queue -> the queues starting with it, with their concatenation. */
  private readonly byFirst = new Map<Buffer, { parts: Buffer[]; merged: Buffer }[]>();

  get(queue: Pending): Buffer {
    const parts = queue.buffers;
    if (parts.length === 1) return parts[0]!;
    const first = parts[0]!;
    let candidates = this.byFirst.get(first);
    if (candidates) {
      for (const c of candidates) if (sameParts(c.parts, parts)) return c.merged;
    } else {
      candidates = [];
      this.byFirst.set(first, candidates);
    }
    const merged = Buffer.concat(parts, queue.bytes);
    candidates.push({ parts, merged });
    return merged;
  }
}

function sameParts(a: Buffer[], b: Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
