// The decorator around every CRI method: one span, one log line and one histogram
// sample per call, and the only place where thrown errors become gRPC statuses.
// Methods without a handler answer UNIMPLEMENTED.
import {
  Metadata,
  status as Status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { InvalidArgumentError, UnimplementedError } from '../errors.js';
import type { InFlightCount, Metrics } from '../observe/metrics.js';
import { SPAN_ATTR, withSpanAttributes } from '../observe/spans.js';
import { streamHandlerOf, unaryHandlerOf, type AnyStreamHandler, type AnyUnaryHandler, type CallContext, type HandlerSet } from './handler-types.js';
import { framedSerializer } from './message-encoder.js';
import { isServerError, statusName, toGrpcStatus } from './status.js';

export interface InstrumentOptions {
  log: Logger;
  metrics: Metrics;
  tracer: Tracer;
  /** Counts calls in flight, so a shutdown can let them finish. */
  inflight?: InflightCalls;
}

/** Calls being served right now; `idle()` resolves when none is. */
export class InflightCalls {
  private count = 0;
  private begun = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** Calls begun since the start: unchanged between two looks means nothing came meanwhile. */
  get started(): number {
    return this.begun;
  }

  begin(): void {
    this.count += 1;
    this.begun += 1;
  }

  end(): void {
    this.count -= 1;
    if (this.count === 0) for (const w of this.waiters.splice(0)) w();
  }

  idle(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** Calls that only read; logged at debug. Everything else changes state: info. */
const READ_ONLY =
  /^(Version|Status|RuntimeConfig|List|Stream|PodSandboxStatus|ContainerStatus|ImageStatus|ImageFsInfo|ContainerStats|PodSandboxStats|GetContainerEvents)/;

/** The fields a request of any method may carry that name what it is about. */
interface IdentifyingFields {
  pod_sandbox_id?: unknown;
  container_id?: unknown;
  image?: { image?: unknown } | null;
  runtime_handler?: unknown;
  /** RunPodSandbox: the pod's; CreateContainer: the container's. */
  config?: { metadata?: { name?: unknown; namespace?: unknown; uid?: unknown } | null; image?: { image?: unknown } | null } | null;
  /** CreateContainer: the pod's config. */
  sandbox_config?: { metadata?: { name?: unknown; namespace?: unknown; uid?: unknown } | null } | null;
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** What the request says about its pod, container, image and handler, as span attributes (src/observe/spans.ts). */
function spanAttributes(method: string, req: IdentifyingFields): Attributes {
  const pod = method === 'RunPodSandbox' ? req.config?.metadata : req.sandbox_config?.metadata;
  // Set one by one (no object of every name, then filtered): this runs for every call.
  const out: Attributes = {};
  const put = (name: string, v: string | undefined): void => {
    if (v !== undefined) out[name] = v;
  };
  put(SPAN_ATTR.podSandboxId, text(req.pod_sandbox_id));
  put(SPAN_ATTR.podName, text(pod?.name));
  put(SPAN_ATTR.podNamespace, text(pod?.namespace));
  put(SPAN_ATTR.podUid, text(pod?.uid));
  put(SPAN_ATTR.containerId, text(req.container_id));
  put(SPAN_ATTR.containerName, method === 'CreateContainer' ? text(req.config?.metadata?.name) : undefined);
  put(SPAN_ATTR.image, text(req.image?.image) ?? text(req.config?.image?.image));
  put(SPAN_ATTR.handler, text(req.runtime_handler));
  return out;
}

function idFields(req: IdentifyingFields): Record<string, string> {
  const out: Record<string, string> = {};
  const sandbox = req.pod_sandbox_id;
  if (typeof sandbox === 'string' && sandbox !== '') out.podSandboxId = sandbox;
  const container = req.container_id;
  if (typeof container === 'string' && container !== '') out.containerId = container;
  const image = req.image?.image;
  if (typeof image === 'string' && image !== '') out.image = image;
  return out;
}

/** CRI services are named without their package in metrics and messages. */
function fullName(service: string): string {
  return service.includes('.') ? service : `runtime.v1.${service}`;
}

function shortName(service: string): string {
  return service.slice(service.lastIndexOf('.') + 1);
}

/** Reads a propagator's fields (traceparent …) straight from the call's metadata: text values only, the first of each key. */
const METADATA_GETTER: TextMapGetter<Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const v = md.get(key)[0];
    return typeof v === 'string' ? v : undefined;
  },
};

/** What every call of one method shares: worked out once, when the service is registered. */
interface MethodFacts {
  method: string;
  /** The metric labels (service without its package). */
  labels: { service: string; method: string };
  spanName: string;
  rpcAttributes: Attributes;
  /** The level of the "call done" line: reads at debug, everything else at info. */
  doneLevel: 'debug' | 'info';
  /** The duration histogram's labels by status code, made at a code's first call. */
  byCode: Map<Status, { service: string; method: string; code: string }>;
  /** The method's calls in flight (Metrics.callsInFlight), taken at its first call. */
  inFlight: InFlightCount | undefined;
}

function durationLabels(facts: MethodFacts, code: Status): { service: string; method: string; code: string } {
  let labels = facts.byCode.get(code);
  if (labels === undefined) {
    labels = { ...facts.labels, code: statusName(code) };
    facts.byCode.set(code, labels);
  }
  return labels;
}

function methodFacts(service: string, method: string): MethodFacts {
  return {
    method,
    labels: { service: shortName(service), method },
    spanName: `${fullName(service)}/${method}`,
    rpcAttributes: { 'rpc.system': 'grpc', 'rpc.service': fullName(service), 'rpc.method': method },
    doneLevel: READ_ONLY.test(method) ? 'debug' : 'info',
    byCode: new Map(),
    inFlight: undefined,
  };
}

/**
 * What a call says of its cancellation: grpc-js sets `cancelled` and emits "cancelled"
 * when the client cancels, and also after every answered call (once its trailers are
 * sent), so an answered call's "cancelled" is no cancellation.
 */
export interface CancellableCall {
  cancelled: boolean;
  once(event: 'cancelled', listener: () => void): unknown;
}

/** One call in the decorator. It is also the handler's CallContext: its logger and signal are getters, made only if the handler uses them. */
class CallScope implements CallContext {
  /** performance.now() at the start (a number: an hrtime bigint is two allocations per call). */
  readonly start = performance.now();
  readonly span;
  /** The context with this call's span active: handlers run in it, so their work is its children. */
  private readonly otelContext: Context;
  private readonly attributes: Attributes;
  // Made when first used: a read that logs nothing at the daemon's level needs neither.
  private logger: Logger | undefined;
  private controller: AbortController | undefined;
  private done = false;
  private readonly inFlight: InFlightCount;

  constructor(
    private readonly opts: InstrumentOptions,
    private readonly facts: MethodFacts,
    private readonly req: IdentifyingFields,
    parent: Context,
    private readonly call: CancellableCall,
  ) {
    opts.inflight?.begin();
    this.inFlight = facts.inFlight ??= opts.metrics.callsInFlight(facts.labels);
    this.inFlight.n++;
    this.attributes = spanAttributes(facts.method, req);
    this.span = opts.tracer.startSpan(facts.spanName, { kind: SpanKind.SERVER, attributes: { ...facts.rpcAttributes, ...this.attributes } }, parent);
    this.otelContext = trace.setSpan(parent, this.span);
  }

  get log(): Logger {
    return (this.logger ??= this.opts.log.child({ rpc: this.facts.method, ...idFields(this.req) }));
  }

  /** The client cancelled the call (before it was answered). */
  get cancelled(): boolean {
    return !this.done && this.call.cancelled;
  }

  /**
   * Aborted when the client cancels. Made when the handler first asks for it: only then is
   * the call watched (a read never asks).
   */
  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = new AbortController();
      this.controller = controller;
      const cancel = () => {
        if (!this.done) controller.abort(new Error('call cancelled by the client'));
      };
      if (this.call.cancelled) cancel();
      else this.call.once('cancelled', cancel);
    }
    return this.controller.signal;
  }

  /** Runs `fn` (the handler) in the call's span, with the request's attributes for its child spans. */
  run<T>(fn: () => T): T {
    return context.with(this.otelContext, () => withSpanAttributes(this.attributes, fn));
  }

  /** Names on the span what the call made (RunPodSandbox's pod, CreateContainer's container): traces are found by these IDs. */
  noteAnswer(res: unknown): void {
    if (!this.span.isRecording() || typeof res !== 'object' || res === null) return;
    const { pod_sandbox_id: pod, container_id: ctr } = res as { pod_sandbox_id?: unknown; container_id?: unknown };
    if (typeof pod === 'string' && pod !== '') this.span.setAttribute(SPAN_ATTR.podSandboxId, pod);
    if (typeof ctr === 'string' && ctr !== '') this.span.setAttribute(SPAN_ATTR.containerId, ctr);
  }

  /** Records the outcome; returns the status to send. Logged in the call's span: its line carries the trace ID. */
  finish(e: unknown): { code: Status; details: string } {
    return context.with(this.otelContext, () => this.record(e));
  }

  private record(e: unknown): { code: Status; details: string } {
    this.done = true;
    const durationMs = performance.now() - this.start;
    let code = Status.OK;
    let details = '';
    if (e !== undefined) {
      const st = toGrpcStatus(e);
      code = st.code;
      details = st.details;
      if (st.unexpected) this.log.error({ err: e, durationMs, code: statusName(code) }, 'call failed unexpectedly');
      else this.log.warn({ durationMs, code: statusName(code), error: details }, 'call failed');
      // OpenTelemetry's gRPC conventions for servers: only codes that say the server
      // failed make the span an error; a client's mistake (NOT_FOUND …) leaves it unset.
      if (isServerError(code)) this.span.setStatus({ code: SpanStatusCode.ERROR, message: details });
    } else {
      const level = this.facts.doneLevel;
      if (this.opts.log.isLevelEnabled(level)) this.log[level]({ durationMs, code: 'OK' }, 'call done');
    }
    this.span.setAttribute('rpc.grpc.status_code', code);
    this.span.end();
    this.opts.metrics.criCallDuration.observe(durationLabels(this.facts, code), durationMs / 1000);
    this.inFlight.n--;
    this.opts.inflight?.end();
    return { code, details };
  }
}

