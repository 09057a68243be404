// CheckpointContainer (S17). S17 allows Created, Running or Paused; sandlot has no paused
// state, so Created or Running (anything else: FAILED_PRECONDITION naming the state).
//
// runc: through `runc checkpoint` (CRIU). CRIU must work on the node: the daemon runs
// `criu check` once at start (bounded in time) and, when it fails, every CheckpointContainer
// of a known, checkpointable container answers UNIMPLEMENTED with what the probe printed.
// (CRIU 3.17 of Debian fails here: "vdso: Unexpected rt vDSO area bounds", "Failed to fill
// self vdso symtable", see ARCHITECTURE.md.) When the probe passes: `runc checkpoint
// --image-path <tmp>/checkpoint --leave-running` and a plain tar at `location` holding
// checkpoint/ (the CRIU image files), config.json (the container's OCI spec) and
// sandlot-checkpoint.json (the CRI record). That is sandlot's own layout, not containerd's
// or CRI-O's checkpoint archive, and sandlot has no restore yet.
//
// runsc: UNIMPLEMENTED, for the reasons runscCheckpointRefusal() gives (measured by hand
// with runsc 0.0~20221219 and the pod layout sandlot uses: a root container = the pod's
// infra, each app container a subcontainer of that sandbox).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage, UnimplementedError, wrapError } from '../../errors.js';
import { resolveBinary, runCommand, type CommandRunner } from '../../oci/command.js';
import { runtimeFeatures, type RuntimeDriver } from '../../oci/runtime.js';
import { RunscRuntime } from '../../oci/runtime-runsc.js';
import { requireState, type ContainerRecord } from './container.js';

/** How long `criu check` may take at start. */
export const CRIU_PROBE_TIMEOUT_MS = 15_000;
/** runc checkpoint's bound when the request gives no timeout. */
export const CHECKPOINT_DEFAULT_TIMEOUT_MS = 300_000;

export interface CriuProbe {
  ok: boolean;
  /** What `criu check` printed (or why it could not run), trimmed. */
  output: string;
}

/** `criu check`: ok when it exits 0 ("Looks good."). */
export async function probeCriu(options: { binary?: string; timeoutMs?: number; run?: CommandRunner } = {}): Promise<CriuProbe> {
  const bin = resolveBinary(options.binary ?? 'criu');
  if (bin === undefined) return { ok: false, output: `"${options.binary ?? 'criu'}" not found on PATH` };
  const run = options.run ?? runCommand;
  try {
    const { stdout, stderr } = await run(bin, ['check'], { timeoutMs: options.timeoutMs ?? CRIU_PROBE_TIMEOUT_MS });
    return { ok: true, output: `${stdout}${stderr}`.trim() };
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string };
    const said = `${err.stderr ?? ''}${err.stdout ?? ''}`.trim();
    return { ok: false, output: said !== '' ? said : errorMessage(e) };
  }
}

/**
 * Why a container of a runsc pod cannot be checkpointed, by the handler's network mode.
 * Measured with runsc 0.0~20221219 (`runsc checkpoint`/`restore` by hand):
 * - host (sandlot's default here: that runsc's netstack refuses a pod netns on this
 *   kernel, as its root-netns test is "/proc/sys/net/core/rmem_default exists", which
 *   kernel 6.18 has in every netns): `runsc checkpoint` of any container fails at once,
 *   the pod keeps running: "checkpoint not supported when using hostinet"
 *   (runsc/boot/loader.go, Loader.save; gvisor.dev/issues/6243).
 * - sandbox (netstack; tried with --network=none): the checkpoint saves the whole sandbox
 *   and stops it; a one-container sandbox restores (a counter went on 4 → 5, 6, 7; also
 *   with --network=sandbox in a netns when runsc ran with /proc/sys/net hidden), but a
 *   sandbox of a root container and one subcontainer does not: `runsc restore` of the root
 *   fails "cannot allocate memory". Restore maps each saved gofer filesystem to a gofer
 *   connection by its mount point only ("/" for every container's root), so the app's
 *   root is re-attached to the infra container's gofer, whose connection then refuses a
 *   third lisafs channel ("channel creation failed because server hit max channels
 *   limit", ENOMEM; maxChannels = GOMAXPROCS clamped to 2..4, 2 on these 2-CPU machines;
 *   with more CPUs the limit may not trip, but the app's root would then be served from
 *   the infra's rootfs: not measurable here). Same with
 *   --file-access=shared, --overlay2=root:memory, --lisafs=false (a no-op there) and
 *   GOMAXPROCS=4. `--leave-running` re-creates the container in the stopped sandbox
 *   ("connection refused"), and `runsc restore` of a subcontainer into a running sandbox
 *   kills it.
 */
