// Pinned network namespaces, one per pod: <state_dir>/netns/<podId> is an empty file with
// the pod's netns bind-mounted on it, so the namespace outlives every process in it
// (and a daemon restart). The directory is a shared mount of itself, like /run/netns.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPinnedNetns, makeSharedMountPoint, mount, MS_BIND, setLinkUpInNetns, unmountAll, withNetnsSync } from '../../native/index.js';
import { AlreadyExistsError, InternalError, InvalidArgumentError, errnoCode, errorMessage } from '../errors.js';

/** The OS side, swappable in unit tests. */
export interface NetnsOps {
  makeShared(dir: string): void;
  createPinned(file: string): void;
  unmountAll(file: string): number;
  readInNetns<T>(nsPath: string, fn: () => T): T;
  /** Writes /proc/sys/<name with "/"> as seen from inside the netns at `nsPath`. */
  writeSysctl(nsPath: string, name: string, value: string): void;
  /** Sets an interface of the netns at `nsPath` up. */
  linkUp(nsPath: string, name: string): void;
}

export const NATIVE_NETNS_OPS: NetnsOps = {
  makeShared: makeSharedMountPoint,
  createPinned: createPinnedNetns,
  unmountAll: (file) => unmountAll(file),
  readInNetns: withNetnsSync,
  // /proc/sys/net/* belongs to the netns of the thread that opens it: the synchronous
  // write runs on this thread between its setns there and back.
  writeSysctl: (nsPath, name, value) => withNetnsSync(nsPath, () => fs.writeFileSync(path.join('/proc/sys', ...name.split('.')), value)),
  linkUp: setLinkUpInNetns,
};

/**
 * Set in every pod netns, as Docker and containerd 2 (enable_unprivileged_ports) do:
 * any process of the pod may bind ports below 1024. runsc needs it most: with
 * --network=host its sentry binds on the host kernel without CAP_NET_BIND_SERVICE, so a
 * root web server on port 80 got EACCES while runc's had the capability. A pod sysctl
 * of the same name is applied later by the runtime and wins (runc).
 */
export const POD_NETNS_SYSCTLS: Readonly<Record<string, string>> = { 'net.ipv4.ip_unprivileged_port_start': '0' };

/** Same charset as CNI container IDs (libcni), which also makes it a safe file name. */
const POD_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function validatePodId(podId: string): void {
  if (!POD_ID_RE.test(podId)) {
    throw new InvalidArgumentError(`pod sandbox id "${podId}": letters, digits, "_", "." and "-" are allowed, at most 128`);
  }
}

export interface InterfaceCounters {
  name: string;
  rxBytes: number;
  rxErrors: number;
  txBytes: number;
  txErrors: number;
}

/** Parses /proc/net/dev. */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const f = line
      .slice(i + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    out.push({ name: line.slice(0, i).trim(), rxBytes: f[0], rxErrors: f[2], txBytes: f[8], txErrors: f[10] });
  }
  return out;
}

export interface NetnsStoreOptions {
  dir: string;
  ops?: NetnsOps;
}

export class NetnsStore {
  readonly dir: string;
  private readonly ops: NetnsOps;

  constructor(opts: NetnsStoreOptions) {
    this.dir = opts.dir;
    this.ops = opts.ops ?? NATIVE_NETNS_OPS;
  }

