// The pod and container configs `sandlot run` sends, as a kubelet would build them for a
// one-container pod. Pure, so the choices below are tested without a daemon.
//
// Logs: the pod's log_directory is <log root>/<namespace>_<pod name>_<uid> (kubelet's
// /var/log/pods layout) under /var/log/sandlot-pods by default (--log-root or env
// SANDLOT_LOG_ROOT), the container's log_path <name>/0.log inside it. The CLI creates the
// directories (as the kubelet does) and `--rm` removes them with the pod.
import path from 'node:path';
import type { CriMessage } from './client.js';

export const DEFAULT_LOG_ROOT = '/var/log/sandlot-pods';
export const RUN_NAMESPACE = 'default';
/** Marks pods `sandlot run` made: `sandlot pods --label sandlot.io/run=true`. */
export const RUN_LABEL = 'sandlot.io/run';

export interface RunSpec {
  /** The image as the person typed it. */
  image: string;
  /**
   * Its ID from ImageStatus. Not sent as image.image (as the kubelet does): the daemon
   * reports image.image back as user_specified_image, so the reference the person typed
   * goes in both, and ContainerStatus.image_ref carries the ID.
   */
  imageId?: string;
  /** Replaces the image's Cmd (docker's `run IMAGE CMD…`); the Entrypoint stays. */
  args: string[];
  name?: string;
  env: string[];
  tty: boolean;
  stdin: boolean;
  runtimeHandler?: string;
  /** CRI mounts (parseVolume). */
  mounts?: CriMessage[];
  /** CRI port mappings of the pod (parsePublish). */
  portMappings?: CriMessage[];
  logRoot: string;
  /** Random hex the pod name and UID are made of (injected for tests). */
  random: string;
}

export interface RunPlan {
  podName: string;
  containerName: string;
  uid: string;
  logDirectory: string;
  /** Relative to logDirectory. */
  logPath: string;
  podRequest: CriMessage;
  containerConfig: CriMessage;
}

const NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

/** `docker.io/library/busybox:1.36@sha256:…` → `busybox`. */
export function nameFromImage(image: string): string {
  const last = image.split('@')[0].split('/').pop() ?? '';
  const bare = last
    .split(':')[0]
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return bare.slice(0, 40) || 'container';
}

/** KeyValue.value is `bytes` in api/cri.proto: a string there would be read as base64. */
export function parseEnv(list: string[]): { key: string; value: Buffer }[] {
  return list.map((e) => {
    const eq = e.indexOf('=');
    if (eq <= 0) throw new Error(`-e ${JSON.stringify(e)}: expected KEY=VALUE`);
    return { key: e.slice(0, eq), value: Buffer.from(e.slice(eq + 1)) };
  });
}

/** A UUID-shaped UID from 32 hex digits. */
function uidOf(hex: string): string {
  const h = hex.padEnd(32, '0').slice(0, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function planRun(spec: RunSpec): RunPlan {
  if (spec.name !== undefined && !NAME_RE.test(spec.name)) {
    throw new Error(`--name ${JSON.stringify(spec.name)}: expected lowercase letters, digits, "-" or ".", at most 63`);
  }
  if (!/^[0-9a-f]{32,}$/.test(spec.random)) throw new Error(`random ${JSON.stringify(spec.random)}: expected at least 32 hex digits`);
  const containerName = spec.name ?? nameFromImage(spec.image);
  const podName = spec.name ?? `${containerName}-${spec.random.slice(0, 6)}`;
  const uid = uidOf(spec.random);
  const logDirectory = path.join(spec.logRoot, `${RUN_NAMESPACE}_${podName}_${uid}`);
  const logPath = `${containerName}/0.log`;
  const metadata = { name: podName, uid, namespace: RUN_NAMESPACE, attempt: 0 };
  const podRequest: CriMessage = {
    config: {
      metadata,
      hostname: podName,
      log_directory: logDirectory,
      labels: { [RUN_LABEL]: 'true' },
      annotations: {},
      port_mappings: spec.portMappings ?? [],
      linux: {},
    },
    runtime_handler: spec.runtimeHandler ?? '',
  };
  const containerConfig: CriMessage = {
    metadata: { name: containerName, attempt: 0 },
    image: { image: spec.image, user_specified_image: spec.image },
    args: spec.args,
    envs: parseEnv(spec.env),
    mounts: spec.mounts ?? [],
    labels: { [RUN_LABEL]: 'true' },
    annotations: {},
    log_path: logPath,
    stdin: spec.stdin,
    // As `docker run -i`: stdin closes for good when the first attach ends.
    stdin_once: spec.stdin,
    tty: spec.tty,
    linux: {},
  };
  return { podName, containerName, uid, logDirectory, logPath, podRequest, containerConfig };
}

/** ContainerStatus log_path is absolute (containerd) or relative to the pod's log directory. */
export function absoluteLogPath(statusLogPath: string, logDirectory: string): string {
  return path.isAbsolute(statusLogPath) ? statusLogPath : path.join(logDirectory, statusLogPath);
}

/** `-v HOST:CONTAINER[:ro|rw]` as docker takes it; HOST is made absolute against the working directory. */
export function parseVolume(spec: string, cwd: string): CriMessage {
  const parts = spec.split(':');
  const mode = parts.length === 3 ? parts[2] : undefined;
  if (parts.length < 2 || parts.length > 3 || parts[0] === '' || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new Error(`-v ${JSON.stringify(spec)}: expected HOST_PATH:CONTAINER_PATH[:ro|rw]`);
  }
  const ctr = parts[1];
  if (!path.isAbsolute(ctr)) throw new Error(`-v ${JSON.stringify(spec)}: the container path ${JSON.stringify(ctr)} must be absolute`);
  return { host_path: path.resolve(cwd, parts[0]), container_path: ctr, readonly: mode === 'ro' };
}

const PROTOCOLS: Record<string, string> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };

function portOf(spec: string, p: string): number {
  const n = /^\d{1,5}$/.test(p) ? Number(p) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new Error(`-p ${JSON.stringify(spec)}: port ${JSON.stringify(p)} is not in 1..65535`);
  return n;
}

/** `-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp|sctp]` into a CRI PortMapping. */
export function parsePublish(spec: string): CriMessage {
  const [ports, proto = 'tcp', ...extra] = spec.split('/');
  const protocol = PROTOCOLS[proto.toLowerCase()];
  const parts = ports.split(':');
  if (!protocol || extra.length > 0 || parts.length < 2 || parts.length > 3) {
    throw new Error(`-p ${JSON.stringify(spec)}: expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp|sctp]`);
  }
  const hostIp = parts.length === 3 ? parts[0] : '';
  return { protocol, host_ip: hostIp, host_port: portOf(spec, parts[parts.length - 2]), container_port: portOf(spec, parts[parts.length - 1]) };
}
