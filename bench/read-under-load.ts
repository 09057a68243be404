// Reads under load and memory over pod cycles (issue 11, item 9): a real daemon runs
// `--cycles` pod lifecycles (RunPodSandbox, CreateContainer, StartContainer,
// StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox), `--parallel` at a
// time, while `--readers` clients loop over ListPodSandbox, ListContainers,
// PodSandboxStatus, ContainerStatus and ListContainerStats. Prints the daemon's RSS
// before, after the cycles and after an idle wait, its V8 heap as /metrics shows it,
// and p50/p99/max of each read while pods start. Asserts nothing. The "warm idle" is
// the RSS after `--warm` cycles and the idle wait, before the measured cycles.
// "heap used" is what /metrics shows: it counts garbage V8 has not collected yet, and an
// idle daemon allocates too little to trigger a collection, so it stays high after load.
// With --live-heap it also prints "live heap", the total of a heap snapshot (V8 takes
// it after a full GC): the figure that shows retention. Taking a snapshot costs the
// daemon tens of MiB of RSS it keeps, so RSS figures after one are not comparable with
// a run without it. The daemon runs from dist/ (`make bench` builds it).
// With --hold N, N pods (each with a running container) are started after the warm idle
// and kept through the rest: the readers read those (issue 13: List/Status at 100 pods,
// also while pods start). With --rounds R, one client first makes R rounds of
// ListPodSandbox, PodSandboxStatus, ListContainers, ContainerStatus one after another
// among the held pods with nothing else running (what bench/vs-containerd.ts measures).
// The CPU per read is also given net of what the daemon spends with the held pods and no
// calls (measured over --idle-base seconds just before: timers, exit watchers …).
// With --round-reader, the Go client makes those rounds while the pods cycle (a
// kubelet's relist among pod starts), printed apart from the --readers' figures;
// --readers 0 leaves it the only reader.
// With --profile-rounds, the daemon's CPU profile over the quiet rounds alone (its
// inspector opened on a free port with SIGUSR1) is printed: where a read's time goes
// (the profiler's own cost makes that run's CPU and latency figures not comparable);
// --profile-file keeps it (for Chrome DevTools or a closer look). --profile-cycles does the
// same over the measured pod cycles (what holds the event loop while pods start).
// --node-arg passes a Node flag to the daemon (A/B of a V8 flag; `--cpu-prof` …).
//   node --import tsx bench/read-under-load.ts [--cycles 40] [--readers 20] [--parallel 2] [--handler runc] [--warm 5] [--idle 10] [--live-heap]
//     [--hold 100] [--rounds 200] [--idle-base 3] [--round-reader] [--profile-rounds] [--profile-cycles] [--profile-file F] [--node-arg FLAG …]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { writeBusyboxLayout } from '../src/image/oci-layout-writer.js';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import WebSocket from 'ws';
import { printCpuProfile } from './lib/cpu-profile.js';
import { GoClient } from './lib/cri-runtime.js';
import { BENCH_CONTAINER, benchPodConfig, BUSYBOX, holdPods } from './lib/held-pods.js';
import { readRounds } from './lib/read-rounds.js';
import type { Timings } from './lib/stats.js';
import { ownCpuMs } from './lib/proc-usage.js';

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '40' },
    readers: { type: 'string', default: '20' },
    parallel: { type: 'string', default: '2' },
    handler: { type: 'string', default: 'runc' },
    idle: { type: 'string', default: '10' },
    warm: { type: 'string', default: '5' },
    'live-heap': { type: 'boolean', default: false },
    hold: { type: 'string', default: '0' },
    rounds: { type: 'string', default: '0' },
    'idle-base': { type: 'string', default: '3' },
    'round-reader': { type: 'boolean', default: false },
    'profile-rounds': { type: 'boolean', default: false },
    'profile-cycles': { type: 'boolean', default: false },
    'profile-file': { type: 'string' },
    'node-arg': { type: 'string', multiple: true, default: [] },
  },
});
const CYCLES = Number(values.cycles);
const READERS = Number(values.readers);
const PARALLEL = Number(values.parallel);
const HANDLER = String(values.handler);
const IDLE_S = Number(values.idle);
const WARM = Number(values.warm);
const LIVE_HEAP = values['live-heap'] === true;
const HOLD = Number(values.hold);
const ROUNDS = Number(values.rounds);
const IDLE_BASE_S = Number(values['idle-base']);
/** Rounds read before the measured --rounds. */
const WARM_ROUNDS = 25;
const ROUND_READER = values['round-reader'] === true;
const PROFILE_ROUNDS = values['profile-rounds'] === true;
const PROFILE_CYCLES = values['profile-cycles'] === true;
// A free inspector port, so that SIGUSR1 (--profile-rounds) opens it where no other process listens.
const NODE_ARGS = [...(values['node-arg'] ?? []), ...(PROFILE_ROUNDS || PROFILE_CYCLES ? ['--inspect-port=0'] : [])];

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** RSS split into anonymous memory (heap, malloc, stacks) and file pages (the node binary, shared libraries). */
function rssSplit(pid: number): string {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN);
  return `${rssMiB(pid).toFixed(1)} MiB (anon ${(kib('RssAnon') / 1024).toFixed(1)}, file ${(kib('RssFile') / 1024).toFixed(1)})`;
}

