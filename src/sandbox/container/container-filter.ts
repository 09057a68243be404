// ListContainers / StreamContainers filtering: id (exact or unique prefix; an ambiguous
// prefix matches nothing, as in containerd), state, pod, labels. Containers still being
// created are not visible (containerd adds them to its store once created).
import { compareDecimal } from '../../util/decimal-order.js';
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
  const sel = Object.entries(filter.labelSelector ?? {});
  if (sel.length > 0) recs = recs.filter((r) => sel.every(([k, v]) => r.labels[k] === v));
  return recs.sort((a, b) => compareDecimal(a.createdAt, b.createdAt));
}
