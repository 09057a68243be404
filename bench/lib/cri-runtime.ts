// One runtime under test as the vs-containerd bench drives it: a CRI socket, the daemon's
// PID, its per-pod helper processes, and the pod workload both runtimes get the same way
// (through the gRPC client, or a process per call like crictl).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CriClient, RuntimeUnaryMethod } from '../../src/cli/client.js';
import { loadCriServices, type CriServices } from '../../src/cri/proto.js';
import { buildGo } from '../../test/helpers/go-build.js';
import { timed, type Timings } from './stats.js';

export const CALL_TIMEOUT_MS = 120_000;
export const LIFECYCLE = [
  'RunPodSandbox',
  'CreateContainer',
  'StartContainer',
  'StopContainer',
  'RemoveContainer',
  'StopPodSandbox',
  'RemovePodSandbox',
] as const;
/**
 * The app container ends on SIGTERM at once: stop measures the path, not a grace period.
 * catatonit (static, in the bench's app image) blocks signals as its first step and
 * forwards them to busybox `sleep`, which their default action ends. The shell used
 * before set a trap first: a SIGTERM that came sooner reached a PID 1 without a
 * handler, which the kernel ignores, and the stop waited out its 10 s timeout (a
 * StopContainer p95 of 10.02 s at 20 at once for whichever runtime started sooner).
 */
const APP_COMMAND = ['/catatonit', '--', '/bin/busybox', 'sleep', '3600'];
const CRI_RAW_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cri-raw');

export interface CriRuntime {
  name: 'sandlot' | 'containerd';
  client: CriClient;
  socket: string;
  pid: number;
  /** The daemon's per-pod helper processes now (conmon; containerd-shim-runc-v2). */
  helpers(): number[];
}

export type Answer = Record<string, unknown>;
/** Makes one CRI call; the answer as a plain object. */
export type Caller = (method: RuntimeUnaryMethod, req: Record<string, unknown>) => Promise<Answer>;

export const grpcCaller =
  (rt: CriRuntime): Caller =>
  async (method, req) =>
    (await rt.client.runtimeCall(method, req, { timeoutMs: CALL_TIMEOUT_MS })) as unknown as Answer;

let criRaw: string | undefined;
let services: CriServices | undefined;

const criRawBinary = (): string => (criRaw ??= buildGo(CRI_RAW_DIR, 'cri-raw'));
const runtimeDefs = (): CriServices['RuntimeService'] => (services ??= loadCriServices()).RuntimeService;

/**
 * A fresh `cri-raw` process per call (bench/lib/cri-raw: a Go gRPC client that dials, makes
 * one call and exits, as crictl does): what crictl costs a caller, for both runtimes alike.
 * The request is encoded and the answer decoded here, with the project's CRI proto.
 * The client is built when the caller is made, before any call is timed: the first
 * timed call once included the Go build (an 11.8 s RunPodSandbox p95 in a short run).
 */
export function processCaller(rt: CriRuntime): Caller {
  const binary = criRawBinary();
  const defs = runtimeDefs();
  return (method, req) => {
    const def = defs[method];
    const body = def.requestSerialize(req);
    return new Promise((resolve, reject) => {
      const child = spawn(binary, [rt.socket, def.path], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.once('error', reject);
      child.once('close', (code) =>
        code === 0 ? resolve(def.responseDeserialize(Buffer.concat(out)) as Answer) : reject(new Error(`cri-raw ${method}: exit ${code}: ${err.trim()}`)),
      );
      child.stdin.end(body);
    });
  };
}

/** One call a GoClient made: its gRPC code, how long grpc-go took (ms), the answer (or the status message). */
export interface GoCallResult {
  code: number;
  ms: number;
  answer: Buffer;
}

/**
 * A long-lived Go gRPC client (`cri-raw SOCKET`, bench/lib/cri-raw) on one connection, the
 * way the kubelet reads: calls go one after another in the order they are made, each
 * timed inside the Go process around the call alone. This process's own event loop and
 * GC (the grpc-js client's figures include them, for both runtimes) are no part of the
 * figure; calls made without waiting go through back to back.
 */
export class GoClient {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending: Array<{ resolve: (r: GoCallResult) => void; reject: (e: Error) => void }> = [];
  private buffered: Buffer = Buffer.alloc(0);
  private stderr = '';

  constructor(socket: string) {
    this.child = spawn(criRawBinary(), [socket], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => this.onData(d));
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.once('close', (code) => {
      const e = new Error(`cri-raw ${socket}: exit ${code}: ${this.stderr.trim()}`);
      for (const p of this.pending.splice(0)) p.reject(e);
    });
  }

  /** Makes one RuntimeService call with the request encoded by the project's CRI proto. */
  call(method: RuntimeUnaryMethod, req: Record<string, unknown>): Promise<GoCallResult> {
    const def = runtimeDefs()[method];
    const body = def.requestSerialize(req);
    const head = Buffer.alloc(2 + Buffer.byteLength(def.path) + 4);
    head.writeUInt16BE(Buffer.byteLength(def.path), 0);
    head.write(def.path, 2);
    head.writeUInt32BE(body.length, head.length - 4);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin.write(Buffer.concat([head, body]));
    });
  }

  /** Ends the client (its stdin) and waits for it to exit. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const closed = new Promise((resolve) => this.child.once('close', resolve));
    this.child.stdin.end();
    await closed;
  }

  private onData(d: Buffer): void {
    this.buffered = this.buffered.length === 0 ? d : Buffer.concat([this.buffered, d]);
    while (this.buffered.length >= 16) {
      const length = this.buffered.readUInt32BE(12);
      if (this.buffered.length < 16 + length) return;
      const code = this.buffered.readUInt32BE(0);
      const ms = Number(this.buffered.readBigUInt64BE(4)) / 1e6;
      const answer = this.buffered.subarray(16, 16 + length);
      this.buffered = this.buffered.subarray(16 + length);
      this.pending.shift()?.resolve({ code, ms, answer });
    }
  }
}

export interface Workload {
  image: string;
  logDir: string;
  /** Each pod's cgroup_parent goes below this (absolute, as a kubelet sends it). */
  cgroupParent: string;
}