/** Marks a request body that did not decode; the handler wrapper answers INVALID_ARGUMENT for it. */
const MALFORMED = Symbol('malformed request');

interface MalformedRequest {
  [MALFORMED]: string;
}

function malformedReason(req: unknown): string | undefined {
  return typeof req === 'object' && req !== null && MALFORMED in req ? (req as MalformedRequest)[MALFORMED] : undefined;
}

/**
 * The definition with a request decoder that never throws: grpc-js answers INTERNAL
 * for a body its decoder rejects, yet a malformed body is the client's mistake. The
 * failure is carried to the handler wrapper, which answers INVALID_ARGUMENT naming the
 * message type.
 */
export function tolerantDefinition(definition: ServiceDefinition): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [name, def] of Object.entries(definition)) {
    const decode = def.requestDeserialize;
    out[name] = {
      ...def,
      requestDeserialize: (buf: Buffer) => {
        try {
          const decoded: unknown = decode(buf);
          return decoded;
        } catch (e: unknown) {
          const reason = e instanceof Error ? e.message : String(e);
          return { [MALFORMED]: reason } satisfies MalformedRequest;
        }
      },
    };
  }
  return out;
}

function malformedError(service: string, method: string, reason: string): InvalidArgumentError {
  return new InvalidArgumentError(`the request body of ${shortName(service)}/${method} is not a valid protobuf ${method}Request: ${reason}`);
}

