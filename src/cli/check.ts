import { formatIssue, loadConfigFile } from '../config/load.js';

/** `flowrelay check FILE`: exit 0 if valid, 2 with one line per issue if not. */
export async function checkCommand(file: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const result = await loadConfigFile(file);
  if (!result.ok) {
    for (const issue of result.issues) err.write(`${formatIssue(issue)}\n`);
    return 2;
  }
  const flows = result.config.flows.length;
  out.write(`${file}: ok (${flows} flow${flows === 1 ? '' : 's'})\n`);
  return 0;
}
