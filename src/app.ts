import { readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ApiContext, ConfigStatus } from './api/context.js';
import { hashApiToken, newApiToken, TokenVerifier } from './api/tokens.js';
import { describeTarget, editConflicts, flowIdOf, type ConfigEdit, type EditRefusal } from './config/edit.js';
import { formatIssue, readConfigFile, type ConfigIssue, type LoadResult } from './config/load.js';
import { writeFileAtomic } from './lib/atomic-write.js';
import { parseListen, type PeerConfig, type ResolvedConfig, type ResolvedFlowConfig } from './config/schema.js';
import { fileSecretStore, fillMissingSecrets, forgetFlowSecrets, resolveApiTokens, secretsFilePath, type GeneratedSecret } from './config/secrets.js';
import { ConfigThread } from './config/config-thread.js';
import { ConfigWatcher } from './config/watch.js';
import { FlowRegistry, type ApplyResult } from './core/flow-registry.js';
import type { FlowSpec } from './core/flow.js';
import { FlowrelayError } from './lib/errors.js';
import { systemClock } from './lib/clock.js';
import { flowParts } from './flow-parts.js';
import { registryRouter } from './rtmp/router.js';
import { SrtRuntime } from './srt/runtime.js';
import { SrtIngest } from './srt/srt-ingest.js';
import { admitByLists, CidrList } from './policy/cidr.js';
import { ConnectionAdmission, type ListenerReport } from './policy/connection-admission.js';
import { RtmpServer, type RtmpListenerSpec } from './rtmp/server.js';
import { WriteMerger } from './rtmp/write-merger.js';
import { WireCache } from './rtmp/wire-cache.js';
import { createLogger } from './telemetry/logger.js';
import { packageVersion } from './cli/version.js';
import { Webhooks } from './telemetry/webhooks.js';
import { nodeRecordingFs, type RecordingFileSystem } from './recording/recording-fs.js';
import { RecordingService, type RecordingServiceOptions } from './recording/recording-service.js';
import type { RecordingEntry } from './recording/recording-index.js';
import { RecordJobs } from './recording/record-jobs.js';
import type { FlowPartsFactory } from './core/flow-parts.js';
import { TaskScheduler } from './tasks/task-scheduler.js';
import { loadTlsPair } from './rtmp/tls-pair.js';
import { checkTlsFiles } from './config/tls-files-check.js';
import type { TaskConfig } from './config/schema-tasks.js';
import type { FlowEvent } from './core/flow-events.js';

export interface AppOptions {
  configFile: string;
  env?: Record<string, string | undefined>;
  /** Defaults to a pino logger on stdout at the config's level. */
  logger?: Logger;
  /** Where generated keys are announced (once). Defaults to stderr. */
  announce?: (text: string) => void;
  /** Reload when the config file changes (default true; SIGHUP works either way). */
  watchConfig?: boolean;
  /** How API changes are written (default: atomically); tests inject a failing one. */
  writeConfigFile?: typeof writeFileAtomic;
  /** Where recordings are written (default: the real file system); tests inject a failing disk. */
  recordingFs?: RecordingFileSystem;
  /** A task's retry interval in ms (default: its intervalSeconds); tests shorten it. */
  taskRetryDelayMs?: (intervalSeconds: number) => number;
}

/** Times an API edit is made again because the file changed while it was being made. */
const EDIT_ATTEMPTS = 3;

/** How long close() waits for files, ffmpeg processes and sockets to finish. */
const SHUTDOWN_WAIT_MS = 10_000;

/** `notApplied`: the file is valid, but applying it failed (the state directory cannot be written). */
export type ReloadResult = { ok: true; changes: ApplyResult } | { ok: false; issues: ConfigIssue[]; notApplied?: true };

export type EditOutcome = { ok: true } | ({ ok: false; issues?: ConfigIssue[] } & EditRefusal);

/** Thrown by App.load for a config that does not validate; carries every issue. */
export class ConfigInvalidError extends FlowrelayError {
  constructor(readonly issues: ConfigIssue[]) {
    super('CONFIG_INVALID', `config is invalid:\n${issues.map(formatIssue).join('\n')}`);
  }
}

