import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * pino JSON to stdout (or a given stream). Fields that can hold secrets are redacted
 * wherever they appear one level deep, as a safety net behind "never log a key".
 */
export function createLogger(level: LevelWithSilent, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { service: 'flowrelay' },
    redact: {
      paths: ['streamKey', 'playbackKey', 'passphrase', 'key', 'secret', 'token', '*.streamKey', '*.playbackKey', '*.passphrase', '*.key', '*.secret', '*.token'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
