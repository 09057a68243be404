// `sandlot daemon`: builds every component from the validated configuration, serves
// CRI on the socket, and shuts down cleanly on SIGTERM/SIGINT.
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import type http from 'node:http';
import type { Logger } from 'pino';
import type { SandlotConfig } from './config/types.js';
import type { HandlerSet } from './cri/handler-types.js';
import { wrapError } from './errors.js';
import { imageHandlers } from './cri/image-handlers.js';
import { sandboxHandlers } from './cri/sandbox-handlers.js';
import { containerHandlers } from './cri/container-handlers.js';
import { execHandlers, portForwardHandlers } from './cri/streaming-handlers.js';
import { execSyncHandlers } from './cri/exec-sync-handlers.js';
import { statsHandlers } from './cri/stats-handlers.js';
import { eventsHandlers } from './cri/events-handlers.js';
import { metricsHandlers } from './cri/metrics-handlers.js';
import { podResourcesHandlers } from './cri/pod-resources-handlers.js';
import { checkpointHandlers } from './cri/checkpoint-handlers.js';
import { ContainerEventBus, type ContainerEventSink } from './sandbox/container/container-events.js';
import { criContainerState, type ContainerRecord } from './sandbox/container/container.js';
import { criState, type SandboxRecord } from './sandbox/pod/sandbox.js';
import { LifecycleObserver, type ObservedContainer, type StopScope } from './observe/lifecycle-metrics.js';
import { PodResourcesUpdater } from './sandbox/resources/pod-resources.js';
import { CgroupManager } from './sandbox/resources/cgroups.js';
import { ContainerCheckpointer, probeCriu, probeSummary } from './sandbox/container/checkpoint.js';
import { Gauge } from 'prom-client';
import { runtimeInfoHandlers, type HandlerReadiness, type Readiness } from './cri/runtime-info.js';
import { sandlotImagesService } from './cri/sandlot-images.js';
import { claimSocketPath, CriServer } from './cri/server.js';
import { loadApiServices } from './cri/proto.js';
import { ImageService } from './image/image-service.js';
import { LayerWorkerPool } from './image/layer-worker-pool.js';
import { NetworkManager } from './network/network-manager.js';
import { PodManager } from './sandbox/pod/pod-manager.js';
import { ContainerManager } from './sandbox/container/container-manager.js';
import { SandlotStreamingBackend } from './sandbox/io/streaming-backend.js';
import { ContainerExec } from './sandbox/io/exec-service.js';
import { CgroupStatsReader, detectCgroupLayout as detectStatsLayout } from './sandbox/stats/cgroup-stats.js';
import { StatsCollector } from './sandbox/stats/stats-collector.js';
import { podMetricsSnapshot } from './sandbox/stats/prometheus-snapshot.js';
import { PodMetrics } from './observe/pod-series.js';
import { StreamingServer } from './streaming/server.js';
import { exposureWarnings, loadStreamingTls } from './config/streaming-tls.js';
import { boundAddress, Metrics, serveMetrics } from './observe/metrics.js';
import { startTracing } from './observe/tracing.js';
import { packageVersion } from './util/package-info.js';
import { TrimSchedule } from './util/trim-schedule.js';
import { OptimizerSwitch } from './util/optimizer-switch.js';
import { fixMmapThreshold, mallocTrim, probeMountApi } from '../native/index.js';

/** How long in-flight calls get to finish on SIGTERM. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface DaemonOptions {
  config: SandlotConfig;
  configFile: string | undefined;
  log: Logger;
}

export interface Daemon {
  shutdown(): Promise<void>;
}

function merge(...sets: HandlerSet[]): HandlerSet {
  const out: Required<HandlerSet> = { unary: {}, stream: {} };
  for (const s of sets) {
    Object.assign(out.unary, s.unary);
    Object.assign(out.stream, s.stream);
  }
  return out;
}

/** What a start step left running, and how to undo it (at shutdown, or when a later step fails). */
interface Closer {
  what: string;
  close: () => Promise<void>;
}

