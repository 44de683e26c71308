import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_FILE, parseBad, parseOk, summary } from '../helpers/config-text.js';
import { expandEnvRefs } from '../../src/config/env.js';
import { formatIssue, loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { formatPath } from '../../src/config/path.js';
import { configSchema, parseListen } from '../../src/config/schema.js';

/** The stream key of an input type that has one (SRT callers and pulls have none of ours). */
const streamKeyOf = (input: object | undefined): string | undefined =>
  input && 'streamKey' in input ? (input.streamKey as string | undefined) : undefined;

const FILE = CONFIG_FILE;
const KEY_A = 'stream-key-aaaaaaaaaaaa';
const KEY_B = 'stream-key-bbbbbbbbbbbb';
const PLAY_A = 'play-key-aaaaaaaaaaaaaa';
const PLAY_B = 'play-key-bbbbbbbbbbbbbb';


const oneFlow = (input: string, extra = '') => `flows:
  - id: demo
    inputs:
      - ${input}
${extra}`;

describe('defaults', () => {
  const defaults = {
    rtmp: {
      listen: '0.0.0.0:1935',
      chunkSize: 65536,
      maxMessageSize: 8 * 1024 * 1024,
      handshakeTimeoutMs: 10_000,
      idleTimeoutMs: 15_000,
      maxPlayerBacklog: 8 * 1024 * 1024,
      mergeWritesMs: 0,
      maxChunkSize: 16 * 1024 * 1024,
      maxConnections: 10_000,
      maxConnectionsPerAddress: 500,
      allow: [],
      deny: [],
    },
    publicHost: 'localhost',
    storage: { dir: '/etc/flowrelay/data', minFreeSpace: 1024 ** 3, maxWriteBacklog: 64 * 1024 ** 2 },
    recordJobs: { waitSeconds: 180, timeoutSeconds: 30, maxActive: 50, keepFinished: 1000 },
    ffmpeg: { path: 'ffmpeg', probePath: 'ffprobe' },
    log: { level: 'info' },
    limits: { maxOutputsPerFlow: 50, maxFlows: 1000, maxTasks: 100, maxRunningTasks: 20 },
    webhooks: [],
    flows: [],
    tasks: [],
    peers: [],
  };
  const recordingDefaults = { mode: 'off', format: 'mp4', segmentSeconds: 3600, timeoutSeconds: 30, path: '{flowId}/{flowId}_{date}_{time}' };
  const failoverDefaults = { afterMs: 1000, revert: false, revertAfterMs: 10_000 };

  it.each([
    ['an empty file', ''],
    ['a file with only comments', '# nothing here yet\n\n# still nothing\n'],
    ['an empty mapping', '{}\n'],
    ['a document marker only', '---\n'],
    ['sections left empty', 'rtmp:\nstorage:\nffmpeg:\nlog:\nflows:\n'],
    ['keys left empty', 'rtmp:\n  listen:\n  tls:\nstorage: { dir: }\npublicHost:\n'],
  ])('%s means all defaults', (_what, text) => {
    expect(parseOk(text)).toEqual(defaults);
  });

  it('fills flow and input defaults', () => {
    const config = parseOk(oneFlow('{ name: main, type: rtmp-push }'));
    expect(config.flows).toEqual([
      {
        id: 'demo',
        name: 'demo',
        enabled: true,
        meta: {},
        limits: { bitrateTolerance: 0.1, bitrateGraceSeconds: 5, bitrateWindowSeconds: 2, bitrateAction: 'disconnect', cidrs: [] },
        inputs: [{ name: 'main', type: 'rtmp-push' }],
        outputs: [],
        playback: {},
        recording: recordingDefaults,
        failover: failoverDefaults,
      },
    ]);
    expect(streamKeyOf(config.flows[0]?.inputs[0])).toBeUndefined();
    expect(config.flows[0]?.playback.key).toBeUndefined();
  });

  it('keeps every value that is given', () => {
    const config = parseOk(`
rtmp:
  listen: "[::]:0"
  tls: { listen: 127.0.0.1:0, cert: /tls/c.pem, key: /tls/k.pem }
  chunkSize: 128
  maxMessageSize: 64Mi
  handshakeTimeoutMs: 1000
  idleTimeoutMs: 600000
  maxPlayerBacklog: 64Ki
publicHost: relay.example.com
storage: { dir: /var/lib/flowrelay }
ffmpeg: { path: /usr/bin/ffmpeg }
log: { level: silent }
flows:
  - id: studio-a
    name: Studio A
    enabled: false
    meta: { team: live, "a.b": x }
    inputs:
      - { name: Main_1, type: rtmp-push, streamKey: ${KEY_A} }
    playback: { key: ${PLAY_A} }
`);
    expect(config).toEqual({
      rtmp: {
        listen: '[::]:0',
        tls: { listen: '127.0.0.1:0', cert: '/tls/c.pem', key: '/tls/k.pem' },
        chunkSize: 128,
        maxMessageSize: 64 * 1024 * 1024,
        handshakeTimeoutMs: 1000,
        idleTimeoutMs: 600_000,
        maxPlayerBacklog: 64 * 1024,
        mergeWritesMs: 0,
        maxChunkSize: 16 * 1024 * 1024,
        maxConnections: 10_000,
        maxConnectionsPerAddress: 500,
        allow: [],
        deny: [],
      },
      publicHost: 'relay.example.com',
      storage: { dir: '/var/lib/flowrelay', minFreeSpace: 1024 ** 3, maxWriteBacklog: 64 * 1024 ** 2 },
      recordJobs: { waitSeconds: 180, timeoutSeconds: 30, maxActive: 50, keepFinished: 1000 },
      ffmpeg: { path: '/usr/bin/ffmpeg', probePath: 'ffprobe' },
      log: { level: 'silent' },
      limits: { maxOutputsPerFlow: 50, maxFlows: 1000, maxTasks: 100, maxRunningTasks: 20 },
      webhooks: [],
      tasks: [],
      peers: [],
      flows: [
        {
          id: 'studio-a',
          name: 'Studio A',
          enabled: false,
          meta: { team: 'live', 'a.b': 'x' },
          limits: { bitrateTolerance: 0.1, bitrateGraceSeconds: 5, bitrateWindowSeconds: 2, bitrateAction: 'disconnect', cidrs: [] },
          inputs: [{ name: 'Main_1', type: 'rtmp-push', streamKey: KEY_A }],
          outputs: [],
          playback: { key: PLAY_A },
          recording: recordingDefaults,
          failover: failoverDefaults,
        },
      ],
    });
  });

  it('bounds meta: 64 entries, keys up to 64 characters, values up to 1,024', () => {
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    expect(summary(parseBad(oneFlow('{ name: main, type: rtmp-push }', `    meta: ${JSON.stringify(many)}\n`)))).toEqual([[5, 'flows[0].meta', 'at most 64 entries']]);
    expect(parseBad(oneFlow('{ name: main, type: rtmp-push }', `    meta: { note: "${'x'.repeat(1025)}" }\n`))[0]?.path).toBe('flows[0].meta.note');
    expect(parseOk(oneFlow('{ name: main, type: rtmp-push }', `    meta: ${JSON.stringify(Object.fromEntries(Object.entries(many).slice(1)))}\n`)).flows[0]?.meta).toHaveProperty('k64');
    // JSON (and YAML) can spell a __proto__ key; the schema would drop it without a word.
    expect(summary(parseBad(oneFlow('{ name: main, type: rtmp-push }', '    meta: { "__proto__": x, team: live }\n')))).toEqual([[5, 'flows[0].meta.__proto__', 'this key cannot be used']]);
  });

  it('treats an empty key or playback section in a flow as not set', () => {
    const config = parseOk(oneFlow('{ name: main, type: rtmp-push, streamKey: }', '    meta:\n    playback:\n'));
    expect(streamKeyOf(config.flows[0]?.inputs[0])).toBeUndefined();
    expect(config.flows[0]?.meta).toEqual({});
    expect(config.flows[0]?.playback).toEqual({});
  });

  it('defaults the RTMPS listener port to 1936', () => {
    expect(parseOk('rtmp: { tls: { cert: /c, key: /k } }').rtmp.tls?.listen).toBe('0.0.0.0:1936');
  });

  it('accepts quantities as plain numbers', () => {
    expect(parseOk('rtmp: { maxMessageSize: 65536 }').rtmp.maxMessageSize).toBe(65536);
    expect(parseOk('rtmp: { maxMessageSize: 1.5Mi }').rtmp.maxMessageSize).toBe(1.5 * 2 ** 20);
  });

  it('shares settings through YAML anchors and merge keys', () => {
    const config = parseOk(`
flows:
  - &base
    id: one
    meta: { team: live }
    inputs: [{ name: main, type: rtmp-push }]
  - <<: *base
    id: two
`);
    expect(config.flows.map((f) => [f.id, f.meta.team])).toEqual([
      ['one', 'live'],
      ['two', 'live'],
    ]);
  });

  it('exposes the schema for other callers (the API) with the same defaults', () => {
    const r = configSchema.safeParse({ flows: [{ id: 'x', inputs: [{ name: 'main', type: 'rtmp-push' }] }] });
    expect(r.success).toBe(true);
    // A parsed config validates again unchanged: what the API reads back, it can write.
    if (r.success) expect(configSchema.parse(r.data)).toEqual(r.data);
  });
});

describe('parseListen', () => {
  it.each([
    ['0.0.0.0:1935', '0.0.0.0', 1935],
    ['127.0.0.1:0', '127.0.0.1', 0],
    ['[::]:1935', '::', 1935],
    ['[::1]:65535', '::1', 65535],
    ['[2001:db8::7]:9000', '2001:db8::7', 9000],
    ['localhost:8080', 'localhost', 8080],
    ['relay.example.com:1935', 'relay.example.com', 1935],
  ])('%s', (s, host, port) => {
    expect(parseListen(s)).toEqual({ host, port });
  });

  it.each([
    ['1935', /host:port/],
    [':1935', /invalid host/],
    ['0.0.0.0', /host:port/],
    ['0.0.0.0:', /host:port/],
    ['0.0.0.0:65536', /outside 0\.\.65535/],
    ['0.0.0.0:-1', /host:port/],
    ['0.0.0.0:http', /host:port/],
    ['::1:1935', /without brackets/],
    ['2001:db8::7:1935', /without brackets/],
    ['[nothost]:1935', /invalid IPv6/],
    ['999.1.1.1:1935', /invalid host/],
    ['bad_host:1935', /invalid host/],
    ['rtmp://x:1935', /invalid host/],
  ])('rejects %s', (s, why) => {
    expect(() => parseListen(s)).toThrow(why);
  });

  it('reports a bad listen address at its line', () => {
    expect(summary(parseBad('rtmp:\n  listen: "1935"\n  tls: { listen: 1936, cert: /c, key: /k }\n'))).toEqual([
      [2, 'rtmp.listen', '"1935" is not host:port (for IPv6 use brackets, e.g. [::]:1935)'],
      [3, 'rtmp.tls.listen', 'must be a "host:port" string, e.g. 0.0.0.0:1935'],
    ]);
  });
});

describe('value rules', () => {
  it.each([
    ['rtmp: { chunkSize: 127 }', 'rtmp.chunkSize', 'must be from 128 to 65536'],
    ['rtmp: { chunkSize: 65537 }', 'rtmp.chunkSize', 'must be from 128 to 65536'],
    ['rtmp: { chunkSize: 1.5 }', 'rtmp.chunkSize', 'must be a whole number'],
    ['rtmp: { chunkSize: "4096" }', 'rtmp.chunkSize', 'must be a whole number'],
    ['rtmp: { maxMessageSize: 1k }', 'rtmp.maxMessageSize', 'must be between 1Ki and 64Mi bytes'],
    ['rtmp: { maxMessageSize: 65Mi }', 'rtmp.maxMessageSize', 'must be between 1Ki and 64Mi bytes'],
    ['rtmp: { maxMessageSize: 8MB }', 'rtmp.maxMessageSize', /"8MB" is not a valid number of bytes/],
    ['rtmp: { maxMessageSize: true }', 'rtmp.maxMessageSize', 'must be a number of bytes or a string such as "8Mi"'],
    ['rtmp: { handshakeTimeoutMs: 999 }', 'rtmp.handshakeTimeoutMs', 'must be from 1000 to 120000'],
    ['rtmp: { idleTimeoutMs: 600001 }', 'rtmp.idleTimeoutMs', 'must be from 1000 to 600000'],
    ['rtmp: { maxPlayerBacklog: 1Ki }', 'rtmp.maxPlayerBacklog', '64Ki'],
    ['rtmp: { tls: { cert: "", key: /k } }', 'rtmp.tls.cert', 'must not be empty'],
    ['log: { level: verbose }', 'log.level', /expected one of "trace"\|"debug"/],
    ['publicHost: "http://relay.example.com"', 'publicHost', /host name or IP address/],
    ['publicHost: relay.example.com:1935', 'publicHost', /host name or IP address/],
    ['storage: { dir: "" }', 'storage.dir', 'must not be empty'],
    ['ffmpeg: { path: "" }', 'ffmpeg.path', 'must not be empty'],
  ])('%s', (text, path, message) => {
    const issues = parseBad(text);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: FILE, line: 1, path });
    expect(issues[0]?.message).toMatch(message);
  });

  it.each(['127.0.0.1', '::1', 'relay.example.com', 'localhost', 'relay.example.com.'])(
    'accepts publicHost %s',
    (host) => {
      expect(parseOk(`publicHost: "${host}"`).publicHost).toBe(host);
    },
  );

  it.each([
    ['Demo', 'upper case'],
    ['a_b', 'underscore'],
    ['', 'empty'],
    ['a'.repeat(65), 'too long'],
  ])('rejects flow id %j (%s)', (id) => {
    const issues = parseBad(`flows:\n  - id: "${id}"\n    inputs: [{ name: main, type: rtmp-push }]\n`);
    expect(summary(issues)).toEqual([[2, 'flows[0].id', 'must be 1..64 characters of a-z 0-9 -']]);
  });

  it('accepts a 64-character flow id', () => {
    expect(parseOk(oneFlow('{ name: main, type: rtmp-push }').replace('demo', 'a'.repeat(64))).flows[0]?.id).toHaveLength(
      64,
    );
  });

  it.each(['', 'has space', 'dot.ted', 'x'.repeat(65)])('rejects input name %j', (name) => {
    expect(summary(parseBad(oneFlow(`{ name: "${name}", type: rtmp-push }`)))).toEqual([
      [4, 'flows[0].inputs[0].name', 'must be 1..64 characters of A-Z a-z 0-9 _ -'],
    ]);
  });

  it.each([
    ['short-key', ['must be at least 16 characters']],
    ['k'.repeat(129), ['must be at most 128 characters']],
    ['has/slash/aaaaaaaaaa', ['may only contain letters, digits and . _ ~ -']],
    ['bad?', ['must be at least 16 characters', 'may only contain letters, digits and . _ ~ -']],
  ])('rejects stream key %j', (key, messages) => {
    const issues = parseBad(oneFlow(`{ name: main, type: rtmp-push, streamKey: "${key}" }`));
    expect(summary(issues)).toEqual(messages.map((m) => [4, 'flows[0].inputs[0].streamKey', m]));
  });

  it('accepts keys of 16 and 128 unreserved characters', () => {
    const k16 = 'Az09._~-Az09._~-';
    const k128 = 'a'.repeat(128);
    const config = parseOk(oneFlow(`{ name: main, type: rtmp-push, streamKey: "${k16}" }`, `    playback: { key: ${k128} }`));
    expect(streamKeyOf(config.flows[0]?.inputs[0])).toBe(k16);
    expect(config.flows[0]?.playback.key).toBe(k128);
  });

  it('applies the key rules to playback keys', () => {
    expect(summary(parseBad(oneFlow('{ name: main, type: rtmp-push }', '    playback: { key: abc }')))).toEqual([
      [5, 'flows[0].playback.key', 'must be at least 16 characters'],
    ]);
  });
});

