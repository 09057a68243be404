// The installer DaemonSet's entrypoint (the pattern of gVisor's node installer,
// kata-deploy and the NVIDIA container toolkit; docs/node-install.md). Run in a
// privileged pod with hostPID and the host's / at /host, by whatever runtime the node
// has (containerd, CRI-O, or sandlot itself once the kubelet uses it):
//   install:   lay the bundle, unit and config under /host (host-install.ts); when the
//              host runs systemd, `nsenter -t 1 -m -- systemctl daemon-reload / enable /
//              restart sandlot.service` in the host's mount namespace; wait until the
//              host's socket answers CRI Status with RuntimeReady; label the node
//              (node-labeller.ts); then stay (a DaemonSet pod that exits is restarted).
//   uninstall: remove the label, disable the unit, remove bundle and unit (config and
//              state stay unless --purge); then stay.
// A pod's SIGTERM (rolling update, node drain) changes nothing on the host: it is not an
// uninstall, and the next pod's install is idempotent. `--once` exits instead of staying.
//   node dist/src/install/node-installer.js install|uninstall [--root /host] [--from DIR]
//        [--node NAME] [--no-start] [--purge] [--once] [--wait-ms N]
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CriClient } from '../cli/client.js';
import { errorMessage, InvalidArgumentError, UnavailableError } from '../errors.js';
import { install, uninstall, UNIT_NAME, type InstallResult } from './host-install.js';
import { clientNodeApi, labelNode, unlabelNode, type NodeApi } from './node-labeller.js';

const execFileAsync = promisify(execFile);

/** The host's socket, as the host config the installer writes names it. */
export const HOST_SOCKET = '/run/sandlot/sandlot.sock';
export const STATUS_WAIT_MS = 120_000;
const STATUS_POLL_MS = 500;

export interface NodeInstallerOptions {
  verb: 'install' | 'uninstall';
  /** Where the host's / is mounted. */
  root: string;
  from?: string;
  /** The node to label (the pod's spec.nodeName through the downward API); none: no label. */
  node?: string;
  /** Restart the unit through the host's systemd (only when the host runs it). */
  start: boolean;
  purge: boolean;
  statusWaitMs: number;
}

/** What the installer does outside its own files; faked in the unit tests. */
export interface InstallerDeps {
  /** systemctl in the host's mount namespace. */
  hostSystemctl(args: string[]): Promise<void>;
  /** Whether the CRI socket answers Status with RuntimeReady. */
  runtimeReady(socket: string): Promise<boolean>;
  nodeApi(): NodeApi;
  log(line: string): void;
}

export const realDeps: InstallerDeps = {
  async hostSystemctl(args) {
    await execFileAsync('nsenter', ['-t', '1', '-m', '--', 'systemctl', ...args], { timeout: 120_000 });
  },
  async runtimeReady(socket) {
    const c = new CriClient(socket);
    try {
      const r = await c.runtimeCall('Status', {}, { timeoutMs: 5_000 });
      const status = r.status as { conditions?: Array<{ type: string; status: boolean }> } | undefined;
      const conds = status?.conditions ?? [];
      return conds.some((x) => x.type === 'RuntimeReady' && x.status);
    } catch {
      return false;
    } finally {
      c.close();
    }
  },
  nodeApi: () => clientNodeApi(),
  log: (line) => process.stdout.write(`${line}\n`),
};

