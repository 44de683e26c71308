import type { FastifyInstance } from 'fastify';
import type { ApiContext } from './context.js';
import { ok } from './envelope.js';
import { openApiDocument } from './openapi.js';
import { sendError } from './replies.js';

/** Health, metrics, the config's state and the listeners' connections. */
export function systemRoutes(app: FastifyInstance, ctx: ApiContext): void {
  // No auth: load balancers and orchestrators probe it. Says nothing secret.
  app.get('/healthz', async () => ok({ status: 'ok', uptimeSeconds: Math.round((ctx.now() - ctx.startedAt) / 1000), configOk: ctx.configStatus().ok }));

  app.get('/metrics', async (request, reply) => {
    if (ctx.metricsAuth()) {
      const check = ctx.tokens().check(request.headers.authorization);
      if (!check.ok) return sendError(reply, check.code, check.message);
    }
    const text = await ctx.metrics.metrics();
    return reply.type(ctx.metrics.contentType).send(text);
  });

  app.get('/v1/config/status', async () => ok(ctx.configStatus()));

  app.get('/v1/listeners', async () => ok(ctx.listeners()));

  // Built once: it depends on the schemas only. Plain JSON, not in the envelope (tools read it as is).
  let document: Record<string, unknown> | undefined;
  app.get('/v1/openapi.json', async () => (document ??= openApiDocument(ctx.version)));
}
