import { createHmac, randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { WebhookConfig } from '../config/schema.js';
import type { FlowEvent } from '../core/flow-events.js';

/** The longest wait between two attempts at one event. */
const MAX_RETRY_DELAY_MS = 60_000;

/** What a receiver gets: the body of every POST. */
export interface WebhookDelivery {
  id: string;
  /** Rises by one per event of this daemon: receivers can order and spot gaps. */
  seq: number;
  type: FlowEvent['type'];
  createdAt: string;
  data: FlowEvent;
}

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" with the secret>`, sent as
 * `X-Flowrelay-Signature`. Receivers recompute it over the raw body and reject old `t`s.
 */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface WebhookCounters {
  delivered: number;
  /** Events given up on after maxAttempts. */
  failed: number;
  /** Events dropped because the queue was full (the oldest go first). */
  dropped: number;
  retries: number;
}

/**
 * One receiver: a bounded queue sent in order, one request at a time, each event retried
 * with doubling delays. Enqueueing never waits: a slow or dead receiver costs memory up
 * to maxQueue events and nothing else.
 */
class WebhookEndpoint {
  /** Waiting events; the one being sent is not in it. */
  private readonly queue: WebhookDelivery[] = [];
  private sending = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private abort: AbortController | undefined;
  readonly counters: WebhookCounters = { delivered: 0, failed: 0, dropped: 0, retries: 0 };

  constructor(
    public config: WebhookConfig,
    private readonly logger: Logger,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  wants(type: string): boolean {
    return this.config.events.includes('*') || (this.config.events as string[]).includes(type);
  }

  enqueue(delivery: WebhookDelivery): void {
    if (this.closed) return;
    if (this.queue.length >= this.config.maxQueue) {
      this.queue.shift();
      this.counters.dropped += 1;
      if (this.counters.dropped === 1 || this.counters.dropped % 100 === 0) {
        this.logger.warn({ url: redactHookUrl(this.config.url), dropped: this.counters.dropped }, 'webhook queue full; dropping the oldest events');
      }
    }
    this.queue.push(delivery);
    if (!this.sending) void this.pump();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.abort?.abort();
    this.queue.length = 0;
  }

  private async pump(): Promise<void> {
    this.sending = true;
    try {
      let delivery: WebhookDelivery | undefined;
      while (!this.closed && (delivery = this.queue.shift()) !== undefined) {
        const sent = await this.sendWithRetries(delivery);
        if (this.closed) return;
        if (sent) this.counters.delivered += 1;
        else this.counters.failed += 1;
      }
    } finally {
      this.sending = false;
    }
  }

  private async sendWithRetries(delivery: WebhookDelivery): Promise<boolean> {
    const body = JSON.stringify(delivery);
    let delay = this.config.retryDelayMs;
    for (let attempt = 1; attempt <= this.config.maxAttempts; attempt++) {
      const error = await this.sendOnce(delivery, body);
      if (error === undefined) return true;
      if (this.closed) return false;
      if (attempt === this.config.maxAttempts) {
        this.logger.warn({ url: redactHookUrl(this.config.url), event: delivery.type, seq: delivery.seq, attempts: attempt, err: error }, 'webhook delivery failed; giving up on this event');
        return false;
      }
      this.counters.retries += 1;
      await new Promise<void>((resolve) => {
        this.timer = setTimeout(resolve, delay * (0.8 + Math.random() * 0.4));
        this.timer.unref();
      });
      delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
    }
    return false;
  }

  /** undefined when the receiver answered 2xx; otherwise why not. */
  private async sendOnce(delivery: WebhookDelivery, body: string): Promise<string | undefined> {
    this.abort = new AbortController();
    const timeout = setTimeout(() => this.abort?.abort(), this.config.timeoutMs);
    timeout.unref();
    try {
      const target = credentialsApart(this.config.url);
      const res = await fetch(target.url, {
        method: 'POST',
        body,
        signal: this.abort.signal,
        // A redirect is not a delivery: followed, a 302 turns the POST into a GET without
        // the event, and a 307 hands the signed body to wherever it points.
        redirect: 'manual',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'flowrelay-webhook',
          'x-flowrelay-event': delivery.type,
          'x-flowrelay-delivery': delivery.id,
          'x-flowrelay-signature': signWebhook(this.config.secret, Math.floor(Date.now() / 1000), body),
          ...(target.authorization ? { authorization: target.authorization } : {}),
        },
      });
      // The answer's body is not read: a receiver streaming gigabytes would be held in memory.
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 300 && res.status < 400) return `HTTP ${res.status} (a redirect, not followed: configure the receiver's final URL)`;
      return res.ok ? undefined : `HTTP ${res.status}`;
    } catch (err) {
      if ((err as Error).name === 'AbortError') return `no answer within ${this.config.timeoutMs} ms`;
      // fetch says only "fetch failed"; the reason (ECONNREFUSED, a TLS error) is its cause.
      const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
      return cause ? `${(err as Error).message}: ${cause.code ?? cause.message ?? String(cause)}` : (err as Error).message;
    } finally {
      clearTimeout(timeout);
    }
  }
}

