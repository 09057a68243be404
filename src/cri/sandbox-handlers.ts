// CRI pod sandbox RPCs: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
// PodSandboxStatus, ListPodSandbox, StreamPodSandboxes. Requests are validated here
// (fields named in every error); src/sandbox trusts what it gets.
import path from 'node:path';
import net from 'node:net';
import os from 'node:os';
import { InvalidArgumentError } from '../errors.js';
import type { PortMapping } from '../network/network-manager.js';
import { podHostname, type IpcMode, type NetworkMode, type PidMode } from '../oci/spec-sandbox.js';
import { podUserNamespace, type CriUserNamespace } from '../oci/user-namespace.js';
import type { PodFilter, PodManager } from '../sandbox/pod/pod-manager.js';
import { parseMountHints } from '../sandbox/storage/mount-hints.js';
import { criState, type RunPodInput, type SandboxRecord } from '../sandbox/pod/sandbox.js';
import type { CriResources } from '../sandbox/resources/cgroups.js';
import type { DNSConfig } from '../types/cri/runtime/v1/DNSConfig.js';
import type { LinuxContainerResources } from '../types/cri/runtime/v1/LinuxContainerResources.js';
import type { PodSandbox } from '../types/cri/runtime/v1/PodSandbox.js';
import type { PodSandboxFilter } from '../types/cri/runtime/v1/PodSandboxFilter.js';
import type { PodSandboxMetadata } from '../types/cri/runtime/v1/PodSandboxMetadata.js';
import type { PodSandboxStatus } from '../types/cri/runtime/v1/PodSandboxStatus.js';
import type { PodSandboxStatusResponse } from '../types/cri/runtime/v1/PodSandboxStatusResponse.js';
import type { PortMapping as PortMappingMessage } from '../types/cri/runtime/v1/PortMapping.js';
import type { RunPodSandboxRequest } from '../types/cri/runtime/v1/RunPodSandboxRequest.js';
import { AnswerMemo } from './answer-memo.js';
import { answer, type HandlerSet } from './handler-types.js';
import { int64 } from './message-encoder.js';

const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;

/** A name or ID component: never a path separator or a parent reference. */
function checkComponent(field: string, value: string): void {
  if (value.includes('/') || value.includes('..') || value.includes('\0')) {
    throw new InvalidArgumentError(`${field} "${value}" must not contain "/", ".." or NUL`);
  }
}

function requireString(field: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`${field} is required`);
  return v;
}

function stringMap(v: unknown): Record<string, string> {
  return v && typeof v === 'object' ? { ...(v as Record<string, string>) } : {};
}

function mode<T extends string>(field: string, v: unknown, allowed: readonly T[], dflt: T): T {
  if (v === undefined || v === null || v === '') return dflt;
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    throw new InvalidArgumentError(`${field} ${JSON.stringify(v)} is not supported; allowed: ${allowed.join(', ')}`);
  }
  return v as T;
}

