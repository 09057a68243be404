// The configured runtime handlers (RuntimeClass names): one RuntimeDriver each (made from
// config.runtimes unless given), probed once at start by running catatonit in a
// throwaway container, one handler at a time. What the CRI Status reports and what
// RunPodSandbox asks before it makes anything ("is this handler ready?").
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SandlotConfig } from '../../config/types.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';
import { resolveBinary } from '../../oci/command.js';
import { probeContainerId, type ProbeResult, type RuntimeDriver } from '../../oci/runtime.js';
import { createRuntime } from '../../oci/runtimes.js';
import type { CgroupManager } from '../resources/cgroups.js';
import { runscOverlayConfig } from '../storage/pod-mounts-filestores.js';

export interface RuntimeHandlerStatus {
  name: string;
  ready: boolean;
  reason: string;
  message: string;
}

export interface RuntimeHandlersOptions {
  config: SandlotConfig;
  log: Logger;
  cgroups: CgroupManager;
  /** Drivers by handler name; made from config.runtimes when absent. */
  runtimes?: Map<string, RuntimeDriver>;
}

export class RuntimeHandlers {
  /** Drivers by handler name. */
  readonly drivers: ReadonlyMap<string, RuntimeDriver>;
  private readonly probes = new Map<string, ProbeResult>();

  constructor(private readonly options: RuntimeHandlersOptions) {
    const { config, log } = options;
    this.drivers =
      options.runtimes ??
      new Map(
        Object.entries(config.runtimes).map(([name, rc]) => [
          name,
          // S15: the handler's overlay setting as this runsc spells --overlay2 (a bad one stops the start).
          createRuntime({ name, config: runscOverlayConfig(rc), stateDir: config.state_dir, log }),
        ]),
      );
  }

  /** Probes every handler: a catatonit container created and deleted under its runtime. */
  async probeAll(): Promise<void> {
    const { config, log, cgroups } = this.options;
    const catatonit = resolveBinary(config.catatonit_path);
    const workDir = path.join(config.state_dir, 'probe');
    // One at a time: runsc and runc creates compete for the 2 cores otherwise.
    for (const [name, driver] of this.drivers) {
      let result: ProbeResult;
      if (catatonit === undefined) {
        result = { ready: false, reason: 'CatatonitNotFound', message: `catatonit binary "${config.catatonit_path}" not found` };
      } else {
        const cgroupsPath = path.join(config.cgroup_root, config.default_cgroup_parent, probeContainerId(name));
        try {
          result = await driver.probe({ workDir, cgroupsPath, catatonitPath: catatonit });
        } finally {
          await cgroups.remove(cgroupsPath).catch((e: unknown) => log.warn({ err: e }, 'removing probe cgroup'));
        }
      }
      this.probes.set(name, result);
      if (result.ready) log.info({ handler: name }, 'runtime handler ready');
      else log.warn({ handler: name, reason: result.reason, detail: result.message }, 'runtime handler not ready');
    }
    await fs.rm(workDir, { recursive: true, force: true });
  }

  /** Every configured handler with its probe result (the CRI Status runtime_handlers). */
  statuses(): RuntimeHandlerStatus[] {
    return [...this.drivers.keys()].map((name) => {
      const p = this.probes.get(name) ?? { ready: false, reason: 'NotProbed', message: 'the handler has not been probed yet' };
      return { name, ready: p.ready, reason: p.reason, message: p.message };
    });
  }

  /** The driver for a handler name ("" = default); InvalidArgument listing the configured ones. */
  driver(handler: string): RuntimeDriver {
    const name = handler === '' ? this.options.config.default_runtime : handler;
    const d = this.drivers.get(name);
    if (!d) {
      throw new InvalidArgumentError(`runtime_handler "${handler}" is not configured; configured handlers: ${[...this.drivers.keys()].join(', ')}`);
    }
    return d;
  }

  /** The driver, if its probe found it ready; FailedPrecondition with the probe's reason otherwise. */
  readyDriver(handler: string): RuntimeDriver {
    const d = this.driver(handler);
    const p = this.probes.get(d.name);
    if (!p?.ready) {
      throw new FailedPreconditionError(`runtime handler "${d.name}" is not ready: ${p ? `${p.reason}: ${p.message}` : 'not probed yet'}`);
    }
    return d;
  }
}
