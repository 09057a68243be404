// Pods a read benchmark keeps running while it reads them: each a busybox container
// sleeping, started through the daemon's own client (bench/read-under-load.ts --hold,
// bench/read-ab.ts).
import path from 'node:path';
import type { TestDaemon } from '../../test/helpers/daemon.js';

/** The image the daemon preloads (test/helpers: writeBusyboxLayout) and the held containers run. */
export const BUSYBOX = 'docker.io/library/busybox:latest';
/** Pods started at once. */
const HOLD_CONCURRENCY = 4;
const START_TIMEOUT_MS = 120_000;

export interface HeldPod {
  pod: string;
  ctr: string;
}

/** A bench pod's config: its logs under `logDir`/`name`. */
export function benchPodConfig(logDir: string, name: string) {
  return {
    metadata: { name, uid: `uid-${name}`, namespace: 'sandlot-bench', attempt: 0 },
    hostname: name,
    log_directory: path.join(logDir, name),
    labels: { app: name },
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
}

/** The container every bench pod runs: busybox sleeping. */
export const BENCH_CONTAINER = { metadata: { name: 'c', attempt: 0 }, image: { image: BUSYBOX }, command: ['/bin/sh', '-c', 'sleep 3600'], log_path: 'c.log' };

/** One pod with a running container. */
async function startHeldPod(d: TestDaemon, logDir: string, handler: string, name: string): Promise<HeldPod> {
  const config = benchPodConfig(logDir, name);
  const pod = String((await d.runtime('RunPodSandbox', { config, runtime_handler: handler }, START_TIMEOUT_MS)).pod_sandbox_id);
  const ctr = String(
    (await d.runtime('CreateContainer', { pod_sandbox_id: pod, config: BENCH_CONTAINER, sandbox_config: config }, START_TIMEOUT_MS)).container_id,
  );
  await d.runtime('StartContainer', { container_id: ctr }, START_TIMEOUT_MS);
  return { pod, ctr };
}

/** Starts `count` held pods, HOLD_CONCURRENCY at a time. */
export async function holdPods(d: TestDaemon, logDir: string, handler: string, count: number): Promise<HeldPod[]> {
  const held: HeldPod[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) held.push(await startHeldPod(d, logDir, handler, `held-${next++}`));
  };
  await Promise.all(Array.from({ length: Math.min(count, HOLD_CONCURRENCY) }, worker));
  return held;
}
