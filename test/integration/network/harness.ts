// Shared set-up for the network integration tests: a temp state dir, its own bridge and
// subnet per test file (so files never collide with each other or a dev daemon), and a
// cleanup that runs even when the test failed: CNI DEL, unpinned netns, our veths and
// bridge deleted by name, the netns dir unmounted, temp files removed.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { unmountAll } from '../../../native/index.js';
import { defaultConfig } from '../../../src/config/defaults.js';
import type { SandlotConfig } from '../../../src/config/types.js';
import { NetworkManager, type PodNetworkRequest } from '../../../src/network/network-manager.js';

export const execFileAsync = promisify(execFile);

export interface NetEnv {
  manager: NetworkManager;
  config: SandlotConfig;
  stateDir: string;
  confDir: string;
  bridge: string;
  /** A request for a new pod ID (remembered for cleanup). */
  newPod(portMappings?: PodNetworkRequest['portMappings']): PodNetworkRequest;
  /** Creates the pod's netns and returns its request. */
  newPodWithNetns(portMappings?: PodNetworkRequest['portMappings']): Promise<PodNetworkRequest>;
}

interface AfterHost {
  after(fn: () => void | Promise<void>): void;
}

export interface NetEnvOptions {
  bridge: string;
  subnet: string;
  binDirs?: string[];
  confFiles?: Record<string, string>;
  /** NetworkManager's bridgeLingerMs; 0 here (the bridge goes with the last pod) unless a test checks the linger. */
  bridgeLingerMs?: number;
}

export async function makeNetEnv(t: AfterHost, opts: NetEnvOptions): Promise<NetEnv> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-net-'));
  const confDir = path.join(stateDir, 'net.d');
  fs.mkdirSync(confDir);
  for (const [name, text] of Object.entries(opts.confFiles ?? {})) fs.writeFileSync(path.join(confDir, name), text);
  const config: SandlotConfig = {
    ...defaultConfig(),
    state_dir: stateDir,
    root_dir: path.join(stateDir, 'root'),
    cni_conf_dir: confDir,
    cni_default_bridge: opts.bridge,
    cni_default_subnet: opts.subnet,
    ...(opts.binDirs ? { cni_bin_dirs: opts.binDirs } : {}),
  };
  const pods: PodNetworkRequest[] = [];
  const bridges = new Set([opts.bridge]);
  t.after(async () => {
    for (const req of pods) {
      await manager?.tearDown(req).catch(() => {});
      try {
        unmountAll(req.netnsPath);
      } catch {
        // already gone
      }
    }
    await manager?.close().catch(() => {});
    for (const br of bridges) {
      for (const port of listPorts(br)) await execFileAsync('ip', ['link', 'delete', 'dev', port]).catch(() => {});
      if (fs.existsSync(`/sys/class/net/${br}`)) await execFileAsync('ip', ['link', 'delete', 'dev', br, 'type', 'bridge']).catch(() => {});
    }
    try {
      unmountAll(path.join(stateDir, 'netns'));
    } catch {
      // not mounted
    }
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  const manager = await NetworkManager.create({ config, log: pino({ level: 'silent' }), bridgeLingerMs: opts.bridgeLingerMs ?? 0 });
  let n = 0;
  const newPod = (portMappings: PodNetworkRequest['portMappings'] = []): PodNetworkRequest => {
    const podId = `${opts.bridge}${String(n++).padStart(3, '0')}${'0'.repeat(50)}`.slice(0, 64);
    const req = { podId, name: `pod-${n}`, namespace: 'sandlot-test', uid: `uid-${n}`, netnsPath: path.join(stateDir, 'netns', podId), portMappings };
    pods.push(req);
    return req;
  };
  return {
    manager,
    config,
    stateDir,
    confDir,
    bridge: opts.bridge,
    newPod,
    async newPodWithNetns(portMappings = []) {
      const req = newPod(portMappings);
      const p = await manager.createNetns(req.podId);
      if (p !== req.netnsPath) throw new Error(`netns at "${p}", expected "${req.netnsPath}"`);
      return req;
    },
  };
}

/** Interfaces attached to a bridge; [] when it does not exist. */
export function listPorts(bridge: string): string[] {
  try {
    return fs.readdirSync(`/sys/class/net/${bridge}/brif`);
  } catch {
    return [];
  }
}

export function bridgeExists(bridge: string): boolean {
  return fs.existsSync(`/sys/class/net/${bridge}`);
}

/** True when `file` is a mount point in our mount namespace. */
export function isMounted(file: string): boolean {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === file);
}

/** host-local lease files (named by IP) under the IPAM data dir. */
export function ipamLeases(dataDir: string): string[] {
  const out: string[] = [];
  if (!fs.existsSync(dataDir)) return out;
  for (const net of fs.readdirSync(dataDir)) {
    for (const f of fs.readdirSync(path.join(dataDir, net))) {
      if (f !== 'lock' && !f.startsWith('last_reserved_ip')) out.push(`${net}/${f}`);
    }
  }
  return out;
}

export async function natRules(): Promise<string> {
  return (await execFileAsync('iptables', ['-t', 'nat', '-S'])).stdout;
}

export async function ping(ip: string): Promise<void> {
  await execFileAsync('ping', ['-c1', '-W2', ip], { timeout: 10_000 });
}

/** The netns inode a path refers to (to tell two pinned namespaces apart). */
export function netnsInode(file: string): number {
  return fs.statSync(file).ino;
}
