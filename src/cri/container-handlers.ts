// CRI container RPCs: CreateContainer, StartContainer, StopContainer, RemoveContainer,
// ContainerStatus, ListContainers, StreamContainers, UpdateContainerResources,
// ReopenContainerLog. Requests are validated here (fields named in every error); the
// container layer trusts what it gets.
import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { checkPreparedMounts } from '../oci/prepared-mounts.js';
import { buildResources, type CriContainerConfig, type CriContainerResources, type CriMount } from '../oci/spec-container.js';
import { criContainerState, type ContainerRecord, type CriContainerState } from '../sandbox/container/container.js';
import type { ContainerFilter } from '../sandbox/container/container-filter.js';
import type { ContainerManager, CreateContainerInput } from '../sandbox/container/container-manager.js';
import type { Container } from '../types/cri/runtime/v1/Container.js';
import type { ContainerFilter as ContainerFilterMessage } from '../types/cri/runtime/v1/ContainerFilter.js';
import type { ContainerMetadata } from '../types/cri/runtime/v1/ContainerMetadata.js';
import type { ContainerStatus } from '../types/cri/runtime/v1/ContainerStatus.js';
import type { ContainerStatusResponse } from '../types/cri/runtime/v1/ContainerStatusResponse.js';
import type { CreateContainerRequest } from '../types/cri/runtime/v1/CreateContainerRequest.js';
import type { IDMapping } from '../types/cri/runtime/v1/IDMapping.js';
import type { Mount } from '../types/cri/runtime/v1/Mount.js';
import type { Signal__Output } from '../types/cri/runtime/v1/Signal.js';
import { AnswerMemo } from './answer-memo.js';
import type { HandlerSet } from './handler-types.js';

const CRI_STATES: readonly CriContainerState[] = ['CONTAINER_CREATED', 'CONTAINER_RUNNING', 'CONTAINER_EXITED', 'CONTAINER_UNKNOWN'];
/** The CRI Signal enum names sandlot reports as stop_signal. */
const SIGNAL_NAMES = new Set<string>([
  'SIGABRT',
  'SIGALRM',
  'SIGBUS',
  'SIGCHLD',
  'SIGCLD',
  'SIGCONT',
  'SIGFPE',
  'SIGHUP',
  'SIGILL',
  'SIGINT',
  'SIGIO',
  'SIGIOT',
  'SIGKILL',
  'SIGPIPE',
  'SIGPOLL',
  'SIGPROF',
  'SIGPWR',
  'SIGQUIT',
  'SIGSEGV',
  'SIGSTKFLT',
  'SIGSTOP',
  'SIGSYS',
  'SIGTERM',
  'SIGTRAP',
  'SIGTSTP',
  'SIGTTIN',
  'SIGTTOU',
  'SIGURG',
  'SIGUSR1',
  'SIGUSR2',
  'SIGVTALRM',
  'SIGWINCH',
  'SIGXCPU',
  'SIGXFSZ',
]);

function isSignalName(v: string): v is Signal__Output {
  return SIGNAL_NAMES.has(v);
}

function isCriState(v: unknown): v is CriContainerState {
  return (CRI_STATES as readonly unknown[]).includes(v);
}

/** The mounts as created; ID mappings absent in the record are empty lists on the wire. */
function mountOf(m: CriMount): Mount {
  return { ...m, uidMappings: (m.uidMappings ?? []) as IDMapping[], gidMappings: (m.gidMappings ?? []) as IDMapping[] };
}

function requireString(field: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`${field} is required`);
  return v;
}

/** An ID or name component: never a path separator or a parent reference. */
function checkComponent(field: string, value: string): void {
  if (value.includes('/') || value.includes('..') || value.includes('\0')) {
    throw new InvalidArgumentError(`${field} "${value}" must not contain "/", ".." or NUL`);
  }
}

