import type { FastifyInstance } from 'fastify';
import type { ApiContext } from './context.js';
import { ok } from './envelope.js';
import { flowStatus, flowView, outputView } from './flow-views.js';
import { canSeeSecrets, sendError } from './replies.js';

interface FlowParams {
  id: string;
}
interface OutputParams extends FlowParams {
  name: string;
}

/** Flows and their outputs, read side. */
export function flowRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const view = (id: string, secrets: boolean) => {
    const flow = ctx.flow(id);
    return flow && flowView(flow, ctx.meta(id), ctx.endpoints(), secrets, ctx.now());
  };

  app.get('/v1/flows', async (request) => ok(ctx.flows().map((f) => view(f.id, canSeeSecrets(request)))));

  app.get<{ Params: FlowParams }>('/v1/flows/:id', async (request, reply) => {
    const result = view(request.params.id, canSeeSecrets(request));
    return result ? ok(result) : sendError(reply, 'not_found', `no flow with id "${request.params.id}"`);
  });

  app.get<{ Params: FlowParams }>('/v1/flows/:id/status', async (request, reply) => {
    const flow = ctx.flow(request.params.id);
    return flow ? ok(flowStatus(flow, ctx.now())) : sendError(reply, 'not_found', `no flow with id "${request.params.id}"`);
  });

  app.get<{ Params: FlowParams }>('/v1/flows/:id/outputs', async (request, reply) => {
    const flow = ctx.flow(request.params.id);
    if (!flow) return sendError(reply, 'not_found', `no flow with id "${request.params.id}"`);
    return ok(flow.spec.outputs.map((o) => outputView(flow, o.name, canSeeSecrets(request))));
  });

  app.get<{ Params: OutputParams }>('/v1/flows/:id/outputs/:name', async (request, reply) => {
    const flow = ctx.flow(request.params.id);
    if (!flow) return sendError(reply, 'not_found', `no flow with id "${request.params.id}"`);
    const result = outputView(flow, request.params.name, canSeeSecrets(request));
    return result ? ok(result) : sendError(reply, 'not_found', `flow "${flow.id}" has no output named "${request.params.name}"`);
  });
}
