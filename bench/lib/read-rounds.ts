// The List/Status reads the issue-13 target is about ("at 100 pods, List/Status p50 ≤
// containerd's and p99 ≤ 5 ms, also while pods start"), as a kubelet makes them: rounds
// of ListPodSandbox, PodSandboxStatus, ListContainers, ContainerStatus one after another
// over one connection of a Go gRPC client (GoClient), each call timed inside that client.
import type { GoClient } from './cri-runtime.js';
import type { Timings } from './stats.js';

export const READ_RPCS = ['ListPodSandbox', 'PodSandboxStatus', 'ListContainers', 'ContainerStatus'] as const;

/** gRPC's OK. */
const OK = 0;

/**
 * Makes rounds among `pods` (round i reads pod i mod n) while `more(i)` says so; the
 * durations by RPC go into `t`. A round's four calls are handed to the Go client at once
 * (it makes them one after another): nothing of this process runs between them.
 */
export async function readRounds(go: GoClient, pods: Array<{ pod: string; ctr: string }>, more: (round: number) => boolean, t: Timings = {}): Promise<Timings> {
  for (let i = 0; more(i); i++) {
    const { pod, ctr } = pods[i % pods.length];
    const results = await Promise.all([
      go.call('ListPodSandbox', {}),
      go.call('PodSandboxStatus', { pod_sandbox_id: pod }),
      go.call('ListContainers', {}),
      go.call('ContainerStatus', { container_id: ctr }),
    ]);
    results.forEach((r, k) => {
      if (r.code !== OK) throw new Error(`${READ_RPCS[k]} of pod "${pod}": gRPC code ${r.code}: ${r.answer.toString()}`);
      (t[READ_RPCS[k]] ??= []).push(r.ms);
    });
  }
  return t;
}
