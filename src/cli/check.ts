import { formatIssue, readConfigFile } from '../config/load.js';
import { checkTlsFiles } from '../config/tls-files-check.js';

/**
 * `flowrelay check FILE`: exit 0 if valid, 2 with one line per issue if not. The RTMPS
 * certificate and key the file names are loaded too: a pair that would stop the daemon
 * at its next start is an issue here.
 */
export async function checkCommand(file: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { text, loaded } = await readConfigFile(file);
  const tls = loaded.ok && text !== undefined ? await checkTlsFiles(loaded.config, text, file) : { issues: [] };
  const issues = loaded.ok ? tls.issues : loaded.issues;
  if (issues.length > 0) {
    for (const issue of issues) err.write(`${formatIssue(issue)}\n`);
    return 2;
  }
  if (tls.expired) err.write(`${file}: warning: rtmp.tls: ${tls.expired}\n`);
  const flows = loaded.ok ? loaded.config.flows.length : 0;
  out.write(`${file}: ok (${flows} flow${flows === 1 ? '' : 's'})\n`);
  return 0;
}
