import { describe, expect, it } from 'vitest';
import { applyEdit, editConflicts } from '../../src/config/edit.js';
import { parseConfigText } from '../../src/config/load.js';

const FILE = `# operator's header comment
rtmp:
  listen: 0.0.0.0:1935   # the ingest port

flows:
  # the studio
  - id: studio
    inputs: [{ name: main, type: rtmp-push, streamKey: "\${STUDIO_KEY}" }]
    playback: { key: "\${STUDIO_PLAY}" }
    outputs:
      - { name: yt, type: rtmp, url: "rtmp://a.example.com/live2", streamKey: "\${YT_KEY}" }   # youtube
  - id: other
    inputs: [{ name: main, type: rtmp-push }]
`;
const ENV = { STUDIO_KEY: 'studio-key-0123456789', STUDIO_PLAY: 'studio-play-0123456789', YT_KEY: 'yt-key' };

function edited(result: ReturnType<typeof applyEdit>): string {
  if (!result.ok) throw new Error(`${result.code}: ${result.message}`);
  const check = parseConfigText(result.text, '/x.yaml', ENV);
  if (!check.ok) throw new Error(JSON.stringify(check.issues));
  return result.text;
}

describe('config edits through the API', () => {
  it('a new flow is appended with generated keys written as values; comments and ${ENV} references stay', () => {
    const text = edited(applyEdit(FILE, { kind: 'flow.create', flow: { id: 'new-one', name: 'New' } }));
    // Everything the edit did not touch is byte for byte as the operator wrote it.
    expect(text.startsWith(FILE)).toBe(true);
    expect(text).toContain("# operator's header comment");
    expect(text).toContain('# youtube');
    expect(text).toContain('${YT_KEY}');
    const r = parseConfigText(text, '/x.yaml', ENV);
    if (!r.ok) throw new Error('invalid');
    const flow = r.config.flows.find((f) => f.id === 'new-one')!;
    expect(flow.inputs).toEqual([{ name: 'main', type: 'rtmp-push', streamKey: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/) }]);
    expect(flow.playback.key).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('refuses a duplicate id, an unknown flow or output, and a renamed id', () => {
    expect(applyEdit(FILE, { kind: 'flow.create', flow: { id: 'studio' } })).toMatchObject({ ok: false, code: 'already_exists' });
    expect(applyEdit(FILE, { kind: 'flow.delete', id: 'nope' })).toMatchObject({ ok: false, code: 'not_found' });
    expect(applyEdit(FILE, { kind: 'output.delete', flowId: 'studio', name: 'nope' })).toMatchObject({ ok: false, code: 'not_found' });
    expect(applyEdit(FILE, { kind: 'output.create', flowId: 'studio', output: { name: 'yt', type: 'rtmp', url: 'rtmp://x/y' } })).toMatchObject({ ok: false, code: 'already_exists' });
    expect(applyEdit(FILE, { kind: 'flow.update', id: 'studio', changes: { id: 'renamed' } })).toMatchObject({ ok: false, code: 'validation_error' });
  });

  it('refuses to delete a flow another flow on this node reads, naming that flow and input; a remote reader does not count', () => {
    const text = `flows:
  - id: up
    inputs: [{ name: main, type: rtmp-push, streamKey: "k-0123456789abcdef" }]
  - id: elsewhere
    inputs: [{ name: far, type: flow, flow: up, node: edge, playbackKey: "p-0123456789abcdef" }]
  - id: down
    inputs: [{ name: feed, type: flow, flow: up }]
`;
    expect(applyEdit(text, { kind: 'flow.delete', id: 'up' })).toEqual({ ok: false, code: 'conflict', message: 'flow "down" reads this flow through its input "feed"; change or remove that input first' });
    const withoutLocal = text.replace('type: flow, flow: up }', 'type: rtmp-push, streamKey: "d-0123456789abcdef" }');
    expect(applyEdit(withoutLocal, { kind: 'flow.delete', id: 'up' })).toMatchObject({ ok: true });
  });

  it('patches only the keys sent; null removes a key; outputs are added, changed and removed in place', () => {
    let text = edited(applyEdit(FILE, { kind: 'flow.update', id: 'studio', changes: { name: 'Studio A', enabled: false } }));
    expect(text).toContain('  - id: studio\n    inputs: [{ name: main, type: rtmp-push, streamKey: "${STUDIO_KEY}" }]\n');
    expect(text).toContain('    name: Studio A\n    enabled: false\n  - id: other');
    text = edited(applyEdit(text, { kind: 'flow.update', id: 'studio', changes: { enabled: null } }));
    expect(text).not.toContain('enabled');
    text = edited(applyEdit(text, { kind: 'output.create', flowId: 'other', output: { name: 'tw', type: 'rtmp', url: 'rtmp://live.twitch.tv/app', streamKey: 'k' } }));
    text = edited(applyEdit(text, { kind: 'output.update', flowId: 'studio', name: 'yt', changes: { url: 'rtmp://b.example.com/live2' } }));
    expect(text).toContain('rtmp://b.example.com/live2');
    expect(text).toContain('${YT_KEY}');
    const r = parseConfigText(text, '/x.yaml', ENV);
    if (!r.ok) throw new Error('invalid');
    expect(r.config.flows.find((f) => f.id === 'other')!.outputs.map((o) => o.name)).toEqual(['tw']);
    text = edited(applyEdit(text, { kind: 'output.delete', flowId: 'studio', name: 'yt' }));
    text = edited(applyEdit(text, { kind: 'flow.delete', id: 'other' }));
    expect(text).not.toContain('id: other');
    expect(text).toContain('# the studio');
  });

  it('an empty flow-style flows list grows in block style', () => {
    const text = edited(applyEdit('flows: []\n', { kind: 'flow.create', flow: { id: 'a' } }));
    expect(text).toMatch(/^flows:\n {2}- id: a\n/);
  });

  it('a hand edit of the same object since loading is a conflict; one elsewhere is not', () => {
    const handEdited = FILE.replace('rtmp://a.example.com/live2', 'rtmp://c.example.com/live2');
    expect(editConflicts(FILE, handEdited, { kind: 'output.update', flowId: 'studio', name: 'yt', changes: {} })).toBe(true);
    expect(editConflicts(FILE, handEdited, { kind: 'flow.update', id: 'studio', changes: {} })).toBe(true);
    expect(editConflicts(FILE, handEdited, { kind: 'flow.update', id: 'other', changes: {} })).toBe(false);
    expect(editConflicts(FILE, handEdited, { kind: 'output.create', flowId: 'studio', output: { name: 'fb' } })).toBe(false);
    expect(editConflicts(FILE, FILE, { kind: 'flow.delete', id: 'studio' })).toBe(false);
  });
});

describe('an API edit keeps the text it did not touch', () => {
  const HAND = `# header
rtmp:
    listen: 0.0.0.0:1935     # four-space indent, wide comment gap
    chunkSize: 65536
flows:
  - id: a   # first
    inputs: [{name: main, type: rtmp-push, streamKey: key-a-0123456789}]
  # the second
  - id: b
    inputs: [{ name: main, type: rtmp-push, streamKey: key-b-0123456789 }]
    playback: {key: play-b-0123456789}
    outputs:
      - {name: o, type: rtmp, url: "rtmp://h.example.com/app", streamKey: k}   # the one output

  - id: c
    inputs: [ {name: main,type: rtmp-push, streamKey: key-c-0123456789} ]
`;
  const plainOf = (text: string): unknown => parseConfigText(text, '/x.yaml', {});
  const comments = (text: string): string[] => text.split('\n').flatMap((l) => (l.includes('#') ? [l.slice(l.indexOf('#')).trim()] : []));

  it('another flow, other sections and untouched keys of the edited flow stay byte for byte', () => {
    const text = edited(applyEdit(HAND, { kind: 'output.create', flowId: 'b', output: { name: 'p', type: 'rtmp', url: 'rtmp://x.example.com/app', streamKey: 'z' } }));
    expect(text.startsWith(HAND.slice(0, HAND.indexOf('    outputs:')))).toBe(true);
    expect(text).toContain('      - {name: o, type: rtmp, url: "rtmp://h.example.com/app", streamKey: k}   # the one output\n');
    expect(text).toContain('\n  - id: c\n    inputs: [ {name: main,type: rtmp-push, streamKey: key-c-0123456789} ]\n');
    expect(text).toMatch(/- name: p\n\s+type: rtmp\n\s+url: rtmp:\/\/x\.example\.com\/app/);
    expect(comments(text)).toEqual(comments(HAND));
  });

  it('deleting a flow takes its comment with it and leaves the rest as written', () => {
    const text = edited(applyEdit(HAND, { kind: 'flow.delete', id: 'a' }));
    expect(text).not.toContain('id: a');
    expect(text).not.toContain('# first');
    expect(text).toContain(HAND.slice(HAND.indexOf('  # the second')));
    expect(text.startsWith(HAND.slice(0, HAND.indexOf('  - id: a')))).toBe(true);
  });

  it('a CRLF file stays CRLF, and a last line without a newline does not cost the rest its text', () => {
    const flows = Array.from({ length: 70 }, (_, i) => `  - id: f${i}\n    inputs: [{name: main, type: rtmp-push, streamKey: key-${i}-0123456789}]   # in ${i}`);
    const noFinalNewline = `flows:\n${flows.join('\n')}`;
    const text = edited(applyEdit(noFinalNewline, { kind: 'flow.create', flow: { id: 'new' } }));
    expect(text.startsWith(`${noFinalNewline}\n  - id: new\n`)).toBe(true);

    const crlf = '# h\r\nrtmp:\r\n  listen: 1.2.3.4:1935   # c\r\nflows:\r\n  - id: a\r\n    inputs: [{name: main, type: rtmp-push, streamKey: key-a-0123456789}]\r\n';
    const out = edited(applyEdit(crlf, { kind: 'flow.update', id: 'a', changes: { name: 'A' } }));
    expect(out.replace(/\r\n/g, '')).not.toContain('\n');
    expect(out.startsWith(crlf.slice(0, crlf.indexOf('  - id: a')))).toBe(true);
    expect(out).toContain('    name: A\r\n');
  });

  it('an edit that would leave an alias without its anchor is refused, and the file is not touched', () => {
    const anchored = 'flows:\n  - id: a\n    inputs: &in\n      - {name: main, type: rtmp-push}\n  - id: b\n    inputs: *in\n';
    const result = applyEdit(anchored, { kind: 'flow.delete', id: 'a' });
    expect(result).toMatchObject({ ok: false, code: 'conflict', message: expect.stringMatching(/cannot be written into the config file: .*alias/i) });
  });

  it('an output or flow anchored and merged elsewhere (`<<: *yt`) is not changed in place: that would change the other too', () => {
    const merged =
      'flows:\n  - id: a\n    inputs: [{name: main, type: rtmp-push}]\n    outputs:\n      - &yt {name: yt, type: rtmp, url: "rtmp://x.example/live", streamKey: aaaa-0123456789}\n' +
      '  - id: b\n    inputs: [{name: main, type: rtmp-push}]\n    outputs:\n      - <<: *yt\n        name: yt2\n';
    expect(applyEdit(merged, { kind: 'output.update', flowId: 'a', name: 'yt', changes: { url: 'rtmp://y.example/live' } })).toMatchObject({
      ok: false,
      code: 'conflict',
      message: 'output "yt" of flow "a" is anchored as &yt in the config file and shared through *yt elsewhere: changing it here would change those too; edit the file by hand',
    });
    // The output that merges from it is its own map: changing it overrides the merged key there only.
    const text = edited(applyEdit(merged, { kind: 'output.update', flowId: 'b', name: 'yt2', changes: { url: 'rtmp://y.example/live' } }));
    const plain = plainOf(text) as { config: { flows: { outputs: { url: string }[] }[] } };
    expect(plain.config.flows.map((f) => f.outputs[0]!.url)).toEqual(['rtmp://x.example/live', 'rtmp://y.example/live']);

    const sharedFlow = 'flows:\n  - &a\n    id: a\n    inputs: [{name: main, type: rtmp-push}]\n  - <<: *a\n    id: b\n';
    expect(applyEdit(sharedFlow, { kind: 'flow.update', id: 'a', changes: { name: 'A' } })).toMatchObject({ ok: false, code: 'conflict', message: expect.stringMatching(/^flow "a" is anchored as &a/) });
    // An anchor nothing uses is no reason to refuse.
    expect(applyEdit('flows:\n  - &lonely\n    id: a\n    inputs: [{name: main, type: rtmp-push}]\n', { kind: 'flow.update', id: 'a', changes: { name: 'A' } }).ok).toBe(true);
  });

  it('a create whose inputs or playback have the wrong type is refused, not filled with defaults', async () => {
    const { prepareEdit } = await import('../../src/config/prepare-edit.js');
    const file = 'flows: []\n';
    const garbled = prepareEdit(file, { kind: 'flow.create', flow: { id: 'u4', inputs: 'garbage' } }, [], '/x.yaml', {});
    expect(garbled).toMatchObject({ ok: false, code: 'validation_error', message: expect.stringMatching(/^inputs: /) });
    const playback = prepareEdit(file, { kind: 'flow.create', flow: { id: 'u8', playback: 'x' } }, [], '/x.yaml', {});
    expect(playback).toMatchObject({ ok: false, code: 'validation_error', message: expect.stringMatching(/^playback: /) });
    // Left out, both get their defaults (one rtmp-push input, generated keys).
    expect(prepareEdit(file, { kind: 'flow.create', flow: { id: 'u9' } }, [], '/x.yaml', {}).ok).toBe(true);
  });

  it('a delete refused for a problem elsewhere in the file names it as the file on disk has it, past the deleted item', async () => {
    const { prepareEdit } = await import('../../src/config/prepare-edit.js');
    const flow = (id: string, extra = '') => `  - id: ${id}\n    inputs: [{ name: main, type: rtmp-push, streamKey: "key-${id}-0123456789abcdef"${extra} }]\n    outputs:\n      - { name: o1, url: "rtmp://x.example/live/${id}" }\n      - { name: o2, url: "rtmp://y.example/live/${id}" }\n`;
    const file = `flows:\n${flow('a')}${flow('b')}${flow('c', ', bogus: 1')}tasks:\n  - { id: t1, bogus: 2 }\n`;
    const lineOf = (text: string) => file.split('\n').findIndex((l) => l.includes(text)) + 1;
    const flowGone = prepareEdit(file, { kind: 'flow.delete', id: 'b' }, [], '/x.yaml', {});
    expect(flowGone).toMatchObject({ ok: false, code: 'validation_error' });
    const issues = (flowGone as { issues: { path: string; line: number; message: string }[] }).issues;
    expect(issues).toContainEqual(expect.objectContaining({ path: 'flows[2].inputs[0].bogus', line: lineOf('key-c-'), message: expect.stringContaining(`elsewhere in the config file, line ${lineOf('key-c-')}`) }));
    expect(issues).toContainEqual(expect.objectContaining({ path: expect.stringMatching(/^tasks\[0\]/), line: lineOf('id: t1') }));

    const outputGone = prepareEdit(file, { kind: 'output.delete', flowId: 'a', name: 'o1' }, [], '/x.yaml', {});
    expect((outputGone as { issues: { path: string; line: number }[] }).issues).toContainEqual(expect.objectContaining({ path: 'flows[2].inputs[0].bogus', line: lineOf('key-c-') }));
  });

  it('a file saved with a UTF-8 byte-order mark keeps it through an API edit', async () => {
    const { prepareEdit } = await import('../../src/config/prepare-edit.js');
    const file = '\uFEFFflows:\n  - id: a\n    inputs: [{ name: main, type: rtmp-push, streamKey: "key-a-0123456789abcdef" }]\n';
    const result = prepareEdit(file, { kind: 'flow.update', id: 'a', changes: { name: 'A' } }, [], '/x.yaml', {});
    expect(result).toMatchObject({ ok: true, text: expect.stringMatching(/^\uFEFFflows:\n/) });
    expect((result as { text: string }).text).toContain('name: A');
  });

  it('indentation the library would not write is kept where it fits, and the file always says the same as a plain rewrite', () => {
    const odd = 'flows:\n- id: a\n  inputs: [{name: main, type: rtmp-push, streamKey: key-a-0123456789}]\n- id: b   # b\n  inputs: [{name: main, type: rtmp-push, streamKey: key-b-0123456789}]\n';
    const result = applyEdit(odd, { kind: 'flow.update', id: 'a', changes: { name: 'A' } });
    const text = edited(result);
    expect(JSON.stringify(plainOf(text))).toBe(JSON.stringify(plainOf(odd.replace('- id: a\n', '- id: a\n  name: A\n'))));
    expect(comments(text)).toEqual(['# b']);
  });
});
