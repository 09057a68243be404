// Pull + unpack of a ~200 MB, 5-layer image of incompressible data from a local
// Debian docker-registry: sandlot (a real daemon, PullImage over its socket) beside
// `skopeo copy` + `umoci unpack` of the same image in the same run. Prints wall time
// and peak RSS of each and the ratios; asserts nothing.
//   node --import tsx bench/image-pull.ts [--layers 5] [--layer-mib 40] [--reps 1] [--sandlot-only]
//     [--containerd] [--baseline CHECKOUT]… [--cpu-prof DIR] [--twice]
// With --reps N sandlot pulls N times (RemoveImage between pulls) and the medians are
// shown. --containerd pulls with a private containerd too (bench/lib/private-containerd.ts)
// and each --baseline with another sandlot daemon built from another checkout (its dist/,
// e.g. main's in a temp copy): every repetition pulls once on each, in a rotating order, so
// an A/B on this busy machine compares pulls of the same minute; the medians per
// runtime and their ratios are printed. With --twice each target pulls twice in a row
// per repetition (RemoveImage between): sandlot's second pull finds the layer worker of
// the first still running (it exits after 2 s idle), so a sandlot pull is "cold" when a
// thread started during it (a new layer worker) and "warm" when not, and the medians
// of each kind are printed apart (a new worker's isolate compiles its code again, and
// its thread's malloc arena fills again). --cpu-prof writes the daemon's CPU profiles (its
// layer workers' too) to DIR. Peak RSS: sandlot's is the daemon's VmHWM (/proc/<pid>/status), reset
// (clear_refs) just before each pull, beside its RSS just before; the daemon's CPU is
// its own utime + stime over the pull (children excluded); skopeo's and umoci's
// come from `/usr/bin/time -v` (Debian `time`), or from polling /proc when it is missing.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { CriClient } from '../src/cli/client.js';
import { testCgroupRoot } from '../test/helpers/cgroup.js';
import { startDaemon, unmountUnder, type TestDaemon } from '../test/helpers/daemon.js';
import { buildImage, buildLayer, type TestLayer } from '../test/helpers/image-build.js';
import { pushImage, startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { PrivateContainerd } from './lib/private-containerd.js';
import { memoryOf, ownCpuMs, peakRssKiB, resetPeakRss } from './lib/proc-usage.js';
import { median } from './lib/stats.js';

const MIB = 1024 * 1024;
const PULL_TIMEOUT_MS = 30 * 60_000;
const POLL_INTERVAL_MS = 20;
const GNU_TIME = '/usr/bin/time';

interface Measured {
  wallMs: number;
  peakRssKiB: number;
}

/**
 * CPU ms of each thread of `pid`: `main`, and the others by name and thread ID (Node
 * names them all `node`: libuv's pool, V8's platform threads, layer workers).
 */
function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const key = Number(tid) === pid ? 'main' : `${name}/${tid}`;
      out.set(key, (out.get(key) ?? 0) + ((Number(rest[11]) + Number(rest[12])) * 1000) / 100);
    } catch {
      // the thread exited
    }
  }
  return out;
}

/** Whether a thread with CPU over the pull started during it. */
function startedThread(before: Map<string, number>, after: Map<string, number>): boolean {
  return [...after].some(([k, v]) => !before.has(k) && v > 0);
}

