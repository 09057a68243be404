// Child spans for what a CRI call does (a CNI plugin, a runtime or conmon process, a
// layer's fetch and unpack). Written against @opentelemetry/api only: with tracing off no
// SDK is loaded, no span is recording, and `childSpan` just calls its function.
//
// A call's identifying attributes (pod, container, image, handler) ride in the context:
// the CRI decorator puts the request's there, a runtime driver adds its handler, and
// every child span opened below carries them, so the layers below need not be told.
import { context, createContextKey, INVALID_SPAN_CONTEXT, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';

/** The attribute names sandlot's spans use (OpenTelemetry's where one fits). */
export const SPAN_ATTR = {
  podSandboxId: 'sandlot.pod_sandbox.id',
  podName: 'k8s.pod.name',
  podNamespace: 'k8s.namespace.name',
  podUid: 'k8s.pod.uid',
  containerId: 'container.id',
  containerName: 'k8s.container.name',
  image: 'container.image.name',
  handler: 'sandlot.runtime_handler',
} as const;

const CALL_ATTRIBUTES = createContextKey('sandlot call attributes');

/** The tracer of the globally registered provider (the no-op one when tracing is off). */
function tracer() {
  return trace.getTracer('sandlot');
}

/** Is a span recording in the active context? Only then are child spans made. */
export function tracingActive(): boolean {
  return trace.getActiveSpan()?.isRecording() === true;
}

function callAttributes(): Attributes {
  return (context.active().getValue(CALL_ATTRIBUTES) as Attributes | undefined) ?? {};
}

/** Attributes without the empty ones (an unset request field is no attribute). */
function present(attrs: Attributes): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

/** Runs `fn` with `attrs` added to what every child span opened inside it carries. */
export function withSpanAttributes<T>(attrs: Attributes, fn: () => T): T {
  if (!tracingActive()) return fn();
  return context.with(context.active().setValue(CALL_ATTRIBUTES, { ...callAttributes(), ...present(attrs) }), fn);
}

/** Marks a span failed with an error's message (and the exception event). */
export function recordFailure(span: Span, e: unknown): void {
  if (e instanceof Error) span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
}

/**
 * Runs `fn` in a child span of the active one, named `name`, carrying the call's
 * attributes and `attrs`; a rejection marks it failed. Without an active recording span
 * (tracing off, or work outside any call) `fn` runs as it is.
 */
export async function childSpan<T>(name: string, attrs: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  if (!tracingActive()) return fn(trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
  return tracer().startActiveSpan(name, { attributes: { ...callAttributes(), ...present(attrs) } }, async (span) => {
    try {
      return await fn(span);
    } catch (e) {
      recordFailure(span, e);
      throw e;
    } finally {
      span.end();
    }
  });
}

/**
 * A child span for work that ends later than a function returns (a process's lifetime);
 * the caller ends it. Undefined when no recording span is active.
 */
export function startChildSpan(name: string, attrs: Attributes): Span | undefined {
  if (!tracingActive()) return undefined;
  return tracer().startSpan(name, { attributes: { ...callAttributes(), ...present(attrs) } });
}
