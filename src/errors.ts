// Typed errors. Code below src/cri throws these; src/cri/status.ts is the one place
// that turns them into gRPC status codes. Messages follow the house grammar:
// lowercase, a chain of gerunds, IDs and paths quoted (`starting container "abc": …`).

export type SandlotErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'DEADLINE_EXCEEDED'
  | 'UNAVAILABLE'
  | 'RESOURCE_EXHAUSTED'
  | 'INTERNAL'
  | 'UNIMPLEMENTED'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'ABORTED'
  | 'CANCELLED';

export interface ErrorOptions {
  cause?: unknown;
}

export class SandlotError extends Error {
  readonly code: SandlotErrorCode = 'INTERNAL';
  override readonly name: string = 'SandlotError';

  constructor(message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

export class NotFoundError extends SandlotError {
  override readonly code = 'NOT_FOUND';
  override readonly name = 'NotFoundError';
}
export class AlreadyExistsError extends SandlotError {
  override readonly code = 'ALREADY_EXISTS';
  override readonly name = 'AlreadyExistsError';
}
export class InvalidArgumentError extends SandlotError {
  override readonly code = 'INVALID_ARGUMENT';
  override readonly name = 'InvalidArgumentError';
}
export class FailedPreconditionError extends SandlotError {
  override readonly code = 'FAILED_PRECONDITION';
  override readonly name = 'FailedPreconditionError';
}
export class DeadlineExceededError extends SandlotError {
  override readonly code = 'DEADLINE_EXCEEDED';
  override readonly name = 'DeadlineExceededError';
}
export class UnavailableError extends SandlotError {
  override readonly code = 'UNAVAILABLE';
  override readonly name = 'UnavailableError';
}
export class ResourceExhaustedError extends SandlotError {
  override readonly code = 'RESOURCE_EXHAUSTED';
  override readonly name = 'ResourceExhaustedError';
}
export class InternalError extends SandlotError {
  override readonly code = 'INTERNAL';
  override readonly name = 'InternalError';
}
export class UnimplementedError extends SandlotError {
  override readonly code = 'UNIMPLEMENTED';
  override readonly name = 'UnimplementedError';
}
export class UnauthenticatedError extends SandlotError {
  override readonly code = 'UNAUTHENTICATED';
  override readonly name = 'UnauthenticatedError';
}
export class PermissionDeniedError extends SandlotError {
  override readonly code = 'PERMISSION_DENIED';
  override readonly name = 'PermissionDeniedError';
}

/** The message of anything thrown, for error chains. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Node system errors carry a string `code` such as ENOENT. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = e.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

export function isNotFound(e: unknown): boolean {
  return e instanceof NotFoundError || errnoCode(e) === 'ENOENT';
}

/** Wraps `e` with a context prefix, keeping its type when it is one of ours. */
export function wrapError(context: string, e: unknown): SandlotError {
  const msg = `${context}: ${errorMessage(e)}`;
  if (e instanceof SandlotError) {
    const Ctor = e.constructor as new (m: string, o: ErrorOptions) => SandlotError;
    return new Ctor(msg, { cause: e });
  }
  return new InternalError(msg, { cause: e });
}
