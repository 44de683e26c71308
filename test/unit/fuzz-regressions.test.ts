/**
 * Replays every file of the fuzz corpus (test/fuzz/corpus/<target>/*.bin) through its
 * target: the nastiest inputs found or built so far stay fixed as regression tests. Fast,
 * needs no ffmpeg: the bytes are all on disk.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CORPUS_DIR, HANG_MS, readCorpus, timedRun } from '../fuzz/harness.js';
import { ContractViolation, TARGETS, targetByName } from '../fuzz/targets.js';

/**
 * Corpus entries that show a bug not fixed yet, with what is wrong. Their replay is
 * expected to fail (it.fails); once the codec is fixed the replay passes, it.fails turns
 * red, and the entry comes off this list.
 */
const KNOWN_BUGS: Readonly<Record<string, { bug: string; violation: RegExp }>> = {};

const corpus = readCorpus();

describe('fuzz corpus replay', () => {
  it('every corpus folder is a fuzz target, with at least five inputs', () => {
    for (const f of corpus) expect(() => targetByName(f.target)).not.toThrow();
    for (const t of TARGETS) expect(corpus.filter((f) => f.target === t.name).length, t.name).toBeGreaterThanOrEqual(5);
  });

  it('every corpus file has its line in the corpus README, and every line its file', () => {
    const readme = readFileSync(join(CORPUS_DIR, 'README.md'), 'utf8');
    const listed = [...readme.matchAll(/^- `([^`]+)`: \S.*$/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(corpus.map((f) => f.id).sort());
  });

  it('every known bug names a corpus file', () => {
    for (const id of Object.keys(KNOWN_BUGS)) expect(corpus.map((f) => f.id)).toContain(id);
  });

  for (const f of corpus) {
    const known = KNOWN_BUGS[f.id];
    const replay = (): void => {
      const { ms } = timedRun(targetByName(f.target), f.bytes);
      expect(ms).toBeLessThan(HANG_MS);
    };
    if (known === undefined) {
      it(`${f.id} (${f.bytes.length} bytes)`, replay);
      continue;
    }
    it.fails(`${f.id} (${f.bytes.length} bytes), known bug: ${known.bug}`, () => {
      try {
        replay();
      } catch (err) {
        // Only the documented violation counts as the expected failure; anything else
        // returns normally, which it.fails reports as a failure.
        if (err instanceof ContractViolation && known.violation.test(err.message)) throw err;
        console.error(`${f.id}: expected the known bug, got ${String(err)}`);
      }
    });
  }
});
