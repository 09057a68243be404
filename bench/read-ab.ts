// Paired A/B of the List/Status reads at N pods (issue 13), for a change to the daemon's
// read path: this checkout's built daemon and each --baseline checkout's (started by that
// checkout's own test/helpers/daemon.ts, so with its dist/ and Node flags) run side by
// side, N pods held in each. Then --reps times, in rotating order, --rounds rounds of
// ListPodSandbox, PodSandboxStatus, ListContainers, ContainerStatus by a Go client
// (bench/lib/read-rounds.ts) per daemon, after --warm-rounds unmeasured ones (every
// answer encoded once, as in a kubelet's steady relist). Per daemon and rep: its CPU per
// read (all its threads, from the scheduler's ns counts; children excluded) and p50/p99
// of all reads; then medians over the reps, the median of the per-rep ratios to this
// checkout's daemon (short reps, many: each pair runs within a second or two, so the
// load other processes put on the machine falls on both alike), and p50/p99 per RPC
// over all reps. Asserts nothing.
//   node --import tsx bench/read-ab.ts --baseline /work/main [--hold 100] [--rounds 50] [--reps 20] [--warm-rounds 25] [--handler runc]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { writeBusyboxLayout } from '../src/image/oci-layout-writer.js';
import { startDaemon, type StartDaemonOptions, type TestDaemon } from '../test/helpers/daemon.js';
import { GoClient } from './lib/cri-runtime.js';
import { BUSYBOX, holdPods, type HeldPod } from './lib/held-pods.js';
import { threadsCpuMs } from './lib/proc-usage.js';
import { READ_RPCS, readRounds } from './lib/read-rounds.js';
import { median, merge, percentile, type Timings } from './lib/stats.js';

type Starter = (opts: StartDaemonOptions) => Promise<TestDaemon>;

interface Target {
  name: string;
  start: Starter;
  d?: TestDaemon;
  go?: GoClient;
  held: HeldPod[];
  cpuPerRead: number[];
  p50: number[];
  p99: number[];
  all: Timings;
}

const { values } = parseArgs({
  options: {
    hold: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '50' },
    reps: { type: 'string', default: '20' },
    'warm-rounds': { type: 'string', default: '25' },
    handler: { type: 'string', default: 'runc' },
    baseline: { type: 'string', multiple: true, default: [] },
  },
});
const HOLD = Number(values.hold);
const ROUNDS = Number(values.rounds);
const REPS = Number(values.reps);
const WARM_ROUNDS = Number(values['warm-rounds']);

const load = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

async function main(): Promise<void> {
  const targets: Target[] = [{ name: 'sandlot', start: startDaemon, held: [], cpuPerRead: [], p50: [], p99: [], all: {} }];
  for (const dir of values.baseline ?? []) {
    // The baseline checkout's own helper: it starts that checkout's dist/ with its flags.
    const helper = (await import(pathToFileURL(path.join(path.resolve(dir), 'test/helpers/daemon.ts')).href)) as { startDaemon: Starter };
    targets.push({ name: `sandlot@${path.basename(dir)}`, start: helper.startDaemon, held: [], cpuPerRead: [], p50: [], p99: [], all: {} });
  }
  const layoutRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-bench-ab-'));
  try {
    const layout = path.join(layoutRoot, 'busybox');
    await writeBusyboxLayout(layout, BUSYBOX);
    for (const [i, t] of targets.entries()) {
      // Each checkout's helper picks its bridge, subnet and cgroup parent from this process's PID
      // and its own counter: the same for both. Each target gets its own here.
      const own = {
        cni_default_bridge: `slab${process.pid % 10000}t${i}`,
        cni_default_subnet: `10.${200 + i}.${process.pid % 250}.0/24`,
        default_cgroup_parent: `/sandlot-read-ab-${process.pid}-${i}`,
      };
      t.d = await t.start({ built: true, config: { preload_images: [layout], log_level: 'info', ...own } });
      const argv = fs.readFileSync(`/proc/${t.d.pid}/cmdline`, 'utf8').split('\0').join(' ');
      console.log(`${t.name}: ${argv}${argv.includes('tsx') ? '  (NOT a built daemon: its dist/ is stale)' : ''}`);
      t.held = await holdPods(t.d, path.join(t.d.dir, 'pod-logs'), String(values.handler), HOLD);
      t.go = new GoClient(t.d.socket);
      await readRounds(t.go, t.held, (i) => i < WARM_ROUNDS);
    }
    console.log(`${HOLD} pods held in each; load before: ${load()}`);
    for (let r = 0; r < REPS; r++) {
      for (let i = 0; i < targets.length; i++) {
        const t = targets[(i + r) % targets.length];
        const cpu0 = threadsCpuMs(t.d!.pid!);
        const lat = await readRounds(t.go!, t.held, (k) => k < ROUNDS);
        const cpu = (threadsCpuMs(t.d!.pid!) - cpu0) / (ROUNDS * READ_RPCS.length);
        const pooled = Object.values(lat).flat();
        t.cpuPerRead.push(cpu);
        t.p50.push(percentile(pooled, 50));
        t.p99.push(percentile(pooled, 99));
        merge(t.all, lat);
        console.log(
          `rep ${r + 1} ${t.name}: CPU ${cpu.toFixed(3)} ms/read, p50 ${percentile(pooled, 50).toFixed(3)} ms, p99 ${percentile(pooled, 99).toFixed(2)} ms`,
        );
      }
    }
    console.log(`load after: ${load()}`);
    console.log(`\nmedians of ${REPS} reps (${ROUNDS} rounds × 4 reads each) at ${HOLD} pods, Go client`);
    const base = targets[0];
    for (const t of targets) {
      // Paired: rep r of each target ran back to back, so a ratio per rep cancels the load of that moment.
      const ratio = (k: 'cpuPerRead' | 'p50') => median(t[k].map((v, r) => v / base[k][r])).toFixed(3);
      console.log(
        `${t.name.padEnd(20)} (÷ ${base.name}: CPU ${ratio('cpuPerRead')}, p50 ${ratio('p50')}) CPU ${median(t.cpuPerRead).toFixed(3)} ms/read  p50 ${median(t.p50).toFixed(3)} ms  p99 ${median(t.p99).toFixed(2)} ms  | ` +
          READ_RPCS.map((k) => `${k} ${percentile(t.all[k] ?? [], 50).toFixed(2)}/${percentile(t.all[k] ?? [], 99).toFixed(2)}`).join('  '),
      );
    }
  } finally {
    for (const t of targets) {
      await t.go?.close().catch(() => undefined);
      await t.d?.cleanup().catch((e: unknown) => console.error(`stopping ${t.name}:`, e));
    }
    fs.rmSync(layoutRoot, { recursive: true, force: true });
  }
}

await main();