function recordingOptions(config: ResolvedConfig): RecordingServiceOptions {
  return { storageDir: config.storage.dir, minFreeBytes: config.storage.minFreeSpace, maxWriteBacklogBytes: config.storage.maxWriteBacklog };
}

/** Days to keep each recording: its flow's recording.deleteAfterDays, or recordJobs' for a job's. */
function retentionPolicy(config: ResolvedConfig): (entry: RecordingEntry) => number | undefined {
  const byFlow = new Map(config.flows.map((f) => [f.id, f.recording.deleteAfterDays]));
  return (entry) => (entry.flowId !== null ? byFlow.get(entry.flowId) : config.recordJobs.deleteAfterDays);
}

function newTokenPair(): { token: string; sha256: string } {
  const token = newApiToken();
  return { token, sha256: hashApiToken(token) };
}

function toFlowSpec(flow: ResolvedFlowConfig, peers: readonly PeerConfig[]): FlowSpec {
  return {
    id: flow.id,
    name: flow.name,
    enabled: flow.enabled,
    inputs: flow.inputs.map((i) => {
      if (i.type === 'rtmp-push') return { name: i.name, type: i.type, streamKey: i.streamKey };
      if (i.type === 'flow' && i.node !== undefined) return { ...i, peer: peers.find((p) => p.name === i.node) };
      return i;
    }),
    outputs: flow.outputs,
    playbackKey: flow.playback.key,
    limits: flow.limits,
    recording: flow.recording,
    failover: flow.failover,
  };
}

/**
 * Composition root: builds the daemon's parts from a config file and owns their start,
 * reload and close order. Nothing here knows protocol details.
 */
export class App {
  readonly registry: FlowRegistry;
  private rtmp: RtmpServer | undefined;
  private srt: SrtRuntime | undefined;
  private srtIngest: SrtIngest | undefined;
  private closing: Promise<void> | undefined;
  private api: FastifyInstance | undefined;
  private watcher: ConfigWatcher | undefined;
  /** Made with the API (the process metrics keep a timer; a daemon without the API pays nothing). */
  private metrics: Registry | undefined;
  private configStatus: ConfigStatus;
  private readonly startedAt = Date.now();
  private readonly webhooks: Webhooks;
  /** Reloads and API edits parse there, off the media thread. */
  private readonly configThread = new ConfigThread();
  private recordingService: RecordingService | undefined;
  private recordJobs: RecordJobs | undefined;
  private readonly tasks: TaskScheduler;
  /** Per task with a callbackUrl: where its events go (signed like webhooks). */
  private readonly taskCallbacks = new Map<string, { key: string; send(event: FlowEvent): void }>();
  private readonly parts: FlowPartsFactory;

  private constructor(
    private config: ResolvedConfig,
    private readonly options: AppOptions,
    readonly logger: Logger,
    private pendingAnnouncements: GeneratedSecret[],
    private apiTokens: TokenVerifier,
    private pendingApiToken: string | undefined,
    /** The file's text as last applied: API edits check it to detect hand edits they would overwrite. */
    private appliedText: string | undefined,
  ) {
    const now = new Date().toISOString();
    this.configStatus = { ok: true, file: options.configFile, appliedAt: now, checkedAt: now, issues: [] };
    const parts = (this.parts = flowParts({
      rtmp: { maxMessageSize: config.rtmp.maxMessageSize },
      clock: systemClock,
      srt: () => this.srtRuntime(),
      ffmpegPath: () => this.config.ffmpeg.path,
      flowHub: (id) => this.registry.get(id)?.hub,
      recordings: () => {
        if (!this.recordingService) throw new FlowrelayError('INTERNAL', 'recordings are used before the recording service is open');
        return this.recordingService;
      },
    }));
    this.webhooks = new Webhooks(logger.child({ component: 'webhooks' }));
    this.webhooks.configure(config.webhooks);
    this.tasks = new TaskScheduler({
      clock: systemClock,
      logger: logger.child({ component: 'tasks' }),
      ffmpegPath: () => this.config.ffmpeg.path,
      ffprobePath: () => this.config.ffmpeg.probePath,
      workDir: join(config.storage.dir, 'tasks'),
      maxRunning: () => this.config.limits.maxRunningTasks,
      events: (event, task) => {
        this.webhooks.emit(event);
        this.taskCallback(task)?.send(event);
      },
      deleteTask: async (id) => {
        const done = await this.editConfig({ kind: 'task.delete', id });
        if (!done.ok && done.code !== 'not_found') throw new Error(done.message);
      },
      ...(options.taskRetryDelayMs && { retryDelayMs: options.taskRetryDelayMs }),
    });
    this.registry = new FlowRegistry(logger.child({ component: 'flows' }), parts, {}, (event) => this.webhooks.emit(event));
  }