/**
 * `user:password@` in a receiver's URL as HTTP basic authentication: fetch refuses a URL
 * that carries credentials, so the URL is sent without them and they go in a header.
 */
export function credentialsApart(url: string): { url: string; authorization?: string } {
  const u = new URL(url);
  if (u.username === '' && u.password === '') return { url };
  const pair = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  u.username = '';
  u.password = '';
  return { url: u.href, authorization: `Basic ${Buffer.from(pair).toString('base64')}` };
}

/**
 * A receiver's URL for logs and read-only views: scheme and host. Hook URLs often carry
 * their secret in the path (Slack's and Discord's do) or the query.
 */
export function redactHookUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === '/' && u.search === '' ? u.origin : `${u.origin}/<path redacted>`;
  } catch {
    return '<invalid URL>';
  }
}

/** Every configured receiver; events go to those that want them. */
export class Webhooks {
  private endpoints: WebhookEndpoint[] = [];
  private seq = 0;
  private readonly deliveries = new WeakMap<FlowEvent, WebhookDelivery>();

  constructor(private readonly logger: Logger) {}

  /**
   * Applies the config. An endpoint whose URL stays keeps its queue and counters, with its
   * new settings (events, timeouts, secret) from the next request on: a reload that tunes
   * a receiver that is down loses none of what waits for it. Others are replaced.
   */
  configure(configs: readonly WebhookConfig[]): void {
    const unused = new Set(this.endpoints);
    const take = (matches: (e: WebhookEndpoint) => boolean): WebhookEndpoint | undefined => {
      const found = [...unused].find(matches);
      if (found) unused.delete(found);
      return found;
    };
    // Unchanged endpoints first, so another entry with the same URL cannot take one of them.
    const unchanged = configs.map((c) => take((e) => isDeepStrictEqual(e.config, c)));
    this.endpoints = configs.map((c, i) => {
      const kept = unchanged[i] ?? take((e) => e.config.url === c.url);
      if (!kept) return new WebhookEndpoint(c, this.logger);
      kept.config = c;
      return kept;
    });
    for (const e of unused) e.close();
  }

  emit(event: FlowEvent): void {
    if (this.endpoints.length === 0) return;
    const delivery = this.delivery(event);
    for (const e of this.endpoints) if (e.wants(event.type)) e.enqueue(delivery);
  }

  /**
   * A receiver outside the config (a record job's notifyUrl): the same signature, queue
   * and retries as configured webhooks, and the same sequence numbers.
   */
  notifier(url: string, secret: string): { send(event: FlowEvent): void; close(): void } {
    const endpoint = new WebhookEndpoint({ url, secret, events: ['*'], maxQueue: 100, timeoutMs: 5000, maxAttempts: 6, retryDelayMs: 1000 }, this.logger);
    return { send: (event) => endpoint.enqueue(this.delivery(event)), close: () => endpoint.close() };
  }

  /** One delivery per event, whoever it goes to (webhooks and a task's callback share its id and seq). */
  private delivery(event: FlowEvent): WebhookDelivery {
    let delivery = this.deliveries.get(event);
    if (!delivery) {
      delivery = { id: randomUUID(), seq: ++this.seq, type: event.type, createdAt: new Date().toISOString(), data: event };
      this.deliveries.set(event, delivery);
    }
    return delivery;
  }

  /** Per endpoint URL: counters and queue length, for metrics. */
  stats(): { url: string; queued: number; counters: WebhookCounters }[] {
    return this.endpoints.map((e) => ({ url: e.config.url, queued: e.queued, counters: { ...e.counters } }));
  }

  close(): void {
    for (const e of this.endpoints) e.close();
    this.endpoints = [];
  }
}
