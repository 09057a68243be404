// What a CLI verb is, and the helpers client verbs share.
import { defaultConfig } from '../config/defaults.js';
import { CriClient } from './client.js';

/** Exit codes scripts can rely on. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_SOCKET_IN_USE = 3;

export type VerbValues = Record<string, string | boolean | string[] | undefined>;

/** One flag of a verb: what `--help` shows and how the value is read. */
export interface VerbOption {
  type: 'string' | 'boolean';
  short?: string;
  /** Repeatable (`-e A=1 -e B=2`): the values come as an array. */
  multiple?: boolean;
  /** The value's name in help, e.g. SECONDS (string flags). */
  value?: string;
  /** What the flag does, for `--help`. */
  description: string;
}

export type VerbOptions = Record<string, VerbOption>;

export interface Verb {
  name: string;
  /** One line for `sandlot --help`. */
  summary: string;
  /** Positional arguments for the verb's own help, e.g. "IMAGE [CMD...]". */
  usage?: string;
  options: VerbOptions;
  /**
   * Set for verbs that end in a command (`run IMAGE CMD…`, `exec CONTAINER CMD…`): the
   * verb's flags end at the first positional, and what follows is passed on untouched,
   * as docker and crictl do (in `exec c1 sh -c 'echo hi'` the `-c` belongs to sh).
   */
  endsInCommand?: boolean;
  run(values: VerbValues, positionals: string[]): Promise<number>;
}

export const SOCKET_HELP = "the daemon's CRI socket (default /run/sandlot/sandlot.sock, or env SANDLOT_SOCKET)";

export const SOCKET_OPTION: VerbOptions = { socket: { type: 'string', value: 'PATH', description: SOCKET_HELP } };

/** `-o json|yaml|table` on list and inspect verbs, as crictl has it. */
export const OUTPUT_OPTION: VerbOptions = { output: { type: 'string', short: 'o', value: 'FORMAT', description: 'json, yaml or table (default table)' } };

export function socketOf(values: VerbValues): string {
  const s = values.socket ?? process.env.SANDLOT_SOCKET ?? defaultConfig().socket_path;
  return String(s);
}

/** Runs `fn` with a client on the verb's socket and closes it after. */
export async function withClient<T>(values: VerbValues, fn: (c: CriClient) => Promise<T>): Promise<T> {
  const client = new CriClient(socketOf(values));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** Left-aligned columns, like crictl's tables. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** Bad flags or arguments found by a verb itself: exit 2 with the message, like a parse error. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