function containerId(req: { container_id?: string }): string {
  const id = requireString('container_id', req.container_id);
  checkComponent('container_id', id);
  return id;
}

/** Negative CPU or memory figures are rejected before anything is made. */
function checkResources(field: string, r: CriContainerResources | null | undefined): void {
  if (!r) return;
  for (const k of ['cpu_period', 'cpu_quota', 'cpu_shares', 'memory_limit_in_bytes'] as const) {
    const v = Number(r[k] ?? 0);
    if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`${field}.${k} ${JSON.stringify(r[k])} must be a non-negative integer`);
  }
  try {
    buildResources(r);
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new InvalidArgumentError(`${field}: ${e.message}`, { cause: e });
    throw e;
  }
}

export function parseCreateContainer(req: CreateContainerRequest): CreateContainerInput {
  const podId = requireString('pod_sandbox_id', req.pod_sandbox_id);
  checkComponent('pod_sandbox_id', podId);
  const c = req.config as CriContainerConfig | undefined | null;
  if (!c) throw new InvalidArgumentError('config is required');
  const name = requireString('config.metadata.name', c.metadata?.name);
  checkComponent('config.metadata.name', name);
  const attempt = Number(c.metadata?.attempt ?? 0);
  if (!Number.isInteger(attempt) || attempt < 0)
    throw new InvalidArgumentError(`config.metadata.attempt ${JSON.stringify(c.metadata?.attempt)} must be a non-negative integer`);
  const image = requireString('config.image.image', c.image?.image);
  const logPath = String(c.log_path ?? '');
  if (logPath !== '' && (path.isAbsolute(logPath) || logPath.split('/').includes('..') || logPath.includes('\0'))) {
    throw new InvalidArgumentError(`config.log_path "${logPath}" must be a relative path without ".."`);
  }
  (c.mounts ?? []).forEach((m, i) => {
    if (!path.isAbsolute(m.container_path ?? '')) throw new InvalidArgumentError(`config.mounts[${i}].container_path "${m.container_path}" must be absolute`);
  });
  checkPreparedMounts(c.mounts ?? [], 'config.mounts');
  checkResources('config.linux.resources', c.linux?.resources);
  return {
    podId,
    config: { ...c, metadata: { name, attempt }, image: { ...c.image, image }, log_path: logPath },
  };
}

function metadataOf(r: ContainerRecord): ContainerMetadata {
  return { name: r.metadata.name, attempt: r.metadata.attempt };
}

function containerOf(r: ContainerRecord): Container {
  return {
    id: r.id,
    pod_sandbox_id: r.podId,
    metadata: metadataOf(r),
    image: { image: r.image, user_specified_image: r.image },
    image_ref: r.imageId,
    image_id: r.imageId,
    state: criContainerState(r.state),
    created_at: r.createdAt,
    labels: r.labels,
    annotations: r.annotations,
  };
}

export function containerStatusOf(r: ContainerRecord): ContainerStatus {
  const res = r.resources;
  return {
    id: r.id,
    metadata: metadataOf(r),
    state: criContainerState(r.state),
    created_at: r.createdAt,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    exit_code: r.state === 'stopped' ? r.exitCode : 0,
    image: { image: r.image, user_specified_image: r.image },
    image_ref: r.imageId,
    image_id: r.imageId,
    reason: r.state === 'stopped' || r.state === 'unknown' ? r.reason : '',
    message: r.state === 'stopped' || r.state === 'unknown' ? r.message : '',
    labels: r.labels,
    annotations: r.annotations,
    mounts: r.mounts.map(mountOf),
    log_path: r.logPath,
    resources: {
      linux: {
        cpu_period: String(res.cpu_period ?? 0),
        cpu_quota: String(res.cpu_quota ?? 0),
        cpu_shares: String(res.cpu_shares ?? 0),
        memory_limit_in_bytes: String(res.memory_limit_in_bytes ?? 0),
        oom_score_adj: String(res.oom_score_adj ?? 0),
        cpuset_cpus: res.cpuset_cpus ?? '',
        cpuset_mems: res.cpuset_mems ?? '',
        hugepage_limits: res.hugepage_limits ?? [],
        unified: res.unified ?? {},
        memory_swap_limit_in_bytes: String(res.memory_swap_limit_in_bytes ?? 0),
      },
    },
    user: { linux: { uid: String(r.user.uid), gid: String(r.user.gid), supplemental_groups: r.user.supplementalGroups.map(String) } },
    stop_signal: isSignalName(r.stopSignal) ? r.stopSignal : 'RUNTIME_DEFAULT',
  };
}