describe('inputs', () => {
  it('requires an input', () => {
    expect(summary(parseBad('flows:\n  - id: demo\n    inputs: []\n'))).toEqual([
      [3, 'flows[0].inputs', 'a flow needs an input'],
    ]);
    expect(summary(parseBad('flows:\n  - id: demo\n'))).toEqual([
      [2, 'flows[0].inputs', 'Invalid input: expected array, received undefined'],
    ]);
  });

  it('takes a primary and a backup input, and rejects a third at that input, explaining why', () => {
    const two = parseOk(`srt: {}
flows:
  - id: demo
    inputs:
      - { name: main, type: rtmp-push }
      - { name: backup, type: srt-listener }
    failover: { afterMs: 1500, revert: true }
`);
    expect(two.flows[0]?.failover).toEqual({ afterMs: 1500, revert: true, revertAfterMs: 10_000 });
    const issues = parseBad(`flows:
  - id: demo
    inputs:
      - { name: main, type: rtmp-push }
      - { name: backup, type: rtmp-push }
      - { name: third, type: rtmp-push }
`);
    expect(summary(issues)).toEqual([[6, 'flows[0].inputs[2]', 'a flow has at most two inputs: a primary and a backup']]);
  });

  it('takes a flow input: local, or on a peer with its playback key', () => {
    const config = parseOk(`peers: [{ name: origin, host: origin.example.com }]
flows:
  - id: up
    inputs: [{ name: main, type: rtmp-push }]
  - id: down
    inputs: [{ name: a, type: flow, flow: up }]
  - id: far
    inputs: [{ name: a, type: flow, flow: show, node: origin, key: "play-show-0123456789" }]
`);
    expect(config.peers).toEqual([{ name: 'origin', host: 'origin.example.com', protocol: 'rtmp', rtmpPort: 1935, tls: false, srtPort: 9000, latencyMs: 120 }]);
    expect(config.flows[1]?.inputs[0]).toMatchObject({ type: 'flow', flow: 'up', idleTimeoutMs: 15_000 });
    expect(summary(parseBad(oneFlow('{ name: main, type: flow, flow: x, node: origin }')))).toEqual(
      expect.arrayContaining([[4, 'flows[0].inputs[0].key', "required with node: the upstream flow's playback key on that node"]]),
    );
  });

  it('rejects an unknown input type and a missing one', () => {
    expect(summary(parseBad(oneFlow('{ name: main, type: webrtc }')))).toEqual([
      [4, 'flows[0].inputs[0].type', 'unknown input type "webrtc" (expected rtmp-push, rtmp-pull, srt-listener, srt-caller, pull or flow)'],
    ]);
    expect(summary(parseBad(oneFlow('{ name: main }')))).toEqual([
      [4, 'flows[0].inputs[0].type', 'input type is required (rtmp-push, rtmp-pull, srt-listener, srt-caller, pull or flow)'],
    ]);
  });
});

