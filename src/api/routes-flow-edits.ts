import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ConfigEdit } from '../config/edit.js';
import { isRecord } from '../lib/is-record.js';
import type { ApiContext } from './context.js';
import { flowView, outputView } from './flow-views.js';
import { sendError, sendEditOutcome } from './replies.js';

interface FlowParams {
  id: string;
}
interface OutputParams extends FlowParams {
  name: string;
}


/**
 * Changes to flows and outputs. Each one is written into the config file first (the
 * file stays the source of truth) and answered once the daemon runs it. Write tokens
 * only (the auth hook refuses read tokens on these methods).
 */
export function flowEditRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const run = (reply: FastifyReply, edit: ConfigEdit, answer: () => unknown, status = 200) => sendEditOutcome(reply, ctx.edit(edit), answer, status);
  const viewOf = (id: string) => {
    const flow = ctx.flow(id);
    return flow ? flowView(flow, ctx.meta(id), ctx.endpoints(), true, ctx.now()) : null;
  };
  const badBody = (reply: FastifyReply) => sendError(reply, 'validation_error', 'the body must be a JSON object');

  app.post('/v1/flows', async (request, reply) => {
    if (!isRecord(request.body)) return badBody(reply);
    const flow = request.body;
    return run(reply, { kind: 'flow.create', flow }, () => viewOf(String(flow.id)), 201);
  });

  app.patch<{ Params: FlowParams }>('/v1/flows/:id', async (request, reply) => {
    if (!isRecord(request.body)) return badBody(reply);
    const { id } = request.params;
    return run(reply, { kind: 'flow.update', id, changes: request.body }, () => viewOf(id));
  });

  app.delete<{ Params: FlowParams }>('/v1/flows/:id', async (request, reply) => {
    const { id } = request.params;
    return run(reply, { kind: 'flow.delete', id }, () => ({ id }));
  });

  const outputOf = (flowId: string, name: string) => {
    const flow = ctx.flow(flowId);
    return (flow && outputView(flow, name, true)) ?? null;
  };

  app.post<{ Params: FlowParams }>('/v1/flows/:id/outputs', async (request, reply) => {
    if (!isRecord(request.body)) return badBody(reply);
    const output = request.body;
    const flowId = request.params.id;
    return run(reply, { kind: 'output.create', flowId, output }, () => outputOf(flowId, String(output.name)), 201);
  });

  app.patch<{ Params: OutputParams }>('/v1/flows/:id/outputs/:name', async (request, reply) => {
    if (!isRecord(request.body)) return badBody(reply);
    const { id: flowId, name } = request.params;
    return run(reply, { kind: 'output.update', flowId, name, changes: request.body }, () => outputOf(flowId, name));
  });

  app.delete<{ Params: OutputParams }>('/v1/flows/:id/outputs/:name', async (request, reply) => {
    const { id: flowId, name } = request.params;
    return run(reply, { kind: 'output.delete', flowId, name }, () => ({ flowId, name }));
  });
}
