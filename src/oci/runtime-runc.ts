// The runtime of a runc-compatible handler (type `oci`: runc, crun, youki): the
// container is a host process tree, so exec's PID is a host PID, its tree is killed
// from /proc, resources update in place, stats come from the container's cgroup, and
// a checkpoint is `<runtime> checkpoint` (CRIU).
import type { RuntimeType } from '../config/types.js';
import { CliRuntime, STATE_TIMEOUT_MS } from './runtime-cli.js';
import { killHostTree, type ExecFiles } from './exec.js';
import { runtimeFeatures, type CheckpointRequest, type PortForwardPath, type RuntimeFeatures, type RuntimeStats } from './runtime.js';

export class RuncRuntime extends CliRuntime {
  readonly type: RuntimeType = 'oci';
  readonly features: RuntimeFeatures = runtimeFeatures('oci');
  readonly execPidOnHost = true;

  get portForward(): PortForwardPath {
    return this.config.port_forward_relay ? 'relay' : 'netns-dial';
  }

  protected typeArgs(): string[] {
    return [];
  }

  protected probeDebugArgs(): string[] {
    return [];
  }

  /** runc writes the exec'd process's host PID to --pid-file. */
  execArgs(containerId: string, files: ExecFiles): string[] {
    return ['exec', '--process', files.process, '--pid-file', files.pid, containerId];
  }

  /**
   * SIGKILL to `runc exec` leaves the process running (measured); runc exec is its
   * subreaper, so while runc exec lives the PID is the process (or its zombie).
   */
  killExecTree(_containerId: string, pid: number): Promise<void> {
    return killHostTree(pid);
  }

  /** Updates the cgroup resources of a running container (OCI LinuxResources JSON). */
  async update(id: string, resources: Record<string, unknown>): Promise<void> {
    await this.cli(`updating container "${id}"`, ['update', '--resources', '-', id], STATE_TIMEOUT_MS, {
      input: JSON.stringify(resources),
    });
  }

  async checkpoint(id: string, r: CheckpointRequest): Promise<void> {
    await this.cli(
      `checkpointing container "${id}"`,
      ['checkpoint', '--image-path', r.imagePath, '--work-path', r.workPath, '--leave-running', id],
      r.timeoutMs,
    );
  }

  /** The container's cgroup is the source (features.containerStats). */
  stats(): Promise<RuntimeStats | undefined> {
    return Promise.resolve(undefined);
  }
}