  /** Loads and validates the config (and fills generated keys); throws ConfigInvalidError. */
  static async load(options: AppOptions): Promise<App> {
    const { text, loaded } = await readConfigFile(options.configFile, options.env ?? process.env);
    if (!loaded.ok) throw new ConfigInvalidError(loaded.issues);
    const { config, generated } = await fillMissingSecrets(loaded.config, fileSecretStore(secretsFilePath(loaded.config.storage.dir)));
    const logger = options.logger ?? createLogger(config.log.level);
    const api = await resolveApiTokens(config, fileSecretStore(secretsFilePath(config.storage.dir)), newTokenPair);
    return new App(config, options, logger, generated, new TokenVerifier(api.tokens), api.generated, text);
  }

  async start(): Promise<void> {
    const { rtmp } = this.config;
    const listeners: RtmpListenerSpec[] = [parseListen(rtmp.listen)];
    if (rtmp.tls) {
      const tlsFiles = { certPath: rtmp.tls.cert, keyPath: rtmp.tls.key };
      const pair = await loadTlsPair(tlsFiles).catch((err: Error) => {
        throw new FlowrelayError('TLS_FILES', `rtmp.tls: ${err.message}`);
      });
      if (pair.expired) this.logger.warn({ certPath: tlsFiles.certPath, subject: pair.subject, validTo: pair.validTo }, 'rtmps certificate has expired');
      listeners.push({ ...parseListen(rtmp.tls.listen), tls: { cert: pair.cert, key: pair.key }, tlsFiles });
    }
    this.recordingService = await RecordingService.open(
      recordingOptions(this.config),
      {
        fs: this.options.recordingFs ?? nodeRecordingFs,
        clock: systemClock,
        events: (event) => {
          this.webhooks.emit(event);
          this.recordJobs?.route(event);
        },
        logger: this.logger.child({ component: 'recording' }),
      },
      retentionPolicy(this.config),
    );
    this.recordJobs = await RecordJobs.load(this.config.recordJobs, {
      recordings: this.recordingService,
      createInput: (spec, hub, logger) => this.parts.createPullInput(spec, hub, logger),
      notifier: (url, secret) => this.webhooks.notifier(url, secret),
      events: (event) => this.webhooks.emit(event),
      clock: systemClock,
      logger: this.logger.child({ component: 'record-jobs' }),
    });
    this.recordingService.startRetention();
    this.registry.apply(this.config.flows.map((f) => toFlowSpec(f, this.config.peers)));
    if (this.config.srt) {
      const { listen, latencyMs, allow, deny, maxConnections, maxConnectionsPerAddress } = this.config.srt;
      this.srtIngest = new SrtIngest(
        this.srtRuntime(),
        this.registry,
        { ...parseListen(listen), latencyMs },
        new ConnectionAdmission({ maxConnections, maxConnectionsPerAddress, allow: CidrList.parse(allow), deny: CidrList.parse(deny) }),
        this.logger.child({ component: 'srt' }),
      );
      this.srtIngest.start();
    }
    const admission = new ConnectionAdmission({
      maxConnections: rtmp.maxConnections,
      maxConnectionsPerAddress: rtmp.maxConnectionsPerAddress,
      allow: CidrList.parse(rtmp.allow),
      deny: CidrList.parse(rtmp.deny),
    });
    this.rtmp = new RtmpServer(
      listeners,
      {
        chunkSize: rtmp.chunkSize,
        maxMessageSize: rtmp.maxMessageSize,
        maxChunkSize: rtmp.maxChunkSize,
        handshakeTimeoutMs: rtmp.handshakeTimeoutMs,
        idleTimeoutMs: rtmp.idleTimeoutMs,
        playerMaxBacklogBytes: rtmp.maxPlayerBacklog,
      },
      {
        router: registryRouter(this.registry, (reason) => admission.countRefusal(reason)),
        wire: new WireCache(rtmp.chunkSize),
        logger: this.logger.child({ component: 'rtmp' }),
        now: Date.now,
        ...(rtmp.mergeWritesMs > 0 && { merger: new WriteMerger(rtmp.mergeWritesMs) }),
      },
      admission,
    );
    await this.rtmp.start();
    // After the listeners: tasks and jobs may push into or pull from this daemon's own flows.
    this.tasks.apply(this.config.tasks);
    this.recordJobs.resume();
    if (this.config.api) await this.startApi(this.config.api.listen);
    if (this.options.watchConfig !== false) await this.watchConfig();
    this.announceGenerated(this.pendingAnnouncements);
    this.pendingAnnouncements = [];
    this.announceApiToken();
    this.logger.info({ flows: this.config.flows.length }, 'flowrelay started');
  }

