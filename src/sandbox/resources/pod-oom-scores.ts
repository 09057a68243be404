// S10 for pods with app containers: after every start, exit and removal, the sandbox
// (infra) process's oom_score_adj becomes the lowest value among the pod's running
// containers that set one, and the infra's original value (the one its spec was created
// with) when none does. The applier serializes per sandbox and loads the member list
// inside its lock, so concurrent starts in one pod cannot leave a stale value, and
// writes nothing when the value is the one it last wrote.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { OomScoreApplier, OomScoreMember } from './oom-score.js';
import type { SandboxRecord } from '../pod/sandbox.js';

export interface PodOomScoresOptions {
  oom: OomScoreApplier;
  log: Logger;
  /** The pod's record; throws when the pod is gone. */
  pod(podId: string): Readonly<SandboxRecord>;
  /** The pod's app containers as they are now. */
  members(podId: string): OomScoreMember[];
}

export class PodOomScores {
  private readonly originals = new Map<string, number>();

  constructor(private readonly options: PodOomScoresOptions) {}

  /** Failures are logged: the lifecycle step that asked for the recompute has happened. */
  async adjust(podId: string): Promise<void> {
    let pod: Readonly<SandboxRecord>;
    try {
      pod = this.options.pod(podId);
    } catch {
      return; // the pod is gone: nothing to adjust
    }
    if (pod.state !== 'running' || pod.pid <= 0) return;
    try {
      const original = await this.original(pod);
      await this.options.oom.adjustSandbox(pod.id, pod.pid, () => ({
        original,
        rootBeingDestroyed: false,
        containers: [{ id: pod.id, type: 'sandbox' as const }, ...this.options.members(pod.id)],
      }));
    } catch (e) {
      this.options.log.warn({ err: e, podSandboxId: podId }, 'adjusting the sandbox oom_score_adj');
    }
  }

  /** The score the infra was created with (its spec): what S10 restores. */
  private async original(pod: Readonly<SandboxRecord>): Promise<number> {
    const cached = this.originals.get(pod.id);
    if (cached !== undefined) return cached;
    let value: number;
    try {
      // The bundle is on the state dir (tmpfs): read on the loop, once per pod.
      const spec = JSON.parse(fs.readFileSync(path.join(pod.paths.bundle, 'config.json'), 'utf8')) as { process?: { oomScoreAdj?: number } };
      value = spec.process?.oomScoreAdj ?? 0;
    } catch {
      value = (await this.options.oom.read(pod.pid)) ?? 0;
    }
    this.originals.set(pod.id, value);
    return value;
  }

  forget(podId: string): void {
    this.originals.delete(podId);
    this.options.oom.forgetSandbox(podId);
  }
}
