import { describe, expect, it } from 'vitest';
import { parseBad, parseOk, summary } from '../helpers/config-text.js';
import { fillMissingSecrets } from '../../src/config/secrets.js';

const issues = (text: string): [number, string, string][] => summary(parseBad(text));

const flowWith = (outputs: string, input = '{ name: main, type: rtmp-push }') => `flows:
  - id: a
    inputs: [${input}]
    outputs:
${outputs}`;

describe('outputs in the config', () => {
  it('fills output defaults and resolves a relative CA path against the file', () => {
    const config = parseOk(flowWith('      - { name: yt, type: rtmp, url: "rtmp://a.rtmp.youtube.com/live2", streamKey: abc, tls: { ca: ca.pem } }'));
    expect(config.flows[0]!.outputs[0]).toEqual({
      name: 'yt',
      type: 'rtmp',
      url: 'rtmp://a.rtmp.youtube.com/live2',
      streamKey: 'abc',
      enabled: true,
      tls: { ca: '/etc/flowrelay/ca.pem', verify: true },
      reconnect: { initialDelayMs: 1000, maxDelayMs: 30_000, resetAfterMs: 60_000, failAfter: 5, giveUp: false },
      connectTimeoutMs: 10_000,
      handshakeTimeoutMs: 10_000,
      idleDisconnectMs: 30_000,
      maxBacklog: 8 * 1024 * 1024,
    });
  });

  it('rejects bad URLs, unsupported types, duplicate names and bad reconnect settings, each at its line', () => {
    expect(
      issues(
        flowWith(`      - { name: a, type: rtmp, url: "http://example.com/live" }
      - { name: b, type: webrtc, url: "srt://x:9000" }
      - { name: a, type: rtmp, url: "rtmp://example.com/live/key" }
      - { name: c, type: rtmp, url: "rtmp://example.com/live/key", reconnect: { initialDelayMs: 5000, maxDelayMs: 1000 } }`),
      ),
    ).toEqual([
      [5, 'flows[0].outputs[0].url', expect.stringMatching(/rtmp:\/\/ or rtmps:\/\//) as unknown as string],
      [6, 'flows[0].outputs[1].type', 'unknown output type "webrtc" (expected rtmp, srt-caller or srt-listener)'],
      [7, 'flows[0].outputs[2].name', 'duplicate output name "a" (already used at flows[0].outputs[0].name)'],
      [8, 'flows[0].outputs[3].reconnect.maxDelayMs', 'maxDelayMs must be at least initialDelayMs'],
    ]);
  });

  it('refuses a URL without a stream name unless a streamKey is given (the client could not connect with it)', () => {
    expect(
      issues(
        flowWith(`      - { name: a, type: rtmp, url: "rtmp://example.com/live2" }
      - { name: b, type: rtmp, url: "rtmp://example.com/live2", streamKey: abc }
      - { name: c, type: rtmp, url: "rtmp://example.com/live2/abc" }`),
      ),
    ).toEqual([[5, 'flows[0].outputs[0].url', 'RTMP URL has no stream name: end it with /<stream key> or give the key separately']]);
    expect(issues(`flows:\n  - id: a\n    inputs: [{ name: up, type: rtmp-pull, url: "rtmp://origin.example.com/live" }]\n`)).toEqual([
      [3, 'flows[0].inputs[0].url', 'RTMP URL has no stream name: end it with /<stream key> or give the key separately'],
    ]);
  });

  it('an srt-listener output needs its listen address (it has no shared port to fall back on)', () => {
    expect(issues(flowWith('      - { name: pull, type: srt-listener }'))).toEqual([[5, 'flows[0].outputs[0].listen', 'required: the "host:port" to listen on, e.g. 0.0.0.0:9001']]);
  });

  it('limits outputs per flow to limits.maxOutputsPerFlow', () => {
    const outputs = Array.from({ length: 3 }, (_, i) => `      - { name: o${i}, type: rtmp, url: "rtmp://example.com/live/k${i}" }`).join('\n');
    expect(issues(`limits: { maxOutputsPerFlow: 2 }\n${flowWith(outputs)}`)).toEqual([
      [8, 'flows[0].outputs[2]', 'a flow may have at most 2 outputs (limits.maxOutputsPerFlow)'],
    ]);
    expect(parseOk(`limits: { maxOutputsPerFlow: 3 }\n${flowWith(outputs)}`).flows[0]!.outputs).toHaveLength(3);
  });
});

describe('rtmp-pull inputs in the config', () => {
  it('accepts an rtmp-pull input; its streamKey is the remote one, never generated or checked for reuse', async () => {
    const text = `flows:
  - id: a
    inputs: [{ name: up, type: rtmp-pull, url: "rtmp://origin.example.com/live", streamKey: same-key }]
  - id: b
    inputs: [{ name: up, type: rtmp-pull, url: "rtmp://origin.example.com/live", streamKey: same-key }]
`;
    const config = parseOk(text);
    expect(config.flows[0]!.inputs[0]).toMatchObject({ type: 'rtmp-pull', streamKey: 'same-key', idleTimeoutMs: 15_000 });
    const saved: Record<string, string>[] = [];
    const store = { load: async () => ({}), save: async (v: Record<string, string>) => void saved.push(v) };
    const { generated } = await fillMissingSecrets(config, store);
    expect(generated.map((g) => g.what)).toEqual(['playbackKey', 'playbackKey']);
  });

  it('rejects an rtmp-pull input without a usable URL', () => {
    expect(issues(`flows:\n  - id: a\n    inputs: [{ name: up, type: rtmp-pull, url: "rtmp://origin.example.com" }]\n`)).toEqual([
      [3, 'flows[0].inputs[0].url', expect.stringMatching(/app/) as unknown as string],
    ]);
  });
});