/** How a unary call ends: the answer, or the status to send instead. */
export type UnaryDone = (status: { code: Status; details: string } | null, answer?: unknown) => void;

/**
 * Serves one unary call of one method through the decorator: `request` is what the
 * method's (tolerant) decoder made, `parent` the trace context the client's metadata
 * carries. Both servers of unary calls use it: grpc-js's handlers (wrapUnary) and the
 * lean path (src/cri/unary-streams.ts).
 */
export type UnaryServe = (request: object, parent: Context, call: CancellableCall, done: UnaryDone) => void;

export function unaryServe(opts: InstrumentOptions, service: string, method: string, handler: AnyUnaryHandler): UnaryServe {
  const facts = methodFacts(service, method);
  return (decoded, parent, call, done) => {
    const bad = malformedReason(decoded);
    const request: object = bad === undefined ? decoded : {};
    const scope = new CallScope(opts, facts, request, parent, call);
    // A handler that throws synchronously (a plain function, not `async`) is answered with
    // its status like one that rejects, not left to the server. Called at once rather than
    // from a then() on a resolved promise: that was a promise and a microtask per call.
    let pending: Promise<unknown>;
    try {
      if (bad !== undefined) throw malformedError(service, method, bad);
      pending = Promise.resolve(scope.run(() => handler(request, scope)));
    } catch (e: unknown) {
      // Answered a microtask later, as a rejection is.
      queueMicrotask(() => done(scope.finish(e)));
      return;
    }
    pending.then(
      (res: unknown) => {
        scope.noteAnswer(res);
        scope.finish(undefined);
        done(null, res);
      },
      (e: unknown) => done(scope.finish(e)),
    );
  };
}

