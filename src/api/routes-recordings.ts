import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { explainIssue } from '../config/load.js';
import { formatPath } from '../config/path.js';
import { recordJobRequestSchema } from '../config/schema-recording.js';
import { redactSourceUrl } from '../ffmpeg/args.js';
import { redactHookUrl } from '../telemetry/webhooks.js';
import type { RecordJobRecord } from '../recording/record-job.js';
import type { RecordingEntry } from '../recording/recording-index.js';
import { parseByteRange } from './byte-range.js';
import type { ApiContext } from './context.js';
import { failure, ok } from './envelope.js';
import { canSeeSecrets, sendError } from './replies.js';

interface IdParams {
  id: string;
}

const CONTENT_TYPES: Record<RecordingEntry['format'], string> = { mp4: 'video/mp4', mpegts: 'video/mp2t', flv: 'video/x-flv' };

/** A recording as the API shows it. */
export function recordingView(entry: RecordingEntry): Record<string, unknown> {
  return {
    ...entry,
    durationSeconds: Math.round(entry.durationMs) / 1000,
    download: `/v1/recordings/${entry.id}/download`,
  };
}

/** A record job as the API shows it: the source URL and notify secret only to write tokens. */
function jobView(job: RecordJobRecord, secrets: boolean): Record<string, unknown> {
  if (secrets) return { ...job };
  return { ...job, url: redactSourceUrl(job.url), ...(job.notifyUrl !== null && { notifyUrl: redactHookUrl(job.notifyUrl) }), notifySecret: job.notifySecret && '***' };
}

/** Recordings (list, read, download with ranges, delete) and record jobs. */
export function recordingRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const byStart = (a: RecordingEntry, b: RecordingEntry) => a.startedAt.localeCompare(b.startedAt);

  app.get<{ Params: IdParams }>('/v1/flows/:id/recordings', async (request, reply) => {
    const { id } = request.params;
    const entries = ctx.recordings().index.list().filter((e) => e.flowId === id);
    // A flow removed from the config may still have recordings; list those too.
    if (!ctx.flow(id) && entries.length === 0) return sendError(reply, 'not_found', `no flow with id "${id}"`);
    return ok(entries.sort(byStart).map(recordingView));
  });

  app.get<{ Querystring: { flowId?: string; jobId?: string } }>('/v1/recordings', async (request) => {
    const { flowId, jobId } = request.query;
    const entries = ctx
      .recordings()
      .index.list()
      .filter((e) => (flowId === undefined || e.flowId === flowId) && (jobId === undefined || e.jobId === jobId));
    return ok(entries.sort(byStart).map(recordingView));
  });

  app.get<{ Params: IdParams }>('/v1/recordings/:id', async (request, reply) => {
    const entry = ctx.recordings().index.get(request.params.id);
    return entry ? ok(recordingView(entry)) : sendError(reply, 'not_found', `no recording with id "${request.params.id}"`);
  });

  app.get<{ Params: IdParams }>('/v1/recordings/:id/download', async (request, reply) => download(request, reply, ctx));

  app.delete<{ Params: IdParams }>('/v1/recordings/:id', async (request, reply) => {
    const result = await ctx.recordings().delete(request.params.id);
    return result.ok ? ok({ id: request.params.id }) : sendError(reply, result.code, result.message);
  });

  app.get('/v1/record-jobs', async (request) => ok(ctx.recordJobs().list().map((j) => jobView(j, canSeeSecrets(request)))));

  app.post('/v1/record-jobs', async (request, reply) => {
    const parsed = recordJobRequestSchema.safeParse(request.body);
    if (!parsed.success) {
      const problems = parsed.error.issues.flatMap(explainIssue);
      return reply.code(400).send(failure(problems.map((i) => ({ code: 'validation_error', message: i.path.length ? `${formatPath(i.path)}: ${i.message}` : i.message }))));
    }
    const result = ctx.recordJobs().create(parsed.data);
    return result.ok ? reply.code(201).send(ok(jobView(result.job, true))) : sendError(reply, result.code, result.message);
  });

  app.get<{ Params: IdParams }>('/v1/record-jobs/:id', async (request, reply) => {
    const job = ctx.recordJobs().get(request.params.id);
    return job ? ok(jobView(job, canSeeSecrets(request))) : sendError(reply, 'not_found', `no record job with id "${request.params.id}"`);
  });

  app.delete<{ Params: IdParams }>('/v1/record-jobs/:id', async (request, reply) => {
    const result = await ctx.recordJobs().remove(request.params.id);
    if (!result.ok) return sendError(reply, result.code, result.message);
    return ok({ ...jobView(result.job, true), removed: result.removed }, [result.removed ? 'job removed from the list (its recordings stay)' : 'job stopped']);
  });
}

/** Streams a recording, or the byte range asked for (players and download managers seek with ranges). */
async function download(request: FastifyRequest<{ Params: IdParams }>, reply: FastifyReply, ctx: ApiContext): Promise<FastifyReply> {
  const recordings = ctx.recordings();
  const entry = recordings.index.get(request.params.id);
  if (!entry) return sendError(reply, 'not_found', `no recording with id "${request.params.id}"`);
  const path = recordings.index.path(entry);
  let size: number;
  try {
    // A file still being recorded is served up to what is written now.
    size = (await stat(path)).size;
  } catch {
    return sendError(reply, 'not_found', `recording "${entry.id}" has no file any more`);
  }
  const range = parseByteRange(request.headers.range, size);
  reply.header('accept-ranges', 'bytes');
  if (range.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${size}`);
    return sendError(reply, 'range_not_satisfiable', `the range ${request.headers.range} is outside the file's ${size} bytes`);
  }
  reply.header('content-type', CONTENT_TYPES[entry.format]).header('content-disposition', `attachment; filename="${basename(entry.file)}"`);
  const { start, end } = range.kind === 'partial' ? range : { start: 0, end: size - 1 };
  if (range.kind === 'partial') reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  reply.header('content-length', String(Math.max(0, end - start + 1)));
  if (size === 0) return reply.send('');
  return reply.send(createReadStream(path, { start, end }));
}
