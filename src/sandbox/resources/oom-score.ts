// The sandbox's OOM score (S10) and the per-container helper's (S11).
//
// S10: the sandbox process's oom_score_adj is the lowest oom_score_adj among the
// sandbox's containers that set one, ignoring the infra (sandbox-type) container; it is
// recomputed after every start and destroy, the original score comes back when no
// container with a value is left, the recompute is skipped while the root itself is
// being destroyed, and a process that already exited is not an error.
// S11: a helper dedicated to one container (sandlot's monitor, gVisor's gofer) gets
// that container's oom_score_adj.
//
// The seed recomputes without a lock and leaves a TODO: two containers of one pod
// starting at the same moment can each compute from a stale container list and the
// last writer wins with the wrong value. OomScoreApplier serializes per sandbox and
// loads the container list *inside* the lock, so the last write always reflects the
// latest list. It also remembers what it last wrote to each sandbox process, so a
// recompute that lands on the same value writes nothing (issue 13: a container's start,
// exit and removal each rewrote the unchanged score) when the process still has it: the
// runtime may write it too (runsc sets the sandbox's score at a subcontainer's start,
// measured: 0 for a container without a value), so the value is read back first, a read
// instead of a write.

import { readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { errnoCode, InvalidArgumentError, wrapError } from '../../errors.js';
import { KeyedMutex } from '../../util/mutex.js';

export const OOM_SCORE_ADJ_MIN = -1000;
export const OOM_SCORE_ADJ_MAX = 1000;
/** Bit of CAP_SYS_RESOURCE in the CapEff mask of /proc/<pid>/status. */
export const CAP_SYS_RESOURCE_BIT = 24;

export type ContainerKind = 'sandbox' | 'container';

export interface OomScoreMember {
  id: string;
  /** 'sandbox' is the infra (root) container, ignored by S10. */
  type: ContainerKind;
  /** The container's OCI process.oomScoreAdj, when it sets one. */
  oomScoreAdj?: number;
}

export interface SandboxOomScoreInput {
  /** The sandbox process's oom_score_adj saved when the sandbox was created. */
  original: number;
  /** True while the root container itself is being destroyed. */
  rootBeingDestroyed: boolean;
  /** The sandbox's containers as they are now (the destroyed one already removed). */
  containers: readonly OomScoreMember[];
}

export type OomScoreDecision = { action: 'skip' } | { action: 'set'; value: number };

/**
 * S10 as a pure function. Unlike the seed, which writes the original back only on
 * destroy, this restores it whenever no container sets a value: on a start that is the
 * value the sandbox already has (inherited), so the result is the same and one rule is
 * simpler to reason about than two.
 */
export function sandboxOomScore(input: SandboxOomScoreInput): OomScoreDecision {
  // S10: destroying the root brings the whole sandbox down; nothing to adjust.
  if (input.rootBeingDestroyed) return { action: 'skip' };
  // No containers at all: the sandbox is gone (the seed's "sandbox terminated").
  if (input.containers.length === 0) return { action: 'skip' };
  let low: number | undefined;
  for (const c of input.containers) {
    // S10: the infra container always has a very low score; it must not pull the
    // sandbox down with it.
    if (c.type === 'sandbox') continue;
    if (c.oomScoreAdj === undefined) continue;
    if (low === undefined || c.oomScoreAdj < low) low = c.oomScoreAdj;
  }
  // S10: the last container with a value went away → the original score.
  return { action: 'set', value: low ?? input.original };
}

/** The file operations the applier needs; synchronous node:fs by default. */
export interface OomScoreFs {
  readFile(path: string): Promise<string>;
  writeFile(path: string, data: string): Promise<void>;
}

/**
 * procfs answers from memory in microseconds: synchronous calls, not three or four
 * thread-pool round trips per file (issue 13: ~6 reads per pod lifecycle); a failure
 * still comes as the promise's rejection.
 */
export const NODE_OOM_SCORE_FS: OomScoreFs = {
  readFile: (path) => settled(() => readFileSync(path, 'utf8')),
  writeFile: (path, data) => settled(() => writeFileSync(path, data)),
};

/** `fn`'s result as a promise: its throw as the rejection. */
function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

export interface OomScoreApplierOptions {
  logger: Logger;
  fs?: OomScoreFs;
  /** Where procfs is mounted; '/proc' unless a test says otherwise. */
  procRoot?: string;
}

/** What a write did: the value written (after the clamp) or that the process had exited. */
export type OomScoreWrite = { exited: false; requested: number; written: number } | { exited: true; requested: number };

/** 'kept': the value is the one last written to that process, so nothing was written. */
export type SandboxOomScoreResult = { action: 'skip' } | { action: 'kept'; value: number } | ({ action: 'set' } & OomScoreWrite);

/**
 * Writes oom_score_adj values. Without CAP_SYS_RESOURCE the kernel refuses any value
 * below the process's oom_score_adj_min (inherited from the daemon), so, like
 * containerd's restrict_oom_score_adj, values below the daemon's own score are raised
 * to it rather than failing the container.
 */
export class OomScoreApplier {
  private readonly logger: Logger;
  private readonly fs: OomScoreFs;
  private readonly procRoot: string;
  private readonly locks = new KeyedMutex();
  /** What was last written to each sandbox's process (by sandbox ID). */
  private readonly written = new Map<string, { pid: number; value: number; written: number }>();
  private floor: Promise<number | undefined> | undefined;
  private clampLogged = false;

  constructor(options: OomScoreApplierOptions) {
    this.logger = options.logger;
    this.fs = options.fs ?? NODE_OOM_SCORE_FS;
    this.procRoot = options.procRoot ?? '/proc';
  }

  /** The current oom_score_adj of `pid` (to save as the sandbox's original), or undefined if it exited. */
  async read(pid: number): Promise<number | undefined> {
    const path = `${this.procRoot}/${pid}/oom_score_adj`;
    let text: string;
    try {
      text = await this.fs.readFile(path);
    } catch (e: unknown) {
      if (isExitedError(e)) return undefined;
      throw wrapError(`reading oom_score_adj of pid ${pid}`, e);
    }
    return parseScore(text, path);
  }

  /**
   * S10: recompute and write the sandbox process's score. `load` is called inside the
   * per-sandbox lock, so it must read the sandbox's containers fresh each time.
   */
  async adjustSandbox(sandboxId: string, sandboxPid: number, load: () => SandboxOomScoreInput | Promise<SandboxOomScoreInput>): Promise<SandboxOomScoreResult> {
    return this.locks.runExclusive(sandboxId, async () => {
      const decision = sandboxOomScore(await load());
      if (decision.action === 'skip') return decision;
      const last = this.written.get(sandboxId);
      if (last !== undefined && last.pid === sandboxPid && last.value === decision.value && (await this.current(sandboxPid)) === last.written) {
        return { action: 'kept' as const, value: decision.value };
      }
      let result: OomScoreWrite;
      try {
        result = await this.write(sandboxPid, decision.value);
      } catch (e: unknown) {
        this.written.delete(sandboxId);
        throw wrapError(`adjusting oom_score_adj of sandbox "${sandboxId}"`, e);
      }
      if (result.exited) this.written.delete(sandboxId);
      else this.written.set(sandboxId, { pid: sandboxPid, value: decision.value, written: result.written });
      return { action: 'set' as const, ...result };
    });
  }

  /** The process's oom_score_adj now; undefined when it cannot be read (then it is written). */
  private async current(pid: number): Promise<number | undefined> {
    try {
      return Number((await this.fs.readFile(`${this.procRoot}/${pid}/oom_score_adj`)).trim());
    } catch {
      return undefined;
    }
  }

  /** Forgets what was written to a sandbox that is gone. */
  forgetSandbox(sandboxId: string): void {
    this.written.delete(sandboxId);
  }

  /** S11: a helper dedicated to one container takes that container's score (none set → untouched). */
  async adjustHelper(pid: number, oomScoreAdj: number | undefined): Promise<OomScoreWrite | undefined> {
    if (oomScoreAdj === undefined) return undefined;
    return this.write(pid, oomScoreAdj);
  }

  /** Writes one value, clamped; a process that already exited is not an error (S10). */
  async write(pid: number, value: number): Promise<OomScoreWrite> {
    if (!Number.isInteger(value) || value < OOM_SCORE_ADJ_MIN || value > OOM_SCORE_ADJ_MAX) {
      throw new InvalidArgumentError(`setting oom_score_adj of pid ${pid}: value ${value} is not an integer in [${OOM_SCORE_ADJ_MIN}, ${OOM_SCORE_ADJ_MAX}]`);
    }
    const written = await this.clamp(value);
    const path = `${this.procRoot}/${pid}/oom_score_adj`;
    try {
      await this.fs.writeFile(path, String(written));
    } catch (e: unknown) {
      // ENOENT: the /proc entry is gone; ESRCH: it exited between open and write.
      if (isExitedError(e)) {
        this.logger.warn({ pid }, 'process exited before its oom_score_adj was set');
        return { exited: true, requested: value };
      }
      throw wrapError(`setting oom_score_adj of pid ${pid} to ${written}`, e);
    }
    return { exited: false, requested: value, written };
  }

  private async clamp(value: number): Promise<number> {
    // A failed read is not cached: the next write tries again.
    this.floor ??= this.readFloor().catch((e: unknown) => {
      this.floor = undefined;
      throw e;
    });
    const floor = await this.floor;
    if (floor === undefined || value >= floor) return value;
    if (!this.clampLogged) {
      this.clampLogged = true;
      this.logger.warn({ floor, requested: value }, 'daemon lacks CAP_SYS_RESOURCE: oom_score_adj values below its own are raised to it');
    }
    return floor;
  }

  /** undefined = no clamp (the daemon holds CAP_SYS_RESOURCE). */
  private async readFloor(): Promise<number | undefined> {
    const statusPath = `${this.procRoot}/self/status`;
    let status: string;
    try {
      status = await this.fs.readFile(statusPath);
    } catch (e: unknown) {
      throw wrapError(`reading capabilities from "${statusPath}"`, e);
    }
    if (hasCapability(status, CAP_SYS_RESOURCE_BIT)) return undefined;
    const selfPath = `${this.procRoot}/self/oom_score_adj`;
    try {
      return parseScore(await this.fs.readFile(selfPath), selfPath);
    } catch (e: unknown) {
      throw wrapError(`reading the daemon's own oom_score_adj`, e);
    }
  }
}

/** Whether the CapEff mask in a /proc/<pid>/status text has `bit` set. */
export function hasCapability(statusText: string, bit: number): boolean {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText);
  if (m === null) throw new InvalidArgumentError('parsing process status: no CapEff line');
  return ((BigInt(`0x${m[1]}`) >> BigInt(bit)) & 1n) === 1n;
}

function parseScore(text: string, path: string): number {
  const trimmed = text.trim();
  if (!/^-?\d+$/.test(trimmed)) {
    throw new InvalidArgumentError(`parsing "${path}": ${JSON.stringify(trimmed)} is not an integer`);
  }
  return Number(trimmed);
}

function isExitedError(e: unknown): boolean {
  const code = errnoCode(e);
  return code === 'ENOENT' || code === 'ESRCH';
}
