// Runs node-media-server as an RTMP-only peer for the tests, in its own process:
// NMS keeps its state in module globals and calls process.exit() when its port is
// busy, so it never runs inside a test process.
//
//   node test/helpers/nms-runner.mjs PORT DATA_DIR
//
// Listens on 127.0.0.1:PORT for RTMP. No HTTP listener (NMS only opens one when
// http.port is set); its JSON store goes to DATA_DIR. Logs warnings and errors to
// stdout. Exits on SIGTERM/SIGINT, and when stdin closes, i.e. when the test
// process that spawned it has gone, even if that process was killed.
import process from 'node:process';
import NodeMediaServer from 'node-media-server';
import logger from 'node-media-server/src/core/logger.js';

const [portArg, dataDir] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port < 1 || port > 65535 || !dataDir) {
  process.stderr.write('usage: node nms-runner.mjs PORT DATA_DIR\n');
  process.exit(2);
}

const nms = new NodeMediaServer({
  bind: '127.0.0.1',
  rtmp: { port },
  store: { path: dataDir },
  webadmin: { enable: false },
});
// The constructor sets its shared logger to "debug"; quiet it after the fact.
logger.level = 'warn';

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await nms.stop();
  } finally {
    process.exit(code);
  }
}

process.stdin.on('end', () => void stop(0));
process.stdin.on('error', () => void stop(0));
process.stdin.resume();

await nms.run();
// NMS's store installs SIGINT/SIGTERM handlers that flush and re-raise the signal,
// which would end the process before nms.stop() has closed the sessions; ours replace
// them (nms.stop() closes the store, which flushes it).
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.removeAllListeners(sig);
  process.once(sig, () => void stop(0));
}
