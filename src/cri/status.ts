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

/**
 * The most characters of a status message sent. The message travels as the
 * `grpc-message` trailer, percent-encoded; Node's HTTP/2 layer cannot send a header
 * block over 64 KiB and then leaves the call unanswered and the connection stuck, so a
 * message that echoes a huge request value (a 1 MiB pod_cidr) is cut.
 */
export const MAX_STATUS_DETAILS = 4096;

export function boundDetails(details: string): string {
  if (details.length <= MAX_STATUS_DETAILS) return details;
  const suffix = ` … [message cut, ${details.length} characters in all]`;
  let head = details.slice(0, MAX_STATUS_DETAILS - suffix.length);
  // Do not split a surrogate pair.
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return head + suffix;
}

export function toGrpcStatus(e: unknown): GrpcStatus {
  if (e instanceof SandlotError) return { code: CODES[e.code], details: boundDetails(e.message), unexpected: false };
  const message = e instanceof Error ? e.message : String(e);
  return { code: Status.INTERNAL, details: boundDetails(message), unexpected: true };
}

export function statusName(code: Status): string {
  return Status[code] ?? String(code);
}

/**
 * Codes that say the server failed, per OpenTelemetry's semantic conventions for gRPC
 * servers; every other code (NOT_FOUND, INVALID_ARGUMENT, ALREADY_EXISTS …) is the
 * client's business and leaves a server span's status unset.
 */
const SERVER_ERRORS: ReadonlySet<Status> = new Set([
  Status.UNKNOWN,
  Status.DEADLINE_EXCEEDED,
  Status.UNIMPLEMENTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);

export function isServerError(code: Status): boolean {
  return SERVER_ERRORS.has(code);
}