  /** libsrt is loaded on first use, so a daemon without SRT never needs it. */
  private srtRuntime(): SrtRuntime {
    this.srt ??= SrtRuntime.open(this.logger.child({ component: 'srt' }));
    return this.srt;
  }

  /** The shared SRT port actually bound (port 0 in the config resolved), if SRT is configured. */
  srtPort(): number | undefined {
    return this.srtIngest?.port;
  }

  private async startApi(listen: string): Promise<void> {
    const { host, port } = parseListen(listen);
    // Loaded here: fastify and prom-client cost memory and start-up time a daemon without an api section should not pay.
    const [{ buildApiServer }, { createMetrics }] = await Promise.all([import('./api/server.js'), import('./telemetry/metrics.js')]);
    this.metrics = createMetrics({ flows: () => this.registry.list(), now: Date.now, configOk: () => this.configStatus.ok, webhooks: () => this.webhooks.stats(), recordingFreeBytes: () => this.recordingService?.space.freeBytes,
      tasks: () => this.tasks.list().map((t) => ({ id: t.config.id, status: t.report.status, attempts: t.report.attempts })),
      listeners: () => this.listeners(),
    });
    this.api = buildApiServer(this.apiContext(this.metrics), this.logger.child({ component: 'api' }));
    await this.api.listen({ host, port }).catch((err: Error) => {
      throw new FlowrelayError('API_LISTEN', `cannot listen on api.listen ${listen}: ${err.message}`);
    });
  }

  private apiContext(metrics: Registry): ApiContext {
    return {
      flows: () => this.registry.list(),
      flow: (id) => this.registry.get(id),
      meta: (id) => this.config.flows.find((f) => f.id === id)?.meta ?? {},
      listeners: () => this.listeners(),
      endpoints: () => {
        const bound = (protocol: string) => this.addresses().find((a) => a.protocol === protocol)?.address.port;
        return { host: this.config.publicHost, rtmpPort: bound('rtmp') ?? parseListen(this.config.rtmp.listen).port, rtmpsPort: bound('rtmps'), srtPort: this.srtPort() };
      },
      configStatus: () => this.configStatus,
      tokens: () => this.apiTokens,
      admits: (address) => {
        const api = this.config.api;
        return !api || admitByLists(address, CidrList.parse(api.allow), CidrList.parse(api.deny));
      },
      metricsAuth: () => this.config.api?.metricsAuth ?? false,
      metrics,
      edit: (e) => this.editConfig(e),
      recordings: () => this.started(this.recordingService),
      recordJobs: () => this.started(this.recordJobs),
      tasks: () => this.tasks,
      taskRequestsPerMinute: () => this.config.api?.taskRequestsPerMinute ?? 60,
      now: Date.now,
      startedAt: this.startedAt,
      version: packageVersion(),
    };
  }

