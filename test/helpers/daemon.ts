// Runs the real sandlot daemon as a child process on a temporary socket, root and state
// dir, with a CRI client on its socket. Every test that starts one stops it in t.after.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { CriClient } from '../../src/cli/client.js';
import type { ClientReadableStream } from '@grpc/grpc-js';
import type { CriMethod, ResponseOutputOf, StreamMethod, UnaryMethod } from '../../src/cri/handler-types.js';
import type { ImageServiceDefinition } from '../../src/types/cri/runtime/v1/ImageService.js';
import type { RuntimeServiceDefinition } from '../../src/types/cri/runtime/v1/RuntimeService.js';
import { testCgroupRoot } from './cgroup.js';
import { DAEMON_NODE_FLAGS } from '../../src/config/node-flags.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(REPO_ROOT, 'src/cli/bin.ts');
const BUILT_BIN = path.join(REPO_ROOT, 'dist/src/cli/bin.js');
// Start-up probes every handler (runsc takes seconds); on a busy machine that is tens of seconds.
const START_TIMEOUT_MS = 120_000;

export interface StartDaemonOptions {
  /** Merged over the harness defaults and written as the daemon's YAML config. */
  config?: Record<string, unknown>;
  /** Extra command-line arguments after `daemon`. */
  args?: string[];
  /** Reuse these directories (restart tests). */
  dir?: string;
  /** Run the built daemon (dist/, as `make build` leaves it) instead of the sources under tsx; benchmarks measure that one. */
  built?: boolean;
  /** Extra Node flags for the daemon process (e.g. `--cpu-prof` in a benchmark). */
  nodeArgs?: string[];
}

/** The named methods of a generated service definition (without its `[name: string]` index signature). */
type MethodsOf<T> = keyof { [K in keyof T as string extends K ? never : K]: T[K] };
/** Unary runtime.v1.RuntimeService methods: what TestDaemon.runtime() calls. */
export type RuntimeRpc = Extract<UnaryMethod, MethodsOf<RuntimeServiceDefinition>>;
/** Server-streaming runtime.v1.RuntimeService methods (GetContainerEvents, StreamPodSandboxMetrics …): TestDaemon.runtimeStream(). */
export type RuntimeStreamRpc = Extract<StreamMethod, MethodsOf<RuntimeServiceDefinition>>;
/** Unary runtime.v1.ImageService methods: what TestDaemon.image() calls. */
export type ImageRpc = Extract<UnaryMethod, MethodsOf<ImageServiceDefinition>>;
/**
 * T with every nested message present. The decoder fills scalars, lists and maps with
 * their defaults but leaves an unset message null; a test reads the messages it asserts
 * on, and one the daemon left null fails that test with a TypeError where it is read —
 * the same failure as a wrong value. (A mapped type, so answers also pass where a
 * `Record<string, unknown>` is taken.)
 */
export type Present<T> = T extends Buffer | Uint8Array | string | number | boolean | bigint
  ? T
  : T extends readonly (infer E)[]
    ? Present<E>[]
    : T extends object
      ? { [K in keyof T]: Present<NonNullable<T[K]>> }
      : T;
/** The answer of RPC M as the test client decodes it (keepCase, int64 and enums as strings, defaults filled). */
export type CriAnswer<M extends CriMethod> = Present<ResponseOutputOf<M>>;
/**
 * A request as a test sends it: loose on purpose, because bad-input tests send wrong
 * shapes (a number for a string, an unknown field) to see the daemon refuse them.
 */
export type CriRequest = Record<string, unknown>;

let counter = 0;

/** dist/ exists and no source under src/ or native/ changed after it was built (else: tsx on the sources). */
function builtIsFresh(): boolean {
  if (!fs.existsSync(BUILT_BIN)) return false;
  const builtAt = fs.statSync(BUILT_BIN).mtimeMs;
  const newer = (dir: string): boolean =>
    fs.readdirSync(dir, { withFileTypes: true }).some((e) => {
      const p = path.join(dir, e.name);
      return e.isDirectory() ? newer(p) : e.name.endsWith('.ts') && fs.statSync(p).mtimeMs > builtAt;
    });
  return !newer(path.join(REPO_ROOT, 'src')) && !newer(path.join(REPO_ROOT, 'native'));
}

