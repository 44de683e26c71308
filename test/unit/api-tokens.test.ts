import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashApiToken, newApiToken, TokenVerifier } from '../../src/api/tokens.js';
import { formatIssue, parseConfigText } from '../../src/config/load.js';
import { fillMissingSecrets, resolveApiTokens, type SecretStore } from '../../src/config/secrets.js';
import { ConfigWatcher } from '../../src/config/watch.js';
import { parsePrometheusText } from '../helpers/prometheus-text.js';

function memoryStore(initial: Record<string, string> = {}): SecretStore & { data: Record<string, string> } {
  const store = {
    data: { ...initial },
    load: async () => ({ ...store.data }),
    save: async (values: Record<string, string>) => void (store.data = { ...values }),
  };
  return store;
}

describe('API tokens', () => {
  const write = newApiToken();
  const read = newApiToken();
  const verifier = new TokenVerifier([
    { name: 'ops', scope: 'write', sha256: hashApiToken(write) },
    { name: 'dash', scope: 'read', sha256: hashApiToken(read) },
  ]);

  it('new tokens are long, URL-safe and distinct; the hash is SHA-256 hex', () => {
    expect(write).toMatch(/^frt_[A-Za-z0-9_-]{43}$/);
    expect(write).not.toBe(read);
    expect(hashApiToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('accepts known bearer tokens with their scope, refuses the rest with a reason', () => {
    expect(verifier.check(`Bearer ${write}`)).toEqual({ ok: true, name: 'ops', scope: 'write' });
    expect(verifier.check(`bearer ${read}`)).toEqual({ ok: true, name: 'dash', scope: 'read' });
    expect(verifier.check(undefined)).toMatchObject({ ok: false, code: 'unauthorized' });
    expect(verifier.check(`Basic ${write}`)).toMatchObject({ ok: false, code: 'unauthorized' });
    expect(verifier.check(`Bearer ${write}x`)).toMatchObject({ ok: false, code: 'invalid_token' });
    expect(verifier.check(`Bearer ${hashApiToken(write)}`)).toMatchObject({ ok: false, code: 'invalid_token' });
  });

  it('no tokens configured: one write token is generated once, only its hash is stored, and it survives flow key filling', async () => {
    const store = memoryStore();
    const make = () => ({ token: 'frt_generated', sha256: hashApiToken('frt_generated') });
    const config = { api: { listen: '127.0.0.1:8080', tokens: [], metricsAuth: false, taskRequestsPerMinute: 60, allow: [], deny: [] } };
    const first = await resolveApiTokens(config, store, make);
    expect(first.generated).toBe('frt_generated');
    expect(Object.values(store.data)).toEqual([hashApiToken('frt_generated')]);
    // Filling flow keys must not drop the entry (it belongs to no flow).
    const parsed = parseConfigText('flows: []\n', '/x.yaml', {});
    if (!parsed.ok) throw new Error('bad');
    await fillMissingSecrets(parsed.config, store);
    const second = await resolveApiTokens(config, store, () => {
      throw new Error('must not generate again');
    });
    expect(second).toEqual({ tokens: [{ name: 'generated', scope: 'write', sha256: hashApiToken('frt_generated') }] });
    // Configured tokens replace the generated one; no api section, no tokens.
    const named = [{ name: 'ops', scope: 'write' as const, sha256: hashApiToken(write) }];
    expect(await resolveApiTokens({ api: { ...config.api, tokens: named } }, store, make)).toEqual({ tokens: named });
    expect(await resolveApiTokens({}, store, make)).toEqual({ tokens: [] });
  });

  it('the api section is validated with line and key', () => {
    const r = parseConfigText('api:\n  listen: 127.0.0.1:8080\n  tokens:\n    - { name: a, scope: write, sha256: "not-a-hash" }\n    - { name: a, scope: admin, sha256: "' + 'a'.repeat(64) + '" }\n', '/x.yaml', {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map(formatIssue)).toEqual([
      '/x.yaml:4: api.tokens[0].sha256: must be the 64 hex characters printed by "flowrelay token" (the SHA-256 of the token)',
      expect.stringMatching(/^\/x\.yaml:5: api\.tokens\[1\]\.scope: /),
    ]);
  });
});

describe('ConfigWatcher', () => {
  it('reports content changes, also by rename-replace, and not a touch or its own noted writes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-watch-'));
    const file = join(dir, 'flowrelay.yaml');
    await writeFile(file, 'a: 1\n');
    let changes = 0;
    const watcher = new ConfigWatcher(file, () => changes++, (err) => {
      throw err;
    });
    const settle = () => new Promise((r) => setTimeout(r, 700));
    try {
      await watcher.start();
      await writeFile(file, 'a: 1\n'); // same content
      await settle();
      expect(changes).toBe(0);
      await writeFile(file, 'a: 2\n');
      await settle();
      expect(changes).toBe(1);
      await writeFile(join(dir, 'tmp'), 'a: 3\n');
      await rename(join(dir, 'tmp'), file); // how editors and atomic writers replace files
      await settle();
      expect(changes).toBe(2);
      await writeFile(file, 'a: 4\n');
      await watcher.noteCurrentContent(); // the daemon read (or wrote) it itself
      await settle();
      expect(changes).toBe(2);
      await writeFile(join(dir, 'other.yaml'), 'b: 1\n');
      await settle();
      expect(changes).toBe(2);
    } finally {
      watcher.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('sees a Kubernetes-style ConfigMap update: the file is a link through a ..data symlink that is swapped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-watch-k8s-'));
    const { mkdir, symlink } = await import('node:fs/promises');
    for (const [version, text] of [['..v1', 'a: 1\n'], ['..v2', 'a: 2\n']] as const) {
      await mkdir(join(dir, version));
      await writeFile(join(dir, version, 'flowrelay.yaml'), text);
    }
    await symlink('..v1', join(dir, '..data'));
    await symlink('..data/flowrelay.yaml', join(dir, 'flowrelay.yaml'));
    let changes = 0;
    const watcher = new ConfigWatcher(join(dir, 'flowrelay.yaml'), () => changes++, (err) => {
      throw err;
    });
    try {
      await watcher.start();
      // kubelet's swap: a new link, renamed over ..data.
      await symlink('..v2', join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      await new Promise((r) => setTimeout(r, 700));
      expect(changes).toBe(1);
    } finally {
      watcher.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a config that is a symlink into another directory: edits of the target there are seen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-watch-link-'));
    const { mkdir, symlink } = await import('node:fs/promises');
    await mkdir(join(dir, 'etc'));
    await mkdir(join(dir, 'target'));
    const real = join(dir, 'target', 'real.yaml');
    await writeFile(real, 'a: 1\n');
    await symlink(real, join(dir, 'etc', 'flowrelay.yaml'));
    let changes = 0;
    const watcher = new ConfigWatcher(join(dir, 'etc', 'flowrelay.yaml'), () => changes++, (err) => {
      throw err;
    });
    try {
      await watcher.start();
      // sed -i: a new file renamed over the target, in the target's directory.
      await writeFile(join(dir, 'target', 'sedXYZ'), 'a: 2\n');
      await rename(join(dir, 'target', 'sedXYZ'), real);
      await new Promise((r) => setTimeout(r, 700));
      expect(changes).toBe(1);
    } finally {
      watcher.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a directory that is never quiet (a log written next to the config) delays a change by at most 2 s', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-watch-busy-'));
    const file = join(dir, 'flowrelay.yaml');
    await writeFile(file, 'a: 1\n');
    let changes = 0;
    const watcher = new ConfigWatcher(file, () => changes++, (err) => {
      throw err;
    });
    const { appendFile } = await import('node:fs/promises');
    const noise = setInterval(() => void appendFile(join(dir, 'daemon.log'), 'line\n'), 100);
    try {
      await watcher.start();
      await writeFile(file, 'a: 2\n');
      await new Promise((r) => setTimeout(r, 4_500));
      expect(changes).toBe(1);
    } finally {
      clearInterval(noise);
      watcher.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a deleted file is reported (once), and so is its return', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-watch-gone-'));
    const file = join(dir, 'flowrelay.yaml');
    await writeFile(file, 'a: 1\n');
    let changes = 0;
    const watcher = new ConfigWatcher(file, () => changes++, (err) => {
      throw err;
    });
    try {
      await watcher.start();
      await rm(file);
      await new Promise((r) => setTimeout(r, 1_800));
      expect(changes).toBe(1);
      await writeFile(file, 'a: 1\n');
      await new Promise((r) => setTimeout(r, 700));
      expect(changes).toBe(2);
    } finally {
      watcher.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Prometheus text reader (test helper)', () => {
  it('reads families and rejects what Prometheus would', () => {
    const ok = '# HELP x_total Things\n# TYPE x_total counter\nx_total{a="1",b="q\\"uote"} 3\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 0.5\nh_count 1\n';
    expect(parsePrometheusText(ok)).toEqual([
      { name: 'x_total', type: 'counter', help: 'Things', samples: [{ name: 'x_total', labels: { a: '1', b: 'q"uote' }, value: 3 }] },
      { name: 'h', type: 'histogram', help: '', samples: expect.any(Array) },
    ]);
    expect(() => parsePrometheusText('x 1')).toThrow(/newline/);
    expect(() => parsePrometheusText('# TYPE x gauge\nx{a=1} 1\n')).toThrow(/not quoted/);
    expect(() => parsePrometheusText('# TYPE x gauge\ny 1\n')).toThrow(/outside/);
    expect(() => parsePrometheusText('# TYPE x counter\nx -1\n')).toThrow(/counter/);
    expect(() => parsePrometheusText('# TYPE x gauge\nx one\n')).toThrow(/bad sample value/);
    expect(() => parsePrometheusText('# TYPE x gauge\n# TYPE y gauge\n# TYPE x gauge\n')).toThrow(/contiguous/);
  });
});

describe('flowrelay token', () => {
  const capture = () => {
    let text = '';
    return { stream: { write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream, text: () => text };
  };

  it('prints a token and the api.tokens line with its SHA-256; the line validates', async () => {
    const { tokenCommand } = await import('../../src/cli/token.js');
    const out = capture();
    const err = capture();
    expect(tokenCommand('grafana', 'read', out.stream, err.stream)).toBe(0);
    const token = /^token: {2}(frt_\S+)$/m.exec(out.text())?.[1];
    expect(token).toBeDefined();
    const line = /^ {2}- (\{.*\})$/m.exec(out.text())?.[1];
    expect(line).toBe(`{ name: "grafana", scope: read, sha256: ${hashApiToken(token!)} }`);
    const parsed = parseConfigText(`api:\n  tokens:\n    - ${line}\n`, '/x.yaml', {});
    expect(parsed.ok && parsed.config.api?.tokens).toEqual([{ name: 'grafana', scope: 'read', sha256: hashApiToken(token!) }]);
    expect(err.text()).toBe('');
  });

  it('refuses an unknown scope', async () => {
    const { tokenCommand } = await import('../../src/cli/token.js');
    const err = capture();
    expect(tokenCommand(undefined, 'admin', capture().stream, err.stream)).toBe(64);
    expect(err.text()).toContain('--scope must be read or write');
  });
});
