// Finding pods and containers by ID prefix through the daemon, and reading gRPC errors.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { CriClient, CriMessage } from './client.js';
import { IdResolutionError, resolveId } from './id-prefix.js';

export const LIST_TIMEOUT_MS = 30_000;

export function grpcCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function isUnimplemented(e: unknown): boolean {
  return grpcCode(e) === GrpcStatus.UNIMPLEMENTED;
}

/** The daemon's own message (gRPC `details`) rather than "13 INTERNAL: …". */
export function errorText(e: unknown): string {
  const details = (e as { details?: unknown } | null)?.details;
  if (typeof details === 'string' && details) return details;
  return e instanceof Error ? e.message : String(e);
}

export async function listPods(c: CriClient, filter: CriMessage = {}): Promise<CriMessage[]> {
  const res = await c.runtimeCall('ListPodSandbox', { filter }, { timeoutMs: LIST_TIMEOUT_MS });
  return (res.items ?? []) as CriMessage[];
}

export async function listContainers(c: CriClient, filter: CriMessage = {}): Promise<CriMessage[]> {
  const res = await c.runtimeCall('ListContainers', { filter }, { timeoutMs: LIST_TIMEOUT_MS });
  return (res.containers ?? []) as CriMessage[];
}

export function resolvePod(c: CriClient, prefix: string): Promise<string> {
  return resolveId('pod', prefix, async (id) => (await listPods(c, id ? { id } : {})).map((p) => String(p.id)));
}

export function resolveContainer(c: CriClient, prefix: string): Promise<string> {
  return resolveId('container', prefix, async (id) => (await listContainers(c, id ? { id } : {})).map((p) => String(p.id)));
}

export type Resolved = { kind: 'pod' | 'container'; id: string };

/** A pod or a container; a daemon that serves no containers yet only has pods. */
export async function resolveAny(c: CriClient, prefix: string): Promise<Resolved> {
  const found: Resolved[] = [];
  const problems: IdResolutionError[] = [];
  for (const [kind, fn] of [
    ['pod', resolvePod],
    ['container', resolveContainer],
  ] as const) {
    try {
      found.push({ kind, id: await fn(c, prefix) });
    } catch (e) {
      if (e instanceof IdResolutionError) problems.push(e);
      else if (!(kind === 'container' && isUnimplemented(e))) throw e;
    }
  }
  if (found.length === 1) return found[0]!;
  if (found.length > 1) throw new IdResolutionError(`ID prefix "${prefix}" is ambiguous: it matches a pod and a container`, 'ambiguous');
  const ambiguous = problems.find((p) => p.reason === 'ambiguous');
  throw ambiguous ?? new IdResolutionError(`no pod or container "${prefix}" found`, 'not-found');
}