/** The daemon's GCs so far by kind (minor, major …): count and seconds, from prom-client's nodejs_gc_duration_seconds. */
async function gcTotals(d: TestDaemon): Promise<Map<string, { n: number; s: number }>> {
  const text = await (await fetch(`http://${d.metricsAddress}/metrics`)).text();
  const out = new Map<string, { n: number; s: number }>();
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_(count|sum)\{kind="(\w+)"\} ([0-9.e+-]+)$/gm)) {
    const e = out.get(m[2]) ?? out.set(m[2], { n: 0, s: 0 }).get(m[2])!;
    if (m[1] === 'count') e.n = Number(m[3]);
    else e.s = Number(m[3]);
  }
  return out;
}

/**
 * Runs `fn` with the daemon's CPU profiler on (through its inspector, which SIGUSR1 opens
 * on the port --inspect-port=0 picked, named on its stderr) and prints the profile.
 */
async function profiled(d: TestDaemon, fn: () => Promise<void>): Promise<void> {
  process.kill(d.pid!, 'SIGUSR1');
  const deadline = Date.now() + 10_000;
  let url: string | undefined;
  while (!(url = /Debugger listening on (ws:\/\/\S+)/.exec(d.stderr)?.[1])) {
    if (Date.now() > deadline) throw new Error('the daemon opened no inspector');
    await sleep(50);
  }
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let id = 0;
  const post = (method: string): Promise<unknown> =>
    new Promise((resolve) => {
      const mine = ++id;
      const onMessage = (raw: WebSocket.RawData) => {
        const m = JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : '{}') as { id?: number; result?: unknown };
        if (m.id !== mine) return;
        ws.off('message', onMessage);
        resolve(m.result);
      };
      ws.on('message', onMessage);
      ws.send(JSON.stringify({ id: mine, method }));
    });
  await post('Profiler.enable');
  await post('Profiler.start');
  await fn();
  const { profile } = (await post('Profiler.stop')) as { profile: unknown };
  ws.close();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-bench-prof-'));
  fs.writeFileSync(path.join(dir, 'rounds.cpuprofile'), JSON.stringify(profile));
  if (values['profile-file'] !== undefined) fs.copyFileSync(path.join(dir, 'rounds.cpuprofile'), values['profile-file']);
  printCpuProfile(dir, 30);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The daemon's own CPU per second over `seconds` with no call made: what a read's CPU figure is net of. */
async function idleCpuMsPerS(d: TestDaemon, seconds: number): Promise<number> {
  if (seconds <= 0) return 0;
  const cpu0 = ownCpuMs(d.pid!);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  return ((ownCpuMs(d.pid!) - cpu0) / (performance.now() - t0)) * 1000;
}

