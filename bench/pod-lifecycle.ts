// Pod lifecycle through the daemon's socket (RunPodSandbox, CreateContainer,
// StartContainer, StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox) for
// N pods one after the other and N at once, beside the raw floor measured in the same
// run: the same two containers (catatonit infra + busybox app joining its namespaces)
// created, started, killed and deleted with runc directly, without conmon, CNI, overlay
// or books. Prints median and p95 per step and in total, and sandlot's overhead over
// the floor as a ratio; asserts nothing.
//   node --import tsx bench/pod-lifecycle.ts [--pods 20] [--skip-floor] [--cpu-prof [--cpu-prof-dir DIR]]
// --cpu-prof runs the daemon under `node --cpu-prof` and prints where its CPU went;
// --cpu-prof-dir keeps the .cpuprofile there (else it goes with the bench's temp dir).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { defaultConfig } from '../src/config/defaults.js';
import { makeBusyboxRootfs, writeBusyboxLayout } from '../src/image/oci-layout-writer.js';
import { resolveBinary } from '../src/oci/command.js';
import type { RuntimeDriver } from '../src/oci/runtime.js';
import { createRuntime } from '../src/oci/runtimes.js';
import { removeCgroupTree } from '../src/sandbox/resources/cgroups.js';
import { testCgroupRoot } from '../test/helpers/cgroup.js';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { printCpuProfile } from './lib/cpu-profile.js';
import { ownCpuMs } from './lib/proc-usage.js';

const IMAGE = 'docker.io/library/busybox:latest';
const CALL_TIMEOUT_MS = 120_000;
const STEPS = ['RunPodSandbox', 'CreateContainer', 'StartContainer', 'StopContainer', 'RemoveContainer', 'StopPodSandbox', 'RemovePodSandbox'] as const;
const RAW_STEPS = ['create infra', 'start infra', 'create app', 'start app', 'kill app', 'delete app', 'kill infra', 'delete infra'] as const;
/** The app container ends on SIGTERM at once: stop measures the path, not a grace period. */
const APP_COMMAND = ['/bin/sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
/** Each container gets its own /dev (the app rootfs directory is shared by all). */
const DEV_MOUNT = { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] };

type Timings = Record<string, number[]>;

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function timed<T>(t: Timings, step: string, fn: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  const out = await fn();
  (t[step] ??= []).push(Number(process.hrtime.bigint() - start) / 1e6);
  return out;
}

async function sandlotPod(d: TestDaemon, t: Timings, name: string, logDir: string): Promise<void> {
  const podConfig = {
    metadata: { name, uid: `uid-${name}`, namespace: 'bench', attempt: 0 },
    hostname: name,
    log_directory: path.join(logDir, name),
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
  const total = process.hrtime.bigint();
  const run = await timed(t, 'RunPodSandbox', () => d.runtime('RunPodSandbox', { config: podConfig, runtime_handler: 'runc' }, CALL_TIMEOUT_MS));
  const pod = String(run.pod_sandbox_id);
  const created = await timed(t, 'CreateContainer', () =>
    d.runtime(
      'CreateContainer',
      {
        pod_sandbox_id: pod,
        config: { metadata: { name: 'app' }, image: { image: IMAGE }, command: APP_COMMAND, log_path: 'app.log' },
        sandbox_config: podConfig,
      },
      CALL_TIMEOUT_MS,
    ),
  );
  const id = String(created.container_id);
  await timed(t, 'StartContainer', () => d.runtime('StartContainer', { container_id: id }, CALL_TIMEOUT_MS));
  await timed(t, 'StopContainer', () => d.runtime('StopContainer', { container_id: id, timeout: 10 }, CALL_TIMEOUT_MS));
  await timed(t, 'RemoveContainer', () => d.runtime('RemoveContainer', { container_id: id }, CALL_TIMEOUT_MS));
  await timed(t, 'StopPodSandbox', () => d.runtime('StopPodSandbox', { pod_sandbox_id: pod }, CALL_TIMEOUT_MS));
  await timed(t, 'RemovePodSandbox', () => d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, CALL_TIMEOUT_MS));
  (t.total ??= []).push(Number(process.hrtime.bigint() - total) / 1e6);
}

interface RawEnv {
  driver: RuntimeDriver;
  dir: string;
  appRootfs: string;
  catatonit: string;
  cgroupParent: string;
}

function writeSpec(bundle: string, spec: Record<string, unknown>): void {
  fs.mkdirSync(bundle, { recursive: true });
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
}

