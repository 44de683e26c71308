import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer } from 'node:net';
import type { WebhookDelivery } from '../../src/telemetry/webhooks.js';

export interface ReceivedDelivery {
  delivery: WebhookDelivery;
  /** The signature matched `secret` and its time is recent. */
  verified: boolean;
  headers: IncomingMessage['headers'];
}

export interface WebhookReceiver {
  server: Server;
  url: string;
  received: ReceivedDelivery[];
  close(): Promise<void>;
}

/** A local receiver that checks every signature the way a real one would. */
export async function webhookReceiver(secret: string, path = '/hooks?token=abc'): Promise<WebhookReceiver> {
  const received: ReceivedDelivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers['x-flowrelay-signature']));
      const expected = m ? createHmac('sha256', secret).update(`${m[1]}.${body}`).digest() : Buffer.alloc(32);
      const verified = !!m && timingSafeEqual(expected, Buffer.from(m[2]!, 'hex')) && Math.abs(Date.now() / 1000 - Number(m[1])) < 300;
      received.push({ delivery: JSON.parse(body) as WebhookDelivery, verified, headers: req.headers });
      res.writeHead(verified ? 204 : 401).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  return { server, url, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A port nothing listens on. */
export async function deadPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}
