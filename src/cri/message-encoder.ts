// The serializer of one message type for grpc-js: what @grpc/proto-loader's does
// (fromObject, then encode), except that a message field holding answers an AnswerMemo
// made (src/cri/answer-memo.ts) is written from the bytes those answers were encoded to
// the first time: each is frozen and never changes. Those fields go after the others;
// protobuf decoders take fields in any order.
import protobuf from 'protobufjs';
import { isMemoizedAnswer } from './answer-memo.js';

/** Fields of message type (maps excluded): the ones that may hold memoized answers. */
function messageFields(type: protobuf.Type): Array<{ field: protobuf.Field; type: protobuf.Type }> {
  const out: Array<{ field: protobuf.Field; type: protobuf.Type }> = [];
  for (const field of type.fieldsArray) {
    if (!field.map && field.resolvedType instanceof protobuf.Type) out.push({ field, type: field.resolvedType });
  }
  return out;
}

/** The memoized answers a field's value holds, or undefined when it holds anything else (or nothing). */
function memoizedIn(field: protobuf.Field, v: unknown): object[] | undefined {
  if (!field.repeated) return isMemoizedAnswer(v) ? [v] : undefined;
  return Array.isArray(v) && v.length > 0 && v.every(isMemoizedAnswer) ? v : undefined;
}

export function messageSerializer(type: protobuf.Type): (value: object) => Buffer {
  const fields = messageFields(type);
  /** Per message field: each memoized answer's bytes, by answer object. */
  const kept = fields.map(() => new WeakMap<object, Uint8Array>());
  const bytesOf = (i: number, answer: object): Uint8Array => {
    let b = kept[i].get(answer);
    if (b === undefined) {
      const t = fields[i].type;
      b = t.encode(t.fromObject(answer)).finish();
      kept[i].set(answer, b);
    }
    return b;
  };
  return (value) => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    let rest: Record<string, unknown> | undefined;
    let tail: Array<{ i: number; answers: object[] }> | undefined;
    fields.forEach(({ field }, i) => {
      const answers = memoizedIn(field, (value as Record<string, unknown>)[field.name]);
      if (answers === undefined) return;
      rest ??= { ...value };
      delete rest[field.name];
      (tail ??= []).push({ i, answers });
    });
    const w = type.encode(type.fromObject(rest ?? value));
    for (const { i, answers } of tail ?? []) {
      const tag = (fields[i].field.id << 3) | 2;
      for (const a of answers) w.uint32(tag).bytes(bytesOf(i, a));
    }
    return w.finish() as Buffer;
  };
}
