// The vs-containerd phases that measure one runtime at a time: memory with many pods
// running and List/Status latency among them (quiet and while pods start and go); one
// image pull (wall, CPU, peak RSS).
import { setTimeout as sleep } from 'node:timers/promises';
import { GoClient, grpcCaller, inBatches, podLifecycle, removeAllPods, startPod, type CriRuntime, type Workload } from './cri-runtime.js';
import { readRounds } from './read-rounds.js';
import { memoryOf, ownCpuMs, peakRssKiB, resetPeakRss, sumMemory, type Memory } from './proc-usage.js';
import { timed, type Timings } from './stats.js';

const START_CONCURRENCY = 4;
const READ_ROUNDS = 200;
/** Pod lifecycles made while the loaded reads go on, and how many at a time. */
const LOAD_CYCLES = 20;
const LOAD_CONCURRENCY = 2;
/** Lets helpers finish starting (and pages settle) before memory is read. */
const SETTLE_MS = 2000;
/**
 * Idle memory is read after this long without calls: V8's memory reducer collects about 8 s
 * after a burst (and the daemon returns the freed malloc memory then), Go's scavenger gives
 * memory back over seconds too; read sooner, both runtimes show the garbage of the burst.
 */
const IDLE_MS = 12_000;
const PULL_TIMEOUT_MS = 10 * 60_000;

export interface ScaleFigures {
  /** Daemon alone and daemon + helpers, with no pod, before the pods start. */
  idleDaemon: Memory;
  /** Per pod count: daemon alone and daemon + per-pod helpers. */
  levels: Array<{ pods: number; daemon: Memory; runtime: Memory }>;
  /** Latencies of List/Status calls with the most pods running, as a Go client (bench/lib/read-rounds.ts) sees them. */
  reads: Timings;
  /** The same reads by the bench's own grpc-js client (its event loop and GC included). */
  nodeReads: Timings;
  /** The Go client's reads while more pods start and are removed. */
  loadedReads: Timings;
  /** Daemon alone after every pod is gone again. */
  idleAfter: Memory;
}

async function settledMemory(rt: CriRuntime, waitMs = SETTLE_MS): Promise<{ daemon: Memory; runtime: Memory }> {
  await sleep(waitMs);
  const daemon = memoryOf(rt.pid);
  const helpers = sumMemory(rt.helpers());
  return { daemon, runtime: { rssKiB: daemon.rssKiB + helpers.rssKiB, pssKiB: daemon.pssKiB + helpers.pssKiB } };
}

/** The grpc-js client of this process: its own event loop and GC are in every figure. */
async function nodeReads(rt: CriRuntime, running: Array<{ pod: string; ctr: string }>): Promise<Timings> {
  const call = grpcCaller(rt);
  const t: Timings = {};
  for (let i = 0; i < READ_ROUNDS; i++) {
    const { pod, ctr } = running[i % running.length];
    await timed(t, 'ListPodSandbox', () => call('ListPodSandbox', {}));
    await timed(t, 'PodSandboxStatus', () => call('PodSandboxStatus', { pod_sandbox_id: pod }));
    await timed(t, 'ListContainers', () => call('ListContainers', {}));
    await timed(t, 'ContainerStatus', () => call('ContainerStatus', { container_id: ctr }));
  }
  return t;
}

/**
 * The reads among the running pods: by a Go client (the figure), by this process's
 * grpc-js client, and by the Go client again while LOAD_CYCLES more pods start and go
 * (LOAD_CONCURRENCY at a time): "also while pods start".
 */
async function reads(
  rt: CriRuntime,
  w: Workload,
  running: Array<{ pod: string; ctr: string }>,
): Promise<Pick<ScaleFigures, 'reads' | 'nodeReads' | 'loadedReads'>> {
  const go = new GoClient(rt.socket);
  try {
    const out = { reads: await readRounds(go, running, (i) => i < READ_ROUNDS), nodeReads: await nodeReads(rt, running), loadedReads: {} };
    let cycling = true;
    const loaded = readRounds(go, running, () => cycling, out.loadedReads);
    const call = grpcCaller(rt);
    const names = Array.from({ length: LOAD_CYCLES }, (_, i) => `load-${i}`);
    const cycles = inBatches(names, LOAD_CONCURRENCY, (name) => podLifecycle(call, rt, w, {}, name)).finally(() => (cycling = false));
    // Both settle before either's failure is thrown: no cycle or read goes on behind the teardown.
    for (const r of await Promise.allSettled([cycles, loaded])) if (r.status === 'rejected') throw r.reason;
    return out;
  } finally {
    await go.close();
  }
}

/** Starts pods up to each level (memory at each), reads at the top, removes them all. */
export async function measureScale(rt: CriRuntime, w: Workload, levels: number[]): Promise<ScaleFigures> {
  const idle = await settledMemory(rt, IDLE_MS);
  const running: Array<{ pod: string; ctr: string }> = [];
  const out: ScaleFigures = { idleDaemon: idle.daemon, levels: [{ pods: 0, ...idle }], reads: {}, nodeReads: {}, loadedReads: {}, idleAfter: idle.daemon };
  const call = grpcCaller(rt);
  try {
    for (const level of levels) {
      const names = Array.from({ length: level - running.length }, (_, i) => `scale-${running.length + i}`);
      await inBatches(names, START_CONCURRENCY, async (name) => {
        running.push(await startPod(call, rt, w, {}, name));
      });
      out.levels.push({ pods: level, ...(await settledMemory(rt)) });
    }
    Object.assign(out, await reads(rt, w, running));
  } finally {
    await removeAllPods(rt, START_CONCURRENCY);
  }
  out.idleAfter = (await settledMemory(rt, IDLE_MS)).daemon;
  return out;
}

export interface PullFigures {
  wallMs: number;
  /** The daemon's own CPU (children excluded) over the pull. */
  cpuMs: number;
  /** The daemon's peak RSS during the pull, and its RSS just before. */
  peakKiB: number;
  beforeKiB: number;
}

export async function measurePull(rt: CriRuntime, ref: string): Promise<PullFigures> {
  const beforeKiB = memoryOf(rt.pid).rssKiB;
  resetPeakRss(rt.pid);
  const cpu0 = ownCpuMs(rt.pid);
  const start = process.hrtime.bigint();
  await rt.client.imageCall('PullImage', { image: { image: ref } }, { timeoutMs: PULL_TIMEOUT_MS });
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  return { wallMs, cpuMs: ownCpuMs(rt.pid) - cpu0, peakKiB: peakRssKiB(rt.pid), beforeKiB };
}
