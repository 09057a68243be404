// Answer messages built once per record. The metadata stores keep each record deeply
// frozen and replace it (a new frozen copy) when anything in it changes, so a message
// built from a frozen record stays true for as long as that record object is the one the
// store hands out. AnswerMemo keeps one message per record object; the serializer
// (src/cri/message-encoder.ts) encodes such a message once and sends its bytes again,
// so a List of 100 unchanged pods neither rebuilds nor re-encodes 100 messages.
// A record that is not frozen (a mutable copy) gets a fresh message every time.

/** Messages made by an AnswerMemo: frozen, and never changing. */
const memoized = new WeakSet<object>();

/** Is `v` a message an AnswerMemo made (so its encoding may be kept)? */
export function isMemoizedAnswer(v: unknown): v is object {
  return typeof v === 'object' && v !== null && memoized.has(v);
}

function deepFreeze<T>(v: T): T {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return v;
  for (const child of Object.values(v)) deepFreeze(child);
  return Object.freeze(v);
}

export class AnswerMemo<R extends object, M extends object> {
  private readonly built = new WeakMap<R, M>();

  constructor(private readonly build: (record: R) => M) {}

  /** The message of `record`: the one built before for this frozen record object, else a new one. */
  of(record: R): M {
    if (!Object.isFrozen(record)) return this.build(record);
    let m = this.built.get(record);
    if (m === undefined) {
      m = deepFreeze(this.build(record));
      this.built.set(record, m);
      memoized.add(m);
    }
    return m;
  }
}