/** Undoes the steps in reverse order; one undo failing does not stop the others. */
async function closeAll(closers: Closer[], log: Logger): Promise<void> {
  for (const c of [...closers].reverse()) {
    try {
      await c.close();
    } catch (e) {
      log.warn({ err: e, component: c.what }, 'closing a component');
    }
  }
  closers.length = 0;
}

/**
 * Starts every component and serves CRI. When a step fails (a port taken, a bad cgroup
 * root…), everything the earlier steps started is undone (image-store lock, netns
 * mount, listeners, socket) before the error is thrown, so the process can exit and the
 * next start is not blocked by this one.
 */
export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  // Refuse before touching any state when another daemon serves this socket.
  await claimSocketPath(opts.config.socket_path);
  const closers: Closer[] = [];
  try {
    return await startSteps(opts, closers);
  } catch (e) {
    opts.log.error({ err: e }, 'starting sandlot failed: undoing the steps already taken');
    await closeAll(closers, opts.log);
    throw e;
  }
}

/**
 * Allocations from this size up get a mapping of their own, given back at free: the
 * threshold glibc would otherwise raise as big blocks are freed stays here, so a burst's
 * big Buffers do not leave the heap fragmented (native/malloc-trim.ts; issue 13).
 */
const MMAP_THRESHOLD_BYTES = 128 * 1024;

async function startSteps(opts: DaemonOptions, closers: Closer[]): Promise<Daemon> {
  const { log } = opts;
  if (!fixMmapThreshold(MMAP_THRESHOLD_BYTES)) log.warn({ bytes: MMAP_THRESHOLD_BYTES }, 'fixing the malloc mmap threshold');
  const version = packageVersion();
  const config = resolveDirs(opts.config);
  for (const w of exposureWarnings(config)) log.warn({ key: w.key, address: w.address }, w.msg);
  const streamingTls = loadStreamingTls(config); // read first: a bad file fails before anything starts

  const metrics = new Metrics({ version });
  const tracing = await startTracing(config.otlp_endpoint, version, log.child({ component: 'tracing' }));
  closers.push({ what: 'tracing', close: () => tracing.shutdown() });

  // TurboFan only while pulls and imports run, and only once they have run for a while,
  // or at once while a layer worker unpacks a big layer (src/config/node-flags.ts: the
  // daemon starts without it).
  const optimizer = new OptimizerSwitch({ delayMs: IMAGE_WORK_OPTIMIZER_DELAY_MS });
  const images = await openImages(config, log, metrics, closers, optimizer);
  const network = await NetworkManager.create({ config, log: log.child({ component: 'network' }) });
  closers.push({ what: 'network', close: () => network.close() });
  const sandbox = await startSandbox(config, log, images, network, metrics, closers);
  const streaming = await startStreaming(config, log, sandbox, streamingTls, closers);
  const runtimeSet = await runtimeHandlerSet({ config, configFile: opts.configFile, version, log, network, sandbox, ...streaming });
  const imageSet = optimizedImageWork(imageHandlers(images), optimizer);

  const api = loadApiServices();
  const server = await CriServer.listen({
    socketPath: config.socket_path,
    runtimeHandlers: runtimeSet,
    imageHandlers: imageSet,
    services: api,
    extraServices: [withHandlers(sandlotImagesService(images, api.SandlotImages), (set) => optimizedImageWork(set, optimizer))],
    log,
    metrics,
    tracer: tracing.tracer,
  });
  // A failed start gives in-flight calls no grace; a SIGTERM gives them SHUTDOWN_GRACE_MS.
  let graceMs = 0;
  closers.push({ what: 'cri-server', close: () => server.shutdown(graceMs) });
  // Closed before the server: open GetContainerEvents streams would hold the grace otherwise.
  closers.push({ what: 'events', close: () => Promise.resolve(sandbox.events.close()) });
  const metricsAddress = config.metrics_address === '' ? '' : await startMetricsServer(config.metrics_address, metrics, log, closers);
  const setup = { version, configFile: opts.configFile, metricsAddress, streamingUrl: streaming.streaming.baseUrl };
  log.info(await effectiveSetup(config, setup, network, sandbox.pods), 'sandlot is serving CRI');
  trimAfterCalls(server, log, closers);

  return {
    async shutdown() {
      graceMs = SHUTDOWN_GRACE_MS;
      await closeAll(closers, log);
      log.info('sandlot stopped');
    },
  };
}

