// The span of one runtime, conmon or helper process: `runc create`, `runsc wait`,
// `conmon create` … with the container ID, the handler (from the call's context, see
// withHandler) and the exit code. The one wrapper every process start in src/oci goes
// through, whichever way the process is spawned (command.ts, conmon.ts, exec.ts).
import path from 'node:path';
import type { Attributes, Span } from '@opentelemetry/api';
import { childSpan, SPAN_ATTR, startChildSpan, tracingActive, withSpanAttributes } from '../observe/spans.js';

/** Subcommands of runc, crun and runsc: the first argument among these names the call. */
const VERBS = new Set([
  'create',
  'start',
  'run',
  'kill',
  'delete',
  'state',
  'list',
  'exec',
  'update',
  'checkpoint',
  'restore',
  'events',
  'wait',
  'ps',
  'pause',
  'resume',
  'features',
  '--version',
]);
/** Flags of those subcommands that take a value (the container ID is the first argument that is neither). */
const VALUE_FLAGS = new Set([
  '--bundle',
  '-b',
  '--pid-file',
  '--internal-pid-file',
  '--process',
  '-p',
  '--console-socket',
  '--format',
  '-f',
  '--resources',
  '-r',
  '--image-path',
  '--work-path',
  '--pid',
  '--interval',
]);

/** The span name, and the container the call is about, read off a runtime command line. */
export function describeCommand(file: string, args: string[]): { name: string; containerId: string | undefined } {
  const bin = path.basename(file);
  const at = args.findIndex((a) => VERBS.has(a));
  if (at < 0) return { name: bin, containerId: undefined };
  let containerId: string | undefined;
  for (let i = at + 1; i < args.length; i++) {
    const a = args[i];
    if (VALUE_FLAGS.has(a)) i++;
    else if (!a.startsWith('-')) {
      containerId = a;
      break;
    }
  }
  return { name: `${bin} ${args[at]}`, containerId };
}

function commandAttributes(file: string, args: string[], containerId: string | undefined): Attributes {
  return {
    'process.executable.name': path.basename(file),
    'process.command_args': [file, ...args],
    ...(containerId !== undefined ? { [SPAN_ATTR.containerId]: containerId } : {}),
  };
}

/** The exit code a failed command carries (CommandError), if any. */
function exitCodeOf(e: unknown): number | undefined {
  const code = (e as { exitCode?: unknown } | null)?.exitCode;
  return typeof code === 'number' ? code : undefined;
}

/** Runs `fn`, which runs the command `file args` to its end, in the command's span. */
export function commandSpan<T>(file: string, args: string[], fn: () => Promise<T>, name?: string): Promise<T> {
  // No recording span (tracing off): no name or attributes to work out (issue 13: that was
  // 1.5 % of a pod lifecycle's daemon CPU).
  if (!tracingActive()) return fn();
  const d = describeCommand(file, args);
  return childSpan(name ?? d.name, commandAttributes(file, args, d.containerId), async (span) => {
    try {
      const out = await fn();
      span.setAttribute('process.exit.code', 0);
      return out;
    } catch (e) {
      const code = exitCodeOf(e);
      if (code !== undefined) span.setAttribute('process.exit.code', code);
      throw e;
    }
  });
}

/** The span of a process that outlives the call starting it (an exec); end it with `endProcessSpan`. */
export function startProcessSpan(file: string, args: string[]): Span | undefined {
  if (!tracingActive()) return undefined;
  const d = describeCommand(file, args);
  return startChildSpan(d.name, commandAttributes(file, args, d.containerId));
}

export function endProcessSpan(span: Span | undefined, exitCode: number): void {
  if (span === undefined) return;
  span.setAttribute('process.exit.code', exitCode);
  span.end();
}

/** Runs `fn` with runtime handler `handler` on every process span opened inside it. */
export function withHandler<T>(handler: string, fn: () => T): T {
  return withSpanAttributes({ [SPAN_ATTR.handler]: handler }, fn);
}
