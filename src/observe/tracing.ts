// OpenTelemetry tracing of CRI calls. Off unless an OTLP endpoint is configured; the SDK
// and its exporter are only loaded then (they cost tens of MiB of RSS for nothing
// otherwise). grpc-js is loaded as an ES module here, which the automatic gRPC
// instrumentation cannot patch without a loader hook; the CRI decorator
// (src/cri/instrument.ts) opens one server span per call itself, with the same rpc.*
// attributes, and src/observe/spans.ts the child spans of what a call does.
//
// The daemon exports to its config's otlp_endpoint (OTLP/gRPC); the CLI follows the
// OpenTelemetry environment variables (OTEL_EXPORTER_OTLP_ENDPOINT, …_PROTOCOL,
// OTEL_SERVICE_NAME, OTEL_SDK_DISABLED), as any OpenTelemetry SDK does.
import { trace, type Tracer } from '@opentelemetry/api';
import type { tracing as sdkTracing } from '@opentelemetry/sdk-node';
import type { Logger } from 'pino';

export interface Tracing {
  tracer: Tracer;
  shutdown(): Promise<void>;
}

/** How long a shutdown waits for the last spans to go out: a dead collector must not hold a stop. */
export const TRACING_SHUTDOWN_MS = 3000;
/** While exports keep failing, a warning at most this often. */
export const EXPORT_FAILURE_LOG_INTERVAL_MS = 60_000;

/** OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) wins over our default, as the spec says. */
function serviceNameFromEnv(): string | undefined {
  const named = process.env.OTEL_SERVICE_NAME?.trim();
  if (named) return named;
  const attrs = process.env.OTEL_RESOURCE_ATTRIBUTES ?? '';
  const m = /(?:^|,)\s*service\.name\s*=\s*([^,]+)/.exec(attrs);
  return m ? decodeURIComponent(m[1].trim()) : undefined;
}

async function stopWithin(what: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([what.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A span exporter that says when exporting fails: the first failure, then at most once
 * a minute while it goes on, and once when it works again. The SDK itself only tells its
 * diag logger, which nobody reads.
 */
function reportingExporter(inner: sdkTracing.SpanExporter, success: number, endpoint: string, log: Logger): sdkTracing.SpanExporter {
  let failing = false;
  let lastWarn = 0;
  let lostSpans = 0;
  return {
    export(spans, done) {
      inner.export(spans, (result) => {
        if (result.code.valueOf() === success) {
          if (failing) log.info({ endpoint, lostSpans }, 'exporting spans works again');
          failing = false;
          lostSpans = 0;
        } else {
          lostSpans += spans.length;
          const now = Date.now();
          if (!failing || now - lastWarn >= EXPORT_FAILURE_LOG_INTERVAL_MS) {
            log.warn({ endpoint, lostSpans, error: result.error?.message ?? 'unknown error' }, 'exporting spans failed: they are dropped');
            lastWarn = now;
          }
          failing = true;
        }
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}

/** The daemon's tracing: OTLP/gRPC to `endpoint`, or the API's no-op tracer when it is "". */
export async function startTracing(endpoint: string, version: string, log: Logger): Promise<Tracing> {
  if (endpoint === '') {
    // The API's no-op tracer: spans cost nothing and go nowhere.
    return { tracer: trace.getTracer('sandlot', version), shutdown: async () => {} };
  }
  const [{ NodeSDK, core }, { OTLPTraceExporter }] = await Promise.all([import('@opentelemetry/sdk-node'), import('@opentelemetry/exporter-trace-otlp-grpc')]);
  const serviceName = serviceNameFromEnv() ?? 'sandlot';
  const sdk = new NodeSDK({
    serviceName,
    traceExporter: reportingExporter(new OTLPTraceExporter({ url: endpoint }), core.ExportResultCode.SUCCESS, endpoint, log),
    instrumentations: [],
    // Traces only: without these the SDK would also start OTLP metric and log exporters
    // to its default endpoint.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  log.info({ endpoint, protocol: 'grpc', serviceName }, 'tracing on');
  return {
    tracer: trace.getTracer('sandlot', version),
    shutdown: async () => {
      if (!(await stopWithin(sdk.shutdown(), TRACING_SHUTDOWN_MS)))
        log.warn({ endpoint, waitedMs: TRACING_SHUTDOWN_MS }, 'tracing: the last spans were not sent in time');
    },
  };
}

/** Is tracing configured for the CLI by the OpenTelemetry environment variables? */
export function cliTracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (/^true$/i.test(env.OTEL_SDK_DISABLED?.trim() ?? '')) return false;
  if ((env.OTEL_TRACES_EXPORTER ?? '').split(',')[0]?.trim() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/**
 * The CLI's tracing when the environment configures it (exporter and protocol from the
 * OTEL_* variables); undefined otherwise, with nothing loaded.
 */
export async function startCliTracing(version: string): Promise<Tracing | undefined> {
  if (!cliTracingConfigured()) return undefined;
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({ serviceName: serviceNameFromEnv() ?? 'sandlot-cli', instrumentations: [], metricReaders: [], logRecordProcessors: [] });
  sdk.start();
  return {
    tracer: trace.getTracer('sandlot-cli', version),
    shutdown: async () => {
      await stopWithin(sdk.shutdown(), TRACING_SHUTDOWN_MS);
    },
  };
}
