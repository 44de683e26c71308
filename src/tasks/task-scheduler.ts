import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { TaskConfig } from '../config/schema-tasks.js';
import type { Clock } from '../lib/clock.js';
import type { TaskEvent } from '../core/flow-events.js';
import { TaskRunner, type TaskReport, type TaskRunnerDeps } from './task-runner.js';

export interface TaskSchedulerDeps extends Omit<TaskRunnerDeps, 'ended' | 'mayRun' | 'slotFreed' | 'events' | 'logger'> {
  clock: Clock;
  logger: Logger;
  /** limits.maxRunningTasks */
  maxRunning(): number;
  /** Events go to the webhooks, and to a task's callbackUrl. */
  events(event: TaskEvent, task: TaskConfig): void;
  /** Removes an ended task from the config file (and so from the API). */
  deleteTask(taskId: string): Promise<void>;
}

/**
 * The running side of `tasks:`: one runner per task, brought in line with the config on
 * every load and reload. An unchanged task is not touched; a changed one restarts; a
 * removed one stops. A task whose time is over is removed from the config file.
 */
export class TaskScheduler {
  private readonly runners = new Map<string, TaskRunner>();
  private closed = false;

  constructor(private readonly deps: TaskSchedulerDeps) {}

  apply(tasks: readonly TaskConfig[]): void {
    if (this.closed) return;
    const wanted = new Map(tasks.map((t) => [t.id, t]));
    for (const [id, runner] of this.runners) {
      const next = wanted.get(id);
      if (next && isDeepStrictEqual(runSettings(next), runSettings(runner.config))) {
        // A new name or callback does not touch the running push.
        runner.config = next;
        continue;
      }
      void runner.close(next ? 'task changed' : 'task removed');
      this.runners.delete(id);
    }
    for (const task of tasks) {
      if (this.runners.has(task.id)) continue;
      const runner: TaskRunner = new TaskRunner(task, {
        ...this.deps,
        logger: this.deps.logger.child({ taskId: task.id }),
        events: (event) => this.deps.events(event, runner.config),
        mayRun: (id) => this.runningCount(id) < this.deps.maxRunning(),
        // After the failing runner has finished its own transition.
        slotFreed: () => queueMicrotask(() => this.startWaiting()),
        ended: (id) => this.onEnded(id),
      });
      this.runners.set(task.id, runner);
      runner.start();
    }
    this.startWaiting();
  }

  get(id: string): { config: TaskConfig; report: TaskReport } | undefined {
    const runner = this.runners.get(id);
    return runner && { config: runner.config, report: runner.report() };
  }

  list(): { config: TaskConfig; report: TaskReport }[] {
    return [...this.runners.values()].map((r) => ({ config: r.config, report: r.report() }));
  }

  /** Stops every task; resolves when their ffmpeg processes have exited. */
  async close(): Promise<void> {
    this.closed = true;
    const exits = [...this.runners.values()].map((runner) => runner.close('daemon stopping'));
    this.runners.clear();
    await Promise.all(exits);
  }

  /** A running slot may have come free: tasks waiting for one try again, in config order. */
  private startWaiting(): void {
    for (const r of this.runners.values()) if (r.waitingForSlot) r.retryStart();
  }

  private runningCount(except: string): number {
    return [...this.runners.values()].filter((r) => r.id !== except && r.isRunning).length;
  }

  private onEnded(id: string): void {
    const runner = this.runners.get(id);
    void runner?.close('its time is over');
    this.startWaiting();
    if (this.closed) return;
    this.deps.deleteTask(id).catch((err: Error) => this.deps.logger.error({ taskId: id, err: err.message }, 'cannot remove an ended task from the config file'));
  }
}

/** What a task's run depends on: all of it but its name and where its events go. */
function runSettings(task: TaskConfig): Omit<TaskConfig, 'name' | 'callbackUrl' | 'callbackSecret'> {
  const { name: _name, callbackUrl: _url, callbackSecret: _secret, ...run } = task;
  return run;
}
