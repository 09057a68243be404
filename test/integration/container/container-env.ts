// Shared set-up for the container tests: the real daemon (test/helpers/daemon.ts) on a
// temp socket with the built-in busybox image preloaded from an OCI layout, plus small
// helpers to make pods and containers through gRPC and to wait for states. The cleanup
// runs even when a test failed: every container and pod removed through the daemon,
// then processes by PID, the bridge, the cgroups and the dirs.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { writeBusyboxLayout } from '../../../src/image/oci-layout-writer.js';
import { removeCgroupTree } from '../../../src/sandbox/resources/cgroups.js';
import { startDaemon, type CriAnswer, type TestDaemon } from '../../helpers/daemon.js';

export const execFileAsync = promisify(execFile);
export const BUSYBOX = 'docker.io/library/busybox:latest';

interface AfterHost {
  after(fn: () => void | Promise<void>): void;
}

export interface ContainerEnv {
  d: TestDaemon;
  /** PIDs the test learned (infra, conmon, containers): SIGKILLed at cleanup if still alive. */
  pids: number[];
  logDir: string;
  runPod(name: string, extra?: Record<string, unknown>, handler?: string): Promise<string>;
  createContainer(podId: string, name: string, config?: Record<string, unknown>): Promise<string>;
  status(id: string): Promise<ContainerStatus>;
  waitState(id: string, state: string, timeoutMs?: number): Promise<ContainerStatus>;
  /** The verbose info (pid, conmonPid, …) of a container. */
  info(id: string): Promise<Record<string, unknown>>;
  podInfo(podId: string): Promise<{ pid: number; conmonPid: number }>;
}

/** ContainerStatusResponse.status as the test client decodes it (test/helpers/daemon.ts). */
export type ContainerStatus = CriAnswer<'ContainerStatus'>['status'];

let layoutDir: string | undefined;

/** One busybox layout per test process. */
async function busyboxLayout(): Promise<string> {
  if (layoutDir && fs.existsSync(layoutDir)) return layoutDir;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-ctr-layout-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  await writeBusyboxLayout(path.join(dir, 'busybox'), BUSYBOX);
  layoutDir = path.join(dir, 'busybox');
  return layoutDir;
}

export async function makeContainerEnv(t: AfterHost, opts: { dir?: string; config?: Record<string, unknown>; built?: boolean } = {}): Promise<ContainerEnv> {
  const layout = await busyboxLayout();
  const d = await startDaemon({ config: { preload_images: [layout], ...opts.config }, ...(opts.dir ? { dir: opts.dir } : {}), built: opts.built ?? false });
  const logDir = path.join(d.dir, 'pod-logs');
  const env: ContainerEnv = {
    d,
    pids: [],
    logDir,
    async runPod(name, extra = {}, handler = 'runc') {
      const r = await d.runtime('RunPodSandbox', { config: podConfig(name, logDir, extra), runtime_handler: handler }, 120_000);
      const id = r.pod_sandbox_id;
      const info = await env.podInfo(id);
      env.pids.push(info.pid, info.conmonPid);
      return id;
    },
    async createContainer(podId, name, config = {}) {
      const r = await d.runtime(
        'CreateContainer',
        { pod_sandbox_id: podId, config: containerConfig(name, config), sandbox_config: podConfig(name, logDir) },
        120_000,
      );
      const id = r.container_id;
      const info = await env.info(id);
      env.pids.push(Number(info.pid), Number(info.conmonPid));
      return id;
    },
    async status(id) {
      const r = await d.runtime('ContainerStatus', { container_id: id });
      return r.status;
    },
    async waitState(id, state, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const st = await env.status(id);
        if (st.state === state) return st;
        if (Date.now() > end) throw new Error(`container ${id} is ${st.state}, not ${state}, after ${timeoutMs} ms`);
        await sleep(50);
      }
    },
    async info(id) {
      const r = await d.runtime('ContainerStatus', { container_id: id, verbose: true });
      return JSON.parse((r.info as Record<string, string>).info) as Record<string, unknown>;
    },
    async podInfo(podId) {
      const r = await d.runtime('PodSandboxStatus', { pod_sandbox_id: podId, verbose: true });
      return JSON.parse((r.info as Record<string, string>).info) as { pid: number; conmonPid: number };
    },
  };
  t.after(() => cleanupEnv(env));
  return env;
}

/** Removes every container and pod through the daemon, then whatever is left. */
export async function cleanupEnv(env: ContainerEnv): Promise<void> {
  const { d } = env;
  try {
    const cs = (await d.runtime('ListContainers', {})) as { containers: Array<{ id: string }> };
    for (const c of cs.containers) await d.runtime('RemoveContainer', { container_id: c.id }, 60_000).catch(() => undefined);
    const ps = (await d.runtime('ListPodSandbox', {})) as { items: Array<{ id: string }> };
    for (const p of ps.items) await d.runtime('RemovePodSandbox', { pod_sandbox_id: p.id }, 60_000).catch(() => undefined);
  } catch {
    // the daemon is not answering: the PIDs below go by force
  }
  await d.cleanup();
  for (const pid of env.pids) {
    try {
      if (pid > 0) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  const bridge = d.config.cni_default_bridge as string;
  if (fs.existsSync(`/sys/class/net/${bridge}`)) await execFileAsync('ip', ['link', 'delete', 'dev', bridge]).catch(() => undefined);
  await removeCgroupTree(path.join(String(d.config.cgroup_root), '/sandlot')).catch(() => undefined);
}

export function podConfig(name: string, logDir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    metadata: { name, uid: `uid-${name}`, namespace: 'sandlot-ctr-test', attempt: 0 },
    hostname: name,
    log_directory: path.join(logDir, name),
    labels: { app: name },
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
    ...extra,
  };
}

export function containerConfig(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    metadata: { name, attempt: 0 },
    image: { image: BUSYBOX },
    command: ['/bin/sh', '-c', 'echo hello'],
    log_path: `${name}.log`,
    labels: { container: name },
    annotations: { 'test.sandlot/container': name },
    ...extra,
  };
}

/** Polls `fn` until it is true. */
export async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** A gRPC call that must fail: its code and details. */
export async function failure(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  return p.then(
    () => {
      throw new Error('the call succeeded but should have failed');
    },
    (e: { code: number; details: string }) => ({ code: e.code, details: e.details }),
  );
}

/** Runs `script` under /bin/sh in a container through ExecSync: its exit code and its output (stdout then stderr). */
export async function shellExec(env: ContainerEnv, id: string, script: string): Promise<{ code: number; out: string }> {
  const r = await env.d.runtime('ExecSync', { container_id: id, cmd: ['/bin/sh', '-c', script], timeout: 30 }, 60_000);
  return { code: r.exit_code, out: `${Buffer.from(r.stdout).toString()}${Buffer.from(r.stderr).toString()}` };
}
