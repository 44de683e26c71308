import type { Socket } from 'node:net';

/**
 * Merged writes (`rtmp.mergeWritesMs`): instead of one write per message per player, each
 * player's messages wait up to the interval and leave in one corked write (a single writev).
 * One timer serves every player of the server, so the cost does not grow with audiences.
 * The trade is explicit: fewer system calls for a delay bounded by the interval.
 */
export class WriteMerger {
  private readonly pending = new Map<Socket, Buffer[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly intervalMs: number) {}

  /** Queues bytes for the socket; they are written at the next tick. */
  write(socket: Socket, bytes: Buffer): void {
    let queue = this.pending.get(socket);
    if (!queue) {
      queue = [];
      this.pending.set(socket, queue);
    }
    queue.push(bytes);
    this.timer ??= setTimeout(() => this.flush(), this.intervalMs).unref();
  }

  /** Bytes queued for a socket and not yet handed to it (part of its backlog). */
  queued(socket: Socket): number {
    let bytes = 0;
    for (const b of this.pending.get(socket) ?? []) bytes += b.length;
    return bytes;
  }

  /** Writes everything queued now (also used when a player leaves). */
  flush(only?: Socket): void {
    if (only) {
      this.flushOne(only, this.pending.get(only));
      this.pending.delete(only);
      return;
    }
    this.timer = undefined;
    const batch = [...this.pending];
    this.pending.clear();
    for (const [socket, queue] of batch) this.flushOne(socket, queue);
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }

  private flushOne(socket: Socket, queue: Buffer[] | undefined): void {
    if (!queue || queue.length === 0 || socket.destroyed) return;
    socket.cork();
    for (const bytes of queue) socket.write(bytes);
    socket.uncork();
  }
}
