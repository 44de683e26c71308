import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { destinationKey, type TaskConfig } from '../config/schema-tasks.js';
import { redactSourceUrl } from '../ffmpeg/args.js';
import { redactHookUrl } from '../telemetry/webhooks.js';
import { RequestRateLimiter } from '../policy/request-rate.js';
import { isRecord } from '../lib/is-record.js';
import type { ApiContext } from './context.js';
import { ok } from './envelope.js';
import { canSeeSecrets, sendError, sendEditOutcome } from './replies.js';

interface IdParams {
  id: string;
}

/** A task as the API shows it: its settings (keys, tokens and the callback secret only to write tokens) and its run. */
function taskView(config: TaskConfig, report: unknown, secrets: boolean): Record<string, unknown> {
  if (secrets) return { ...config, run: report };
  const { source } = config;
  return {
    ...config,
    destination: redactSourceUrl(config.destination),
    source: source.type === 'live' ? { ...source, url: redactSourceUrl(source.url) } : { ...source, urls: source.urls.map(redactSourceUrl) },
    ...(config.callbackUrl !== undefined && { callbackUrl: redactHookUrl(config.callbackUrl) }),
    ...(config.callbackSecret !== undefined && { callbackSecret: '***' }),
    run: report,
  };
}

/**
 * What the config schema cannot check: an end in the past, and (with the specific codes
 * scripts match on) durations and duplicate destinations. Undefined when fine.
 */
function refusal(task: Record<string, unknown>, others: readonly TaskConfig[], now: number): { code: 'illegal_duration' | 'already_exists'; message: string } | undefined {
  const start = typeof task.startTime === 'string' ? Date.parse(task.startTime) : NaN;
  const end = typeof task.endTime === 'string' ? Date.parse(task.endTime) : NaN;
  if (Number.isFinite(start) && Number.isFinite(end) && end <= start) return { code: 'illegal_duration', message: 'endTime: must be after startTime' };
  if (Number.isFinite(end) && end <= now) return { code: 'illegal_duration', message: 'endTime: must be in the future' };
  const destination = typeof task.destination === 'string' ? destinationKey(task.destination) : undefined;
  const clash = destination === undefined ? undefined : others.find((t) => t.id !== task.id && destinationKey(t.destination) === destination);
  if (clash) return { code: 'already_exists', message: `destination: task "${clash.id}" already pushes to this destination` };
  return undefined;
}


/**
 * Scheduled pull-to-push tasks. Changes are written into `tasks:` of the config file like
 * flow changes. Every request counts against its token's api.taskRequestsPerMinute.
 */
export function taskRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const limiter = new RequestRateLimiter(ctx.taskRequestsPerMinute());
  const limited = (request: FastifyRequest, reply: FastifyReply): boolean => {
    limiter.setLimit(ctx.taskRequestsPerMinute());
    if (limiter.allow(request.tokenName ?? request.ip, ctx.now())) return false;
    void sendError(reply, 'limit_exceeded', `more than ${ctx.taskRequestsPerMinute()} task requests in a minute for this token (api.taskRequestsPerMinute); try again shortly`);
    return true;
  };
  const current = () => ctx.tasks().list().map((t) => t.config);
  const viewOf = (id: string, secrets: boolean) => {
    const task = ctx.tasks().get(id);
    return task ? taskView(task.config, task.report, secrets) : null;
  };

  app.get('/v1/tasks', async (request, reply) => {
    if (limited(request, reply)) return reply;
    return ok(ctx.tasks().list().map((t) => taskView(t.config, t.report, canSeeSecrets(request))));
  });

  app.get<{ Params: IdParams }>('/v1/tasks/:id', async (request, reply) => {
    if (limited(request, reply)) return reply;
    const view = viewOf(request.params.id, canSeeSecrets(request));
    return view ? ok(view) : sendError(reply, 'not_found', `no task with id "${request.params.id}"`);
  });

  app.post('/v1/tasks', async (request, reply) => {
    if (limited(request, reply)) return reply;
    if (!isRecord(request.body)) return sendError(reply, 'validation_error', 'the body must be a JSON object');
    const task = request.body;
    const refused = refusal(task, current(), ctx.now());
    if (refused) return sendError(reply, refused.code, refused.message);
    return sendEditOutcome(reply, ctx.edit({ kind: 'task.create', task }), () => viewOf(String(task.id), true), 201);
  });

  app.patch<{ Params: IdParams }>('/v1/tasks/:id', async (request, reply) => {
    if (limited(request, reply)) return reply;
    if (!isRecord(request.body)) return sendError(reply, 'validation_error', 'the body must be a JSON object');
    const { id } = request.params;
    const existing = ctx.tasks().get(id);
    if (!existing) return sendError(reply, 'not_found', `no task with id "${id}"`);
    const refused = refusal({ ...existing.config, ...request.body, id }, current(), ctx.now());
    if (refused) return sendError(reply, refused.code, refused.message);
    return sendEditOutcome(reply, ctx.edit({ kind: 'task.update', id, changes: request.body }), () => viewOf(id, true));
  });

  app.delete<{ Params: IdParams }>('/v1/tasks/:id', async (request, reply) => {
    if (limited(request, reply)) return reply;
    const { id } = request.params;
    return sendEditOutcome(reply, ctx.edit({ kind: 'task.delete', id }), () => ({ id }));
  });
}
