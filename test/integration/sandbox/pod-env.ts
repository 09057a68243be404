// Shared set-up for the pod sandbox integration tests: a PodManager over the real
// runtimes, conmon, catatonit and CNI plugins, with its own temp root/state dirs, its
// own bridge and /24, and cgroup_root = this process's memory cgroup. The cleanup runs
// even when a test failed: every pod removed, then anything left (processes by PID,
// netns mounts, veths and the bridge by name, cgroups, files) taken away.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { unmountAll } from '../../../native/index.js';
import { defaultConfig } from '../../../src/config/defaults.js';
import { validateConfig } from '../../../src/config/load.js';
import type { SandlotConfig } from '../../../src/config/types.js';
import { streamHandlerOf, unaryHandlerOf, type CallContext, type HandlerSet } from '../../../src/cri/handler-types.js';
import { sandboxHandlers } from '../../../src/cri/sandbox-handlers.js';
import { NetworkManager } from '../../../src/network/network-manager.js';
import { CgroupManager, removeCgroupTree } from '../../../src/sandbox/resources/cgroups.js';
import { PodManager } from '../../../src/sandbox/pod/pod-manager.js';
import { testCgroupRoot } from '../../helpers/cgroup.js';

export const execFileAsync = promisify(execFile);

export interface PodEnv {
  config: SandlotConfig;
  pods: PodManager;
  network: NetworkManager;
  handlers: HandlerSet;
  dir: string;
  bridge: string;
  subnetPrefix: string;
  call(method: string, req: object): Promise<Record<string, unknown>>;
  /** A new manager over the same dirs (a daemon restart). */
  restart(): Promise<void>;
}

interface AfterHost {
  after(fn: () => void | Promise<void>): void;
}

let counter = 0;

export async function makePodEnv(t: AfterHost, overrides: Record<string, unknown> = {}): Promise<PodEnv> {
  counter += 1;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-pod-'));
  const third = (process.pid * 3 + counter * 17) % 250;
  const subnetPrefix = `10.${200 + (process.pid % 50)}.${third}`;
  const bridge = `slp${process.pid % 100000}x${counter}`.slice(0, 15);
  const config = validateConfig({
    ...defaultConfig(),
    root_dir: path.join(dir, 'root'),
    state_dir: path.join(dir, 'state'),
    cni_conf_dir: path.join(dir, 'net.d'),
    cni_default_bridge: bridge,
    cni_default_subnet: `${subnetPrefix}.0/24`,
    cgroup_root: testCgroupRoot(),
    default_cgroup_parent: `/sandlot-test-${process.pid}-${counter}`,
    ...overrides,
  });
  fs.mkdirSync(config.state_dir, { recursive: true });
  fs.mkdirSync(config.root_dir, { recursive: true });
  const log = pino({ level: process.env.SANDLOT_TEST_LOG ?? 'silent' });
  const env = {} as PodEnv;
  const build = async (): Promise<void> => {
    (env.pods as PodManager | undefined)?.close(); // a restart: the old daemon watches nothing any more
    env.network = await NetworkManager.create({ config, log });
    env.pods = new PodManager({ config, log, network: env.network, cgroups: new CgroupManager() });
    await env.pods.start();
    env.handlers = sandboxHandlers(env.pods);
  };
  await build();
  const ctx = (): CallContext => ({ log, signal: new AbortController().signal });
  Object.assign(env, {
    config,
    dir,
    bridge,
    subnetPrefix,
    async call(method: string, req: object) {
      const unary = unaryHandlerOf(env.handlers, method);
      if (unary) return (await unary(req, ctx())) as Record<string, unknown>;
      const stream = streamHandlerOf(env.handlers, method);
      if (!stream) throw new Error(`no handler ${method}`);
      const out: unknown[] = [];
      for await (const m of stream(req, ctx())) out.push(m);
      return { messages: out };
    },
    restart: build,
  });
  t.after(async () => {
    for (const rec of env.pods.list()) {
      await env.pods.remove(rec.id).catch((e: unknown) => {
        console.error(`cleanup: removing pod ${rec.id}: ${e instanceof Error ? e.message : String(e)}`);
        for (const pid of [rec.pid, rec.conmonPid]) {
          try {
            if (pid > 0) process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      });
    }
    try {
      unmountAll(path.join(config.state_dir, 'netns'));
    } catch {
      // not mounted
    }
    for (const port of fs.existsSync(`/sys/class/net/${bridge}/brif`) ? fs.readdirSync(`/sys/class/net/${bridge}/brif`) : []) {
      await execFileAsync('ip', ['link', 'delete', 'dev', port]).catch(() => undefined);
    }
    if (fs.existsSync(`/sys/class/net/${bridge}`)) await execFileAsync('ip', ['link', 'delete', 'dev', bridge]).catch(() => undefined);
    await removeCgroupTree(path.join(config.cgroup_root, config.default_cgroup_parent)).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return env;
}

export function podConfig(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    metadata: { name, uid: `uid-${name}`, namespace: 'sandlot-test', attempt: 0 },
    hostname: name,
    log_directory: '',
    labels: { app: name },
    annotations: { 'test.sandlot/owner': 'integration' },
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } },
    ...extra,
  };
}

export function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

export function isMounted(file: string): boolean {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === file);
}

/** Mount points whose path holds `needle`. */
export function mountsWith(needle: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.includes(needle));
}

/** host-local lease files (named by IP) anywhere under the CNI state. */
export function ipamLeases(stateDir: string): string[] {
  const root = path.join(stateDir, 'cni', 'networks');
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (/^\d+\.\d+\.\d+\.\d+$/.test(e.name)) out.push(e.name);
    }
  };
  walk(root);
  return out;
}