describe('unknown keys', () => {
  it('names the key, its path and its line at every depth', () => {
    const issues = parseBad(`rtmp:
  listen: 0.0.0.0:1935
  writeBatching: 10
  tls:
    cert: /c
    key: /k
    ciphers: ALL
srt:
  listen: 0.0.0.0:9000
  mode: fast
storage: { dir: ./data, quota: 1G }
flows:
  - id: demo
    limits: { maxBitrate: 6M, quota: 1 }
    meta: { team: live }
    inputs:
      - name: main
        type: rtmp-push
        latencyMs: 200
    playback:
      key: ${PLAY_A}
      cidrs: []
`);
    expect(summary(issues)).toEqual([
      [3, 'rtmp.writeBatching', 'unknown key "writeBatching"'],
      [7, 'rtmp.tls.ciphers', 'unknown key "ciphers"'],
      [10, 'srt.mode', 'unknown key "mode"'],
      [11, 'storage.quota', 'unknown key "quota"'],
      [14, 'flows[0].limits.quota', 'unknown key "quota"'],
      [19, 'flows[0].inputs[0].latencyMs', 'unknown key "latencyMs"'],
      [22, 'flows[0].playback.cidrs', 'unknown key "cidrs"'],
    ]);
  });

  it('rejects __proto__ like any other unknown key', () => {
    expect(summary(parseBad('rtmp:\n  __proto__: { chunkSize: 1 }\n'))).toEqual([
      [2, 'rtmp.__proto__', 'unknown key "__proto__"'],
    ]);
  });

  it('formats issues as file:line: path: message', () => {
    const [issue] = parseBad('\n\nlog: { level: info, format: json }\n');
    expect(issue && formatIssue(issue)).toBe('/etc/flowrelay/flowrelay.yaml:3: log.format: unknown key "format"');
  });
});