/**
 * Image work gets TurboFan once it has run this long (src/util/optimizer-switch.ts): a
 * small image's pull is over before then and leaves the compiler's pages untouched.
 */
const IMAGE_WORK_OPTIMIZER_DELAY_MS = 1_000;

/** How often the daemon looks whether calls came and went since it last trimmed. */
const TRIM_CHECK_MS = 1_000;
/** Under calls that never pause (a kubelet's relists), a trim at least this often. */
const TRIM_BUSY_INTERVAL_MS = 10_000;
/** A V8 heap this much smaller than at the last trim: a major GC freed native memory since. */
const TRIM_HEAP_SHRINK_BYTES = 4 * 1024 * 1024;
/**
 * A burst over that left V8's heap this much bigger (used or committed) than after the
 * last collection: collect. 20 pod lifecycles and a small pull left it 3.2-3.6 MiB bigger
 * (13.1 → 16.7 MiB used, 16.0 → 19.2 committed): under a 4 MiB bar that garbage waited
 * for V8's memory reducer, still there 12 s later (one run each: 65.2 MiB RSS, 63.0 with
 * this bar). A collection costs 30-60 ms once a burst is over.
 */
const COLLECT_GROWTH_BYTES = 2 * 1024 * 1024;
/**
 * Follow-up trims this long after a burst's, while the daemon stays idle: what V8 frees on
 * background threads after the burst's GC (ArrayBuffer backing stores, compiler zones)
 * is given back too (60 cycles with 20 readers, 10 s idle: a trim made then from outside
 * took the daemon from 89 to 60 MiB RSS).
 */
const SETTLE_TRIMS_MS = [2_000, 5_000, 20_000];

/**
 * Gives memory back when the daemon is idle (issue 13). glibc's free heap pages
 * (malloc_trim): as soon as start-up is done (module compilation, the proto
 * parse and preloads leave free chunks behind), then when none is in flight and calls
 * came since the last trim: once a second passed without a new call (a burst is over),
 * or every TRIM_BUSY_INTERVAL_MS while calls keep coming (a kubelet calls every second or
 * so: waiting for a quiet interval would never trim under one); and when V8's heap shrank
 * by TRIM_HEAP_SHRINK_BYTES since the last trim (the memory reducer's GC frees the
 * Buffers and native parts of what it collected, with no call left to cause a trim). A
 * burst of calls leaves ~10 MiB of free chunks resident otherwise (bench/read-under-load.ts:
 * [heap] 6 → 16 MiB after 30 cycles). A trim that finds nothing to give back takes
 * ~0.2 ms; one that returns 25 MiB ~9 ms.
 *
 * Then, and when a burst that grew V8's used or committed heap by COLLECT_GROWTH_BYTES
 * is over, a collection first (collectIdle): a compacting GC. After a burst's trim, more
 * at SETTLE_TRIMS_MS while no call comes.
 */
function trimAfterCalls(server: CriServer, log: Logger, closers: Closer[]): void {
  const calls = () => {
    const h = v8.getHeapStatistics();
    return {
      started: server.callsStarted,
      inFlight: server.callsInFlight,
      heapBytes: h.total_heap_size,
      heapUsedBytes: h.used_heap_size,
    };
  };
  const opts = {
    busyIntervalMs: TRIM_BUSY_INTERVAL_MS,
    heapShrinkBytes: TRIM_HEAP_SHRINK_BYTES,
    collectGrowthBytes: COLLECT_GROWTH_BYTES,
    settleTrimsMs: SETTLE_TRIMS_MS,
  };
  let schedule: TrimSchedule | undefined;
  // Start-up's collection as soon as start-up has returned (and the SIGTERM handler is
  // set), not a check later: a daemon read right after it started was 61.8 MiB until that
  // first check, 59.4 after (one run), and it has nothing else to do meanwhile.
  const first = setImmediate(() => {
    collectIdle(log);
    mallocTrim();
    schedule = new TrimSchedule(opts, calls(), Date.now());
  });
  first.unref();
  const timer = setInterval(() => {
    if (schedule === undefined) return;
    const action = schedule.check(calls(), Date.now());
    if (action === 'collect') {
      collectIdle(log);
      schedule.collected(calls());
    }
    if (action !== 'none') mallocTrim();
  }, TRIM_CHECK_MS);
  timer.unref();
  closers.push({
    what: 'malloc-trim',
    close: () => {
      clearImmediate(first);
      clearInterval(timer);
      return Promise.resolve();
    },
  });
}

