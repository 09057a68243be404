// OpenTelemetry tracing of CRI calls. Off unless an OTLP endpoint is configured; the SDK
// and its exporter are only loaded then (they cost tens of MiB of RSS for nothing
// otherwise). grpc-js is loaded as an ES module here, which the automatic gRPC
// instrumentation cannot patch without a loader hook; the CRI decorator
// (src/cri/instrument.ts) opens one server span per call itself, with the same rpc.*
// attributes.
import { trace, type Tracer } from '@opentelemetry/api';

export interface Tracing {
  tracer: Tracer;
  shutdown(): Promise<void>;
}

export async function startTracing(endpoint: string, version: string): Promise<Tracing> {
  if (endpoint === '') {
    // The API's no-op tracer: spans cost nothing and go nowhere.
    return { tracer: trace.getTracer('sandlot', version), shutdown: async () => {} };
  }
  const [{ NodeSDK }, { OTLPTraceExporter }] = await Promise.all([import('@opentelemetry/sdk-node'), import('@opentelemetry/exporter-trace-otlp-grpc')]);
  const sdk = new NodeSDK({
    serviceName: 'sandlot',
    traceExporter: new OTLPTraceExporter({ url: endpoint }),
    instrumentations: [],
  });
  sdk.start();
  return { tracer: trace.getTracer('sandlot', version), shutdown: () => sdk.shutdown() };
}
