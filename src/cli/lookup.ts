// Finding pods and containers by ID, name or ID prefix through the daemon, and reading gRPC errors.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { CriClient } from './client.js';
import type { RequestInputOf, ResponseOutputOf } from '../cri/handler-types.js';
import { IdResolutionError, pickNamed } from './id-prefix.js';

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

/** A decoded ListPodSandbox item. */
export type PodSandboxItem = ResponseOutputOf<'ListPodSandbox'>['items'][number];
/** A decoded ListContainers item. */
export type ContainerListItem = ResponseOutputOf<'ListContainers'>['containers'][number];

export async function listPods(c: CriClient, filter: NonNullable<RequestInputOf<'ListPodSandbox'>['filter']> = {}): Promise<PodSandboxItem[]> {
  const res = await c.runtimeCall('ListPodSandbox', { filter }, { timeoutMs: LIST_TIMEOUT_MS });
  return res.items;
}

export async function listContainers(c: CriClient, filter: NonNullable<RequestInputOf<'ListContainers'>['filter']> = {}): Promise<ContainerListItem[]> {
  const res = await c.runtimeCall('ListContainers', { filter }, { timeoutMs: LIST_TIMEOUT_MS });
  return res.containers;
}

function stateDetail(state: string): string {
  return state.replace(/^(SANDBOX|CONTAINER)_/, '').toLowerCase();
}

/** A pod by ID, name or unique ID prefix (see pickNamed). */
export async function resolvePod(c: CriClient, ref: string): Promise<string> {
  const pods = await listPods(c);
  const named = pods.map((p) => ({
    id: String(p.id),
    name: String(p.metadata?.name ?? ''),
    detail: `${stateDetail(p.state)}, namespace ${String(p.metadata?.namespace ?? '')}, attempt ${String(p.metadata?.attempt ?? 0)}`,
  }));
  return pickNamed('pod', ref, named).id;
}

/** A container by ID, name or unique ID prefix (see pickNamed). */
export async function resolveContainer(c: CriClient, ref: string): Promise<string> {
  const containers = await listContainers(c);
  const named = containers.map((x) => ({
    id: String(x.id),
    name: String(x.metadata?.name ?? ''),
    detail: `${stateDetail(x.state)}, attempt ${String(x.metadata?.attempt ?? 0)}, pod ${String(x.pod_sandbox_id ?? '').slice(0, 13)}`,
  }));
  return pickNamed('container', ref, named).id;
}

export type Resolved = { kind: 'pod' | 'container'; id: string };

/**
 * A container, else a pod: `inspect web` after `run --name web` shows the container (as
 * docker's inspect does); `inspectp` names pods only.
 */
export async function resolveAny(c: CriClient, ref: string): Promise<Resolved> {
  for (const [kind, fn] of [
    ['container', resolveContainer],
    ['pod', resolvePod],
  ] as const) {
    try {
      return { kind, id: await fn(c, ref) };
    } catch (e) {
      if (!(e instanceof IdResolutionError)) throw e;
      // An ambiguous container reference is not settled by a pod of that name.
      if (e.reason === 'ambiguous') throw e;
    }
  }
  throw new IdResolutionError(`no pod or container "${ref}" found`, 'not-found');
}