  /** The signed sender of a task's callbackUrl, made once per URL and secret. */
  private taskCallback(task: TaskConfig): { send(event: FlowEvent): void } | undefined {
    if (task.callbackUrl === undefined || task.callbackSecret === undefined) return undefined;
    const key = `${task.callbackUrl}\n${task.callbackSecret}`;
    let entry = this.taskCallbacks.get(task.id);
    if (entry?.key !== key) {
      entry = { key, ...this.webhooks.notifier(task.callbackUrl, task.callbackSecret) };
      this.taskCallbacks.set(task.id, entry);
    }
    return entry;
  }

  /** A part made in start(); the API only runs after it. */
  private started<T>(part: T | undefined): T {
    if (part === undefined) throw new FlowrelayError('INTERNAL', 'the daemon is not started');
    return part;
  }

  /** The API's bound port (api.listen port 0 resolved), if the API runs. */
  apiPort(): number | undefined {
    const address = this.api?.server.address();
    return typeof address === 'object' && address !== null ? address.port : undefined;
  }

  private async watchConfig(): Promise<void> {
    this.watcher = new ConfigWatcher(
      this.options.configFile,
      () => {
        this.logger.info('config file changed; reloading');
        this.reload().catch((err: Error) => this.logger.error({ err: err.message }, 'config reload failed'));
      },
      (err) => this.logger.warn({ err: err.message }, 'config file watch failed; SIGHUP still reloads'),
    );
    await this.watcher.start();
  }

  /** Bound RTMP/RTMPS addresses (port 0 in the config resolved). */
  addresses(): ReturnType<RtmpServer['addresses']> {
    return this.rtmp?.addresses() ?? [];
  }

  /** The RTMP(S) and shared SRT listeners: open connections, limits and refusals. */
  listeners(): ListenerReport[] {
    return [this.rtmp?.report(), this.srtIngest?.report()].filter((r): r is ListenerReport => r !== undefined);
  }

  /**
   * Re-reads the config file and applies what changed. A file that does not validate is
   * reported and changes nothing: the running flows keep streaming.
   */
  reload(): Promise<ReloadResult> {
    // One reload at a time, in signal order: two close SIGHUPs must not apply an older
    // file last or generate two keys for the same new flow.
    const next = this.reloading.then(() => this.reloadNow());
    this.reloading = next.catch(() => undefined);
    return next;
  }

  private reloading: Promise<unknown> = Promise.resolve();

