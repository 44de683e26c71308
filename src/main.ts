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
      const { runCommand } = await import('./cli/run.js');
      return runCommand(values.config ?? rest[0] ?? 'config/flowrelay.yaml');
    }
    case 'check': {
      const file = rest[0] ?? values.config;
      if (!file) {
        process.stderr.write('flowrelay check: missing FILE\n');
        return 64;
      }
      const { checkCommand } = await import('./cli/check.js');
      return checkCommand(file, process.stdout, process.stderr);
    }
    case 'token': {
      const { tokenCommand } = await import('./cli/token.js');
      return tokenCommand(values.name, values.scope, process.stdout, process.stderr);
    }
    default:
      process.stderr.write(`flowrelay: unknown command "${command}"\n\n${HELP}`);
      return 64;
  }
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
