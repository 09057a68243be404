// What a CLI verb is, and the helpers client verbs share.
import type { ParseArgsConfig } from 'node:util';
import { defaultConfig } from '../config/defaults.js';
import { CriClient } from './client.js';

/** Exit codes scripts can rely on. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_SOCKET_IN_USE = 3;

export type VerbValues = Record<string, string | boolean | string[] | undefined>;

export interface Verb {
  name: string;
  /** One line for `sandlot --help`. */
  summary: string;
  /** Positional arguments for the verb's own help, e.g. "IMAGE [CMD...]". */
  usage?: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /**
   * Set for verbs that end in a command (`run IMAGE CMD…`): the verb's flags end after
   * this many positionals, and what follows is passed on untouched (see arg-split.ts).
   */
  leadingPositionals?: number;
  run(values: VerbValues, positionals: string[]): Promise<number>;
}

export const SOCKET_OPTION = { socket: { type: 'string' as const } };

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
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
