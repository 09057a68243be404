// The daemon's memory at rest and its CPU per pod, paired against other checkouts (issue
// 13). Each repetition starts every daemon in turn (rotating the order): this checkout's
// and each --baseline's (its own test/helpers/daemon.ts, so its own dist/ and Node flags),
// with a busybox preload. For each: RSS 0.5 s after it serves ("ready"); RSS (anon, file)
// and PSS 8 s after; one warm-up pod, then --pods lifecycles one after the other (the
// daemon's own CPU, children excluded, over the calls alone); RSS and PSS after 12 s idle
// ("warm idle"); --hold pods with a
// running container each, started 4 at a time, then RSS and PSS of the daemon and of
// daemon + conmons; 50 rounds of List/Status reads among them (p50s); then every held pod
// removed at once as the vs-containerd bench does (StopPodSandbox, RemovePodSandbox, 4 at
// a time) and RSS and PSS after 12 s idle ("after"). With --pull the image comes from a
// local registry, pulled after the start-up figures (wall and daemon CPU), instead of a
// preload: a node's daemon pulls, and a pull's code leaves pages a preload does not.
// Prints the medians per checkout; asserts nothing. Memory figures are read from /proc
// (smaps_rollup, status).
//   node --import tsx bench/idle-memory.ts [--reps 3] [--pods 20] [--hold 20] [--pull] [--baseline CHECKOUT]…
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { writeBusyboxLayout } from '../src/image/oci-layout-writer.js';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { buildImage, busyboxLayer } from '../test/helpers/image-build.js';
import { pushImage, startRegistry } from '../test/helpers/registry.js';
import { helperPids, memoryOf, ownCpuMs, sumMemory } from './lib/proc-usage.js';
import { median, timed, type Timings } from './lib/stats.js';

const IMAGE = 'docker.io/library/busybox:latest';
const CALL_TIMEOUT_MS = 120_000;
/** "Ready": soon after the daemon serves. */
const READY_MS = 500;
/** "Just started": after start-up, its first idle collection and trim. */
const STARTED_MS = 8_000;
/** "Warm idle": V8's memory reducer and the daemon's settle trims have run by then. */
const IDLE_MS = 12_000;
/** Held pods settle (conmon, pages) before their memory is read. */
const SETTLE_MS = 2_000;
const HOLD_CONCURRENCY = 4;
/** Held pods are removed this many at a time, as bench/lib/cri-runtime.ts removeAllPods does. */
const REMOVE_CONCURRENCY = 4;
const READ_ROUNDS = 50;
/** The shell sets its trap first: a stop sent later ends the container at once. */
const TRAP_MS = 150;
const APP_COMMAND = ['/bin/sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];

type Figures = Record<string, number>;
type Starter = typeof startDaemon;

/** RSS, its anonymous and file parts, and PSS of a process, in MiB. */
function memory(pid: number): { rss: number; anon: number; file: number; pss: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) / 1024;
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile'), pss: memoryOf(pid).pssKiB / 1024 };
}

function podConfig(logDir: string, name: string): Record<string, unknown> {
  const dir = path.join(logDir, name);
  fs.mkdirSync(dir, { recursive: true });
  return {
    metadata: { name, uid: `uid-${name}`, namespace: 'bench', attempt: 0 },
    hostname: name,
    log_directory: dir,
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
}

async function startPod(d: TestDaemon, image: string, logDir: string, name: string): Promise<{ pod: string; ctr: string }> {
  const config = podConfig(logDir, name);
  const run = await d.runtime('RunPodSandbox', { config, runtime_handler: 'runc' }, CALL_TIMEOUT_MS);
  const pod = String(run.pod_sandbox_id);
  const ctrConfig = { metadata: { name: 'app' }, image: { image }, command: APP_COMMAND, log_path: 'app.log' };
  const created = await d.runtime('CreateContainer', { pod_sandbox_id: pod, config: ctrConfig, sandbox_config: config }, CALL_TIMEOUT_MS);
  const ctr = String(created.container_id);
  await d.runtime('StartContainer', { container_id: ctr }, CALL_TIMEOUT_MS);
  return { pod, ctr };
}

async function removePod(d: TestDaemon, p: { pod: string; ctr: string }): Promise<void> {
  await d.runtime('StopContainer', { container_id: p.ctr, timeout: 10 }, CALL_TIMEOUT_MS);
  await d.runtime('RemoveContainer', { container_id: p.ctr }, CALL_TIMEOUT_MS);
  await d.runtime('StopPodSandbox', { pod_sandbox_id: p.pod }, CALL_TIMEOUT_MS);
  await d.runtime('RemovePodSandbox', { pod_sandbox_id: p.pod }, CALL_TIMEOUT_MS);
}

/** Where the pods' image comes from: a preloaded layout, or a registry the daemon pulls it from. */
type ImageSource = { layout: string } | { pull: string };

/** Stops and removes the pods, REMOVE_CONCURRENCY at a time, without stopping their containers first. */
async function removeAll(d: TestDaemon, pods: Array<{ pod: string }>): Promise<void> {
  let next = 0;
  const remover = async (): Promise<void> => {
    while (next < pods.length) {
      const { pod } = pods[next++];
      await d.runtime('StopPodSandbox', { pod_sandbox_id: pod }, CALL_TIMEOUT_MS);
      await d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, CALL_TIMEOUT_MS);
    }
  };
  await Promise.all(Array.from({ length: REMOVE_CONCURRENCY }, remover));
}

