import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, failure, type ErrorCode } from './envelope.js';
import type { TokenScope } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on /v1 routes. */
    tokenScope?: TokenScope;
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