  private async reloadNow(): Promise<ReloadResult> {
    if (this.closing) return { ok: false, issues: [{ file: this.options.configFile, line: 0, path: '', message: 'daemon is stopping' }] };
    // What is read now is handled here; the watcher need not report it again.
    await this.watcher?.noteCurrentContent();
    const checkedAt = new Date().toISOString();
    const { text, loaded } = await readConfigFile(this.options.configFile, this.envSnapshot(), (...args) => this.configThread.run('parse', ...args));
    // A renewed certificate is taken on SIGHUP too (systemctl reload), not only when the
    // watcher or the poll notices the files.
    await this.rtmp?.reloadTls();
    const issues = loaded.ok ? [...this.unwrittenFlowsIssue(loaded), ...(await this.tlsIssuesIfChanged(loaded.config, text))] : loaded.issues;
    if (!loaded.ok || issues.length > 0) {
      this.configStatus = { ...this.configStatus, ok: false, checkedAt, issues };
      this.logger.error({ issues: issues.map(formatIssue) }, 'config reload rejected; keeping the running config');
      return { ok: false, issues };
    }
    this.warnAboutRestartOnlySettings(loaded.config);
    // storage.dir waits for a restart like the listeners: the keys generated so far are in
    // the running one, and reading another's would generate every key again.
    const storage = { ...loaded.config.storage, dir: this.config.storage.dir };
    const secretsFile = secretsFilePath(storage.dir);
    const store = fileSecretStore(secretsFile);
    let filled: Awaited<ReturnType<typeof fillMissingSecrets>>;
    let api: Awaited<ReturnType<typeof resolveApiTokens>> | undefined;
    try {
      filled = await fillMissingSecrets({ ...loaded.config, storage }, store);
      // The API's section applies to the running server, which keeps its address. Removed, it
      // waits for the restart as a whole: the server runs on, and dropping its tokens and
      // address lists now would open /healthz and /metrics to addresses they kept out.
      const apiRemoved = this.config.api !== undefined && filled.config.api === undefined;
      api = apiRemoved ? undefined : await resolveApiTokens(filled.config, store, newTokenPair);
    } catch (err) {
      // Nothing was applied: say so where the valid-config status would otherwise say ok.
      const issue = { file: secretsFile, line: 0, path: '', message: `cannot keep generated keys: ${(err as Error).message}; the running config stays` };
      this.configStatus = { ...this.configStatus, ok: false, checkedAt, issues: [issue] };
      this.logger.error({ err: issue.message }, 'config reload failed; keeping the running config');
      return { ok: false, issues: [issue], notApplied: true };
    }
    const { config, generated } = filled;
    this.config = { ...config, rtmp: this.config.rtmp, srt: this.config.srt, api: this.config.api && (config.api ? { ...config.api, listen: this.config.api.listen } : this.config.api) };
    if (api) {
      this.apiTokens = new TokenVerifier(api.tokens);
      this.pendingApiToken = api.generated;
    }
    this.webhooks.configure(config.webhooks);
    this.recordingService?.configure(recordingOptions(config), retentionPolicy(config));
    this.recordJobs?.configure(config.recordJobs);
    const changes = this.registry.apply(config.flows.map((f) => toFlowSpec(f, config.peers)));
    this.tasks.apply(config.tasks);
    for (const id of this.taskCallbacks.keys()) if (!config.tasks.some((t) => t.id === id)) this.taskCallbacks.delete(id);
    this.configStatus = { ok: true, file: this.options.configFile, appliedAt: checkedAt, checkedAt, issues: [] };
    this.appliedText = text;
    this.announceGenerated(generated);
    this.announceApiToken();
    this.logger.info({ ...changes }, 'config reloaded');
    return { ok: true, changes };
  }

  /** The environment for `${NAME}` references, as a plain copy: the config thread gets it by value. */
  private envSnapshot(): Record<string, string | undefined> {
    return { ...(this.options.env ?? process.env) };
  }

  /**
   * A file without a list under `flows` while flows run is taken for one caught in the
   * middle of a save (emptied, or written up to `flows:`), not for "remove every flow":
   * applying it would drop every publisher. Removing them all takes `flows: []`.
   */
  private unwrittenFlowsIssue(loaded: Extract<LoadResult, { ok: true }>): ConfigIssue[] {
    const running = this.config.flows.length;
    if (loaded.flowsUnwritten === undefined || running === 0) return [];
    return [
      {
        file: this.options.configFile,
        line: loaded.flowsUnwritten.line,
        path: 'flows',
        message: `the file lists no flows while ${running} run (a save still in progress?); nothing was changed. To remove every flow, write "flows: []"`,
      },
    ];
  }

  /**
   * An API change: applied to the file's YAML (comments and ${ENV} references kept),
   * validated as a whole, written atomically, then applied like a hand edit. Queued with
   * reloads, so edits and reloads never interleave. Refused without writing anything
   * when the change does not validate, or when the same object was edited by hand
   * since the running config was read (the operator's edit wins).
   */
  editConfig(edit: ConfigEdit): Promise<EditOutcome> {
    const next = this.reloading.then(() => this.editNow(edit));
    this.reloading = next.catch(() => undefined);
    return next;
  }

