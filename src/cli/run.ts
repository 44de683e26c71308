import type { App } from '../app.js';

/** Hard limit on shutdown: whatever is still open after this is abandoned. */
const SHUTDOWN_DEADLINE_MS = 4_500;

/**
 * `flowrelay run -c FILE`: the foreground daemon. Signals: SIGHUP reloads, SIGTERM and
 * SIGINT stop within the deadline and exit 0.
 *
 * The signal handlers are installed first, before the daemon's modules are loaded (this
 * file imports them when it runs), and never removed: a signal that arrives while the
 * daemon starts is held and acted on once start-up is done. Swapping handlers instead
 * could drop a signal libuv has caught but not yet dispatched.
 */
export async function runCommand(configFile: string): Promise<number> {
  let stop: ((signal: string) => void) | undefined;
  let heldStop: string | undefined;
  // Set once the daemon runs; a SIGHUP before that is held.
  const control: { reload?: () => void } = {};
  let heldReload = false;
  const onStopSignal = (signal: string) => () => {
    if (stop) stop(signal);
    else heldStop ??= signal;
  };
  process.on('SIGTERM', onStopSignal('SIGTERM'));
  process.on('SIGINT', onStopSignal('SIGINT'));
  process.on('SIGHUP', () => {
    if (control.reload) control.reload();
    else heldReload = true;
  });

  const [{ App, ConfigInvalidError }, { formatIssue }] = await Promise.all([import('../app.js'), import('../config/load.js')]);
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

  const reload = () => void app.reload().catch((err: Error) => app.logger.error({ err: err.message }, 'config reload failed'));
  control.reload = reload;
  return new Promise<number>((resolve) => {
    let stopping = false;
    stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
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
    if (heldStop) stop(heldStop);
    else if (heldReload) reload();
  });
}
