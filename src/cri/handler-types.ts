// The shape every CRI handler has. Handlers receive the decoded request (proto-loader
// with keepCase, int64 as strings, enums as names, defaults filled) and return the
// response object, or throw a typed error from src/errors.ts. The instrumentation in
// src/cri/instrument.ts turns thrown errors into gRPC statuses; handlers never do.
import type { Logger } from 'pino';

export interface CallContext {
  /** Logger bound to the call (`rpc` field set). */
  log: Logger;
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
}

// Requests are loosely typed at this layer on purpose: the validating code in each
// handler turns them into typed inputs for the layers below.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CriRequest = Record<string, any>;
export type CriResponse = Record<string, unknown>;

export type UnaryHandler = (req: CriRequest, ctx: CallContext) => Promise<CriResponse>;
/** Server-streaming RPCs (Stream*, GetContainerEvents): yield each response message. */
export type StreamHandler = (req: CriRequest, ctx: CallContext) => AsyncIterable<CriResponse>;

/** Handlers keyed by method name (`PullImage`, `RunPodSandbox` …). */
export interface HandlerSet {
  unary?: Record<string, UnaryHandler>;
  stream?: Record<string, StreamHandler>;
}