  private async editNow(edit: ConfigEdit): Promise<EditOutcome> {
    const file = this.options.configFile;
    if (this.closing) return { ok: false, code: 'conflict', message: 'the daemon is stopping' };
    const env = this.envSnapshot();
    let written = false;
    // The edit is made on the text read here; a hand edit saved while it was being made
    // would be lost by writing it. So the file is read again just before the new one is
    // renamed over it, and a file that changed meanwhile is edited again from its new text.
    for (let attempt = 0; attempt < EDIT_ATTEMPTS && !written; attempt++) {
      let disk: string;
      try {
        disk = await readFile(file, 'utf8');
      } catch (err) {
        return { ok: false, code: 'conflict', message: `cannot read ${file}: ${(err as Error).message}` };
      }
      if (this.appliedText !== undefined && editConflicts(this.appliedText, disk, edit)) {
        return { ok: false, code: 'conflict', message: `${describeTarget(edit)} was edited in ${file} since the running config was read, and that edit is not applied yet (see GET /v1/config/status); refusing to overwrite it` };
      }
      const made = await this.configThread.run('prepareEdit', disk, edit, this.registry.get(flowIdOf(edit))?.spec.inputs ?? [], file, env);
      if (!made.ok) return made;
      try {
        // Through a symlink, the file it points to is replaced, not the link.
        const target = await realpath(file);
        const stillAsRead = async () => (await readFile(file, 'utf8').catch(() => undefined)) === disk;
        written = await (this.options.writeConfigFile ?? writeFileAtomic)(target, made.text, (await stat(target)).mode & 0o777, stillAsRead);
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'cannot write the config file; the API change is not applied');
        return { ok: false, code: 'config_not_writable', message: `cannot write ${file}: ${(err as Error).message}; change the file where it comes from (a read-only mount, a ConfigMap) instead` };
      }
    }
    if (!written) {
      return { ok: false, code: 'conflict', message: `${file} kept changing while the edit was being made; nothing was written, try again` };
    }
    this.logger.info({ edit: edit.kind, target: describeTarget(edit) }, 'config changed through the API');
    const applied = await this.reloadNow();
    if (!applied.ok && applied.notApplied) {
      return { ok: false, code: 'not_applied', message: `${file} was changed, but the change could not be applied: ${applied.issues.map((i) => i.message).join('; ')}` };
    }
    if (!applied.ok) return { ok: false, code: 'validation_error', message: applied.issues.map(formatIssue).join('; '), issues: applied.issues };
    // Deleted on purpose: its generated keys go too (a hand edit that drops a flow keeps them).
    if (edit.kind === 'flow.delete') await forgetFlowSecrets(fileSecretStore(secretsFilePath(this.config.storage.dir)), edit.id);
    return { ok: true };
  }

  /** Stops accepting, disconnects everyone, closes flows. Idempotent. */
  close(reason = 'shutdown'): Promise<void> {
    this.closing ??= (async () => {
      this.logger.info({ reason }, 'flowrelay stopping');
      this.watcher?.close();
      const configThreadClosed = this.configThread.close();
      const apiClosed = this.api?.close();
      const rtmpClosed = this.rtmp?.close();
      const srtIngestClosed = this.srtIngest?.close();
      this.registry.close(reason);
      const tasksClosed = this.tasks.close();
      // Recordings are completed before the process may exit: their last fragment and index entry.
      const recordingsClosed = (async () => {
        await this.recordJobs?.close();
        await this.recordingService?.close();
      })();
      // A stuck disk (a dead NFS server) must not keep the daemon from stopping.
      await Promise.race([
        Promise.all([rtmpClosed, srtIngestClosed, apiClosed, recordingsClosed, tasksClosed, configThreadClosed]),
        new Promise<void>((resolve) => {
          setTimeout(() => {
            this.logger.error({ waitedMs: SHUTDOWN_WAIT_MS }, 'recordings, tasks or connections did not close in time; stopping anyway');
            resolve();
          }, SHUTDOWN_WAIT_MS).unref();
        }),
      ]);
      this.webhooks.close();
      await this.srt?.close();
      this.logger.info('flowrelay stopped');
    })();
    return this.closing;
  }

  /**
   * A changed `rtmp.tls` waits for the restart, but its files are loaded now: a pair that
   * would stop the next start is refused with the edit. (The running pair's own files are
   * the TLS reloader's: a bad renewal keeps the current certificate and is logged.)
   */
  private async tlsIssuesIfChanged(next: Pick<ResolvedConfig, 'rtmp'>, text: string | undefined): Promise<ConfigIssue[]> {
    if (text === undefined || JSON.stringify(next.rtmp.tls) === JSON.stringify(this.config.rtmp.tls)) return [];
    const { issues, expired } = await checkTlsFiles(next, text, this.options.configFile);
    if (expired) this.logger.warn(`rtmp.tls: ${expired}`);
    return issues;
  }

  private warnAboutRestartOnlySettings(next: Pick<ResolvedConfig, 'rtmp' | 'srt' | 'api' | 'storage' | 'log'>): void {
    if (JSON.stringify(next.rtmp) !== JSON.stringify(this.config.rtmp)) {
      this.logger.warn('rtmp settings changed; they take effect at the next restart');
    }
    if (JSON.stringify(next.srt) !== JSON.stringify(this.config.srt)) {
      this.logger.warn('srt settings changed; they take effect at the next restart');
    }
    if (this.config.api && !next.api) {
      this.logger.warn('the api section was removed; the API runs on with its settings (tokens, address lists) until the next restart');
    } else if (next.api?.listen !== this.config.api?.listen) {
      this.logger.warn('api.listen changed (or the api section was added); it takes effect at the next restart');
    }
    if (next.storage.dir !== this.config.storage.dir) {
      this.logger.warn('storage.dir changed; it takes effect at the next restart (move secrets.json and the recordings there first)');
    }
    // Every flow, input and output logs through a child logger fixed at its creation.
    if (next.log.level !== this.config.log.level) this.logger.warn('log.level changed; it takes effect at the next restart');
  }

  /** Prints a newly generated API token, once, outside the logs. */
  private announceApiToken(): void {
    const token = this.pendingApiToken;
    if (token === undefined || !this.config.api) return;
    this.pendingApiToken = undefined;
    const announce = this.options.announce ?? ((text: string) => process.stderr.write(text));
    const port = this.apiPort() ?? parseListen(this.config.api.listen).port;
    announce(
      [
        `Generated API token (write scope; only its hash is kept, in ${secretsFilePath(this.config.storage.dir)}; shown once):`,
        `  ${token}`,
        `  e.g. curl -H 'Authorization: Bearer ${token}' http://127.0.0.1:${port}/v1/flows`,
        '  Add named tokens to api.tokens with "flowrelay token"; the generated one stops working then.',
        '',
      ].join('\n'),
    );
  }

  /** Prints newly generated keys with the URLs that use them, once, outside the logs. */
  private announceGenerated(generated: GeneratedSecret[]): void {
    if (generated.length === 0) return;
    const announce = this.options.announce ?? ((text: string) => process.stderr.write(text));
    const rtmpPort = this.addresses().find((a) => a.protocol === 'rtmp')?.address.port;
    const host = this.config.publicHost;
    const base = `rtmp://${host}:${rtmpPort ?? parseListen(this.config.rtmp.listen).port}/live`;
    const lines = [`Generated keys (kept in ${secretsFilePath(this.config.storage.dir)}; shown once):`];
    for (const g of generated) {
      const what = g.what === 'streamKey' ? `publish to flow "${g.flowId}" input "${g.inputName}"` : `play flow "${g.flowId}"`;
      lines.push(`  ${what}:`, `    ${base}/${g.value}`);
      if (g.what === 'streamKey') lines.push(`    (OBS: server ${base}, stream key ${g.value})`);
    }
    announce(`${lines.join('\n')}\n`);
  }
}
