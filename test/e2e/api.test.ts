import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { App } from '../../src/app.js';
import { writeFileAtomic } from '../../src/lib/atomic-write.js';
import { flowYaml, spawnDaemon, startInProcess, tempConfig, type InProcessDaemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/peers.js';
import { delay, play, probeStreams, publish, videoFrames } from '../helpers/ffmpeg.js';
import { parsePrometheusText } from '../helpers/prometheus-text.js';

const WRITE_TOKEN = 'frt_write-token-for-tests-0000000000000000000';
const READ_TOKEN = 'frt_read-token-for-tests-00000000000000000000';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

interface Envelope {
  success: boolean;
  errors: { code: string; message: string }[];
  messages: string[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies, checked by the assertions
  result: any;
}

describe('HTTP API', () => {
  let daemon: InProcessDaemon;
  let base: string;
  const logs: Record<string, unknown>[] = [];

  const call = async (path: string, token?: string, init: RequestInit = {}): Promise<{ status: number; body: Envelope }> => {
    const res = await fetch(`${base}${path}`, { ...init, headers: { ...(token && { authorization: `Bearer ${token}` }), ...(init.headers as Record<string, string>) } });
    return { status: res.status, body: (await res.json()) as Envelope };
  };

  beforeAll(async () => {
    daemon = await startInProcess(
      `api:
  listen: "127.0.0.1:0"
  tokens:
    - { name: ops, scope: write, sha256: ${sha256(WRITE_TOKEN)} }
    - { name: dashboard, scope: read, sha256: ${sha256(READ_TOKEN)} }
flows:
${flowYaml('cam')}`,
      '',
      logs,
    );
    base = `http://127.0.0.1:${daemon.app.apiPort()}`;
  });
  afterAll(async () => {
    await daemon?.close();
  });

  it('/healthz answers without a token, in the envelope', async () => {
    const { status, body } = await call('/healthz');
    expect(status).toBe(200);
    expect(body).toMatchObject({ success: true, errors: [], result: { status: 'ok', configOk: true } });
  });

  it('no token, a wrong token and a read token on a write route get 401/401/403 in the envelope', async () => {
    const none = await call('/v1/flows');
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ success: false, result: null, errors: [{ code: 'unauthorized' }] });

    const wrong = await call('/v1/flows', 'frt_not-a-known-token');
    expect(wrong.status).toBe(401);
    expect(wrong.body.errors[0]?.code).toBe('invalid_token');

    const readOnWrite = await call('/v1/flows/cam', READ_TOKEN, { method: 'DELETE' });
    expect(readOnWrite.status).toBe(403);
    expect(readOnWrite.body).toMatchObject({ success: false, errors: [{ code: 'forbidden' }] });

    const missing = await call('/v1/flows/nope', READ_TOKEN);
    expect(missing.status).toBe(404);
    expect(missing.body.errors[0]?.code).toBe('not_found');
  });

  it('a percent-encoded path to a /v1 route needs the same token as the plain one; an unknown path needs a token too', async () => {
    // The router decodes %76 to v (and %31 to 1) before matching: these reach the /v1 handlers.
    for (const path of ['/%761/flows', '/v%31/flows', '/%76%31/flows/cam']) {
      const none = await call(path);
      expect(none.status, path).toBe(401);
      expect(none.body.errors[0]?.code).toBe('unauthorized');
    }
    const readOnWrite = await call('/%761/flows/cam', READ_TOKEN, { method: 'DELETE' });
    expect(readOnWrite.status).toBe(403);
    const withToken = await call('/%761/flows', READ_TOKEN);
    expect(withToken.status).toBe(200);
    expect(daemon.app.registry.get('cam')).toBeDefined();

    expect((await call('/no/such/route')).status).toBe(401);
    expect((await call('/no/such/route', READ_TOKEN)).status).toBe(404);
    // Paths the router cannot take get the token check and the envelope too.
    expect(await call('/v1/flows/%zz')).toMatchObject({ status: 401, body: { errors: [{ code: 'unauthorized' }] } });
    expect(await call('/v1/flows/%zz', READ_TOKEN)).toMatchObject({ status: 400, body: { errors: [{ code: 'validation_error' }] } });
    expect(await call(`/v1/flows/${'a'.repeat(150)}`)).toMatchObject({ status: 401, body: { errors: [{ code: 'unauthorized' }] } });
    expect(await call(`/v1/flows/${'a'.repeat(150)}`, READ_TOKEN)).toMatchObject({ status: 404, body: { errors: [{ code: 'not_found' }] } });
    // A body over 1 MiB, or not JSON.
    const big = await call('/v1/flows', WRITE_TOKEN, { method: 'POST', body: JSON.stringify({ id: 'x', meta: { a: 'b'.repeat(2 * 1024 * 1024) } }), headers: { 'content-type': 'application/json' } });
    expect(big).toMatchObject({ status: 413, body: { errors: [{ code: 'payload_too_large' }] } });
    const text = await call('/v1/flows', WRITE_TOKEN, { method: 'POST', body: 'id: x', headers: { 'content-type': 'text/yaml' } });
    expect(text).toMatchObject({ status: 415, body: { errors: [{ code: 'unsupported_media_type', message: expect.stringContaining('application/json') }] } });
    // Still open without a token, however spelled.
    expect((await call('/%68ealthz')).status).toBe(200);
  });

  it('a read token sees URLs but no keys; a write token sees keys', async () => {
    const read = await call('/v1/flows/cam', READ_TOKEN);
    expect(read.status).toBe(200);
    const input = read.body.result.inputs[0];
    expect(input.ingest.rtmp.url).toBe(`rtmp://localhost:${daemon.port}/live`);
    expect(input.ingest.rtmp.streamKey).toBeUndefined();
    expect(read.body.result.playback.rtmp.url).toBe(`rtmp://localhost:${daemon.port}/live`);
    expect(JSON.stringify(read.body)).not.toContain('publish-cam-');

    const write = await call('/v1/flows/cam', WRITE_TOKEN);
    expect(write.body.result.inputs[0].ingest.rtmp.streamKey).toBe('publish-cam-0123456789');
    expect(write.body.result.playback.rtmp.url).toBe(`rtmp://localhost:${daemon.port}/live/play-cam-0123456789abc`);
  });

  it('a publisher using the returned URL and key streams; status shows it connected with rising bytes; a player gets it', async () => {
    const { body } = await call('/v1/flows/cam', WRITE_TOKEN);
    const ingest = body.result.inputs[0].ingest.rtmp as { url: string; streamKey: string };
    // publicHost is localhost; reach it on 127.0.0.1.
    const url = `${ingest.url.replace('localhost', '127.0.0.1')}/${ingest.streamKey}`;
    const pub = publish(url, { seconds: 6 });
    try {
      let first = 0;
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const s = await call('/v1/flows/cam/status', READ_TOKEN);
        const main = s.body.result.inputs[0];
        if (main.status === 'connected' && main.bytes > 0) {
          first = main.bytes;
          break;
        }
        await delay(200);
      }
      expect(first).toBeGreaterThan(0);
      const out = join(daemon.configFile, '..', 'api-play.flv');
      const player = play(`${body.result.playback.rtmp.url.replace('localhost', '127.0.0.1')}`, out, ['-t', '2']);
      await delay(1_500);
      const again = await call('/v1/flows/cam/status', READ_TOKEN);
      const main = again.body.result.inputs[0];
      expect(main.status).toBe('connected');
      expect(main.bytes).toBeGreaterThan(first);
      expect(main.bitrate).toBeGreaterThan(0);
      expect(main.remoteAddress).toBe('127.0.0.1');
      expect(again.body.result.live).toBe(true);
      await player.done;
      const streams = await probeStreams(out);
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(videoFrames(streams)).toBeGreaterThan(10);
    } finally {
      pub.proc.kill('SIGKILL');
      await pub.done;
    }
  });

  it('/metrics is valid Prometheus text with per-flow and per-input series and process metrics', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const families = parsePrometheusText(await res.text());
    const byName = new Map(families.map((f) => [f.name, f]));
    expect(byName.get('flowrelay_flows')?.samples[0]?.value).toBe(1);
    const received = byName.get('flowrelay_input_received_bytes_total');
    expect(received?.type).toBe('counter');
    expect(received?.samples.find((s) => s.labels.flow === 'cam' && s.labels.input === 'main')?.value).toBeGreaterThan(0);
    expect(byName.get('flowrelay_flow_source_starts_total')?.samples[0]?.value).toBeGreaterThanOrEqual(1);
    expect(byName.has('flowrelay_process_resident_memory_bytes')).toBe(true);
    expect(byName.get('flowrelay_config_ok')?.samples[0]?.value).toBe(1);
  });

  it('a broken file is refused with line and key in GET /v1/config/status and the log; the flow keeps working; a fix applies', async () => {
    const good = await readFile(daemon.configFile, 'utf8');
    await writeFile(daemon.configFile, good.replace('flows:', 'flows:\n  - id: Bad_Id\n    inputs: [{ name: main, type: rtmp-push }]'));
    // The watcher picks the change up by itself.
    let status: Envelope['result'];
    const deadline = Date.now() + 5_000;
    do {
      await delay(100);
      status = (await call('/v1/config/status', READ_TOKEN)).body.result;
    } while (status.ok && Date.now() < deadline);
    expect(status.ok).toBe(false);
    const issue = status.issues[0];
    expect(issue.path).toBe('flows[0].id');
    expect(issue.line).toBeGreaterThan(1);
    expect(issue.file).toBe(daemon.configFile);
    expect(logs.some((l) => l.msg === 'config reload rejected; keeping the running config' && JSON.stringify(l.issues).includes('flows[0].id'))).toBe(true);
    expect((await call('/healthz')).body.result.configOk).toBe(false);
    expect((await call('/v1/flows/cam', READ_TOKEN)).status).toBe(200);

    // The fix: a new flow appears, the old one is untouched.
    await writeFile(daemon.configFile, good.replace('flows:', `flows:\n${flowYaml('second')}`));
    const fixedBy = Date.now() + 5_000;
    while (!(await call('/v1/config/status', READ_TOKEN)).body.result.ok && Date.now() < fixedBy) await delay(100);
    const flows = (await call('/v1/flows', READ_TOKEN)).body.result as { id: string }[];
    expect(flows.map((f) => f.id).sort()).toEqual(['cam', 'second']);
  });
});

