import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ReconnectSupervisor, type AttemptHandlers, type ReconnectPolicy } from '../../src/core/reconnect-supervisor.js';
import { FakeClock } from '../helpers/fake-clock.js';

const logger = pino({ level: 'silent' });
const policy: ReconnectPolicy = { initialDelayMs: 1000, maxDelayMs: 30_000, resetAfterMs: 60_000, failAfter: 3, giveUp: false };

/** Each attempt is held here until the test settles it. */
function harness(p: ReconnectPolicy = policy) {
  const clock = new FakeClock();
  const attempts: { handlers: AttemptHandlers; closedBy: string | undefined }[] = [];
  const supervisor = new ReconnectSupervisor(
    p,
    (handlers) => {
      const attempt = { handlers, closedBy: undefined as string | undefined };
      attempts.push(attempt);
      return { close: (reason) => { attempt.closedBy = reason; handlers.closed(undefined); } };
    },
    clock,
    logger,
    () => 0,
  );
  const last = () => attempts[attempts.length - 1]!;
  return { clock, attempts, supervisor, last };
}

describe('ReconnectSupervisor', () => {
  it('connects, and reconnects with growing delays after a drop, reporting the statuses', () => {
    const { clock, attempts, supervisor, last } = harness();
    supervisor.want();
    expect(attempts).toHaveLength(1);
    expect(supervisor.status).toBe('new_configuration_accepted');
    last().handlers.ready();
    expect(supervisor.status).toBe('connected');

    last().handlers.closed(new Error('connection reset'));
    expect(supervisor.status).toBe('reconnecting');
    expect(supervisor.counters.lastError).toBe('connection reset');
    expect(clock.nextDelay()).toBe(1000);
    clock.advance(1000);
    expect(attempts).toHaveLength(2);
    last().handlers.closed(new Error('refused'));
    expect(clock.nextDelay()).toBe(2000);
    clock.advance(2000);
    last().handlers.closed(new Error('refused'));
    expect(clock.nextDelay()).toBe(4000);
    clock.advance(4000);
    last().handlers.ready();
    expect(supervisor.status).toBe('reconnected');
    expect(supervisor.counters.reconnects).toBe(1);
    expect(supervisor.counters.consecutiveFailures).toBe(0);
  });

  it('says failed_to_connect after failAfter failures and keeps trying at the cap', () => {
    const { clock, attempts, supervisor, last } = harness();
    supervisor.want();
    for (let i = 0; i < 3; i++) {
      last().handlers.closed(new Error('timeout'));
      clock.advance(clock.nextDelay()!);
    }
    expect(supervisor.status).toBe('failed_to_connect');
    for (let i = 0; i < 10; i++) {
      last().handlers.closed(new Error('timeout'));
      clock.advance(clock.nextDelay()!);
    }
    expect(clock.nextDelay()).toBeUndefined();
    expect(attempts.length).toBe(14);
    last().handlers.closed(new Error('timeout'));
    expect(clock.nextDelay()).toBe(30_000);
    clock.advance(30_000);
    last().handlers.ready();
    expect(supervisor.status).toBe('connected');
  });

  it('wanted again after idle, it reads reconnecting while its attempts fail, not idle, until failAfter', () => {
    const { clock, supervisor, last } = harness();
    supervisor.want();
    last().handlers.ready();
    supervisor.unwant('input stopped');
    expect(supervisor.status).toBe('idle');
    supervisor.want();
    expect(supervisor.status).toBe('reconnecting');
    last().handlers.closed(new Error('refused'));
    expect(supervisor.status).toBe('reconnecting');
    for (let i = 0; i < 2; i++) {
      clock.advance(clock.nextDelay()!);
      last().handlers.closed(new Error('refused'));
    }
    expect(supervisor.status).toBe('failed_to_reconnect');
    clock.advance(clock.nextDelay()!);
    last().handlers.ready();
    expect(supervisor.status).toBe('reconnected');
  });

  it('a connection that never came up, wanted again after idle, reads reconnecting, then connected or failed_to_connect', () => {
    const { supervisor, last } = harness();
    supervisor.want();
    last().handlers.closed(new Error('refused'));
    supervisor.unwant('input stopped');
    supervisor.want();
    expect(supervisor.status).toBe('reconnecting');
    last().handlers.ready();
    expect(supervisor.status).toBe('connected');

    const other = harness();
    other.supervisor.want();
    other.supervisor.unwant('input stopped');
    other.supervisor.want();
    for (let i = 0; i < 3; i++) {
      expect(other.supervisor.status).toBe('reconnecting');
      other.last().handlers.closed(new Error('refused'));
      other.clock.advance(other.clock.nextDelay()!);
    }
    expect(other.supervisor.status).toBe('failed_to_connect');
  });

  it('an attempt that throws as it starts fails like any other, without throwing out of want()', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const supervisor = new ReconnectSupervisor(
      { ...policy, failAfter: 2 },
      () => {
        calls += 1;
        throw new Error('SRT stream id longer than 512 bytes');
      },
      clock,
      logger,
      () => 0,
    );
    expect(() => supervisor.want()).not.toThrow();
    await Promise.resolve();
    expect(supervisor.counters.lastError).toBe('SRT stream id longer than 512 bytes');
    expect(supervisor.counters.consecutiveFailures).toBe(1);
    expect(clock.nextDelay()).toBe(1000);
    clock.advance(1000);
    await Promise.resolve();
    expect(calls).toBe(2);
    expect(supervisor.status).toBe('failed_to_connect');
    supervisor.close('done');
    expect(clock.nextDelay()).toBeUndefined();
  });

  it('logs why each attempt failed as a warning, with the delay before the next', () => {
    const lines: Record<string, unknown>[] = [];
    const captured = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const clock = new FakeClock();
    let attempt: AttemptHandlers | undefined;
    const supervisor = new ReconnectSupervisor(policy, (handlers) => ((attempt = handlers), { close: () => handlers.closed(undefined) }), clock, captured, () => 0);
    supervisor.want();
    attempt!.closed(new Error('connect ECONNREFUSED 127.0.0.1:1935'));
    expect(lines).toContainEqual(expect.objectContaining({ level: 40, msg: 'connection attempt failed', err: 'connect ECONNREFUSED 127.0.0.1:1935', failures: 1, retryInMs: 1000 }));
  });

  it('says failed_to_reconnect after a connection, and with giveUp stops trying', () => {
    const { clock, attempts, supervisor, last } = harness({ ...policy, giveUp: true });
    supervisor.want();
    last().handlers.ready();
    last().handlers.closed(new Error('gone'));
    for (let i = 0; i < 3; i++) {
      clock.advance(clock.nextDelay()!);
      last().handlers.closed(new Error('refused'));
    }
    expect(supervisor.status).toBe('failed_to_reconnect');
    expect(clock.pending).toBe(0);
    clock.advance(600_000);
    expect(attempts).toHaveLength(4);
  });

  it('resets the backoff after a connection stayed up for resetAfterMs', () => {
    const { clock, supervisor, last } = harness();
    supervisor.want();
    last().handlers.closed(new Error('x'));
    clock.advance(clock.nextDelay()!);
    last().handlers.closed(new Error('x'));
    clock.advance(clock.nextDelay()!); // 2 s
    last().handlers.ready();
    clock.advance(60_000);
    last().handlers.closed(new Error('dropped'));
    expect(clock.nextDelay()).toBe(1000);
  });

  it('unwant disconnects and goes idle; want reconnects; close stops everything', () => {
    const { clock, attempts, supervisor, last } = harness();
    supervisor.want();
    last().handlers.ready();
    supervisor.unwant('input idle');
    expect(last().closedBy).toBe('input idle');
    expect(supervisor.status).toBe('idle');
    expect(clock.pending).toBe(0);
    supervisor.want();
    last().handlers.ready();
    expect(supervisor.status).toBe('reconnected');
    supervisor.close('removed');
    expect(last().closedBy).toBe('removed');
    supervisor.want();
    expect(attempts).toHaveLength(2);
  });

  it('ignores events from an attempt that was already superseded', () => {
    const { clock, attempts, supervisor } = harness();
    supervisor.want();
    const first = attempts[0]!;
    first.handlers.closed(new Error('x'));
    clock.advance(clock.nextDelay()!);
    first.handlers.ready(); // stale
    expect(supervisor.status).toBe('new_configuration_accepted');
    expect(attempts).toHaveLength(2);
  });
});
