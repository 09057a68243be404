// The serializer of one message type for grpc-js: what @grpc/proto-loader's does
// (fromObject, then encode), except that a message field holding answers an AnswerMemo
// made (src/cri/answer-memo.ts) is written from the bytes those answers were encoded to
// the first time: each is frozen and never changes. Those fields go after the others;
// protobuf decoders take fields in any order. The field's bytes of the last message are
// kept too: a List whose answers are the same objects as the last one's (nothing changed
// in between, the usual relist) sends them again without touching each answer.
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

/** The answers a field held in the last message, and the field's bytes for them. */
interface LastField {
  answers: object[];
  bytes: Uint8Array;
}

function sameAnswers(a: object[], b: object[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function messageSerializer(type: protobuf.Type): (value: object) => Buffer {
  const fields = messageFields(type);
  /** Per message field: each memoized answer's bytes, by answer object. */
  const kept = fields.map(() => new WeakMap<object, Uint8Array>());
  const last: Array<LastField | undefined> = fields.map(() => undefined);
  const bytesOf = (i: number, answer: object): Uint8Array => {
    let b = kept[i].get(answer);
    if (b === undefined) {
      const t = fields[i].type;
      b = t.encode(t.fromObject(answer)).finish();
      kept[i].set(answer, b);
    }
    return b;
  };
  /** The field's bytes (tag, length and message per answer): the last message's when its answers were the same. */
  const fieldBytes = (i: number, answers: object[]): Uint8Array => {
    const prev = last[i];
    if (prev !== undefined && sameAnswers(prev.answers, answers)) return prev.bytes;
    const tag = (fields[i].field.id << 3) | 2;
    const w = protobuf.Writer.create();
    for (const a of answers) w.uint32(tag).bytes(bytesOf(i, a));
    const bytes = w.finish();
    last[i] = { answers: [...answers], bytes };
    return bytes;
  };
  return (value) => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    let rest: Record<string, unknown> | undefined;
    let tail: Uint8Array[] | undefined;
    fields.forEach(({ field }, i) => {
      const answers = memoizedIn(field, (value as Record<string, unknown>)[field.name]);
      if (answers === undefined) return;
      rest ??= { ...value };
      delete rest[field.name];
      (tail ??= []).push(fieldBytes(i, answers));
    });
    const head = type.encode(type.fromObject(rest ?? value)).finish() as Buffer;
    return tail === undefined ? head : Buffer.concat([head, ...tail]);
  };
}
