// Writes an installed copy of the example config with paths for a system install:
//
//   node deploy/prepare-config.mjs IN OUT --storage-dir DIR [--api-listen HOST:PORT]
//
// Used by deploy/install.sh (systemd) and the Dockerfile. It edits the YAML document
// rather than the text so the operator's comments and key order survive, and it
// refuses to overwrite OUT: an installed config belongs to the operator.
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { parseDocument } from 'yaml';

function fail(message) {
  process.stderr.write(`prepare-config: ${message}\n`);
  process.exit(1);
}

const args = process.argv.slice(2);
const positional = [];
const options = {};
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--storage-dir' || arg === '--api-listen') {
    const value = args[++i];
    if (value === undefined) fail(`${arg} needs a value`);
    options[arg] = value;
  } else if (arg.startsWith('--')) {
    fail(`unknown option ${arg}`);
  } else {
    positional.push(arg);
  }
}
if (positional.length !== 2 || options['--storage-dir'] === undefined) {
  fail('usage: prepare-config.mjs IN OUT --storage-dir DIR [--api-listen HOST:PORT]');
}
const [input, output] = positional;

const source = readFileSync(input, 'utf8');
const doc = parseDocument(source);
if (doc.errors.length > 0) fail(`${input}: ${doc.errors[0].message}`);

const edits = [[['storage', 'dir'], options['--storage-dir']]];
// Only an existing api.listen is changed: adding an api section here could switch on
// an API the operator's file leaves out.
if (options['--api-listen'] !== undefined && doc.hasIn(['api', 'listen'])) {
  edits.push([['api', 'listen'], options['--api-listen']]);
}

// Where the key holds a plain scalar, only its text is replaced, so the file keeps its
// layout (aligned comments) byte for byte; otherwise the document is re-serialised.
const splices = [];
let reserialise = false;
for (const [path, value] of edits) {
  const node = doc.getIn(path, true);
  if (node && typeof node === 'object' && 'value' in node && Array.isArray(node.range)) {
    const text = /^[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*$/.test(value) ? value : JSON.stringify(value);
    splices.push([node.range[0], node.range[1], text]);
  } else {
    reserialise = true;
  }
  doc.setIn(path, value);
}
let result;
if (reserialise) {
  result = doc.toString();
} else {
  result = source;
  for (const [start, end, text] of splices.sort((a, b) => b[0] - a[0])) {
    result = result.slice(0, start) + text + result.slice(end);
  }
}

try {
  writeFileSync(output, result, { flag: 'wx', mode: 0o640 });
} catch (err) {
  if (err.code === 'EEXIST') fail(`${output} exists; not overwriting it`);
  throw err;
}
