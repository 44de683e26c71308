/**
 * Recording file names from a template such as `{flowId}/{flowId}_{date}_{time}`.
 * Pure: the caller adds the storage directory and the extension.
 */

const PLACEHOLDERS = ['flowId', 'date', 'time', 'id'] as const;
type Placeholder = (typeof PLACEHOLDERS)[number];

const PLACEHOLDER_RE = /\{([^{}]*)\}/g;
/** What a rendered name may contain: no shell or URL surprises, no hidden files. */
const SAFE_CHARS_RE = /^[A-Za-z0-9_.\-/{}]+$/;

/** Why a template is unusable, or undefined when it is fine. */
export function checkPathTemplate(template: string): string | undefined {
  if (template.length === 0 || template.length > 200) return 'must be 1..200 characters';
  if (!SAFE_CHARS_RE.test(template)) return 'may only contain letters, digits, _ . - / and {placeholders}';
  for (const [, name] of template.matchAll(PLACEHOLDER_RE)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(name ?? '')) {
      return `unknown placeholder {${name}} (use ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})`;
    }
  }
  // Braces belong to placeholders only: a stray one would land in the file name.
  if (/[{}]/.test(template.replace(PLACEHOLDER_RE, ''))) return 'may only contain letters, digits, _ . - / and {placeholders}';
  const parts = template.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p.startsWith('.'))) {
    return 'must be a relative path without empty, "." or ".." parts or hidden names';
  }
  // Two recordings of a flow must not share a name: the start time or the id tells them apart.
  if (!template.includes('{time}') && !template.includes('{id}')) return 'must contain {time} or {id}, so that every recording gets its own file';
  return undefined;
}

export interface PathValues {
  flowId: string;
  start: Date;
  id: string;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** Fills in the placeholders (times in UTC, so names sort by time whatever the server's zone). */
export function renderPathTemplate(template: string, values: PathValues): string {
  const d = values.start;
  const filled: Record<Placeholder, string> = {
    flowId: values.flowId,
    date: `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
    time: `${pad(d.getUTCHours())}-${pad(d.getUTCMinutes())}-${pad(d.getUTCSeconds())}`,
    id: values.id,
  };
  return template.replace(PLACEHOLDER_RE, (_, name: string) => filled[name as Placeholder]);
}