function int(field: string, v: unknown, min: number, max: number): number {
  const n = Number(v ?? 0);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${field} ${JSON.stringify(v)} must be an integer ${min}-${max}`);
  return n;
}

function isProtocol(v: unknown): v is PortMapping['protocol'] {
  return (PROTOCOLS as readonly unknown[]).includes(v);
}

function parsePortMappings(list: PortMappingMessage[]): PortMapping[] {
  return list.map((p, i) => {
    const f = `config.port_mappings[${i}]`;
    const protocol = p.protocol ?? 'TCP';
    if (!isProtocol(protocol)) {
      throw new InvalidArgumentError(`${f}.protocol ${JSON.stringify(protocol)} is unknown; allowed: ${PROTOCOLS.join(', ')}`);
    }
    const hostIp = String(p.host_ip ?? '');
    if (hostIp !== '' && net.isIP(hostIp) === 0) throw new InvalidArgumentError(`${f}.host_ip "${hostIp}" is no IP address`);
    return {
      protocol,
      containerPort: int(`${f}.container_port`, p.container_port, 1, 65535),
      hostPort: int(`${f}.host_port`, p.host_port, 0, 65535),
      hostIp,
    };
  });
}

function parseDns(dnsRaw: DNSConfig | null | undefined): RunPodInput['dns'] {
  const dns = dnsRaw ? { servers: [...(dnsRaw.servers ?? [])], searches: [...(dnsRaw.searches ?? [])], options: [...(dnsRaw.options ?? [])] } : undefined;
  dns?.servers.forEach((s: string, i: number) => {
    if (net.isIP(s) === 0) throw new InvalidArgumentError(`config.dns_config.servers[${i}] "${s}" is no IP address`);
  });
  for (const [list, f] of [
    [dns?.searches ?? [], 'searches'],
    [dns?.options ?? [], 'options'],
  ] as const) {
    list.forEach((s: string, i: number) => {
      if (/[\s\0]/.test(s) || s === '') throw new InvalidArgumentError(`config.dns_config.${f}[${i}] ${JSON.stringify(s)} is empty or holds whitespace`);
    });
  }
  return dns;
}

/** int64 fields arrive as decimal strings (longs: String); only a hand-built request holds a Long or a number. */
function podResourcesOf(r: LinuxContainerResources | null | undefined): CriResources | undefined {
  if (!r) return undefined;
  const out = { ...r } as CriResources;
  for (const k of ['cpu_period', 'cpu_quota', 'cpu_shares', 'memory_limit_in_bytes'] as const) {
    const v = r[k];
    if (v !== undefined && v !== null) out[k] = typeof v === 'object' ? v.toString() : v;
  }
  return out;
}

export function parseRunPodSandbox(req: RunPodSandboxRequest): RunPodInput {
  const c = req.config;
  if (!c) throw new InvalidArgumentError('config is required');
  const m = c.metadata;
  if (!m) throw new InvalidArgumentError('config.metadata is required');
  const name = requireString('config.metadata.name', m.name);
  const namespace = String(m.namespace ?? '');
  const uid = String(m.uid ?? '');
  checkComponent('config.metadata.name', name);
  checkComponent('config.metadata.namespace', namespace);
  checkComponent('config.metadata.uid', uid);
  const logDirectory = String(c.log_directory ?? '');
  if (logDirectory !== '' && (!path.isAbsolute(logDirectory) || logDirectory.split('/').includes('..'))) {
    throw new InvalidArgumentError(`config.log_directory "${logDirectory}" must be an absolute path without ".."`);
  }
  const linux = c.linux ?? {};
  const nsOpts = linux.security_context?.namespace_options ?? {};
  const field = 'config.linux.security_context.namespace_options';
  // S19: mappings without a user namespace are an error (podUserNamespace).
  const user = podUserNamespace(nsOpts.userns_options as CriUserNamespace | null | undefined, `${field}.userns_options`);
  const namespaces = {
    network: mode<NetworkMode>(`${field}.network`, nsOpts.network, ['POD', 'NODE'], 'POD'),
    pid: mode<PidMode>(`${field}.pid`, nsOpts.pid, ['POD', 'CONTAINER', 'NODE'], 'CONTAINER'),
    ipc: mode<IpcMode>(`${field}.ipc`, nsOpts.ipc, ['POD', 'NODE'], 'POD'),
    ...(user ? { user } : {}),
  };
  if (user && namespaces.network !== 'POD') {
    throw new InvalidArgumentError(
      `${field}.userns_options: a pod user namespace needs the pod's own network namespace (network POD), not ${namespaces.network}`,
    );
  }
  const portMappings = parsePortMappings(c.port_mappings ?? []);
  const dns = parseDns(c.dns_config);
  const hostname = podHostname(String(c.hostname ?? ''), os.hostname());
  const cgroupParent = String(linux.cgroup_parent ?? '');
  if (cgroupParent !== '' && (!path.isAbsolute(cgroupParent) || cgroupParent.split('/').includes('..') || path.normalize(cgroupParent) === '/')) {
    throw new InvalidArgumentError(`config.linux.cgroup_parent "${cgroupParent}" must be an absolute cgroup path below the root, without ".."`);
  }
  const handler = String(req.runtime_handler ?? '');
  checkComponent('runtime_handler', handler);
  const annotations = stringMap(c.annotations);
  // S14: an unknown type or share (or any bad hint) is INVALID_ARGUMENT naming the annotation.
  parseMountHints(annotations, /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(uid) ? { podUid: uid } : {});
  return {
    metadata: { name, uid, namespace, attempt: int('config.metadata.attempt', m.attempt, 0, 2 ** 32 - 1) },
    hostname,
    logDirectory,
    dns,
    portMappings,
    labels: stringMap(c.labels),
    annotations,
    cgroupParent: cgroupParent === '' ? '' : path.normalize(cgroupParent),
    namespaces,
    sysctls: stringMap(linux.sysctls),
    resources: podResourcesOf(linux.resources),
    overhead: podResourcesOf(linux.overhead),
    runtimeHandler: handler,
  };
}