function parseFilter(f: ContainerFilterMessage | null | undefined): ContainerFilter {
  if (!f) return {};
  const out: ContainerFilter = {};
  if (f.id) out.id = String(f.id);
  if (f.pod_sandbox_id) out.podId = String(f.pod_sandbox_id);
  if (f.state) {
    const s = f.state.state ?? 'CONTAINER_CREATED';
    if (!isCriState(s)) throw new InvalidArgumentError(`filter.state.state ${JSON.stringify(s)} is unknown`);
    out.state = s;
  }
  if (f.label_selector) out.labelSelector = { ...(f.label_selector as Record<string, string>) };
  return out;
}

/** StopContainer's timeout is in seconds; negative is a mistake. */
function timeoutMs(v: unknown): number {
  const n = Number(v ?? 0);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`timeout ${JSON.stringify(v)} must be a non-negative number of seconds`);
  return n * 1000;
}

export function containerHandlers(containers: ContainerManager): HandlerSet {
  // List and status answers: one message per frozen record, sent as the bytes it was first encoded to.
  const listed = new AnswerMemo(containerOf);
  const statuses = new AnswerMemo(containerStatusOf);
  const items = async (filter: ContainerFilterMessage | null | undefined) => listed.list(await containers.list(parseFilter(filter)));
  return {
    unary: {
      async CreateContainer(req) {
        return { container_id: await containers.create(parseCreateContainer(req)) };
      },
      async StartContainer(req) {
        await containers.start(containerId(req));
        return {};
      },
      async StopContainer(req) {
        const ms = timeoutMs(req.timeout);
        await containers.stop(containerId(req), ms);
        return {};
      },
      async RemoveContainer(req) {
        await containers.remove(containerId(req));
        return {};
      },
      async ContainerStatus(req) {
        const r = await containers.view(containerId(req));
        const res: ContainerStatusResponse = { status: statuses.of(r), info: {} };
        if (req.verbose) {
          res.info = {
            info: JSON.stringify({
              pid: r.pid,
              conmonPid: r.conmonPid,
              podSandboxId: r.podId,
              runtimeHandler: r.runtimeHandler,
              runtimeType: r.runtimeType,
              state: r.state,
              bundle: r.paths.bundle,
              runtimeSpec: r.paths.spec,
              cgroupPath: r.cgroupPath,
              attachSocket: r.paths.attachSocket,
              exitFile: r.paths.exitFile,
              monitorLogPath: r.monitorLogPath,
              stopSignal: r.stopSignal,
              oomScoreAdj: r.oomScoreAdj ?? null,
            }),
          };
        }
        return res;
      },
      async ListContainers(req) {
        return { containers: await items(req.filter) };
      },
      async UpdateContainerResources(req) {
        const id = containerId(req);
        const linux = req.linux as CriContainerResources | null | undefined;
        if (!linux) throw new InvalidArgumentError('linux is required');
        checkResources('linux', linux);
        await containers.updateResources(id, linux);
        return {};
      },
      async ReopenContainerLog(req) {
        await containers.reopenLog(containerId(req));
        return {};
      },
    },
    stream: {
      async *StreamContainers(req) {
        yield { containers: await items(req.filter) };
      },
    },
  };
}
