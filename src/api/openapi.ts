import { z } from 'zod';
import { flowConfigSchema, outputConfigSchema } from '../config/schema.js';
import { recordJobRequestSchema } from '../config/schema-recording.js';
import { taskSchema } from '../config/schema-tasks.js';
import { FLOW_EVENT_TYPES } from '../core/flow-events.js';
import { ERRORS } from './envelope.js';

/**
 * The OpenAPI 3.1 document of the API, served at /v1/openapi.json. Request bodies are
 * the config schema's own flow and output objects (JSON Schema from the same zod
 * schemas that validate the file), so the document cannot drift from what is accepted.
 */
export function openApiDocument(version: string): Record<string, unknown> {
  // The OpenAPI document declares the dialect once; embedded schemas carry no $schema of their own.
  const schema = (s: z.ZodType) => {
    const { $schema: _dialect, ...rest } = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });
    return rest;
  };
  const envelope = (result: Record<string, unknown>) => ({
    type: 'object',
    required: ['success', 'errors', 'messages', 'result'],
    properties: {
      success: { type: 'boolean' },
      errors: { type: 'array', items: { $ref: '#/components/schemas/Error' } },
      messages: { type: 'array', items: { type: 'string' } },
      result,
    },
  });
  const json = (s: Record<string, unknown>) => ({ content: { 'application/json': { schema: s } } });
  const ok = (description: string, result: Record<string, unknown> = { type: 'object' }) => ({ description, ...json(envelope(result)) });
  const failure = { description: 'refused: see errors[].code', ...json(envelope({ type: 'null' })) };
  const errorResponses = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), failure]));
  const flowId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
  const outputName = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
  const flowRef = { $ref: '#/components/schemas/FlowView' };
  const anyId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
  const recordingRef = { $ref: '#/components/schemas/Recording' };
  const jobRef = { $ref: '#/components/schemas/RecordJob' };
  const taskRef = { $ref: '#/components/schemas/TaskView' };
  const read = (summary: string, result: Record<string, unknown>, parameters: unknown[] = []) => ({
    summary,
    parameters,
    responses: { 200: ok(summary, result), ...errorResponses(401, 404) },
  });
  const write = (summary: string, body: Record<string, unknown> | undefined, result: Record<string, unknown>, parameters: unknown[], status = 200) => ({
    summary,
    parameters,
    ...(body && { requestBody: { required: true, ...json(body) } }),
    responses: { [status]: ok(summary, result), ...errorResponses(400, 401, 403, 404, 409) },
  });

  return {
    openapi: '3.1.0',
    info: {
      title: 'flowrelay API',
      version,
      description:
        'Flows, their inputs and outputs, their live status, and changes that are written back into the config file. ' +
        'Every response is an envelope { success, errors, messages, result }. GET routes need a read or write token, others a write token.',
    },
    security: [{ bearer: [] }],
    paths: {
      '/healthz': { get: { summary: 'Liveness (no token)', security: [], responses: { 200: ok('ok') } } },
      '/metrics': { get: { summary: 'Prometheus metrics (a token only with api.metricsAuth)', security: [], responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/v1/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', ...json({ type: 'object' }) } } } },
      '/v1/config/status': { get: read('Whether the config file as it is on disk was accepted, and why not', { $ref: '#/components/schemas/ConfigStatus' }) },
      '/v1/listeners': {
        get: read('The RTMP(S) listener and the shared SRT port: bound addresses, connections open, their caps, and connections refused by reason', {
          type: 'array',
          items: { $ref: '#/components/schemas/Listener' },
        }),
      },
      '/v1/flows': {
        get: read('Every flow', { type: 'array', items: flowRef }),
        post: write('Create a flow (missing keys are generated and written into the file)', { $ref: '#/components/schemas/FlowCreate' }, flowRef, [], 201),
      },
      '/v1/flows/{id}': {
        get: read('One flow: settings, ingest and playback URLs (keys for write tokens), live state', flowRef, [flowId]),
        patch: write('Change the keys sent (null removes a key); the id cannot change', { type: 'object', additionalProperties: true }, flowRef, [flowId]),
        delete: write('Remove a flow', undefined, { type: 'object', properties: { id: { type: 'string' } } }, [flowId]),
      },
      '/v1/flows/{id}/status': { get: read('Live state of the flow, its inputs and its outputs', { type: 'object' }, [flowId]) },
      '/v1/flows/{id}/outputs': {
        get: read("The flow's outputs with their status", { type: 'array', items: { type: 'object' } }, [flowId]),
        post: write('Add an output', { $ref: '#/components/schemas/Output' }, { type: 'object' }, [flowId], 201),
      },
      '/v1/flows/{id}/outputs/{name}': {
        get: read('One output with its status', { type: 'object' }, [flowId, outputName]),
        patch: write('Change the keys sent; only this output reconnects', { type: 'object', additionalProperties: true }, { type: 'object' }, [flowId, outputName]),
        delete: write('Remove an output', undefined, { type: 'object' }, [flowId, outputName]),
      },
      '/v1/flows/{id}/recordings': { get: read("The flow's recordings, oldest first", { type: 'array', items: recordingRef }, [flowId]) },
      '/v1/recordings': {
        get: read('Every recording', { type: 'array', items: recordingRef }, [
          { name: 'flowId', in: 'query', schema: { type: 'string' } },
          { name: 'jobId', in: 'query', schema: { type: 'string' } },
        ]),
      },
      '/v1/recordings/{id}': {
        get: read('One recording', recordingRef, [anyId]),
        delete: write('Delete the file and its entry (not while it is being written)', undefined, { type: 'object' }, [anyId]),
      },
      '/v1/recordings/{id}/download': {
        get: {
          summary: 'The file; Range: bytes= gives 206 with Content-Range, 416 outside the file',
          parameters: [anyId, { name: 'Range', in: 'header', schema: { type: 'string' } }],
          responses: {
            200: { description: 'the whole file', content: { 'video/mp4': {}, 'video/mp2t': {}, 'video/x-flv': {} } },
            206: { description: 'the byte range asked for' },
            ...errorResponses(401, 404, 416),
          },
        },
      },
      '/v1/record-jobs': {
        get: read('Every record job', { type: 'array', items: jobRef }),
        post: { ...write('Record an rtmp:// URL once', { $ref: '#/components/schemas/RecordJobCreate' }, jobRef, [], 201), responses: { 201: ok('the job', jobRef), ...errorResponses(400, 401, 403, 429) } },
      },
      '/v1/tasks': {
        get: read('Every task with its run', { type: 'array', items: taskRef }),
        post: {
          ...write('Add a task (written into the config file)', { $ref: '#/components/schemas/Task' }, taskRef, [], 201),
          responses: { 201: ok('the task', taskRef), ...errorResponses(400, 401, 403, 409, 429) },
        },
      },
      '/v1/tasks/{id}': {
        get: read('One task with its run', taskRef, [anyId]),
        patch: write('Change the keys sent; the task restarts with them', { type: 'object', additionalProperties: true }, taskRef, [anyId]),
        delete: write('Remove a task; its ffmpeg stops', undefined, { type: 'object' }, [anyId]),
      },
      '/v1/record-jobs/{id}': {
        get: read('One record job', jobRef, [anyId]),
        delete: write('Stop an active job, or remove a finished one from the list', undefined, jobRef, [anyId]),
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token from "flowrelay token" (its SHA-256 in api.tokens)' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['code', 'message'],
          properties: { code: { type: 'string', enum: Object.keys(ERRORS) }, message: { type: 'string' } },
        },
        Flow: schema(flowConfigSchema),
        FlowCreate: flowCreate(schema(flowConfigSchema)),
        Output: schema(outputConfigSchema),
        FlowView: {
          type: 'object',
          description: 'A flow as GET shows it: its settings plus inputs[].ingest, outputs[].status, playback URLs and status.',
          properties: { id: { type: 'string' }, name: { type: 'string' }, enabled: { type: 'boolean' }, inputs: { type: 'array' }, outputs: { type: 'array' }, playback: { type: 'object' }, status: { type: 'object' } },
        },
        RecordJobCreate: schema(recordJobRequestSchema),
        Task: schema(taskSchema),
        TaskView: {
          type: 'object',
          description: 'A task: its settings plus run (status, error, attempts, retriesLeft, startedAt, nextAttemptAt, progress, log).',
          properties: { id: { type: 'string' }, source: { type: 'object' }, destination: { type: 'string' }, startTime: { type: 'string' }, endTime: { type: 'string' }, run: { type: 'object' } },
        },
        Recording: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            flowId: { type: ['string', 'null'] },
            jobId: { type: ['string', 'null'] },
            sessionId: { type: 'string' },
            segment: { type: 'integer' },
            format: { type: 'string', enum: ['mp4', 'mpegts', 'flv'] },
            file: { type: 'string' },
            status: { type: 'string', enum: ['recording', 'ready', 'failed'] },
            startedAt: { type: 'string', format: 'date-time' },
            endedAt: { type: ['string', 'null'], format: 'date-time' },
            durationMs: { type: 'number' },
            durationSeconds: { type: 'number' },
            bytes: { type: 'integer' },
            error: { type: ['string', 'null'] },
            note: { type: ['string', 'null'] },
            interrupted: { type: 'boolean' },
            download: { type: 'string' },
          },
        },
        RecordJob: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            name: { type: 'string' },
            url: { type: 'string' },
            format: { type: 'string', enum: ['mp4', 'mpegts', 'flv'] },
            status: { type: 'string', enum: ['waiting', 'recording', 'completed', 'failed', 'stopped'] },
            error: { type: ['string', 'null'] },
            waitSeconds: { type: 'integer' },
            createdAt: { type: 'string', format: 'date-time' },
            startedAt: { type: ['string', 'null'], format: 'date-time' },
            endedAt: { type: ['string', 'null'], format: 'date-time' },
            recordings: { type: 'array', items: { type: 'string' } },
            notifyUrl: { type: ['string', 'null'] },
            notifySecret: { type: ['string', 'null'] },
            tls: { type: 'object', properties: { ca: { type: 'string' }, verify: { type: 'boolean' } } },
          },
        },
        ConfigStatus: {
          type: 'object',
          properties: {
            ok: { type: 'boolean' },
            file: { type: 'string' },
            appliedAt: { type: 'string', format: 'date-time' },
            checkedAt: { type: 'string', format: 'date-time' },
            issues: { type: 'array', items: { type: 'object', properties: { file: { type: 'string' }, line: { type: 'integer' }, path: { type: 'string' }, message: { type: 'string' } } } },
          },
        },
        Listener: {
          type: 'object',
          properties: {
            protocol: { type: 'string', enum: ['rtmp', 'srt'], description: 'rtmp covers the RTMP and RTMPS listeners (one set of caps)' },
            addresses: { type: 'array', items: { type: 'object', properties: { protocol: { type: 'string' }, host: { type: 'string' }, port: { type: 'integer' } } } },
            connections: { type: 'integer', description: 'connections holding a slot now' },
            maxConnections: { type: 'integer' },
            maxConnectionsPerAddress: { type: 'integer' },
            refusals: { type: 'object', additionalProperties: { type: 'integer' }, description: 'connections refused since start, by reason' },
          },
        },
        WebhookEvent: {
          type: 'object',
          description: 'The body of a webhook POST, signed in X-Flowrelay-Signature.',
          properties: { id: { type: 'string' }, seq: { type: 'integer' }, type: { type: 'string', enum: [...FLOW_EVENT_TYPES] }, createdAt: { type: 'string', format: 'date-time' }, data: { type: 'object' } },
        },
      },
    },
  };
}

/** A flow as POST takes it: like the file's, but `inputs` may be left out (one rtmp-push input "main"). */
function flowCreate(flow: Record<string, unknown>): Record<string, unknown> {
  const required = Array.isArray(flow.required) ? (flow.required as string[]).filter((k) => k !== 'inputs') : [];
  return { ...flow, required, description: 'Without inputs, the flow gets one rtmp-push input named "main". Missing stream and playback keys are generated.' };
}
