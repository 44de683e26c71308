import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { ApiContext } from './context.js';
import { flowEditRoutes } from './routes-flow-edits.js';
import { flowRoutes } from './routes-flows.js';
import { recordingRoutes } from './routes-recordings.js';
import { taskRoutes } from './routes-tasks.js';
import { systemRoutes } from './routes-system.js';
import { sendError } from './replies.js';

/** Routes that answer without a token (health checks and Prometheus scrapes). */
const PUBLIC_ROUTES = new Set(['/healthz', '/metrics']);

/**
 * The HTTP API (fastify): /healthz and /metrics at the root, everything else under /v1
 * behind bearer tokens. GET needs a read or write token; any other method a write token.
 */
export function buildApiServer(ctx: ApiContext, logger: Logger): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One log line per request would drown the daemon's own; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // A URL fastify cannot route (bad percent-encoding, a path segment over 100 characters)
    // never reaches the hooks: it gets the same address and token checks here, and the envelope.
    frameworkErrors: (err, request, reply) => {
      const refused = gate(ctx, request, reply);
      if (refused) return refused;
      if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendError(reply, 'not_found', 'no route or resource has a path segment that long');
      return sendError(reply, 'validation_error', 'the URL is not valid (bad percent-encoding?)');
    },
  });
  // `curl -X DELETE -H 'content-type: application/json'` sends no body: that is no body,
  // not a malformed one (fastify's own parser answers 400).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body: string, done) => {
    if (body.trim() === '') return done(null, undefined);
    try {
      const parsed = JSON.parse(body) as unknown;
      // Config edits walk bodies recursively: a body nested thousands deep would end in
      // a stack overflow (a 500) instead of a clear 400. No config value is nested that deep.
      if (nestingDepth(parsed, MAX_BODY_DEPTH) > MAX_BODY_DEPTH) throw new Error(`JSON nested deeper than ${MAX_BODY_DEPTH} levels`);
      done(null, parsed);
    } catch (err) {
      (err as Error & { statusCode?: number }).statusCode = 400;
      done(err as Error, undefined);
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    const refused = gate(ctx, request, reply);
    if (refused) return refused;
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`));
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, request, reply) => {
    if (err.statusCode === 413) return sendError(reply, 'payload_too_large', err.message);
    if (err.statusCode === 415) return sendError(reply, 'unsupported_media_type', `${err.message}; send application/json`);
    if (err.validation || (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)) {
      return sendError(reply, 'validation_error', err.message);
    }
    request.log.error({ err: err.message, url: request.url }, 'api request failed');
    return sendError(reply, 'internal_error', 'internal error; see the daemon log');
  });

  systemRoutes(app, ctx);
  flowRoutes(app, ctx);
  flowEditRoutes(app, ctx);
  recordingRoutes(app, ctx);
  taskRoutes(app, ctx);
  return app;
}

/**
 * The address lists and the bearer token: the refusal sent, or undefined when the request
 * may go on (its token's scope and name then set on it).
 */
function gate(ctx: ApiContext, request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
  if (!ctx.admits(request.ip)) return sendError(reply, 'forbidden', 'this address may not use the API (api.allow / api.deny)');
  // Decided by the route the router matched, never by the raw URL: the router decodes
  // `%76` to `v` before matching, so a prefix test on the URL can be walked around.
  // Fails closed: only the listed routes are open; an unknown path needs a token too.
  if (PUBLIC_ROUTES.has(request.routeOptions.url ?? '')) return undefined;
  const check = ctx.tokens().check(request.headers.authorization);
  if (!check.ok) return sendError(reply, check.code, check.message);
  if (request.method !== 'GET' && request.method !== 'HEAD' && check.scope !== 'write') {
    return sendError(reply, 'forbidden', `token "${check.name}" has the read scope; this route needs a write token`);
  }
  request.tokenScope = check.scope;
  request.tokenName = check.name;
  return undefined;
}

/** Deeper than any config value (a flow's inputs' tls is 4 levels below the body). */
const MAX_BODY_DEPTH = 32;

/** How deep a parsed JSON value nests, counted up to `limit + 1` without recursion. */
function nestingDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    if (deepest > limit) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}