/** Whether the host mounted at `root` runs systemd (as systemd itself tests it). */
export function hostRunsSystemd(root: string): boolean {
  return fs.existsSync(path.join(root, 'run/systemd/system'));
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): NodeInstallerOptions & { once: boolean } {
  const [verb, ...rest] = argv;
  if (verb !== 'install' && verb !== 'uninstall') throw new InvalidArgumentError(`verb "${verb ?? ''}": want install or uninstall`);
  const value = (name: string): string | undefined => {
    const i = rest.indexOf(name);
    if (i < 0) return undefined;
    const v = rest[i + 1];
    if (v === undefined || v.startsWith('--')) throw new InvalidArgumentError(`${name} needs a value`);
    return v;
  };
  const known = new Set(['--root', '--from', '--node', '--wait-ms', '--no-start', '--purge', '--once']);
  for (const a of rest) if (a.startsWith('--') && !known.has(a)) throw new InvalidArgumentError(`unknown flag "${a}"`);
  const root = value('--root') ?? '/host';
  if (!path.isAbsolute(root)) throw new InvalidArgumentError(`--root "${root}" is not an absolute path`);
  const wait = value('--wait-ms');
  const statusWaitMs = wait === undefined ? STATUS_WAIT_MS : Number(wait);
  if (!Number.isInteger(statusWaitMs) || statusWaitMs <= 0) throw new InvalidArgumentError(`--wait-ms "${wait}" is not a positive integer`);
  const from = value('--from');
  const node = value('--node') ?? (env.NODE_NAME || undefined);
  return {
    verb,
    root,
    ...(from ? { from } : {}),
    ...(node ? { node } : {}),
    start: !rest.includes('--no-start'),
    purge: rest.includes('--purge'),
    once: rest.includes('--once'),
    statusWaitMs,
  };
}

async function waitRuntimeReady(deps: InstallerDeps, socket: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await deps.runtimeReady(socket))) {
    if (Date.now() > end)
      throw new UnavailableError(`waiting for "${socket}": no RuntimeReady Status answer after ${ms} ms (journalctl -u ${UNIT_NAME} on the node)`);
    await sleep(STATUS_POLL_MS);
  }
}

/** One installer run (install or uninstall); what it did goes to deps.log. */
export async function runNodeInstaller(o: NodeInstallerOptions, deps: InstallerDeps = realDeps): Promise<void> {
  const systemd = o.start && hostRunsSystemd(o.root);
  if (o.verb === 'install') {
    const r: InstallResult = install({ root: o.root, ...(o.from ? { from: o.from } : {}) });
    deps.log(`sandlot ${r.version}: ${r.action} in ${r.release}`);
    if (systemd) {
      for (const args of [['daemon-reload'], ['enable', UNIT_NAME], ['restart', UNIT_NAME]]) await deps.hostSystemctl(args);
      const socket = path.join(o.root, HOST_SOCKET);
      await waitRuntimeReady(deps, socket, o.statusWaitMs);
      deps.log(`${UNIT_NAME} restarted; ${HOST_SOCKET} answers Status with RuntimeReady`);
    } else {
      deps.log(`the host under ${o.root} does not run systemd (or --no-start): ${UNIT_NAME} is not started`);
    }
    if (o.node) {
      const changed = await labelNode(deps.nodeApi(), o.node, r.version);
      deps.log(`node "${o.node}": ${changed ? 'labelled' : 'already labelled'} sandlot.dev/runtime=${r.version}`);
    }
    return;
  }
  if (o.node) {
    const had = await unlabelNode(deps.nodeApi(), o.node);
    deps.log(`node "${o.node}": ${had ? 'label sandlot.dev/runtime removed' : 'had no sandlot.dev/runtime label'}`);
  }
  if (systemd) {
    try {
      await deps.hostSystemctl(['disable', '--now', UNIT_NAME]);
    } catch (e) {
      deps.log(`disabling ${UNIT_NAME}: ${errorMessage(e)} (not loaded?)`);
    }
  }
  const removed = uninstall({ root: o.root, ...(o.purge ? { purge: true } : {}) });
  if (systemd) await deps.hostSystemctl(['daemon-reload']);
  deps.log(`removed: ${removed.join(', ') || 'nothing'}`);
}

async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  await runNodeInstaller(o);
  if (o.once) return 0;
  realDeps.log('done; staying until the pod is stopped');
  // Signal listeners alone do not keep Node's event loop alive; a timer does.
  await new Promise<void>((resolve) => {
    const keep = setInterval(() => undefined, 1 << 30);
    const stop = (): void => {
      clearInterval(keep);
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}

// Real paths: the bundle is run through its `current` symlink.
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(new URL(import.meta.url).pathname)) {
  // exitCode, not exit(): stdout on a pipe (conmon's) is written asynchronously.
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`sandlot-node-installer: ${errorMessage(e)}\n`);
      process.exitCode = 1;
    },
  );
}
