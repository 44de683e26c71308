import { readFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT',
  '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING',
};

/**
 * The states of this machine's IPv4 TCP sockets connected to `port`, from /proc/net/tcp:
 * what the kernel still holds, including sockets their process has closed. A socket
 * closed gracefully with data its peer does not read stays in FIN_WAIT1, holding that
 * data, until the kernel gives up on it.
 */
export function tcpStatesTo(port: number): string[] {
  const remotePort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter(([, , remote]) => remote?.endsWith(remotePort))
    .map(([, , , state]) => TCP_STATES[state!] ?? state!);
}

/** A TCP server that accepts connections and never answers (a stuck destination). */
export async function blackHole(): Promise<{ port: number; open: () => number; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    // Read and discard (so the peer's close is seen), never answer.
    socket.resume();
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await listen(server);
  return {
    port: (server.address() as AddressInfo).port,
    open: () => sockets.size,
    accepted: () => accepted,
    close: () => closeServer(server, sockets),
  };
}

/**
 * A TCP proxy to `targetPort` that forwards everything, but after `slowAfterBytes` from
 * the client it reads from the client only `bytesPerSecond`: a destination with a thin pipe.
 */
export async function throttlingProxy(targetPort: number, slowAfterBytes: number, bytesPerSecond: number): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.pipe(client);
    let forwarded = 0;
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      forwarded += chunk.length;
      if (forwarded > slowAfterBytes) {
        // Pause long enough that, on average, only bytesPerSecond get through.
        client.pause();
        setTimeout(() => client.resume(), Math.ceil((chunk.length / bytesPerSecond) * 1000)).unref();
      }
    });
  });
  await listen(server);
  return { port: (server.address() as AddressInfo).port, close: () => closeServer(server, sockets) };
}

/** A port that was free a moment ago and now refuses connections. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await listen(server);
  const { port } = server.address() as AddressInfo;
  await closeServer(server, new Set());
  return port;
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}
