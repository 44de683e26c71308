import { afterEach, describe, expect, it } from 'vitest';
import { CONFIG_FILE, parseBad, parseOk, summary } from '../helpers/config-text.js';
import { recordJobRequestSchema } from '../../src/config/schema-recording.js';
import { checkPathTemplate, renderPathTemplate } from '../../src/recording/path-template.js';

function issues(text: string): [number, string, string][] {
  const found = parseBad(text);
  for (const i of found) expect(i.file).toBe(CONFIG_FILE);
  return summary(found);
}

/** One flow; `recording` lines go at line 5 onwards. */
const flowWith = (recording: string) => `flows:
  - id: cam
    inputs: [{ name: main, type: rtmp-push }]
    recording:
${recording}`;

const PATH_RULE = 'must be a relative path without empty, "." or ".." parts or hidden names';

describe('recording in a flow', () => {
  it('defaults to off, fragmented mp4, hour-long files, a 30 s reconnect window and flowId/flowId_date_time', () => {
    const config = parseOk('flows:\n  - id: cam\n    inputs: [{ name: main, type: rtmp-push }]\n');
    expect(config.flows[0]?.recording).toEqual({
      mode: 'off',
      format: 'mp4',
      segmentSeconds: 3600,
      timeoutSeconds: 30,
      path: '{flowId}/{flowId}_{date}_{time}',
    });
    // An empty section means the same.
    expect(parseOk(flowWith('')).flows[0]?.recording).toEqual(config.flows[0]?.recording);
  });

  it('keeps every value that is given', () => {
    const config = parseOk(
      flowWith(`      mode: automatic
      format: mpegts
      segmentSeconds: 600
      timeoutSeconds: 0
      deleteAfterDays: 14
      path: "rec/{date}/{flowId}-{time}-{id}"`),
    );
    expect(config.flows[0]?.recording).toEqual({
      mode: 'automatic',
      format: 'mpegts',
      segmentSeconds: 600,
      timeoutSeconds: 0,
      deleteAfterDays: 14,
      path: 'rec/{date}/{flowId}-{time}-{id}',
    });
  });

  it('refuses an unknown format, naming the key at its line', () => {
    expect(issues(flowWith('      mode: automatic\n      format: avi'))).toEqual([
      [6, 'flows[0].recording.format', expect.stringMatching(/mp4.*mpegts.*flv/) as unknown as string],
    ]);
  });

  it('refuses out-of-range numbers and unknown keys', () => {
    expect(
      issues(
        flowWith(`      segmentSeconds: 0
      timeoutSeconds: -1
      deleteAfterDays: 0
      keepForever: true`),
      ),
    ).toEqual([
      [5, 'flows[0].recording.segmentSeconds', 'must be from 1 to 86400'],
      [6, 'flows[0].recording.timeoutSeconds', 'must be from 0 to 86400'],
      [7, 'flows[0].recording.deleteAfterDays', 'must be from 1 to 36500'],
      [8, 'flows[0].recording.keepForever', 'unknown key "keepForever"'],
    ]);
  });

  it.each([
    ['../x/{time}', PATH_RULE],
    ['{nope}', 'unknown placeholder {nope} (use {flowId}, {date}, {time}, {id})'],
    ['a//{time}', PATH_RULE],
    ['a/{time}/', PATH_RULE],
    ['/abs/{id}', PATH_RULE],
    ['./{id}', PATH_RULE],
    ['.hidden/{id}', PATH_RULE],
    ['{flowId}/.{id}', PATH_RULE],
    ['{flowId}/{date}', 'must contain {time} or {id}, so that every recording gets its own file'],
    ['recordings', 'must contain {time} or {id}, so that every recording gets its own file'],
    ['a b/{id}', 'may only contain letters, digits, _ . - / and {placeholders}'],
    ['$HOME/{id}', 'may only contain letters, digits, _ . - / and {placeholders}'],
    ['', 'must be 1..200 characters'],
    [`${'a'.repeat(200)}{id}`, 'must be 1..200 characters'],
  ])('refuses the path template "%s"', (template, message) => {
    expect(checkPathTemplate(template)).toBe(message);
    expect(issues(flowWith(`      path: ${JSON.stringify(template)}`))).toEqual([[5, 'flows[0].recording.path', message]]);
  });

  // A brace outside a placeholder would end up in the file name ("{{id}" as "{rec_...").
  it.each(['{{id}', '{id}}', 'a}/{time}', '{{time}}'])('refuses the stray brace in "%s"', (template) => {
    expect(checkPathTemplate(template)).toBe('may only contain letters, digits, _ . - / and {placeholders}');
  });

  it.each(['{flowId}/{flowId}_{date}_{time}', '{id}', 'a/b.c/{flowId}_{time}', 'x-{id}.part'])('accepts the path template "%s"', (template) => {
    expect(checkPathTemplate(template)).toBeUndefined();
    expect(parseOk(flowWith(`      path: ${JSON.stringify(template)}`)).flows[0]?.recording.path).toBe(template);
  });
});

