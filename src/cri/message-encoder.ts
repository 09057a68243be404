// The serializer of one message type for grpc-js: what @grpc/proto-loader's does
// (fromObject, then encode), except that a message field holding answers an AnswerMemo
// made (src/cri/answer-memo.ts) is written from the bytes those answers were encoded to
// the first time: each is frozen and never changes. Those fields go after the others;
// protobuf decoders take fields in any order. The field's bytes of the last message are
// kept too: a List whose answers are the same objects as the last one's (nothing changed
// in between, the usual relist) sends them again without touching each answer. Callers
// copy what a serializer returns (into the gRPC frame) and never change it: a List
// answer may be those kept bytes themselves.
import type { Long } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { isMemoizedAnswer, isMemoizedList } from './answer-memo.js';

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
  if (isMemoizedList(v)) return v.length > 0 ? v : undefined;
  return Array.isArray(v) && v.length > 0 && v.every(isMemoizedAnswer) ? v : undefined;
}

/** The answers a field held in the last message, the field's bytes for them, and those as a gRPC frame once asked for. */
interface LastField {
  answers: object[];
  bytes: Buffer;
  framed?: Buffer;
}

function sameAnswers(a: object[], b: object[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** gRPC's length prefix: a compressed flag (1 byte) and the length (4 bytes, big-endian). */
const PREFIX_BYTES = 5;

/** `parts` one after another behind the prefix of an uncompressed message: one allocation, one copy. */
function frame(parts: Buffer[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(PREFIX_BYTES + length);
  out[0] = 0;
  out.writeUInt32BE(length, 1);
  let at = PREFIX_BYTES;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

type Serializer = (value: object) => Buffer;

/** protobufjs's Long is the `long` package's (the type the generated message types name). */
const LongOfProtobuf = protobuf.util.Long as unknown as { fromBits(low: number, high: number, unsigned: boolean): Long };

/**
 * An int64 field's value as protobufjs's Long, which its fromObject takes as it is: a
 * decimal string costs it a Long.fromString (a multiplication per digit, each a new
 * Long) on every message, ~30 µs per PodSandboxStatus in the interpreter.
 */
export function int64(v: bigint): Long {
  return LongOfProtobuf.fromBits(Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n)), false);
}

/** The framing variant of each serializer messageSerializer made. */
const framers = new WeakMap<Serializer, Serializer>();

/**
 * `serialize`'s message as one uncompressed gRPC frame (prefix and message), what the
 * lean path sends: for messageSerializer's serializers without an intermediate copy, and
 * a List answer unchanged since the last is the frame kept then (callers never change it).
 */
export function framedSerializer(serialize: Serializer): Serializer {
  return framers.get(serialize) ?? ((value) => frame([serialize(value)]));
}

export function messageSerializer(type: protobuf.Type): Serializer {
  const fields = messageFields(type);
  /**
   * Per message field: each memoized answer as that field's bytes (tag, length, message),
   * by answer object: a Status answer is them as they are, a List answer their concatenation.
   */
  const kept = fields.map(() => new WeakMap<object, Buffer>());
  const last: Array<LastField | undefined> = fields.map(() => undefined);
  const bytesOf = (i: number, answer: object): Buffer => {
    let b = kept[i].get(answer);
    if (b === undefined) {
      const { field, type: t } = fields[i];
      const w = protobuf.Writer.create();
      w.uint32((field.id << 3) | 2).bytes(t.encode(t.fromObject(answer)).finish());
      b = w.finish() as Buffer;
      kept[i].set(answer, b);
    }
    return b;
  };
  /** The field's bytes for a list of answers: the last message's when its answers were the same. */
  const listBytes = (i: number, answers: object[]): LastField => {
    const prev = last[i];
    if (prev !== undefined && sameAnswers(prev.answers, answers)) return prev;
    // A list AnswerMemo.list made is frozen: kept as it is (the next relist is that same list).
    const next = { answers: isMemoizedList(answers) ? answers : [...answers], bytes: Buffer.concat(answers.map((a) => bytesOf(i, a))) };
    last[i] = next;
    return next;
  };
  /**
   * The message in parts: the encoding of every field but the memoized ones (`head`), and
   * each memoized field's bytes (`tail`); `list` when the message is a list field alone.
   */
  const parts = (value: object): { head: Buffer; tail?: Buffer[]; list?: LastField } => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    let rest: Record<string, unknown> | undefined;
    let tail: Buffer[] | undefined;
    let list: LastField | undefined;
    for (let i = 0; i < fields.length; i++) {
      const name = fields[i].field.name;
      const answers = memoizedIn(fields[i].field, (value as Record<string, unknown>)[name]);
      if (answers === undefined) continue;
      // Unset rather than deleted (fromObject skips a null field): a delete would turn the copy into a slow dictionary.
      rest ??= { ...value };
      rest[name] = undefined;
      if (answers.length === 1) (tail ??= []).push(bytesOf(i, answers[0]));
      else {
        list = listBytes(i, answers);
        (tail ??= []).push(list.bytes);
      }
    }
    const head = type.encode(type.fromObject(rest ?? value)).finish() as Buffer;
    return { head, tail, list: head.length === 0 && tail?.length === 1 ? list : undefined };
  };
  const serialize: Serializer = (value) => {
    const { head, tail, list } = parts(value);
    if (list !== undefined) return list.bytes;
    return tail === undefined ? head : Buffer.concat([head, ...tail]);
  };
  framers.set(serialize, (value) => {
    const { head, tail, list } = parts(value);
    if (list !== undefined) return (list.framed ??= frame([list.bytes]));
    return tail === undefined ? frame([head]) : frame([head, ...tail]);
  });
  return serialize;
}