describe('wrong types', () => {
  it.each([
    ['rtmp: 1935', 1, 'rtmp', 'Invalid input: expected object, received number'],
    ['flows: { id: demo }', 1, 'flows', 'Invalid input: expected array, received object'],
    ['flows:\n  - demo\n', 2, 'flows[0]', 'Invalid input: expected object, received string'],
    [oneFlow('{ name: main, type: rtmp-push }').replace('id: demo', 'id: demo\n    enabled: "yes"'), 3, 'flows[0].enabled', 'Invalid input: expected boolean, received string'],
    [oneFlow('{ name: main, type: rtmp-push }', '    meta: { port: 80 }'), 5, 'flows[0].meta.port', 'Invalid input: expected string, received number'],
    ['- just\n- a list\n', 1, '', 'Invalid input: expected object, received array'],
    ['hello', 1, '', 'Invalid input: expected object, received string'],
  ])('%j', (text, line, path, message) => {
    expect(summary(parseBad(text))).toEqual([[line, path, message]]);
  });

  it('puts a missing required key at the line of its parent', () => {
    const issues = parseBad(`rtmp:
  chunkSize: 4096
  tls:
    listen: 0.0.0.0:1936
flows:
  - name: No id
    inputs: [{ name: main, type: rtmp-push }]
`);
    expect(summary(issues)).toEqual([
      [3, 'rtmp.tls.cert', 'Invalid input: expected string, received undefined'],
      [3, 'rtmp.tls.key', 'Invalid input: expected string, received undefined'],
      [6, 'flows[0].id', 'Invalid input: expected string, received undefined'],
    ]);
  });
});