/** The floor: the same two containers straight through runc. */
async function rawPod(env: RawEnv, t: Timings, n: string): Promise<void> {
  const { driver } = env;
  const infraId = `bench-infra-${process.pid}-${n}`;
  const appId = `bench-app-${process.pid}-${n}`;
  const infraBundle = path.join(env.dir, infraId);
  const infraRoot = path.join(infraBundle, 'rootfs');
  for (const d of ['proc', 'dev', 'sys']) fs.mkdirSync(path.join(infraRoot, d), { recursive: true });
  fs.writeFileSync(path.join(infraRoot, 'catatonit'), '');
  const base = { ociVersion: '1.0.2', hostname: n };
  writeSpec(infraBundle, {
    ...base,
    process: { user: { uid: 0, gid: 0 }, args: ['/catatonit', '-P'], cwd: '/', env: ['PATH=/'] },
    root: { path: infraRoot, readonly: true },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      DEV_MOUNT,
      { destination: '/catatonit', type: 'bind', source: env.catatonit, options: ['rbind', 'ro'] },
    ],
    linux: { cgroupsPath: path.join(env.cgroupParent, infraId), namespaces: ['pid', 'ipc', 'uts', 'mount', 'network'].map((type) => ({ type })) },
  });
  const total = process.hrtime.bigint();
  const infraPidFile = path.join(env.dir, `${infraId}.pid`);
  await timed(t, 'create infra', () => driver.create(infraId, infraBundle, infraPidFile));
  await timed(t, 'start infra', () => driver.start(infraId));
  const infraPid = Number(fs.readFileSync(infraPidFile, 'utf8').trim());
  const appBundle = path.join(env.dir, appId);
  writeSpec(appBundle, {
    ...base,
    process: { user: { uid: 0, gid: 0 }, args: APP_COMMAND, cwd: '/', env: ['PATH=/bin'] },
    root: { path: env.appRootfs, readonly: true },
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }, DEV_MOUNT],
    linux: {
      cgroupsPath: path.join(env.cgroupParent, appId),
      namespaces: [
        { type: 'pid' },
        { type: 'mount' },
        { type: 'ipc', path: `/proc/${infraPid}/ns/ipc` },
        { type: 'uts', path: `/proc/${infraPid}/ns/uts` },
        { type: 'network', path: `/proc/${infraPid}/ns/net` },
      ],
    },
  });
  await timed(t, 'create app', () => driver.create(appId, appBundle, path.join(env.dir, `${appId}.pid`)));
  await timed(t, 'start app', () => driver.start(appId));
  await timed(t, 'kill app', () => waitStopped(driver, appId, 'SIGTERM'));
  await timed(t, 'delete app', () => driver.delete(appId, { force: true }));
  await timed(t, 'kill infra', () => waitStopped(driver, infraId, 'SIGKILL'));
  await timed(t, 'delete infra', () => driver.delete(infraId, { force: true }));
  (t.total ??= []).push(Number(process.hrtime.bigint() - total) / 1e6);
  fs.rmSync(infraBundle, { recursive: true, force: true });
  fs.rmSync(appBundle, { recursive: true, force: true });
}

/**
 * Signals until the container stops: a signal that comes before the shell set its trap
 * is lost (PID 1 of its namespace ignores it), so it is sent again every 10 polls.
 */
async function waitStopped(driver: RuntimeDriver, id: string, signal: string): Promise<void> {
  for (let i = 0, delay = 2; ; i++, delay = Math.min(delay * 2, 50)) {
    if (i % 10 === 0) await driver.kill(id, signal).catch(() => undefined);
    const st = await driver.state(id);
    if (st === undefined || st.status === 'stopped') return;
    await new Promise((r) => setTimeout(r, delay));
  }
}

