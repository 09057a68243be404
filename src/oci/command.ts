// Running the runtime CLIs: one child process per call, output captured, bounded in
// time. Behind the `CommandRunner` interface so drivers are unit-testable without root.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
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

export const runCommand: CommandRunner = (file, args, options = {}) =>
  commandSpan(file, args, () =>
    options.outputFile !== undefined ? runToFile(file, args, options.outputFile, options.timeoutMs) : runPiped(file, args, options),
  );

async function runToFile(file: string, args: string[], outputFile: string, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<CommandResult> {
  const handle = await fsp.open(outputFile, 'w');
  let code: number | null;
  let killed = false;
  try {
    code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(file, args, { stdio: ['ignore', handle.fd, handle.fd] });
      const timer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new CommandError(file, args, null, `${path.basename(file)}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, ''));
      });
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  } finally {
    await handle.close();
  }
  const out = await fsp.readFile(outputFile, 'utf8').catch(() => '');
  await fsp.rm(outputFile, { force: true });
  if (code !== 0) {
    const e = new CommandError(file, args, code, out, '');
    if (killed) e.message += ' (killed after its timeout)';
    throw e;
  }
  return { stdout: out, stderr: '' };
}

const runPiped = (file: string, args: string[], options: RunOptions): Promise<CommandResult> =>
  new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null;
          const e = new CommandError(file, args, code, String(stderr), String(stdout));
          if (err.killed) e.message += ' (killed after its timeout)';
          else if (typeof err.code === 'string') e.message = `${path.basename(file)}: ${err.code}`;
          reject(e);
          return;
        }
        resolve({ stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });

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
