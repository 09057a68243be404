// The S4 state machine, once for pod sandboxes and containers alike:
//
//   creating ──► created ──► running
//      │            │           │
//      └────────────┴───────────┴──► stopped
//
//   unknown: a record whose meta.json did not load at start (corrupt, or a version
//   another sandlot wrote). It changes to nothing; every action but stop and remove is
//   refused, naming the object and why its record is unreadable (as containerd keeps a
//   sandbox or container it cannot load: listed, untouched).
import { FailedPreconditionError, InternalError } from '../../errors.js';

export type LifecycleState = 'creating' | 'created' | 'running' | 'stopped' | 'unknown';

/** What the machine reads of a record. */
export interface LifecycleRecord<S extends LifecycleState = LifecycleState> {
  id: string;
  state: S;
  /** Set on an `unknown` record: why its meta.json did not load. */
  unreadable?: string;
}

const TRANSITIONS: Record<LifecycleState, readonly LifecycleState[]> = {
  creating: ['created', 'stopped'],
  created: ['running', 'stopped'],
  running: ['stopped'],
  stopped: [],
  unknown: [],
};

export function canChange(from: LifecycleState, to: LifecycleState): boolean {
  return from === to || TRANSITIONS[from].includes(to);
}

/** One switch for every state change of `kind` ("sandbox", "container"); an illegal one is a bug. */
export function changeLifecycle<S extends LifecycleState>(kind: string, rec: LifecycleRecord<S>, to: S): void {
  if (rec.state === to) return;
  if (!canChange(rec.state, to)) {
    throw new InternalError(`changing ${kind} "${rec.id}" from state ${rec.state} to ${to}: illegal transition`);
  }
  rec.state = to;
}

/**
 * S4 guard: `cannot <action> <kind> "<id>" in state <state>`; for an unknown record,
 * `cannot <action> <kind> "<id>": its record is unreadable (<why>); only <allowed> remain`.
 */
export function requireLifecycle<S extends LifecycleState>(
  kind: string,
  rec: LifecycleRecord<S>,
  action: string,
  allowed: readonly S[],
  unknownAllows: string,
): void {
  if (allowed.includes(rec.state)) return;
  if (rec.state === 'unknown') {
    throw new FailedPreconditionError(
      `cannot ${action} ${kind} "${rec.id}": its record is unreadable (${rec.unreadable ?? 'not loadable'}); only ${unknownAllows} act on it`,
    );
  }
  throw new FailedPreconditionError(`cannot ${action} ${kind} "${rec.id}" in state ${rec.state}`);
}
