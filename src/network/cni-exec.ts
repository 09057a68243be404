// Running one CNI plugin binary: config on stdin, parameters in CNI_* environment
// variables, result or error object on stdout (CNI spec, "Execution Protocol").
import { spawn } from 'node:child_process';

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
  run(binary: string, env: Record<string, string>, stdin: string, timeoutMs: number): Promise<PluginRun> {
    return new Promise((resolve, reject) => {
      // Plugins call iptables, ip & co: they need PATH. Stale CNI_* from our own
      // environment must not leak into the call.
      const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CNI_')));
      const child = spawn(binary, [], { env: { ...base, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outLen = 0;
      let errLen = 0;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout.on('data', (b: Buffer) => {
        if ((outLen += b.length) <= OUTPUT_LIMIT_BYTES) out.push(b);
      });
      child.stderr.on('data', (b: Buffer) => {
        if ((errLen += b.length) <= OUTPUT_LIMIT_BYTES) err.push(b);
      });
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({
          code,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          timedOut,
        });
      });
      // A plugin that exits without reading stdin gives EPIPE here; its exit status tells.
      child.stdin.on('error', () => {});
      child.stdin.end(stdin);
    });
  }
}