/**
 * A major GC that compacts the whole old generation (when node runs with --expose-gc).
 * V8 moves objects only off pages it finds mostly empty: after a burst, a plain gc()
 * left the old generation 23 MiB big with 15.5 MiB in use. compact_on_every_full_gc is
 * read by each GC when it picks the pages to evacuate, so it is on for this one only.
 */
function compactingGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return;
  v8.setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    v8.setFlagsFromString('--no-compact-on-every-full-gc');
  }
}

/** A compacting GC when a burst is over (its time and what it freed go to the debug log). */
function collectIdle(log: Logger): void {
  const started = performance.now();
  const before = v8.getHeapStatistics();
  compactingGc();
  const after = v8.getHeapStatistics();
  const ms = Math.round((performance.now() - started) * 10) / 10;
  const heap = (h: v8.HeapInfo) => ({ totalKiB: h.total_heap_size >> 10, usedKiB: h.used_heap_size >> 10 });
  log.debug({ heapBefore: heap(before), heapAfter: heap(after), ms }, 'idle: collected garbage');
}

/** The config with root_dir and state_dir made and resolved to real paths. */
function resolveDirs(given: SandlotConfig): SandlotConfig {
  // 0711 (as containerd's): a pod user namespace's root (an unprivileged host uid) must
  // reach its rootfs and pod files below them by path; nothing here can be listed.
  fs.mkdirSync(given.root_dir, { recursive: true, mode: 0o711 });
  fs.mkdirSync(given.state_dir, { recursive: true, mode: 0o711 });
  // Real paths from here on: a symlink in them would make runc refuse every pod's
  // rootfs and the mount table (which holds real paths) miss every pod mount (issue 11).
  return { ...given, root_dir: fs.realpathSync(given.root_dir), state_dir: fs.realpathSync(given.state_dir) };
}

/** The image store, with config.preload_images imported (pinned); a bad archive is only logged. */
async function openImages(config: SandlotConfig, log: Logger, metrics: Metrics, closers: Closer[], optimizer: OptimizerSwitch): Promise<ImageService> {
  const imagesLog = log.child({ component: 'images' });
  const layerWorkers = new LayerWorkerPool({ log: imagesLog, whileRunning: () => optimizer.hold(true) });
  const images = await ImageService.open({ config, log: imagesLog, pullMetrics: metrics.imagePulls, layerWorkers });
  closers.push({ what: 'images', close: () => images.close() });
  for (const archive of config.preload_images) {
    try {
      // Without TurboFan, unlike an Import call (only a layer big enough for a worker turns
      // it on): a preload is a node's pause image or a few small ones, imported once at
      // start, and with TurboFan on it left its compiler's code pages resident in every
      // daemon after (busybox: 4 MiB of the RSS 8 s after start).
      const recs = await images.importArchive(archive, { pinned: true });
      log.info({ archive, images: recs.map((r) => r.repoTags).flat() }, 'preloaded images');
    } catch (e) {
      log.warn({ err: e, archive }, 'preloading images failed; the daemon serves without them');
    }
  }
  return images;
}

/** The pod and container layer, wired together and recovered. */
interface SandboxParts {
  cgroups: CgroupManager;
  pods: PodManager;
  containers: ContainerManager;
  events: ContainerEventBus;
  stats: StatsCollector;
  lifecycle: LifecycleObserver;
}