/** A /24 and a bridge name no other daemon of this run (or a dev daemon) uses. */
function uniqueNetwork(): { subnet: string; bridge: string } {
  counter += 1;
  const a = 100 + (process.pid % 100);
  const b = (counter * 7 + Math.floor(Math.random() * 200)) % 250;
  return { subnet: `10.${a}.${b}.0/24`, bridge: `slt${process.pid % 10000}x${counter}` };
}

export class TestDaemon {
  child: ChildProcess | undefined;
  client: CriClient;
  stderr = '';
  metricsAddress = '';

  constructor(
    readonly dir: string,
    readonly configPath: string,
    readonly config: Record<string, unknown>,
    private readonly args: string[],
    private readonly built = false,
    private readonly nodeArgs: string[] = [],
  ) {
    this.client = new CriClient(this.socket);
  }

  get socket(): string {
    return String(this.config.socket_path);
  }
  get rootDir(): string {
    return String(this.config.root_dir);
  }
  get stateDir(): string {
    return String(this.config.state_dir);
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Calls RuntimeService method M; the answer is typed as M's decoded response. */
  runtime<M extends RuntimeRpc>(method: M, req: CriRequest = {}, timeoutMs?: number): Promise<CriAnswer<M>> {
    // The client decodes with the loader options the generated types are made with (src/cri/proto.ts).
    return this.client.runtimeCall(method, req, timeoutMs === undefined ? {} : { timeoutMs }) as Promise<CriAnswer<M>>;
  }
  /**
   * Opens RuntimeService stream M (cancel() ends it). Each message is typed as decoded,
   * unset messages null: stream tests assert on those (a removed pod's event has none).
   */
  runtimeStream<M extends RuntimeStreamRpc>(method: M, req: CriRequest = {}): ClientReadableStream<ResponseOutputOf<M>> {
    // The client's stream is untyped (src/cli/client.ts); the return type is the typing.
    return this.client.runtimeStream(method, req);
  }
  /** Calls ImageService method M; the answer is typed as M's decoded response. */
  image<M extends ImageRpc>(method: M, req: CriRequest = {}, timeoutMs?: number): Promise<CriAnswer<M>> {
    return this.client.imageCall(method, req, timeoutMs === undefined ? {} : { timeoutMs }) as Promise<CriAnswer<M>>;
  }

  async start(): Promise<void> {
    this.stderr = '';
    const entry = this.built && builtIsFresh() ? [BUILT_BIN] : ['--import', 'tsx', BIN];
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...this.nodeArgs, ...entry, 'daemon', '--config', this.configPath, ...this.args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      this.stderr += d;
      const m = /"address":"([^"]+)","msg":"serving metrics"/.exec(d);
      if (m) this.metricsAddress = m[1]!;
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        throw new Error(`daemon exited with ${child.exitCode} while starting:\n${this.stderr}`);
      }
      if (this.stderr.includes('sandlot is serving CRI')) return;
      await sleep(50);
    }
    throw new Error(`daemon did not start within ${START_TIMEOUT_MS} ms:\n${this.stderr}`);
  }

  /** Waits for the child to exit; returns its exit code (or signal name). */
  async exited(): Promise<number | string> {
    const child = this.child;
    if (!child) return 0;
    if (child.exitCode !== null) return child.exitCode;
    if (child.signalCode !== null) return child.signalCode;
    return new Promise((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  }

  /** SIGTERM and wait: the graceful path. */
  async stop(): Promise<number | string> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return this.exited();
    this.child.kill('SIGTERM');
    return this.exited();
  }

  /** SIGKILL: the crash path. */
  async kill9(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited();
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    this.client.close();
    this.client = new CriClient(this.socket);
    await this.start();
  }

  /**
   * Removes every pod the daemon still knows (best effort: it may be down), stops it,
   * unmounts what it left under its directory, removes the directory, its bridge and
   * its default cgroup parent. Safe to call twice; runs even after a failed test.
   */
  async cleanup(): Promise<void> {
    const running = () => this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
    // A test that failed with the daemon down may still have pods on disk: bring the
    // daemon back so it can remove them (its recovery knows their processes).
    if (!running() && fs.existsSync(this.socket.replace(/[^/]+$/, '')) && hasPodsOnDisk(this.rootDir)) {
      this.client.close();
      this.client = new CriClient(this.socket);
      await this.start().catch(() => undefined);
    }
    if (running()) {
      try {
        const list = await this.runtime('ListPodSandbox', {}, 30_000);
        for (const p of list.items) {
          await this.runtime('RemovePodSandbox', { pod_sandbox_id: p.id }, 120_000).catch(() => undefined);
        }
      } catch {
        // not answering: the rest below still runs
      }
    }
    this.client.close();
    await this.stop();
    unmountUnder(this.dir);
    fs.rmSync(this.dir, { recursive: true, force: true });
    const bridge = String(this.config.cni_default_bridge);
    if (fs.existsSync(`/sys/class/net/${bridge}`)) spawnSync('ip', ['link', 'delete', 'dev', bridge], { stdio: 'ignore' });
    const parent = this.config.default_cgroup_parent;
    removeEmptyCgroups(String(this.config.cgroup_root), typeof parent === 'string' ? parent : '/sandlot');
  }
}

