// One trace per CLI invocation when the OpenTelemetry environment variables configure
// tracing (OTEL_EXPORTER_OTLP_ENDPOINT …, src/observe/tracing.ts): a root span
// `sandlot <verb>` around the verb, under which every CRI call it makes is a client span
// whose context the daemon continues (call-trace.ts). Nothing is loaded otherwise.
import { SpanStatusCode } from '@opentelemetry/api';
import { recordFailure } from '../observe/spans.js';
import { startCliTracing } from '../observe/tracing.js';
import { packageVersion } from '../util/package-info.js';

export async function traceVerb(verb: string, run: () => Promise<number>): Promise<number> {
  // The daemon traces by its own config (otlp_endpoint), not as a CLI call.
  const tracing = verb === 'daemon' ? undefined : await startCliTracing(packageVersion());
  if (tracing === undefined) return run();
  try {
    return await tracing.tracer.startActiveSpan(`sandlot ${verb}`, { attributes: { 'sandlot.cli.verb': verb } }, async (span) => {
      try {
        const code = await run();
        span.setAttribute('process.exit.code', code);
        if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: `exit status ${code}` });
        return code;
      } catch (e) {
        recordFailure(span, e);
        throw e;
      } finally {
        span.end();
      }
    });
  } finally {
    // Bounded (TRACING_SHUTDOWN_MS): an unreachable collector must not hold the command.
    await tracing.shutdown();
  }
}
