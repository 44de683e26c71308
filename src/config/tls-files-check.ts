import { loadTlsPair, TlsPairError } from '../rtmp/tls-pair.js';
import { lineOfPath, type ConfigIssue } from './load.js';
import type { Config } from './schema.js';

/**
 * The RTMPS certificate and key a config names, loaded as the listener would load them:
 * a missing, unreadable or mismatched pair is an issue at `rtmp.tls.cert` or `.key`, so
 * `check` and a reload refuse it instead of the next start failing. `expired` is a
 * warning, not an issue: the listener serves it, and clients decide.
 */
export async function checkTlsFiles(config: Pick<Config, 'rtmp'>, text: string, file: string): Promise<{ issues: ConfigIssue[]; expired?: string }> {
  const tls = config.rtmp.tls;
  if (!tls) return { issues: [] };
  try {
    const pair = await loadTlsPair({ certPath: tls.cert, keyPath: tls.key });
    return { issues: [], ...(pair.expired && { expired: `certificate ${tls.cert} (${pair.subject}) expired on ${pair.validTo}` }) };
  } catch (err) {
    const field = err instanceof TlsPairError && err.field !== 'pair' ? err.field : 'key';
    const path = ['rtmp', 'tls', field];
    return { issues: [{ file, line: lineOfPath(text, path), path: path.join('.'), message: (err as Error).message }] };
  }
}