/** Each thread's CPU over the pull, largest first; `*` marks a thread started during it (a layer worker). */
function threadDelta(before: Map<string, number>, after: Map<string, number>): string {
  return [...after]
    .map(([k, v]) => [before.has(k) ? k : `${k}*`, v - (before.get(k) ?? 0)] as const)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(0)} ms`)
    .join(', ');
}

interface DaemonPull extends Measured {
  cpuMs: number;
  /** A thread started during the pull (sandlot: a new layer worker). */
  newThread: boolean;
  beforeKiB: number;
  /** Peak RSS over the RSS before the pull (a median of these, not of the two). */
  growthKiB: number;
}

/** A runtime pulling over CRI: a sandlot daemon (this checkout's or a baseline's) or containerd. */
interface PullTarget {
  name: string;
  pid: number;
  client: CriClient;
}

/** One PullImage on `t` (RemoveImage first when `remove`), its figures and CPU by thread. */
async function pullOnce(t: PullTarget, ref: string, configDigest: string, remove: boolean): Promise<DaemonPull & { threads: string }> {
  if (remove) await t.client.imageCall('RemoveImage', { image: { image: ref } }, { timeoutMs: PULL_TIMEOUT_MS });
  const beforeKiB = memoryOf(t.pid).rssKiB;
  resetPeakRss(t.pid);
  const cpu0 = ownCpuMs(t.pid);
  const threads0 = threadCpuMs(t.pid);
  const started = process.hrtime.bigint();
  const res = await t.client.imageCall('PullImage', { image: { image: ref } }, { timeoutMs: PULL_TIMEOUT_MS });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (res.image_ref !== configDigest) throw new Error(`${t.name} pulled ${String(res.image_ref)}, expected ${configDigest}`);
  const peak = peakRssKiB(t.pid);
  const threads1 = threadCpuMs(t.pid);
  return {
    wallMs,
    cpuMs: ownCpuMs(t.pid) - cpu0,
    peakRssKiB: peak,
    beforeKiB,
    growthKiB: peak - beforeKiB,
    threads: threadDelta(threads0, threads1),
    newThread: startedThread(threads0, threads1),
  };
}

/**
 * `reps` pulls on every target (two in a row with `twice`), the order rotating per
 * repetition; the medians per target, and with `twice` per target and kind (cold, warm).
 */
async function pullRounds(targets: PullTarget[], ref: string, configDigest: string, reps: number, twice: boolean): Promise<Map<string, DaemonPull>> {
  const all = new Map<string, DaemonPull[]>(targets.map((t) => [t.name, []]));
  for (let i = 0; i < reps; i++) {
    const order = targets.map((_, k) => targets[(i + k) % targets.length]);
    for (const t of order) {
      for (let j = 0; j < (twice ? 2 : 1); j++) {
        const p = await pullOnce(t, ref, configDigest, i > 0 || j > 0);
        const key = twice && t.name.startsWith('sandlot') ? `${t.name} (${p.newThread ? 'cold' : 'warm'})` : t.name;
        if (!all.has(key)) all.set(key, []);
        all.get(key)!.push(p);
        process.stdout.write(
          `${key} pull ${i + 1}/${reps}: wall ${fmtMs(p.wallMs)}, daemon CPU ${fmtMs(p.cpuMs)}, peak RSS ${fmtKiB(p.peakRssKiB)} ` +
            `(before: ${fmtKiB(p.beforeKiB)}, +${fmtKiB(p.growthKiB)})\n  CPU by thread: ${p.threads}\n`,
        );
      }
    }
  }
  const out = new Map<string, DaemonPull>();
  for (const [name, pulls] of [...all].filter(([, p]) => p.length > 0)) {
    out.set(`${name} n=${pulls.length}`, {
      wallMs: median(pulls.map((p) => p.wallMs)),
      cpuMs: median(pulls.map((p) => p.cpuMs)),
      peakRssKiB: median(pulls.map((p) => p.peakRssKiB)),
      beforeKiB: median(pulls.map((p) => p.beforeKiB)),
      growthKiB: median(pulls.map((p) => p.growthKiB)),
      newThread: pulls.some((p) => p.newThread),
    });
  }
  return out;
}

/** The medians per target, and each one's ratio to the first (containerd when it runs). */
function printMedians(m: Map<string, DaemonPull>, reps: number): void {
  const rows = [...m];
  const [baseName, base] = rows[0];
  process.stdout.write(`\nmedians of ${reps} repetitions, n pulls each (ratios to ${baseName}):\n`);
  for (const [name, p] of rows) {
    const r = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
    process.stdout.write(
      `  ${name.padEnd(36)} wall ${fmtMs(p.wallMs)} (${r(p.wallMs, base.wallMs)})  CPU ${fmtMs(p.cpuMs)} (${r(p.cpuMs, base.cpuMs)})  ` +
        `peak RSS ${fmtKiB(p.peakRssKiB)}, +${fmtKiB(p.growthKiB)} over before (${fmtKiB(p.beforeKiB)})\n`,
    );
  }
}

/** Runs a command to completion; peak RSS from GNU time -v, or by polling /proc. */
async function measure(cmd: string, args: string[]): Promise<Measured> {
  const useTime = fs.existsSync(GNU_TIME);
  const [file, argv] = useTime ? [GNU_TIME, ['-v', cmd, ...args]] : [cmd, args];
  const started = process.hrtime.bigint();
  const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let polledKiB = 0;
  const poll = setInterval(() => {
    try {
      polledKiB = Math.max(polledKiB, peakRssKiB(child.pid!));
    } catch {
      // exited between ticks
    }
  }, POLL_INTERVAL_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  clearInterval(poll);
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${stderr.slice(-2000)}`);
  if (useTime) {
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
    if (!m) throw new Error(`${GNU_TIME} -v printed no maximum resident set size`);
    return { wallMs, peakRssKiB: Number(m[1]) };
  }
  return { wallMs, peakRssKiB: polledKiB };
}

