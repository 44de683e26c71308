import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EditOutcome } from '../app.js';
import { ERRORS, failure, type ErrorCode } from './envelope.js';
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


/** A refused config edit in the envelope: one error per config issue, each naming its field. */
export function sendRefusal(reply: FastifyReply, outcome: Exclude<EditOutcome, { ok: true }>): FastifyReply {
  const errors = outcome.issues?.length
    ? outcome.issues.map((i) => ({ code: outcome.code, message: i.path ? `${i.path}: ${i.message}` : i.message }))
    : [{ code: outcome.code, message: outcome.message }];
  return reply.code(ERRORS[outcome.code]).send(failure(errors));
}
