// Pull + unpack of a ~200 MB, 5-layer image of incompressible data from a local
// Debian docker-registry: sandlot (a real daemon, PullImage over its socket) beside
// `skopeo copy` + `umoci unpack` of the same image in the same run. Prints wall time
// and peak RSS of each and the ratios; asserts nothing.
//   node --import tsx bench/image-pull.ts [--layers 5] [--layer-mib 40] [--reps 1] [--sandlot-only]
// With --reps N sandlot pulls N times (RemoveImage between pulls) and the medians are
// shown. Peak RSS: sandlot's is the daemon's VmHWM (/proc/<pid>/status), reset
// (clear_refs) just before each pull, beside its RSS just before; the daemon's CPU is
// its own utime + stime over the pull (children excluded); skopeo's and umoci's
// come from `/usr/bin/time -v` (Debian `time`), or from polling /proc when it is missing.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDaemon, unmountUnder, type TestDaemon } from '../test/helpers/daemon.js';
import { buildImage, buildLayer, type TestLayer } from '../test/helpers/image-build.js';
import { pushImage, startRegistry, type TestRegistry } from '../test/helpers/registry.js';
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

/** CPU ms of each thread of `pid` by thread name (main thread, libuv workers, V8 GC helpers). */
function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const key = Number(tid) === pid ? 'main' : name;
      out.set(key, (out.get(key) ?? 0) + ((Number(rest[11]) + Number(rest[12])) * 1000) / 100);
    } catch {
      // the thread exited
    }
  }
  return out;
}

function threadDelta(before: Map<string, number>, after: Map<string, number>): string {
  return [...after]
    .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(0)} ms`)
    .join(', ');
}

interface DaemonPull extends Measured {
  cpuMs: number;
  beforeKiB: number;
}

/** PullImage `reps` times on the daemon (RemoveImage between), one figure set per pull. */
async function daemonPulls(daemon: TestDaemon, ref: string, configDigest: string, reps: number): Promise<DaemonPull[]> {
  const pid = daemon.pid!;
  const out: DaemonPull[] = [];
  for (let i = 0; i < reps; i++) {
    if (i > 0) await daemon.image('RemoveImage', { image: { image: ref } });
    const beforeKiB = memoryOf(pid).rssKiB;
    resetPeakRss(pid);
    const cpu0 = ownCpuMs(pid);
    const threads0 = threadCpuMs(pid);
    const started = process.hrtime.bigint();
    const res = await daemon.image('PullImage', { image: { image: ref } }, PULL_TIMEOUT_MS);
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (res.image_ref !== configDigest) throw new Error(`sandlot pulled ${String(res.image_ref)}, expected ${configDigest}`);
    out.push({ wallMs, cpuMs: ownCpuMs(pid) - cpu0, peakRssKiB: peakRssKiB(pid), beforeKiB });
    process.stdout.write(
      `sandlot pull ${i + 1}/${reps}: wall ${fmtMs(wallMs)}, daemon CPU ${fmtMs(out[i].cpuMs)}, peak RSS ${fmtKiB(out[i].peakRssKiB)} (before: ${fmtKiB(beforeKiB)})\n` +
        `  CPU by thread: ${threadDelta(threads0, threadCpuMs(pid))}\n`,
    );
  }
  return out;
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
    },
  });
  const layerCount = Number(values.layers);
  const layerMiB = Number(values['layer-mib']);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-bench-pull-'));
  let reg: TestRegistry | undefined;
  let daemon: TestDaemon | undefined;
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
    daemon = await startDaemon({ built: true, config: { log_level: 'info' } });
    const pulls = await daemonPulls(daemon, ref, image.config.digest, Number(values.reps));
    const sandlot: DaemonPull = {
      wallMs: median(pulls.map((p) => p.wallMs)),
      cpuMs: median(pulls.map((p) => p.cpuMs)),
      peakRssKiB: median(pulls.map((p) => p.peakRssKiB)),
      beforeKiB: median(pulls.map((p) => p.beforeKiB)),
    };
    await daemon.cleanup();
    daemon = undefined;
    const sandlotRow = [
      `sandlot PullImage (daemon, median of ${pulls.length})`,
      fmtMs(sandlot.wallMs),
      `${fmtKiB(sandlot.peakRssKiB)} (before the pull: ${fmtKiB(sandlot.beforeKiB)}); daemon CPU ${fmtMs(sandlot.cpuMs)}`,
    ];
    if (values['sandlot-only']) {
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
    if (reg) await reg.stop();
    unmountUnder(work);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
