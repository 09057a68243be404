// The monitor of runsc subcontainers: conmon runs the runsc shim (src/oci/runsc-shim.sh)
// as its runtime, so the CRI log, the exit file and surviving a daemon restart hold as
// for runc. What differs: start goes through the shim's proxy (it owns `runsc start`
// and `runsc wait`), a created-but-never-started subcontainer cannot be signalled by
// runsc (its proxy is cancelled instead), and an OOM kill is the sandbox's: runsc
// reports 137 with the sandbox gone, and the pod cgroup counts the kill.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Conmon } from '../../oci/conmon.js';
import type { OciState, RuntimeDriver } from '../../oci/runtime.js';
import type { RunscShim } from '../../oci/runsc-subcontainer.js';
import type { LinuxResources } from '../../oci/spec-common.js';
import type { ContainerPaths } from './container.js';
import { OomKillReader } from './container-exits.js';
import { conmonOptions, type ContainerMonitor, type KillOptions, type MonitorCreated, type MonitorCreateRequest } from './container-monitor.js';

export interface RunscMonitorOptions {
  conmon: Conmon;
  driver: RuntimeDriver;
  shim: RunscShim;
  /** The container's files (the shim's state dir lives in paths.dir). */
  pathsOf(id: string): ContainerPaths;
}

const SIGKILL_EXIT = 137;

export class RunscMonitor implements ContainerMonitor {
  private readonly oomKills = new OomKillReader();

  constructor(private readonly options: RunscMonitorOptions) {}

  private shimDir(id: string): string {
    return path.join(this.options.pathsOf(id).dir, 'shim');
  }

  private async proxyPid(id: string): Promise<number | undefined> {
    try {
      const n = Number((await fs.readFile(this.options.pathsOf(id).pidFile, 'utf8')).trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  async create(req: MonitorCreateRequest): Promise<MonitorCreated> {
    const { driver, conmon, shim } = this.options;
    await driver.ensureRoot();
    const stateDir = this.shimDir(req.id);
    await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
    try {
      return await conmon.create({ ...conmonOptions(req, driver), ...shim.conmonRuntime(stateDir) });
    } catch (e) {
      // A proxy the shim forked before create failed would wait on its fifo forever.
      await shim.cancelStart({ id: req.id, stateDir }).catch(() => undefined);
      throw e;
    }
  }

  async start(id: string): Promise<void> {
    const pid = await this.proxyPid(id);
    await this.options.shim.triggerStart({ id, stateDir: this.shimDir(id), ...(pid !== undefined ? { proxyPid: pid } : {}) });
  }

  /** A subcontainer has no host PID: every signal goes through runsc (`init` is not used). */
  async kill(id: string, signal: string, options: KillOptions = {}): Promise<void> {
    const st = await this.options.driver.state(id).catch(() => undefined);
    if (st?.status === 'created') {
      // runsc cannot signal a created subcontainer: end its waiting proxy instead.
      const pid = await this.proxyPid(id);
      await this.options.shim.cancelStart({ id, stateDir: this.shimDir(id), ...(pid !== undefined ? { proxyPid: pid } : {}) });
      return;
    }
    await this.options.driver.kill(id, signal, options.all === true ? { all: true } : {});
  }

  async delete(id: string): Promise<void> {
    const pid = await this.proxyPid(id);
    await this.options.shim.cancelStart({ id, stateDir: this.shimDir(id), ...(pid !== undefined ? { proxyPid: pid } : {}) }).catch(() => false);
    await this.options.driver.delete(id, { force: true });
  }

  state(id: string): Promise<OciState | undefined> {
    return this.options.driver.state(id);
  }

  update(id: string, resources: LinuxResources): Promise<void> {
    return this.options.driver.update(id, resources as Record<string, unknown>);
  }

  /** 137 with the sandbox gone, and an OOM kill counted in the container's or the pod's cgroup. */
  async oomKilled(id: string, exitCode: number, cgroups: { container: string; pod: string }): Promise<boolean> {
    if ((await this.oomKills.kills(cgroups.container)) > 0) return true;
    if (exitCode !== SIGKILL_EXIT) return false;
    const reason = await this.options.shim.exitReason(this.shimDir(id)).catch(() => undefined);
    return reason !== undefined && reason.startsWith('sandbox-gone') && (await this.oomKills.kills(cgroups.pod)) > 0;
  }
}
