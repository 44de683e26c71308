import { z } from 'zod';
import { listen, listenerAccess, nonEmpty } from './schema-parts.js';

/*
 * The HTTP API's section. Tokens are never written in the file: only their SHA-256 (hex),
 * made by `flowrelay token`, so the file can be shared and versioned without handing out
 * access. No token configured: one write token is generated, shown once, and its hash
 * kept under storage.dir (design convention 10).
 */

const apiTokenSchema = z
  .object({
    /** Who the token is for; shown in logs, never the token. */
    name: nonEmpty,
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the 64 hex characters printed by "flowrelay token" (the SHA-256 of the token)'),
    /** read: GET routes; write: every route, and stream keys in responses. */
    scope: z.enum(['read', 'write']),
  })
  .strict();

export const apiSectionSchema = z
  .object({
    /** Loopback by default: expose it deliberately, behind TLS termination. */
    listen: listen('127.0.0.1:8080'),
    tokens: z.array(apiTokenSchema).prefault([]),
    /** GET /metrics needs a read token when true; Prometheus scrapers then send one. */
    metricsAuth: z.boolean().default(false),
    /** Requests to /v1/tasks per token per minute; more get 429 limit_exceeded. */
    taskRequestsPerMinute: z.int().min(1).max(100_000).default(60),
    ...listenerAccess,
  })
  .strict()
  .superRefine((api, ctx) => {
    const seen = new Map<string, number>();
    api.tokens.forEach((t, i) => {
      const first = seen.get(t.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['tokens', i, 'name'], message: `duplicate token name (also tokens[${first}])` });
      else seen.set(t.name, i);
    });
  });