export function podConfig(rt: CriRuntime, w: Workload, name: string): Record<string, unknown> {
  const logDirectory = path.join(w.logDir, rt.name, name);
  fs.mkdirSync(logDirectory, { recursive: true });
  return {
    metadata: { name, uid: `uid-${name}`, namespace: 'bench', attempt: 0 },
    hostname: name,
    log_directory: logDirectory,
    linux: {
      cgroup_parent: path.join(w.cgroupParent, `${rt.name}-${name}`),
      security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
    },
  };
}

/** RunPodSandbox, CreateContainer, StartContainer: a running pod; returns pod and container IDs. */
export async function startPod(call: Caller, rt: CriRuntime, w: Workload, t: Timings, name: string): Promise<{ pod: string; ctr: string }> {
  const config = podConfig(rt, w, name);
  const run = await timed(t, 'RunPodSandbox', () => call('RunPodSandbox', { config, runtime_handler: 'runc' }));
  const pod = String(run.pod_sandbox_id);
  const containerConfig = { metadata: { name: 'app' }, image: { image: w.image }, command: APP_COMMAND, log_path: 'app.log' };
  const created = await timed(t, 'CreateContainer', () => call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig, sandbox_config: config }));
  const ctr = String(created.container_id);
  await timed(t, 'StartContainer', () => call('StartContainer', { container_id: ctr }));
  return { pod, ctr };
}

/** The whole lifecycle of one pod, each RPC timed, and the total. */
export async function podLifecycle(call: Caller, rt: CriRuntime, w: Workload, t: Timings, name: string): Promise<void> {
  const total = process.hrtime.bigint();
  const { pod, ctr } = await startPod(call, rt, w, t, name);
  await timed(t, 'StopContainer', () => call('StopContainer', { container_id: ctr, timeout: 10 }));
  await timed(t, 'RemoveContainer', () => call('RemoveContainer', { container_id: ctr }));
  await timed(t, 'StopPodSandbox', () => call('StopPodSandbox', { pod_sandbox_id: pod }));
  await timed(t, 'RemovePodSandbox', () => call('RemovePodSandbox', { pod_sandbox_id: pod }));
  (t.total ??= []).push(Number(process.hrtime.bigint() - total) / 1e6);
}

/** Stops and removes every pod the runtime lists (best effort). */
export async function removeAllPods(rt: CriRuntime, concurrency = 4): Promise<void> {
  const call = grpcCaller(rt);
  const list = (await call('ListPodSandbox', {}).catch(() => ({ items: [] }))) as { items?: Array<{ id: string }> };
  const ids = (list.items ?? []).map((p) => p.id);
  await inBatches(ids, concurrency, async (id) => {
    await call('StopPodSandbox', { pod_sandbox_id: id }).catch(() => undefined);
    await call('RemovePodSandbox', { pod_sandbox_id: id }).catch(() => undefined);
  });
}

/** Runs fn over items, at most `concurrency` at a time. */
export async function inBatches<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