describe('HTTP API without configured tokens', () => {
  it('generates one write token, shows it once with a curl line, keeps only its hash, and honours it after a restart', async () => {
    const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0" }\napi: { listen: "127.0.0.1:0" }\nflows:\n${flowYaml('gen')}`);
    const announced: string[] = [];
    const start = async () => {
      const app = await App.load({ configFile: cfg.file, logger: pino({ level: 'silent' }), announce: (t) => void announced.push(t), watchConfig: false });
      await app.start();
      return app;
    };
    let app = await start();
    try {
      const text = announced.join('');
      const token = /^ {2}(frt_\S+)$/m.exec(text)?.[1];
      expect(token).toBeDefined();
      expect(text).toContain(`curl -H 'Authorization: Bearer ${token}' http://127.0.0.1:${app.apiPort()}/v1/flows`);
      const secrets = await readFile(join(cfg.dir, 'data', 'secrets.json'), 'utf8');
      expect(secrets).not.toContain(token!);
      expect(secrets).toContain(sha256(token!));

      await app.close('restart');
      announced.length = 0;
      app = await start();
      expect(announced.join('')).not.toContain('frt_');
      const res = await fetch(`http://127.0.0.1:${app.apiPort()}/v1/flows/gen`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as Envelope;
      expect(body.result.inputs[0].ingest.rtmp.streamKey).toBe('publish-gen-0123456789');
    } finally {
      await app.close('test done');
      await cfg.cleanup();
    }
  });
});

describe('HTTP API changes, written back into the config file', () => {
  let daemon: InProcessDaemon;
  let base: string;
  const call = async (path: string, init: RequestInit & { json?: unknown } = {}, token = WRITE_TOKEN): Promise<{ status: number; body: Envelope }> => {
    const { json, ...rest } = init;
    const res = await fetch(`${base}${path}`, {
      ...rest,
      ...(json !== undefined && { body: JSON.stringify(json) }),
      headers: { authorization: `Bearer ${token}`, ...(json !== undefined && { 'content-type': 'application/json' }) },
    });
    return { status: res.status, body: (await res.json()) as Envelope };
  };
  const inputOf = async (flowId: string) => (await call(`/v1/flows/${flowId}/status`)).body.result.inputs[0];
  const outputsOf = async (flowId: string) => Object.fromEntries(((await call(`/v1/flows/${flowId}/outputs`)).body.result as { name: string; status: Record<string, unknown> }[]).map((o) => [o.name, o.status]));
  const until = async (what: string, cond: () => Promise<boolean>, timeoutMs = 8_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await delay(100);
    }
  };
  const toFlow = (flowId: string) => ({ type: 'rtmp', url: `rtmp://127.0.0.1:${daemon.port}/live`, streamKey: `publish-${flowId}-0123456789` });

  beforeAll(async () => {
    daemon = await startInProcess(
      `# Operator's notes: keep this comment.
api:
  listen: "127.0.0.1:0"
  tokens:
    - { name: ops, scope: write, sha256: ${sha256(WRITE_TOKEN)} }   # the automation's token
    - { name: dashboard, scope: read, sha256: ${sha256(READ_TOKEN)} }
flows:
${flowYaml('dest-a')}${flowYaml('dest-b')}${flowYaml('dest-c')}`,
    );
    base = `http://127.0.0.1:${daemon.app.apiPort()}`;
  });
  afterAll(async () => {
    await daemon?.close();
  });

  it('create a flow, stream to it, add and change outputs live (API and by hand), refuse bad changes, delete', async () => {
    // Create: the file holds the new flow (with its generated keys) and still its comments.
    const created = await call('/v1/flows', { method: 'POST', json: { id: 'show', name: 'The Show', outputs: [{ name: 'a', ...toFlow('dest-a') }] } });
    expect(created.status).toBe(201);
    expect(created.body.success).toBe(true);
    const ingest = created.body.result.inputs[0].ingest.rtmp as { url: string; streamKey: string };
    expect(ingest.streamKey).toMatch(/^[A-Za-z0-9_-]{32}$/);
    let file = await readFile(daemon.configFile, 'utf8');
    expect(file).toContain("# Operator's notes: keep this comment.");
    expect(file).toContain("# the automation's token");
    expect(file).toContain('id: show');
    expect(file).toContain(ingest.streamKey);

    const pub = publish(`${ingest.url.replace('localhost', '127.0.0.1')}/${ingest.streamKey}`, { seconds: 40 });
    try {
      await until('the show to be live with rising bytes', async () => {
        const i = await inputOf('show');
        return i.status === 'connected' && i.bytes > 0;
      });
      const before = (await inputOf('show')).bytes as number;
      await until('output a to reach dest-a', async () => (await inputOf('dest-a')).status === 'connected');
      await until('the byte count to rise', async () => (await inputOf('show')).bytes > before);
      const a0 = (await outputsOf('show')).a!;
      expect(a0).toMatchObject({ status: 'connected', reconnects: 0 });

      // Add an output while live: it reaches its destination; output a is not touched.
      const added = await call('/v1/flows/show/outputs', { method: 'POST', json: { name: 'b', ...toFlow('dest-b') } });
      expect(added.status).toBe(201);
      expect(added.body.result.name).toBe('b');
      // Within a second of the answer: the change is applied before the API answers.
      await until('output b to reach dest-b', async () => (await inputOf('dest-b')).status === 'connected', 1_000);
      let outputs = await outputsOf('show');
      expect(outputs.a).toMatchObject({ status: 'connected', reconnects: 0, attempts: a0.attempts, connectedAt: a0.connectedAt });

      // A hand edit of output b's key in the file: only b reconnects (to dest-c).
      file = await readFile(daemon.configFile, 'utf8');
      const at = file.indexOf('publish-dest-b-', file.indexOf('name: b'));
      await writeFile(daemon.configFile, `${file.slice(0, at)}publish-dest-c-${file.slice(at + 'publish-dest-b-'.length)}`);
      await until('output b to move to dest-c', async () => (await inputOf('dest-c')).status === 'connected');
      outputs = await outputsOf('show');
      expect(outputs.a).toMatchObject({ status: 'connected', reconnects: 0, attempts: a0.attempts, connectedAt: a0.connectedAt });
      await until('dest-b to lose its publisher', async () => (await inputOf('dest-b')).status !== 'connected');

      // Bad changes are refused with the field named, and change nothing.
      const text = await readFile(daemon.configFile, 'utf8');
      const badUrl = await call('/v1/flows/show/outputs', { method: 'POST', json: { name: 'bad', type: 'rtmp', url: 'http://example.com/x' } });
      expect(badUrl.status).toBe(400);
      expect(badUrl.body.errors[0]).toMatchObject({ code: 'validation_error', message: expect.stringMatching(/^url: /) });
      const unknownKey = await call('/v1/flows', { method: 'POST', json: { id: 'x1', bogus: true } });
      expect(unknownKey.status).toBe(400);
      expect(unknownKey.body.errors.map((e) => e.message)).toContain('bogus: unknown key "bogus"');
      const duplicate = await call('/v1/flows', { method: 'POST', json: { id: 'show' } });
      expect(duplicate.status).toBe(409);
      expect(duplicate.body.errors[0]?.code).toBe('already_exists');
      expect((await call('/v1/flows/nope', { method: 'PATCH', json: { name: 'x' } })).status).toBe(404);
      expect((await call('/v1/flows/show', { method: 'PATCH', json: { name: 'y' } }, READ_TOKEN)).status).toBe(403);
      expect(await readFile(daemon.configFile, 'utf8')).toBe(text);

      // A hand edit of the same flow that is not applied yet (it does not validate) is not overwritten.
      await writeFile(daemon.configFile, text.replace('name: The Show', 'name: The Show\n    enabled: maybe'));
      await until('the broken hand edit to be seen', async () => !(await call('/v1/config/status')).body.result.ok, 5_000);
      const conflict = await call('/v1/flows/show', { method: 'PATCH', json: { name: 'Renamed' } });
      expect(conflict.status).toBe(409);
      expect(conflict.body.errors[0]?.code).toBe('conflict');
      expect(await readFile(daemon.configFile, 'utf8')).toContain('enabled: maybe');
      await writeFile(daemon.configFile, text);
      await until('the file to be good again', async () => (await call('/v1/config/status')).body.result.ok, 5_000);

      // PATCH a flow's name: applied in place, the input keeps streaming.
      const renamed = await call('/v1/flows/show', { method: 'PATCH', json: { name: 'Renamed' } });
      expect(renamed.status).toBe(200);
      expect(renamed.body.result.name).toBe('Renamed');
      expect((await inputOf('show')).publishes).toBe(1);

      // PATCH the input's key: only the input restarts (the publisher is disconnected); outputs stay connected.
      const connectedAt = (await outputsOf('show')).a!.connectedAt;
      const rekeyed = await call('/v1/flows/show', { method: 'PATCH', json: { inputs: [{ name: 'main', type: 'rtmp-push', streamKey: 'show-new-key-0123456789' }] } });
      expect(rekeyed.status).toBe(200);
      expect(rekeyed.body.result.inputs[0].ingest.rtmp.streamKey).toBe('show-new-key-0123456789');
      await pub.done; // ffmpeg was disconnected
      expect((await outputsOf('show')).a).toMatchObject({ reconnects: 0, connectedAt });
      const again = publish(`${ingest.url.replace('localhost', '127.0.0.1')}/show-new-key-0123456789`, { seconds: 3 });
      await until('the new key to publish', async () => (await inputOf('show')).status === 'connected');
      await again.done;
      expect((await outputsOf('show')).a).toMatchObject({ reconnects: 0, connectedAt });

      // Inputs sent without their key keep the key they have: the publisher is not cut off.
      const kept = await call('/v1/flows/show', { method: 'PATCH', json: { inputs: [{ name: 'main', type: 'rtmp-push' }] } });
      expect(kept.status).toBe(200);
      expect(kept.body.result.inputs[0].ingest.rtmp.streamKey).toBe('show-new-key-0123456789');
      expect(await readFile(daemon.configFile, 'utf8')).toContain('show-new-key-0123456789');

      // An output switched off says so, rather than idle (waiting for the input).
      const off = await call('/v1/flows/show/outputs/b', { method: 'PATCH', json: { enabled: false } });
      expect(off.status).toBe(200);
      expect((await call('/v1/flows/show/outputs/b')).body.result).toMatchObject({ enabled: false, status: { status: 'disabled' } });

      // A body that is not JSON is refused; a JSON content type with no body (curl -X DELETE -H ...) is no body.
      const garbled = await fetch(`${base}/v1/flows/show/outputs/b`, { method: 'PATCH', body: '{"enabled": fal', headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' } });
      expect(garbled.status).toBe(400);
      expect(((await garbled.json()) as Envelope).errors[0]?.code).toBe('validation_error');
      // So is JSON nested absurdly deep (it overflowed the stack of the edit: a 500).
      const deep = await fetch(`${base}/v1/flows/show`, { method: 'PATCH', body: `{"meta":${'['.repeat(200_000)}${']'.repeat(200_000)}}`, headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' } });
      expect(deep.status).toBe(400);
      expect(((await deep.json()) as Envelope).errors[0]).toMatchObject({ code: 'validation_error', message: expect.stringMatching(/nested deeper than 32/) });

      // Delete an output, then the flow.
      const emptyJson = await fetch(`${base}/v1/flows/show/outputs/b`, { method: 'DELETE', headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' } });
      expect(emptyJson.status).toBe(200);
      await until('dest-c to lose its publisher', async () => (await inputOf('dest-c')).status !== 'connected');
      expect((await call('/v1/flows/show', { method: 'DELETE' })).body).toMatchObject({ success: true, result: { id: 'show' } });
      expect((await call('/v1/flows/show')).status).toBe(404);
      file = await readFile(daemon.configFile, 'utf8');
      expect(file).not.toContain('id: show');
      expect(file).toContain("# Operator's notes: keep this comment.");

      // A flow added by hand without keys has generated ones in secrets.json; deleting it
      // through the API (on purpose) forgets them, where a hand edit that drops it keeps them.
      await writeFile(daemon.configFile, `${file}  - id: handmade\n    inputs: [{ name: main, type: rtmp-push }]\n`);
      expect((await daemon.app.reload()).ok).toBe(true);
      const secretsFile = join(daemon.dir, 'data', 'secrets.json');
      const storedFor = async (id: string) => Object.keys(JSON.parse(await readFile(secretsFile, 'utf8')) as object).filter((k) => k.startsWith(`${id}/`));
      expect(await storedFor('handmade')).toEqual(['handmade/input/main', 'handmade/playback']);
      expect((await call('/v1/flows/handmade', { method: 'DELETE' })).status).toBe(200);
      expect(await storedFor('handmade')).toEqual([]);
    } finally {
      pub.proc.kill('SIGKILL');
      await pub.done;
    }
  });
});

describe('OpenAPI document', () => {
  it('describes every route, and its Flow and Output schemas accept what the API accepts and refuse what it refuses', async () => {
    const daemon = await startInProcess(`api:\n  listen: "127.0.0.1:0"\n  tokens: [{ name: r, scope: read, sha256: ${sha256(READ_TOKEN)} }]\nflows:\n${flowYaml('doc')}`);
    try {
      const res = await fetch(`http://127.0.0.1:${daemon.app.apiPort()}/v1/openapi.json`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
      expect(res.status).toBe(200);
      const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, object> } };
      expect(doc.openapi).toBe('3.1.0');
      const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
      for (const route of [
        'GET /healthz', 'GET /metrics', 'GET /v1/config/status', 'GET /v1/listeners', 'GET /v1/flows', 'POST /v1/flows', 'GET /v1/flows/{id}', 'PATCH /v1/flows/{id}', 'DELETE /v1/flows/{id}',
        'GET /v1/flows/{id}/status', 'GET /v1/flows/{id}/outputs', 'POST /v1/flows/{id}/outputs', 'GET /v1/flows/{id}/outputs/{name}', 'PATCH /v1/flows/{id}/outputs/{name}', 'DELETE /v1/flows/{id}/outputs/{name}',
        'GET /v1/flows/{id}/recordings', 'GET /v1/recordings', 'GET /v1/recordings/{id}', 'DELETE /v1/recordings/{id}', 'GET /v1/recordings/{id}/download',
        'GET /v1/record-jobs', 'POST /v1/record-jobs', 'GET /v1/record-jobs/{id}', 'DELETE /v1/record-jobs/{id}',
        'GET /v1/tasks', 'POST /v1/tasks', 'GET /v1/tasks/{id}', 'PATCH /v1/tasks/{id}', 'DELETE /v1/tasks/{id}',
      ]) expect(routes).toContain(route);

      const { Ajv2020 } = await import('ajv/dist/2020.js');
      const ajv = new Ajv2020({ strict: false });
      const flow = ajv.compile(doc.components.schemas.FlowCreate!);
      const output = ajv.compile(doc.components.schemas.Output!);
      expect(flow({ id: 'studio-a', name: 'Studio A', outputs: [{ name: 'yt', type: 'rtmp', url: 'rtmp://a.rtmp.youtube.com/live2', streamKey: 'k' }] })).toBe(true);
      expect(ajv.compile(doc.components.schemas.Flow!)({ id: 'no-inputs' })).toBe(false); // the file needs inputs; POST does not
      expect(flow({ id: 'Bad Id' })).toBe(false);
      expect(flow({ id: 'ok', bogus: 1 })).toBe(false);
      expect(output({ name: 'edge', type: 'srt-listener', listen: '0.0.0.0:9100' })).toBe(true);
      expect(output({ name: 'x', type: 'carrier-pigeon' })).toBe(false);
      const job = ajv.compile(doc.components.schemas.RecordJobCreate!);
      expect(job({ name: 'feed', url: 'rtmp://example.com/live/key', format: 'flv' })).toBe(true);
      expect(job({ name: 'feed', url: 'rtmp://example.com/live/key', format: 'avi' })).toBe(false);
      const task = ajv.compile(doc.components.schemas.Task!);
      const t = { id: 'show', source: { type: 'files', urls: ['/a.mp4'] }, destination: 'rtmp://example.com/live/k', startTime: '2026-11-23T07:00:00Z', endTime: '2026-11-23T08:00:00Z' };
      expect(task(t)).toBe(true);
      expect(task({ ...t, source: { type: 'tape' } })).toBe(false);
    } finally {
      await daemon.close();
    }
  });
});

describe('API access settings', () => {
  it('api.metricsAuth makes /metrics need a token; api.deny refuses an address on every route', async () => {
    const daemon = await startInProcess(`api:\n  listen: "127.0.0.1:0"\n  metricsAuth: true\n  tokens: [{ name: r, scope: read, sha256: ${sha256(READ_TOKEN)} }]\nflows:\n${flowYaml('acl')}`);
    try {
      const base = `http://127.0.0.1:${daemon.app.apiPort()}`;
      const anonymous = await fetch(`${base}/metrics`);
      expect(anonymous.status).toBe(401);
      expect(((await anonymous.json()) as Envelope).errors[0]?.code).toBe('unauthorized');
      const withToken = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
      expect(withToken.status).toBe(200);
      expect(parsePrometheusText(await withToken.text()).length).toBeGreaterThan(10);

      const text = await readFile(daemon.configFile, 'utf8');
      await writeFile(daemon.configFile, text.replace('  metricsAuth: true', '  metricsAuth: true\n  deny: ["127.0.0.0/8"]'));
      const reloaded = await daemon.app.reload();
      expect(reloaded.ok).toBe(true);
      // Also a URL the router cannot take (bad percent-encoding, an overlong segment): fastify answered those itself.
      for (const path of ['/healthz', '/v1/flows', '/v1/flows/%zz', `/v1/flows/${'a'.repeat(150)}`]) {
        const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
        expect(res.status).toBe(403);
        expect(((await res.json()) as Envelope).errors[0]).toMatchObject({ code: 'forbidden', message: expect.stringContaining('api.allow / api.deny') });
      }

      // The api section removed: the running API keeps its settings until the restart.
      await writeFile(daemon.configFile, `flows:\n${flowYaml('acl')}`);
      expect((await daemon.app.reload()).ok).toBe(true);
      for (const path of ['/healthz', '/metrics', '/v1/flows']) expect((await fetch(`${base}${path}`)).status, path).toBe(403);
    } finally {
      await daemon.close();
    }
  });

  it('with the api section removed by reload, the running API keeps its tokens', async () => {
    const daemon = await startInProcess(`api:\n  listen: "127.0.0.1:0"\n  metricsAuth: true\n  tokens: [{ name: r, scope: read, sha256: ${sha256(READ_TOKEN)} }]\nflows:\n${flowYaml('kept')}`);
    try {
      const base = `http://127.0.0.1:${daemon.app.apiPort()}`;
      await writeFile(daemon.configFile, `flows:\n${flowYaml('kept')}`);
      expect((await daemon.app.reload()).ok).toBe(true);
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      const flows = await fetch(`${base}/v1/flows`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
      expect(flows.status).toBe(200);
    } finally {
      await daemon.close();
    }
  });
});

describe('API changes and the config file on disk', () => {
  const start = async (configFile: string, writeConfigFile?: typeof writeFileAtomic) => {
    const app = await App.load({ configFile, logger: pino({ level: 'silent' }), announce: () => undefined, ...(writeConfigFile && { writeConfigFile }) });
    await app.start();
    const post = (json: unknown) =>
      fetch(`http://127.0.0.1:${app.apiPort()}/v1/flows`, { method: 'POST', body: JSON.stringify(json), headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' } });
    return { app, post };
  };
  const body = (extra = '') => `rtmp: { listen: "127.0.0.1:0" }\napi:\n  listen: "127.0.0.1:0"\n  tokens: [{ name: w, scope: write, sha256: ${sha256(WRITE_TOKEN)} }]\nflows:\n${flowYaml('base')}${extra}`;

  it('through a symlink (a ConfigMap mount, /etc/flowrelay -> elsewhere) the target file is replaced and the link stays', async () => {
    const cfg = await tempConfig(body());
    const { symlink, lstat, mkdir, rename: move } = await import('node:fs/promises');
    const real = join(cfg.dir, 'real', 'flowrelay.yaml');
    await mkdir(join(cfg.dir, 'real'));
    await move(cfg.file, real);
    await symlink(real, cfg.file);
    const { app, post } = await start(cfg.file);
    try {
      expect((await post({ id: 'via-link' })).status).toBe(201);
      expect((await lstat(cfg.file)).isSymbolicLink()).toBe(true);
      expect(await readFile(real, 'utf8')).toContain('id: via-link');
      expect(app.registry.get('via-link')).toBeDefined();
    } finally {
      await app.close('test done');
      await cfg.cleanup();
    }
  });

  it('a file that cannot be written (read-only mount) refuses the change with config_not_writable and changes nothing', async () => {
    const cfg = await tempConfig(body());
    const { app, post } = await start(cfg.file, async () => {
      throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
    });
    try {
      const before = await readFile(cfg.file, 'utf8');
      const res = await post({ id: 'nope' });
      expect(res.status).toBe(409);
      const env = (await res.json()) as Envelope;
      expect(env.errors[0]).toMatchObject({ code: 'config_not_writable', message: expect.stringContaining('read-only file system') });
      expect(await readFile(cfg.file, 'utf8')).toBe(before);
      expect(app.registry.get('nope')).toBeUndefined();
    } finally {
      await app.close('test done');
      await cfg.cleanup();
    }
  });
});

describe('an API change while the file is being edited by hand', () => {
  it('a hand edit saved while an API change is being made is kept: the change is made again on the new text', async () => {
    // The hand edit lands while the API change is validated: the config reads ${NOTE}
    // then, and this environment saves the operator's edit at that moment, once.
    let handEdit: (() => void) | undefined;
    const env = new Proxy({ ...process.env, NOTE: 'note' } as Record<string, string | undefined>, {
      get(target, name) {
        if (name === 'NOTE' && handEdit) {
          const save = handEdit;
          handEdit = undefined;
          save();
        }
        return target[name as string];
      },
    });
    const daemon = await startInProcess(
      `api:\n  listen: "127.0.0.1:0"\n  tokens: [{ name: ops, scope: write, sha256: ${sha256(WRITE_TOKEN)} }]\nflows:\n${flowYaml('api-side', { meta: { note: '${NOTE}' } })}${flowYaml('hand-side')}`,
      '',
      undefined,
      { app: { env } },
    );
    try {
      const original = await readFile(daemon.configFile, 'utf8');
      handEdit = () => writeFileSync(daemon.configFile, original.replace('  - id: hand-side\n', '  - id: hand-side\n    name: Edited by hand\n'));
      const res = await fetch(`http://127.0.0.1:${daemon.app.apiPort()}/v1/flows/api-side`, {
        method: 'PATCH',
        body: JSON.stringify({ name: 'Changed through the API' }),
        headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' },
      });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(handEdit).toBeUndefined();
      const text = await readFile(daemon.configFile, 'utf8');
      expect(text).toContain('name: Edited by hand');
      expect(text).toContain('Changed through the API');
      expect(daemon.app.registry.get('hand-side')!.spec.name).toBe('Edited by hand');
      expect(daemon.app.registry.get('api-side')!.spec.name).toBe('Changed through the API');
    } finally {
      await daemon.close();
    }
  });
});

describe('the built daemon, whose config work runs on a thread of its own', () => {
  it('an API create and a refused change go through that thread, and so does a hand edit', async () => {
    const apiPort = await freePort();
    const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0" }\napi:\n  listen: "127.0.0.1:${apiPort}"\n  tokens: [{ name: ops, scope: write, sha256: ${sha256(WRITE_TOKEN)} }]\nflows:\n${flowYaml('first')}`);
    const daemon = await spawnDaemon(cfg.file);
    await daemon.waitForLine(/"msg":"flowrelay started"/);
    const api = (path: string, method: string, json: unknown) =>
      fetch(`http://127.0.0.1:${apiPort}${path}`, { method, body: JSON.stringify(json), headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' } });
    try {
      const created = await api('/v1/flows', 'POST', { id: 'second', inputs: [{ name: 'main', type: 'rtmp-push' }] });
      expect(created.status).toBe(201);
      expect(await readFile(cfg.file, 'utf8')).toContain('id: second');
      const refused = await api('/v1/flows/second', 'PATCH', { enabled: 'maybe' });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as Envelope).errors[0]).toMatchObject({ code: 'validation_error', message: expect.stringMatching(/^enabled: /) });
      await writeFile(cfg.file, (await readFile(cfg.file, 'utf8')).replace('  - id: first\n', '  - id: first\n    name: By hand\n'));
      const nameOfFirst = async () =>
        (((await (await fetch(`http://127.0.0.1:${apiPort}/v1/flows/first`, { headers: { authorization: `Bearer ${WRITE_TOKEN}` } })).json()) as Envelope).result as { name: string }).name;
      for (let i = 0; i < 100 && (await nameOfFirst()) !== 'By hand'; i++) await delay(100);
      expect(await nameOfFirst()).toBe('By hand');
    } finally {
      daemon.proc.kill('SIGTERM');
      expect((await daemon.exited).code).toBe(0);
      await cfg.cleanup();
    }
  });
});

describe('a hand edit saved while the API change is being written', () => {
  it('is kept: the file is compared again just before the new one replaces it, and the change is made again on the new text', async () => {
    const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0" }\napi:\n  listen: "127.0.0.1:0"\n  tokens: [{ name: ops, scope: write, sha256: ${sha256(WRITE_TOKEN)} }]\nflows:\n${flowYaml('hand-side')}`);
    let handEdit: (() => void) | undefined = () => writeFileSync(cfg.file, readFileSync(cfg.file, 'utf8').replace('  - id: hand-side\n', '  - id: hand-side\n    name: Edited by hand\n'));
    const app = await App.load({
      configFile: cfg.file,
      logger: pino({ level: 'silent' }),
      announce: () => undefined,
      // The operator saves after the API change passed every check, while its file is written.
      writeConfigFile: async (path, text, mode, stillCurrent) => {
        handEdit?.();
        handEdit = undefined;
        return writeFileAtomic(path, text, mode, stillCurrent);
      },
    });
    await app.start();
    try {
      const res = await fetch(`http://127.0.0.1:${app.apiPort()}/v1/flows`, {
        method: 'POST',
        body: JSON.stringify({ id: 'api-side', inputs: [{ name: 'main', type: 'rtmp-push' }] }),
        headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' },
      });
      expect(res.status, await res.clone().text()).toBe(201);
      const text = await readFile(cfg.file, 'utf8');
      expect(text).toContain('name: Edited by hand');
      expect(text).toContain('id: api-side');
      expect(app.registry.get('hand-side')!.spec.name).toBe('Edited by hand');
    } finally {
      await app.close('test done');
      await cfg.cleanup();
    }
  });
});

describe('an API change refused for a problem elsewhere in the file', () => {
  it('names the problem at its line in the file, not in the edited text', async () => {
    const daemon = await startInProcess(`api:\n  listen: "127.0.0.1:0"\n  tokens: [{ name: ops, scope: write, sha256: ${sha256(WRITE_TOKEN)} }]\nflows:\n${flowYaml('first')}${flowYaml('second')}`);
    try {
      const text = await readFile(daemon.configFile, 'utf8');
      await writeFile(daemon.configFile, text.replace('  - id: second\n', '  - id: second\n    enabled: maybe\n'));
      const reloaded = await daemon.app.reload();
      expect(reloaded.ok).toBe(false);
      const line = (await readFile(daemon.configFile, 'utf8')).split('\n').indexOf('    enabled: maybe') + 1;
      // The change adds lines above the broken flow.
      const res = await fetch(`http://127.0.0.1:${daemon.app.apiPort()}/v1/flows/first`, {
        method: 'PATCH',
        body: JSON.stringify({ meta: { team: 'live', region: 'eu', shift: 'night' } }),
        headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' },
      });
      expect(res.status).toBe(400);
      const body = (await res.json()) as Envelope;
      expect(body.errors[0]?.message).toContain(`flows[1].enabled`);
      expect(body.errors[0]?.message).toContain(`(elsewhere in the config file, line ${line})`);
    } finally {
      await daemon.close();
    }
  });
});

describe('a change the daemon cannot apply', () => {
  it('secrets.json unreadable: an API create is not_applied, the config status says why, and SIGHUP applies it once fixed; a hand edit likewise', async () => {
    const daemon = await startInProcess(`api:\n  listen: "127.0.0.1:0"\n  tokens: [{ name: ops, scope: write, sha256: ${sha256(WRITE_TOKEN)} }]\nflows:\n  - id: first\n    inputs: [{ name: main, type: rtmp-push }]\n`);
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${daemon.app.apiPort()}${path}`, { ...init, headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' } });
    try {
      const secretsFile = join(daemon.dir, 'data', 'secrets.json');
      const secrets = await readFile(secretsFile, 'utf8');
      await writeFile(secretsFile, '{');
      const created = await api('/v1/flows', { method: 'POST', body: JSON.stringify({ id: 'second', inputs: [{ name: 'main', type: 'rtmp-push' }] }) });
      expect(created.status).toBe(500);
      expect(((await created.json()) as Envelope).errors[0]).toMatchObject({ code: 'not_applied', message: expect.stringMatching(/was changed, but the change could not be applied: .*secrets\.json.* is not valid JSON/) });
      expect(daemon.app.registry.get('second')).toBeUndefined();
      const status = (await (await api('/v1/config/status')).json()) as Envelope;
      expect(status.result).toMatchObject({ ok: false, issues: [{ file: secretsFile, message: expect.stringMatching(/^cannot keep generated keys: .*; the running config stays$/) }] });

      // A hand edit meets the same failure and says so.
      const text = await readFile(daemon.configFile, 'utf8');
      await writeFile(daemon.configFile, `${text}  - id: third\n    inputs: [{ name: main, type: rtmp-push }]\n`);
      expect(await daemon.app.reload()).toMatchObject({ ok: false, notApplied: true });
      expect(daemon.app.registry.get('third')).toBeUndefined();

      await writeFile(secretsFile, secrets);
      expect(await daemon.app.reload()).toMatchObject({ ok: true, changes: { added: ['second', 'third'] } });
      expect(((await (await api('/v1/config/status')).json()) as Envelope).result).toMatchObject({ ok: true, issues: [] });
    } finally {
      await daemon.close();
    }
  });
});

describe('stream keys kept by an API change of the inputs', () => {
  it('a ${ENV} key stays a reference in the file (the secret is not written), and a generated key keeps its value', async () => {
    const secret = 'env-studio-key-0123456789';
    const daemon = await startInProcess(
      `api:\n  listen: "127.0.0.1:0"\n  tokens: [{ name: ops, scope: write, sha256: ${sha256(WRITE_TOKEN)} }]\nflows:\n  - id: envkey\n    inputs: [{ name: main, type: rtmp-push, streamKey: "\${STUDIO_KEY}" }]\n  - id: genkey\n    inputs: [{ name: main, type: rtmp-push }]\n`,
      '',
      undefined,
      { app: { env: { ...process.env, STUDIO_KEY: secret } } },
    );
    try {
      const keyOf = (id: string) => {
        const input = daemon.app.registry.get(id)!.spec.inputs[0]!;
        return input.type === 'rtmp-push' ? input.streamKey : undefined;
      };
      const generated = keyOf('genkey');
      expect(keyOf('envkey')).toBe(secret);
      for (const id of ['envkey', 'genkey']) {
        const res = await fetch(`http://127.0.0.1:${daemon.app.apiPort()}/v1/flows/${id}`, {
          method: 'PATCH',
          body: JSON.stringify({ inputs: [{ name: 'main', type: 'rtmp-push' }] }),
          headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' },
        });
        expect(res.status, await res.clone().text()).toBe(200);
      }
      const text = await readFile(daemon.configFile, 'utf8');
      expect(text).toMatch(/streamKey: "?\$\{STUDIO_KEY\}"?\n/);
      expect(text).not.toContain(secret);
      expect(keyOf('envkey')).toBe(secret);
      expect(keyOf('genkey')).toBe(generated);
    } finally {
      await daemon.close();
    }
  });
});

describe('values sent through the API', () => {
  it('are literal: a ${NAME} in them is not expanded from the daemon environment', async () => {
    const daemon = await startInProcess(
      `api:\n  listen: "127.0.0.1:0"\n  tokens:\n    - { name: ops, scope: write, sha256: ${sha256(WRITE_TOKEN)} }\n    - { name: dashboard, scope: read, sha256: ${sha256(READ_TOKEN)} }\nflows:\n${flowYaml('lit')}`,
      '',
      undefined,
      { app: { env: { ...process.env, DB_PASSWORD: 'hunter2-do-not-leak' } } },
    );
    try {
      const base = `http://127.0.0.1:${daemon.app.apiPort()}`;
      const patched = await fetch(`${base}/v1/flows/lit`, {
        method: 'PATCH',
        body: JSON.stringify({ meta: { note: '${DB_PASSWORD}', price: '$5 and $${x}' } }),
        headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' },
      });
      expect(patched.status, await patched.clone().text()).toBe(200);
      const read = (await (await fetch(`${base}/v1/flows/lit`, { headers: { authorization: `Bearer ${READ_TOKEN}` } })).json()) as Envelope;
      expect(read.result.meta).toEqual({ note: '${DB_PASSWORD}', price: '$5 and $${x}' });
      expect(JSON.stringify(read)).not.toContain('hunter2');
      expect(await readFile(daemon.configFile, 'utf8')).not.toContain('hunter2');
    } finally {
      await daemon.close();
    }
  });
});
