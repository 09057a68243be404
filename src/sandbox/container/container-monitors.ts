// The monitors of app containers, one per runtime handler, made when first asked for:
// conmon over the handler's CLI, or, where the handler's driver asks for it
// (`features.subcontainerMonitor`), conmon over the runsc subcontainer shim; each wrapped
// so sandlot runs the S6 poststart/poststop hooks around it (oci/hook-stages.ts). Also where
// each container's runtime files are (its state dir, conmon's exit file and sockets).
import path from 'node:path';
import type { Logger } from 'pino';
import type { SandlotConfig } from '../../config/types.js';
import { Conmon, conmonFiles } from '../../oci/conmon.js';
import { withHookStages } from '../../oci/hook-stages.js';
import type { RuntimeDriver } from '../../oci/runtime.js';
import { RunscShim } from '../../oci/runsc-subcontainer.js';
import { conmonPlacement, type CgroupManager } from '../resources/cgroups.js';
import type { ContainerPaths } from './container.js';
import { ConmonMonitor, type ContainerMonitor } from './container-monitor.js';
import { RunscMonitor } from './container-monitor-runsc.js';

export interface ContainerMonitorsOptions {
  config: Pick<SandlotConfig, 'state_dir' | 'conmon_path' | 'cgroup_root' | 'conmon_cgroup'>;
  cgroups: CgroupManager;
  log: Logger;
  /** The driver of a handler; throws for one not configured. */
  driver: (handler: string) => RuntimeDriver;
  conmon?: Conmon;
  /** A monitor for a handler's containers; undefined → the default for its driver. */
  monitorFor?: (driver: RuntimeDriver) => ContainerMonitor | undefined;
}

export class ContainerMonitors {
  /** conmon's exit files, one per container (the truth of an exit, container-exits.ts). */
  readonly exitDir: string;
  /** The short symlinks to conmon's attach sockets. */
  readonly socketDir: string;
  private readonly byHandler = new Map<string, ContainerMonitor>();
  private conmonInstance: Conmon | undefined;

  constructor(private readonly options: ContainerMonitorsOptions) {
    this.exitDir = path.join(options.config.state_dir, 'container-exits');
    this.socketDir = path.join(options.config.state_dir, 'attach');
  }

  /** The monitor of `handler`'s containers; throws for a handler no longer configured. */
  of(handler: string): ContainerMonitor {
    const cached = this.byHandler.get(handler);
    if (cached) return cached;
    const driver = this.options.driver(handler);
    let m = this.options.monitorFor?.(driver);
    if (m === undefined) {
      m =
        driver.features.subcontainerMonitor === 'runsc-shim'
          ? new RunscMonitor({ conmon: this.conmon, driver, shim: new RunscShim({ runtime: driver }), pathsOf: (id) => this.paths(id) })
          : new ConmonMonitor({ conmon: this.conmon, driver });
    }
    // S6: poststart and poststop run by sandlot around the runtime's start and delete.
    m = withHookStages(m, { features: driver.features, handler, bundleOf: (id) => this.paths(id).bundle, log: this.options.log });
    this.byHandler.set(handler, m);
    return m;
  }

  /** Where container `id`'s runtime files are. */
  paths(id: string): ContainerPaths {
    const dir = path.join(this.options.config.state_dir, 'containers', id);
    const bundle = path.join(dir, 'bundle');
    const files = conmonFiles(bundle, this.socketDir, id);
    return {
      dir,
      bundle,
      spec: path.join(bundle, 'config.json'),
      exitDir: this.exitDir,
      exitFile: path.join(this.exitDir, id),
      pidFile: path.join(dir, 'container.pid'),
      conmonPidFile: path.join(dir, 'conmon.pid'),
      conmonLog: path.join(dir, 'conmon.log'),
      persistDir: path.join(dir, 'persist'),
      socketDir: this.socketDir,
      attachSocket: files.attach,
      ctlFifo: files.ctl,
    };
  }

  /** Made when first needed: a missing conmon binary fails the call at that step. */
  private get conmon(): Conmon {
    const { config, cgroups } = this.options;
    this.conmonInstance ??= this.options.conmon ?? new Conmon({ path: config.conmon_path, ...conmonPlacement(config, cgroups) });
    return this.conmonInstance;
  }
}
