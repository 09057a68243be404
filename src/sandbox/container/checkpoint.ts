// CheckpointContainer (S17) through `runc checkpoint` (CRIU). CRIU must work on the node:
// the daemon runs `criu check` once at start (bounded in time) and, when it fails, every
// CheckpointContainer of a known, checkpointable container answers UNIMPLEMENTED with
// what the probe printed. (CRIU 3.17 of Debian fails here: "vdso: Failed to fill self
// vdso symtable", see ARCHITECTURE.md.)
//
// When the probe passes: `runc checkpoint --image-path <tmp>/checkpoint --leave-running`
// and a plain tar at `location` holding checkpoint/ (the CRIU image files), config.json
// (the container's OCI spec) and sandlot-checkpoint.json (the CRI record). That is
// sandlot's own layout, not containerd's or CRI-O's checkpoint archive, and sandlot has
// no restore yet.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage, UnimplementedError, wrapError } from '../../errors.js';
import { resolveBinary, runCommand, type CommandRunner } from '../../oci/command.js';
import { runtimeFeatures, type RuntimeDriver } from '../../oci/runtime.js';
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
      // Measured with runsc 0.0~20221219: `runsc checkpoint` saves the whole sandbox, and its
      // `--leave-running` restores it at once; a sandbox of two containers (the pod's root and
      // one app container) fails that restore in the gofer ("max channels limit", reported as
      // "cannot allocate memory") and is left stopped. Only one-container sandboxes round-trip.
      throw new UnimplementedError(
        `${action}: the installed runsc cannot checkpoint a container and keep its pod running (it checkpoints whole sandboxes, and restoring a sandbox of more than one container fails)`,
      );
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
