// ListContainers / StreamContainers filtering: id (exact or unique prefix; an ambiguous
// prefix matches nothing, as in containerd), state, pod, labels. Containers still being
// created are not visible (containerd adds them to its store once created).
import { criContainerState, type ContainerRecord, type CriContainerState } from './container.js';

export interface ContainerFilter {
  id?: string;
  state?: CriContainerState;
  podId?: string;
  labelSelector?: Record<string, string>;
}

export function filterContainers(
  all: ContainerRecord[],
  filter: ContainerFilter,
  find: (idOrPrefix: string) => ContainerRecord | undefined,
): ContainerRecord[] {
  let recs = all.filter((r) => r.state !== 'creating');
  if (filter.id) {
    let one: ContainerRecord | undefined;
    try {
      one = find(filter.id);
    } catch {
      one = undefined;
    }
    recs = one && one.state !== 'creating' ? [one] : [];
  }
  if (filter.podId) recs = recs.filter((r) => r.podId === filter.podId);
  if (filter.state) recs = recs.filter((r) => criContainerState(r.state) === filter.state);
  const sel = filter.labelSelector ?? {};
  return recs.filter((r) => Object.entries(sel).every(([k, v]) => r.labels[k] === v)).sort((a, b) => (BigInt(a.createdAt) < BigInt(b.createdAt) ? -1 : 1));
}