function fmtMs(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
function fmtKiB(k: number): string {
  return `${(k / 1024).toFixed(1)} MiB`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      layers: { type: 'string', default: '5' },
      'layer-mib': { type: 'string', default: '40' },
      reps: { type: 'string', default: '1' },
      'sandlot-only': { type: 'boolean', default: false },
      containerd: { type: 'boolean', default: false },
      baseline: { type: 'string', multiple: true },
      'cpu-prof': { type: 'string' },
      twice: { type: 'boolean', default: false },
    },
  });
  const layerCount = Number(values.layers);
  const layerMiB = Number(values['layer-mib']);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-bench-pull-'));
  let reg: TestRegistry | undefined;
  let daemon: TestDaemon | undefined;
  const baselines: TestDaemon[] = [];
  let containerd: PrivateContainerd | undefined;
  try {
    process.stdout.write(`building ${layerCount} layers of ${layerMiB} MiB random data (gzip) …\n`);
    const layers: TestLayer[] = [];
    for (let i = 0; i < layerCount; i++) {
      layers.push(await buildLayer([{ type: 'file', name: `data/blob-${i}.bin`, data: crypto.randomBytes(layerMiB * MIB) }]));
    }
    const image = buildImage(layers);
    const compressed = layers.reduce((n, l) => n + l.size, 0);
    reg = await startRegistry();
    await pushImage(reg, 'bench/big', 'v1', image);
    layers.length = 0; // the pushed bytes are the registry's now
    const ref = `${reg.host}/bench/big:v1`;
    process.stdout.write(`pushed ${ref}: ${(compressed / MIB).toFixed(1)} MiB compressed in ${layerCount} layers\n`);

    // sandlot: a real daemon; PullImage returns once every layer is verified and unpacked.
    const targets: PullTarget[] = [];
    if (values.containerd) {
      const id = process.pid % 250;
      containerd = new PrivateContainerd({
        dir: path.join(work, 'containerd'),
        registries: [reg.host],
        sandboxImage: ref,
        cgroupRoot: testCgroupRoot(),
        subnet: `10.249.${id}.0/24`,
        bridge: `ctdp${process.pid % 100000}`,
      });
      await containerd.start();
      targets.push({ name: 'containerd', pid: containerd.pid!, client: containerd.client });
    }
    const nodeArgs = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values['cpu-prof'])}`] : [];
    for (const dir of values.baseline ?? []) {
      // The baseline checkout's own helper: it starts that checkout's dist/.
      const helper = (await import(pathToFileURL(path.join(path.resolve(dir), 'test/helpers/daemon.ts')).href)) as { startDaemon: typeof startDaemon };
      const d = await helper.startDaemon({ built: true, config: { log_level: 'info' } });
      baselines.push(d);
      targets.push({ name: `sandlot@${path.basename(dir)}`, pid: d.pid!, client: d.client });
    }
    daemon = await startDaemon({ built: true, config: { log_level: 'info' }, nodeArgs });
    targets.push({ name: 'sandlot', pid: daemon.pid!, client: daemon.client });
    const reps = Number(values.reps);
    const medians = await pullRounds(targets, ref, image.config.digest, reps, values.twice);
    printMedians(medians, reps);
    // This checkout's row: all its pulls, or (--twice) its cold ones.
    const sandlot = [...medians].find(([k]) => k.startsWith('sandlot n=') || k.startsWith('sandlot (cold)'))![1];
    await daemon.cleanup();
    daemon = undefined;
    const sandlotRow = [
      `sandlot PullImage (daemon, median of ${reps})`,
      fmtMs(sandlot.wallMs),
      `${fmtKiB(sandlot.peakRssKiB)} (before the pull: ${fmtKiB(sandlot.beforeKiB)}); daemon CPU ${fmtMs(sandlot.cpuMs)}`,
    ];
    if (values['sandlot-only'] || targets.length > 1) {
      process.stdout.write(`\n${sandlotRow.join('  ')}\n`);
      return;
    }

    // skopeo copy into an OCI layout, then umoci unpack into a bundle.
    const layout = path.join(work, 'oci');
    const bundle = path.join(work, 'bundle');
    const copy = await measure('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:v1`]);
    const unpack = await measure('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
    const other: Measured = { wallMs: copy.wallMs + unpack.wallMs, peakRssKiB: Math.max(copy.peakRssKiB, unpack.peakRssKiB) };

    const rows = [
      sandlotRow,
      ['skopeo copy', fmtMs(copy.wallMs), fmtKiB(copy.peakRssKiB)],
      ['umoci unpack', fmtMs(unpack.wallMs), fmtKiB(unpack.peakRssKiB)],
      ['skopeo + umoci', fmtMs(other.wallMs), `${fmtKiB(other.peakRssKiB)} (max of the two)`],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length), 'what'.length);
    const w1 = Math.max(...rows.map((r) => r[1].length), 'wall'.length);
    process.stdout.write(`\n${'what'.padEnd(w0)}  ${'wall'.padStart(w1)}  peak RSS\n`);
    for (const r of rows) process.stdout.write(`${r[0].padEnd(w0)}  ${r[1].padStart(w1)}  ${r[2]}\n`);
    process.stdout.write(
      `\nratio sandlot / (skopeo + umoci): wall ${(sandlot.wallMs / other.wallMs).toFixed(2)}x, peak RSS ${(sandlot.peakRssKiB / other.peakRssKiB).toFixed(2)}x` +
        ` (RSS source: ${fs.existsSync(GNU_TIME) ? 'GNU time -v' : '/proc polling'})\n`,
    );
  } finally {
    if (daemon) await daemon.cleanup();
    for (const d of baselines) await d.cleanup();
    if (containerd) await containerd.stop();
    if (reg) await reg.stop();
    unmountUnder(work);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
