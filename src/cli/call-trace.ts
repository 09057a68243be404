// The CLI's side of tracing: with tracing configured (src/observe/tracing.ts), each CRI
// call is a client span whose context goes with the call as W3C `traceparent` metadata,
// so the daemon's server span (src/cri/instrument.ts) joins the CLI's trace. Without
// it no span is recording and a call gets plain, empty metadata.
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

/** Runs one call (`fn` makes it with the metadata given), in a client span when tracing is on. */
export function tracedCall<T>(path: string, fn: (md: Metadata) => Promise<T>): Promise<T> {
  if (trace.getActiveSpan()?.isRecording() !== true) return fn(new Metadata());
  // path: "/runtime.v1.RuntimeService/RunPodSandbox"
  const [service = '', method = ''] = path.replace(/^\//, '').split('/');
  const tracer = trace.getTracer('sandlot-cli');
  return tracer.startActiveSpan(
    `${service}/${method}`,
    { kind: SpanKind.CLIENT, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method } },
    async (span) => {
      try {
        const out = await fn(traceMetadata());
        span.setAttribute('rpc.grpc.status_code', 0);
        return out;
      } catch (e) {
        const code = (e as Partial<ServiceError>).code;
        if (typeof code === 'number') span.setAttribute('rpc.grpc.status_code', code);
        // For a client every status but OK is an error (OpenTelemetry's gRPC conventions).
        span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
        throw e;
      } finally {
        span.end();
      }
    },
  );
}

/** The metadata of a call that outlives this function (a stream): the active context's trace, if any. */
export function traceMetadata(): Metadata {
  const md = new Metadata();
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  for (const [k, v] of Object.entries(carrier)) md.set(k, v);
  return md;
}
