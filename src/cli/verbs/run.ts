// `sandlot run IMAGE [CMD…]`: a one-container pod through the daemon, its log on the
// terminal, the container's exit code as ours. Output always comes from the CRI log
// file (so nothing printed before we look is lost); with -i, stdin goes in through an
// Attach session that carries stdin only.
//
//   ImageStatus (PullImage if missing) → RunPodSandbox → CreateContainer → StartContainer
//   → follow <log_directory>/<name>/0.log until GetContainerEvents says it stopped → exit code
//   -d: print the container ID after StartContainer and leave it running.
//   Ctrl-C: StopPodSandbox (and RemovePodSandbox with --rm); exit 130.
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { CriClient } from '../client.js';
import { recordText } from '../cri-log.js';
import { followCriLog } from '../log-follow.js';
import { errorText } from '../lookup.js';
import { ContainerExitWatch } from '../exit-watch.js';
import { absoluteLogPath, DEFAULT_LOG_ROOT, parsePublish, parseVolume, planRun, type RunPlan } from '../run-config.js';
import { rawStdin, terminalIo } from '../terminal.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, SOCKET_OPTION, UsageError, withClient, type Verb, type VerbValues } from '../verb.js';
import { runRemoteCommand } from '../ws-channel-client.js';
import { containerStatus } from './container.js';
import { POD_STOP_TIMEOUT_MS } from './pod.js';

/** 128 + SIGINT, as a shell reports a command ended by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;
const RUN_POD_TIMEOUT_MS = 5 * 60_000;
const PULL_TIMEOUT_MS = 60 * 60_000;
const CREATE_TIMEOUT_MS = 5 * 60_000;

class Interrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

/** The image's ID, pulled first if the daemon does not have it. */
async function ensureImage(c: CriClient, ref: string): Promise<string> {
  const st = await c.imageCall('ImageStatus', { image: { image: ref } });
  if (st.image?.id) return String(st.image.id);
  process.stderr.write(`pulling image "${ref}"…\n`);
  await c.imageCall('PullImage', { image: { image: ref } }, { timeoutMs: PULL_TIMEOUT_MS });
  const again = await c.imageCall('ImageStatus', { image: { image: ref } });
  if (!again.image?.id) throw new Error(`pulling image "${ref}": the daemon does not list it after the pull`);
  return String(again.image.id);
}

async function cleanupPod(c: CriClient, podId: string, plan: RunPlan, remove: boolean): Promise<void> {
  const problems: string[] = [];
  await c.runtimeCall('StopPodSandbox', { pod_sandbox_id: podId }, { timeoutMs: POD_STOP_TIMEOUT_MS }).catch((e) => problems.push(`stopping: ${errorText(e)}`));
  if (remove) {
    await c
      .runtimeCall('RemovePodSandbox', { pod_sandbox_id: podId }, { timeoutMs: POD_STOP_TIMEOUT_MS })
      .catch((e) => problems.push(`removing: ${errorText(e)}`));
    await fsp.rm(plan.logDirectory, { recursive: true, force: true }).catch((e) => problems.push(`removing the log directory: ${errorText(e)}`));
  }
  if (problems.length > 0) process.stderr.write(`sandlot run: cleaning up pod "${podId}": ${problems.join('; ')}\n`);
}

/** The run's plan from the flags, its image present (pulled if missing) and its log dir made. */
async function planFromFlags(c: CriClient, values: VerbValues, positionals: string[]): Promise<RunPlan> {
  const [ref, ...args] = positionals;
  if (Boolean(values.detach) && values.rm) throw new UsageError('-d and --rm do not go together: a detached container is left running');
  let mounts;
  let portMappings;
  try {
    mounts = ((values.volume as string[] | undefined) ?? []).map((v) => parseVolume(v, process.cwd()));
    portMappings = ((values.publish as string[] | undefined) ?? []).map(parsePublish);
  } catch (e) {
    throw new UsageError(errorText(e));
  }
  const imageId = await ensureImage(c, ref);
  const plan = planRun({
    image: ref,
    imageId,
    args,
    ...(values.name !== undefined ? { name: String(values.name) } : {}),
    env: (values.env as string[] | undefined) ?? [],
    tty: Boolean(values.tty),
    stdin: Boolean(values.interactive),
    mounts,
    portMappings,
    ...(values.runtime !== undefined ? { runtimeHandler: String(values.runtime) } : {}),
    logRoot: String(values['log-root'] ?? process.env.SANDLOT_LOG_ROOT ?? DEFAULT_LOG_ROOT),
    random: randomBytes(16).toString('hex'),
  });
  await fsp.mkdir(path.join(plan.logDirectory, path.dirname(plan.logPath)), { recursive: true, mode: 0o755 });
  return plan;
}

/** A started container's log on the terminal (stdin through Attach with -i) until it exits; its exit code. */
async function followToExit(
  c: CriClient,
  id: string,
  plan: RunPlan,
  watch: ContainerExitWatch,
  io: { stdin: boolean; tty: boolean; signal: AbortSignal; onRawTty: (restore: () => void) => void },
): Promise<number> {
  const logPath = absoluteLogPath(String((await containerStatus(c, id)).log_path || plan.logPath), plan.logDirectory);
  if (io.stdin) {
    if (io.tty) io.onRawTty(rawStdin());
    const url = String((await c.runtimeCall('Attach', { container_id: id, stdin: true, tty: io.tty, stdout: false, stderr: false })).url);
    // The output comes from the log; the session only carries stdin (and resizes).
    runRemoteCommand(url, { ...terminalIo({ stdin: true, tty: io.tty, stdout: false }) }).catch((e) =>
      process.stderr.write(`sandlot run: attaching stdin: ${errorText(e)}\n`),
    );
  }
  await followCriLog({
    path: logPath,
    signal: io.signal,
    onRecord: (r) => (r.stream === 'stderr' ? process.stderr : process.stdout).write(recordText(r)),
    isDone: () => Promise.resolve(watch.exited),
  });
  if (io.signal.aborted) throw new Interrupted();
  return (await watch.wait()).exitCode ?? EXIT_FAILURE;
}

