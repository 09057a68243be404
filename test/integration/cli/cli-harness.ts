// Runs the real `sandlot` CLI (node --import tsx src/cli/bin.ts) for the CLI tests, and
// polls with a deadline for what they wait on.
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { REPO_ROOT } from '../../helpers/daemon.js';

export const BIN = path.join(REPO_ROOT, 'src/cli/bin.ts');
export const TSX = import.meta.resolve('tsx');
const CLI_TIMEOUT_MS = 180_000;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI with `args` as given (no --socket added); `env` is added to ours (OTEL_* for the tracing test). */
export function cliSpawn(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, BIN, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
}

/** Runs the CLI to its end; stdin gets `input` (or nothing) and is closed. */
export function cliRun(args: string[], input?: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = cliSpawn(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(input ?? '');
  });
}

/** A CLI process left running, with what it printed so far. */
export interface LiveCli {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  closed: Promise<number | null>;
}

export function cliLive(args: string[]): LiveCli {
  const child = cliSpawn(args);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<number | null>((r) => child.once('close', r));
  return { child, out: () => out, err: () => err, closed };
}

/** Polls `probe` until it returns something truthy; fails with `what` and the last value at the deadline. */
export async function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 120_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(100);
  }
}
