import { z } from 'zod';
import { FLOW_EVENT_TYPES } from '../core/flow-events.js';
import { httpUrl, intRange } from './schema-parts.js';

/** Where events are POSTed, signed with a shared secret (HMAC-SHA256). */
const webhookSchema = z
  .object({
    url: httpUrl,
    /** Signs every delivery; give it with ${ENV}. */
    secret: z.string().min(16, 'must be at least 16 characters'),
    /** Event types to send; ["*"] for all. */
    events: z
      .array(z.enum(['*', ...FLOW_EVENT_TYPES], { error: `must be "*" or one of ${FLOW_EVENT_TYPES.join(', ')}` }))
      .min(1, 'list at least one event type, or "*"')
      .default(['*']),
    /** Events waiting for this endpoint at most; beyond it the oldest are dropped (and counted). */
    maxQueue: intRange(1, 100_000).default(1000),
    timeoutMs: intRange(100, 60_000).default(5000),
    /** Attempts per event, the first included; the delay doubles from retryDelayMs up to 60 s. */
    maxAttempts: intRange(1, 20).default(6),
    retryDelayMs: intRange(10, 60_000).default(1000),
  })
  .strict();

export const webhooksSchema = z.array(webhookSchema).prefault([]);