/** One daemon's run: the figures named as the table prints them. */
async function measure(start: Starter, source: ImageSource, logDir: string, pods: number, hold: number): Promise<Figures> {
  const preload = 'layout' in source ? { preload_images: [source.layout] } : {};
  const d = await start({ built: true, config: { ...preload, log_level: 'info' } });
  const out: Figures = {};
  const image = 'pull' in source ? source.pull : IMAGE;
  try {
    const pid = d.pid!;
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    if (argv.includes('tsx')) throw new Error(`not the built daemon (dist/ is stale): ${argv}`);
    // Soon after it serves, as bench/vs-containerd.ts reads it (its containerd starts in between).
    await sleep(READY_MS);
    out['ready RSS'] = memory(pid).rss;
    await sleep(STARTED_MS - READY_MS);
    const s = memory(pid);
    Object.assign(out, { 'started RSS': s.rss, 'started anon': s.anon, 'started file': s.file, 'started PSS': s.pss });
    if ('pull' in source) {
      const c0 = ownCpuMs(pid);
      const t0 = performance.now();
      await d.image('PullImage', { image: { image: source.pull } }, CALL_TIMEOUT_MS);
      Object.assign(out, { 'pull ms': performance.now() - t0, 'pull CPU ms': ownCpuMs(pid) - c0 });
    }
    await removePod(d, await startPod(d, image, logDir, 'warmup'));
    let cpu = 0;
    for (let i = 0; i < pods; i++) {
      const c0 = ownCpuMs(pid);
      const p = await startPod(d, image, logDir, `seq-${i}`);
      cpu += ownCpuMs(pid) - c0;
      await sleep(TRAP_MS);
      const c1 = ownCpuMs(pid);
      await removePod(d, p);
      cpu += ownCpuMs(pid) - c1;
    }
    out['CPU per pod ms'] = cpu / pods;
    await sleep(IDLE_MS);
    const w = memory(pid);
    Object.assign(out, { 'warm RSS': w.rss, 'warm anon': w.anon, 'warm file': w.file, 'warm PSS': w.pss });
    if (hold > 0) {
      const held: Array<{ pod: string; ctr: string }> = [];
      let next = 0;
      const starter = async (): Promise<void> => {
        while (next < hold) held.push(await startPod(d, image, logDir, `hold-${next++}`));
      };
      await Promise.all(Array.from({ length: HOLD_CONCURRENCY }, starter));
      await sleep(SETTLE_MS);
      const h = memory(pid);
      const conmons = sumMemory(helperPids('conmon', d.dir));
      Object.assign(out, { [`${hold} pods RSS`]: h.rss, [`${hold} pods PSS`]: h.pss, [`${hold} pods PSS +conmon`]: h.pss + conmons.pssKiB / 1024 });
      const t: Timings = {};
      for (let i = 0; i < READ_ROUNDS; i++) {
        const p = held[i % held.length];
        await timed(t, 'ListPodSandbox', () => d.runtime('ListPodSandbox', {}));
        await timed(t, 'PodSandboxStatus', () => d.runtime('PodSandboxStatus', { pod_sandbox_id: p.pod }));
        await timed(t, 'ListContainers', () => d.runtime('ListContainers', {}));
        await timed(t, 'ContainerStatus', () => d.runtime('ContainerStatus', { container_id: p.ctr }));
      }
      for (const [k, v] of Object.entries(t)) out[`p50 ${k} ms`] = median(v);
      await removeAll(d, held);
      await sleep(IDLE_MS);
      const a = memory(pid);
      Object.assign(out, { 'after RSS': a.rss, 'after anon': a.anon, 'after file': a.file, 'after PSS': a.pss });
    }
  } finally {
    await d.cleanup();
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string', default: '3' },
      pods: { type: 'string', default: '20' },
      hold: { type: 'string', default: '20' },
      baseline: { type: 'string', multiple: true, default: [] },
      pull: { type: 'boolean', default: false },
    },
  });
  const targets: Array<{ name: string; start: Starter }> = [{ name: 'sandlot', start: startDaemon }];
  for (const dir of values.baseline ?? []) {
    // The baseline checkout's own helper: it starts that checkout's dist/ with its flags.
    const helper = (await import(pathToFileURL(path.join(path.resolve(dir), 'test/helpers/daemon.ts')).href)) as { startDaemon: Starter };
    targets.push({ name: `sandlot@${path.basename(dir)}`, start: helper.startDaemon });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-bench-idle-'));
  const runs = new Map<string, Figures[]>(targets.map((t) => [t.name, []]));
  const registry = values.pull ? await startRegistry() : undefined;
  try {
    let source: ImageSource;
    if (registry) {
      await pushImage(registry, 'bench/busybox', 'v1', buildImage([await busyboxLayer()]));
      source = { pull: `${registry.host}/bench/busybox:v1` };
    } else {
      source = { layout: path.join(dir, 'layout') };
      await writeBusyboxLayout(source.layout, IMAGE);
    }
    console.log(
      `load before: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    const reps = Number(values.reps);
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < targets.length; i++) {
        const t = targets[(i + r) % targets.length];
        const f = await measure(t.start, source, path.join(dir, 'logs', `${r}-${i}`), Number(values.pods), Number(values.hold));
        runs.get(t.name)!.push(f);
        console.log(
          `${t.name} ${r + 1}/${reps}: ${Object.entries(f)
            .map(([k, v]) => `${k} ${v.toFixed(1)}`)
            .join(', ')}`,
        );
      }
    }
    console.log(
      `load after: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    console.log(`\nmedians of ${reps} runs each (MiB unless named)`);
    console.log(['', ...targets.map((t) => t.name)].map((c) => c.padEnd(24)).join(''));
    for (const k of Object.keys(runs.get('sandlot')![0] ?? {})) {
      console.log([k, ...targets.map((t) => median(runs.get(t.name)!.map((f) => f[k])).toFixed(1))].map((c) => c.padEnd(24)).join(''));
    }
  } finally {
    await registry?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
