// Spawning three ways with a daemon-sized heap (issue 13: "posix_spawn through koffi …
// plus pidfd for the exit, or one small long-lived spawner process. Measure both ways"):
//   child_process  node's spawn: libuv forks the whole process on the event loop, so its
//                  cost grows with the heap (page tables copied)
//   posix_spawn    native/spawn.ts: glibc clones with CLONE_VM|CLONE_VFORK, the exit seen
//                  through a pidfd
//   spawner        bench/lib/spawner.mjs, a small Node process started once: a request
//                  line over a pipe, it forks from its own small heap and reports the exit
// For each way and program (/bin/true, `runc --version`) it prints wall per spawn (start
// to reaped exit) p50/p95, the synchronous part of starting one (the event loop is
// blocked that long) p50/p95, the event loop's delay p99/max over the run
// (perf_hooks.monitorEventLoopDelay), this process's CPU per spawn (all its threads)
// and, for the spawner, its own CPU per spawn and RSS. Asserts nothing.
//   node --import tsx bench/spawn-ways.ts [--spawns 200] [--heap-mib 200] [--parallel 1]
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnProcess } from '../native/index.js';
import { memoryOf, ownCpuMs } from './lib/proc-usage.js';
import { ms, percentile, printTable } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    spawns: { type: 'string', default: '200' },
    'heap-mib': { type: 'string', default: '200' },
    parallel: { type: 'string', default: '1' },
  },
});
const SPAWNS = Number(values.spawns);
const HEAP_MIB = Number(values['heap-mib']);
const PARALLEL = Math.max(1, Number(values.parallel));
const SPAWNER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'spawner.mjs');
const PROGRAMS: Array<[string, string[]]> = [
  ['/bin/true', []],
  ['runc', ['--version']],
];

/** Live objects the size of a busy daemon's heap: small objects with strings, as books and caches are. */
function growHeap(mib: number): unknown[] {
  const keep: unknown[] = [];
  const target = mib * 1024 * 1024;
  while (process.memoryUsage().heapUsed < target) {
    for (let i = 0; i < 10_000; i++) keep.push({ id: `pod-${keep.length}-${Math.random()}`, n: keep.length, tags: [keep.length, 'x'] });
  }
  return keep;
}

/** Starts one program; returns once it is started (the synchronous part), with a promise of its reaped exit. */
type Start = (file: string, args: string[]) => Promise<void>;
interface Sample {
  wallMs: number;
  syncMs: number;
}

const hr = (): number => Number(process.hrtime.bigint()) / 1e6;

function viaChildProcess(): { start: Start } {
  return {
    start: (file, args) => {
      const child = spawn(file, args, { stdio: 'ignore' });
      return new Promise((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', () => resolve());
      });
    },
  };
}

function viaPosixSpawn(): { start: Start } {
  return { start: (file, args) => spawnProcess(file, args, { stdio: ['ignore', 'ignore', 'ignore'] }).exited.then(() => undefined) };
}

interface Spawner {
  pid: number;
  start: Start;
  close: () => Promise<void>;
}

function startSpawner(): Spawner {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['--max-semi-space-size=1', SPAWNER], { stdio: 'pipe' });
  const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let next = 0;
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const m = JSON.parse(line) as { id: number; pid?: number; code?: number | null; error?: string };
    const w = waiting.get(m.id);
    if (!w || m.pid !== undefined) return;
    waiting.delete(m.id);
    if (m.error !== undefined) w.reject(new Error(m.error));
    else w.resolve();
  });
  return {
    pid: child.pid!,
    start: (file, args) =>
      new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        child.stdin.write(`${JSON.stringify({ id, file, args })}\n`);
      }),
    close: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}

async function run(start: Start, file: string, args: string[]): Promise<Sample[]> {
  const samples: Sample[] = [];
  let left = SPAWNS;
  const worker = async (): Promise<void> => {
    while (left > 0) {
      left -= 1;
      const t0 = hr();
      const exited = start(file, args);
      const syncMs = hr() - t0;
      await exited;
      samples.push({ wallMs: hr() - t0, syncMs });
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return samples;
}

async function main(): Promise<void> {
  const keep = growHeap(HEAP_MIB);
  const rss = memoryOf(process.pid).rssKiB / 1024;
  console.log(
    `bench process: heap used ${(process.memoryUsage().heapUsed / 1048576).toFixed(0)} MiB (${keep.length} live objects), RSS ${rss.toFixed(0)} MiB; ${SPAWNS} spawns per row, ${PARALLEL} at a time`,
  );
  const spawner = startSpawner();
  await spawner.start('/bin/true', []); // started and warm before it is timed
  const ways: Array<[string, { start: Start }]> = [
    ['child_process', viaChildProcess()],
    ['posix_spawn', viaPosixSpawn()],
    ['spawner', spawner],
  ];
  const rows: string[][] = [];
  try {
    for (const [file, args] of PROGRAMS) {
      for (const [name, way] of ways) {
        await run(way.start, file, args); // a warm-up round, not printed
        const delay = monitorEventLoopDelay({ resolution: 1 });
        const cpu0 = process.cpuUsage();
        const spawnerCpu0 = ownCpuMs(spawner.pid);
        delay.enable();
        const samples = await run(way.start, file, args);
        delay.disable();
        const cpu = process.cpuUsage(cpu0);
        const wall = samples.map((s) => s.wallMs);
        const sync = samples.map((s) => s.syncMs);
        const spawnerCpu = name === 'spawner' ? `${((ownCpuMs(spawner.pid) - spawnerCpu0) / samples.length).toFixed(2)} ms` : '';
        const spawnerRss = name === 'spawner' ? `${(memoryOf(spawner.pid).rssKiB / 1024).toFixed(0)} MiB` : '';
        rows.push([
          [file, ...args].join(' '),
          name,
          `${ms(percentile(wall, 50))} / ${ms(percentile(wall, 95))}`,
          `${ms(percentile(sync, 50))} / ${ms(percentile(sync, 95))}`,
          `${ms(delay.percentile(99) / 1e6)} / ${ms(delay.max / 1e6)}`,
          `${((cpu.user + cpu.system) / 1000 / samples.length).toFixed(2)} ms`,
          spawnerCpu,
          spawnerRss,
        ]);
      }
    }
  } finally {
    await spawner.close();
  }
  printTable(
    ['program', 'way', 'wall p50 / p95', 'loop blocked p50 / p95', 'loop delay p99 / max', 'cpu/spawn (bench)', 'cpu/spawn (spawner)', 'spawner RSS'],
    rows,
  );
  keep.length = 0;
}

await main();
