// Per-container figures of runsc subcontainers from `runsc events --stats <id>`.
//
// Measured with the installed runsc (Debian 0.0~20221219), a sandbox started with the
// `dev.gvisor.spec.cgroup-parent` annotation and two subcontainers (one busy, one idle):
//   {"type":"stats","id":"c1","data":{"cpu":{"usage":{"total":4495628979}},
//    "memory":{"usage":{"limit":0,"usage":6066176,"failcnt":0},…},"pids":{"current":3}}}
// - cpu.usage.total is already S13's proportional share: runsc scales each running
//   container's in-sandbox usage by the sandbox cgroup's usage (the busy container got
//   4.50 s, the root and the idle one 0.02 s each, the pod cgroup 4.58 s), so it is used
//   as it is and never scaled again.
// - Only running containers share: once one stops, `events --stats` of it fails, and the
//   survivors absorb its past CPU time (their totals jump), as the seed's populateStats.
// - memory.usage.usage and pids.current are the whole sandbox's, the same for every
//   container.
//
// RunscRuntime.stats (runtime-runsc.ts) is its one caller in the daemon.
import { InternalError, errorMessage } from '../errors.js';
import { runCommand, type CommandRunner } from './command.js';
import type { RuntimeStats } from './runtime.js';

/** How long one `runsc events --stats` may take. */
export const RUNSC_EVENTS_TIMEOUT_MS = 10_000;

/** runsc's figures: cpu is already the container's share (S13); memory and pids the sandbox's. */
export type RunscStats = RuntimeStats;

/** Parses one `runsc events --stats` line. */
export function parseRunscStats(text: string, id: string): RunscStats {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.trim());
  } catch (e) {
    throw new InternalError(`parsing runsc events of container "${id}": ${errorMessage(e)}: ${JSON.stringify(text.slice(0, 200))}`, { cause: e });
  }
  const data = (parsed as { data?: Record<string, unknown> } | null)?.data;
  const cpu = (data?.cpu as { usage?: { total?: unknown } } | undefined)?.usage?.total;
  if (typeof cpu !== 'number' && typeof cpu !== 'string') {
    throw new InternalError(`parsing runsc events of container "${id}": no data.cpu.usage.total in ${JSON.stringify(text.slice(0, 200))}`);
  }
  const mem = (data?.memory as { usage?: { usage?: unknown } } | undefined)?.usage?.usage;
  const pids = (data?.pids as { current?: unknown } | undefined)?.current;
  return {
    cpuUsageNs: BigInt(Math.trunc(Number(cpu))),
    memoryUsageBytes: typeof mem === 'number' ? mem : undefined,
    pids: typeof pids === 'number' ? pids : undefined,
  };
}

/** The stats runsc reports for a running container; undefined when it reports none (stopped or gone). */
export async function runscEventsStats(
  driver: { binaryPath(): string; globalArgs(): string[] },
  id: string,
  run: CommandRunner = runCommand,
): Promise<RunscStats | undefined> {
  let stdout: string;
  try {
    ({ stdout } = await run(driver.binaryPath(), [...driver.globalArgs(), 'events', '--stats', id], { timeoutMs: RUNSC_EVENTS_TIMEOUT_MS }));
  } catch {
    return undefined; // not running: runsc prints nothing and fails
  }
  if (stdout.trim() === '') return undefined;
  return parseRunscStats(stdout.split('\n').find((l) => l.trim() !== '') ?? '', id);
}
