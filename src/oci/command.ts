// Running the runtime CLIs: one child process per call (posix_spawn, native/spawn.ts),
// output captured, bounded in time. Behind the `CommandRunner` interface so drivers are unit-testable without root.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { runProcess, spawnProcessAsync, type RunResult, type SpawnedChild, type SpawnOptions } from '../../native/index.js';
import { errorMessage } from '../errors.js';
import { commandSpan } from './command-span.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  /**
   * Capture output in this file instead of pipes, and finish when the process exits.
   * Needed for `create`/`exec`: the container inherits the runtime's stdio, so pipes
   * would stay open (and the call hang) for as long as the container lives.
   */
  outputFile?: string;
  /**
   * stdin, stdout and stderr all /dev/null, and finish when the process exits: for a
   * `create` whose container must not inherit anything of ours (the pod's infra, whose
   * runtime reports through its own `--log` file instead).
   */
  discardOutput?: boolean;
}

export type CommandRunner = (file: string, args: string[], options?: RunOptions) => Promise<CommandResult>;

/** The failure of a command: its exit code and what it printed on stderr. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly file: string,
    readonly args: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly stdout: string,
  ) {
    const said = (stderr.trim() || stdout.trim()).split('\n').slice(-3).join(' ');
    super(`${path.basename(file)} exited with ${exitCode ?? 'a signal'}${said ? `: ${said}` : ''}`);
  }
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;
/** What the message of a command killed after its timeout ends with. */
export const TIMED_OUT_SUFFIX = ' (killed after its timeout)';

/** stdout and stderr are each kept up to this many bytes (execFile's maxBuffer before). */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/**
 * The one place src/oci starts a program: posix_spawn off the event loop (on a pool thread),
 * the exit seen through a pidfd (native/spawn.ts). Runtime calls come here through
 * runCommand, conmon directly.
 */
export function spawnChild(file: string, args: string[], options: SpawnOptions): Promise<SpawnedChild> {
  return spawnProcessAsync(file, args, options);
}

export const runCommand: CommandRunner = (file, args, options = {}) =>
  commandSpan(file, args, () => {
    if (options.discardOutput) return runToFile(file, args, undefined, options.timeoutMs);
    return options.outputFile !== undefined ? runToFile(file, args, options.outputFile, options.timeoutMs) : runPiped(file, args, options);
  });

/** A program that could not be started at all (ENOENT, EACCES …): exit code null. */
function notStarted(file: string, args: string[], e: unknown): CommandError {
  const err = new CommandError(file, args, null, '', '');
  err.message = `${path.basename(file)}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`;
  return err;
}

/** Output into `outputFile` (read, then removed); undefined: into /dev/null. */
async function runToFile(file: string, args: string[], outputFile: string | undefined, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<CommandResult> {
  const handle = await fsp.open(outputFile ?? '/dev/null', 'w');
  let run: RunResult;
  try {
    run = await runProcess(file, args, { timeoutMs, outputLimit: 0, outputFd: handle.fd }).catch((e: unknown) => {
      throw notStarted(file, args, e);
    });
  } finally {
    await handle.close();
  }
  const out = outputFile === undefined ? '' : await fsp.readFile(outputFile, 'utf8').catch(() => '');
  if (outputFile !== undefined) await fsp.rm(outputFile, { force: true });
  if (run.code !== 0) {
    const e = new CommandError(file, args, run.code, out, '');
    if (run.timedOut) e.message += TIMED_OUT_SUFFIX;
    throw e;
  }
  return { stdout: out, stderr: '' };
}

async function runPiped(file: string, args: string[], options: RunOptions): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const run = await runProcess(file, args, {
    timeoutMs,
    outputLimit: MAX_OUTPUT_BYTES,
    ...(options.input !== undefined ? { input: options.input } : {}),
  }).catch((e: unknown) => {
    throw notStarted(file, args, e);
  });
  if (run.truncated) throw notStarted(file, args, { code: 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER' });
  if (run.code !== 0) {
    const e = new CommandError(file, args, run.code, run.stderr, run.stdout);
    if (run.timedOut) e.message += TIMED_OUT_SUFFIX;
    throw e;
  }
  return { stdout: run.stdout, stderr: run.stderr };
}

/** Resolves a binary name on PATH (absolute paths are returned as they are, if executable). */
export function resolveBinary(name: string, envPath = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : envPath
        .split(':')
        .filter(Boolean)
        .map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return path.resolve(c);
    } catch {
      // not this one
    }
  }
  return undefined;
}