export function runscCheckpointRefusal(network: 'host' | 'sandbox'): string {
  const restore =
    'a runsc checkpoint saves the whole pod sandbox, and runsc (0.0~20221219, measured) cannot restore a sandbox of more than one container ' +
    "(the pod infra container and its app containers): its restore re-attaches every container's root filesystem to the infra container's gofer, " +
    'which refuses the extra channels ("max channels limit": "cannot allocate memory")';
  if (network === 'host') {
    return `runsc refuses to checkpoint a sandbox on host networking ("checkpoint not supported when using hostinet"), which this handler uses (network: auto/host); besides, ${restore}`;
  }
  return `${restore}, so checkpointing would stop the pod without a way back`;
}

/** One line of the probe's output for messages. */
export function probeSummary(p: CriuProbe): string {
  return p.output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join('; ');
}

export interface CheckpointContainers {
  status(idOrPrefix: string): Promise<ContainerRecord>;
}

export interface ContainerCheckpointerOptions {
  containers: CheckpointContainers;
  driver: (handler: string) => RuntimeDriver;
  probe: CriuProbe;
  log: Logger;
  run?: CommandRunner;
}

export class ContainerCheckpointer {
  private readonly opts: ContainerCheckpointerOptions;
  private readonly run: CommandRunner;

  constructor(options: ContainerCheckpointerOptions) {
    this.opts = options;
    this.run = options.run ?? runCommand;
  }

  /** NotFound for an unknown container; S4/S17: created or running; Unimplemented without a working CRIU. */
  async checkpoint(idOrPrefix: string, location: string, timeoutMs: number): Promise<void> {
    const rec = await this.opts.containers.status(idOrPrefix);
    requireState(rec, 'checkpoint', 'created', 'running');
    const action = `checkpointing container "${rec.id}"`;
    if (!runtimeFeatures(rec.runtimeType).containerCheckpoint) {
      const driver = this.opts.driver(rec.runtimeHandler);
      throw new UnimplementedError(`${action}: ${runscCheckpointRefusal(driver instanceof RunscRuntime ? driver.network() : 'host')}`);
    }
    if (!this.opts.probe.ok) {
      throw new UnimplementedError(
        `${action}: CRIU does not work on this node ("criu check" failed at daemon start: ${probeSummary(this.opts.probe)}), so runc checkpoint cannot either`,
      );
    }
    const driver = this.opts.driver(rec.runtimeHandler);
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sandlot-checkpoint-'));
    const tmp = `${location}.tmp-${process.pid}`;
    try {
      const images = path.join(work, 'checkpoint');
      await fs.mkdir(images, { mode: 0o700 });
      await driver.checkpoint(rec.id, { imagePath: images, workPath: work, timeoutMs });
      await fs.copyFile(rec.paths.spec, path.join(work, 'config.json'));
      await fs.writeFile(path.join(work, 'sandlot-checkpoint.json'), JSON.stringify({ version: 1, container: rec }, null, 1));
      await fs.mkdir(path.dirname(location), { recursive: true });
      await this.run('tar', ['-C', work, '-cf', tmp, 'checkpoint', 'config.json', 'sandlot-checkpoint.json'], { timeoutMs });
      await fs.rename(tmp, location);
      this.opts.log.info({ containerId: rec.id, location }, 'container checkpointed');
    } catch (e) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw wrapError(action, e);
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  }
}
