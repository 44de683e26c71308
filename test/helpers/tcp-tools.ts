import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

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
