// Running one OCI hook the way a runtime does (runtime-spec config.md "POSIX-platform
// Hooks"): `path` executed with `args` (args[0] is argv[0]) and exactly `env`, the
// container's state JSON on stdin, killed after `timeout` seconds. Used for the stages
// sandlot runs itself (hook-stages.ts). Output is kept (bounded) for the error message.
import { spawn } from 'node:child_process';
import type { OciHook } from './oci-hooks.js';
import type { OciState } from './runtime.js';

/** A hook without a timeout of its own may take this long (a hung poststop must not hang RemoveContainer). */
export const DEFAULT_HOOK_TIMEOUT_MS = 120_000;
const OUTPUT_LIMIT_BYTES = 8 * 1024;

export type HookRunner = (hook: OciHook, state: OciState) => Promise<void>;

/** Runs `hook` with `state` on stdin; rejects with `exit status N: <its output>` when it fails. */
export const runOciHook: HookRunner = (hook, state) =>
  new Promise((resolve, reject) => {
    const args = hook.args ?? [];
    const child = spawn(hook.path, args.slice(1), {
      argv0: args[0] ?? hook.path,
      env: hookEnv(hook.env ?? []),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (b: Buffer): void => {
      if (output.length < OUTPUT_LIMIT_BYTES) output += b.toString('utf8').slice(0, OUTPUT_LIMIT_BYTES - output.length);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timeoutMs = hook.timeout !== undefined ? hook.timeout * 1000 : DEFAULT_HOOK_TIMEOUT_MS;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error((e as NodeJS.ErrnoException).code ?? e.message));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const said = output.trim().replace(/\s+/g, ' ');
      const how = timedOut ? `killed after its timeout of ${timeoutMs / 1000} s` : code !== null ? `exit status ${code}` : `killed by ${signal}`;
      reject(new Error(`${how}${said !== '' ? `: ${said}` : ''}`));
    });
    // A hook that does not read its stdin closes the pipe: not an error of the hook.
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(state));
  });

/** KEY=VALUE entries as spawn's env: exactly these, nothing inherited from the daemon. */
function hookEnv(entries: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of entries) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}