describe('uniqueness', () => {
  const flow = (id: string, input: string, playback = '') =>
    `  - id: ${id}\n    inputs:\n      - ${input}\n${playback ? `    playback: { key: ${playback} }\n` : ''}`;

  it('reports a duplicate flow id at the duplicate', () => {
    const text = `flows:\n${flow('a', '{ name: main, type: rtmp-push }')}${flow('b', '{ name: main, type: rtmp-push }')}${flow('a', '{ name: main, type: rtmp-push }')}`;
    expect(summary(parseBad(text))).toEqual([[8, 'flows[2].id', 'duplicate flow id "a" (already used at flows[0].id)']]);
  });

  it('reports an SRT port bound twice (shared port, own-port inputs, listener outputs); port 0 never clashes', () => {
    const issues = parseBad(`srt: { listen: "0.0.0.0:9000" }
flows:
  - id: a
    inputs: [{ name: main, type: srt-listener, listen: "127.0.0.1:9000", passphrase: "a-long-passphrase-1" }]
    outputs:
      - { name: edge, type: srt-listener, listen: "0.0.0.0:9100" }
      - { name: any, type: srt-listener, listen: "0.0.0.0:0" }
  - id: b
    inputs: [{ name: main, type: rtmp-push }]
    outputs:
      - { name: edge, type: srt-listener, listen: "[::]:9100" }
      - { name: any, type: srt-listener, listen: "0.0.0.0:0" }
`);
    expect(summary(issues)).toEqual([
      [4, 'flows[0].inputs[0].listen', 'SRT port 9000 is already used by srt.listen'],
      [11, 'flows[1].outputs[0].listen', 'SRT port 9100 is already used by flows[0].outputs[0].listen'],
    ]);
  });

  it('measures SRT stream ids and passphrases in bytes of UTF-8, as libsrt does', () => {
    const e = (n: number) => 'é'.repeat(n); // two bytes each
    const issues = parseBad(`flows:
  - id: a
    inputs: [{ name: main, type: srt-caller, url: "srt://127.0.0.1:9000", streamId: "${e(257)}" }]
    outputs:
      - { name: far, type: srt-caller, url: "srt://127.0.0.1:9001", streamId: "${e(300)}", passphrase: "${e(40)}" }
      - { name: near, type: srt-caller, url: "srt://127.0.0.1:9002", streamId: "${e(256)}", passphrase: "${e(39)}" }
`);
    expect(summary(issues)).toEqual([
      [3, 'flows[0].inputs[0].streamId', 'must be at most 512 bytes of UTF-8 (is 514)'],
      [5, 'flows[0].outputs[0].streamId', 'must be at most 512 bytes of UTF-8 (is 600)'],
      [5, 'flows[0].outputs[0].passphrase', 'must be 10..79 bytes of UTF-8 (is 80)'],
    ]);
  });

  it('refuses an srt-listener input on the shared port when there is no srt section; one with a port of its own needs none', () => {
    const issues = parseBad(`flows:
  - id: a
    inputs: [{ name: main, type: srt-listener }]
  - id: b
    inputs: [{ name: main, type: srt-listener, listen: "127.0.0.1:9001" }]
`);
    expect(summary(issues)).toEqual([
      [3, 'flows[0].inputs[0]', 'an srt-listener input without `listen` is reached on the shared SRT port: add an `srt` section (srt.listen), or give the input a `listen` port of its own'],
    ]);
    expect(parseOk(`srt: {}\nflows:\n  - id: a\n    inputs: [{ name: main, type: srt-listener }]\n`).flows[0]?.inputs[0]?.type).toBe('srt-listener');
  });

  it('reports a duplicate input name at the duplicate', () => {
    const issues = parseBad(`flows:
  - id: demo
    inputs:
      - { name: main, type: rtmp-push }
      - { name: main, type: rtmp-push }
`);
    expect(summary(issues)).toContainEqual([5, 'flows[0].inputs[1].name', 'duplicate input name "main" (already used at flows[0].inputs[0].name)']);
  });

  it('reports a stream key used by two flows, without echoing the key', () => {
    const text = `flows:\n${flow('a', `{ name: main, type: rtmp-push, streamKey: ${KEY_A} }`)}${flow('b', `{ name: main, type: rtmp-push, streamKey: ${KEY_A} }`)}`;
    const issues = parseBad(text);
    expect(summary(issues)).toEqual([
      [7, 'flows[1].inputs[0].streamKey', 'duplicate stream key (same as flows[0].inputs[0].streamKey)'],
    ]);
    expect(issues[0]?.message).not.toContain(KEY_A);
  });

  it('reports a playback key used by two flows', () => {
    const text = `flows:\n${flow('a', '{ name: main, type: rtmp-push }', PLAY_A)}${flow('b', '{ name: main, type: rtmp-push }', PLAY_A)}`;
    expect(summary(parseBad(text))).toEqual([
      [9, 'flows[1].playback.key', 'duplicate playback key (same as flows[0].playback.key)'],
    ]);
  });

  it('rejects a playback key equal to a stream key, in the same flow or another, earlier or later', () => {
    const same = `flows:\n${flow('a', `{ name: main, type: rtmp-push, streamKey: ${KEY_A} }`, KEY_A)}`;
    expect(summary(parseBad(same))).toEqual([
      [5, 'flows[0].playback.key', 'playback key must differ from every stream key (same as flows[0].inputs[0].streamKey)'],
    ]);
    const later = `flows:\n${flow('a', '{ name: main, type: rtmp-push }', KEY_B)}${flow('b', `{ name: main, type: rtmp-push, streamKey: ${KEY_B} }`)}`;
    expect(summary(parseBad(later))).toEqual([
      [5, 'flows[0].playback.key', 'playback key must differ from every stream key (same as flows[1].inputs[0].streamKey)'],
    ]);
  });

  it('accepts distinct keys', () => {
    const text = `flows:\n${flow('a', `{ name: main, type: rtmp-push, streamKey: ${KEY_A} }`, PLAY_A)}${flow('b', `{ name: main, type: rtmp-push, streamKey: ${KEY_B} }`, PLAY_B)}`;
    expect(parseOk(text).flows).toHaveLength(2);
  });
});

