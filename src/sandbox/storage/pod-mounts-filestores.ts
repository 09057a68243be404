// Filestores of runsc pods (S15) applied to real pods: the plan of each container
// (filestore-plan.ts) from its pod's overlay setting, mounts and hints, and the
// lifecycle of the self filestore files where sandlot creates them.
//
// The installed runsc (Debian 0.0~20221219, `runsc flags`) knows only
// `--overlay2 {root|all}:{memory|<dir>}` and `none`: no `self` medium, and it creates no
// `.gvisor.filestore.*` file itself. So on this runsc a `self` setting is passed as
// `memory` (formatOverlayFlag) and sandlot creates no self file: a file nobody uses
// would only show up in the user's volume. With a runsc that knows `self`
// (RunscOverlayFeatures.self) sandlot creates them exclusively unless shared, removes a
// container's with the container and the shared ones with the pod, and removes
// leftovers of pods it no longer knows at recovery.
import fs from 'node:fs';
import type { Logger } from 'pino';
import { runtimeFeatures } from '../../oci/runtime.js';
import type { CriMount } from '../../oci/spec-container.js';
import { hintForMountSource, shouldShareMount, type MountHint } from './mount-hints.js';
import type { RuntimeHandlerConfig } from '../../config/types.js';
import {
  FilestoreManager,
  formatOverlayFlag,
  parseOverlaySetting,
  planFilestores,
  type FilestoreFs,
  type FilestorePlan,
  type RunscOverlayFeatures,
} from './filestore-plan.js';

/** What the installed runsc offers (see the top of this file). */
export const INSTALLED_RUNSC_OVERLAY: RunscOverlayFeatures = { self: false, dirEquals: false };

/** A runsc handler's config with `overlay` in the spelling its runsc takes ("" stays: runsc's default). */
export function runscOverlayConfig(rc: RuntimeHandlerConfig, features: RunscOverlayFeatures = INSTALLED_RUNSC_OVERLAY): RuntimeHandlerConfig {
  // Only a runtime with filestores (S15) has an overlay setting to spell.
  if (!runtimeFeatures(rc.type).filestores || rc.overlay === '') return rc;
  return { ...rc, overlay: formatOverlayFlag(parseOverlaySetting(rc.overlay), features) };
}

export interface ContainerFilestoreInput {
  podId: string;
  /** The handler's `overlay` setting (config runtimes.<name>.overlay). */
  overlay: string;
  hints: readonly MountHint[];
  rootfs: string;
  readonlyRootfs: boolean;
  mounts: readonly CriMount[];
  /** Whether a path is a directory (default: lstat). */
  isDirectory?: (p: string) => boolean;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** S15: the plan of one runsc container's root and bind mounts. */
export function containerFilestorePlan(input: ContainerFilestoreInput): FilestorePlan {
  const dir = input.isDirectory ?? isDir;
  return planFilestores({
    sandboxId: input.podId,
    overlay: parseOverlaySetting(input.overlay),
    root: { path: input.rootfs, readonly: input.readonlyRootfs },
    mounts: input.mounts.map((m) => {
      const hint = hintForMountSource(input.hints, m.host_path);
      return {
        source: m.host_path,
        destination: m.container_path,
        readonly: m.readonly === true,
        sourceIsDirectory: dir(m.host_path),
        hint: hint === undefined ? undefined : { shared: shouldShareMount(hint) },
      };
    }),
  });
}

export interface PodFilestoresOptions {
  log: Logger;
  features?: RunscOverlayFeatures;
  fs?: FilestoreFs;
}

/** The self filestore files of runsc pods, where sandlot creates them (S15). */
export class PodFilestores {
  readonly features: RunscOverlayFeatures;
  private readonly manager: FilestoreManager;

  constructor(options: PodFilestoresOptions) {
    this.features = options.features ?? INSTALLED_RUNSC_OVERLAY;
    this.manager = new FilestoreManager({ logger: options.log, ...(options.fs ? { fs: options.fs } : {}) });
  }

  /** At container create; returns the files made (none when the runsc has no `self`). */
  async create(podId: string, plan: FilestorePlan): Promise<string[]> {
    if (!this.features.self) return [];
    return this.manager.create(podId, plan);
  }

  /** S15, container destroy: its own self files go, those of shared mounts stay. */
  async removeForContainer(podId: string, plan: FilestorePlan): Promise<void> {
    if (!this.features.self) return;
    await this.manager.removeForContainer(podId, plan);
  }

  /** S15, root destroy: the shared ones of the pod's hints go too (missing is fine). */
  async removeForPod(podId: string, hints: readonly MountHint[]): Promise<void> {
    await this.manager.removeShared(
      podId,
      hints.filter(shouldShareMount).map((h) => h.source),
    );
  }

  /** Recovery: `.gvisor.filestore.<id>` files in `sources` of pods not in `known`. */
  async cleanupLeftovers(known: Iterable<string>, sources: Iterable<string>): Promise<string[]> {
    return this.manager.cleanupLeftovers(known, sources);
  }
}