function hasPodsOnDisk(rootDir: string): boolean {
  try {
    return fs.readdirSync(path.join(rootDir, 'pods')).length > 0;
  } catch {
    return false;
  }
}

/** Removes `<root><parent>` in every v1 hierarchy (and v2) when it is empty of processes. */
function removeEmptyCgroups(root: string, parent: string): void {
  const base = '/sys/fs/cgroup';
  let dirs: string[] = [];
  try {
    dirs = fs.readdirSync(base).map((h) => path.join(base, h));
  } catch {
    return;
  }
  for (const h of [...dirs, base]) {
    const target = path.join(h, root, parent);
    if (target === path.join(h, root)) continue;
    // rmdir only succeeds on a cgroup without processes or children, which is the point.
    const walk = (d: string) => {
      let entries: fs.Dirent[] = [];
      try {
        entries = fs.readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
      try {
        fs.rmdirSync(d);
      } catch {
        // busy or gone
      }
    };
    walk(target);
  }
}

/** Lazily unmounts every mount point below `dir`, deepest first (mountinfo field 5). */
export function unmountUnder(dir: string): void {
  const points = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .map((p) => p.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
  for (const p of points) spawnSync('umount', ['-l', p], { stdio: 'ignore' });
}

export async function startDaemon(opts: StartDaemonOptions = {}): Promise<TestDaemon> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-test-'));
  const cniConf = path.join(dir, 'cni-conf');
  fs.mkdirSync(cniConf, { recursive: true });
  const net = uniqueNetwork();
  const config: Record<string, unknown> = {
    socket_path: path.join(dir, 'sandlot.sock'),
    root_dir: path.join(dir, 'root'),
    state_dir: path.join(dir, 'state'),
    log_level: 'debug',
    metrics_address: '127.0.0.1:0',
    cgroup_root: testCgroupRoot(),
    cni_conf_dir: cniConf,
    cni_default_subnet: net.subnet,
    cni_default_bridge: net.bridge,
    // Each daemon's pods under a parent of their own, removed at cleanup.
    default_cgroup_parent: `/sandlot-test-${process.pid}-${counter}`,
    ...opts.config,
  };
  const configPath = path.join(dir, 'config.yaml');
  fs.writeFileSync(configPath, YAML.stringify(config));
  const d = new TestDaemon(dir, configPath, config, opts.args ?? [], opts.built ?? false, opts.nodeArgs ?? []);
  try {
    await d.start();
  } catch (e) {
    await d.cleanup();
    throw e;
  }
  return d;
}