async function startSandbox(
  config: SandlotConfig,
  log: Logger,
  images: ImageService,
  network: NetworkManager,
  metrics: Metrics,
  closers: Closer[],
): Promise<SandboxParts> {
  // One manager, so one tree lock: a runsc container's cgroup create cannot race a pod
  // removal pruning the parents they share (S12). The pods' default parent stays while
  // the daemon runs (made once, not again for every pod) and goes at its stop when empty.
  const podParent = path.join('/', config.cgroup_root, config.default_cgroup_parent);
  const cgroups = new CgroupManager({ keep: podParent === '/' ? [] : [podParent] });
  closers.push({ what: 'cgroups', close: () => cgroups.close() });
  const pods = new PodManager({ config, log: log.child({ component: 'sandbox' }), network, cgroups });
  const containers = new ContainerManager({ config, log: log.child({ component: 'containers' }), images, pods, cgroups });
  pods.containers = containers.podHook();
  const events = new ContainerEventBus({
    log: log.child({ component: 'events' }),
    snapshot: (podId) => ({ pod: pods.list({ id: podId })[0], containers: containers.records(podId) }),
  });
  const lifecycle = new LifecycleObserver({
    registry: metrics.registry,
    log: log.child({ component: 'containers' }),
    source: lifecycleSource(pods, containers),
  });
  // Every transition goes to the GetContainerEvents bus and to the observer (exit logs and metrics).
  const sink: ContainerEventSink = {
    publish(type, containerId, podId) {
      events.publish(type, containerId, podId);
      lifecycle.published(type, containerId, podId);
    },
  };
  pods.events = sink;
  containers.events = sink;
  new Gauge({
    name: 'sandlot_container_event_subscribers',
    help: 'GetContainerEvents streams open now.',
    registers: [metrics.registry],
    collect() {
      this.set(events.subscriberCount);
    },
  });
  lifecycle.beginRecovery();
  await pods.start(); // probes every handler, then recovers what a previous run left
  await containers.recover(); // then the containers: exits while down, half-created ones
  logRecovered(log, pods, containers, lifecycle.endRecovery());
  closers.push({ what: 'containers', close: () => Promise.resolve(containers.close()) });
  closers.push({ what: 'pods', close: () => Promise.resolve(pods.close()) });
  const stats = new StatsCollector({
    log: log.child({ component: 'stats' }),
    pods,
    containers,
    upperDir: (id) => images.rootfsPaths(id).upper,
    networkCounters: (netnsPath) => network.podNetworkCounters(netnsPath),
    cgroups: new CgroupStatsReader({ layout: await detectStatsLayout() }),
  });
  new PodMetrics({
    registry: metrics.registry,
    refresh: async () => podMetricsSnapshot(await stats.listPods({}, { rates: false })),
    onRefreshError: (e) => log.warn({ err: e }, 'refreshing pod metrics'),
  });
  return { cgroups, pods, containers, events, stats, lifecycle };
}

interface StreamingParts {
  streaming: StreamingServer;
  containerExec: ContainerExec;
}

/** The exec/attach/port-forward server and what it runs in containers. */
async function startStreaming(
  config: SandlotConfig,
  log: Logger,
  { pods, containers }: SandboxParts,
  tls: ReturnType<typeof loadStreamingTls>,
  closers: Closer[],
): Promise<StreamingParts> {
  const streamingBackend = new SandlotStreamingBackend({ pods, stateDir: config.state_dir, log: log.child({ component: 'streaming' }) });
  const containerExec = new ContainerExec({ containers, pods, log: log.child({ component: 'exec' }), stateDir: config.state_dir });
  streamingBackend.containers = containerExec;
  const streaming = await StreamingServer.start({
    address: config.streaming_address,
    backend: streamingBackend,
    log: log.child({ component: 'streaming' }),
    ...(tls ? { tls } : {}),
  });
  closers.push({ what: 'streaming', close: () => streaming.close() });
  return { streaming, containerExec };
}