/** The trace context a grpc-js call's metadata carries. */
function parentOf(md: Metadata): Context {
  return propagation.extract(context.active(), md, METADATA_GETTER);
}

function wrapUnary(serve: UnaryServe) {
  return (call: ServerUnaryCall<object, unknown>, callback: sendUnaryData<unknown>): void => {
    serve(call.request, parentOf(call.metadata), call, (st, res) => {
      if (st === null) callback(null, res);
      else callback({ code: st.code, details: st.details, metadata: new Metadata() });
    });
  };
}

function wrapStream(opts: InstrumentOptions, service: string, method: string, handler: AnyStreamHandler) {
  const facts = methodFacts(service, method);
  return (call: ServerWritableStream<object, unknown>): void => {
    const bad = malformedReason(call.request);
    const request: object = bad === undefined ? call.request : {};
    const scope = new CallScope(opts, facts, request, parentOf(call.metadata), call);
    void scope.run(async () => {
      try {
        if (bad !== undefined) throw malformedError(service, method, bad);
        // Inside the try: a handler that throws synchronously (before returning its
        // iterable) is answered with its status too.
        for await (const msg of handler(request, scope)) {
          if (scope.cancelled) break;
          if (!call.write(msg)) await new Promise((r) => call.once('drain', r));
        }
        scope.finish(undefined);
        call.end();
      } catch (e: unknown) {
        const { code, details } = scope.finish(e);
        call.emit('error', { code, details, metadata: new Metadata() });
      }
    });
  };
}

export function unimplementedMessage(service: string, method: string): string {
  return `sandlot: ${shortName(service)}/${method} is not implemented yet`;
}

/** A unary method as the lean path (src/cri/unary-streams.ts) serves it. */
export interface UnaryRoute {
  /** `/runtime.v1.RuntimeService/ListPodSandbox` … */
  path: string;
  /** The method's request decoder (from tolerantDefinition: never throws). */
  decode: (buf: Buffer) => object;
  /** The answer as one uncompressed gRPC message frame (length prefix and message). */
  encodeFramed: (answer: unknown) => Buffer;
  serve: UnaryServe;
}

export interface ServiceImplementation {
  /** For grpc-js's addService: every method. */
  grpc: UntypedServiceImplementation;
  /** The unary methods again, served by the same decorator, for the lean path. */
  unary: UnaryRoute[];
}

/**
 * Builds the implementation of one service: every method of the definition (pass it
 * through tolerantDefinition first) is registered, with the handler from `handlers` or
 * an UNIMPLEMENTED answer.
 */
export function implementService(opts: InstrumentOptions, serviceName: string, definition: ServiceDefinition, handlers: HandlerSet): ServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  const unary: UnaryRoute[] = [];
  for (const [name, def] of Object.entries(definition)) {
    const method = name;
    if (def.responseStream) {
      const h: AnyStreamHandler =
        streamHandlerOf(handlers, method) ??
        (() => {
          throw new UnimplementedError(unimplementedMessage(serviceName, method));
        });
      impl[name] = wrapStream(opts, serviceName, method, h);
    } else {
      const h: AnyUnaryHandler = unaryHandlerOf(handlers, method) ?? (() => Promise.reject(new UnimplementedError(unimplementedMessage(serviceName, method))));
      const serve = unaryServe(opts, serviceName, method, h);
      impl[name] = wrapUnary(serve);
      if (!def.requestStream) {
        const encodeFramed = framedSerializer(def.responseSerialize as (value: object) => Buffer);
        unary.push({ path: def.path, decode: (buf) => def.requestDeserialize(buf) as object, encodeFramed: (v) => encodeFramed(v as object), serve });
      }
    }
  }
  return { grpc: impl, unary };
}