/** What the daemon spent over `reads` reads: its own CPU (also net of its idle rate) and its GCs per read (figures the machine's load moves little). */
async function perRead(d: TestDaemon, reads: number, idleMsPerS: number, fn: () => Promise<void>): Promise<string> {
  const gc0 = await gcTotals(d);
  const cpu0 = ownCpuMs(d.pid!);
  const t0 = performance.now();
  await fn();
  const cpu = ownCpuMs(d.pid!) - cpu0;
  const net = cpu - (idleMsPerS * (performance.now() - t0)) / 1000;
  const gc1 = await gcTotals(d);
  const gcs = [...gc1]
    .map(([kind, e]) => ({ kind, n: e.n - (gc0.get(kind)?.n ?? 0), ms: (e.s - (gc0.get(kind)?.s ?? 0)) * 1000 }))
    .filter((g) => g.n > 0)
    .map((g) => `${g.kind} GC every ${(reads / g.n).toFixed(1)} reads (${(g.ms / g.n).toFixed(2)} ms each)`);
  return `daemon CPU ${(cpu / reads).toFixed(3)} ms per read (net of the idle ${idleMsPerS.toFixed(1)} ms/s: ${(net / reads).toFixed(3)} ms); ${gcs.join(', ') || 'no GC'}`;
}

/** How often the daemon's event-loop monitor samples (src/observe/metrics.ts EVENT_LOOP_SAMPLE_MS): its figures are the interval between samples. */
const DAEMON_LOOP_SAMPLE_MS = 100;

/**
 * The longest the daemon's main thread was held at once since the last /metrics scrape
 * (prom-client's monitor resets at each), as its 100 ms sampler saw it: a read that came
 * then waited that out. Sampled, so a lower bound.
 */
async function loopDelay(d: TestDaemon): Promise<string> {
  const text = await (await fetch(`http://${d.metricsAddress}/metrics`)).text();
  const max = Number(/^nodejs_eventloop_lag_max_seconds ([0-9.e+-]+)$/m.exec(text)?.[1] ?? NaN) * 1000;
  return `longest event-loop hold seen by the daemon's ${DAEMON_LOOP_SAMPLE_MS} ms sampler ${(max - DAEMON_LOOP_SAMPLE_MS).toFixed(1)} ms`;
}

async function heapMiB(d: TestDaemon): Promise<string> {
  const text = await (await fetch(`http://${d.metricsAddress}/metrics`)).text();
  const pick = (name: string) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
    return m ? (Number(m[1]) / 1024 / 1024).toFixed(1) : '?';
  };
  const series = text.split('\n').filter((l) => l.includes('sandbox_id="')).length;
  return `heap used/total ${pick('nodejs_heap_size_used_bytes')}/${pick('nodejs_heap_size_total_bytes')} MiB, external ${pick('nodejs_external_memory_bytes')} MiB, per-pod/container series ${series}`;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function printLatencies(lat: Map<string, number[]>): void {
  for (const [name, xs] of [...lat.entries()].sort()) {
    xs.sort((a, b) => a - b);
    console.log(
      `  ${name.padEnd(20)} n=${String(xs.length).padStart(5)}  p50 ${quantile(xs, 0.5).toFixed(2)} ms  p99 ${quantile(xs, 0.99).toFixed(2)} ms  max ${xs[xs.length - 1].toFixed(1)} ms`,
    );
  }
}

/** --rounds by this process's grpc-js client (its event loop and GC in each figure): how it compares with the Go client's. */
async function nodeRoundReads(d: TestDaemon, held: Array<{ pod: string; ctr: string }>, rounds: number): Promise<Map<string, number[]>> {
  const lat = new Map<string, number[]>();
  const timed = async (name: string, fn: () => Promise<unknown>) => {
    const t0 = process.hrtime.bigint();
    await fn();
    (lat.get(name) ?? lat.set(name, []).get(name)!).push(Number(process.hrtime.bigint() - t0) / 1e6);
  };
  for (let i = 0; i < rounds; i++) {
    const { pod, ctr } = held[i % held.length];
    await timed('ListPodSandbox', () => d.runtime('ListPodSandbox', {}, 60_000));
    await timed('PodSandboxStatus', () => d.runtime('PodSandboxStatus', { pod_sandbox_id: pod }, 60_000));
    await timed('ListContainers', () => d.runtime('ListContainers', {}, 60_000));
    await timed('ContainerStatus', () => d.runtime('ContainerStatus', { container_id: ctr }, 60_000));
  }
  return lat;
}

