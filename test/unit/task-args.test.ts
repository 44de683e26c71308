import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { destinationKey, taskSchema } from '../../src/config/schema-tasks.js';
import { playOrder } from '../../src/ffmpeg/task-args.js';

type Files = Extract<ReturnType<typeof taskSchema.parse>['source'], { type: 'files' }>;

function files(urls: string[], extra: Partial<Files> = {}): Files {
  const task = taskSchema.parse({
    id: 't',
    source: { type: 'files', urls, ...extra },
    destination: 'rtmp://127.0.0.1/live/t',
    startTime: '2026-01-01T00:00:00Z',
    endTime: '2026-01-02T00:00:00Z',
  });
  return task.source as Files;
}

const show = (order: { url: string; inpointSeconds: number }[]) => order.map((e) => (e.inpointSeconds ? `${e.url}@${e.inpointSeconds}` : e.url));

describe('playOrder', () => {
  it('plays from fileIndex at offsetSeconds, then the whole list repeat more times', () => {
    expect(show(playOrder(files(['a', 'b', 'c'], { fileIndex: 1, offsetSeconds: 2, repeat: 1 }), [10, 10, 10], 1000))).toEqual(['b@2', 'c', 'a', 'b', 'c']);
  });

  it('resumes inside the first stretch, inside a later pass, and is empty once the list is over', () => {
    const source = files(['a', 'b'], { fileIndex: 1, offsetSeconds: 4, repeat: 2 });
    // b from 4 s is 6 s long; then passes of 20 s.
    expect(show(playOrder(source, [10, 10], 1000, 3))).toEqual(['b@7', 'a', 'b', 'a', 'b']);
    expect(show(playOrder(source, [10, 10], 1000, 6 + 20 + 13))).toEqual(['b@3']);
    expect(show(playOrder(source, [10, 10], 1000, 6 + 5))).toEqual(['a@5', 'b', 'a', 'b']);
    expect(playOrder(source, [10, 10], 1000, 6 + 40)).toEqual([]);
  });

  it('repeat -1 resumes by arithmetic however long the task has run, and covers the time left', () => {
    const source = files(['bumper'], { repeat: -1 });
    // Day 80 of a task looping a 30 s file: 6,912,000 s in, 29.5 s into the current pass.
    const order = playOrder(source, [30], 600, 80 * 86_400 + 29.5);
    expect(show(order.slice(0, 2))).toEqual(['bumper@29.5', 'bumper']);
    expect(order.length).toBe(1 + 21);
    // A one-second file over three days: the list is capped; the task runs the rest next.
    expect(playOrder(source, [1], 3 * 86_400).length).toBe(200_000);
  });

  it('without known durations, the list plays from the start (it cannot be resumed)', () => {
    expect(show(playOrder(files(['a', 'b'], { repeat: 1 }), undefined, 1000, 500))).toEqual(['a', 'b', 'a', 'b']);
  });
});

describe('destinationKey', () => {
  it('takes scheme and host in any case and the default port as the same destination; the path stays exact', () => {
    const key = destinationKey('rtmp://relay.example.com/live/Key');
    expect(destinationKey('RTMP://RELAY.example.com:1935/live/Key')).toBe(key);
    expect(destinationKey('  rtmp://relay.example.com/live/Key ')).toBe(key);
    expect(destinationKey('rtmp://relay.example.com/live/key')).not.toBe(key);
    expect(destinationKey('rtmp://relay.example.com:1936/live/Key')).not.toBe(key);
    expect(destinationKey('rtmps://relay.example.com/live/Key')).toBe(destinationKey('rtmps://relay.example.com:443/live/Key'));
  });

  it('two tasks to one destination spelled differently are refused in the config', () => {
    const task = (id: string, destination: string) => ({ id, source: { type: 'live', protocol: 'rtmp', url: 'rtmp://127.0.0.1/live/src' }, destination, startTime: '2026-01-01T00:00:00Z', endTime: '2026-01-01T01:00:00Z' });
    const r = parseConfigText(JSON.stringify({ tasks: [task('a', 'rtmp://relay.example.com/live/k'), task('b', 'rtmp://RELAY.example.com:1935/live/k')] }), '/etc/flowrelay.yaml', {});
    expect(r.ok).toBe(false);
    expect(!r.ok && r.issues.map((i) => `${i.path}: ${i.message}`)).toEqual(['tasks[1].destination: already_exists: task "a" already pushes to this destination']);
  });
});
