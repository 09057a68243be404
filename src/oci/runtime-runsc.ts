// The runtime of a gVisor handler (type `runsc`). Measured with the Debian runsc
// (0.0~20221219, ARCHITECTURE.md):
// - it refuses its own netstack here ("cannot run with network enabled in root network
//   namespace") but runs with --network=host inside the pod netns; and every runsc
//   invocation must repeat the same global flags (`start` re-reads them: a `start`
//   without --network=host tries the netstack again);
// - an exec'd process lives in the sandbox and has no host PID: its internal PID goes
//   to --internal-pid-file (--pid-file names `runsc exec` itself), and it is killed
//   with `runsc kill --pid`, its tree read from `runsc ps`;
// - there is no `update` command, and `checkpoint` takes whole sandboxes;
// - per-container figures come from `runsc events --stats` (runsc-stats.ts);
// - the capability it refuses in a create it names only in its debug log.
import { spawn } from 'node:child_process';
import type { RuntimeType } from '../config/types.js';
import { UnimplementedError } from '../errors.js';
import { commandSpan } from './command-span.js';
import { treeOf, type ExecFiles } from './exec.js';
import { CliRuntime } from './runtime-cli.js';
import { runtimeFeatures, type PortForwardPath, type RuntimeFeatures, type RuntimeStats } from './runtime.js';
import { runscEventsStats } from './runsc-stats.js';

export class RunscRuntime extends CliRuntime {
  readonly type: RuntimeType = 'runsc';
  readonly features: RuntimeFeatures = runtimeFeatures('runsc');
  /** The process lives in the sandbox: its PID is the sandbox kernel's. */
  readonly execPidOnHost = false;

  /**
   * With its own netstack (network `sandbox`) the pod's TCP/IP stack is inside the
   * sandbox, where a dial from the host side of the pod netns does not reach.
   */
  get portForward(): PortForwardPath {
    return this.config.port_forward_relay || this.network() === 'sandbox' ? 'relay' : 'netns-dial';
  }

  /** The network mode: `auto` means host here, where the netstack fails (see top). */
  network(): 'sandbox' | 'host' {
    return this.config.network === 'sandbox' ? 'sandbox' : 'host';
  }

  protected typeArgs(): string[] {
    const args = [`--network=${this.network()}`];
    if (this.config.overlay !== '') args.push(`--overlay2=${this.config.overlay}`);
    // Without it runsc ignores linux.seccomp of every spec (RuntimeDefault and Localhost
    // profiles then block nothing: `Seccomp: 0`); with it the sentry applies the filter
    // to the container's processes inside the sandbox.
    args.push('--oci-seccomp');
    return args;
  }

  protected probeDebugArgs(debugDir: string): string[] {
    // The root container's sandbox fails "invalid capability" before it reports back.
    return ['--debug', `--debug-log=${debugDir}/`];
  }

  execArgs(containerId: string, files: ExecFiles): string[] {
    return ['exec', '--process', files.process, '--internal-pid-file', files.pid, containerId];
  }

  /** The tree from `runsc ps` (sandbox PIDs), each killed with `runsc kill --pid`, descendants first. */
  async killExecTree(containerId: string, root: number): Promise<void> {
    const bin = this.binaryPath();
    const globals = this.globalArgs();
    // The table has the parents (`--format json` lists bare PIDs): UID PID PPID C STIME TIME CMD.
    const listing = await runOutput(bin, [...globals, 'ps', containerId]);
    const parents = new Map<number, number>();
    for (const line of listing.split('\n').slice(1)) {
      const [, pid, ppid] = line.trim().split(/\s+/);
      if (pid !== undefined && ppid !== undefined && /^\d+$/.test(pid) && /^\d+$/.test(ppid)) parents.set(Number(pid), Number(ppid));
    }
    const tree = treeOf(root, parents);
    for (const pid of tree.reverse()) await runQuiet(bin, [...globals, 'kill', '--pid', String(pid), containerId, 'KILL']);
  }

  update(id: string): Promise<void> {
    return Promise.reject(new UnimplementedError(`updating resources of container "${id}": runsc has no update command`));
  }

  checkpoint(id: string): Promise<void> {
    return Promise.reject(
      new UnimplementedError(`checkpointing container "${id}": checkpoints of runsc containers are not supported (runsc checkpoints whole sandboxes)`),
    );
  }

  stats(id: string): Promise<RuntimeStats | undefined> {
    return runscEventsStats(this, id, this.run);
  }
}

/** The stdout of a command; empty when it cannot run (best effort: a kill path). */
function runOutput(bin: string, args: string[]): Promise<string> {
  return commandSpan(bin, args, () => spawnOutput(bin, args));
}

function spawnOutput(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(bin, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('error', () => resolve(''));
    c.once('close', () => resolve(out));
  });
}

/** Runs a command to its end, ignoring how it went (best effort: a kill path). */
function runQuiet(bin: string, args: string[]): Promise<void> {
  return commandSpan(bin, args, () => spawnQuiet(bin, args));
}

function spawnQuiet(bin: string, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const c = spawn(bin, args, { stdio: 'ignore' });
    c.once('error', () => resolve());
    c.once('exit', () => resolve());
  });
}