// The daemon writes a heap snapshot on SIGUSR2 into SNAPSHOT_DIR (NODE_OPTIONS, set
// before it starts; this process read its own NODE_OPTIONS at start-up and ignores it).
const SNAPSHOT_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-bench-heap-'));
if (LIVE_HEAP) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${SNAPSHOT_DIR}`.trim();

async function liveHeapMiB(d: TestDaemon): Promise<string> {
  if (!LIVE_HEAP) return '';
  const old = new Set(fs.readdirSync(SNAPSHOT_DIR));
  process.kill(d.pid!, 'SIGUSR2');
  const deadline = Date.now() + 300_000;
  let file: string | undefined;
  while (!file) {
    if (Date.now() > deadline) return '; live heap ? (no snapshot)';
    await sleep(200);
    file = fs.readdirSync(SNAPSHOT_DIR).find((f) => !old.has(f) && f.endsWith('.heapsnapshot'));
  }
  // V8 writes the snapshot on the daemon's main thread: once /metrics answers, it is complete.
  await fetch(`http://${d.metricsAddress}/metrics`).then((r) => r.text());
  const full = path.join(SNAPSHOT_DIR, file);
  const snap = JSON.parse(fs.readFileSync(full, 'utf8')) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };
  fs.rmSync(full, { force: true });
  const width = snap.snapshot.meta.node_fields.length;
  const at = snap.snapshot.meta.node_fields.indexOf('self_size');
  let total = 0;
  for (let i = at; i < snap.nodes.length; i += width) total += snap.nodes[i];
  return `; live heap ${(total / 1024 / 1024).toFixed(1)} MiB`;
}

