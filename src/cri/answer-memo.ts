// Answer messages built once per record. The metadata stores keep each record deeply
// frozen and replace it (a new frozen copy) when anything in it changes, so a message
// built from a frozen record stays true for as long as that record object is the one the
// store hands out. AnswerMemo keeps one message per record object; the serializer
// (src/cri/message-encoder.ts) encodes such a message once and sends its bytes again,
// so a List of 100 unchanged pods neither rebuilds nor re-encodes 100 messages; list()
// answers the same frozen list again while the records are the same objects.
// A record that is not frozen (a mutable copy) gets a fresh message every time.

/** Messages made by an AnswerMemo: frozen, and never changing. */
const memoized = new WeakSet<object>();

/** Lists of such messages made by AnswerMemo.list: frozen, every item memoized. */
const memoizedLists = new WeakSet<object>();

/** Is `v` a message an AnswerMemo made (so its encoding may be kept)? */
export function isMemoizedAnswer(v: unknown): v is object {
  return typeof v === 'object' && v !== null && memoized.has(v);
}

/** Is `v` a list AnswerMemo.list made (every item memoized, without a look at each)? */
export function isMemoizedList(v: unknown): v is object[] {
  return typeof v === 'object' && v !== null && memoizedLists.has(v);
}

function sameItems(a: readonly object[], b: readonly object[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function deepFreeze<T>(v: T): T {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return v;
  for (const child of Object.values(v)) deepFreeze(child);
  return Object.freeze(v);
}

export class AnswerMemo<R extends object, M extends object> {
  private readonly built = new WeakMap<R, M>();
  /** The records of the last list() of frozen records, and its answer. */
  private lastRecords: readonly R[] = [];
  private lastList: M[] | undefined;

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

  /**
   * The messages of `records` in order. When the records are the same objects as the last
   * call's (the usual relist: nothing changed), the same frozen list as then: neither a
   * look-up per record here nor a look at each answer in the serializer. A list with a
   * record that is not frozen is made afresh, and not kept.
   */
  list(records: readonly R[]): M[] {
    if (this.lastList !== undefined && sameItems(records, this.lastRecords)) return this.lastList;
    const answers = records.map((r) => this.of(r));
    if (!records.every((r) => Object.isFrozen(r))) return answers;
    this.lastRecords = records;
    this.lastList = Object.freeze(answers) as M[];
    memoizedLists.add(this.lastList);
    return this.lastList;
  }
}
