import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LatestFileWriter } from '../../src/lib/latest-file-writer.js';
import { waitFor } from '../helpers/ffmpeg.js';

describe('LatestFileWriter', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flowrelay-latest-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('tries a failed write again by itself, tells of the failure once, and stops retrying when stopped', async () => {
    const errors: Error[] = [];
    let state = 'first';
    // Where its directory should be there is a file: every write fails (ENOTDIR).
    await writeFile(join(dir, 'later'), 'in the way');
    const file = join(dir, 'later', 'state.json');
    let renders = 0;
    const render = () => {
      renders += 1;
      return state;
    };
    const writer = new LatestFileWriter(file, 0o644, render, (err) => errors.push(err), 20);
    await writer.write();
    expect(errors).toHaveLength(1);
    state = 'second';
    // Several retries fail in the meantime: still one error.
    await new Promise((r) => setTimeout(r, 150));
    expect(errors).toHaveLength(1);
    await rm(join(dir, 'later'));
    await mkdir(join(dir, 'later'));
    // No write() asked for: the retry brings the file up to date.
    let text = '';
    await waitFor(() => text === 'second', 'the retry to write the file', 5_000, async () => {
      text = await readFile(file, 'utf8').catch(() => '');
    });

    // Failing again, then stopped: no more tries.
    await rm(join(dir, 'later'), { recursive: true });
    await writeFile(join(dir, 'later'), 'in the way');
    await writer.write();
    writer.stop();
    const rendersAtStop = renders;
    await new Promise((r) => setTimeout(r, 150));
    expect(renders).toBe(rendersAtStop);
  });
});
