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

/** The containers of `all` (oldest first, as the store's listByCreation gives them) that match `filter`, in that order. */
export function filterContainers(
  all: ReadonlyArray<Readonly<ContainerRecord>>,
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
  const sel = Object.entries(filter.labelSelector ?? {});
  if (sel.length > 0) recs = recs.filter((r) => sel.every(([k, v]) => r.labels[k] === v));
  return recs;
}
