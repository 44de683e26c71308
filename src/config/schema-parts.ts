import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { FlowrelayError } from '../lib/errors.js';
import { CidrList } from '../policy/cidr.js';
import { parseQuantity, type QuantityKind } from './quantity.js';

/** Field types shared by the config schema's sections. */

const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

export function isHostName(s: string): boolean {
  // A dotted all-digit string that is not a valid IPv4 address (999.1.1.1) would pass the
  // hostname pattern; nobody means that as a name.
  return HOSTNAME_RE.test(s) && !/^[\d.]+$/.test(s);
}

/** Splits `host:port` / `[v6]:port`; throws a FlowrelayError with an operator-facing message. */
export function parseListen(s: string): { host: string; port: number } {
  const bad = (why: string): never => {
    throw new FlowrelayError('CONFIG_BAD_LISTEN', `${JSON.stringify(s)} ${why}`);
  };
  const m = /^(?:\[([^\]]*)\]|([^[\]]*)):(\d+)$/.exec(s);
  if (!m) {
    return bad('is not host:port (for IPv6 use brackets, e.g. [::]:1935)');
  }
  const [, v6, other, portText = ''] = m;
  let host: string;
  if (v6 !== undefined) {
    if (!isIPv6(v6)) return bad('has an invalid IPv6 address in brackets');
    host = v6;
  } else {
    host = other ?? '';
    if (isIPv6(host)) return bad('has an IPv6 address without brackets; write [addr]:port');
    if (!isIPv4(host) && !isHostName(host)) return bad('has an invalid host');
  }
  const port = Number(portText);
  if (portText.length > 5 || port > 65535) return bad('has a port outside 0..65535');
  return { host, port };
}

/** A "host:port" to listen on, checked by the parser the listeners use. */
export const listenAddress = z
  .string({ error: (issue) => (issue.input === undefined ? 'required: the "host:port" to listen on, e.g. 0.0.0.0:9001' : 'must be a "host:port" string, e.g. 0.0.0.0:1935') })
  .superRefine((s, ctx) => {
    try {
      parseListen(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

export const listen = (fallback: string) => listenAddress.default(fallback);

export const intRange = (min: number, max: number) =>
  z
    .int({ error: 'must be a whole number' })
    .min(min, `must be from ${min} to ${max}`)
    .max(max, `must be from ${min} to ${max}`);

/** A size or rate: a number or a string like `8Mi`, normalised to a whole number. */
export const quantity = (kind: QuantityKind, [min, minText]: [number, string], [max, maxText]: [number, string]) =>
  z
    .union([z.string(), z.number()], { error: `must be a number of ${kind} or a string such as "8Mi"` })
    .transform((v, ctx) => {
      try {
        return parseQuantity(v, kind);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .pipe(
      z
        .number()
        .min(min, `must be between ${minText} and ${maxText} ${kind}`)
        .max(max, `must be between ${minText} and ${maxText} ${kind}`),
    );

export const nonEmpty = z.string().min(1, 'must not be empty');

/**
 * Stream and playback keys appear verbatim in RTMP URLs (rtmp://host/live/<key>), so
 * they are limited to RFC 3986 unreserved characters; 16 characters is the floor that
 * keeps a hand-written key from being guessable in practice.
 */
export const secretKey = z
  .string()
  .min(16, 'must be at least 16 characters')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9._~-]*$/, 'may only contain letters, digits and . _ ~ -');

/** Names of inputs and outputs: they appear in logs, status and API paths. */
export const objectName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1..64 characters of A-Z a-z 0-9 _ -');

/** A list of IPv4/IPv6 networks (`10.0.0.0/8`, `2001:db8::/32`) or single addresses. */
export const cidrList = z.array(z.string()).superRefine((entries, ctx) => {
  entries.forEach((entry, i) => {
    try {
      CidrList.parse([entry]);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [i], message: (err as Error).message });
    }
  });
});

/** Listener-wide access lists: deny always refuses; a non-empty allow admits only what it lists. */
export const listenerAccess = {
  allow: cidrList.prefault([]),
  deny: cidrList.prefault([]),
};

/** Where the daemon POSTs to (webhooks, notify URLs). */
export const httpUrl = z
  .string()
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an http:// or https:// URL')
  .refine((s) => s.length <= 2000, 'must be at most 2000 characters');