async function main(): Promise<void> {
  const layoutRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-bench-layout-'));
  const layout = path.join(layoutRoot, 'busybox');
  await writeBusyboxLayout(layout, BUSYBOX);
  const d = await startDaemon({ built: true, nodeArgs: NODE_ARGS, config: { preload_images: [layout], log_level: 'info' } });
  const logDir = path.join(d.dir, 'pod-logs');
  try {
    const pid = d.pid!;
    // The built daemon (dist/) is what a node runs; under tsx (dist stale) its figures are not comparable.
    if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('tsx')) console.log('NOT the built daemon: dist/ is stale, run `npx tsc -p tsconfig.json`');
    await sleep(1000); // let start-up settle before the first figure
    console.log(`daemon RSS before: ${rssSplit(pid)}; ${await heapMiB(d)}${await liveHeapMiB(d)}`);

    const lat = new Map<string, number[]>();
    const known: { pods: string[]; ctrs: string[] } = { pods: [], ctrs: [] };
    let cycling = true;
    const timed = async (name: string, fn: () => Promise<unknown>) => {
      const t0 = process.hrtime.bigint();
      await fn().catch(() => undefined); // a read of a pod removed meanwhile answers NOT_FOUND: still a read
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      (lat.get(name) ?? lat.set(name, []).get(name)!).push(ms);
    };
    const reader = async (n: number) => {
      let i = n;
      while (cycling) {
        i += 1;
        const pod = known.pods[i % Math.max(1, known.pods.length)];
        const ctr = known.ctrs[i % Math.max(1, known.ctrs.length)];
        switch (i % 5) {
          case 0:
            await timed('ListPodSandbox', () => d.runtime('ListPodSandbox', {}, 60_000));
            break;
          case 1:
            await timed('ListContainers', () => d.runtime('ListContainers', {}, 60_000));
            break;
          case 2:
            if (pod) await timed('PodSandboxStatus', () => d.runtime('PodSandboxStatus', { pod_sandbox_id: pod }, 60_000));
            break;
          case 3:
            if (ctr) await timed('ContainerStatus', () => d.runtime('ContainerStatus', { container_id: ctr }, 60_000));
            break;
          default:
            await timed('ListContainerStats', () => d.runtime('ListContainerStats', {}, 60_000));
        }
      }
    };
    let next = 0;
    let limit = WARM;
    let failed = 0;
    const cycler = async () => {
      while (next < limit) {
        const n = next++;
        const name = `load-${n}`;
        const podConfig = benchPodConfig(logDir, name);
        try {
          const pod = String((await d.runtime('RunPodSandbox', { config: podConfig, runtime_handler: HANDLER }, 120_000)).pod_sandbox_id);
          if (HOLD === 0) known.pods.push(pod);
          const ctr = String(
            (await d.runtime('CreateContainer', { pod_sandbox_id: pod, config: BENCH_CONTAINER, sandbox_config: podConfig }, 120_000)).container_id,
          );
          if (HOLD === 0) known.ctrs.push(ctr);
          await d.runtime('StartContainer', { container_id: ctr }, 120_000);
          await d.runtime('StopContainer', { container_id: ctr, timeout: 0 }, 120_000);
          await d.runtime('RemoveContainer', { container_id: ctr }, 120_000);
          await d.runtime('StopPodSandbox', { pod_sandbox_id: pod }, 120_000);
          await d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, 120_000);
        } catch (e) {
          failed += 1;
          console.log(`cycle ${n} failed: ${(e as { details?: string }).details ?? String(e)}`);
        }
      }
    };
    // Warm idle: a few cycles (code compiled, caches and pools filled), then the idle
    // wait: what the daemon after 100 cycles is compared with (issue 13: within 10 %).
    await Promise.all(Array.from({ length: PARALLEL }, cycler));
    await sleep(IDLE_S * 1000);
    const warm = rssMiB(pid);
    console.log(`daemon RSS warm idle (${WARM} cycles, ${IDLE_S} s idle): ${rssSplit(pid)}; ${await heapMiB(d)}`);
    const held = await holdPods(d, logDir, HANDLER, HOLD);
    if (HOLD > 0) {
      await sleep(2000);
      console.log(`daemon RSS with ${held.length} pods held: ${rssSplit(pid)}; ${await heapMiB(d)}`);
      // The readers read the held pods, not the cycling ones (those are mostly gone: NOT_FOUND).
      known.pods = held.map((h) => h.pod);
      known.ctrs = held.map((h) => h.ctr);
    }
    const go = new GoClient(d.socket);
    if (ROUNDS > 0 && held.length > 0) {
      let lat: Timings = {};
      // Unmeasured first rounds: every answer encoded once, as in a kubelet's steady relist.
      await readRounds(go, held, (i) => i < WARM_ROUNDS);
      const idle = await idleCpuMsPerS(d, IDLE_BASE_S);
      const rounds = async () => void (lat = await readRounds(go, held, (i) => i < ROUNDS));
      const cost = await perRead(d, ROUNDS * 4, idle, PROFILE_ROUNDS ? () => profiled(d, rounds) : rounds);
      console.log(
        `${ROUNDS} rounds of reads one after another at ${held.length} pods by a Go client (grpc-go, timed in its process), nothing else running: ${cost}`,
      );
      printLatencies(new Map(Object.entries(lat)));
      if (!PROFILE_ROUNDS) {
        let nodeLat = new Map<string, number[]>();
        const cost = await perRead(d, ROUNDS * 4, idle, async () => void (nodeLat = await nodeRoundReads(d, held, ROUNDS)));
        console.log(`the same rounds by this process's grpc-js client: ${cost}`);
        printLatencies(nodeLat);
      }
    }
    limit = WARM + CYCLES;
    await loopDelay(d); // the delay figures below start here
    const started = Date.now();
    const readers = Array.from({ length: READERS }, (_, i) => reader(i));
    const rounds = ROUND_READER && held.length > 0 ? readRounds(go, held, () => cycling) : undefined;
    const cycles = async () => void (await Promise.all(Array.from({ length: PARALLEL }, cycler)));
    await (PROFILE_CYCLES ? profiled(d, cycles) : cycles());
    cycling = false;
    await Promise.all(readers);
    const roundLat = await rounds;
    await go.close();
    const wall = (Date.now() - started) / 1000;
    console.log(
      `${CYCLES} ${HANDLER} pod cycles (${failed} failed), ${PARALLEL} at a time, ${READERS} readers, in ${wall.toFixed(1)} s; ${await loopDelay(d)}`,
    );
    console.log(`daemon RSS after the cycles: ${rssSplit(pid)}; ${await heapMiB(d)}`);
    printLatencies(lat);
    if (roundLat) {
      console.log(`rounds of the four reads one after another by the Go client while the pods cycled:`);
      printLatencies(new Map(Object.entries(roundLat)));
    }
    await sleep(IDLE_S * 1000);
    const idleAfter = rssMiB(pid);
    console.log(
      `daemon RSS after ${IDLE_S} s idle: ${rssSplit(pid)}, ${((idleAfter / warm - 1) * 100).toFixed(0)} % over the warm idle; ${await heapMiB(d)}${await liveHeapMiB(d)}`,
    );
  } finally {
    await d.cleanup();
    fs.rmSync(layoutRoot, { recursive: true, force: true });
    fs.rmSync(SNAPSHOT_DIR, { recursive: true, force: true });
  }
}

await main();