  init(): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      this.ops.makeShared(this.dir);
    } catch (e) {
      throw new InternalError(`preparing netns dir "${this.dir}": ${errorMessage(e)}`, { cause: e });
    }
  }

  /**
   * Undoes init() when no pod netns is left, so a stopped daemon leaves no mount
   * behind; with pods still pinned the shared mount stays for them.
   */
  release(): void {
    if (this.list().length > 0) return;
    try {
      this.ops.unmountAll(this.dir);
    } catch (e) {
      throw new InternalError(`releasing netns dir "${this.dir}": ${errorMessage(e)}`, { cause: e });
    }
  }

  path(podId: string): string {
    validatePodId(podId);
    return path.join(this.dir, podId);
  }

  /** True when a namespace is mounted on `file` (an nsfs mount has its own st_dev). */
  isPinned(file: string): boolean {
    try {
      return fs.statSync(file).dev !== fs.statSync(path.dirname(file)).dev;
    } catch {
      return false;
    }
  }

  create(podId: string): string {
    const file = this.path(podId);
    if (this.isPinned(file)) throw new AlreadyExistsError(`creating netns for pod "${podId}": "${file}" is already pinned`);
    try {
      // A file left without a mount by a crash half-way is reused.
      fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_RDONLY, 0o444));
      this.ops.createPinned(file);
      this.prepare(file);
    } catch (e) {
      this.removeQuietly(file);
      throw new InternalError(`creating netns for pod "${podId}": ${errorMessage(e)}`, { cause: e });
    }
    return file;
  }

  /**
   * A new pod netns gets its sysctls and an up `lo` (what the CNI loopback plugin's ADD
   * did, done here without a process: issue 13).
   */
  private prepare(file: string): void {
    for (const [name, value] of Object.entries(POD_NETNS_SYSCTLS)) this.ops.writeSysctl(file, name, value);
    this.ops.linkUp(file, 'lo');
  }

  /** Where the pod's user namespace is pinned (a pod with one, S19): <dir>/../userns/<podId>. */
  usernsPath(podId: string): string {
    return path.join(path.dirname(this.dir), 'userns', this.path(podId).slice(this.dir.length + 1));
  }

  /** create() for a pod with its own user namespace: the netns belongs to it (createPinnedUsernsNetns). */
  async createInUserns(podId: string, userns: PodUserns): Promise<string> {
    const file = this.path(podId);
    const user = this.usernsPath(podId);
    if (this.isPinned(file)) throw new AlreadyExistsError(`creating netns for pod "${podId}": "${file}" is already pinned`);
    try {
      fs.mkdirSync(path.dirname(user), { recursive: true, mode: 0o755 });
      for (const f of [file, user]) fs.closeSync(fs.openSync(f, fs.constants.O_CREAT | fs.constants.O_RDONLY, 0o444));
      await createPinnedUsernsNetns(user, file, userns);
      this.prepare(file);
    } catch (e) {
      this.removeQuietly(file);
      this.removeQuietly(user);
      throw new InternalError(`creating user and network namespaces for pod "${podId}": ${errorMessage(e)}`, { cause: e });
    }
    return file;
  }

  /** Unmounts and unlinks (the pinned user namespace too); a missing file is fine (idempotent). */
  remove(podId: string): void {
    const file = this.path(podId);
    try {
      this.ops.unmountAll(this.usernsPath(podId));
      fs.unlinkSync(this.usernsPath(podId));
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw new InternalError(`removing user namespace of pod "${podId}": ${errorMessage(e)}`, { cause: e });
    }
    try {
      this.ops.unmountAll(file);
      fs.unlinkSync(file);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw new InternalError(`removing netns of pod "${podId}": ${errorMessage(e)}`, { cause: e });
    }
  }

  /** Pod IDs with a file in the netns dir, pinned or left half-made by a crash. */
  list(): string[] {
    try {
      return fs
        .readdirSync(this.dir)
        .filter((n) => POD_ID_RE.test(n))
        .sort();
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw new InternalError(`listing netns dir "${this.dir}": ${errorMessage(e)}`, { cause: e });
    }
  }

  /** Interface counters seen from inside the netns. */
  counters(nsPath: string): InterfaceCounters[] {
    // /proc/thread-self/net is the calling thread's netns view; the read is synchronous,
    // so the thread is back home before anything else runs.
    const text = this.ops.readInNetns(nsPath, () => fs.readFileSync('/proc/thread-self/net/dev', 'utf8'));
    return parseNetDev(text);
  }

  private removeQuietly(file: string): void {
    try {
      this.ops.unmountAll(file);
      fs.unlinkSync(file);
    } catch {
      // best effort on a path that failed to be made
    }
  }
}

/** One line of /proc/PID/{uid,gid}_map, as the OCI spec writes it. */
export interface NsIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** A pod's user namespace (S19): its ID mappings. */
export interface PodUserns {
  uidMappings: NsIdMapping[];
  gidMappings: NsIdMapping[];
}

const USERNS_READY_WAIT_MS = 5_000;

/**
 * A new user namespace with `userns`'s mappings and a network namespace it owns, pinned
 * on `usernsFile` and `netnsFile` (existing empty files). The netns must belong to the
 * pod's user namespace: runc joins the user namespace first, and then may only enter
 * namespaces that it owns (measured with runc 1.1.5: a pinned host netns → "setns into
 * net namespace: operation not permitted"; sysfs cannot be mounted for it either). A
 * thread of this multi-threaded daemon cannot enter a user namespace, so one
 * `unshare --user --net` child makes both; it is ended once they are pinned.
 */
export async function createPinnedUsernsNetns(usernsFile: string, netnsFile: string, userns: PodUserns): Promise<void> {
  const child = spawn('unshare', ['--user', '--net', '--', 'sleep', '60'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => undefined);
  try {
    const pid = child.pid;
    if (pid === undefined) throw new Error('spawning unshare --user --net: no pid');
    const own = fs.readlinkSync('/proc/self/ns/user');
    const end = Date.now() + USERNS_READY_WAIT_MS;
    while (fs.readlinkSync(`/proc/${pid}/ns/user`) === own) {
      if (Date.now() > end) throw new Error(`unshare --user --net (pid ${pid}) did not enter a new user namespace within ${USERNS_READY_WAIT_MS} ms`);
      await sleep(5);
    }
    const lines = (ms: NsIdMapping[]): string => ms.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
    fs.writeFileSync(`/proc/${pid}/uid_map`, lines(userns.uidMappings));
    fs.writeFileSync(`/proc/${pid}/gid_map`, lines(userns.gidMappings));
    mount(`/proc/${pid}/ns/user`, usernsFile, null, MS_BIND, null);
    mount(`/proc/${pid}/ns/net`, netnsFile, null, MS_BIND, null);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}
