// The one place where errors become gRPC statuses.
import { status as Status } from '@grpc/grpc-js';
import { SandlotError, type SandlotErrorCode } from '../errors.js';

const CODES: Record<SandlotErrorCode, Status> = {
  NOT_FOUND: Status.NOT_FOUND,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  UNAVAILABLE: Status.UNAVAILABLE,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  INTERNAL: Status.INTERNAL,
  UNIMPLEMENTED: Status.UNIMPLEMENTED,
  UNAUTHENTICATED: Status.UNAUTHENTICATED,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
  ABORTED: Status.ABORTED,
  CANCELLED: Status.CANCELLED,
};

export interface GrpcStatus {
  code: Status;
  details: string;
  /** True when the error was not one of ours: log it with its stack. */
  unexpected: boolean;
}

export function toGrpcStatus(e: unknown): GrpcStatus {
  if (e instanceof SandlotError) return { code: CODES[e.code], details: e.message, unexpected: false };
  const message = e instanceof Error ? e.message : String(e);
  return { code: Status.INTERNAL, details: message, unexpected: true };
}

export function statusName(code: Status): string {
  return Status[code] ?? String(code);
}
