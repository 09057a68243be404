// The exit status a remotecommand session reports on its error stream. v4 and later
// send a k8s metav1.Status as JSON (client-go turns NonZeroExitCode into an ExitError
// carrying the code); v1–v3 send only the message, and only on failure.
export interface StatusCause {
  reason?: string;
  message: string;
}

export interface K8sStatus {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes: StatusCause[] };
}

export const NON_ZERO_EXIT_CODE_REASON = 'NonZeroExitCode';
export const EXIT_CODE_CAUSE = 'ExitCode';

export function successStatus(): K8sStatus {
  return { metadata: {}, status: 'Success' };
}

export function exitCodeStatus(exitCode: number): K8sStatus {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: exit status ${exitCode}`,
    reason: NON_ZERO_EXIT_CODE_REASON,
    details: { causes: [{ reason: EXIT_CODE_CAUSE, message: String(exitCode) }] },
  };
}

/** As apierrors.NewInternalError: what kubelet reports when exec/attach itself failed. */
export function internalErrorStatus(message: string): K8sStatus {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    code: 500,
    details: { causes: [{ message }] },
  };
}

/** The bytes for the error stream, or undefined when this protocol says nothing. */
export function encodeStatus(status: K8sStatus, jsonStatus: boolean): Buffer | undefined {
  if (jsonStatus) return Buffer.from(JSON.stringify(status));
  return status.status === 'Success' ? undefined : Buffer.from(status.message ?? 'unknown error');
}