function podId(req: { pod_sandbox_id?: string }): string {
  const id = requireString('pod_sandbox_id', req.pod_sandbox_id);
  checkComponent('pod_sandbox_id', id);
  return id;
}

function metadataOf(r: SandboxRecord): PodSandboxMetadata {
  const m = r.config.metadata;
  return { name: m.name, uid: m.uid, namespace: m.namespace, attempt: m.attempt };
}

function podSandbox(r: SandboxRecord): PodSandbox {
  return {
    id: r.id,
    metadata: metadataOf(r),
    state: criState(r.state),
    created_at: r.createdAt,
    labels: r.config.labels,
    annotations: r.config.annotations,
    runtime_handler: r.runtimeHandler,
  };
}

export function podSandboxStatus(r: SandboxRecord): PodSandboxStatus {
  const ns = r.config.namespaces;
  return {
    id: r.id,
    metadata: metadataOf(r),
    state: criState(r.state),
    created_at: r.createdAt,
    network: { ip: r.ip, additional_ips: r.additionalIps.map((ip) => ({ ip })) },
    linux: { namespaces: { options: { network: ns.network, pid: ns.pid, ipc: ns.ipc, target_id: '' } } },
    labels: r.config.labels,
    annotations: r.config.annotations,
    runtime_handler: r.runtimeHandler,
  };
}

function parseFilter(f: PodSandboxFilter | null | undefined): PodFilter {
  if (!f) return {};
  const out: PodFilter = {};
  if (f.id) out.id = String(f.id);
  if (f.state) {
    const s = f.state.state ?? 'SANDBOX_READY';
    if (s !== 'SANDBOX_READY' && s !== 'SANDBOX_NOTREADY') throw new InvalidArgumentError(`filter.state.state ${JSON.stringify(s)} is unknown`);
    out.state = s;
  }
  if (f.label_selector) out.labelSelector = stringMap(f.label_selector);
  return out;
}

export function sandboxHandlers(pods: PodManager): HandlerSet {
  // List and status answers: one message per frozen record, sent as the bytes it was first
  // encoded to (PodManager.get answers a copy today: its status is built each time).
  const listed = new AnswerMemo(podSandbox);
  const statuses = new AnswerMemo(podSandboxStatus);
  const items = (filter: PodSandboxFilter | null | undefined) => listed.list(pods.list(parseFilter(filter)));
  return {
    unary: {
      async RunPodSandbox(req) {
        const input = parseRunPodSandbox(req);
        // An unknown handler is INVALID_ARGUMENT listing the configured ones (before the probe check).
        pods.driver(input.runtimeHandler);
        return { pod_sandbox_id: await pods.run(input) };
      },
      async StopPodSandbox(req) {
        await pods.stop(podId(req));
        return {};
      },
      async RemovePodSandbox(req) {
        await pods.remove(podId(req));
        return {};
      },
      PodSandboxStatus(req) {
        return answer(() => {
          // From memory: infra exits are pushed (PodManager), nothing is read here.
          const r = pods.view(podId(req));
          const res: PodSandboxStatusResponse = {
            status: statuses.of(r),
            info: {},
            containers_statuses: [],
            timestamp: int64(BigInt(Date.now()) * 1_000_000n),
          };
          if (req.verbose) {
            res.info = {
              info: JSON.stringify({
                pid: r.pid,
                conmonPid: r.conmonPid,
                handler: r.runtimeHandler,
                state: r.state,
                reason: r.reason ?? '',
                netnsPath: r.netnsPath ?? '',
                podCgroup: r.podCgroup,
                infraCgroup: r.infraCgroup,
                paths: r.paths,
                runtimeSpec: path.join(r.paths.bundle, 'config.json'),
              }),
            };
          }
          return res;
        });
      },
      ListPodSandbox(req) {
        return answer(() => ({ items: items(req.filter) }));
      },
    },
    stream: {
      *StreamPodSandboxes(req) {
        yield { pod_sandboxes: items(req.filter) };
      },
    },
  };
}