describe('renderPathTemplate', () => {
  const savedTz = process.env.TZ;
  afterEach(() => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  });

  it('fills the placeholders, with date and time in UTC whatever the local zone', () => {
    // 23:05:09 UTC on Dec 31 is already the next day (and year) at UTC+14.
    process.env.TZ = 'Pacific/Kiritimati';
    const start = new Date(Date.UTC(2023, 11, 31, 23, 5, 9, 999));
    expect(start.getDate()).not.toBe(start.getUTCDate());
    expect(renderPathTemplate('{flowId}/{flowId}_{date}_{time}', { flowId: 'cam', start, id: 'rec_1' })).toBe('cam/cam_2023-12-31_23-05-09');
    expect(renderPathTemplate('{date}/{id}-{id}', { flowId: 'cam', start, id: 'rec_1' })).toBe('2023-12-31/rec_1-rec_1');
    expect(renderPathTemplate('plain/{time}', { flowId: 'cam', start: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)), id: 'x' })).toBe('plain/03-04-05');
  });
});

describe('storage and recordJobs', () => {
  it('defaults', () => {
    const config = parseOk('');
    expect(config.storage).toEqual({ dir: '/etc/flowrelay/data', minFreeSpace: 1024 ** 3, maxWriteBacklog: 64 * 1024 ** 2 });
    expect(config.recordJobs).toEqual({ waitSeconds: 180, timeoutSeconds: 30, maxActive: 50, keepFinished: 1000 });
  });

  it.each([
    ['"2Gi"', 2 * 1024 ** 3],
    ['2Gi', 2 * 1024 ** 3],
    ['0', 0],
    ['"0"', 0],
    ['500Mi', 500 * 1024 ** 2],
    ['1048576', 1024 ** 2],
  ])('storage.minFreeSpace: %s', (text, bytes) => {
    expect(parseOk(`storage:\n  minFreeSpace: ${text}\n`).storage.minFreeSpace).toBe(bytes);
  });

  it('refuses a negative or unreadable minFreeSpace, and a write backlog under 1Mi', () => {
    const found = issues('storage:\n  minFreeSpace: -1\n  maxWriteBacklog: 1Ki\n');
    expect(found.map(([line, path]) => [line, path])).toEqual([
      [2, 'storage.minFreeSpace'],
      [3, 'storage.maxWriteBacklog'],
    ]);
    expect(issues('storage:\n  minFreeSpace: lots\n').map(([line, path]) => [line, path])).toEqual([[2, 'storage.minFreeSpace']]);
  });

  it('keeps recordJobs values that are given', () => {
    const config = parseOk('recordJobs:\n  waitSeconds: 10\n  timeoutSeconds: 0\n  maxActive: 3\n  deleteAfterDays: 7\n  keepFinished: 0\n');
    expect(config.recordJobs).toEqual({ waitSeconds: 10, timeoutSeconds: 0, maxActive: 3, deleteAfterDays: 7, keepFinished: 0 });
    expect(issues('recordJobs:\n  waitSeconds: 0\n')).toEqual([[2, 'recordJobs.waitSeconds', 'must be from 1 to 86400']]);
  });
});

describe('recordJobRequestSchema', () => {
  const messagesAt = (input: unknown): Record<string, string[]> => {
    const r = recordJobRequestSchema.safeParse(input);
    if (r.success) throw new Error('expected the request to be refused');
    const out: Record<string, string[]> = {};
    for (const issue of r.error.issues) (out[issue.path.join('.')] ??= []).push(issue.message);
    return out;
  };

  it('fills the format with mp4 and leaves the rest unset', () => {
    expect(recordJobRequestSchema.parse({ name: 'match', url: 'rtmp://example.com/live/key' })).toEqual({
      name: 'match',
      url: 'rtmp://example.com/live/key',
      format: 'mp4',
    });
  });

  it('accepts everything it knows', () => {
    const request = {
      name: 'match',
      url: 'rtmps://example.com:443/live/key',
      format: 'flv',
      notifyUrl: 'https://hooks.example.com/rec',
      notifySecret: 's'.repeat(16),
      waitSeconds: 60,
    };
    expect(recordJobRequestSchema.parse(request)).toEqual(request);
  });

  it('refuses an http:// URL to record, naming rtmp://', () => {
    const found = messagesAt({ name: 'match', url: 'http://example.com/live/key' });
    expect(Object.keys(found)).toEqual(['url']);
    expect(found.url?.join(' ')).toContain('rtmp://');
  });

  it('refuses a notifyUrl that is not http(s)', () => {
    for (const notifyUrl of ['ftp://example.com/x', 'rtmp://example.com/live', 'not a url']) {
      expect(messagesAt({ name: 'match', url: 'rtmp://example.com/live/key', notifyUrl })).toEqual({ notifyUrl: ['must be an http:// or https:// URL'] });
    }
    expect(recordJobRequestSchema.safeParse({ name: 'm', url: 'rtmp://example.com/live/key', notifyUrl: 'http://127.0.0.1:8080/x' }).success).toBe(true);
  });

  it('refuses a notifySecret under 16 characters', () => {
    expect(messagesAt({ name: 'match', url: 'rtmp://example.com/live/key', notifySecret: 's'.repeat(15) })).toEqual({ notifySecret: ['must be at least 16 characters'] });
  });

  it('refuses an unknown format, an empty name and unknown keys', () => {
    const found = messagesAt({ name: '', url: 'rtmp://example.com/live/key', format: 'avi', extra: 1 });
    expect(Object.keys(found).sort()).toEqual(['', 'format', 'name']);
    expect(found.name).toEqual(['must not be empty']);
  });
});