async function runIn(c: CriClient, values: VerbValues, positionals: string[]): Promise<number> {
  const tty = Boolean(values.tty);
  const stdin = Boolean(values.interactive);
  const detach = Boolean(values.detach);
  const plan = await planFromFlags(c, values, positionals);

  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let podId: string | undefined;
  let started = false;
  let failed = false;
  let restoreTty = (): void => undefined;
  let watch: ContainerExitWatch | undefined;
  try {
    podId = String((await c.runtimeCall('RunPodSandbox', plan.podRequest, { timeoutMs: RUN_POD_TIMEOUT_MS })).pod_sandbox_id);
    if (ac.signal.aborted) throw new Interrupted();
    const created = await c.runtimeCall(
      'CreateContainer',
      { pod_sandbox_id: podId, config: plan.containerConfig, sandbox_config: plan.podRequest.config },
      { timeoutMs: CREATE_TIMEOUT_MS },
    );
    const id = String(created.container_id);
    if (ac.signal.aborted) throw new Interrupted();
    // Watching for the exit starts before the start: a command that ends at once is not missed.
    watch = detach ? undefined : ContainerExitWatch.start(c, id);
    await c.runtimeCall('StartContainer', { container_id: id }, { timeoutMs: CREATE_TIMEOUT_MS });
    started = true;
    if (detach) {
      process.stdout.write(`${id}\n`);
      return EXIT_OK;
    }
    return await followToExit(c, id, plan, watch!, { stdin, tty, signal: ac.signal, onRawTty: (restore) => (restoreTty = restore) });
  } catch (e) {
    if (e instanceof Interrupted) return EXIT_INTERRUPTED;
    failed = true;
    throw e;
  } finally {
    watch?.close();
    restoreTty();
    if (stdin) process.stdin.pause();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // A pod whose container never started is of no use; one we lost track of (Ctrl-C,
    // a failed attach) is stopped rather than left running unseen.
    const remove = Boolean(values.rm) || !started;
    // The daemon's StopPodSandbox kills what runs at once; say what the wait is for.
    if (podId !== undefined && ac.signal.aborted)
      process.stderr.write(`sandlot run: interrupted: ${remove ? 'stopping and removing' : 'stopping'} pod "${plan.podName}" (${podId.slice(0, 13)})…\n`);
    if (podId !== undefined && (remove || failed || ac.signal.aborted)) await cleanupPod(c, podId, plan, remove);
    else if (podId === undefined) await fsp.rm(plan.logDirectory, { recursive: true, force: true }).catch(() => undefined);
  }
}

export const runVerb: Verb = {
  name: 'run',
  summary: 'run IMAGE [CMD...] in a new one-container pod, show its log, exit with its exit code (--rm: remove it after)',
  usage: 'IMAGE [CMD...]',
  endsInCommand: true,
  options: {
    ...SOCKET_OPTION,
    runtime: {
      type: 'string',
      short: 'r',
      value: 'HANDLER',
      description: "the RuntimeClass handler: runc, runsc, crun … (default: the daemon's default_runtime)",
    },
    rm: { type: 'boolean', description: 'remove the pod and its log when the container ends' },
    detach: { type: 'boolean', short: 'd', description: 'start the container, print its ID and leave it running' },
    name: { type: 'string', value: 'NAME', description: 'name of the pod and the container (default: from the image, pod name with a random suffix)' },
    env: { type: 'string', short: 'e', multiple: true, value: 'KEY=VALUE', description: 'set an environment variable (repeatable)' },
    volume: {
      type: 'string',
      short: 'v',
      multiple: true,
      value: 'HOST:CTR[:ro]',
      description: 'bind-mount host path HOST at CTR (read-only with :ro; repeatable)',
    },
    publish: {
      type: 'string',
      short: 'p',
      multiple: true,
      value: '[IP:]HOST:CTR[/tcp|udp]',
      description: 'publish container port CTR on host port HOST (repeatable)',
    },
    tty: { type: 'boolean', short: 't', description: 'give the container a terminal' },
    interactive: { type: 'boolean', short: 'i', description: 'pass stdin to the container' },
    'log-root': { type: 'string', value: 'DIR', description: `where pod log directories go (default ${DEFAULT_LOG_ROOT}, or env SANDLOT_LOG_ROOT)` },
  },
  async run(values, positionals) {
    if (positionals.length === 0) {
      process.stderr.write(
        'usage: sandlot run [--socket PATH] [--runtime HANDLER] [--rm] [-d] [--name N] [-e K=V]... [-v HOST:CTR[:ro]]... [-p HOST:CTR]... [-t] [-i] [--log-root DIR] IMAGE [CMD...]\n',
      );
      return EXIT_USAGE;
    }
    return withClient(values, (c) => runIn(c, values, positionals));
  },
};
