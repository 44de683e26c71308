import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EditOutcome } from '../app.js';
import { ERRORS, failure, ok, type ErrorCode } from './envelope.js';
import type { TokenScope } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on /v1 routes. */
    tokenScope?: TokenScope;
    /** The token's name (api.tokens[].name), for per-token limits. */
    tokenName?: string;
  }
}

/** Sends an error in the envelope with the code's HTTP status. */
export function sendError(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return reply.code(ERRORS[code]).send(failure([{ code, message }]));
}

/** Whether a request may see stream keys, passphrases and playback keys. */
export function canSeeSecrets(request: FastifyRequest): boolean {
  return request.tokenScope === 'write';
}


/**
 * Answers a config edit: the `answer` (read once the daemon runs the change) with
 * `status`, or the refusal in the envelope, one error per config issue, each naming its field.
 */
export async function sendEditOutcome(reply: FastifyReply, outcome: Promise<EditOutcome>, answer: () => unknown, status = 200): Promise<FastifyReply> {
  const done = await outcome;
  if (done.ok) return reply.code(status).send(ok(answer()));
  const errors = done.issues?.length
    ? done.issues.map((i) => ({ code: done.code, message: i.path ? `${i.path}: ${i.message}` : i.message }))
    : [{ code: done.code, message: done.message }];
  return reply.code(ERRORS[done.code]).send(failure(errors));
}
