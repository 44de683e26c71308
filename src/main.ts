import { parseArgs } from 'node:util';
import { HELP } from './cli/help.js';
import { packageVersion } from './cli/version.js';

/**
 * argv -> command. Nothing else lives here. Commands are imported when chosen: `run`
 * installs its signal handlers before it loads the daemon's modules, so a SIGHUP or
 * SIGTERM sent right after start (systemd's reload) is held rather than fatal.
 */
async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
        name: { type: 'string' },
        scope: { type: 'string' },
      },
    });
  } catch (err) {
    process.stderr.write(`flowrelay: ${(err as Error).message}\n\n${HELP}`);
    return 64;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.version) {
    process.stdout.write(`flowrelay ${packageVersion()}\n`);
    return 0;
  }
  if (values.help || command === 'help' || command === undefined) {
    process.stdout.write(HELP);
    return command === undefined && !values.help ? 64 : 0;
  }
  switch (command) {
    case 'run': {
      // A second file would be ignored silently: refuse it instead.
      const files = [...(values.config ? [values.config] : []), ...rest];
      if (files.length > 1) return usageError(`flowrelay run: one config file, got ${files.length} (${files.join(', ')})`);
      const { runCommand } = await import('./cli/run.js');
      return runCommand(files[0] ?? 'config/flowrelay.yaml');
    }
    case 'check': {
      const files = [...(values.config ? [values.config] : []), ...rest];
      if (files.length === 0) return usageError('flowrelay check: missing FILE');
      const { checkCommand } = await import('./cli/check.js');
      // Every file is checked (`check conf/*.yaml` in CI); the worst result is the exit status.
      let status = 0;
      for (const file of files) status = Math.max(status, await checkCommand(file, process.stdout, process.stderr));
      return status;
    }
    case 'token': {
      if (rest.length > 0 || values.config) return usageError(`flowrelay token: unexpected ${values.config ? '--config' : `argument "${rest[0]}"`}`);
      const { tokenCommand } = await import('./cli/token.js');
      return tokenCommand(values.name, values.scope, process.stdout, process.stderr);
    }
    default:
      process.stderr.write(`flowrelay: unknown command "${command}"\n\n${HELP}`);
      return 64;
  }
}

function usageError(message: string): number {
  process.stderr.write(`${message}\n\n${HELP}`);
  return 64;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A daemon that stopped may still have handles open (a connection that outlived the
    // deadline); exit explicitly so shutdown time is bounded. Other commands end by themselves.
    setImmediate(() => process.exit(code));
  },
  (err: Error) => {
    process.stderr.write(`flowrelay: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