function report(title: string, t: Timings, steps: readonly string[]): void {
  console.log(`\n${title}`);
  console.log(`  ${'step'.padEnd(18)} ${'median ms'.padStart(10)} ${'p95 ms'.padStart(10)}`);
  for (const s of [...steps, 'total']) {
    const v = t[s] ?? [];
    console.log(`  ${s.padEnd(18)} ${percentile(v, 50).toFixed(1).padStart(10)} ${percentile(v, 95).toFixed(1).padStart(10)}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pods: { type: 'string', default: '20' },
      'skip-floor': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      'cpu-prof-dir': { type: 'string' },
    },
  });
  const n = Number(values.pods);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-bench-pods-'));
  const log = pino({ level: 'silent' });
  const cgroupParent = path.join(testCgroupRoot(), `sandlot-bench-${process.pid}`);
  let d: TestDaemon | undefined;
  let rawDriver: RuntimeDriver | undefined;
  // --cpu-prof: the daemon writes a V8 CPU profile at exit; its summary is printed then.
  const profDir = values['cpu-prof-dir'] !== undefined ? path.resolve(values['cpu-prof-dir']) : path.join(dir, 'cpu-prof');
  try {
    await writeBusyboxLayout(path.join(dir, 'layout'), IMAGE);
    const nodeArgs = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
    d = await startDaemon({ built: true, nodeArgs, config: { preload_images: [path.join(dir, 'layout')], log_level: 'info' } });
    const logDir = path.join(dir, 'logs');
    // One warm-up pod: the first create pays for caches (binaries, layer snapshot pages).
    await sandlotPod(d, {}, 'warmup', logDir);
    const seq: Timings = {};
    const cpuBefore = ownCpuMs(d.pid!);
    for (let i = 0; i < n; i++) await sandlotPod(d, seq, `seq-${i}`, logDir);
    const cpuPerPodMs = (ownCpuMs(d.pid!) - cpuBefore) / n;
    const par: Timings = {};
    const wall = process.hrtime.bigint();
    await Promise.all(Array.from({ length: n }, (_, i) => sandlotPod(d!, par, `par-${i}`, logDir)));
    const parWallMs = Number(process.hrtime.bigint() - wall) / 1e6;

    console.log(`pod lifecycle, ${n} pods, runc, ${os.cpus().length} cores`);
    report(`sandlot through the socket, one after the other`, seq, STEPS);
    console.log(`  daemon CPU per pod (children excluded), one after the other: ${cpuPerPodMs.toFixed(1)} ms`);
    report(`sandlot through the socket, ${n} at once (wall ${parWallMs.toFixed(0)} ms)`, par, STEPS);
    if (values['skip-floor']) return;

    const catatonit = resolveBinary(defaultConfig().catatonit_path);
    if (catatonit === undefined) throw new Error('catatonit not found');
    const appRootfs = path.join(dir, 'app-rootfs');
    await makeBusyboxRootfs(appRootfs);
    const driver = createRuntime({ name: 'runc', config: defaultConfig().runtimes.runc, stateDir: path.join(dir, 'raw-state'), log });
    rawDriver = driver;
    await driver.ensureRoot();
    const raw: RawEnv = { driver, dir: path.join(dir, 'raw'), appRootfs, catatonit, cgroupParent };
    fs.mkdirSync(raw.dir, { recursive: true });
    await rawPod(raw, {}, 'warmup');
    const rawSeq: Timings = {};
    for (let i = 0; i < n; i++) await rawPod(raw, rawSeq, `s${i}`);
    const rawPar: Timings = {};
    const rawWall = process.hrtime.bigint();
    await Promise.all(Array.from({ length: n }, (_, i) => rawPod(raw, rawPar, `p${i}`)));
    const rawParWallMs = Number(process.hrtime.bigint() - rawWall) / 1e6;

    report('raw floor (runc create/start/kill/delete, two containers), one after the other', rawSeq, RAW_STEPS);
    report(`raw floor, ${n} at once (wall ${rawParWallMs.toFixed(0)} ms)`, rawPar, RAW_STEPS);
    const ratio = percentile(seq.total, 50) / percentile(rawSeq.total, 50);
    console.log(`\noverhead over the floor (median total per pod, one after the other): ${ratio.toFixed(2)}x`);
    console.log(`overhead over the floor (wall time, ${n} at once): ${(parWallMs / rawParWallMs).toFixed(2)}x`);
  } finally {
    if (d) {
      const cs = (await d.runtime('ListContainers', {}).catch(() => ({ containers: [] }))) as { containers: Array<{ id: string }> };
      for (const c of cs.containers) await d.runtime('RemoveContainer', { container_id: c.id }).catch(() => undefined);
      const ps = (await d.runtime('ListPodSandbox', {}).catch(() => ({ items: [] }))) as { items: Array<{ id: string }> };
      for (const p of ps.items) await d.runtime('RemovePodSandbox', { pod_sandbox_id: p.id }).catch(() => undefined);
      await d.cleanup();
      await removeCgroupTree(path.join(testCgroupRoot(), '/sandlot')).catch(() => undefined);
      if (values['cpu-prof'] && fs.existsSync(profDir)) printCpuProfile(profDir);
    }
    if (rawDriver) {
      // A failed run leaves raw containers running: every one goes, by force.
      for (const id of await rawDriver.list().catch(() => [] as string[])) await rawDriver.delete(id, { force: true }).catch(() => undefined);
    }
    await removeCgroupTree(cgroupParent).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