/** Every RuntimeService handler, over the started components. */
async function runtimeHandlerSet(
  parts: {
    config: SandlotConfig;
    configFile: string | undefined;
    version: string;
    log: Logger;
    network: NetworkManager;
    sandbox: SandboxParts;
  } & StreamingParts,
): Promise<HandlerSet> {
  const { config, log, network, streaming, containerExec } = parts;
  const { cgroups, pods, containers, events, stats, lifecycle } = parts.sandbox;
  const criu = await probeCriu();
  if (!criu.ok) log.info({ output: probeSummary(criu) }, 'criu check failed: CheckpointContainer answers UNIMPLEMENTED');
  const sandboxSet = requestedStops(sandboxHandlers(pods), lifecycle);
  // open_tree and mount_setattr (Linux 5.12+) make what runc 1.1.5 cannot.
  const mountApi = probeMountApi();
  if (!mountApi.ok) log.info({ reason: mountApi.reason }, 'the new mount API is not usable: recursive read-only mounts and user namespaces are not offered');
  const runtimeHandlers = (): HandlerReadiness[] =>
    pods.runtimeHandlers().map((h) => {
      const f = pods.driver(h.name).features;
      const features = { recursive_read_only_mounts: mountApi.ok && f.recursiveReadOnlyMounts, user_namespaces: mountApi.ok && f.userNamespaces };
      return { name: h.name, ready: h.ready, reason: h.ready ? '' : `${h.reason}: ${h.message}`, features };
    });
  return merge(
    runtimeInfoHandlers({
      version: parts.version,
      config,
      configFile: parts.configFile,
      networkStatus: (): Promise<Readiness> => network.status(),
      runtimeHandlers,
      setPodCidr: (cidr) => {
        network.setPodCidr(cidr);
        log.info({ podCidr: cidr }, 'pod CIDR updated');
      },
    }),
    sandboxSet,
    requestedStops(containerHandlers(containers), lifecycle),
    statsHandlers(stats),
    eventsHandlers(events),
    metricsHandlers(stats),
    podResourcesHandlers({
      updater: new PodResourcesUpdater({ pods, cgroups, log: log.child({ component: 'sandbox' }) }),
      podSandboxStatus: sandboxSet.unary!.PodSandboxStatus!,
      pod: (id) => pods.get(id),
    }),
    checkpointHandlers(new ContainerCheckpointer({ containers, driver: (h) => pods.driver(h), probe: criu, log: log.child({ component: 'checkpoint' }) })),
    portForwardHandlers({ server: streaming, requirePodRunning: (id, action) => pods.requireRunning(id, action) }),
    execHandlers({ server: streaming, containers: containerExec }),
    execSyncHandlers({ containers: containerExec }),
  );
}

/** Serves /metrics; returns the bound address. */
async function startMetricsServer(address: string, metrics: Metrics, log: Logger, closers: Closer[]): Promise<string> {
  let metricsServer: http.Server;
  try {
    metricsServer = await serveMetrics(metrics.registry, address);
  } catch (e) {
    throw wrapError(`serving metrics on "${address}"`, e);
  }
  closers.push({ what: 'metrics', close: () => new Promise((r) => metricsServer.close(() => r())) });
  const bound = boundAddress(metricsServer);
  log.info({ address: bound }, 'serving metrics');
  return bound;
}

/** The one start line's fields: what this daemon runs with, as an operator checks it. */
async function effectiveSetup(
  config: SandlotConfig,
  setup: { version: string; configFile: string | undefined; metricsAddress: string; streamingUrl: string },
  network: NetworkManager,
  pods: PodManager,
): Promise<Record<string, unknown>> {
  return {
    socket: config.socket_path,
    version: setup.version,
    configFile: setup.configFile ?? '', // "": the embedded defaults (with flags and env)
    rootDir: config.root_dir,
    stateDir: config.state_dir,
    cgroupRoot: config.cgroup_root,
    cni: { confDir: config.cni_conf_dir, ...(await network.status()) },
    defaultRuntime: config.default_runtime,
    handlers: pods.runtimeHandlers().map((h) => ({ name: h.name, ready: h.ready, ...(h.ready ? {} : { reason: h.reason, message: h.message }) })),
    streaming: setup.streamingUrl,
    metrics: setup.metricsAddress,
    tracing: config.otlp_endpoint,
  };
}