describe('several problems at once', () => {
  it('reports all of them, in line order, each at its own line', () => {
    const issues = parseBad(`rtmp:
  chunkSize: 1
  maxMessageSize: lots
log: { level: loud }
flows:
  - id: Bad_Id
    inputs:
      - { name: main, type: webrtc }
  - id: ok
    inputs:
      - { name: main, type: rtmp-push, streamKey: ${KEY_A}, extra: 1 }
  - id: ok
    inputs:
      - { name: main, type: rtmp-push, streamKey: ${KEY_A} }
`);
    expect(issues.map((i) => [i.line, i.path])).toEqual([
      [2, 'rtmp.chunkSize'],
      [3, 'rtmp.maxMessageSize'],
      [4, 'log.level'],
      [6, 'flows[0].id'],
      [8, 'flows[0].inputs[0].type'],
      [11, 'flows[1].inputs[0].extra'],
      [12, 'flows[2].id'],
      [14, 'flows[2].inputs[0].streamKey'],
    ]);
    expect(issues.every((i) => i.file === FILE)).toBe(true);
  });
});

describe('environment references', () => {
  it('replaces ${NAME} in any string value, several per string', () => {
    const config = parseOk(
      `publicHost: \${HOST}
storage: { dir: "/srv/\${SITE}/\${ENVIRONMENT}" }
flows:
  - id: demo
    meta: { owner: "\${OWNER}" }
    inputs:
      - { name: main, type: rtmp-push, streamKey: "\${KEY}" }
`,
      { HOST: 'relay.example.com', SITE: 'ams', ENVIRONMENT: 'prod', OWNER: '', KEY: KEY_A },
    );
    expect(config.publicHost).toBe('relay.example.com');
    expect(config.storage.dir).toBe('/srv/ams/prod');
    expect(config.flows[0]?.meta.owner).toBe('');
    expect(streamKeyOf(config.flows[0]?.inputs[0])).toBe(KEY_A);
  });

  it('reads only the env object it is given', () => {
    process.env.FLOWRELAY_TEST_ONLY_IN_PROCESS_ENV = 'relay.example.com';
    try {
      expect(summary(parseBad('publicHost: ${FLOWRELAY_TEST_ONLY_IN_PROCESS_ENV}\n'))).toEqual([
        [1, 'publicHost', 'environment variable FLOWRELAY_TEST_ONLY_IN_PROCESS_ENV is not set'],
      ]);
    } finally {
      delete process.env.FLOWRELAY_TEST_ONLY_IN_PROCESS_ENV;
    }
  });

  it('treats $${ as a literal ${ and leaves a lone $ alone', () => {
    const config = parseOk(
      oneFlow('{ name: main, type: rtmp-push }', '    meta: { a: "$${NOT_A_VAR}", b: "cost $5", c: "$$x", d: "$${X}${X}" }'),
      { X: 'y' },
    );
    expect(config.flows[0]?.meta).toEqual({ a: '${NOT_A_VAR}', b: 'cost $5', c: '$$x', d: '${X}y' });
  });

  it('reports a missing variable at its scalar, only once, alongside other issues', () => {
    const issues = parseBad(`log:
  level: info
flows:
  - id: demo
    inputs:
      - name: main
        type: rtmp-push
        streamKey: "\${DEMO_KEY}"
    playback:
      key: \${DEMO_PLAY}
      bogus: 1
`);
    expect(summary(issues)).toEqual([
      [8, 'flows[0].inputs[0].streamKey', 'environment variable DEMO_KEY is not set'],
      [10, 'flows[0].playback.key', 'environment variable DEMO_PLAY is not set'],
      [11, 'flows[0].playback.bogus', 'unknown key "bogus"'],
    ]);
  });

  it('reports malformed references', () => {
    expect(summary(parseBad('publicHost: "${HOST"\n'))).toEqual([
      [1, 'publicHost', 'unterminated "${" (write "$${" for a literal "${")'],
    ]);
    expect(summary(parseBad('publicHost: "${1HOST}"\n'))).toEqual([
      [1, 'publicHost', 'invalid environment variable name "1HOST"'],
    ]);
  });

  it('does not touch map keys or non-string scalars', () => {
    expect(summary(parseBad('"${X}": 1\n', { X: 'rtmp' }))).toEqual([[1, '["${X}"]', 'unknown key "${X}"']]);
    expect(parseOk('rtmp: { chunkSize: 4096 }', {}).rtmp.chunkSize).toBe(4096);
  });

  it('leaves strings without references unchanged', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.includes('${')),
        (s) => {
          expect(expandEnvRefs(s, {})).toEqual({ value: s, errors: [] });
        },
      ),
    );
  });
});

