import { hashApiToken, newApiToken } from '../api/tokens.js';

/**
 * `flowrelay token [--name NAME] [--scope read|write]`: a new API token and the YAML to add
 * to api.tokens. The token goes to the operator (stdout) and only its hash into the file.
 */
export function tokenCommand(name: string | undefined, scope: string | undefined, out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  const s = scope ?? 'write';
  if (s !== 'read' && s !== 'write') {
    err.write(`flowrelay token: --scope must be read or write, not "${s}"\n`);
    return 64;
  }
  const label = name ?? `${s}-token`;
  const token = newApiToken();
  out.write(
    [
      `token:  ${token}`,
      `sha256: ${hashApiToken(token)}`,
      '',
      'Keep the token; add this under api.tokens in the config (it is never stored in clear):',
      `  - { name: ${JSON.stringify(label)}, scope: ${s}, sha256: ${hashApiToken(token)} }`,
      '',
    ].join('\n'),
  );
  return 0;
}
