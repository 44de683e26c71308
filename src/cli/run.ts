import { App, ConfigInvalidError } from '../app.js';
import { formatIssue } from '../config/load.js';

/** Hard limit on shutdown: whatever is still open after this is abandoned. */
const SHUTDOWN_DEADLINE_MS = 4_500;

/**
 * `flowrelay run -c FILE`: the foreground daemon. Signals: SIGHUP reloads, SIGTERM and
 * SIGINT stop within the deadline and exit 0.
 */
export async function runCommand(configFile: string): Promise<number> {
  let app: App;
  try {
    app = await App.load({ configFile });
    await app.start();
  } catch (err) {
    if (err instanceof ConfigInvalidError) {
      for (const issue of err.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    } else {
      process.stderr.write(`flowrelay: ${(err as Error).message}\n`);
    }
    return err instanceof ConfigInvalidError ? 2 : 1;
  }

  process.on('SIGHUP', () => {
    app.reload().catch((err: Error) => app.logger.error({ err: err.message }, 'config reload failed'));
  });
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      const deadline = setTimeout(() => {
        app.logger.warn({ signal }, 'shutdown deadline reached; exiting with connections still open');
        resolve(0);
      }, SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      app.close(signal).then(
        () => {
          clearTimeout(deadline);
          resolve(0);
        },
        (err: Error) => {
          app.logger.error({ err: err.message }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
