// What an app container's spec gets beyond its CRI config, from files on the node: the
// edits of the CDI devices it asks for (S20; cdi-*.ts) and the OCI hooks of the
// configured hook directories whose `when` matches it (S6; oci-hooks.ts), CDI's hooks
// first. Called once by buildContainerSpec when the rest of the spec is built; which
// stages the runtime then runs and which sandlot runs is hook-stages.ts's business.
import type { Logger } from 'pino';
import type { SandlotConfig } from '../config/types.js';
import { UnimplementedError, wrapError } from '../errors.js';
import { applyCdiEdits } from './cdi-edits.js';
import { CdiRegistry } from './cdi-registry.js';
import { requestedCdiDevices } from './cdi-spec.js';
import type { ContainerSpecExtensions, ContainerSpecInput } from './container-config.js';
import { HooksDirs } from './hooks-dirs.js';
import { matchingHooks, mergeHooks } from './oci-hooks.js';
import { runtimeFeatures } from './runtime.js';
import type { OciSpec } from './spec-common.js';

export type { ContainerSpecExtensions } from './container-config.js';

/** The daemon's extensions, from `hooks_dirs` and `cdi_spec_dirs`. */
export function containerSpecExtensions(config: Pick<SandlotConfig, 'hooks_dirs' | 'cdi_spec_dirs'>, log: Logger): ContainerSpecExtensions {
  return { hooks: new HooksDirs({ dirs: config.hooks_dirs, log }), cdi: new CdiRegistry({ dirs: config.cdi_spec_dirs, log }) };
}

/** CDI edits, then the matching hooks, applied to `spec` (in place). */
export async function applyContainerExtensions(spec: OciSpec, input: ContainerSpecInput): Promise<void> {
  const { config } = input;
  const requested = requestedCdiDevices(config.CDI_devices ?? [], config.annotations ?? {});
  const ext = input.extensions;
  if (requested.length > 0) {
    if (ext === undefined) {
      throw new UnimplementedError(`CDI_devices: this caller has no CDI registry to resolve ${requested.map((r) => JSON.stringify(r.name)).join(', ')}`);
    }
    const resolved = await ext.cdi.resolve(requested);
    try {
      await applyCdiEdits(spec, resolved, input.lookups, {
        hostDeviceNodes: runtimeFeatures(input.pod.runtimeType).hostDeviceNodes,
        ...(input.handler !== undefined ? { handler: input.handler } : {}),
      });
    } catch (e) {
      throw wrapError('setting up CDI devices', e);
    }
  }
  if (ext === undefined) return;
  const hooks = matchingHooks(await ext.hooks.definitions(), {
    annotations: spec.annotations,
    command: spec.process.args[0],
    hasBindMounts: (config.mounts ?? []).length > 0,
  });
  const merged = mergeHooks(spec.hooks ?? {}, hooks);
  if (Object.keys(merged).length > 0) spec.hooks = merged;
}