/** The books as the lifecycle observer reads them: CRI state names, pod names on containers. */
function lifecycleSource(pods: PodManager, containers: ContainerManager) {
  const observed = (c: ContainerRecord, pod: SandboxRecord | undefined): ObservedContainer => ({
    id: c.id,
    podId: c.podId,
    name: c.metadata.name,
    pod: pod?.config.metadata.name ?? '',
    namespace: pod?.config.metadata.namespace ?? '',
    handler: c.runtimeHandler,
    state: criContainerState(c.state),
    exitCode: c.exitCode,
    reason: c.reason,
  });
  const all = () => pods.list().flatMap((p) => containers.records(p.id).map((c) => observed(c, p)));
  return {
    container(id: string) {
      return all().find((c) => c.id === id);
    },
    pods: () => pods.list().map((p) => ({ state: criState(p.state), handler: p.runtimeHandler })),
    containers: all,
  };
}

/** One line after recovery: what the books hold now, and the exits found that happened while the daemon was down. */
function logRecovered(log: Logger, pods: PodManager, containers: ContainerManager, exitsWhileDown: number): void {
  const tally = (states: string[]) => states.reduce<Record<string, number>>((acc, st) => ({ ...acc, [st]: (acc[st] ?? 0) + 1 }), {});
  const podRecs = pods.list();
  const containerRecs = podRecs.flatMap((p) => containers.records(p.id));
  log.info(
    {
      pods: tally(podRecs.map((p) => criState(p.state))),
      containers: tally(containerRecs.map((c) => criContainerState(c.state))),
      unreadable: podRecs.filter((p) => p.state === 'unknown').length + containerRecs.filter((c) => c.state === 'unknown').length,
      exitsWhileDown,
    },
    `recovered ${podRecs.length} pods and ${containerRecs.length} containers`,
  );
}

/**
 * StopContainer, RemoveContainer, StopPodSandbox and RemovePodSandbox: the exits they
 * cause were asked for, so the lifecycle observer counts them as requested and does not
 * log them as exits on their own (the stop logs itself).
 */
function requestedStops(set: HandlerSet, lifecycle: LifecycleObserver): HandlerSet {
  const u = set.unary;
  if (!u) return set;
  const during = async <R>(scope: StopScope, run: () => Promise<R>): Promise<R> => {
    const done = lifecycle.requestStop(scope);
    try {
      return await run();
    } finally {
      done();
    }
  };
  const { StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox } = u;
  return {
    ...set,
    unary: {
      ...u,
      ...(StopContainer ? { StopContainer: (req, ctx) => during({ containerId: req.container_id }, () => StopContainer(req, ctx)) } : {}),
      ...(RemoveContainer ? { RemoveContainer: (req, ctx) => during({ containerId: req.container_id }, () => RemoveContainer(req, ctx)) } : {}),
      ...(StopPodSandbox ? { StopPodSandbox: (req, ctx) => during({ podId: req.pod_sandbox_id }, () => StopPodSandbox(req, ctx)) } : {}),
      ...(RemovePodSandbox ? { RemovePodSandbox: (req, ctx) => during({ podId: req.pod_sandbox_id }, () => RemovePodSandbox(req, ctx)) } : {}),
    },
  };
}

/** An extra service with its handlers passed through `wrap`. */
function withHandlers<S extends { handlers: HandlerSet }>(service: S, wrap: (set: HandlerSet) => HandlerSet): S {
  return { ...service, handlers: wrap(service.handlers) };
}

/**
 * PullImage, sandlot.v1.Images Import and PullWithProgress run with TurboFan on
 * (src/util/optimizer-switch.ts): a layer's decompression and untar are JavaScript
 * worth optimizing. The other image calls (lists, status, removal) are reads and
 * bookkeeping, as the pod lifecycle is, and run without it.
 */
function optimizedImageWork(set: HandlerSet, optimizer: OptimizerSwitch): HandlerSet {
  const u = set.unary ?? {};
  const st = set.stream ?? {};
  const { PullImage, Import } = u;
  const { PullWithProgress } = st;
  return {
    ...set,
    unary: {
      ...u,
      ...(PullImage ? { PullImage: (req, ctx) => optimizer.during(() => PullImage(req, ctx)) } : {}),
      ...(Import ? { Import: (req, ctx) => optimizer.during(() => Import(req, ctx)) } : {}),
    },
    stream: {
      ...st,
      ...(PullWithProgress ? { PullWithProgress: (req, ctx) => optimizer.duringEach(() => PullWithProgress(req, ctx)) } : {}),
    },
  };
}
