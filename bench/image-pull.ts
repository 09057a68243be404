// Pull + unpack of a ~200 MB, 5-layer image of incompressible data from a local
// Debian docker-registry: sandlot (a real daemon, PullImage over its socket) beside
// `skopeo copy` + `umoci unpack` of the same image in the same run. Prints wall time
// and peak RSS of each and the ratios; asserts nothing.
//   node --import tsx bench/image-pull.ts [--layers 5] [--layer-mib 40]
// Peak RSS: sandlot's is the daemon process's VmHWM (/proc/<pid>/status) after the
// pull (it includes the daemon's start-up, shown separately); skopeo's and umoci's
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

const MIB = 1024 * 1024;
const PULL_TIMEOUT_MS = 30 * 60_000;
const POLL_INTERVAL_MS = 20;
const GNU_TIME = '/usr/bin/time';

interface Measured {
  wallMs: number;
  peakRssKiB: number;
}

function vmHwmKiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`reading VmHWM of pid ${pid}: no VmHWM line`);
  return Number(m[1]);
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
      polledKiB = Math.max(polledKiB, vmHwmKiB(child.pid!));
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
  const { values } = parseArgs({ options: { layers: { type: 'string', default: '5' }, 'layer-mib': { type: 'string', default: '40' } } });
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
    const pid = daemon.pid!;
    const idleKiB = vmHwmKiB(pid);
    const started = process.hrtime.bigint();
    const res = await daemon.image('PullImage', { image: { image: ref } }, PULL_TIMEOUT_MS);
    const sandlotMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (res.image_ref !== image.config.digest) throw new Error(`sandlot pulled ${String(res.image_ref)}, expected ${image.config.digest}`);
    const sandlot: Measured = { wallMs: sandlotMs, peakRssKiB: vmHwmKiB(pid) };
    await daemon.cleanup();
    daemon = undefined;

    // skopeo copy into an OCI layout, then umoci unpack into a bundle.
    const layout = path.join(work, 'oci');
    const bundle = path.join(work, 'bundle');
    const copy = await measure('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:v1`]);
    const unpack = await measure('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
    const other: Measured = { wallMs: copy.wallMs + unpack.wallMs, peakRssKiB: Math.max(copy.peakRssKiB, unpack.peakRssKiB) };

    const rows = [
      ['sandlot PullImage (daemon)', fmtMs(sandlot.wallMs), `${fmtKiB(sandlot.peakRssKiB)} (idle daemon: ${fmtKiB(idleKiB)})`],
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
