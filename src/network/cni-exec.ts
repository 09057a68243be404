// Running one CNI plugin binary: config on stdin, parameters in CNI_* environment
// variables, result or error object on stdout (CNI spec, "Execution Protocol").
import { runProcess } from '../../native/index.js';

export interface PluginRun {
  /** exit code, or null when killed */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Executes a plugin; the seam that unit tests replace. */
export interface PluginExecutor {
  run(binary: string, env: Record<string, string>, stdin: string, timeoutMs: number): Promise<PluginRun>;
}

const OUTPUT_LIMIT_BYTES = 1 << 20;

export class ProcessPluginExecutor implements PluginExecutor {
  async run(binary: string, env: Record<string, string>, stdin: string, timeoutMs: number): Promise<PluginRun> {
    // Plugins call iptables, ip & co: they need PATH. Stale CNI_* from our own
    // environment must not leak into the call.
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CNI_')));
    // posix_spawn (native/spawn.ts): no fork of the daemon on the event loop per plugin call.
    const r = await runProcess(binary, [], { env: { ...base, ...env }, input: stdin, timeoutMs, outputLimit: OUTPUT_LIMIT_BYTES });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut };
  }
}
