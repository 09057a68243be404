// Checks shared by several CRI handler files. Requests arrive decoded with defaults
// (src/cri/proto.ts), so an absent string is "" and an absent list is []; the checks
// still take `unknown` where a test or a hand-built request may hand anything.
import { InvalidArgumentError } from '../errors.js';

/** A string field that must be set. */
export function requireNonEmpty(field: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`${field} must not be empty`);
  return v;
}

/** The command of Exec/ExecSync: a non-empty list of strings whose first is not empty. */
export function execCmd(cmd: unknown, containerId: string): string[] {
  if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((c) => typeof c !== 'string') || cmd[0] === '') {
    throw new InvalidArgumentError(`exec in container "${containerId}": cmd must not be empty`);
  }
  return cmd as string[];
}
