import { describe, expect, it } from 'vitest';
import { STALL_MS, StallWatch } from '../../src/core/stall-watch.js';

const MAX = 64 * 1024;

/** Feeds the watch a backlog reading every 40 ms (a message at 25 fps) for `ms`; true if it called a stall. */
function run(watch: StallWatch, from: number, ms: number, backlogAt: (t: number) => number): { stalledAt: number | undefined } {
  for (let t = from; t < from + ms; t += 40) if (watch.observe(backlogAt(t), t)) return { stalledAt: t };
  return { stalledAt: undefined };
}

describe('StallWatch', () => {
  it('calls a destination stalled once its backlog has stayed above maxBacklog, not lowered, for STALL_MS', () => {
    const watch = new StallWatch(MAX);
    // A dead reader: the backlog sits above the limit (the feed drops media) and creeps up with headers.
    const { stalledAt } = run(watch, 0, 60_000, (t) => 2 * MAX + Math.floor(t / 1000));
    expect(stalledAt).toBeGreaterThanOrEqual(STALL_MS);
    expect(stalledAt).toBeLessThan(STALL_MS + 100);
  });

  it('does not call a destination stalled while it drains a startup burst far above maxBacklog, however long that takes', () => {
    const watch = new StallWatch(MAX);
    // 19 MiB of cached GOP drained at 930 KiB/s while live media keeps coming at 800 KiB/s: about 2.5 minutes above the limit.
    const burst = 19 * 1024 * 1024;
    const backlogAt = (t: number) => Math.max(0, burst - Math.floor((t / 1000) * 130 * 1024)) + (t % 1000 < 40 ? 200_000 : 0);
    expect(run(watch, 0, 140_000, backlogAt).stalledAt).toBeUndefined();
  });

  it('starts over once the backlog is back under the limit', () => {
    const watch = new StallWatch(MAX);
    expect(run(watch, 0, STALL_MS - 1_000, () => 2 * MAX).stalledAt).toBeUndefined();
    expect(watch.observe(MAX / 2, STALL_MS)).toBe(false);
    expect(run(watch, STALL_MS, STALL_MS - 1_000, () => 2 * MAX).stalledAt).toBeUndefined();
    expect(run(watch, 2 * STALL_MS, 2_000, () => 2 * MAX).stalledAt).toBeDefined();
  });
});
