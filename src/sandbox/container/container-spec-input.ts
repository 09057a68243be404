// What a container's OCI spec needs beyond its CRI config: the facts of its pod (S1:
// namespaces to join, the pod cgroup, the pod's files) and of this host (the lowest
// oom_score_adj the daemon may hand out without CAP_SYS_RESOURCE, the last capability).
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import type { RuntimeDriver } from '../../oci/runtime.js';
import { infraNamespacePaths, type PodFacts } from '../../oci/spec-container.js';
import { mountHintAnnotations } from '../storage/mount-hints.js';
import { CAP_SYS_RESOURCE_BIT, hasCapability } from '../resources/oom-score.js';
import type { SandboxRecord } from '../pod/sandbox.js';

/** What the container spec needs from its pod record. */
export function podFacts(pod: SandboxRecord, driver: RuntimeDriver): PodFacts {
  const m = pod.config.metadata;
  return {
    id: pod.id,
    name: m.name,
    namespace: m.namespace,
    uid: m.uid,
    runtimeType: driver.type,
    namespaces: pod.config.namespaces,
    namespacePaths: infraNamespacePaths(pod.pid, pod.netnsPath),
    cgroupParent: pod.podCgroup,
    hostname: pod.config.hostname,
    hostsPath: pod.paths.hosts,
    hostnamePath: pod.paths.hostname,
    resolvConfPath: pod.paths.resolvConf,
    shmPath: pod.paths.shm,
    sysctls: pod.config.sysctls,
    // S14: a runtime that makes the pod's shared tmpfs volumes gets the hints on every spec (spec-container.ts).
    mountHintAnnotations: mountHintAnnotations(pod.mountHints ?? []),
  };
}

/**
 * The daemon's own score without CAP_SYS_RESOURCE (no child may go below it); else
 * undefined. Read once, as the OomScoreApplier's floor is: the daemon's capabilities and
 * its own score are set before it starts (issue 13: three /proc reads per create).
 */
export function daemonOomFloor(): number | undefined {
  hostFacts ??= readHostFacts();
  return hostFacts.oomFloor;
}

/** The kernel's last capability (read once). */
export function lastCap(): number | undefined {
  hostFacts ??= readHostFacts();
  return hostFacts.lastCap;
}

/** Facts of the host and of the daemon's own process that do not change while it runs. */
let hostFacts: { oomFloor: number | undefined; lastCap: number | undefined } | undefined;

function readHostFacts(): { oomFloor: number | undefined; lastCap: number | undefined } {
  return { oomFloor: readOomFloor(), lastCap: readLastCap() };
}

function readOomFloor(): number | undefined {
  try {
    if (hasCapability(fsSync.readFileSync('/proc/self/status', 'utf8'), CAP_SYS_RESOURCE_BIT)) return undefined;
    const own = Number(fsSync.readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
    return Number.isInteger(own) ? own : undefined;
  } catch {
    return undefined;
  }
}

function readLastCap(): number | undefined {
  try {
    const n = Number(fsSync.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
    return Number.isInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

export async function readPid(file: string): Promise<number> {
  try {
    const n = Number((await fs.readFile(file, 'utf8')).trim());
    return Number.isInteger(n) ? n : 0;
  } catch {
    return 0;
  }
}
