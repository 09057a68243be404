// A real OTLP/gRPC trace receiver on 127.0.0.1 for the tracing tests: the daemon's and
// the CLI's OpenTelemetry exporters send to it as to a collector; it decodes every span
// (test/helpers/otlp/trace-export.proto) and keeps them for the test to assert on.
import { Server, ServerCredentials, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const PROTO = path.join(path.dirname(fileURLToPath(import.meta.url)), 'otlp/trace-export.proto');

/** OTLP span kinds and status codes (trace/v1). */
export const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
export const STATUS_CODE = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, unknown>;
  status: { code: number; message: string };
  /** The resource's service.name. */
  service: string;
}

interface WireValue {
  string_value?: string;
  bool_value?: boolean;
  int_value?: string;
  double_value?: number;
  array_value?: { values: WireValue[] };
  bytes_value?: Buffer;
  value?: string;
}
interface WireKeyValue {
  key: string;
  value: WireValue | null;
}
interface WireSpan {
  trace_id: Buffer;
  span_id: Buffer;
  parent_span_id: Buffer;
  name: string;
  kind: number;
  start_time_unix_nano: string;
  end_time_unix_nano: string;
  attributes: WireKeyValue[];
  status: { code: number; message: string } | null;
}
interface WireRequest {
  resource_spans: Array<{ resource: { attributes: WireKeyValue[] } | null; scope_spans: Array<{ spans: WireSpan[] }> }>;
}

function valueOf(v: WireValue | null): unknown {
  if (v === null) return undefined;
  switch (v.value) {
    case 'string_value':
      return v.string_value;
    case 'bool_value':
      return v.bool_value;
    case 'int_value':
      return Number(v.int_value);
    case 'double_value':
      return v.double_value;
    case 'array_value':
      return (v.array_value?.values ?? []).map(valueOf);
    case 'bytes_value':
      return v.bytes_value;
    default:
      return undefined;
  }
}

function attributesOf(kvs: WireKeyValue[]): Record<string, unknown> {
  return Object.fromEntries(kvs.map((kv) => [kv.key, valueOf(kv.value)]));
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Export requests received (each a batch). */
  requests = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** The endpoint URL exporters take (`http://` = plaintext gRPC). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<OtlpReceiver> {
    const def = loadSync(PROTO, { keepCase: true, longs: String, defaults: true, oneofs: true });
    const pkg = loadPackageDefinition(def) as unknown as { opentelemetry: { proto: { collector: { trace: { v1: GrpcObject } } } } };
    const service = (pkg.opentelemetry.proto.collector.trace.v1.TraceService as ServiceClientConstructor).service;
    const server = new Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const receiver = new OtlpReceiver(server, port);
    server.addService(service, {
      Export: (call: { request: WireRequest }, callback: (e: null, res: object) => void) => {
        receiver.take(call.request);
        callback(null, {});
      },
    });
    return receiver;
  }

  private take(req: WireRequest): void {
    this.requests += 1;
    for (const rs of req.resource_spans) {
      const name = attributesOf(rs.resource?.attributes ?? [])['service.name'];
      const service = typeof name === 'string' ? name : '';
      for (const ss of rs.scope_spans) {
        for (const s of ss.spans) {
          this.spans.push({
            traceId: s.trace_id.toString('hex'),
            spanId: s.span_id.toString('hex'),
            parentSpanId: s.parent_span_id.toString('hex'),
            name: s.name,
            kind: s.kind,
            startNs: BigInt(s.start_time_unix_nano),
            endNs: BigInt(s.end_time_unix_nano),
            attributes: attributesOf(s.attributes),
            status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
            service,
          });
        }
      }
    }
  }

  /** Polls until `pick` finds what the test waits for among the spans received; fails naming `what`. */
  async waitFor<T>(what: string, pick: (spans: ReceivedSpan[]) => T | undefined, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = pick(this.spans);
      if (found !== undefined && found !== false) return found;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; received: ${this.spans.map((s) => s.name).join(', ') || 'no span'}`);
      }
      await sleep(100);
    }
  }

  /** The spans below `root` in its trace (children, grandchildren …). */
  descendants(root: ReceivedSpan): ReceivedSpan[] {
    const out: ReceivedSpan[] = [];
    const parents = new Set([root.spanId]);
    let grew = true;
    while (grew) {
      grew = false;
      for (const s of this.spans) {
        if (s.traceId === root.traceId && parents.has(s.parentSpanId) && !parents.has(s.spanId)) {
          parents.add(s.spanId);
          out.push(s);
          grew = true;
        }
      }
    }
    return out;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}
