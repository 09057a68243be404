// sandlot beside Debian's containerd (1.6, runc), both started privately in the same run
// and driven by the same CRI gRPC client with the same workload (issue 13): pod
// lifecycles one after another and N at once, per-RPC p50/p95, the same lifecycle with
// a process per call (crictl is not in Debian: bench/lib/cri-raw, a one-call Go gRPC client,
// for both), daemon CPU per pod (the daemon's own utime+stime, children excluded), RSS
// and PSS of daemon + per-pod helpers (conmon; containerd-shim-runc-v2) at 0/20/100
// pods, List/Status latency at 100 pods, and a 1 MiB and a 200 MiB pull from a local
// docker-registry. Repetitions alternate which runtime goes first; figures are medians.
// Prints a table with ratios (sandlot ÷ containerd) and one `summary:` line; asserts nothing.
//   node --import tsx bench/vs-containerd.ts [--pods 20] [--reps 4] [--scale 100] [--max-minutes 60]
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { removeCgroupTree } from '../src/sandbox/resources/cgroups.js';
import { testCgroupRoot } from '../test/helpers/cgroup.js';
import { startDaemon, unmountUnder, type TestDaemon } from '../test/helpers/daemon.js';
import { buildImage, buildLayer, busyboxLayer } from '../test/helpers/image-build.js';
import { pushImage, startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { grpcCaller, podLifecycle, processCaller, removeAllPods, type CriRuntime, type Workload } from './lib/cri-runtime.js';
import { PrivateContainerd } from './lib/private-containerd.js';
import { helperPids, memoryOf, ownCpuMs } from './lib/proc-usage.js';
import { merge, type Timings } from './lib/stats.js';
import { measurePull, measureScale } from './lib/vs-phases.js';
import { report, type RunFigures } from './lib/vs-report.js';

const MIB = 1024 * 1024;

interface Setup {
  dir: string;
  reg?: TestRegistry;
  sandlot?: TestDaemon;
  containerd?: PrivateContainerd;
  cgroupParent: string;
}

async function pushImages(reg: TestRegistry): Promise<{ app: string; pause: string; small: string[]; big: string }> {
  // catatonit (static): the pause image's PID 1, as sandlot's infra process is, and the
  // app container's (bench/lib/cri-runtime.ts APP_COMMAND says why).
  const catatonit = fs.readFileSync('/usr/bin/catatonit');
  const pauseLayer = await buildLayer([{ type: 'file', name: 'catatonit', data: catatonit, mode: 0o755 }]);
  await pushImage(reg, 'bench/busybox', 'v1', buildImage([await busyboxLayer(), pauseLayer]));
  await pushImage(reg, 'bench/pause', 'v1', buildImage([pauseLayer], { config: { Entrypoint: ['/catatonit', '-P'], Env: ['PATH=/'] } }));
  const small: string[] = [];
  for (let i = 0; i < 3; i++) {
    const layer = await buildLayer([{ type: 'file', name: 'data/one.bin', data: crypto.randomBytes(MIB) }]);
    await pushImage(reg, `bench/small-${i}`, 'v1', buildImage([layer]));
    small.push(`${reg.host}/bench/small-${i}:v1`);
  }
  const big = [];
  for (let i = 0; i < 5; i++) big.push(await buildLayer([{ type: 'file', name: `data/blob-${i}.bin`, data: crypto.randomBytes(40 * MIB) }]));
  await pushImage(reg, 'bench/big', 'v1', buildImage(big));
  return { app: `${reg.host}/bench/busybox:v1`, pause: `${reg.host}/bench/pause:v1`, small, big: `${reg.host}/bench/big:v1` };
}

function asRuntimes(s: Setup): CriRuntime[] {
  const d = s.sandlot!;
  const c = s.containerd!;
  return [
    { name: 'sandlot', client: d.client, socket: d.socket, pid: d.pid!, helpers: () => helperPids('conmon', d.dir) },
    { name: 'containerd', client: c.client, socket: c.socket, pid: c.pid!, helpers: () => helperPids('containerd-shim-runc-v2', c.opts.dir) },
  ];
}

/** One repetition: sequential, at once, process per call; the runtimes in the given order. */
async function repetition(order: CriRuntime[], w: Workload, f: RunFigures, rep: number): Promise<void> {
  for (const rt of order) {
    const seq: Timings = {};
    const cpu0 = ownCpuMs(rt.pid);
    for (let i = 0; i < f.pods; i++) await podLifecycle(grpcCaller(rt), rt, w, seq, `r${rep}-seq-${i}`);
    (f.cpuPerPodMs[rt.name] ??= []).push((ownCpuMs(rt.pid) - cpu0) / f.pods);
    merge((f.seq[rt.name] ??= {}), seq);
  }
  for (const rt of order) {
    const par: Timings = {};
    const wall = process.hrtime.bigint();
    await Promise.all(Array.from({ length: f.pods }, (_, i) => podLifecycle(grpcCaller(rt), rt, w, par, `r${rep}-par-${i}`)));
    (f.parWallMs[rt.name] ??= []).push(Number(process.hrtime.bigint() - wall) / 1e6);
    merge((f.par[rt.name] ??= {}), par);
  }
  for (const rt of order) {
    const pc: Timings = {};
    for (let i = 0; i < f.perCallPods; i++) await podLifecycle(processCaller(rt), rt, w, pc, `r${rep}-pc-${i}`);
    merge((f.perCall[rt.name] ??= {}), pc);
  }
}

async function setUp(s: Setup): Promise<{ runtimes: CriRuntime[]; images: Awaited<ReturnType<typeof pushImages>> }> {
  s.reg = await startRegistry();
  process.stdout.write('building and pushing images (busybox, pause, 3 × 1 MiB, 5 × 40 MiB) …\n');
  const images = await pushImages(s.reg);
  s.sandlot = await startDaemon({ built: true, config: { log_level: 'info' } });
  const id = process.pid % 250;
  s.containerd = new PrivateContainerd({
    dir: path.join(s.dir, 'containerd'),
    registries: [s.reg.host],
    sandboxImage: images.pause,
    cgroupRoot: testCgroupRoot(),
    subnet: `10.250.${id}.0/24`,
    bridge: `ctdb${process.pid % 100000}`,
  });
  await s.containerd.start();
  return { runtimes: asRuntimes(s), images };
}

async function tearDown(s: Setup): Promise<void> {
  if (s.containerd) await s.containerd.stop().catch((e: unknown) => console.error('stopping containerd:', e));
  if (s.sandlot) await s.sandlot.cleanup().catch((e: unknown) => console.error('stopping sandlot:', e));
  if (s.reg) await s.reg.stop().catch(() => undefined);
  await removeCgroupTree(path.join(testCgroupRoot(), s.cgroupParent)).catch(() => undefined);
  unmountUnder(s.dir);
  fs.rmSync(s.dir, { recursive: true, force: true });
  s.containerd = s.sandlot = s.reg = undefined;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pods: { type: 'string', default: '20' },
      reps: { type: 'string', default: '4' },
      scale: { type: 'string', default: '100' },
      'max-minutes': { type: 'string', default: '60' },
    },
  });
  const pods = Number(values.pods);
  const deadline = Date.now() + Number(values['max-minutes']) * 60_000;
  const setup: Setup = { dir: fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-bench-vs-')), cgroupParent: `/sandlot-vs-ctd-${process.pid}` };
  const onSignal = (sig: string): void => {
    console.error(`${sig}: cleaning up`);
    void tearDown(setup).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const { runtimes, images } = await setUp(setup);
    const f: RunFigures = {
      ...{ seq: {}, par: {}, perCall: {}, parWallMs: {}, cpuPerPodMs: {}, freshIdleKiB: {}, scale: {}, pulls: {} },
      reps: 0,
      pods,
      perCallPods: pods,
    };
    for (const rt of runtimes) f.freshIdleKiB[rt.name] = memoryOf(rt.pid).rssKiB;
    // The built daemon (dist/) is what a node runs; under tsx (dist stale) its figures are not comparable.
    const argv = fs.readFileSync(`/proc/${runtimes[0].pid}/cmdline`, 'utf8').split('\0').join(' ');
    process.stdout.write(`sandlot daemon: ${argv}${argv.includes('tsx') ? '  (NOT the built daemon: dist/ is stale, run `npx tsc -p tsconfig.json`)' : ''}\n`);
    process.stdout.write(
      `containerd: ${(await runtimes[1].client.runtimeCall('Version', {})).runtime_version}, runc through ${setup.containerd!.opts.dir}/runc-wrapper\n`,
    );
    const w: Workload = { image: images.app, logDir: path.join(setup.dir, 'logs'), cgroupParent: setup.cgroupParent };
    for (const rt of runtimes) await grpcCaller(rt)('ListPodSandbox', {});
    await setup.containerd!.client.imageCall('PullImage', { image: { image: images.pause } }, { timeoutMs: 120_000 });
    for (const rt of runtimes) await rt.client.imageCall('PullImage', { image: { image: images.app } }, { timeoutMs: 120_000 });
    // A warm-up pod each: the first create pays for caches (binaries, snapshot pages).
    for (const rt of runtimes) await podLifecycle(grpcCaller(rt), rt, w, {}, 'warmup');
    const reps = Number(values.reps);
    for (let r = 0; r < reps && Date.now() < deadline; r++) {
      process.stdout.write(`repetition ${r + 1}/${reps} …\n`);
      await repetition(r % 2 === 0 ? runtimes : [...runtimes].reverse(), w, f, r);
      f.reps = r + 1;
    }
    const levels = [...new Set([20, pods, Number(values.scale)])].filter((n) => n > 0).sort((a, b) => a - b);
    for (const rt of [...runtimes].reverse()) {
      process.stdout.write(`${rt.name}: memory at ${levels.join('/')} pods, List/Status at ${levels.at(-1)} …\n`);
      f.scale[rt.name] = await measureScale(rt, w, levels);
    }
    for (const [i, ref] of [...images.small, images.big].entries()) {
      for (const rt of i % 2 === 0 ? runtimes : [...runtimes].reverse()) {
        const p = (f.pulls[rt.name] ??= { small: [] });
        const m = await measurePull(rt, ref);
        if (ref === images.big) p.big = m;
        else p.small.push(m);
      }
    }
    await Promise.all(runtimes.map((rt) => removeAllPods(rt)));
    report(f, levels);
  } finally {
    await tearDown(setup);
  }
}

await main();
