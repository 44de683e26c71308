/**
 * `npm run fuzz -- --write-corpus`: (re)writes the hand-built corpus files (nasty.ts) and
 * the list in test/fuzz/corpus/README.md. Lines for files that nasty.ts does not build
 * (fuzz findings added by hand) are kept as they are.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { CORPUS_DIR, readCorpus } from './harness.js';
import { nastyInputs } from './nasty.js';
import { makeMediaFiles } from './seeds.js';
import { TARGETS } from './targets.js';

const README = join(CORPUS_DIR, 'README.md');
const LINE = /^- `([^`]+)`: (.*)$/;

const HEADER = `# Fuzz corpus

Regression fixtures for the fuzz targets in \`../targets.ts\`: every \`<target>/*.bin\` here is
replayed through its target by \`test/unit/fuzz-regressions.test.ts\` on every test run.
Hand-built entries come from \`../nasty.ts\` (\`npm run fuzz -- --write-corpus\` rewrites them
and this list); findings of the long fuzz run are added by hand (see \`../README.md\`).
Entries listed in \`KNOWN_BUGS\` in the regression test are known to fail until the codec is fixed.

One line per file: what it exercises.
`;

it.skipIf(process.env.FUZZ_WRITE_CORPUS !== '1')('writes the hand-built corpus and its README', async () => {
  const notes = new Map<string, string>();
  if (existsSync(README)) {
    for (const line of readFileSync(README, 'utf8').split('\n')) {
      const m = LINE.exec(line);
      if (m) notes.set(m[1]!, m[2]!);
    }
  }
  for (const n of nastyInputs(await makeMediaFiles())) {
    mkdirSync(join(CORPUS_DIR, n.target), { recursive: true });
    writeFileSync(join(CORPUS_DIR, n.target, n.file), n.bytes);
    notes.set(`${n.target}/${n.file}`, n.note);
  }
  const files = readCorpus();
  const sections = TARGETS.map((t) => {
    const lines = files.filter((f) => f.target === t.name).map((f) => `- \`${f.id}\`: ${notes.get(f.id) ?? 'TODO: say what this input exercises'}`);
    return `## ${t.name}\n\n${t.description}.\n\n${lines.join('\n')}\n`;
  });
  writeFileSync(README, `${HEADER}\n${sections.join('\n')}`);
  expect(files.every((f) => notes.has(f.id))).toBe(true);
}, 60_000);
