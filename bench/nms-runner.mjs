// Runs node-media-server (4.x or 2.7.x) as an RTMP-only benchmark peer in a process of
// its own (NMS keeps module-global state and exits the process on a busy port).
//
//   node bench/nms-runner.mjs 4|2 PORT DATA_DIR
//
// Listens on 127.0.0.1:PORT, no HTTP listener, logs errors only. Exits on SIGTERM/SIGINT
// and when stdin closes (the bench is gone, however it went).
import { createRequire } from 'node:module';
import net from 'node:net';
import process from 'node:process';

const [version, portArg, dataDir] = process.argv.slice(2);
const port = Number(portArg);
if (!['2', '4'].includes(version) || !Number.isInteger(port) || port < 1 || port > 65535 || !dataDir) {
  process.stderr.write('usage: node bench/nms-runner.mjs 4|2 PORT DATA_DIR\n');
  process.exit(2);
}

const exit = () => process.exit(0);
process.stdin.on('end', exit);
process.stdin.on('error', exit);
process.stdin.resume();

if (version === '4') {
  const { default: NodeMediaServer } = await import('node-media-server');
  const { default: logger } = await import('node-media-server/src/core/logger.js');
  const nms = new NodeMediaServer({ bind: '127.0.0.1', rtmp: { port }, store: { path: dataDir }, webadmin: { enable: false } });
  // The constructor sets its shared logger to "debug".
  logger.level = 'error';
  await nms.run();
} else {
  // 2.7.x listens on every interface and has no bind option: keep it on loopback.
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (...args) {
    if (typeof args[0] === 'number' && typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
    return listen.apply(this, args);
  };
  const require = createRequire(import.meta.url);
  const NodeMediaServer = require('node-media-server-2');
  // The settings of its README: 60000-byte chunks, GOP cache on.
  const nms = new NodeMediaServer({ logType: 1, rtmp: { port, chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 } });
  nms.run();
}
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.removeAllListeners(sig);
  process.once(sig, exit);
}