describe('YAML syntax', () => {
  it.each([
    ['rtmp:\n  listen: 0.0.0.0:1935\nflows: [ { id: demo ]\nlog: {}\n', 3],
    ['log:\n\tlevel: info\n', 2],
    ['rtmp:\n  listen: 0.0.0.0:1935\nflows: [\n  { id: demo\n', 5],
    ['rtmp:\n  listen: "0.0.0.0:1935\n', 3],
    ['log:\n  level: info\n level: debug\n', 3],
  ])('reports a syntax error with its line: %j', (text, line) => {
    const issues = parseBad(text);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]).toMatchObject({ file: FILE, line, path: '' });
  });

  it('reports a duplicate key at the duplicate, naming it', () => {
    expect(summary(parseBad('log: { level: info }\npublicHost: a\nlog: { level: warn }\n'))).toEqual([
      [3, '', 'key "log" appears twice in the same map'],
    ]);
    expect(summary(parseBad('flows:\n  - id: a\n    inputs: [{ name: main, type: rtmp-push, "name": x }]\n'))).toEqual([
      [3, '', 'key "name" appears twice in the same map'],
    ]);
  });

  it('reports an alias bomb instead of expanding it', () => {
    const levels = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'];
    for (let i = 1; i < 8; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      levels.push(`${cur}: &${cur} [${Array.from({ length: 10 }, () => `*${prev}`).join(', ')}]`);
    }
    const issues = parseBad(`${levels.join('\n')}\n`);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toMatch(/alias/i);
  });

  it('rejects a second document', () => {
    expect(summary(parseBad('log: { level: info }\n---\nlog: { level: warn }\n'))).toEqual([
      [2, '', 'the file must contain a single YAML document (found a second "---")'],
    ]);
  });
});

describe('files and paths', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flowrelay-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves relative paths against the config file directory', () => {
    const r = parseConfigText(
      'storage: { dir: ../state }\nrtmp: { tls: { cert: tls/c.pem, key: /abs/k.pem } }\n',
      '/opt/flowrelay/etc/flowrelay.yaml',
      {},
    );
    expect(r.ok && r.config.storage.dir).toBe('/opt/flowrelay/state');
    expect(r.ok && r.config.rtmp.tls).toEqual({ listen: '0.0.0.0:1936', cert: '/opt/flowrelay/etc/tls/c.pem', key: '/abs/k.pem' });
    expect(r.ok && r.file).toBe('/opt/flowrelay/etc/flowrelay.yaml');
  });

  it('resolves relative media files of pull inputs and files tasks against the config file directory; URLs stay', () => {
    const r = parseConfigText(
      `flows:
  - id: looped
    inputs: [{ name: main, type: pull, url: media/loop.mp4 }]
  - id: remote
    inputs: [{ name: main, type: pull, url: "https://cdn.example.com/live.m3u8" }]
tasks:
  - id: t
    source: { type: files, urls: [media/a.mp4, /abs/b.mp4, "file:c.mp4"] }
    destination: rtmp://127.0.0.1/live/x
    startTime: "2026-01-01T00:00:00Z"
    endTime: "2026-01-01T01:00:00Z"
`,
      '/opt/flowrelay/etc/flowrelay.yaml',
      {},
    );
    expect(r.ok, JSON.stringify(!r.ok && r.issues)).toBe(true);
    if (!r.ok) return;
    expect(r.config.flows.map((f) => (f.inputs[0] as { url: string }).url)).toEqual(['/opt/flowrelay/etc/media/loop.mp4', 'https://cdn.example.com/live.m3u8']);
    expect((r.config.tasks[0]!.source as { urls: string[] }).urls).toEqual(['/opt/flowrelay/etc/media/a.mp4', '/abs/b.mp4', 'file:c.mp4']);
  });

  it('resolves against the working directory when the file name is relative', () => {
    const r = parseConfigText('', 'etc/flowrelay.yaml', {});
    expect(r.ok && r.config.storage.dir).toBe(resolve('etc/data'));
    expect(r.ok && r.file).toBe(resolve('etc/flowrelay.yaml'));
  });

  it('loads a file from disk with the env it is given', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(file, oneFlow('{ name: main, type: rtmp-push, streamKey: "${K}" }'));
    const r = await loadConfigFile(file, { K: KEY_A });
    expect(r.ok).toBe(true);
    expect(r.ok && r.file).toBe(file);
    expect(r.ok && r.config.storage.dir).toBe(join(dir, 'data'));
    expect(r.ok && streamKeyOf(r.config.flows[0]?.inputs[0])).toBe(KEY_A);
  });

  it('names the file in issues exactly as given', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'log:\n  level: loud\n');
    const r = await loadConfigFile(file, {});
    expect(!r.ok && r.issues.map(formatIssue)).toEqual([`${file}:2: log.level: ${(r.ok ? [] : r.issues)[0]?.message}`]);
  });

  it('reports a missing file as one issue at line 0 with the OS error', async () => {
    const file = join(dir, 'missing.yaml');
    const r = await loadConfigFile(file, {});
    expect(r.ok).toBe(false);
    expect(!r.ok && r.issues).toHaveLength(1);
    expect(!r.ok && r.issues[0]).toMatchObject({ file, line: 0, path: '' });
    expect(!r.ok && r.issues[0]?.message).toMatch(/ENOENT/);
    expect(!r.ok && r.issues[0] && formatIssue(r.issues[0])).toMatch(new RegExp(`^${file}:0: ENOENT`));
  });

  it('reports a directory given as the file', async () => {
    const r = await loadConfigFile(dir, {});
    expect(!r.ok && r.issues[0]).toMatchObject({ file: dir, line: 0 });
    expect(!r.ok && r.issues[0]?.message).toMatch(/EISDIR/);
  });
});

describe('formatPath', () => {
  it('writes indices in brackets and quotes keys that are not plain', () => {
    expect(formatPath(['flows', 0, 'inputs', 1, 'streamKey'])).toBe('flows[0].inputs[1].streamKey');
    expect(formatPath(['flows', 0, 'meta', 'a.b'])).toBe('flows[0].meta["a.b"]');
    expect(formatPath([])).toBe('');
  });
});

describe('bundled config files', () => {
  const configDir = fileURLToPath(new URL('../../config/', import.meta.url));

  it('config/flowrelay.yaml loads cleanly and has a demo flow without keys', async () => {
    const r = await loadConfigFile(join(configDir, 'flowrelay.yaml'), {});
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
    expect(r.config.rtmp.listen).toBe('0.0.0.0:1935');
    expect(r.config.storage.dir).toBe(resolve(configDir, '../data'));
    expect(r.config.flows).toHaveLength(1);
    const [demo] = r.config.flows;
    expect(demo?.id).toBe('demo');
    expect(demo?.inputs).toEqual([{ name: 'main', type: 'rtmp-push' }]);
    expect(demo?.playback.key).toBeUndefined();
  });

  it('config/example.yaml loads cleanly with its env vars set', async () => {
    const env = {
      STUDIO_A_KEY: KEY_A, STUDIO_A_PLAY_KEY: PLAY_A, YT_KEY: 'yt', FB_KEY: 'fb', ORIGIN_KEY: 'origin', TWITCH_KEY: 'tw',
      FIELD_CAM_KEY: 'field-cam-key-0123456789', FIELD_CAM_PASSPHRASE: 'field cam passphrase', PARTNER_PASSPHRASE: 'partner passphrase', EDGE_PASSPHRASE: 'edge passphrase x', WEBHOOK_SECRET: 'webhook secret 0123456789',
      TWITCH_SHOW_KEY: 'show', TASK_CALLBACK_SECRET: 'task callback secret 0123',
      EVENT_MAIN_KEY: 'event-main-key-0123456789', EVENT_BACKUP_KEY: 'event-backup-key-0123456789', ORIGIN_SHOW_PLAY_KEY: 'origin-show-play-0123456789',
    };
    const r = await loadConfigFile(join(configDir, 'example.yaml'), env);
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
    expect(r.config.rtmp.tls).toBeDefined();
    expect(r.config.flows.map((f) => f.id)).toEqual(['studio-a', 'field-cam', 'from-encoder-box', 'from-origin', 'main-event', 'studio-a-copy', 'from-other-node', 'from-hls', 'rehearsal']);
    expect(r.config.flows[4]?.inputs.map((i) => i.type)).toEqual(['rtmp-push', 'srt-listener']);
    expect(r.config.peers.map((p) => p.name)).toEqual(['origin']);
    expect(r.config.flows[0]?.recording).toMatchObject({ mode: 'automatic', format: 'mp4' });
    expect(r.config.flows[7]?.inputs[0]?.type).toBe('pull');
    expect(r.config.tasks.map((t) => t.id)).toEqual(['morning-show']);
    expect(r.config.flows[0]?.outputs.map((o) => o.name)).toEqual(['youtube', 'facebook']);
    expect(r.config.flows[1]?.outputs.map((o) => o.type)).toEqual(['srt-caller', 'srt-listener']);
    expect(r.config.flows[3]?.inputs[0]?.type).toBe('rtmp-pull');
    expect(r.config.srt?.listen).toBe('0.0.0.0:9000');
    expect(streamKeyOf(r.config.flows[0]?.inputs[0])).toBe(KEY_A);
    expect(r.config.flows[0]?.playback.key).toBe(PLAY_A);
  });

  it('config/example.yaml names each variable that is not set', async () => {
    const r = await loadConfigFile(join(configDir, 'example.yaml'), {});
    expect(!r.ok && r.issues.map((i) => i.message)).toEqual([
      'environment variable WEBHOOK_SECRET is not set',
      'environment variable STUDIO_A_KEY is not set',
      'environment variable STUDIO_A_PLAY_KEY is not set',
      'environment variable YT_KEY is not set',
      'environment variable FB_KEY is not set',
      'environment variable FIELD_CAM_KEY is not set',
      'environment variable FIELD_CAM_PASSPHRASE is not set',
      'environment variable PARTNER_PASSPHRASE is not set',
      'environment variable EDGE_PASSPHRASE is not set',
      'environment variable ORIGIN_KEY is not set',
      'environment variable TWITCH_KEY is not set',
      'environment variable EVENT_MAIN_KEY is not set',
      'environment variable EVENT_BACKUP_KEY is not set',
      'environment variable ORIGIN_SHOW_PLAY_KEY is not set',
      'environment variable TWITCH_SHOW_KEY is not set',
      'environment variable TASK_CALLBACK_SECRET is not set',
    ]);
  });
});

describe('webhooks section', () => {
  it('defaults events to all and checks url, secret and event names with line and key', () => {
    const ok = parseConfigText('webhooks:\n  - { url: "https://h.example.com/x", secret: "0123456789abcdef" }\n', FILE, {});
    expect(ok.ok && ok.config.webhooks).toEqual([{ url: 'https://h.example.com/x', secret: '0123456789abcdef', events: ['*'], maxQueue: 1000, timeoutMs: 5000, maxAttempts: 6, retryDelayMs: 1000 }]);
    const bad = parseConfigText('webhooks:\n  - url: "ftp://h.example.com/x"\n    secret: short\n    events: [input.connected, nonsense]\n', FILE, {});
    expect(!bad.ok && bad.issues.map((i) => [i.line, i.path])).toEqual([
      [2, 'webhooks[0].url'],
      [3, 'webhooks[0].secret'],
      [4, 'webhooks[0].events[1]'],
    ]);
  });
});
